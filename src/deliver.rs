//! Local delivery of one accepted message: the trace headers we prepend,
//! and the all-or-nothing write into every recipient mailbox.
//!
//! [`trace_headers`] runs on the poll loop (it is cheap); [`deliver`]
//! runs on a durability helper thread. Depends on `store`, `util`,
//! `proto`.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::SystemTime;

use crate::config::MailboxFormat;
use crate::proto::Failure;
use crate::proto::smtp::Envelope;
use crate::store::{self, Message, Staged};
use crate::util::date;

/// One message to store, as handed to the helper threads.
#[derive(Debug)]
pub struct Job {
    /// Trace headers, LF line ends.
    pub head: Vec<u8>,
    /// The message, LF line ends.
    pub body: Vec<u8>,
    /// Envelope sender, empty for `<>`.
    pub sender: String,
    /// When it arrived.
    pub received: SystemTime,
    /// Mailbox folders, each once.
    pub mailboxes: Vec<PathBuf>,
    /// How they are stored.
    pub format: MailboxFormat,
    /// Recipients in other domains, for the outbound queue.
    pub relay: Vec<String>,
    /// The outbound queue's folder.
    pub queue_dir: PathBuf,
    /// The queue id (the queue file's name).
    pub id: String,
}

/// The header block we prepend: Return-Path (RFC 5321 4.4), Delivered-To
/// and Received (RFC 5321 4.4, RFC 3848 protocol names).
///
/// With one mailbox, Received names the recipient (`for <...>`) and
/// Delivered-To is added. With several, one identical file is written
/// and hard-linked into each, so neither header can name a recipient
/// without showing it to the others (a Bcc leak).
pub fn trace_headers(
    env: &Envelope,
    hostname: &str,
    now: SystemTime,
    mailbox_count: usize,
) -> Vec<u8> {
    let mut h = String::with_capacity(256);
    h.push_str(&format!("Return-Path: <{}>\n", env.from));
    let single = (mailbox_count == 1 && env.rcpts.len() == 1)
        .then(|| env.rcpts[0].path.to_string());
    if let Some(rcpt) = &single {
        h.push_str(&format!("Delivered-To: {rcpt}\n"));
    }
    let ip = match env.peer {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("IPv6:{v6}"),
    };
    h.push_str(&format!(
        "Received: from {} ([{ip}])\n\tby {hostname} (postling) with {}",
        env.helo, env.protocol
    ));
    if let Some(tls) = &env.tls {
        h.push_str(&format!(" ({} {})", tls.version, tls.cipher));
    }
    h.push_str(&format!(" id {}", env.id));
    if let Some(rcpt) = &single {
        h.push_str(&format!("\n\tfor <{rcpt}>"));
    }
    h.push_str(&format!(";\n\t{}\n", date::rfc5322(now)));
    h.into_bytes()
}

/// Stores `job` in all its mailboxes (and the outbound queue), or in
/// none. Returns the folders
/// whose entries must still be fsync'd (batched by the caller).
pub fn deliver(job: &Job) -> Result<BTreeSet<PathBuf>, Failure> {
    let msg = Message {
        head: &job.head,
        body: &job.body,
        sender: &job.sender,
        received: job.received,
    };
    let mut staged: Vec<Staged> = Vec::with_capacity(job.mailboxes.len());
    // Sorted order: two helper threads locking the same mbox files can
    // never wait on each other in a cycle.
    let mut boxes: Vec<&PathBuf> = job.mailboxes.iter().collect();
    boxes.sort();
    for dir in boxes {
        let link = staged.first().and_then(Staged::link_source);
        match store::stage(job.format, dir, &msg, link) {
            Ok(s) => staged.push(s),
            Err(f) => {
                staged.into_iter().for_each(Staged::abort);
                return Err(f);
            }
        }
    }
    if !job.relay.is_empty() {
        match store::queue::stage(&job.queue_dir, &job.id, &job.relay, &msg) {
            Ok(s) => staged.push(Staged::Maildir(s)),
            Err(f) => {
                staged.into_iter().for_each(Staged::abort);
                return Err(f);
            }
        }
    }
    let mut dirs = BTreeSet::new();
    let mut failure = None;
    for s in staged {
        match s.commit() {
            Ok(Some(dir)) => {
                dirs.insert(dir);
            }
            Ok(None) => {}
            Err(f) => failure = Some(f),
        }
    }
    match failure {
        Some(f) => Err(f),
        None => Ok(dirs),
    }
}
