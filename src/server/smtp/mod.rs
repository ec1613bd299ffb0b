//! The loop's side of SMTP (port 25, submission and the local socket):
//! the spool a message arrives into, handing it to the durability
//! helpers (`base::writer`) that write it into every mailbox and flush
//! before the `250`, and what comes back from them.

pub mod blocklists;
pub mod check_state;
pub mod checks;
pub mod checks_dns;
pub mod filter;
pub mod greylist;
pub mod link_lists;
pub mod milter_work;
pub mod milters;
pub mod screen;
pub mod sieve_work;
pub mod spool;

use crate::server::base::stats::Event;
use std::sync::Arc;
use std::time::Instant;

use log::{info, warn};

use crate::deliver::{self, Job};
use crate::proto::Failure;
use crate::proto::smtp::{Envelope, Route};
use crate::server::base::conn::Phase;
use crate::server::base::timer::Timer;
use crate::server::base::writer::{Done, Finished, Task};
use crate::server::outbound::{self, notice};
use crate::server::session::InFlight;
use crate::server::{LOCK_RETRY, LOCK_WAIT, Server};
use crate::util::logsafe::Quoted;
use check_state::Placement;
use spool::SpoolWritten;

/// Spool helper threads: they write large messages arriving, so that a
/// card slow to take writes stalls only the sessions it is writing for.
const SPOOLERS: usize = 2;

/// SMTP's state in the loop.
pub struct SmtpState {
    /// Spool files, and the helpers that write them.
    pub(in crate::server::smtp) spool: std::rc::Rc<spool::SpoolConfig>,
    /// Checking mail from strangers, unless `inbound_checks = none`.
    pub(in crate::server) checking: Option<checks::Checking>,
    /// DNS blocklists, if any are set.
    pub(in crate::server) blocklists: Option<blocklists::Blocklists>,
    /// Clients that passed the checks before content.
    pub(in crate::server) passed: screen::Passed,
    /// Milters, if any are set.
    pub(in crate::server) milters: Option<milters::Milting>,
}

impl SmtpState {
    /// Jobs waiting for the SMTP side's helpers.
    pub(in crate::server) fn helper_depths(
        &self,
    ) -> Vec<(&'static str, usize)> {
        let mut depths = vec![("spool", self.spool.writers.depth())];
        if let Some(c) = &self.checking {
            depths.push(("checks", c.depth()));
        }
        if let Some(m) = &self.milters {
            depths.push(("milter", m.depth()));
        }
        depths
    }
}

impl SmtpState {
    /// Starts the spool helpers.
    pub(in crate::server) fn start(
        config: &crate::config::Config,
        waker: Arc<mio::Waker>,
    ) -> std::io::Result<SmtpState> {
        Ok(SmtpState {
            spool: std::rc::Rc::new(spool::SpoolConfig {
                dir: config.spool_dir(),
                hostname: config.hostname.clone(),
                writers: std::rc::Rc::new(spool::start(
                    SPOOLERS,
                    std::sync::Arc::clone(&waker),
                )?),
                checks: {
                    let on = config.inbound.checks;
                    on.any().then(|| {
                        let wanted = crate::inbound::read::Wanted {
                            dkim: on.dkim,
                            arc: on.arc,
                        };
                        (wanted, config.trusted_networks.clone())
                    })
                },
            }),
            // The checks helpers also run the learning filter.
            checking: match config.inbound.checks.any()
                || config.spam.spam_filter
            {
                true => Some(checks::Checking::start(
                    &config.inbound,
                    Arc::clone(&waker),
                )?),
                false => None,
            },
            blocklists: config
                .spam
                .any_list()
                .then(|| blocklists::Blocklists::new(&config.spam)),
            passed: screen::Passed::open(config),
            milters: milters::Milting::start(
                &config.milters,
                Arc::clone(&waker),
            )?,
        })
    }

    /// A new connection's spool (`key`: its slot and id).
    pub(in crate::server) fn spool_for(
        &self,
        key: (usize, u64),
    ) -> spool::Spool {
        spool::Spool::new(std::rc::Rc::clone(&self.spool), key)
    }
}

