//! `check_host()` (RFC 7208 §4) as a state machine: it says which DNS
//! question it needs next and is fed the answer, so the loop's resolver
//! asks and nothing here waits. The limits of §4.6.4 are kept here: at
//! most 10 terms that query DNS, at most 2 void lookups, at most 10
//! names of an `mx` or a `ptr`.

use std::net::IpAddr;

use super::macros::{self, Context, Use};
use super::record::{self, Directive, Mechanism, Qualifier};

/// A check's result (§2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpfResult {
    None,
    Neutral,
    Pass,
    Fail,
    SoftFail,
    TempError,
    PermError,
}

impl SpfResult {
    /// As Authentication-Results and Received-SPF name it.
    pub fn name(self) -> &'static str {
        match self {
            SpfResult::None => "none",
            SpfResult::Neutral => "neutral",
            SpfResult::Pass => "pass",
            SpfResult::Fail => "fail",
            SpfResult::SoftFail => "softfail",
            SpfResult::TempError => "temperror",
            SpfResult::PermError => "permerror",
        }
    }

    fn of(q: Qualifier) -> SpfResult {
        match q {
            Qualifier::Pass => SpfResult::Pass,
            Qualifier::Fail => SpfResult::Fail,
            Qualifier::SoftFail => SpfResult::SoftFail,
            Qualifier::Neutral => SpfResult::Neutral,
        }
    }
}

/// A DNS question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub name: String,
    pub qtype: Qtype,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qtype {
    A,
    Aaaa,
    Mx,
    Txt,
    Ptr,
}

/// What the resolver found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A or AAAA records.
    Addrs(Vec<IpAddr>),
    /// MX exchanges or PTR names.
    Names(Vec<String>),
    /// TXT records, each one's strings joined.
    Texts(Vec<String>),
    /// NXDOMAIN, or the name has no records of the type asked.
    Void,
    /// SERVFAIL, a timeout: try later.
    TempFail,
}

/// What the check needs next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Lookup(Query),
    Done(Verdict),
}

/// The result, and for `fail` the explanation the domain gives (§6.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub result: SpfResult,
    pub explanation: Option<String>,
}

const MAX_DNS_TERMS: usize = 10;
const MAX_VOID: usize = 2;
const MAX_NAMES: usize = 10;
/// Include and redirect nesting (the term limit bounds it too).
const MAX_DEPTH: usize = 12;

/// One record being evaluated: read whole once, then walked term by
/// term (a record of many terms is not read again for each).
struct Frame {
    domain: String,
    text: String,
    /// Where the next term starts in `text`.
    at: usize,
    /// `redirect=`, if the record has one.
    redirect: Option<String>,
}

/// What an outstanding question is for.
enum Wait {
    /// The record of `domain`; `how` says what a result means.
    Record(String, Entry),
    /// `a`: the target's addresses.
    Addresses(Qualifier, u8, u8),
    /// `mx`: the exchanges, then each one's addresses.
    Exchanges(Qualifier, u8, u8),
    ExchangeAddresses(Qualifier, u8, u8, Vec<String>),
    /// `ptr`: the client's names, then each one's addresses.
    PtrNames(Qualifier, String),
    PtrAddresses(Qualifier, String, Vec<String>),
    /// `exists`.
    Exists(Qualifier),
    /// The explanation of a `fail`.
    Explanation,
}

/// How a record came to be evaluated.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Entry {
    Top,
    Include(Qualifier),
    Redirect,
}

/// One `check_host()`.
pub struct Check {
    ip: IpAddr,
    local: String,
    sender_domain: String,
    helo: String,
    receiver: String,
    now: i64,
    /// The client's validated name, for `%{p}`.
    validated: Option<String>,
    frames: Vec<Frame>,
    /// How each frame was entered (one per frame).
    entries: Vec<Entry>,
    /// The outstanding question and what it is for.
    wait: Option<(Wait, Query)>,
    terms: usize,
    voids: usize,
    /// The top record's `exp=` domain-spec and its domain, for a `fail`.
    exp: Option<(String, String)>,
    done: Option<Verdict>,
}

