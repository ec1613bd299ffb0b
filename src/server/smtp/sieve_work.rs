//! What the delivery helpers need to run users' Sieve scripts on a
//! message: which user each local mailbox is and which recipient
//! reached it, how redirected copies are sent, and the global script.

use std::sync::Arc;

use crate::deliver;
use crate::proto::smtp::{Envelope, Route};
use crate::server::Server;
use crate::sieve::delivery::Work;

impl Server {
    /// The Sieve work for a message to local mailboxes (None: none).
    pub(in crate::server) fn sieve_work(
        &self,
        envelope: &Envelope,
    ) -> Option<Box<Work>> {
        let cfg = &self.services.config;
        let users: Vec<_> = deliver::local_mailboxes(envelope)
            .into_iter()
            .filter(|u| cfg.is_local_address(u))
            .map(|user| {
                let rcpt = envelope
                    .rcpts
                    .iter()
                    .find(|r| matches!(&r.route, Route::Local(b) if b.iter().any(|x| x == user)))
                    .map_or_else(|| user.to_string(), |r| r.path.to_string());
                (cfg.mailbox_dir(user), user.to_string(), rcpt)
            })
            .collect();
        if users.is_empty() {
            return None;
        }
        Some(Box::new(Work {
            before: cfg.filtering.sieve_before.clone(),
            users,
            directory: Arc::clone(&self.services.directory),
            redirect_sender: crate::server::outbound::forward_sender(
                cfg,
                &self.services.srs_secret,
                &envelope.from.to_string(),
            ),
            hostname: cfg.hostname.clone(),
            format: cfg.mailbox_format,
            scores: Vec::new(),
            reject_in_dialog: envelope.rcpts.len() == 1,
        }))
    }

    /// Each local mailbox's quota, for delivery to check and count.
    pub(in crate::server) fn quota_work(
        &self,
        envelope: &Envelope,
    ) -> Option<Box<crate::deliver::quotas::QuotaWork>> {
        let cfg = &self.services.config;
        let limits: Vec<_> = deliver::local_mailboxes(envelope)
            .into_iter()
            .filter(|u| cfg.is_local_address(u))
            .map(|user| {
                let limit =
                    self.services.directory.quota(user, cfg.filtering.quota);
                (cfg.mailbox_dir(user), user.to_string(), limit)
            })
            .collect();
        (!limits.is_empty()).then(|| {
            Box::new(crate::deliver::quotas::QuotaWork {
                limits,
                hostname: cfg.hostname.clone(),
                refuse_in_dialog: envelope.rcpts.len() == 1,
            })
        })
    }
}
