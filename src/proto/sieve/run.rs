//! Running compiled scripts against one message for one recipient:
//! tests are evaluated, actions collected (RFC 5228 §2.10: nothing is
//! done until the script has ended well), and the outcome handed to
//! delivery. What the message is, and what the store knows, come
//! through [`Env`]; no I/O here. A run-time error cancels every action
//! and leaves the implicit keep, as Pigeonhole does.

use std::rc::Rc;

use super::matching::{self, Captures};
use super::script::*;
use super::strings;
use crate::proto::imap::{mime, structure};

/// Actions one run may collect at most (Pigeonhole's `sieve_max_actions`).
pub const MAX_ACTIONS: usize = 32;
/// Redirects one run may make at most (`sieve_max_redirects`).
pub const MAX_REDIRECTS: usize = 4;
/// Variables one script may set at most.
pub const MAX_VARIABLES: usize = 255;
/// Header fields read for tests at most.
const MAX_FIELDS: usize = 1000;

/// What the message and its store tell a script.
pub trait Env {
    /// The message's header fields, unfolded (name, raw value).
    fn fields(&self) -> &[(String, Vec<u8>)];
    /// The message's size in octets.
    fn size(&self) -> u64;
    /// MAIL FROM, empty for `<>`.
    fn envelope_from(&self) -> &str;
    /// The recipient this delivery is for.
    fn envelope_to(&self) -> &str;
    /// The body's values under a transform (RFC 5173).
    fn body(&self, transform: &Transform) -> Vec<String>;
    fn mailbox_exists(&self, name: &str) -> bool;
    /// Whether this duplicate id was seen within its period.
    fn seen(&self, id: &str) -> bool;
    /// The spam filter's probability, if it scored the message.
    fn spam_score(&self) -> Option<f64>;
    /// Now, in seconds since the epoch.
    fn now(&self) -> i64;
}

/// A copy to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store {
    /// The folder; None: where it would have gone without a script.
    pub folder: Option<String>,
    pub flags: Vec<String>,
}

/// A vacation reply asked for, its strings expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VacationReply {
    pub period: Option<u64>,
    pub subject: Option<String>,
    pub from: Option<String>,
    pub addresses: Vec<String>,
    pub mime: bool,
    pub handle: String,
    pub reason: String,
}

/// What the scripts decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Copies to store, each folder once (the implicit keep included).
    pub stores: Vec<Store>,
    pub redirects: Vec<String>,
    /// `reject`/`ereject`'s reason (and whether it was `ereject`).
    pub reject: Option<(String, bool)>,
    pub vacation: Option<VacationReply>,
    /// `discard` ran, and nothing keeps a copy.
    pub discarded: bool,
    /// Duplicate ids to remember once delivery is done, with their
    /// period in seconds.
    pub remember: Vec<(String, u64)>,
    /// Why the scripts failed (then `stores` is the implicit keep).
    pub error: Option<String>,
}

/// Runs `scripts` in order (`sieve_before` first, the user's last);
/// a script that `stop`s ends the sequence.
pub fn run(scripts: &[&Script], env: &dyn Env) -> Outcome {
    let mut state = State::default();
    for script in scripts {
        let mut run = Run {
            env,
            script,
            state: &mut state,
            vars: Vec::new(),
            captures: Vec::new(),
            flags: Vec::new(),
            decoded: Vec::new(),
            parsed: Vec::new(),
        };
        match run.block(&script.commands) {
            Ok(Flow::Stop) => break,
            Ok(Flow::Go) => {}
            Err(e) => return failed(e, &state),
        }
    }
    state.finish()
}

fn failed(why: String, state: &State) -> Outcome {
    Outcome {
        stores: vec![Store {
            folder: None,
            flags: Vec::new(),
        }],
        error: Some(why),
        remember: state.remember.clone(),
        ..Outcome::default()
    }
}