impl Check {
    /// A check of `sender` (`local@domain`; an empty sender checks
    /// `postmaster@helo`) sent from `ip`, which said `helo`. `receiver`
    /// and `now` are for explanations.
    pub fn new(
        ip: IpAddr,
        sender: &str,
        helo: &str,
        receiver: &str,
        now: i64,
    ) -> Check {
        // An IPv4-mapped IPv6 client is an IPv4 client (§5).
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let (local, domain) = match sender.rsplit_once('@') {
            Some((l, d)) if !l.is_empty() => (l.to_string(), d.to_string()),
            Some((_, d)) => ("postmaster".to_string(), d.to_string()),
            None if sender.is_empty() => {
                ("postmaster".to_string(), helo.to_string())
            }
            None => ("postmaster".to_string(), sender.to_string()),
        };
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let mut check = Check {
            ip,
            local,
            sender_domain: domain.clone(),
            helo: helo.to_string(),
            receiver: receiver.to_string(),
            now,
            validated: None,
            frames: Vec::new(),
            entries: Vec::new(),
            wait: None,
            terms: 0,
            voids: 0,
            exp: None,
            done: None,
        };
        match valid_domain(&domain) {
            true => check.ask(
                Wait::Record(domain.clone(), Entry::Top),
                &domain,
                Qtype::Txt,
            ),
            // §4.3: a malformed domain has no SPF record.
            false => check.done = Some(verdict(SpfResult::None)),
        }
        check
    }

    /// The client's validated name (its PTR name whose addresses
    /// include it, RFC 7208 §5.5), which `%{p}` expands to; without
    /// one, `%{p}` is `unknown` (§7.3).
    pub fn validated(mut self, name: Option<String>) -> Check {
        self.validated = name;
        self
    }

    /// The question to ask next, or the verdict.
    pub fn step(&mut self) -> Step {
        loop {
            if let Some(v) = &self.done {
                return Step::Done(v.clone());
            }
            if let Some((_, q)) = &self.wait {
                return Step::Lookup(q.clone());
            }
            self.advance();
        }
    }

    /// The answer to the question [`step`](Self::step) asked last.
    pub fn answer(&mut self, answer: Answer) {
        let Some((wait, _)) = self.wait.take() else {
            return;
        };
        if matches!(wait, Wait::Explanation) {
            let explanation = match answer {
                Answer::Texts(t) if t.len() == 1 => self.explain(&t[0]),
                _ => None,
            };
            self.done = Some(Verdict {
                result: SpfResult::Fail,
                explanation,
            });
            return;
        }
        if answer == Answer::TempFail {
            // §5.5: a DNS error in ptr's lookups makes it not match.
            let qtype = self.address_type();
            return match wait {
                Wait::PtrNames(..) => {}
                Wait::PtrAddresses(q, target, mut rest) => {
                    rest.remove(0);
                    self.next_name(Wait::PtrAddresses(q, target, rest), qtype);
                }
                _ => self.finish(SpfResult::TempError),
            };
        }
        // §4.6.4: lookups that find nothing count, past two a permerror.
        // (Addresses of an mx's or ptr's names do not.)
        let counted = !matches!(
            wait,
            Wait::ExchangeAddresses(..) | Wait::PtrAddresses(..)
        );
        if answer == Answer::Void && counted {
            self.voids += 1;
            if self.voids > MAX_VOID {
                return self.finish(SpfResult::PermError);
            }
        }
        let qtype = self.address_type();
        match wait {
            Wait::Record(domain, entry) => {
                self.record_found(domain, entry, answer)
            }
            Wait::Addresses(q, v4, v6) => {
                let hit =
                    addrs(&answer).iter().any(|a| in_net(self.ip, *a, v4, v6));
                self.matched_if(hit, q);
            }
            Wait::Exists(q) => self.matched_if(!addrs(&answer).is_empty(), q),
            Wait::Exchanges(q, v4, v6) => {
                let names = names(answer);
                if names.len() > MAX_NAMES {
                    return self.finish(SpfResult::PermError);
                }
                self.next_name(
                    Wait::ExchangeAddresses(q, v4, v6, names),
                    qtype,
                );
            }
            Wait::ExchangeAddresses(q, v4, v6, mut rest) => {
                if addrs(&answer).iter().any(|a| in_net(self.ip, *a, v4, v6)) {
                    return self.matched_if(true, q);
                }
                rest.remove(0);
                self.next_name(
                    Wait::ExchangeAddresses(q, v4, v6, rest),
                    qtype,
                );
            }
            Wait::PtrNames(q, target) => {
                let mut names = names(answer);
                names.truncate(MAX_NAMES);
                self.next_name(Wait::PtrAddresses(q, target, names), qtype);
            }
            Wait::PtrAddresses(q, target, mut rest) => {
                let name = rest.remove(0);
                if addrs(&answer).contains(&self.ip)
                    && is_within(&name, &target)
                {
                    return self.matched_if(true, q);
                }
                self.next_name(Wait::PtrAddresses(q, target, rest), qtype);
            }
            Wait::Explanation => {}
        }
    }

