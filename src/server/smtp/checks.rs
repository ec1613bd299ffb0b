//! The loop's side of checking mail from strangers (SPF, DKIM, DMARC,
//! ARC, iprev): one transaction's checks, from MAIL to the verdict.
//!
//! SPF starts at MAIL and iprev at connect, their lookups in the loop's
//! resolver while the client talks. At the end of DATA the spooled
//! message goes to a checks helper, which reads its header and body
//! hashes once; the key and DMARC lookups then run in parallel, the
//! signatures are checked on the helper (RSA up to 8192 bits is not
//! work for the loop), and the verdict is made here. The reply to DATA
//! waits for it; the loop does not. A deadline turns whatever is still
//! unanswered into `temperror`.

use std::io;
use std::sync::Arc as SyncArc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use log::{info, warn};

use crate::config::inbound::Inbound;
use crate::deliver::HeaderEdit;
use crate::inbound::read::{self, Prehash, Reading, ToCheck, Wanted};
use crate::inbound::verdict::{self, Disposition, Results};
use crate::proto::dkim::tags::Key;
use crate::proto::dkim::verify::Outcome;
use crate::proto::dmarc::psl::List;
use crate::proto::smtp::Envelope;
use crate::proto::spf::check::Check;
use crate::server::Server;
use crate::server::base::conn::Phase;
use crate::server::base::pool::Pool;
use crate::server::base::timer::Timer;
use crate::store::content::{Content, Stored};
use crate::util::logsafe::Quoted;

use super::check_state::{
    ArcState, DmarcLookup, End, Iprev, Spf, Stage, TxnChecks,
};

const LOG_TARGET: &str = "postling::server::checks";

/// How long the checks may take after the end of DATA: past it, what
/// is unanswered is `temperror` (the client waits up to 10 minutes for
/// its reply, RFC 5321 4.5.3.2.6).
pub const CHECKS_WAIT: Duration = Duration::from_secs(20);
/// Checks helpers.
const CHECKERS: usize = 1;

/// Where a message goes, and the header change that goes with it.
pub struct Placement {
    pub folder: &'static str,
    pub edit: Option<Box<HeaderEdit>>,
    /// The results, for the delivery's log line.
    pub summary: String,
}

impl Default for Placement {
    fn default() -> Placement {
        Placement {
            folder: "INBOX",
            edit: None,
            summary: String::new(),
        }
    }
}

/// Work for a checks helper.
pub enum Job {
    /// Read the message (its key names were not known on the loop).
    Read {
        key: (usize, u64),
        content: Content,
        trace: u64,
        ours: String,
        wanted: Wanted,
        now: i64,
    },
    /// Read the message and check its signatures with these keys.
    Check {
        key: (usize, u64),
        content: Content,
        /// Its body hashes so far, and its header: then the file is
        /// not read again.
        prehashed: Option<(Box<Prehash>, Vec<u8>)>,
        trace: u64,
        ours: String,
        wanted: Wanted,
        now: i64,
        keys: Vec<(String, Result<Key, Outcome>)>,
    },
    Verify {
        key: (usize, u64),
        items: Vec<(ToCheck, Result<Key, Outcome>)>,
    },
}

/// What a helper did.
pub enum Done {
    Read {
        key: (usize, u64),
        content: Content,
        reading: io::Result<Reading>,
    },
    Verify {
        key: (usize, u64),
        outcomes: Vec<Outcome>,
    },
    Checked {
        key: (usize, u64),
        content: Content,
        reading: io::Result<Reading>,
        outcomes: Vec<Outcome>,
    },
}

fn work(jobs: Vec<Job>) -> Vec<Done> {
    jobs.into_iter().map(guarded_work).collect()
}

