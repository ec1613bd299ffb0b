//! Notices a delivery sends its sender when a recipient's copy was not
//! stored after the dialog was over (a Sieve `reject`, a full mailbox):
//! a delivery status notification with the original's header.

use std::io::Read;
use std::time::SystemTime;

use super::Job;
use crate::outbound::dsn;
use crate::store::{self, StageError};

/// The failure notice for `rcpt`, with `reply` (`550 5.7.1 ...`).
pub fn failed(
    job: &Job,
    rcpt: &str,
    reply: &str,
    hostname: &str,
) -> Result<Vec<u8>, StageError> {
    let mut head = Vec::new();
    let read = job
        .content
        .reader()
        .and_then(|r| r.take(64 * 1024).read_to_end(&mut head));
    if let Err(e) = read {
        return Err(store::transient(
            "reading for a notice",
            std::path::Path::new(&job.id),
            e,
        )
        .into());
    }
    let (headers, _) = crate::sieve::message::split(&head);
    let entries = [dsn::Entry {
        rcpt: rcpt.to_string(),
        reply: reply.to_string(),
        remote: None,
    }];
    Ok(dsn::compose(&dsn::Report {
        kind: dsn::Kind::Failed,
        hostname,
        queue_id: &job.id,
        to: &job.sender,
        arrival: job.content.received,
        now: SystemTime::now(),
        retry_until: None,
        entries: &entries,
        headers,
    }))
}
