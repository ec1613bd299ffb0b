//! The loop's side of the learning filter at delivery: which messages
//! it reads (strangers' mail, for the local mailboxes it reaches), and
//! the hop through the checks helpers for a message the checks did not
//! already take there (checks off, or decided on the loop). With the
//! checks on, the filter runs inside the checks' own last step, so it
//! adds no hop of its own. Also what a user sends, as a lesson, and
//! `junk_expire`'s rounds.

use std::path::PathBuf;

use crate::deliver::{self, Job};
use crate::proto::smtp::Envelope;
use crate::server::Server;
use crate::server::base::writer::Task;

/// What the filter needs besides the message.
pub struct Filter {
    /// The local mailboxes the message goes to.
    pub mailboxes: Vec<PathBuf>,
    /// Our authserv-id, to find our own Authentication-Results.
    pub ours: String,
}

/// A message a user sent, to learn from.
pub struct Sent {
    /// The sender's mailbox root.
    root: PathBuf,
    /// The message (a spooled one's is not read again: only its
    /// recipients are learnt).
    msg: Vec<u8>,
    /// Its recipients.
    rcpts: Vec<String>,
}

impl Sent {
    /// On a checks helper.
    pub fn learn(&self) {
        if let Err(e) =
            crate::spam::filing::learn_sent(&self.root, &self.msg, &self.rcpts)
        {
            log::warn!(
                "spam filter of {}: not learnt: {e}",
                self.root.display()
            );
        }
    }
}

/// On a checks helper: the filter's filing of a delivery job.
pub fn run(job: &mut Job, filter: &Filter) -> String {
    let examined = crate::spam::filing::examine(
        &job.content,
        &filter.mailboxes,
        &filter.ours,
        None,
    );
    match examined {
        Ok(e) => {
            if let Some(sieve) = &mut job.sieve {
                sieve.scores = e.scores;
            }
            // A copy filed already (a milter's quarantine) stays so.
            for f in e.filed {
                if !job.filed.iter().any(|x| x.mailbox == f.mailbox) {
                    job.filed.push(f);
                }
            }
            e.summary
        }
        Err(e) => {
            // The filter is advice: without it the mail goes to INBOX.
            log::warn!("id={} spam filter: {e}", job.id);
            " filter=error".to_string()
        }
    }
}

impl Server {
    /// The filter's part in a message's delivery, if it has one: a
    /// stranger's mail (not logged in, not the local socket, not from
    /// `trusted_networks`) for local mailboxes, with `spam_filter` on.
    pub(in crate::server) fn filter_for(
        &self,
        envelope: &Envelope,
    ) -> Option<Filter> {
        let cfg = &self.services.config;
        let stranger = envelope.user.is_none()
            && envelope.local_uid.is_none()
            && !cfg.is_trusted(envelope.peer);
        if !(cfg.spam.spam_filter && stranger && self.smtp.checking.is_some())
        {
            return None;
        }
        let (mailboxes, _) =
            cfg.split_targets(deliver::local_mailboxes(envelope));
        (!mailboxes.is_empty()).then(|| Filter {
            mailboxes,
            ours: cfg.hostname.clone(),
        })
    }

    /// Every local mailbox's copy filed into Junk, saying `why` (a link
    /// list named a link, a milter quarantined it).
    pub(in crate::server) fn junk_for_all(
        &self,
        envelope: &Envelope,
        why: &str,
    ) -> Vec<crate::deliver::Filed> {
        let (mailboxes, _) = self
            .services
            .config
            .split_targets(deliver::local_mailboxes(envelope));
        mailboxes
            .into_iter()
            .map(|mailbox| crate::deliver::Filed {
                mailbox,
                folder: crate::store::folders::JUNK,
                header: deliver::spam_header(why),
            })
            .collect()
    }

    /// A logged-in user's message teaches their filter (with
    /// `spam_filter` on, and a mailbox of theirs here): on a helper,
    /// while it is delivered.
    pub(in crate::server) fn learn_sent(
        &self,
        envelope: &Envelope,
        content: &crate::store::content::Content,
    ) {
        let cfg = &self.services.config;
        let (Some(user), Some(checking)) =
            (&envelope.user, &self.smtp.checking)
        else {
            return;
        };
        if !cfg.spam.spam_filter || !cfg.is_local_address(user) {
            return;
        }
        let msg = match &content.stored {
            crate::store::content::Stored::Memory(bytes) => bytes.clone(),
            crate::store::content::Stored::File { .. } => Vec::new(),
        };
        let rcpts =
            envelope.rcpts.iter().map(|r| r.path.to_string()).collect();
        checking.send_sent(Box::new(Sent {
            root: cfg.mailbox_dir(user),
            msg,
            rcpts,
        }));
    }

    /// `junk_expire`: every user's Junk emptied of old mail, on a
    /// durability helper, now and every six hours.
    pub(in crate::server) fn expire_junk(&mut self) {
        const EVERY: std::time::Duration =
            std::time::Duration::from_secs(6 * 3600);
        let cfg = &self.services.config;
        if cfg.spam.junk_expire == 0 {
            return;
        }
        let roots = self
            .services
            .directory
            .users
            .addresses()
            .map(|a| cfg.mailbox_dir(a))
            .collect();
        let cutoff = std::time::SystemTime::now()
            .checked_sub(std::time::Duration::from_secs(cfg.spam.junk_expire));
        let Some(cutoff) = cutoff else {
            return; // longer than the clock goes back: nothing is that old
        };
        self.core.writer.send((
            Task::ExpireJunk {
                roots,
                format: cfg.mailbox_format,
                cutoff,
            },
            crate::server::base::timer::NOBODY,
        ));
        self.core.timers.add(
            std::time::Instant::now() + EVERY,
            crate::server::base::timer::Timer::JunkExpire,
            crate::server::base::timer::NOBODY,
        );
    }

    /// Sends a delivery job through the filter first; gives it back if
    /// it has none to go through (the caller stores it).
    pub(in crate::server) fn through_filter(
        &mut self,
        key: (usize, u64),
        envelope: &Envelope,
        job: Box<Job>,
    ) -> Result<(), Box<Job>> {
        let Some(filter) = self.filter_for(envelope) else {
            return Err(job);
        };
        match &self.smtp.checking {
            Some(checking) => {
                checking.send_filter(key, job, filter);
                Ok(())
            }
            None => Err(job),
        }
    }

    /// The filter filed a job: on to the durability helpers, the log
    /// line told, and IMAP told of the Junk folders it went into.
    pub(in crate::server) fn filtered(
        &mut self,
        (slot, generation): (usize, u64),
        job: Box<Job>,
        summary: String,
    ) {
        let format = self.services.config.mailbox_format;
        let Some(conn) = self.live_conn(slot, generation) else {
            return; // the client left; the spool file goes with `job`
        };
        if let Some(flight) =
            conn.session.as_smtp().and_then(|s| s.in_flight.as_mut())
        {
            flight.checks.push_str(&summary);
            for f in &job.filed {
                let place =
                    crate::store::folders::place(&f.mailbox, f.folder, format);
                flight.mailboxes.push(place);
            }
        }
        self.core
            .writer
            .send((Task::Deliver(job), (slot, generation)));
    }
}