    fn address_type(&self) -> Qtype {
        match self.ip {
            IpAddr::V4(_) => Qtype::A,
            IpAddr::V6(_) => Qtype::Aaaa,
        }
    }

    fn ask(&mut self, wait: Wait, name: &str, qtype: Qtype) {
        let query = Query {
            name: macros::fit_domain(name).to_string(),
            qtype,
        };
        self.wait = Some((wait, query));
    }

    /// An mx's or ptr's next name to look up; none left: no match.
    fn next_name(&mut self, wait: Wait, qtype: Qtype) {
        let first = match &wait {
            Wait::ExchangeAddresses(.., rest)
            | Wait::PtrAddresses(_, _, rest) => rest.first().cloned(),
            _ => None,
        };
        if let Some(name) = first {
            self.ask(wait, &name, qtype);
        }
    }

    /// The record of `domain` looked up.
    fn record_found(&mut self, domain: String, entry: Entry, answer: Answer) {
        let spf: Vec<String> = match answer {
            Answer::Texts(texts) => {
                texts.into_iter().filter(|t| record::is_spf(t)).collect()
            }
            _ => Vec::new(),
        };
        let text = match spf.len() {
            // §4.5: no record is `none`; for an include or redirect, a
            // permerror (§5.2, §6.1).
            0 => {
                let r = match entry {
                    Entry::Top => SpfResult::None,
                    _ => SpfResult::PermError,
                };
                return self.finish(r);
            }
            1 => spf.into_iter().next().unwrap_or_default(),
            _ => return self.finish(SpfResult::PermError),
        };
        let Ok(parsed) = record::parse(&text) else {
            return self.finish(SpfResult::PermError);
        };
        // An included record's exp is never used (§6.2).
        if matches!(entry, Entry::Top | Entry::Redirect) {
            self.exp = parsed.exp.map(|e| (e.to_string(), domain.clone()));
        }
        if self.frames.len() >= MAX_DEPTH {
            return self.finish(SpfResult::PermError);
        }
        let redirect = parsed.redirect.map(str::to_string);
        self.frames.push(Frame {
            domain,
            text,
            at: 6, // after `v=spf1`
            redirect,
        });
        self.entries.push(entry);
    }

    /// Evaluates the top frame's next directive, or ends the frame.
    fn advance(&mut self) {
        let Some(frame) = self.frames.last_mut() else {
            // Nothing open and nothing asked: cannot happen, but never spin.
            return self.finish(SpfResult::PermError);
        };
        let domain = frame.domain.clone();
        // The next directive, modifiers passed over.
        let mut term: Option<String> = None;
        while frame.at < frame.text.len() {
            let rest = &frame.text[frame.at..];
            let start = rest.len() - rest.trim_start_matches(' ').len();
            let len = rest[start..].find(' ').unwrap_or(rest.len() - start);
            let (from, to) = (frame.at + start, frame.at + start + len);
            frame.at = to;
            if len > 0 && record::modifier(&frame.text[from..to]).is_none() {
                term = Some(frame.text[from..to].to_string());
                break;
            }
        }
        match term.as_deref().map(record::directive) {
            Some(Ok(directive)) => self.evaluate(directive, &domain),
            Some(Err(_)) => self.finish(SpfResult::PermError),
            // §4.7: no match; a redirect, if any, decides.
            None => match frame.redirect.clone() {
                Some(spec) => self.redirect(spec, &domain),
                None => self.end_frame(SpfResult::Neutral),
            },
        }
    }

