//! The loop's side of checking mail from strangers (SPF, DKIM, DMARC,
//! ARC, iprev): one transaction's checks, from MAIL to the verdict.
//!
//! SPF starts at MAIL and iprev at connect, their lookups in the loop's
//! resolver while the client talks. At the end of DATA the loop reads
//! the key names and the From domain from the message's header (kept in
//! memory: cheap and capped) and asks for the keys and the DMARC record
//! in parallel. When every answer is in, the message goes to a checks
//! helper with all of it ([`Pending`]): the helper reads it (a spooled
//! one was hashed as it was written), checks its signatures (RSA up to
//! 8192 bits is not work for the loop), decides, and writes the verdict's
//! field into it; then it is stored as any message is, or refused. The
//! durability helpers only store: their batches (one flush each) are
//! not held up by the checks. A message whose header is past what was
//! kept is read by the checks helper first, and decided here. The reply
//! to DATA waits; the loop does not. A deadline turns whatever is still
//! unanswered into `temperror`.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use log::{info, warn};

use super::filter::Filter;
use crate::config::inbound::Inbound;
use crate::deliver::HeaderEdit;
use crate::inbound::assemble::{self, DmarcLookup, Gathered, Pending};
use crate::inbound::read::{self, Reading, ToCheck, Wanted};
use crate::inbound::verdict::{self, Disposition};
use crate::proto::dkim::key_cache::KeyCache;
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

use super::check_state::{End, Iprev, Placement, Spf, Stage, TxnChecks};

const LOG_TARGET: &str = "postling::server::checks";

/// How long the checks may take after the end of DATA: past it, what
/// is unanswered is `temperror` (the client waits up to 10 minutes for
/// its reply, RFC 5321 4.5.3.2.6).
pub const CHECKS_WAIT: Duration = Duration::from_secs(20);
/// Checks helpers: they read, check and decide messages (and read
/// first those whose header is past what the loop kept).
const CHECKERS: usize = 2;

/// Work for the checks helper: a message whose key names were not
/// known on the loop.
pub enum Job {
    Read {
        key: (usize, u64),
        content: Content,
        trace: u64,
        ours: String,
        wanted: Wanted,
        now: i64,
    },
    Verify {
        key: (usize, u64),
        items: Vec<(ToCheck, Result<Key, Outcome>)>,
    },
    /// Every lookup is in: read, check, decide, and write the verdict's
    /// field into the message; then the filter, if it has a say.
    Decide {
        key: (usize, u64),
        pending: Box<Pending>,
        envelope: Box<Envelope>,
        content: Content,
        filter: Option<Filter>,
        /// `uribl` lists are in use: the links' domains are wanted.
        links: bool,
    },
    /// The filter alone, for a message the checks did not bring here.
    Filter {
        key: (usize, u64),
        job: Box<crate::deliver::Job>,
        filter: Filter,
    },
    /// What a user sent, for their filter: ham, and people they write to.
    LearnSent(Box<super::filter::Sent>),
}

/// A message checked where it lies, its header already edited.
pub enum Verdict {
    Store {
        folder: &'static str,
        summary: String,
        /// Mailboxes the filter filed apart.
        filed: Vec<crate::deliver::Filed>,
        /// The From domain, if it passed DMARC.
        dmarc_pass: Option<String>,
        /// The registered domains of its links, for `uribl`.
        links: Vec<String>,
        /// The filter's probabilities, for Sieve's `spamtest`.
        scores: Vec<(std::path::PathBuf, f64)>,
    },
    Refuse {
        text: String,
        summary: String,
    },
}

