//! The durability helper threads. The poll loop never waits for a disk:
//! it sends each accepted message here, and a helper writes and fsyncs it
//! into every mailbox, then wakes the loop through a `mio::Waker`.
//!
//! Group commit: a helper takes every job waiting (up to [`BATCH`]),
//! writes and fsyncs each file, and then fsyncs each touched folder once
//! for the whole batch; under load, one folder fsync covers many
//! messages.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mio::Waker;

use super::pool::Pool;
use crate::deliver::{self, Job, Published};
use crate::proto::Failure;
use crate::store::lock;
use crate::store::maildrop::{self, Snapshot};
use crate::util::fs::sync_dir;

/// Jobs one helper commits together.
pub const BATCH: usize = 64;

/// Disk work for the helpers.
pub enum Task {
    /// Store an accepted message.
    Deliver(Job),
    /// Close a reader of an mbox file without dropping a lock another
    /// helper holds on it (see `store::lock::close_safely`).
    Release(std::fs::File, PathBuf),
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

/// A job's outcome, for the connection `key` that sent it.
#[derive(Debug)]
pub struct Done {
    /// Which connection (slot and generation) is waiting.
    pub key: (usize, u64),
    /// Stored in every mailbox, or why not.
    pub result: Result<(), Failure>,
}

/// The durability helpers.
pub type Writer = Pool<(Task, (usize, u64)), Done>;

/// Starts `n` durability helpers.
pub fn start(n: usize, waker: Arc<Waker>) -> std::io::Result<Writer> {
    Pool::start("durable", n, BATCH, waker, run)
}

/// One batch: every file written and fsync'd, then each touched folder
/// fsync'd once; a job whose folder failed its fsync is withdrawn, so a
/// client told to retry never finds a copy already there.
fn run(batch: Vec<(Task, (usize, u64))>) -> Vec<Done> {
    let mut dirs: BTreeSet<PathBuf> = BTreeSet::new();
    let mut results = Vec::with_capacity(batch.len());
    for (task, key) in batch {
        let result = match task {
            Task::Release(file, path) => {
                lock::close_safely(file, &path);
                continue;
            }
            Task::Deliver(job) => deliver::deliver(&job),
            Task::Update {
                snapshot,
                deleted,
                seen,
            } => maildrop::update(&snapshot, &deleted, &seen)
                .map(|()| Published::default()),
        };
        if let Ok(p) = &result {
            dirs.extend(p.dirs.iter().cloned());
        }
        results.push((key, result));
    }
    let failed_dirs: Vec<PathBuf> =
        dirs.into_iter().filter(|d| sync_failed(d)).collect();
    results
        .into_iter()
        .map(|(key, result)| {
            let result = match result {
                Ok(p) if p.dirs.iter().any(|d| failed_dirs.contains(d)) => {
                    p.withdraw();
                    Err(Failure::Transient("fsync failed".into()))
                }
                Ok(_) => Ok(()),
                Err(f) => Err(f),
            };
            Done { key, result }
        })
        .collect()
}

fn sync_failed(dir: &Path) -> bool {
    match sync_dir(dir) {
        Ok(()) => false,
        Err(e) => {
            log::error!("fsync {}: {e}", dir.display());
            true
        }
    }
}