    fn redirect(&mut self, spec: String, domain: &str) {
        if !self.count_term() {
            return;
        }
        let Some(target) = self.expand(&spec, domain) else {
            return self.finish(SpfResult::PermError);
        };
        // The redirect's record takes this one's place.
        self.frames.pop();
        let entry = self.entries.pop().unwrap_or(Entry::Top);
        let entry = match entry {
            Entry::Top | Entry::Redirect => Entry::Redirect,
            include => include,
        };
        if entry == Entry::Redirect {
            // The first record's exp does not explain the redirect's
            // result; the redirect's own may (§6.2).
            self.exp = None;
        }
        if !valid_domain(&target) {
            return self.finish(SpfResult::PermError);
        }
        // An include's record that redirects: the include waits for the
        // redirect's result, so its entry is kept.
        self.ask(Wait::Record(target.clone(), entry), &target, Qtype::Txt);
    }

    fn evaluate(&mut self, directive: Directive<'_>, domain: &str) {
        let q = directive.qualifier;
        if directive.mechanism.queries_dns() && !self.count_term() {
            return;
        }
        let target = |spec: Option<&str>, this: &Self| match spec {
            Some(spec) => this.expand(spec, domain),
            None => Some(domain.to_string()),
        };
        let qtype = self.address_type();
        match directive.mechanism {
            Mechanism::All => self.matched_if(true, q),
            Mechanism::Ip4(net, len) => {
                let hit = matches!(self.ip, IpAddr::V4(_))
                    && in_net(self.ip, IpAddr::V4(net), len, 0);
                self.matched_if(hit, q);
            }
            Mechanism::Ip6(net, len) => {
                let hit = matches!(self.ip, IpAddr::V6(_))
                    && in_net(self.ip, IpAddr::V6(net), 0, len);
                self.matched_if(hit, q);
            }
            Mechanism::Include(spec) => match target(Some(spec), self) {
                Some(t) if valid_domain(&t) => self.ask(
                    Wait::Record(t.clone(), Entry::Include(q)),
                    &t,
                    Qtype::Txt,
                ),
                _ => self.finish(SpfResult::PermError),
            },
            Mechanism::A(spec, v4, v6) => match target(spec, self) {
                Some(t) => self.ask(Wait::Addresses(q, v4, v6), &t, qtype),
                None => self.finish(SpfResult::PermError),
            },
            Mechanism::Mx(spec, v4, v6) => match target(spec, self) {
                Some(t) => self.ask(Wait::Exchanges(q, v4, v6), &t, Qtype::Mx),
                None => self.finish(SpfResult::PermError),
            },
            Mechanism::Ptr(spec) => match target(spec, self) {
                Some(t) => {
                    let name = reverse_name(self.ip);
                    self.ask(Wait::PtrNames(q, t), &name, Qtype::Ptr);
                }
                None => self.finish(SpfResult::PermError),
            },
            // exists always asks for A records, whatever the client (§5.7).
            Mechanism::Exists(spec) => match target(Some(spec), self) {
                Some(t) => self.ask(Wait::Exists(q), &t, Qtype::A),
                None => self.finish(SpfResult::PermError),
            },
        }
    }

    /// A term that queries DNS counted; false (and a permerror) past
    /// the limit.
    fn count_term(&mut self) -> bool {
        self.terms += 1;
        if self.terms > MAX_DNS_TERMS {
            self.finish(SpfResult::PermError);
            return false;
        }
        true
    }