/// What the runs so far have collected.
#[derive(Default)]
struct State {
    out: Outcome,
    /// Cancelled by keep, fileinto, redirect, reject, discard.
    implicit_cancelled: bool,
    /// The flags the implicit keep is stored with.
    keep_flags: Vec<String>,
    remember: Vec<(String, u64)>,
    actions: usize,
    /// What `:matches` may still spend, over every script of the run.
    matching: matching::Budget,
}

impl State {
    fn finish(mut self) -> Outcome {
        if !self.implicit_cancelled {
            let flags = std::mem::take(&mut self.keep_flags);
            self.store(None, flags);
        }
        let kept =
            !self.out.stores.is_empty() || !self.out.redirects.is_empty();
        self.out.discarded =
            self.out.discarded && !kept && self.out.reject.is_none();
        self.out.remember = self.remember;
        self.out
    }

    /// A copy into `folder`; a second into the same folder is one copy.
    fn store(&mut self, folder: Option<String>, flags: Vec<String>) {
        let same = |s: &Store| match (&s.folder, &folder) {
            (None, None) => true,
            (Some(a), Some(b)) => canonical_folder(a) == canonical_folder(b),
            _ => false,
        };
        match self.out.stores.iter_mut().find(|s| same(s)) {
            Some(s) => {
                for f in flags {
                    if !s.flags.iter().any(|x| x.eq_ignore_ascii_case(&f)) {
                        s.flags.push(f);
                    }
                }
            }
            None => self.out.stores.push(Store { folder, flags }),
        }
    }
}

/// INBOX in any case is INBOX.
fn canonical_folder(name: &str) -> String {
    match name.eq_ignore_ascii_case("INBOX") {
        true => "INBOX".into(),
        false => name.to_string(),
    }
}

enum Flow {
    Go,
    Stop,
}

struct Run<'a> {
    env: &'a dyn Env,
    script: &'a Script,
    state: &'a mut State,
    vars: Vec<(String, String)>,
    captures: Captures,
    /// imap4flags' internal variable.
    flags: Vec<String>,
    /// Header values decoded so far, by lower-case name.
    decoded: Vec<(String, Rc<Vec<String>>)>,
    /// Addresses parsed so far, by lower-case name, a list per field.
    parsed: Vec<(String, Rc<Vec<Vec<String>>>)>,
}

type Result<T> = std::result::Result<T, String>;

