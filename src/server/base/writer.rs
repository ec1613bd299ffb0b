//! The durability helper threads. The poll loop never waits for a disk:
//! it sends each accepted message here, and a helper writes and fsyncs it
//! into every mailbox, then wakes the loop through a `mio::Waker`.
//!
//! Group commit: a helper takes every job waiting (up to [`BATCH`]),
//! writes each file and renames it into place, then flushes the file
//! system once for the whole batch (syncfs): one flush per batch on the
//! path to every `250`, where a file fsync and a folder fsync per message
//! cost two flushes each (20 ms a message on an SD card). Several helpers
//! flush at once, and the device merges concurrent flushes.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;

use mio::Waker;

use crate::deliver::{self, Job, Published};
use crate::proto::Failure;
use crate::server::base::pool::Pool;
use crate::store::StageError;
use crate::store::maildrop::{self, Snapshot};
use crate::util::contain::guarded;
use crate::util::fs::sync_filesystem;

/// Log lines keep the target they had before the file moved into its
/// folder: a log's format is an interface (filters, RUST_LOG).
const LOG_TARGET: &str = "postling::server::writer";

/// Jobs one helper commits together.
pub const BATCH: usize = 64;

/// Disk work for the helpers.
pub enum Task {
    /// Store an accepted message.
    Deliver(Box<Job>),
    /// Write a file whole, durably (the greylist, the screened clients),
    /// flushed with the batch.
    Save { path: PathBuf, bytes: Vec<u8> },
    /// Remove what arrived in these mailboxes' Junk before `cutoff`.
    ExpireJunk {
        roots: Vec<PathBuf>,
        format: crate::config::MailboxFormat,
        cutoff: std::time::SystemTime,
    },
    /// A ManageSieve command's work on a user's scripts.
    Script {
        root: PathBuf,
        op: crate::proto::managesieve::ScriptOp,
    },
    /// Apply a POP3 session's deletions and seen marks.
    Update {
        /// The maildrop as the session saw it.
        snapshot: Arc<Snapshot>,
        /// Indexes to delete.
        deleted: Vec<usize>,
        /// Indexes to mark seen.
        seen: Vec<usize>,
    },
}

/// What a helper did for the connection `key` that asked.
#[derive(Debug)]
pub struct Done {
    /// Which connection (slot and generation) is waiting.
    pub key: (usize, u64),
    /// The outcome, by kind of work.
    pub finished: Finished,
}

/// The outcome of one task.
#[derive(Debug)]
pub enum Finished {
    /// A message stored in every mailbox (and what else it made), or
    /// why not.
    Delivered(Result<crate::deliver::Made, Failure>),
    /// A mailbox was locked by another program and nothing was written:
    /// the job comes back to be sent again a little later.
    Busy(Box<Job>),
    /// A ManageSieve command's answer.
    Scripted(Vec<u8>),
    /// A POP3 session's UPDATE applied, or why not.
    Updated(Result<(), Failure>),
}

/// The durability helpers.
pub type Writer = Pool<(Task, (usize, u64)), Done>;

/// Starts `n` durability helpers.
pub fn start(n: usize, waker: Arc<Waker>) -> std::io::Result<Writer> {
    Pool::start("durable", n, BATCH, waker, run)
}