fn guarded_work(job: Job) -> Done {
    match job {
        Job::Read {
            key,
            mut content,
            trace,
            ours,
            wanted,
            now,
        } => {
            let reading =
                guarded_read(&mut content, trace, &ours, wanted, now);
            Done::Read {
                key,
                content,
                reading,
            }
        }
        Job::Check {
            key,
            mut content,
            prehashed,
            trace,
            ours,
            wanted,
            now,
            keys,
        } => {
            let reading = match prehashed {
                None => guarded_read(&mut content, trace, &ours, wanted, now),
                Some((prehash, head)) => {
                    let tail = match &content.stored {
                        Stored::File { tail, .. } => tail.as_slice(),
                        Stored::Memory(_) => &[],
                    };
                    crate::util::contain::guarded(
                        || "checks helper: reading".to_string(),
                        || {
                            read::read_prehashed(
                                &head, trace, *prehash, tail, &ours, wanted,
                                now,
                            )
                        },
                    )
                    .ok_or_else(|| io::Error::other("internal error"))
                }
            };
            let outcomes = match &reading {
                Ok(r) => crate::util::contain::guarded(
                    || "checks helper: verifying".to_string(),
                    || check_with(r, &keys),
                )
                .unwrap_or_default(),
                Err(_) => Vec::new(),
            };
            Done::Checked {
                key,
                content,
                reading,
                outcomes,
            }
        }
        Job::Verify { key, items } => {
            let n = items.len();
            let outcomes = crate::util::contain::guarded(
                || "checks helper: verifying".to_string(),
                || read::check_all(items),
            )
            .unwrap_or_else(|| vec![Outcome::TempError("internal error"); n]);
            Done::Verify { key, outcomes }
        }
    }
}

fn guarded_read(
    content: &mut Content,
    trace: u64,
    ours: &str,
    wanted: Wanted,
    now: i64,
) -> io::Result<Reading> {
    crate::util::contain::guarded(
        || "checks helper: reading".to_string(),
        || read::read(content, trace, ours, wanted, now),
    )
    .unwrap_or_else(|| Err(io::Error::other("internal error")))
}

/// Each signature read, checked with the key of its name.
fn check_with(
    reading: &Reading,
    keys: &[(String, Result<Key, Outcome>)],
) -> Vec<Outcome> {
    let missing = Err(Outcome::TempError("key not looked up"));
    reading
        .items()
        .map(|c| {
            let name = c.sig.key_name();
            let key = keys
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(&missing, |(_, k)| k);
            read::check_one(c, key)
        })
        .collect()
}

/// The checks' state in the loop: settings, the Public Suffix List,
/// the helpers.
pub struct Checking {
    pub cfg: Inbound,
    pub psl: List,
    pool: Pool<Job, Done>,
    serial: u64,
}