    /// A mechanism evaluated: on a match its qualifier ends the frame.
    fn matched_if(&mut self, hit: bool, q: Qualifier) {
        if hit {
            self.end_frame(SpfResult::of(q));
        }
    }

    /// The top frame has its result: back to whoever entered it.
    fn end_frame(&mut self, result: SpfResult) {
        self.frames.pop();
        let entry = self.entries.pop().unwrap_or(Entry::Top);
        match entry {
            Entry::Top | Entry::Redirect => self.finish(result),
            Entry::Include(q) => match result {
                // §5.2: pass matches; fail, softfail, neutral do not.
                SpfResult::Pass => self.matched_if(true, q),
                SpfResult::Fail | SpfResult::SoftFail | SpfResult::Neutral => {
                }
                SpfResult::TempError => self.finish(SpfResult::TempError),
                SpfResult::PermError | SpfResult::None => {
                    self.finish(SpfResult::PermError)
                }
            },
        }
    }

    /// The check's result; a `fail` fetches the explanation first.
    fn finish(&mut self, result: SpfResult) {
        self.frames.clear();
        self.entries.clear();
        self.wait = None;
        match (result, self.exp.take()) {
            (SpfResult::Fail, Some((spec, domain))) => {
                match self.expand(&spec, &domain) {
                    Some(name) if valid_domain(&name) => {
                        self.ask(Wait::Explanation, &name, Qtype::Txt);
                    }
                    _ => self.done = Some(verdict(result)),
                }
            }
            _ => self.done = Some(verdict(result)),
        }
    }

    fn context<'a>(&'a self, domain: &'a str) -> Context<'a> {
        Context {
            local: &self.local,
            sender_domain: &self.sender_domain,
            domain,
            ip: self.ip,
            helo: &self.helo,
            validated: self.validated.as_deref(),
            receiver: &self.receiver,
            now: self.now,
        }
    }

    fn expand(&self, spec: &str, domain: &str) -> Option<String> {
        let expanded =
            macros::expand(spec, Use::Domain, &self.context(domain)).ok()?;
        Some(macros::fit_domain(&expanded).to_ascii_lowercase())
    }

    /// The explanation TXT, expanded (§6.2); errors give none.
    fn explain(&self, text: &str) -> Option<String> {
        let domain = self.sender_domain.clone();
        macros::expand(text, Use::Explanation, &self.context(&domain)).ok()
    }
}

fn verdict(result: SpfResult) -> Verdict {
    Verdict {
        result,
        explanation: None,
    }
}

fn addrs(answer: &Answer) -> &[IpAddr] {
    match answer {
        Answer::Addrs(a) => a,
        _ => &[],
    }
}

fn names(answer: Answer) -> Vec<String> {
    match answer {
        Answer::Names(n) => n,
        _ => Vec::new(),
    }
}

/// True if `ip` lies in `net`/`len` (the length for its family).
fn in_net(ip: IpAddr, net: IpAddr, v4: u8, v6: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(v4)).unwrap_or(0);
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(v6)).unwrap_or(0);
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

/// `name` is `target` or below it (case aside).
fn is_within(name: &str, target: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let target = target.trim_end_matches('.').to_ascii_lowercase();
    name == target || name.ends_with(&format!(".{target}"))
}

/// The PTR query name of an address.
fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut s = String::with_capacity(72);
            for byte in v6.octets().iter().rev() {
                for nibble in [byte & 0xf, byte >> 4] {
                    s.push(
                        char::from_digit(u32::from(nibble), 16).unwrap_or('0'),
                    );
                    s.push('.');
                }
            }
            s.push_str("ip6.arpa");
            s
        }
    }
}

