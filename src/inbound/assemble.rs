//! From what the checks gathered to the verdict: each signature's
//! result put with its place, the ARC chain's, DMARC's decision, and
//! the Authentication-Results field and log summary that go with the
//! disposition. Pure: the loop (for a message read first) and the
//! durability helper (for one checked as it is stored) share it.

use std::net::IpAddr;
use std::sync::Arc;

use crate::config::inbound::Inbound;
use crate::inbound::read::{self, Prehash, Reading, ToCheck, Wanted};
use crate::inbound::verdict::{self, Disposition, Results};
use crate::proto::dkim::tags::Key;
use crate::proto::dkim::verify::Outcome;
use crate::proto::dmarc::evaluate::{self, Evidence};
use crate::proto::dmarc::psl::List;
use crate::proto::dmarc::record::Record;
use crate::proto::spf::check::SpfResult;
use crate::store::content::{Content, Stored};
use crate::util::logsafe::Quoted;

/// The DMARC record lookup.
pub enum DmarcLookup {
    Off,
    /// Asking `_dmarc.` of this domain (the From domain, then its
    /// organizational domain).
    Asking(String),
    Found(Option<(Record, String)>),
    TempError,
}

/// The ARC chain's items.
pub enum ArcState {
    Known(verdict::Arc),
    Items {
        first: usize,
        count: usize,
        sealer: (String, u32),
    },
}

/// What is known of a message's checks beside SPF and iprev.
pub struct Gathered {
    pub ip: IpAddr,
    /// The logged-in user (then nothing else is checked).
    pub user: Option<String>,
    /// The signatures read (a stranger's, and the checks on).
    pub wanted: Wanted,
    /// The From domain, or why there is none.
    pub from: Result<String, &'static str>,
    /// Authentication-Results fields naming us.
    pub forged: Vec<(u64, u64)>,
    /// The signatures to check, in order.
    pub items: Vec<ToCheck>,
    /// Each DKIM signature: its result when known early, else its item.
    pub dkim: Vec<(verdict::Dkim, Option<usize>)>,
    /// The ARC chain: its result when known early, else its items.
    pub arc: Option<ArcState>,
    pub dmarc: DmarcLookup,
    /// Each item's result, once checked.
    pub outcomes: Option<Vec<Outcome>>,
}

impl Gathered {
    /// Nothing known yet of a message from `ip`.
    pub fn new(ip: IpAddr, user: Option<String>, wanted: Wanted) -> Gathered {
        Gathered {
            ip,
            user,
            wanted,
            from: Err("not read"),
            forged: Vec::new(),
            items: Vec::new(),
            dkim: Vec::new(),
            arc: None,
            dmarc: DmarcLookup::Off,
            outcomes: None,
        }
    }

    /// Takes in what was read: the From domain, forged fields, and each
    /// signature, listed in the order they are checked.
    pub fn absorb(&mut self, reading: Reading) {
        self.from = reading.from_domain;
        self.forged = reading.forged;
        for d in reading.dkim {
            let entry = match d {
                read::Dkim::Ready(c) => {
                    let meta = verdict::Dkim {
                        outcome: Outcome::TempError("not checked"),
                        domain: Some(c.sig.domain.clone()),
                        selector: Some(c.sig.selector.clone()),
                        b: Some(c.sig.b_text.clone()),
                        length: c.sig.length.map(|l| (l, c.body_length)),
                    };
                    self.items.push(*c);
                    (meta, Some(self.items.len() - 1))
                }
                read::Dkim::Broken(why, domain) => {
                    let meta = verdict::Dkim {
                        outcome: Outcome::PermError(why),
                        domain,
                        selector: None,
                        b: None,
                        length: None,
                    };
                    (meta, None)
                }
            };
            self.dkim.push(entry);
        }
        if !self.wanted.arc {
            return;
        }
        let known = |result, reason| {
            ArcState::Known(verdict::Arc {
                result,
                reason,
                sealer: None,
            })
        };
        self.arc = Some(match reading.arc {
            read::Arc::None => known("none", None),
            read::Arc::Broken(why) => known("fail", Some(why)),
            read::Arc::Chain { message, seals } => {
                let newest = seals
                    .first()
                    .map(|s| (s.sig.domain.clone(), s.sig.instance));
                let first = self.items.len();
                self.items.push(*message);
                self.items.extend(seals);
                ArcState::Items {
                    first,
                    count: self.items.len() - first,
                    sealer: newest.unwrap_or_default(),
                }
            }
        });
    }