/// One batch: every file written and renamed into place, then one flush
/// of the file system; a job whose flush failed is withdrawn, so a client
/// told to retry never finds a copy already there. A job that met a
/// locked mbox goes back to the loop untouched.
fn run(batch: Vec<(Task, (usize, u64))>) -> Vec<Done> {
    let mut dirs: BTreeSet<PathBuf> = BTreeSet::new();
    // (key, an UPDATE rather than a delivery, what it made visible)
    let mut results = Vec::with_capacity(batch.len());
    let mut busy = Vec::new();
    for (task, key) in batch {
        let (update, result) = match task {
            Task::Deliver(mut job) => match guarded_delivery(&mut job) {
                Ok(p) => (Kind::Deliver, Ok(p)),
                Err(StageError::Failed(f)) => (Kind::Deliver, Err(f)),
                Err(StageError::Busy) => {
                    busy.push(Done {
                        key,
                        finished: Finished::Busy(job),
                    });
                    continue;
                }
            },
            // Written unflushed: the batch's one flush covers it, where
            // its own would be two more on an SD card every few seconds.
            Task::Save { path, bytes } => {
                match crate::util::fs::atomic_write_unflushed(&path, &bytes) {
                    Ok(()) => dirs.extend(path.parent().map(PathBuf::from)),
                    Err(e) => {
                        log::error!(target: LOG_TARGET, "writing {}: {e}", path.display())
                    }
                }
                continue;
            }
            Task::Script { root, op } => {
                let answer = guarded(
                    || "managesieve: internal error".into(),
                    || crate::sieve::manage::perform(&root, &op),
                )
                .unwrap_or_else(|| {
                    b"NO (TRYLATER) \"Internal error\"\r\n".to_vec()
                });
                busy.push(Done {
                    key,
                    finished: Finished::Scripted(answer),
                });
                continue;
            }
            Task::ExpireJunk {
                roots,
                format,
                cutoff,
            } => {
                expire_junk(&roots, format, cutoff);
                continue;
            }
            Task::Update {
                snapshot,
                deleted,
                seen,
            } => (
                Kind::Update,
                guarded(
                    || "POP3 update: internal error".into(),
                    || maildrop::update(&snapshot, &deleted, &seen),
                )
                .unwrap_or_else(|| Err(internal_error()))
                .map(|()| Published::default()),
            ),
        };
        if let Ok(p) = &result {
            dirs.extend(p.dirs.iter().cloned());
        }
        results.push((key, update, result));
    }
    let failed_dirs = flush(dirs);
    results
        .into_iter()
        .map(|(key, update, result)| {
            let result = match result {
                Ok(p) if p.dirs.iter().any(|d| failed_dirs.contains(d)) => {
                    p.withdraw();
                    Err(Failure::Transient("flush failed".into()))
                }
                Ok(p) => Ok(p.made),
                Err(f) => Err(f),
            };
            let finished = match update {
                Kind::Update => Finished::Updated(result.map(|_| ())),
                Kind::Deliver => Finished::Delivered(result),
            };
            Done { key, finished }
        })
        .chain(busy)
        .collect()
}

/// What a finished task was.
enum Kind {
    Update,
    Deliver,
}

/// [`finish_then_deliver`], a panic inside failing only this message:
/// the client gets 451 4.3.0 and sends it again later; nothing half
/// written was made visible (staged files are withdrawn or left in
/// tmp/, which start-up clears).
fn guarded_delivery(job: &mut Job) -> Result<Published, StageError> {
    let id = job.id.clone();
    guarded(
        || format!("delivery of id={id}"),
        || finish_then_deliver(job),
    )
    .unwrap_or_else(|| Err(StageError::Failed(internal_error())))
}

fn internal_error() -> Failure {
    Failure::Internal
}

/// Completes a spooled message's file, then delivers it.
fn finish_then_deliver(job: &mut Job) -> Result<Published, StageError> {
    job.content.finish().map_err(|e| {
        log::error!(target: LOG_TARGET, "spool: {e}");
        StageError::Failed(Failure::Transient(format!(
            "spooling: {}",
            e.kind()
        )))
    })?;
    if let Some(edit) = job.edit.take() {
        job.content.edit(edit.at, &edit.text, &edit.remove).map_err(|e| {
            log::error!(target: LOG_TARGET, "adding Authentication-Results: {e}");
            StageError::Failed(Failure::Transient(format!("spooling: {}", e.kind())))
        })?;
    }
    deliver::deliver(job)
}

/// Makes the batch durable: one flush of each file system its folders
/// are on (usually one). Returns the folders whose flush failed.
fn flush(dirs: BTreeSet<PathBuf>) -> Vec<PathBuf> {
    let mut by_device: Vec<(u64, Vec<PathBuf>)> = Vec::new();
    for dir in dirs {
        let dev = fs::metadata(&dir).map(|m| m.dev()).unwrap_or(0);
        match by_device.iter_mut().find(|(d, _)| *d == dev) {
            Some((_, list)) => list.push(dir),
            None => by_device.push((dev, vec![dir])),
        }
    }
    let mut failed = Vec::new();
    for (_, list) in by_device {
        if let Err(e) = sync_filesystem(&list[0]) {
            log::error!(target: LOG_TARGET, "flushing {}: {e}", list[0].display());
            failed.extend(list);
        }
    }
    failed
}

/// `junk_expire`'s round: each mailbox's old Junk removed, counted in
/// the log.
fn expire_junk(
    roots: &[PathBuf],
    format: crate::config::MailboxFormat,
    cutoff: std::time::SystemTime,
) {
    for root in roots {
        match crate::store::junk_expire::expire(root, format, cutoff) {
            Ok(0) => {}
            Ok(n) => log::info!(target: LOG_TARGET,
                "junk_expire: {n} message(s) removed from {}'s Junk", root.display()),
            Err(e) => log::warn!(target: LOG_TARGET,
                "junk_expire {}: {e}", root.display()),
        }
    }
}