impl Run<'_> {
    fn block(&mut self, cmds: &[Cmd]) -> Result<Flow> {
        for c in cmds {
            if let Flow::Stop = self.command(c)? {
                return Ok(Flow::Stop);
            }
        }
        Ok(Flow::Go)
    }

    fn s(&self, s: &str) -> String {
        self.text(s).into_owned()
    }

    /// A string with its variables expanded; as written when it has none.
    fn text<'s>(&self, s: &'s str) -> std::borrow::Cow<'s, str> {
        match self.script.variables && s.contains("${") {
            true => {
                strings::expand(s, &|n| self.var(n), &self.captures).into()
            }
            false => s.into(),
        }
    }

    fn list(&self, v: &[String]) -> Vec<String> {
        v.iter().map(|s| self.s(s)).collect()
    }

    fn var(&self, name: &str) -> Option<String> {
        self.vars
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }

    fn action(&mut self) -> Result<()> {
        self.state.actions += 1;
        match self.state.actions > MAX_ACTIONS {
            true => Err(format!("more than {MAX_ACTIONS} actions")),
            false => Ok(()),
        }
    }

    fn no_reject(&self, what: &str) -> Result<()> {
        match self.state.out.reject.is_some() {
            true => Err(format!("reject conflicts with {what}")),
            false => Ok(()),
        }
    }

    fn command(&mut self, c: &Cmd) -> Result<Flow> {
        match c {
            Cmd::If(arms, otherwise) => {
                for (test, block) in arms {
                    if self.test(test)? {
                        return self.block(block);
                    }
                }
                if let Some(block) = otherwise {
                    return self.block(block);
                }
            }
            Cmd::Stop => return Ok(Flow::Stop),
            Cmd::Keep { flags } => {
                self.action()?;
                self.no_reject("keep")?;
                let flags = self.flags_given(flags.as_deref());
                self.state.implicit_cancelled = true;
                self.state.store(None, flags);
            }
            Cmd::Discard => {
                self.state.implicit_cancelled = true;
                self.state.out.discarded = true;
            }
            Cmd::FileInto {
                folder,
                copy,
                create: _,
                flags,
            } => {
                self.action()?;
                self.no_reject("fileinto")?;
                let folder = self.s(folder);
                if folder.is_empty()
                    || folder.len() > 1000
                    || folder.contains('\0')
                {
                    return Err(format!(
                        "fileinto: bad folder \"{}\"",
                        strings::shown(&folder)
                    ));
                }
                let flags = self.flags_given(flags.as_deref());
                if !copy {
                    self.state.implicit_cancelled = true;
                }
                self.state.store(Some(folder), flags);
            }
            Cmd::Redirect { to, copy } => {
                self.action()?;
                self.no_reject("redirect")?;
                let to = self.s(to);
                if !strings::valid_address(&to) {
                    return Err(format!(
                        "redirect: \"{}\" is not an address",
                        strings::shown(&to)
                    ));
                }
                let to = to
                    .trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string();
                if !copy {
                    self.state.implicit_cancelled = true;
                }
                let redirects = &mut self.state.out.redirects;
                if !redirects.iter().any(|r| r.eq_ignore_ascii_case(&to)) {
                    if redirects.len() >= MAX_REDIRECTS {
                        return Err(format!(
                            "more than {MAX_REDIRECTS} redirects"
                        ));
                    }
                    redirects.push(to);
                }
            }
            Cmd::Reject { reason, extended } => {
                self.action()?;
                let o = &self.state.out;
                if o.reject.is_some()
                    || o.vacation.is_some()
                    || !o.stores.is_empty()
                    || !o.redirects.is_empty()
                {
                    return Err("reject conflicts with another action".into());
                }
                self.state.implicit_cancelled = true;
                self.state.out.reject = Some((self.s(reason), *extended));
            }
            Cmd::Vacation(v) => {
                self.action()?;
                self.no_reject("vacation")?;
                if self.state.out.vacation.is_some() {
                    return Err("vacation twice".into());
                }
                let reply = VacationReply {
                    period: v.period,
                    subject: v.subject.as_deref().map(|s| self.s(s)),
                    from: v.from.as_deref().map(|s| self.s(s)),
                    addresses: self.list(&v.addresses),
                    mime: v.mime,
                    handle: match &v.handle {
                        Some(h) => self.s(h),
                        None => default_handle(v),
                    },
                    reason: self.s(&v.reason),
                };
                self.state.out.vacation = Some(reply);
            }
            Cmd::Flags {
                op,
                variable,
                flags,
            } => self.flag_command(*op, variable.as_deref(), flags)?,
            Cmd::Set {
                name,
                value,
                modifiers,
            } => {
                let value = strings::modified(self.s(value), modifiers);
                self.set(name.clone(), value)?;
            }
        }
        Ok(Flow::Go)
    }

    /// `setflag`, `addflag`, `removeflag` on a variable or the internal one.
    fn flag_command(
        &mut self,
        op: FlagOp,
        variable: Option<&str>,
        flags: &[String],
    ) -> Result<()> {
        let given = split_flags(&self.list(flags));
        let current = match variable {
            Some(v) => split_flags(&[self
                .var(&self.s(v).to_ascii_lowercase())
                .unwrap_or_default()]),
            None => std::mem::take(&mut self.flags),
        };
        let next = match op {
            FlagOp::Set => given,
            FlagOp::Add => union(current, given),
            FlagOp::Remove => current
                .into_iter()
                .filter(|f| !given.iter().any(|g| g.eq_ignore_ascii_case(f)))
                .collect(),
        };
        match variable {
            Some(v) => {
                let name = self.s(v).to_ascii_lowercase();
                self.set(name, next.join(" "))?;
            }
            None => self.flags = next,
        }
        self.state.keep_flags = self.flags.clone();
        Ok(())
    }

    fn hasflag(
        &mut self,
        how: Match,
        variables: &[String],
        keys: &[String],
    ) -> bool {
        let values = match variables.is_empty() {
            true => self.flags.clone(),
            false => {
                let vals: Vec<String> = self
                    .list(variables)
                    .iter()
                    .map(|v| {
                        self.var(&v.to_ascii_lowercase()).unwrap_or_default()
                    })
                    .collect();
                split_flags(&vals)
            }
        };
        let keys = match how.kind {
            MatchKind::Count(_) => self.list(keys),
            _ => split_flags(&self.list(keys)),
        };
        self.matches_expanded(how, &values, &keys)
    }

    fn date(
        &mut self,
        how: Match,
        zone: &Zone,
        header: &str,
        part: &str,
        keys: &[String],
        index: Option<Index>,
    ) -> bool {
        let mut values = Vec::new();
        for raw in self.raw_values(&self.s(header), index) {
            if let Some(v) =
                super::dates::part_of_header(&raw, zone, &self.s(part))
            {
                values.push(v);
            }
        }
        self.matches(how, &values, keys)
    }

    fn set(&mut self, name: String, value: String) -> Result<()> {
        let full = self.vars.len() >= MAX_VARIABLES;
        match self.vars.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None if full => return Err("too many variables".into()),
            None => self.vars.push((name, value)),
        }
        Ok(())
    }

    /// `:flags` given, or the internal variable's.
    fn flags_given(&self, given: Option<&[String]>) -> Vec<String> {
        match given {
            Some(f) => split_flags(&self.list(f)),
            None => self.flags.clone(),
        }
    }

    /// A test's result, unless `:matches` spent the run's budget on
    /// it: then the run fails (the message is kept).
    fn test(&mut self, t: &Test) -> Result<bool> {
        let hit = self.evaluate(t)?;
        match self.state.matching.spent() {
            true => Err(format!(
                ":matches took more than {} steps",
                matching::MATCH_WORK
            )),
            false => Ok(hit),
        }
    }

    fn evaluate(&mut self, t: &Test) -> Result<bool> {
        Ok(match t {
            Test::True => true,
            Test::False => false,
            Test::Not(t) => !self.test(t)?,
            Test::AllOf(ts) => {
                for t in ts {
                    if !self.test(t)? {
                        return Ok(false);
                    }
                }
                true
            }
            Test::AnyOf(ts) => {
                for t in ts {
                    if self.test(t)? {
                        return Ok(true);
                    }
                }
                false
            }
            Test::Exists(names) => self
                .list(names)
                .iter()
                .all(|n| !self.header_values(n, None).is_empty()),
            Test::Size { over, limit } => match over {
                true => self.env.size() > *limit,
                false => self.env.size() < *limit,
            },
            Test::Header {
                how,
                names,
                keys,
                index,
            } => {
                let mut values = Vec::new();
                for n in names {
                    let n = self.text(n);
                    values.extend(self.header_values(&n, *index));
                }
                self.matches(*how, &values, keys)
            }
            Test::Address {
                how,
                part,
                names,
                keys,
                index,
            } => {
                let mut values = Vec::new();
                for n in names {
                    let n = self.text(n);
                    for field in self.addresses(&n, *index) {
                        values.extend(
                            field.iter().filter_map(|a| part_of(a, *part)),
                        );
                    }
                }
                self.matches(*how, &values, keys)
            }
            Test::Envelope {
                how,
                part,
                names,
                keys,
            } => self.envelope(*how, *part, names, keys),
            Test::String { how, sources, keys } => {
                let mut values = self.list(sources);
                if let MatchKind::Count(_) = how.kind {
                    values.retain(|v| !v.is_empty());
                }
                self.matches(*how, &values, keys)
            }
            Test::HasFlag {
                how,
                variables,
                keys,
            } => self.hasflag(*how, variables, keys),
            Test::Body {
                how,
                transform,
                keys,
            } => {
                let values = self.env.body(transform);
                self.matches(*how, &values, keys)
            }
            Test::Date {
                how,
                zone,
                header,
                part,
                keys,
                index,
            } => self.date(*how, zone, header, part, keys, *index),
            Test::CurrentDate {
                how,
                zone,
                part,
                keys,
            } => {
                let values: Vec<String> = super::dates::part_of_now(
                    self.env.now(),
                    zone,
                    &self.s(part),
                )
                .into_iter()
                .collect();
                self.matches(*how, &values, keys)
            }
            Test::MailboxExists(names) => {
                self.list(names).iter().all(|n| self.env.mailbox_exists(n))
            }
            Test::Duplicate(d) => self.duplicate(d),
            Test::SpamTest {
                how,
                percent,
                value,
            } => {
                let v = match (self.env.spam_score(), percent) {
                    (None, _) => 0,
                    (Some(s), true) => {
                        (s.clamp(0.0, 1.0) * 100.0).round() as u32
                    }
                    (Some(s), false) => {
                        1 + (s.clamp(0.0, 1.0) * 9.0).round() as u32
                    }
                };
                self.matches(
                    *how,
                    &[v.to_string()],
                    std::slice::from_ref(value),
                )
            }
        })
    }

    fn envelope(
        &mut self,
        how: Match,
        part: Part,
        names: &[String],
        keys: &[String],
    ) -> bool {
        let mut values = Vec::new();
        for n in self.list(names) {
            let addr = match n.to_ascii_lowercase().as_str() {
                "from" => self.env.envelope_from(),
                "to" => self.env.envelope_to(),
                _ => continue,
            };
            if addr.is_empty() {
                // The null path is the empty string, whatever the part.
                values.push(String::new());
            } else {
                values.extend(part_of(addr, part));
            }
        }
        self.matches(how, &values, keys)
    }

    fn duplicate(&mut self, d: &Duplicate) -> bool {
        let id = match &d.by {
            DuplicateBy::UniqueId(u) => Some(self.s(u)),
            DuplicateBy::Header(h) => {
                self.header_values(&self.s(h), None).into_iter().next()
            }
        };
        let Some(id) = id else {
            return false; // nothing to know it by: never a duplicate
        };
        let key = format!("{}\0{}", self.s(&d.handle), id);
        let seen = self.env.seen(&key);
        let period = d.seconds.unwrap_or(DUPLICATE_PERIOD).min(DUPLICATE_MAX);
        if !seen || d.last {
            self.state.remember.push((key, period));
        }
        seen
    }

    /// Keys expanded, then matched; match variables kept on success.
    fn matches(
        &mut self,
        how: Match,
        values: &[String],
        keys: &[String],
    ) -> bool {
        let expand =
            self.script.variables && keys.iter().any(|k| k.contains("${"));
        match expand {
            true => {
                let keys = self.list(keys);
                self.matches_expanded(how, values, &keys)
            }
            false => self.matches_expanded(how, values, keys),
        }
    }

    fn matches_expanded(
        &mut self,
        how: Match,
        values: &[String],
        keys: &[String],
    ) -> bool {
        let mut caps = None;
        let hit = matching::any(
            how,
            values,
            keys,
            &mut caps,
            &mut self.state.matching,
        );
        if let (true, Some(c)) = (hit && self.script.variables, caps) {
            self.captures = c;
        }
        hit
    }

    /// A header's values, unfolded, encoded words decoded, trimmed;
    /// each field's decoded once a run.
    fn header_values(
        &mut self,
        name: &str,
        index: Option<Index>,
    ) -> Vec<String> {
        let lower = name.to_ascii_lowercase();
        let all = match self.decoded.iter().find(|(n, _)| *n == lower) {
            Some((_, v)) => Rc::clone(v),
            None => {
                let v: Rc<Vec<String>> = Rc::new(
                    self.raw_values(name, None)
                        .iter()
                        .map(|v| mime::decode_words(v).trim().to_string())
                        .collect(),
                );
                self.decoded.push((lower, Rc::clone(&v)));
                v
            }
        };
        indexed(&all, index).to_vec()
    }

    /// Each field's addresses (`local@domain`), parsed once a run.
    fn addresses(
        &mut self,
        name: &str,
        index: Option<Index>,
    ) -> Vec<Vec<String>> {
        let lower = name.to_ascii_lowercase();
        let all = match self.parsed.iter().find(|(n, _)| *n == lower) {
            Some((_, v)) => Rc::clone(v),
            None => {
                let v: Rc<Vec<Vec<String>>> = Rc::new(
                    self.raw_values(name, None)
                        .iter()
                        .map(|raw| field_addresses(raw))
                        .collect(),
                );
                self.parsed.push((lower, Rc::clone(&v)));
                v
            }
        };
        indexed(&all, index).to_vec()
    }

    fn raw_values(&self, name: &str, index: Option<Index>) -> Vec<Vec<u8>> {
        let all: Vec<&[u8]> = self
            .env
            .fields()
            .iter()
            .take(MAX_FIELDS)
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
            .collect();
        indexed(&all, index).iter().map(|v| v.to_vec()).collect()
    }
}