    /// The results; what is unanswered is `temperror`.
    pub fn results(
        &mut self,
        cfg: &Inbound,
        psl: &List,
        spf: Option<verdict::Spf>,
        iprev: Option<verdict::Iprev>,
    ) -> Results {
        let mut results = Results {
            ip: Some(self.ip),
            ..Results::default()
        };
        if let Some(user) = &self.user {
            results.auth = Some(user.clone());
            return results;
        }
        let on = cfg.checks;
        results.spf = spf;
        results.iprev = iprev.filter(|_| on.iprev);
        let outcomes = self.outcomes.take().unwrap_or_default();
        let outcome = |i: usize| {
            outcomes
                .get(i)
                .copied()
                .unwrap_or(Outcome::TempError("not checked"))
        };
        if on.dkim {
            let dkim = self.dkim.drain(..).map(|(mut meta, item)| {
                if let Some(i) = item {
                    meta.outcome = outcome(i);
                }
                meta
            });
            results.dkim = Some(dkim.collect());
        }
        results.arc = self.arc.take().map(|a| match a {
            ArcState::Known(k) => k,
            ArcState::Items {
                first,
                count,
                sealer,
            } => arc_result((first..first + count).map(outcome), sealer),
        });
        if on.dmarc {
            results.dmarc = Some(self.dmarc_result(psl, &results));
        }
        results
    }

    /// DMARC's result from the record found and the other results.
    fn dmarc_result(&self, psl: &List, results: &Results) -> verdict::Dmarc {
        let from = self.from.clone();
        let outcome = match (&self.dmarc, &from) {
            (_, Err(_))
            | (DmarcLookup::Off, _)
            | (DmarcLookup::Found(None), _) => evaluate::Outcome::None,
            (DmarcLookup::Asking(_) | DmarcLookup::TempError, _) => {
                evaluate::Outcome::TempError
            }
            (DmarcLookup::Found(Some((record, at))), Ok(from)) => {
                let spf_pass = results
                    .spf
                    .as_ref()
                    .filter(|s| s.result == SpfResult::Pass)
                    .map(|s| s.domain.as_str());
                let dkim_pass: Vec<String> = results
                    .dkim
                    .iter()
                    .flatten()
                    .filter(|d| d.outcome == Outcome::Pass)
                    .filter_map(|d| d.domain.clone())
                    .collect();
                let evidence = Evidence {
                    from,
                    spf_pass,
                    dkim_pass: &dkim_pass,
                };
                let mut roll = [0u8; 1];
                let _ = ring::rand::SecureRandom::fill(
                    &ring::rand::SystemRandom::new(),
                    &mut roll,
                );
                evaluate::evaluate(psl, record, at, &evidence, roll[0] % 100)
            }
        };
        verdict::Dmarc { outcome, from }
    }
}

/// The chain passes if its newest message signature and every seal do.
fn arc_result(
    outcomes: impl Iterator<Item = Outcome>,
    sealer: (String, u32),
) -> verdict::Arc {
    let mut temp = false;
    for o in outcomes {
        match o {
            Outcome::Pass => {}
            Outcome::TempError(_) => temp = true,
            other => {
                return verdict::Arc {
                    result: "fail",
                    reason: other.reason(),
                    sealer: None,
                };
            }
        }
    }
    match temp {
        true => verdict::Arc {
            result: "temperror",
            reason: Some("key lookup failed"),
            sealer: None,
        },
        false => verdict::Arc {
            result: "pass",
            reason: None,
            sealer: Some(sealer),
        },
    }
}

/// The verdict, and what goes with it.
pub struct Decided {
    pub disposition: Disposition,
    /// The Authentication-Results field.
    pub field: String,
    /// Forged fields to leave out.
    pub forged: Vec<(u64, u64)>,
    /// The results for the delivery's log line.
    pub summary: String,
}