/// A transaction as its log lines describe it.
pub(in crate::server) fn described(
    envelope: &Envelope,
    peer: std::net::IpAddr,
) -> String {
    let rcpts: Vec<String> = envelope
        .rcpts
        .iter()
        .map(|r| format!("<{}>", r.path))
        .collect();
    format!(
        "from={} to={} size={} helo={} ip={peer}",
        Quoted(&format!("<{}>", envelope.from)),
        Quoted(&rcpts.join(",")),
        envelope.size,
        Quoted(&envelope.helo),
    )
}

/// Log lines keep the target they had when this was in `server/mod.rs`:
/// a log's format is an interface (filters, RUST_LOG).
const LOG_TARGET: &str = "postling::server";

impl Server {
    /// Counts refused SRS addresses against the client, as failed
    /// logins are; a client past the limit is told and dropped. True if
    /// it was.
    pub(in crate::server) fn srs_guessing(&mut self, slot: usize) -> bool {
        let refused = std::mem::take(&mut self.services.srs_refused);
        let Some(conn) = self.core.conn_mut(slot) else {
            return true;
        };
        let now = Instant::now();
        for _ in 0..refused {
            self.services.limiter.fail(conn.client, now);
        }
        if !self.services.limiter.blocked(conn.client, now) {
            return false;
        }
        warn!(target: LOG_TARGET,
            "conn={} ip={} locked out: too many invalid SRS addresses",
            conn.id, conn.peer
        );
        if let Some(s) = conn.session.as_smtp() {
            s.smtp.too_many_failures(&mut conn.wbuf);
        }
        conn.phase = Phase::Closing;
        self.flush(slot);
        true
    }

    /// A message is in: checked first if it came from a stranger (or
    /// a logged-in user, for its Authentication-Results), then stored.
    pub(in crate::server) fn submit(
        &mut self,
        slot: usize,
        envelope: Envelope,
    ) {
        let checked = self.checks_wanted(&envelope);
        let Some(conn) = self.core.conn_mut(slot) else {
            return;
        };
        let Some(smtp) = conn.session.as_smtp() else {
            return;
        };
        conn.phase = Phase::Delivering;
        if smtp.spool.is_writing() {
            // Its last piece is still being written: once it is.
            smtp.spooling = Some(Box::new(envelope));
            return;
        }
        if checked {
            return self.start_checks(slot, envelope);
        }
        let content = smtp.spool.take();
        self.store(slot, envelope, content, Placement::default());
    }

