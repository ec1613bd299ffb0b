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
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use mio::Waker;

use crate::deliver::{self, Job};
use crate::proto::Failure;
use crate::store::maildrop::{self, Snapshot};
use crate::util::fs::sync_dir;

/// Jobs one helper commits together.
pub const BATCH: usize = 64;

/// Disk work for the helpers.
pub enum Task {
    /// Store an accepted message.
    Deliver(Job),
    /// Apply a POP3 session's deletions and seen marks.
    Update {
        /// The maildrop as the session saw it.
        snapshot: Box<Snapshot>,
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

/// The helper threads and their two channels.
pub struct Writer {
    jobs: Option<Sender<(Task, (usize, u64))>>,
    done: Receiver<Done>,
    threads: Vec<JoinHandle<()>>,
}

impl Writer {
    /// Starts `n` helpers that wake `waker` after each batch.
    pub fn start(n: usize, waker: Arc<Waker>) -> std::io::Result<Writer> {
        let (jobs_tx, jobs_rx) = mpsc::channel();
        let (done_tx, done) = mpsc::channel();
        let jobs_rx = Arc::new(Mutex::new(jobs_rx));
        let mut threads = Vec::new();
        for i in 0..n {
            let rx = Arc::clone(&jobs_rx);
            let tx = done_tx.clone();
            let waker = Arc::clone(&waker);
            threads.push(
                std::thread::Builder::new()
                    .name(format!("durable-{i}"))
                    .spawn(move || run(&rx, &tx, &waker))?,
            );
        }
        Ok(Writer {
            jobs: Some(jobs_tx),
            done,
            threads,
        })
    }

    /// Queues a task for connection `key`.
    pub fn send(&self, job: Task, key: (usize, u64)) {
        if let Some(tx) = &self.jobs {
            // invariant: helpers only exit once `jobs` is dropped.
            let _ = tx.send((job, key));
        }
    }

    /// Outcomes ready now.
    pub fn finished(&self) -> impl Iterator<Item = Done> + '_ {
        self.done.try_iter()
    }

    /// Lets the helpers finish what they have, then joins them.
    pub fn stop(mut self) {
        self.jobs = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

type Queue = Mutex<Receiver<(Task, (usize, u64))>>;

fn run(jobs: &Queue, done: &Sender<Done>, waker: &Waker) {
    while let Some(batch) = next_batch(jobs) {
        let mut dirs: BTreeSet<PathBuf> = BTreeSet::new();
        let mut results = Vec::with_capacity(batch.len());
        for (task, key) in &batch {
            let result = match task {
                Task::Deliver(job) => deliver::deliver(job),
                Task::Update {
                    snapshot,
                    deleted,
                    seen,
                } => maildrop::update(snapshot, deleted, seen)
                    .map(|()| BTreeSet::new()),
            };
            if let Ok(d) = &result {
                dirs.extend(d.iter().cloned());
            }
            results.push((*key, result));
        }
        let failed_dirs: Vec<PathBuf> =
            dirs.into_iter().filter(|d| sync_failed(d)).collect();
        for (key, result) in results {
            let result = result.and_then(|d| {
                match d.iter().find(|x| failed_dirs.contains(x)) {
                    Some(_) => Err(Failure::Transient("fsync failed".into())),
                    None => Ok(()),
                }
            });
            let _ = done.send(Done { key, result });
        }
        let _ = waker.wake();
    }
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

/// Blocks for one job, then takes what else is waiting; None at stop.
fn next_batch(jobs: &Queue) -> Option<Vec<(Task, (usize, u64))>> {
    let rx = jobs.lock().unwrap_or_else(|p| p.into_inner());
    let first = rx.recv().ok()?;
    let mut batch = vec![first];
    while batch.len() < BATCH {
        match rx.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
    Some(batch)
}