/// §4.3: a domain the check can use: at least two labels, each 1 to 63
/// octets, 253 in all.
fn valid_domain(d: &str) -> bool {
    let d = d.strip_suffix('.').unwrap_or(d);
    !d.is_empty()
        && d.len() <= 253
        && d.contains('.')
        && d.split('.').all(|l| !l.is_empty() && l.len() <= 63)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Zone<'a> = &'a [(&'a str, Qtype, Answer)];

    fn texts(t: &[&str]) -> Answer {
        Answer::Texts(t.iter().map(|s| s.to_string()).collect())
    }

    fn ips(a: &[&str]) -> Answer {
        Answer::Addrs(a.iter().map(|s| s.parse().unwrap()).collect())
    }

    fn names(n: &[&str]) -> Answer {
        Answer::Names(n.iter().map(|s| s.to_string()).collect())
    }

    /// Runs a check against `zone` (anything else: void); also returns
    /// the questions asked.
    fn run(zone: Zone<'_>, ip: &str, sender: &str) -> (Verdict, Vec<Query>) {
        let mut c = Check::new(
            ip.parse().unwrap(),
            sender,
            "helo.example.org",
            "mx.example.net",
            0,
        );
        let mut asked = Vec::new();
        for _ in 0..200 {
            match c.step() {
                Step::Done(v) => return (v, asked),
                Step::Lookup(q) => {
                    let a = zone
                        .iter()
                        .find(|(n, t, _)| *n == q.name && *t == q.qtype)
                        .map_or(Answer::Void, |z| z.2.clone());
                    asked.push(q);
                    c.answer(a);
                }
            }
        }
        panic!("no verdict after 200 steps");
    }

    fn result(zone: Zone<'_>, ip: &str, sender: &str) -> SpfResult {
        run(zone, ip, sender).0.result
    }

    const SENDER: &str = "alice@example.com";

    #[test]
    fn the_qualifiers_and_the_default() {
        for (record, want) in [
            ("v=spf1 ip4:192.0.2.0/24 -all", SpfResult::Pass),
            ("v=spf1 ip4:198.51.100.1 -all", SpfResult::Fail),
            ("v=spf1 ~all", SpfResult::SoftFail),
            ("v=spf1 ?all", SpfResult::Neutral),
            ("v=spf1 ip4:198.51.100.1", SpfResult::Neutral),
            ("v=spf1 -ip4:192.0.2.7 +all", SpfResult::Fail),
        ] {
            let zone = [("example.com", Qtype::Txt, texts(&[record]))];
            assert_eq!(result(&zone, "192.0.2.7", SENDER), want, "{record}");
        }
    }

    #[test]
    fn none_and_permerror_for_the_record_itself() {
        assert_eq!(result(&[], "192.0.2.7", SENDER), SpfResult::None);
        let other = [(
            "example.com",
            Qtype::Txt,
            texts(&["google-site-verification=x"]),
        )];
        assert_eq!(result(&other, "192.0.2.7", SENDER), SpfResult::None);
        let two = [(
            "example.com",
            Qtype::Txt,
            texts(&["v=spf1 +all", "v=spf1 -all"]),
        )];
        assert_eq!(result(&two, "192.0.2.7", SENDER), SpfResult::PermError);
        let bad = [(
            "example.com",
            Qtype::Txt,
            texts(&["v=spf1 ip4:192.0.2.7 bogus -all"]),
        )];
        assert_eq!(result(&bad, "192.0.2.7", SENDER), SpfResult::PermError);
        assert_eq!(
            result(&[], "192.0.2.7", "alice@localhost"),
            SpfResult::None
        );
        let tempfail = [("example.com", Qtype::Txt, Answer::TempFail)];
        assert_eq!(
            result(&tempfail, "192.0.2.7", SENDER),
            SpfResult::TempError
        );
    }

    #[test]
    fn include_and_redirect() {
        let zone = [
            (
                "example.com",
                Qtype::Txt,
                texts(&["v=spf1 include:_spf.example.net -all"]),
            ),
            (
                "_spf.example.net",
                Qtype::Txt,
                texts(&["v=spf1 ip4:192.0.2.0/24 -all"]),
            ),
        ];
        assert_eq!(result(&zone, "192.0.2.7", SENDER), SpfResult::Pass);
        // The include's fail is only "no match": this record's -all decides.
        assert_eq!(result(&zone, "198.51.100.1", SENDER), SpfResult::Fail);
        let missing = [(
            "example.com",
            Qtype::Txt,
            texts(&["v=spf1 include:nothing.example ~all"]),
        )];
        assert_eq!(
            result(&missing, "192.0.2.7", SENDER),
            SpfResult::PermError
        );
        let redirect = [
            (
                "example.com",
                Qtype::Txt,
                texts(&["v=spf1 redirect=_spf.example.net"]),
            ),
            (
                "_spf.example.net",
                Qtype::Txt,
                texts(&["v=spf1 ip4:192.0.2.0/24 ~all"]),
            ),
        ];
        assert_eq!(result(&redirect, "192.0.2.7", SENDER), SpfResult::Pass);
        assert_eq!(
            result(&redirect, "198.51.100.1", SENDER),
            SpfResult::SoftFail
        );
        let nowhere = [(
            "example.com",
            Qtype::Txt,
            texts(&["v=spf1 redirect=nothing.example"]),
        )];
        assert_eq!(
            result(&nowhere, "192.0.2.7", SENDER),
            SpfResult::PermError
        );
        // A mechanism that matches comes before the redirect.
        let first = [(
            "example.com",
            Qtype::Txt,
            texts(&["v=spf1 -all redirect=_spf.example.net"]),
        )];
        assert_eq!(result(&first, "192.0.2.7", SENDER), SpfResult::Fail);
    }

    #[test]
    fn a_mx_ptr_and_exists() {
        let zone = [
            (
                "example.com",
                Qtype::Txt,
                texts(&[
                    "v=spf1 a/28 mx:mail.example.com ptr exists:%{ir}.ok.example.com -all",
                ]),
            ),
            ("example.com", Qtype::A, ips(&["192.0.2.1"])),
            (
                "mail.example.com",
                Qtype::Mx,
                names(&["mx1.example.com", "mx2.example.com"]),
            ),
            ("mx2.example.com", Qtype::A, ips(&["198.51.100.9"])),
            (
                "10.113.0.203.in-addr.arpa",
                Qtype::Ptr,
                names(&["host.example.com", "liar.example.com"]),
            ),
            ("host.example.com", Qtype::A, ips(&["203.0.113.10"])),
            ("9.9.0.192.ok.example.com", Qtype::A, ips(&["127.0.0.2"])),
        ];
        assert_eq!(result(&zone, "192.0.2.14", SENDER), SpfResult::Pass); // a/28
        assert_eq!(result(&zone, "198.51.100.9", SENDER), SpfResult::Pass); // mx
        assert_eq!(result(&zone, "203.0.113.10", SENDER), SpfResult::Pass); // ptr, validated
        assert_eq!(result(&zone, "192.0.9.9", SENDER), SpfResult::Pass); // exists
        let (v, asked) = run(&zone, "192.0.2.99", SENDER);
        assert_eq!(v.result, SpfResult::Fail);
        assert!(asked.iter().any(|q| q.qtype == Qtype::Ptr));
    }

    #[test]
    fn ipv6_clients_and_mapped_ipv4() {
        let zone = [
            (
                "example.com",
                Qtype::Txt,
                texts(&[
                    "v=spf1 ip6:2001:db8::/32 ip4:192.0.2.0/24 a//64 -all",
                ]),
            ),
            ("example.com", Qtype::Aaaa, ips(&["2001:db9:1:2::1"])),
        ];
        assert_eq!(result(&zone, "2001:db8::1", SENDER), SpfResult::Pass);
        assert_eq!(
            result(&zone, "2001:db9:1:2:ffff::1", SENDER),
            SpfResult::Pass
        );
        assert_eq!(result(&zone, "2001:db9:1:3::1", SENDER), SpfResult::Fail);
        assert_eq!(result(&zone, "::ffff:192.0.2.5", SENDER), SpfResult::Pass);
    }

    #[test]
    fn the_limits() {
        // Eleven terms that query DNS: permerror at the eleventh.
        let many = "v=spf1 a:a1.example a:a2.example a:a3.example a:a4.example a:a5.example \
                    a:a6.example a:a7.example a:a8.example a:a9.example a:a10.example a:a11.example -all";
        let addrs: Vec<(String, Qtype, Answer)> = (1..=11)
            .map(|i| {
                (format!("a{i}.example"), Qtype::A, ips(&["198.51.100.1"]))
            })
            .collect();
        let mut zone: Vec<(&str, Qtype, Answer)> = addrs
            .iter()
            .map(|(n, t, a)| (n.as_str(), *t, a.clone()))
            .collect();
        zone.push(("example.com", Qtype::Txt, texts(&[many])));
        assert_eq!(result(&zone, "192.0.2.7", SENDER), SpfResult::PermError);
        // Ten are fine.
        let ten = many.replace(" a:a11.example", "");
        zone.pop();
        zone.push(("example.com", Qtype::Txt, texts(&[&ten])));
        assert_eq!(result(&zone, "192.0.2.7", SENDER), SpfResult::Fail);
        // A third void lookup is a permerror; two are not.
        let voids3 = [(
            "example.com",
            Qtype::Txt,
            texts(&["v=spf1 a:v1.example a:v2.example a:v3.example -all"]),
        )];
        assert_eq!(result(&voids3, "192.0.2.7", SENDER), SpfResult::PermError);
        let voids2 = [(
            "example.com",
            Qtype::Txt,
            texts(&["v=spf1 a:v1.example a:v2.example -all"]),
        )];
        assert_eq!(result(&voids2, "192.0.2.7", SENDER), SpfResult::Fail);
        // An mx of eleven names is a permerror.
        let mx: Vec<String> =
            (1..=11).map(|i| format!("mx{i}.example.com")).collect();
        let mx: Vec<&str> = mx.iter().map(String::as_str).collect();
        let big = [
            ("example.com", Qtype::Txt, texts(&["v=spf1 mx -all"])),
            ("example.com", Qtype::Mx, names(&mx)),
        ];
        assert_eq!(result(&big, "192.0.2.7", SENDER), SpfResult::PermError);
        // Includes that loop end at the term limit.
        let looping = [(
            "example.com",
            Qtype::Txt,
            texts(&["v=spf1 include:example.com -all"]),
        )];
        assert_eq!(
            result(&looping, "192.0.2.7", SENDER),
            SpfResult::PermError
        );
    }

    #[test]
    fn long_records_are_walked_once() {
        // Thousands of terms that query nothing (a record's size is the
        // sender's choice): read once, walked in order, modifiers passed.
        let mut record = String::from("v=spf1 x-note=a");
        for i in 0..5000u32 {
            record.push_str(&format!(" ip4:10.{}.{}.0/24", i / 256, i % 256));
        }
        record.push_str(" ip4:192.0.2.7 -all");
        let zone = [("example.com", Qtype::Txt, texts(&[&record]))];
        let (v, asked) = run(&zone, "192.0.2.7", SENDER);
        assert_eq!((v.result, asked.len()), (SpfResult::Pass, 1));
        assert_eq!(result(&zone, "192.0.2.8", SENDER), SpfResult::Fail);
    }

    #[test]
    fn explanations_and_the_helo_identity() {
        let zone = [
            (
                "example.com",
                Qtype::Txt,
                texts(&["v=spf1 -all exp=why.example.com"]),
            ),
            (
                "why.example.com",
                Qtype::Txt,
                texts(&["%{i} is not one of %{d}'s senders"]),
            ),
        ];
        let (v, _) = run(&zone, "192.0.2.7", SENDER);
        assert_eq!(v.result, SpfResult::Fail);
        assert_eq!(
            v.explanation.as_deref(),
            Some("192.0.2.7 is not one of example.com's senders")
        );
        // MAIL FROM:<> checks postmaster@ the HELO name.
        let helo = [(
            "helo.example.org",
            Qtype::Txt,
            texts(&["v=spf1 ip4:192.0.2.7 -all"]),
        )];
        assert_eq!(result(&helo, "192.0.2.7", ""), SpfResult::Pass);
        assert_eq!(result(&helo, "192.0.2.8", ""), SpfResult::Fail);
    }
}