    /// Hands a message to the durability helpers, into `placement`'s
    /// folder with its header edit.
    pub(in crate::server) fn store(
        &mut self,
        slot: usize,
        envelope: Envelope,
        content: Result<crate::store::content::Content, Failure>,
        placement: Placement,
    ) {
        // The milters first, once: they may refuse, change or
        // quarantine it.
        let (envelope, content, placement) = match content {
            Ok(c) => {
                match self.hand_to_milters(slot, envelope, c, placement) {
                    Ok(()) => return,
                    Err(back) => {
                        let (e, c, p) = *back;
                        (e, Ok(c), p)
                    }
                }
            }
            Err(f) => (envelope, Err(f), placement),
        };
        let Some(conn) = self.core.conn_mut(slot) else {
            return;
        };
        let key = (slot, conn.generation);
        let Some(smtp) = conn.session.as_smtp() else {
            return;
        };
        let cfg = &self.services.config;
        // Distinct addresses are distinct folders: no duplicates here.
        // Alias targets in other domains are forwarded.
        let (mailboxes, forward) =
            cfg.split_targets(deliver::local_mailboxes(&envelope));
        let forward = (!forward.is_empty()).then(|| {
            Box::new(deliver::Forward {
                rcpts: forward,
                sender: outbound::forward_sender(
                    cfg,
                    &self.services.srs_secret,
                    &envelope.from.to_string(),
                ),
            })
        });
        let relay: Vec<String> = envelope
            .rcpts
            .iter()
            .filter(|r| r.route == Route::Relay)
            .map(|r| r.path.to_string())
            .collect();
        smtp.in_flight = Some(InFlight {
            id: envelope.id.clone(),
            summary: described(&envelope, conn.peer),
            checks: placement.summary,
            locked_until: None,
            parked: None,
            queued: [
                (!relay.is_empty()).then(|| envelope.id.clone()),
                forward.as_ref().map(|_| deliver::forward_id(&envelope.id)),
            ]
            .into_iter()
            .flatten()
            .collect(),
            // Where IMAP has each folder open, to tell it of the mail.
            mailboxes: mailboxes
                .iter()
                .map(|d| {
                    let fmt = cfg.mailbox_format;
                    crate::store::folders::place(d, placement.folder, fmt)
                })
                .collect(),
        });
        let content = match content {
            Ok(c) => c,
            Err(f) => {
                // Answered through the same path as a helper's result.
                return self.deliveries_done(vec![Done {
                    key,
                    finished: Finished::Delivered(Err(f)),
                }]);
            }
        };
        let job = Job {
            content,
            sender: envelope.from.to_string(),
            mailboxes,
            format: cfg.mailbox_format,
            relay,
            forward,
            queue_dir: cfg.queue_dir(),
            id: envelope.id.clone(),
            dkim: Arc::clone(&self.services.dkim),
            signing: self.signing_for(&envelope),
            folder: placement.folder,
            filed: placement.filed,
            edit: placement.edit,
            sieve: self.sieve_work(&envelope).map(|mut w| {
                w.scores = placement.scores;
                w
            }),
            quota: self.quota_work(&envelope),
        };
        self.learn_sent(&envelope, &job.content);
        let job = Box::new(job);
        let job = match placement.filtered || placement.folder != "INBOX" {
            true => job,
            false => match self.through_filter(key, &envelope, job) {
                Ok(()) => return,
                Err(job) => job,
            },
        };
        self.core.writer.send((Task::Deliver(job), key));
    }

    /// Whose From: addresses a submitted message may be signed for: a
    /// logged-in user's own, a local account's own (any for root and
    /// the server's account), any for `trusted_networks`.
    pub(in crate::server) fn signing_for(
        &self,
        envelope: &Envelope,
    ) -> deliver::Signing {
        let services = &self.services;
        if let Some(user) = &envelope.user {
            return deliver::Signing::User(
                Arc::clone(&services.directory),
                user.clone(),
            );
        }
        if let Some(uid) = envelope.local_uid {
            let server = rustix::process::getuid().as_raw();
            return match services.directory.senders.owned(uid, server) {
                None => deliver::Signing::Any,
                Some(own) => deliver::Signing::Addresses(own),
            };
        }
        match services.config.is_trusted(envelope.peer) {
            true => deliver::Signing::Any,
            false => deliver::Signing::Nobody,
        }
    }

    /// Spool pieces the helpers have written: the next piece goes out,
    /// reading resumes, and a message that waited for its last piece goes
    /// to the durability helpers.
    pub(in crate::server) fn finish_spool_writes(&mut self) {
        let written: Vec<SpoolWritten> =
            self.smtp.spool.writers.finished().collect();
        for SpoolWritten {
            key,
            path,
            result,
            prehash,
        } in written
        {
            let (slot, generation) = key;
            let Some(conn) = self.live_conn(slot, generation) else {
                // The client left meanwhile.
                let _ = std::fs::remove_file(path);
                continue;
            };
            if let Some(i) = conn.session.as_imap() {
                i.spool.written(path, result, prehash);
                if let Some(request) = i.appending.take() {
                    self.imap_request(slot, request);
                }
                self.drive(slot);
                continue;
            }
            let Some(smtp) = conn.session.as_smtp() else {
                continue;
            };
            smtp.spool.written(path, result, prehash);
            if let Some(envelope) = smtp.spooling.take() {
                self.submit(slot, *envelope);
            }
            self.drive(slot);
        }
    }

    pub(in crate::server) fn finish_deliveries(&mut self) {
        let done: Vec<Done> = self.core.writer.finished().collect();
        self.deliveries_done(done);
    }