/// What the helper did.
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
    Decided {
        key: (usize, u64),
        envelope: Box<Envelope>,
        content: Content,
        verdict: io::Result<Verdict>,
    },
    Filtered {
        key: (usize, u64),
        job: Box<crate::deliver::Job>,
        summary: String,
    },
    /// A lesson learnt (nobody waits for it).
    Learnt,
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
            let reading = crate::util::contain::guarded(
                || "checks helper: reading".to_string(),
                || read::read(&mut content, trace, &ours, wanted, now),
            )
            .unwrap_or_else(|| Err(io::Error::other("internal error")));
            Done::Read {
                key,
                content,
                reading,
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
        Job::Decide {
            key,
            pending,
            envelope,
            mut content,
            filter,
            links,
        } => {
            let verdict = crate::util::contain::guarded(
                || format!("checking id={}", envelope.id),
                || {
                    decide_and_edit(
                        *pending,
                        &mut content,
                        filter.as_ref(),
                        links,
                    )
                },
            )
            .unwrap_or_else(|| Err(io::Error::other("internal error")));
            Done::Decided {
                key,
                envelope,
                content,
                verdict,
            }
        }
        Job::Filter {
            key,
            mut job,
            filter,
        } => {
            let id = job.id.clone();
            let summary = crate::util::contain::guarded(
                || format!("filtering id={id}"),
                || super::filter::run(&mut job, &filter),
            )
            .unwrap_or_default();
            Done::Filtered { key, job, summary }
        }
        Job::LearnSent(sent) => {
            crate::util::contain::guarded(
                || "learning sent mail".to_string(),
                || sent.learn(),
            );
            Done::Learnt
        }
    }
}

/// The checks of a message whose lookups are all in; unless it is
/// refused, the verdict's field goes into it (forged ones out) here, so
/// the durability helpers only store it.
fn decide_and_edit(
    pending: Pending,
    content: &mut Content,
    filter: Option<&Filter>,
    links: bool,
) -> io::Result<Verdict> {
    let at = pending.trace.1;
    let psl = Arc::clone(&pending.psl);
    let mut decided = pending.run(content)?;
    let summary = std::mem::take(&mut decided.summary);
    if let Disposition::Reject(text) = decided.disposition {
        return Ok(Verdict::Refuse { text, summary });
    }
    let folder = decided.folder();
    let edit = HeaderEdit::of(decided, at);
    content.edit(edit.at, &edit.text, &edit.remove)?;
    let dmarc_pass = crate::spam::filing::dmarc_pass_domain(
        &String::from_utf8_lossy(&edit.text),
    );
    let mut summary = summary;
    let mut examined = crate::spam::filing::Examined::default();
    if folder == "INBOX" && (filter.is_some() || links) {
        let (mailboxes, ours) =
            filter.map_or((&[][..], ""), |f| (&f.mailboxes[..], &f.ours[..]));
        let psl = links.then_some(&*psl);
        match crate::spam::filing::examine(content, mailboxes, ours, psl) {
            Ok(e) => examined = e,
            // The filter is advice: without it the mail goes to INBOX.
            Err(e) => {
                log::warn!("spam filter: {e}");
                summary.push_str(" filter=error");
            }
        }
    }
    summary.push_str(&examined.summary);
    Ok(Verdict::Store {
        folder,
        summary,
        filed: examined.filed,
        dmarc_pass,
        links: examined.links,
        scores: examined.scores,
    })
}

/// The checks' state in the loop: settings, the Public Suffix List
/// (shared with the durability helpers), the checks helper.
pub struct Checking {
    pub cfg: Arc<Inbound>,
    pub psl: Arc<List>,
    pool: Pool<Job, Done>,
    serial: u64,
    /// Key records read on the loop, each once while kept.
    pub keys: KeyCache,
}

impl Checking {
    /// Jobs waiting for the checks helpers.
    pub fn depth(&self) -> usize {
        self.pool.depth()
    }

    /// The filter alone, for a message the checks did not bring here.
    pub fn send_filter(
        &self,
        key: (usize, u64),
        job: Box<crate::deliver::Job>,
        filter: Filter,
    ) {
        self.pool.send(Job::Filter { key, job, filter });
    }

    /// A sent message, for its sender's filter.
    pub fn send_sent(&self, sent: Box<super::filter::Sent>) {
        self.pool.send(Job::LearnSent(sent));
    }

