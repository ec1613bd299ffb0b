//! Notices we write ourselves (bounces and delay notices): delivered
//! like a message from `<>`, into the sender's mailbox when the sender
//! is ours, else into the outbound queue (and DKIM-signed there).

use std::sync::Arc;
use std::time::SystemTime;

use log::{error, info};

use super::Server;
use super::writer::Task;
use crate::deliver::Job;
use crate::proto::smtp::address;
use crate::store::content::Content;
use crate::util::{date, id};

/// Helper results for notices carry this slot: no connection waits.
pub const NOTICE_SLOT: usize = usize::MAX;

impl Server {
    /// Delivers a notice to `to` (envelope sender `<>`).
    pub(super) fn send_notice(&mut self, to: &str, text: Vec<u8>) {
        let cfg = &self.services.config;
        let Ok(path) = address::parse_mailbox(to.as_bytes()) else {
            error!("notice to {to:?}: not an address; dropped");
            return;
        };
        let (mailboxes, relay) = match self.services.directory.resolve(&path) {
            Ok(boxes) => (
                boxes.iter().map(|b| cfg.mailbox_dir(b)).collect(),
                Vec::new(),
            ),
            Err(_) if cfg.domains.iter().any(|d| d == path.domain()) => {
                error!("notice to <{to}>: no such local user; dropped");
                return;
            }
            Err(_) => (Vec::new(), vec![to.to_string()]),
        };
        let queue_id = id::queue_id();
        let now = SystemTime::now();
        let mut bytes = format!(
            "Return-Path: <>\nReceived: by {} (postling) id {queue_id};\n\t{}\n",
            cfg.hostname,
            date::rfc5322(now)
        )
        .into_bytes();
        bytes.extend_from_slice(&text);
        info!(
            "id={queue_id} notice from=<> to=<{to}> size={}",
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
        };
        self.next_id += 1;
        self.writer
            .send((Task::Deliver(job), (NOTICE_SLOT, self.next_id)));
    }
}

impl Server {
    /// A notice is stored (or not).
    pub(super) fn notice_done(&mut self, finished: super::writer::Finished) {
        use super::writer::Finished;
        match finished {
            // It may have gone to the queue.
            Finished::Delivered(Ok(())) => self.queue_run(),
            Finished::Delivered(Err(f)) => error!("notice not stored: {f}"),
            Finished::Busy(job) => self.outbound.parked_notices.push(*job),
            Finished::Updated(_) => {}
        }
    }

    /// Notices that met a locked mailbox try again.
    pub(super) fn retry_notices(&mut self) {
        for job in std::mem::take(&mut self.outbound.parked_notices) {
            self.next_id += 1;
            self.writer
                .send((Task::Deliver(job), (NOTICE_SLOT, self.next_id)));
        }
    }
}