impl Checking {
    /// Loads the Public Suffix List and starts the helpers.
    pub fn start(
        cfg: &Inbound,
        waker: SyncArc<mio::Waker>,
    ) -> io::Result<Checking> {
        let psl = match std::fs::read_to_string(&cfg.public_suffix_list) {
            Ok(text) => List::parse(&text),
            Err(e) => {
                if cfg.checks.dmarc {
                    warn!(target: LOG_TARGET,
                        "public_suffix_list {}: {e}; organizational domains fall back to the last two labels",
                        cfg.public_suffix_list.display()
                    );
                }
                List::parse("")
            }
        };
        Ok(Checking {
            cfg: cfg.clone(),
            psl,
            pool: Pool::start("checks", CHECKERS, 4, waker, work)?,
            serial: 0,
        })
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Server {
    /// True if a message's client is checked: a stranger, or a logged-in
    /// user (whose message gets `auth=pass`); not `trusted_networks` nor
    /// the local socket.
    pub(in crate::server) fn checks_wanted(
        &self,
        envelope: &Envelope,
    ) -> bool {
        let Some(checking) = &self.smtp.checking else {
            return false;
        };
        checking.cfg.checks.any()
            && envelope.local_uid.is_none()
            && (envelope.user.is_some()
                || !self.services.config.is_trusted(envelope.peer))
    }

    /// After input: a stranger's new transaction starts its SPF check.
    pub(in crate::server) fn watch_transaction(&mut self, slot: usize) {
        let Some(checking) = &mut self.smtp.checking else {
            return;
        };
        let spf_on = checking.cfg.checks.spf;
        let hostname = &self.services.config.hostname;
        let Some(conn) = self.core.conn_mut(slot) else {
            return;
        };
        let Some(s) = conn.session.as_smtp() else {
            return;
        };
        if !s.smtp.is_stranger() {
            return;
        }
        let Some((id, from)) = s.smtp.transaction() else {
            return;
        };
        if s.checks.txn.as_ref().is_some_and(|t| t.id == id) {
            return;
        }
        checking.serial += 1;
        let sender = from.to_string();
        let helo = s.smtp.helo().to_string();
        // %{p}: iprev's name, if it passed by now (it starts at connect).
        let validated = match &s.checks.iprev {
            Iprev::Done(v) if v.result == "pass" => v.name.clone(),
            _ => None,
        };
        let spf = match spf_on {
            false => Spf::Off,
            true => {
                let check = Check::new(
                    s.smtp.peer(),
                    &sender,
                    &helo,
                    hostname,
                    unix_now(),
                )
                .validated(validated);
                let by_helo = sender.is_empty();
                let domain = match by_helo {
                    true => helo.clone(),
                    false => sender
                        .rsplit_once('@')
                        .map_or(sender.clone(), |(_, d)| d.to_string()),
                };
                Spf::Running {
                    check: Box::new(check),
                    identity: if by_helo { helo } else { sender },
                    helo: by_helo,
                    domain: domain.to_ascii_lowercase(),
                }
            }
        };
        s.checks.txn = Some(Box::new(TxnChecks {
            serial: checking.serial,
            id: id.to_string(),
            spf,
            end: None,
        }));
        self.spf_drive(slot);
    }

    /// The end of DATA: the message goes to a helper to be read.
    pub(in crate::server) fn start_checks(
        &mut self,
        slot: usize,
        envelope: Envelope,
    ) {
        self.watch_transaction(slot);
        let ours = self.services.config.hostname.clone();
        let Some(generation) = self.core.conn(slot).map(|c| c.generation)
        else {
            return;
        };
        let key = (slot, generation);
        self.core
            .timers
            .add(Instant::now() + CHECKS_WAIT, Timer::Checks, key);
        let Some(conn) = self.core.conn_mut(slot) else {
            return;
        };
        let Some(s) = conn.session.as_smtp() else {
            return;
        };
        let stranger = envelope.user.is_none();
        let trace = s.spool.trace();
        let head = s.spool.take_head();
        let prehash = s.spool.take_prehash();
        let content = match s.spool.take() {
            Ok(c) => c,
            Err(f) => {
                return self.store(
                    slot,
                    envelope,
                    Err(f),
                    Placement::default(),
                );
            }
        };
        let Some(checking) = &self.smtp.checking else {
            // Never so: submit checks only when checking is on.
            return self.store(
                slot,
                envelope,
                Ok(content),
                Placement::default(),
            );
        };
        let on = checking.cfg.checks;
        let wanted = Wanted {
            dkim: stranger && on.dkim,
            arc: stranger && on.arc,
        };
        // The names to look up, from the header on the loop (cheap and
        // capped): then the helper reads and checks in one trip.
        let preview = match &content.stored {
            Stored::Memory(bytes) => {
                read::preview(bytes, trace.0 as usize, wanted)
            }
            Stored::File { .. } => {
                read::preview(&head, trace.0 as usize, wanted)
            }
        };
        // A spooled message hashed as it was written: its header is all
        // the helper reads. (Hashed only for strangers; a logged-in
        // user's is read for its forged fields alone.)
        let prehashed = match (&content.stored, prehash) {
            (Stored::File { .. }, Some(p)) if stranger => Some((p, head)),
            _ => None,
        };
        // A logged-in user's message: only the Authentication-Results.
        let txn = s.checks.txn.get_or_insert_with(|| {
            Box::new(TxnChecks {
                serial: 0,
                id: envelope.id.clone(),
                spf: Spf::Off,
                end: None,
            })
        });
        let mut end = Box::new(End {
            envelope: Box::new(envelope),
            content: None,
            trace,
            wanted,
            from: Err("not read"),
            forged: Vec::new(),
            items: Vec::new(),
            item_keys: Vec::new(),
            keys: Vec::new(),
            dkim: Vec::new(),
            arc: None,
            dmarc: DmarcLookup::Off,
            outcomes: None,
            stage: Stage::Reading,
            prehashed,
            unread: false,
            late: false,
        });
        let Some(preview) = preview else {
            txn.end = Some(end);
            checking.pool.send(Job::Read {
                key,
                content,
                trace: trace.0,
                ours,
                wanted,
                now: unix_now(),
            });
            return;
        };
        end.keys = preview.keys.into_iter().map(|n| (n, None)).collect();
        end.from = preview.from;
        if stranger
            && on.dmarc
            && let Ok(from) = &end.from
        {
            end.dmarc = DmarcLookup::Asking(from.clone());
        }
        end.content = Some(content);
        end.unread = true;
        txn.end = Some(end);
        self.ask_and_progress(key);
    }

    /// Results from the checks helpers.
    pub(in crate::server) fn finish_checks(&mut self) {
        let Some(checking) = &self.smtp.checking else {
            return;
        };
        let done: Vec<Done> = checking.pool.finished().collect();
        for d in done {
            match d {
                Done::Read {
                    key,
                    content,
                    reading,
                } => self.message_read(key, content, reading),
                Done::Checked {
                    key,
                    content,
                    reading,
                    outcomes,
                } => self.message_checked(key, content, reading, outcomes),
                Done::Verify { key, outcomes } => {
                    if let Some(end) = self.end_of(key) {
                        end.outcomes = Some(outcomes);
                        end.stage = Stage::Deciding;
                    }
                    self.checks_progress(key);
                }
            }
        }
    }

    /// The transaction's end-of-DATA state, if its connection is the
    /// same one.
    pub(in crate::server) fn end_of(
        &mut self,
        (slot, generation): (usize, u64),
    ) -> Option<&mut End> {
        let conn = self.live_conn(slot, generation)?;
        let s = conn.session.as_smtp()?;
        s.checks.txn.as_mut()?.end.as_deref_mut()
    }

    /// The helper read the message: its lookups start.
    fn message_read(
        &mut self,
        key: (usize, u64),
        content: Content,
        reading: io::Result<Reading>,
    ) {
        let Some(end) = self.end_of(key) else {
            return; // the client left: the content goes
        };
        end.content = Some(content);
        let reading = match reading {
            Ok(r) => r,
            Err(e) => return self.unreadable(key, e),
        };
        absorb(end, reading);
        // Each key record name once.
        for item in &end.items {
            let name = item.sig.key_name();
            let at = match end.keys.iter().position(|(n, _)| *n == name) {
                Some(i) => i,
                None => {
                    end.keys.push((name, None));
                    end.keys.len() - 1
                }
            };
            end.item_keys.push(at);
        }
        let dmarc_on = self
            .smtp
            .checking
            .as_ref()
            .is_some_and(|c| c.cfg.checks.dmarc);
        let Some(end) = self.end_of(key) else {
            return;
        };
        if end.envelope.user.is_none()
            && dmarc_on
            && let Ok(from) = &end.from
        {
            end.dmarc = DmarcLookup::Asking(from.clone());
        }
        self.ask_and_progress(key);
    }

    /// The helper read the message and checked its signatures.
    fn message_checked(
        &mut self,
        key: (usize, u64),
        content: Content,
        reading: io::Result<Reading>,
        outcomes: Vec<Outcome>,
    ) {
        let Some(end) = self.end_of(key) else {
            return;
        };
        end.content = Some(content);
        let reading = match reading {
            Ok(r) => r,
            Err(e) => return self.unreadable(key, e),
        };
        absorb(end, reading);
        end.outcomes = Some(outcomes);
        end.stage = Stage::Deciding;
        self.checks_progress(key);
    }

    /// The message could not be read: decided with what there is, its
    /// signatures unchecked.
    fn unreadable(&mut self, key: (usize, u64), e: io::Error) {
        if let Some(end) = self.end_of(key) {
            warn!(target: LOG_TARGET, "id={} reading the message for its checks: {e}", end.envelope.id);
            end.stage = Stage::Deciding;
            end.outcomes = Some(Vec::new());
        }
        self.checks_progress(key);
    }

    /// Asks every key and the DMARC record, then goes as far as the
    /// answers (some from the cache at once) allow.
    fn ask_and_progress(&mut self, key: (usize, u64)) {
        if let Some(end) = self.end_of(key) {
            end.stage = Stage::Asking;
        }
        self.start_lookups(key);
        if let Some(end) = self.end_of(key)
            && end.stage == Stage::Asking
        {
            end.stage = Stage::Looking;
        }
        self.checks_progress(key);
    }

    /// The deadline passed: what is unanswered is `temperror`.
    pub(in crate::server) fn checks_due(&mut self, key: (usize, u64)) {
        if let Some(end) = self.end_of(key) {
            end.late = true;
        }
        self.checks_progress(key);
    }

    /// Goes as far as the answers in allow: checks the signatures once
    /// every key is in, decides once everything is.
    pub(in crate::server) fn checks_progress(&mut self, key: (usize, u64)) {
        let (slot, _) = key;
        let Some(conn) = self.live_conn(key.0, key.1) else {
            return;
        };
        let Some(s) = conn.session.as_smtp() else {
            return;
        };
        let iprev_done = matches!(s.checks.iprev, Iprev::Done(_));
        let Some(txn) = s.checks.txn.as_mut() else {
            return;
        };
        let spf_done = !matches!(txn.spf, Spf::Running { .. });
        let Some(end) = txn.end.as_mut() else {
            return;
        };
        let late = end.late;
        match end.stage {
            Stage::Reading | Stage::Asking | Stage::Verifying => return,
            Stage::Looking => {
                let keys_in = end.keys.iter().all(|(_, k)| k.is_some());
                if !keys_in && !late {
                    return;
                }
                end.stage = Stage::Verifying;
                if end.unread {
                    return self.send_check(key);
                }
                let items = std::mem::take(&mut end.items);
                let pairs = items
                    .into_iter()
                    .zip(&end.item_keys)
                    .map(|(item, &k)| {
                        let key_found = end.keys[k].1.clone().unwrap_or(Err(
                            Outcome::TempError("key lookup timed out"),
                        ));
                        (item, key_found)
                    })
                    .collect();
                end.stage = Stage::Verifying;
                if let Some(checking) = &self.smtp.checking {
                    checking.pool.send(Job::Verify { key, items: pairs });
                }
                return;
            }
            Stage::Deciding => {}
        }
        let dmarc_done = !matches!(end.dmarc, DmarcLookup::Asking(_));
        let stranger = end.envelope.user.is_none();
        if stranger && !(late || (spf_done && dmarc_done && iprev_done)) {
            return;
        }
        self.decide(slot);
    }

    /// The keys are in: the message goes to the helper, to be read and
    /// its signatures checked.
    fn send_check(&mut self, key: (usize, u64)) {
        let ours = self.services.config.hostname.clone();
        let Some(checking) = &self.smtp.checking else {
            return;
        };
        let Some(end) = self
            .core
            .conn_mut(key.0)
            .filter(|c| c.generation == key.1)
            .and_then(|c| c.session.as_smtp())
            .and_then(|s| s.checks.txn.as_mut())
            .and_then(|t| t.end.as_deref_mut())
        else {
            return;
        };
        let Some(content) = end.content.take() else {
            return;
        };
        end.unread = false;
        let keys = end
            .keys
            .iter()
            .map(|(n, k)| {
                let k = k.clone().unwrap_or(Err(Outcome::TempError(
                    "key lookup timed out",
                )));
                (n.clone(), k)
            })
            .collect();
        checking.pool.send(Job::Check {
            key,
            content,
            prehashed: end.prehashed.take(),
            trace: end.trace.0,
            ours,
            wanted: end.wanted,
            now: unix_now(),
            keys,
        });
    }

    /// Everything is in (or late): the verdict, then the reply or the
    /// delivery.
    fn decide(&mut self, slot: usize) {
        let Some(checking) = &self.smtp.checking else {
            return;
        };
        let hostname = self.services.config.hostname.clone();
        let Some(conn) = self.core.conn_mut(slot) else {
            return;
        };
        let conn_id = conn.id;
        let Some(s) = conn.session.as_smtp() else {
            return;
        };
        let iprev = &s.checks.iprev;
        let Some(txn) = s.checks.txn.take() else {
            return;
        };
        let TxnChecks { spf, end, .. } = *txn;
        let Some(end) = end else {
            return;
        };
        let mut end = *end;
        let results = gather(checking, &mut end, spf, iprev);
        let disposition = match &results.auth {
            Some(_) => Disposition::Inbox,
            None => results.decide(&checking.cfg),
        };
        let summary = summarize(&results, &disposition);
        let envelope = *end.envelope;
        if let Disposition::Reject(text) = &disposition {
            info!(target: LOG_TARGET,
                "conn={conn_id} id={} from={} ip={} result=rejected ({}){summary}",
                envelope.id,
                Quoted(&format!("<{}>", envelope.from)),
                envelope.peer,
                Quoted(text)
            );
            s.smtp.refused(550, "5.7.1", text, &mut conn.wbuf);
            conn.phase = Phase::Open;
            // The content (and its spool file) goes here.
            drop(end.content);
            return self.resume(slot);
        }
        let field = results.field(&hostname, &disposition);
        let Some(content) = end.content else {
            let lost = crate::proto::Failure::Transient(
                "checking: message lost".into(),
            );
            return self.store(
                slot,
                envelope,
                Err(lost),
                Placement::default(),
            );
        };
        let placement = Placement {
            folder: match disposition {
                Disposition::Junk(_) => "Junk",
                _ => "INBOX",
            },
            edit: Some(Box::new(HeaderEdit {
                at: end.trace.1,
                text: field.into_bytes(),
                remove: end.forged,
            })),
            summary,
        };
        self.store(slot, envelope, Ok(content), placement);
    }
}

/// Takes in what the helper read: the From domain, forged fields, and
/// each signature, listed as the loop tracks them.
fn absorb(end: &mut End, reading: Reading) {
    end.from = reading.from_domain;
    end.forged = reading.forged;
    for d in reading.dkim {
        match d {
            read::Dkim::Ready(c) => {
                let meta = verdict::Dkim {
                    outcome: Outcome::TempError("not checked"),
                    domain: Some(c.sig.domain.clone()),
                    selector: Some(c.sig.selector.clone()),
                    b: Some(c.sig.b_text.clone()),
                    length: c.sig.length.map(|l| (l, c.body_length)),
                };
                end.dkim.push((meta, Some(end.items.len())));
                end.items.push(*c);
            }
            read::Dkim::Broken(why, domain) => {
                let meta = verdict::Dkim {
                    outcome: Outcome::PermError(why),
                    domain,
                    selector: None,
                    b: None,
                    length: None,
                };
                end.dkim.push((meta, None));
            }
        }
    }
    if !end.wanted.arc {
        return;
    }
    end.arc = Some(match reading.arc {
        read::Arc::None => ArcState::Known(verdict::Arc {
            result: "none",
            reason: None,
            sealer: None,
        }),
        read::Arc::Broken(why) => ArcState::Known(verdict::Arc {
            result: "fail",
            reason: Some(why),
            sealer: None,
        }),
        read::Arc::Chain { message, seals } => {
            let newest = seals
                .first()
                .map(|s| (s.sig.domain.clone(), s.sig.instance));
            let first = end.items.len();
            end.items.push(*message);
            end.items.extend(seals);
            ArcState::Items {
                first,
                count: end.items.len() - first,
                sealer: newest.unwrap_or_default(),
            }
        }
    });
}

/// The results, from what was gathered; what is still unanswered (the
/// deadline passed) is `temperror`.
fn gather(
    checking: &Checking,
    end: &mut End,
    spf: Spf,
    iprev: &Iprev,
) -> Results {
    let mut results = Results {
        ip: Some(end.envelope.peer),
        ..Results::default()
    };
    if let Some(user) = &end.envelope.user {
        results.auth = Some(user.clone());
        return results;
    }
    let on = checking.cfg.checks;
    results.spf = match spf {
        Spf::Off => None,
        Spf::Done(s) => Some(s),
        Spf::Running {
            identity,
            helo,
            domain,
            ..
        } => Some(verdict::Spf {
            result: crate::proto::spf::check::SpfResult::TempError,
            identity,
            helo,
            domain,
        }),
    };
    if on.iprev {
        results.iprev = Some(match iprev {
            Iprev::Done(i) => i.clone(),
            _ => verdict::Iprev {
                result: "temperror",
                name: None,
            },
        });
    }
    let outcomes = end.outcomes.take().unwrap_or_default();
    let outcome = |i: usize| {
        outcomes
            .get(i)
            .copied()
            .unwrap_or(Outcome::TempError("not checked"))
    };
    if on.dkim {
        results.dkim = Some(
            end.dkim
                .drain(..)
                .map(|(mut meta, item)| {
                    if let Some(i) = item {
                        meta.outcome = outcome(i);
                    }
                    meta
                })
                .collect(),
        );
    }
    results.arc = end.arc.take().map(|a| match a {
        ArcState::Known(k) => k,
        ArcState::Items {
            first,
            count,
            sealer,
        } => arc_result((first..first + count).map(outcome), sealer),
    });
    if on.dmarc {
        results.dmarc = Some(super::checks_dns::dmarc_result(
            &checking.psl,
            end,
            &results,
        ));
    }
    results
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
        out.push_str(&format!(
            " dkim={}",
            if list.is_empty() {
                "none".to_string()
            } else {
                list.join(",")
            }
        ));
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
        out.push_str(&format!(
            " dis={}",
            match d {
                Disposition::Inbox => "inbox",
                Disposition::Junk(_) => "junk",
                Disposition::Reject(_) => "reject",
            }
        ));
    }
    out
}
