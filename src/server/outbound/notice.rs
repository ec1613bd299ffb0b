//! Notices we write ourselves (bounces and delay notices): delivered
//! like a message from `<>`, into the sender's mailbox when the sender
//! is ours, else into the outbound queue (and DKIM-signed there).

use std::sync::Arc;
use std::time::SystemTime;

use log::{error, info};

use crate::deliver::Job;
use crate::proto::smtp::{Host, RcptError, address};
use crate::server::Server;
use crate::server::base::writer::Task;
use crate::store::content::Content;
use crate::util::logsafe::Quoted;
use crate::util::{date, id};

/// Log lines keep the target they had before the file moved into its
/// folder: a log's format is an interface (filters, RUST_LOG).
const LOG_TARGET: &str = "postling::server::notice";

/// Helper results for notices carry this slot: no connection waits.
pub const NOTICE_SLOT: usize = usize::MAX;

impl Server {
    /// Delivers a notice to `to` (envelope sender `<>`).
    pub(in crate::server) fn send_notice(&mut self, to: &str, text: Vec<u8>) {
        let Ok(path) = address::parse_mailbox(to.as_bytes()) else {
            error!(target: LOG_TARGET, "notice to {}: not an address; dropped", Quoted(to));
            return;
        };
        // As a recipient of ours would be: a user, an alias (perhaps
        // forwarding), or the original sender behind an SRS address.
        let (mailboxes, relay) = match self.services.resolve(&path) {
            Ok(targets) => self
                .services
                .config
                .split_targets(targets.iter().map(String::as_str)),
            Err(RcptError::NotLocal) => (Vec::new(), vec![to.to_string()]),
            Err(e) => {
                error!(target: LOG_TARGET, "notice to {}: {e:?}; dropped", Quoted(to));
                return;
            }
        };
        let cfg = &self.services.config;
        let queue_id = id::queue_id();
        let now = SystemTime::now();
        let mut bytes = format!(
            "Return-Path: <>\nReceived: by {} (postling) id {queue_id};\n\t{}\n",
            cfg.hostname,
            date::rfc5322(now)
        )
        .into_bytes();
        bytes.extend_from_slice(&text);
        info!(target: LOG_TARGET,
            "id={queue_id} notice from=<> to={} size={}",
            Quoted(&format!("<{to}>")),
            bytes.len()
        );
        let job = Job {
            content: Content::in_memory(bytes, now),
            sender: String::new(),
            mailboxes,
            format: cfg.mailbox_format,
            relay,
            forward: None,
            queue_dir: cfg.queue_dir(),
            id: queue_id,
            dkim: Arc::clone(&self.services.dkim),
            // Our own notices, from MAILER-DAEMON.
            signing: crate::deliver::Signing::Any,
            folder: "INBOX",
            filed: Vec::new(),
            edit: None,
            sieve: None,
            quota: None,
        };
        self.core.next_id += 1;
        self.core.writer.send((
            Task::Deliver(Box::new(job)),
            (NOTICE_SLOT, self.core.next_id),
        ));
    }
}

impl Server {
    /// A notice is stored (or not).
    pub(in crate::server) fn notice_done(
        &mut self,
        finished: crate::server::base::writer::Finished,
    ) {
        use crate::server::base::writer::Finished;
        match finished {
            // It may have gone to the queue.
            Finished::Delivered(Ok(_)) => self.queue_run(),
            Finished::Delivered(Err(f)) => {
                error!(target: LOG_TARGET, "notice not stored: {f}")
            }
            Finished::Busy(job) => self.outbound.parked_notices.push(*job),
            // Notices are not checked.
            Finished::Updated(_) | Finished::Scripted(_) => {}
        }
    }

    /// Notices that met a locked mailbox try again.
    pub(in crate::server) fn retry_notices(&mut self) {
        for job in std::mem::take(&mut self.outbound.parked_notices) {
            self.core.next_id += 1;
            self.core.writer.send((
                Task::Deliver(Box::new(job)),
                (NOTICE_SLOT, self.core.next_id),
            ));
        }
    }
}