    /// Loads the Public Suffix List and starts the helper.
    pub fn start(
        cfg: &Inbound,
        waker: Arc<mio::Waker>,
    ) -> io::Result<Checking> {
        // Only DMARC needs the list (about 1 MiB parsed): with the
        // checks off, the filter alone runs here.
        let text = match cfg.checks.dmarc {
            true => std::fs::read_to_string(&cfg.public_suffix_list),
            false => Ok(String::new()),
        };
        let psl = match text {
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
            cfg: Arc::new(cfg.clone()),
            psl: Arc::new(psl),
            pool: Pool::start("checks", CHECKERS, 1, waker, work)?,
            serial: 0,
            keys: KeyCache::default(),
        })
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// SPF's result as the verdict takes it: unfinished is `temperror`.
fn spf_result(spf: Spf) -> Option<verdict::Spf> {
    match spf {
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
    }
}

/// iprev's result as the verdict takes it: unfinished is `temperror`.
/// A transaction whose checks are over (`Server::checks_over`).
struct Over {
    generation: u64,
    end: Box<End>,
    spf: Option<verdict::Spf>,
    iprev: Option<verdict::Iprev>,
}

/// A message whose spooled content went missing on its way.
fn lost() -> crate::proto::Failure {
    crate::proto::Failure::Transient("checking: message lost".into())
}

fn iprev_result(iprev: &Iprev) -> Option<verdict::Iprev> {
    Some(match iprev {
        Iprev::Done(i) => i.clone(),
        _ => verdict::Iprev {
            result: "temperror",
            name: None,
        },
    })
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
        let vouch_for = match &spf {
            Spf::Running {
                helo: false,
                domain,
                ..
            } => Some(domain.clone()),
            _ => None,
        };
        let id = id.to_string();
        s.checks.txn = Some(Box::new(TxnChecks {
            serial: checking.serial,
            id: id.clone(),
            spf,
            end: None,
        }));
        if let Some(domain) = vouch_for {
            self.greylist_vouch(slot, &id, &domain);
        }
        self.spf_drive(slot);
    }

