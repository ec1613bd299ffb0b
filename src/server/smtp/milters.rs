//! The loop's side of the milters: a message goes to the milter helpers
//! before it is stored (once the checks have had their say, so a milter
//! sees our Authentication-Results), and what they said is done here:
//! refused with their reply, dropped at their word (logged), or stored,
//! into every recipient's Junk if one quarantined it, with the changes
//! they made. Every message that arrives over SMTP or submission meets
//! them; the local `sendmail` socket's do not.

use std::sync::Arc;

use log::{info, warn};

use crate::config::milter::Milters;
use crate::proto::milter::conversation::Facts;
use crate::proto::smtp::Envelope;
use crate::server::Server;
use crate::server::base::conn::Phase;
use crate::server::base::pool::Pool;
use crate::store::content::Content;
use crate::util::logsafe::Quoted;

use super::check_state::Placement;
use super::milter_work::{self, Done, Job, Said};

const LOG_TARGET: &str = "postling::server::milters";
/// Milter helper threads: each talks to one milter about one message at
/// a time.
const HELPERS: usize = 4;

/// The milters and their helpers.
pub struct Milting {
    settings: Arc<Milters>,
    pool: Pool<Job, Done>,
}

impl Milting {
    /// Jobs waiting for the milter helpers.
    pub fn depth(&self) -> usize {
        self.pool.depth()
    }

    /// Starts the helpers, if any milter is set.
    pub fn start(
        settings: &Milters,
        waker: Arc<mio::Waker>,
    ) -> std::io::Result<Option<Milting>> {
        if settings.milters.is_empty() {
            return Ok(None);
        }
        Ok(Some(Milting {
            settings: Arc::new(settings.clone()),
            pool: Pool::start("milter", HELPERS, 1, waker, milter_work::work)?,
        }))
    }
}

impl Server {
    /// Hands a message to the milters if they have not seen it; false
    /// if it goes on to be stored now.
    pub(in crate::server) fn hand_to_milters(
        &mut self,
        slot: usize,
        envelope: Envelope,
        content: Content,
        placement: Placement,
    ) -> Result<(), Box<(Envelope, Content, Placement)>> {
        let give_back = |e, c, p| Err(Box::new((e, c, p)));
        let Some(milting) = &self.smtp.milters else {
            return give_back(envelope, content, placement);
        };
        if placement.milted || envelope.local_uid.is_some() {
            return give_back(envelope, content, placement);
        }
        let cfg = &self.services.config;
        let Some(conn) = self.core.conn_mut(slot) else {
            return Ok(());
        };
        let key = (slot, conn.generation);
        let Some(s) = conn.session.as_smtp() else {
            return Ok(());
        };
        let facts = Facts {
            hostname: cfg.hostname.clone(),
            client: (envelope.peer, 0),
            client_name: envelope.peer_name.clone(),
            helo: envelope.helo.clone(),
            queue_id: envelope.id.clone(),
            auth_user: envelope.user.clone(),
            tls: envelope
                .tls
                .as_ref()
                .map(|t| (t.version.clone(), t.cipher.clone())),
            sender: envelope.from.to_string(),
            rcpts: envelope.rcpts.iter().map(|r| r.path.to_string()).collect(),
        };
        let spool = cfg.spool_dir().join(format!("milter-{}", envelope.id));
        s.checks.milting = Some(Box::new((envelope, placement)));
        milting.pool.send(Job {
            key,
            facts,
            content,
            settings: Arc::clone(&milting.settings),
            spool,
        });
        Ok(())
    }

    /// Results from the milter helpers.
    pub(in crate::server) fn finish_milters(&mut self) {
        let Some(milting) = &self.smtp.milters else {
            return;
        };
        let done: Vec<Done> = milting.pool.finished().collect();
        for d in done {
            self.milted(d);
        }
    }

    fn milted(&mut self, done: Done) {
        let Done {
            key: (slot, generation),
            content,
            said,
            summary,
        } = done;
        let Some(conn) = self.live_conn(slot, generation) else {
            return; // the client left; the spool file goes with `content`
        };
        let conn_id = conn.id;
        let Some(s) = conn.session.as_smtp() else {
            return;
        };
        let Some(carried) = s.checks.milting.take() else {
            return;
        };
        let (envelope, mut placement) = *carried;
        placement.milted = true;
        placement.summary.push_str(&summary);
        let described = super::described(&envelope, envelope.peer);
        match said {
            Said::Refuse(code, text) => {
                info!(target: LOG_TARGET,
                    "conn={conn_id} id={} {described} result=rejected ({code} {}){}",
                    envelope.id, Quoted(&text), placement.summary);
                s.smtp.refused(code, "", &text, &mut conn.wbuf);
                conn.phase = Phase::Open;
                self.resume(slot);
            }
            Said::Discard(by) => {
                // The milter's call, not ours: said loudly.
                warn!(target: LOG_TARGET,
                    "conn={conn_id} id={} {described} result=discarded (by milter {by}){}",
                    envelope.id, placement.summary);
                s.smtp.delivered(&envelope.id, Ok(()), &mut conn.wbuf);
                conn.phase = Phase::Open;
                self.resume(slot);
            }
            Said::Deliver { quarantine } => {
                if let Some(why) = quarantine {
                    let why: String = why
                        .chars()
                        .filter(|c| !c.is_control() && *c != '"')
                        .collect();
                    let why = format!("reason=\"milter quarantine: {why}\"");
                    placement.filed = self.junk_for_all(&envelope, &why);
                }
                self.store(
                    slot,
                    envelope,
                    content.map_err(|e| {
                        crate::proto::Failure::Transient(format!(
                            "milter: {}",
                            e.kind()
                        ))
                    }),
                    placement,
                );
            }
        }
    }
}