impl Decided {
    /// The folder the message goes into (a refused one goes nowhere).
    pub fn folder(&self) -> &'static str {
        match self.disposition {
            Disposition::Junk(_) => crate::store::folders::JUNK,
            _ => "INBOX",
        }
    }
}

/// The verdict on `results` under `cfg`.
pub fn decide(
    results: &Results,
    cfg: &Inbound,
    ours: &str,
    forged: Vec<(u64, u64)>,
) -> Decided {
    let disposition = match &results.auth {
        Some(_) => Disposition::Inbox,
        None => results.decide(cfg),
    };
    Decided {
        field: results.field(ours, &disposition),
        summary: summarize(results, &disposition),
        disposition,
        forged,
    }
}

/// The results for the log line: ` spf=pass dkim=pass,fail ... dis=inbox`.
fn summarize(r: &Results, d: &Disposition) -> String {
    let mut out = String::new();
    if let Some(user) = &r.auth {
        out.push_str(&format!(" auth={}", Quoted(user)));
    }
    if let Some(spf) = &r.spf {
        out.push_str(&format!(" spf={}", spf.result.name()));
    }
    if let Some(dkim) = &r.dkim {
        let list: Vec<&str> = dkim.iter().map(|d| d.outcome.name()).collect();
        let list = if list.is_empty() {
            "none".to_string()
        } else {
            list.join(",")
        };
        out.push_str(&format!(" dkim={list}"));
    }
    if let Some(dmarc) = &r.dmarc {
        out.push_str(&format!(" dmarc={}", dmarc.outcome.name()));
    }
    if let Some(arc) = &r.arc {
        out.push_str(&format!(" arc={}", arc.result));
    }
    if let Some(iprev) = &r.iprev {
        out.push_str(&format!(" iprev={}", iprev.result));
    }
    if r.auth.is_none() {
        let dis = match d {
            Disposition::Inbox => "inbox",
            Disposition::Junk(_) => "junk",
            Disposition::Reject(_) => "reject",
        };
        out.push_str(&format!(" dis={dis}"));
    }
    out
}

/// A message whose lookups are all answered, to be read, checked and
/// decided where it is stored (the durability helper): no thread trip
/// of its own.
pub struct Pending {
    pub g: Gathered,
    pub cfg: Arc<Inbound>,
    pub psl: Arc<List>,
    pub spf: Option<verdict::Spf>,
    pub iprev: Option<verdict::Iprev>,
    pub ours: String,
    /// Our trace fields' length, and where our Received starts (the
    /// field goes before it).
    pub trace: (u64, u64),
    pub now: i64,
    pub keys: Vec<(String, Result<Key, Outcome>)>,
    /// A spooled message's body hashes so far, and its header's reading.
    pub prehashed: Option<Box<Prehash>>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pending")
    }
}

impl Pending {
    /// Reads `content` (or only its header and last piece, when it was
    /// hashed as it was written), checks each signature with its key,
    /// and decides.
    pub fn run(mut self, content: &mut Content) -> std::io::Result<Decided> {
        let reading = match self.prehashed.take() {
            None => read::read(
                content,
                self.trace.0,
                &self.ours,
                self.g.wanted,
                self.now,
            )?,
            Some(prehash) => {
                let tail = match &content.stored {
                    Stored::File { tail, .. } => tail.as_slice(),
                    Stored::Memory(_) => &[],
                };
                read::read_prehashed(*prehash, tail, self.now)
            }
        };
        self.g.absorb(reading);
        let missing = Err(Outcome::TempError("key not looked up"));
        let outcomes = self
            .g
            .items
            .iter()
            .map(|c| {
                let name = c.sig.key_name();
                let key = self
                    .keys
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map_or(&missing, |(_, k)| k);
                read::check_one(c, key)
            })
            .collect();
        self.g.outcomes = Some(outcomes);
        let results = self.g.results(
            &self.cfg,
            &self.psl,
            self.spf.take(),
            self.iprev.take(),
        );
        let forged = std::mem::take(&mut self.g.forged);
        Ok(decide(&results, &self.cfg, &self.ours, forged))
    }
}