/// How long `duplicate` remembers by default, and at most (Pigeonhole's
/// `sieve_duplicate_default_period` and `sieve_duplicate_max_period`).
pub const DUPLICATE_PERIOD: u64 = 12 * 3600;
pub const DUPLICATE_MAX: u64 = 2 * 86_400;

/// RFC 5230 §4.2: with no `:handle`, the arguments that make a reply
/// what it is identify it.
fn default_handle(v: &Vacation) -> String {
    format!(
        "{}\0{}\0{}\0{}",
        v.subject.as_deref().unwrap_or(""),
        v.from.as_deref().unwrap_or(""),
        v.mime,
        v.reason
    )
}

/// Flag lists are space-separated words; each flag once, any case.
fn split_flags(lists: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for l in lists {
        for f in l.split_ascii_whitespace() {
            if !out.iter().any(|x| x.eq_ignore_ascii_case(f)) {
                out.push(f.to_string());
            }
        }
    }
    out
}

fn union(mut a: Vec<String>, b: Vec<String>) -> Vec<String> {
    for f in b {
        if !a.iter().any(|x| x.eq_ignore_ascii_case(&f)) {
            a.push(f);
        }
    }
    a
}

/// The fields `:index` picks: the Nth, or the Nth from the end.
fn indexed<T>(all: &[T], index: Option<Index>) -> &[T] {
    let Some(Index { n, last }) = index else {
        return all;
    };
    let n = n as usize;
    let at = match last {
        true => all.len().checked_sub(n),
        false => n.checked_sub(1),
    };
    match at {
        Some(i) if i < all.len() => &all[i..=i],
        _ => &[],
    }
}