    pub(in crate::server) fn deliveries_done(&mut self, done: Vec<Done>) {
        for Done {
            key: (slot, generation),
            finished,
        } in done
        {
            if slot == notice::NOTICE_SLOT {
                self.notice_done(finished);
                continue;
            }
            if let Some(user) = self.pop3.updated_orphan((slot, generation)) {
                self.services.pop3_locks.remove(&user);
                continue;
            }
            let waiting = self
                .core
                .conn(slot)
                .is_some_and(|c| c.generation == generation);
            if !waiting {
                continue;
            }
            match finished {
                Finished::Delivered(result) => self.stored(slot, result),
                Finished::Busy(job) => self.busy(slot, *job),
                Finished::Updated(result) => self.updated(slot, result),
                Finished::Scripted(answer) => self.scripted(slot, &answer),
            }
        }
    }

    /// A message met a mailbox another program holds: try again shortly,
    /// up to the lock wait, on whichever helper is free then.
    pub(in crate::server) fn busy(&mut self, slot: usize, job: Job) {
        let Some(conn) = self.core.conn_mut(slot) else {
            return;
        };
        let key = (slot, conn.generation);
        let Some(flight) =
            conn.session.as_smtp().and_then(|s| s.in_flight.as_mut())
        else {
            return;
        };
        let now = Instant::now();
        let until = *flight.locked_until.get_or_insert(now + LOCK_WAIT);
        if now < until {
            flight.parked = Some(job);
            self.core
                .timers
                .add(now + LOCK_RETRY, Timer::LockRetry, key);
            return;
        }
        let locked = Failure::Transient("mailbox is locked".into());
        self.stored(slot, Err(locked));
    }

    /// A message is stored everywhere, or not at all: the final reply.
    pub(in crate::server) fn stored(
        &mut self,
        slot: usize,
        result: Result<deliver::Made, Failure>,
    ) {
        let Some(conn) = self.core.conn_mut(slot) else {
            return;
        };
        let Some(s) = conn.session.as_smtp() else {
            return;
        };
        let Some(flight) = s.in_flight.take() else {
            return;
        };
        match &result {
            Ok(_) => info!(target: LOG_TARGET,
                "conn={} id={} {} result=delivered{}",
                conn.id, flight.id, flight.summary, flight.checks
            ),
            Err(Failure::Refused(_)) => info!(target: LOG_TARGET,
                "conn={} id={} {} result=rejected (sieve){}",
                conn.id, flight.id, flight.summary, flight.checks
            ),
            Err(f) => warn!(target: LOG_TARGET,
                "conn={} id={} {} result=deferred ({f}){}",
                conn.id, flight.id, flight.summary, flight.checks
            ),
        }
        let made = match result {
            Ok(made) => made,
            Err(f) => {
                s.smtp.delivered(&flight.id, Err(f), &mut conn.wbuf);
                conn.phase = Phase::Open;
                return self.resume(slot);
            }
        };
        s.smtp.delivered(&flight.id, Ok(()), &mut conn.wbuf);
        conn.phase = Phase::Open;
        let now = Instant::now();
        let stats = &mut self.services.stats;
        stats.add(Event::Received, 1, now);
        stats.add(Event::Delivered, flight.mailboxes.len() as u64, now);
        self.queue_fresh(
            flight.queued.into_iter().chain(made.queued).collect(),
        );
        for dir in flight.mailboxes.iter().chain(&made.folders) {
            self.rescan(dir);
        }
        self.resume(slot);
    }

    /// Sends a delivery that met a locked mailbox back to the helpers,
    /// unless its client has left meanwhile (it was never told 250).
    pub(in crate::server) fn retry_locked(
        &mut self,
        (slot, generation): (usize, u64),
    ) {
        let job = self
            .live_conn(slot, generation)
            .and_then(|c| c.session.as_smtp())
            .and_then(|s| s.in_flight.as_mut())
            .and_then(|f| f.parked.take());
        if let Some(job) = job {
            self.core
                .writer
                .send((Task::Deliver(Box::new(job)), (slot, generation)));
        }
    }
}