    /// The end of DATA: the names to look up, from the header; or, if
    /// it was not kept whole, the message goes to the helper to be read.
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
        // A spooled message hashed as it was written: its header was
        // read then, and the file is not read again. (Hashed only for
        // strangers; a logged-in user's is read for its forged fields
        // alone.)
        let prehashed = match (&content.stored, prehash) {
            (Stored::File { .. }, Some(p)) if stranger => Some(p),
            _ => None,
        };
        let preview = match (&content.stored, &prehashed) {
            (_, Some(p)) => Some(p.preview()),
            (Stored::Memory(bytes), None) => {
                read::preview(bytes, trace.0 as usize, wanted)
            }
            (Stored::File { .. }, None) => {
                read::preview(&head, trace.0 as usize, wanted)
            }
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
        let g = Gathered::new(envelope.peer, envelope.user.clone(), wanted);
        let mut end = Box::new(End {
            envelope: Box::new(envelope),
            content: None,
            trace,
            g,
            item_keys: Vec::new(),
            keys: Vec::new(),
            stage: Stage::Reading,
            prehashed,
            unread: false,
            late: false,
            deadline: Instant::now() + CHECKS_WAIT,
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
            self.checks_deadline(key);
            return;
        };
        end.keys = preview.keys.into_iter().map(|n| (n, None)).collect();
        end.g.from = preview.from;
        if stranger
            && on.dmarc
            && let Ok(from) = &end.g.from
        {
            end.g.dmarc = DmarcLookup::Asking(from.clone());
        }
        end.content = Some(content);
        end.unread = true;
        txn.end = Some(end);
        self.ask_and_progress(key);
        self.checks_deadline(key);
    }

    /// Checks still waiting for answers get a deadline; those the cache
    /// answered at once are gone already (no timer a message at load).
    fn checks_deadline(&mut self, key: (usize, u64)) {
        if let Some(at) = self.end_of(key).map(|e| e.deadline) {
            self.core.timers.add(at, Timer::Checks, key);
        }
    }

    /// Results from the checks helper.
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
                Done::Verify { key, outcomes } => {
                    if let Some(end) = self.end_of(key) {
                        end.g.outcomes = Some(outcomes);
                        end.stage = Stage::Deciding;
                    }
                    self.checks_progress(key);
                }
                Done::Decided {
                    key,
                    envelope,
                    content,
                    verdict,
                } => self.decided(key, *envelope, content, verdict),
                Done::Filtered { key, job, summary } => {
                    self.filtered(key, job, summary)
                }
                Done::Learnt => {}
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
        let dmarc_on = self
            .smtp
            .checking
            .as_ref()
            .is_some_and(|c| c.cfg.checks.dmarc);
        let Some(end) = self.end_of(key) else {
            return; // the client left: the content goes
        };
        end.content = Some(content);
        let reading = match reading {
            Ok(r) => r,
            Err(e) => {
                // Decided with what there is: its signatures unchecked.
                warn!(target: LOG_TARGET, "id={} reading the message for its checks: {e}", end.envelope.id);
                end.stage = Stage::Deciding;
                end.g.outcomes = Some(Vec::new());
                return self.checks_progress(key);
            }
        };
        end.g.absorb(reading);
        // Each key record name once.
        for item in &end.g.items {
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
        if end.envelope.user.is_none()
            && dmarc_on
            && let Ok(from) = &end.g.from
        {
            end.g.dmarc = DmarcLookup::Asking(from.clone());
        }
        self.ask_and_progress(key);
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
        // The timer may be an earlier message's, on the same connection.
        if let Some(end) = self.end_of(key)
            && Instant::now() >= end.deadline
        {
            end.late = true;
        }
        self.checks_progress(key);
    }

    /// Goes as far as the answers in allow: once every lookup is in,
    /// the message goes to be checked and stored (or, read already, its
    /// signatures to the helper, then the verdict here).
    pub(in crate::server) fn checks_progress(&mut self, key: (usize, u64)) {
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
        let stranger = end.envelope.user.is_none();
        let dmarc_done = !matches!(end.g.dmarc, DmarcLookup::Asking(_));
        let rest_in = !stranger || (spf_done && dmarc_done && iprev_done);
        let keys_in = end.keys.iter().all(|(_, k)| k.is_some());
        match end.stage {
            Stage::Reading | Stage::Asking | Stage::Verifying => {}
            Stage::Looking if end.unread => {
                if end.late || (keys_in && rest_in) {
                    self.hand_to_checker(key.0);
                }
            }
            Stage::Looking => {
                if keys_in || end.late {
                    end.stage = Stage::Verifying;
                    self.send_verify(key);
                }
            }
            Stage::Deciding => {
                if end.late || rest_in {
                    self.decide(key.0);
                }
            }
        }
    }

    /// A message read already: its signatures, with their keys, to the
    /// helper.
    fn send_verify(&mut self, key: (usize, u64)) {
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
        let items = std::mem::take(&mut end.g.items);
        let pairs = items
            .into_iter()
            .zip(&end.item_keys)
            .map(|(item, &k)| {
                let found = end.keys[k].1.clone();
                (
                    item,
                    found.unwrap_or(Err(Outcome::TempError(
                        "key lookup timed out",
                    ))),
                )
            })
            .collect();
        checking.pool.send(Job::Verify { key, items: pairs });
    }

    /// The transaction's checks are over: its end-of-DATA state, taken
    /// from the connection, with SPF's and iprev's results (what is
    /// still unanswered is `temperror`).
    fn checks_over(&mut self, slot: usize) -> Option<Over> {
        let conn = self.core.conn_mut(slot)?;
        let generation = conn.generation;
        let s = conn.session.as_smtp()?;
        let iprev = iprev_result(&s.checks.iprev);
        let TxnChecks { spf, end, .. } = *s.checks.txn.take()?;
        Some(Over {
            generation,
            end: end?,
            spf: spf_result(spf),
            iprev,
        })
    }

    /// Every lookup is in: the message goes to a checks helper, which
    /// reads it, checks it, decides and edits its header; then it is
    /// stored as any message is (or refused).
    fn hand_to_checker(&mut self, slot: usize) {
        let Some(checking) = &self.smtp.checking else {
            return;
        };
        let (cfg, psl) =
            (Arc::clone(&checking.cfg), Arc::clone(&checking.psl));
        let ours = self.services.config.hostname.clone();
        let Some(Over {
            generation,
            end,
            spf,
            iprev,
        }) = self.checks_over(slot)
        else {
            return;
        };
        let End {
            envelope,
            content,
            trace,
            g,
            keys,
            prehashed,
            ..
        } = *end;
        let keys = keys
            .into_iter()
            .map(|(n, k)| {
                (
                    n,
                    k.unwrap_or(Err(Outcome::TempError(
                        "key lookup timed out",
                    ))),
                )
            })
            .collect();
        let pending = Pending {
            g,
            cfg,
            psl,
            spf,
            iprev,
            ours,
            trace,
            now: unix_now(),
            keys,
            prehashed,
        };
        let Some(content) = content else {
            return self.store(
                slot,
                *envelope,
                Err(lost()),
                Placement::default(),
            );
        };
        let filter = self.filter_for(&envelope);
        let links = self.link_lists_in_use();
        if let Some(checking) = &self.smtp.checking {
            checking.pool.send(Job::Decide {
                key: (slot, generation),
                pending: Box::new(pending),
                envelope,
                content,
                filter,
                links,
            });
        }
    }

    /// A checks helper decided: the message is stored where the verdict
    /// says, or refused.
    fn decided(
        &mut self,
        (slot, generation): (usize, u64),
        envelope: Envelope,
        content: Content,
        verdict: io::Result<Verdict>,
    ) {
        if self.live_conn(slot, generation).is_none() {
            return; // the client left; the spool file goes with `content`
        }
        match verdict {
            Ok(Verdict::Refuse { text, summary }) => {
                let described = super::described(&envelope, envelope.peer);
                self.refuse_checked(
                    slot,
                    &envelope.id,
                    &described,
                    &text,
                    &summary,
                )
            }
            Ok(Verdict::Store {
                folder,
                summary,
                filed,
                dmarc_pass,
                links,
                scores,
            }) => {
                if let Some(domain) = dmarc_pass {
                    self.greylist_dmarc_passed(&domain);
                }
                let placement = Placement {
                    folder,
                    summary,
                    filed,
                    scores,
                    filtered: true,
                    ..Placement::default()
                };
                if !links.is_empty() {
                    return self.ask_link_lists(
                        (slot, generation),
                        envelope,
                        content,
                        placement,
                        links,
                    );
                }
                self.store(slot, envelope, Ok(content), placement)
            }
            Err(e) => {
                log::error!(target: LOG_TARGET,
                    "id={} reading the message for its checks: {e}", envelope.id);
                let f = crate::proto::Failure::Transient(format!(
                    "checking: {}",
                    e.kind()
                ));
                self.store(slot, envelope, Err(f), Placement::default())
            }
        }
    }

    /// A message read first: everything is in (or late), the verdict,
    /// then the reply or the delivery.
    fn decide(&mut self, slot: usize) {
        let Some(checking) = &self.smtp.checking else {
            return;
        };
        let (cfg, psl) =
            (Arc::clone(&checking.cfg), Arc::clone(&checking.psl));
        let hostname = self.services.config.hostname.clone();
        let Some(Over {
            end, spf, iprev, ..
        }) = self.checks_over(slot)
        else {
            return;
        };
        let mut end = *end;
        let results = end.g.results(&cfg, &psl, spf, iprev);
        let forged = std::mem::take(&mut end.g.forged);
        let decided = assemble::decide(&results, &cfg, &hostname, forged);
        let envelope = *end.envelope;
        if !matches!(decided.disposition, Disposition::Reject(_))
            && let Some(domain) =
                crate::spam::filing::dmarc_pass_domain(&decided.field)
        {
            self.greylist_dmarc_passed(&domain);
        }
        if let Disposition::Reject(text) = &decided.disposition {
            let described = super::described(&envelope, envelope.peer);
            return self.refuse_checked(
                slot,
                &envelope.id,
                &described,
                text,
                &decided.summary,
            );
        }
        let Some(content) = end.content else {
            return self.store(
                slot,
                envelope,
                Err(lost()),
                Placement::default(),
            );
        };
        self.store(
            slot,
            envelope,
            Ok(content),
            Placement::of(decided, end.trace.1),
        );
    }

    /// The verdict is 550 5.7.1: said and logged as deliveries are
    /// (`described`, then the results); the message (and its spool
    /// file) goes. Whether decided here or where it was to be stored.
    pub(in crate::server) fn refuse_checked(
        &mut self,
        slot: usize,
        id: &str,
        described: &str,
        text: &str,
        summary: &str,
    ) {
        let Some(conn) = self.core.conn_mut(slot) else {
            return;
        };
        info!(target: LOG_TARGET,
            "conn={} id={id} {described} result=rejected ({}){summary}",
            conn.id,
            Quoted(text)
        );
        if let Some(s) = conn.session.as_smtp() {
            s.smtp.refused(550, "5.7.1", text, &mut conn.wbuf);
        }
        conn.phase = Phase::Open;
        self.resume(slot);
    }
}