/// The addresses (`local@domain`) of a header value.
fn field_addresses(raw: &[u8]) -> Vec<String> {
    structure::addresses(raw)
        .into_iter()
        .filter_map(|a| {
            // A group's start or end has no host.
            let (local, host) = (a.mailbox?, a.host?);
            Some(format!(
                "{}@{}",
                String::from_utf8_lossy(&local),
                String::from_utf8_lossy(&host)
            ))
        })
        .collect()
}

/// One part of `local@domain`; none when `:detail` has nothing to give.
fn part_of(addr: &str, part: Part) -> Option<String> {
    let (local, domain) = addr.rsplit_once('@').unwrap_or((addr, ""));
    Some(match part {
        Part::All => addr.to_string(),
        Part::LocalPart => local.to_string(),
        Part::Domain => domain.to_string(),
        Part::User => {
            local.split_once('+').map_or(local, |(u, _)| u).to_string()
        }
        Part::Detail => local.split_once('+')?.1.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::compile::compile;
    use super::*;

    struct Fake {
        fields: Vec<(String, Vec<u8>)>,
    }

    impl Env for Fake {
        fn fields(&self) -> &[(String, Vec<u8>)] {
            &self.fields
        }
        fn size(&self) -> u64 {
            100
        }
        fn envelope_from(&self) -> &str {
            "a@b.test"
        }
        fn envelope_to(&self) -> &str {
            "me+tag@c.test"
        }
        fn body(&self, _: &Transform) -> Vec<String> {
            vec!["hello".into()]
        }
        fn mailbox_exists(&self, name: &str) -> bool {
            name == "INBOX"
        }
        fn seen(&self, _: &str) -> bool {
            false
        }
        fn spam_score(&self) -> Option<f64> {
            None
        }
        fn now(&self) -> i64 {
            0
        }
    }

    fn outcome(script: &str, fields: &[(&str, &str)]) -> Outcome {
        let s = compile(script).unwrap();
        let env = Fake {
            fields: fields
                .iter()
                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                .collect(),
        };
        run(&[&s], &env)
    }

    fn inbox() -> Vec<Store> {
        vec![Store {
            folder: None,
            flags: Vec::new(),
        }]
    }

    #[test]
    fn implicit_keep_and_what_cancels_it() {
        assert_eq!(outcome("", &[]).stores, inbox());
        let o = outcome("discard;", &[]);
        assert!(o.stores.is_empty() && o.discarded);
        let o = outcome("require \"copy\"; redirect :copy \"x@y.test\";", &[]);
        assert_eq!(
            (o.stores, o.redirects),
            (inbox(), vec!["x@y.test".to_string()])
        );
        let o = outcome(
            "require \"fileinto\"; fileinto \"A\"; fileinto \"A\"; keep;",
            &[],
        );
        assert_eq!(o.stores.len(), 2, "{o:?}");
    }

    #[test]
    fn matching_past_its_budget_fails_the_run_and_keeps() {
        let pattern = "*".to_string() + &"a".repeat(4000) + "b";
        let script = format!(
            "require \"fileinto\"; if header :matches \"subject\" \"{pattern}\" \
             {{ fileinto \"Hit\"; }} discard;"
        );
        let subject = "a".repeat(64 * 1024);
        let o = outcome(&script, &[("Subject", &subject)]);
        assert_eq!(o.stores, inbox(), "{o:?}");
        assert!(!o.discarded);
        assert!(
            o.error.as_deref().unwrap_or("").contains(":matches"),
            "{o:?}"
        );
    }

    #[test]
    fn errors_keep_and_cancel_everything() {
        let five = "redirect \"a@x.test\"; redirect \"b@x.test\"; redirect \"c@x.test\"; \
                    redirect \"d@x.test\"; redirect \"e@x.test\";";
        let o = outcome(five, &[]);
        assert_eq!((o.stores, o.redirects.len()), (inbox(), 0));
        assert!(o.error.unwrap().contains("redirects"));
        let o = outcome(
            "require [\"reject\", \"fileinto\"]; fileinto \"A\"; reject \"no\";",
            &[],
        );
        assert_eq!(o.stores, inbox());
        assert!(o.reject.is_none() && o.error.is_some());
    }

    #[test]
    fn a_decoded_header_cannot_inject_a_recipient() {
        // =0D=0A in an encoded word decodes to a line end.
        let script = "require \"variables\"; if header :matches \"x-to\" \"*\" { redirect \"${1}\"; }";
        let o = outcome(
            script,
            &[("X-To", "=?utf-8?q?\"a=0D=0Ato_<evil@x.test>\"@y.test?=")],
        );
        assert!(o.redirects.is_empty() && o.error.is_some(), "{o:?}");
        assert_eq!(o.stores, inbox());
    }

    #[test]
    fn flags_subaddress_and_variables() {
        let script = "require [\"imap4flags\", \"envelope\", \"subaddress\", \"variables\", \"fileinto\"];\n\
                      setflag \"\\\\Seen\"; addflag \"$Work \\\\Seen\";\n\
                      if envelope :detail :matches \"to\" \"*\" { fileinto \"T.${1}\"; }";
        let o = outcome(script, &[]);
        assert_eq!(
            o.stores,
            vec![Store {
                folder: Some("T.tag".into()),
                flags: vec!["\\Seen".into(), "$Work".into()],
            }]
        );
    }
}
