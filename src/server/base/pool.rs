//! A small pool of helper threads for work that must not run on the poll
//! loop (fsync, password hashing). Each helper takes whatever jobs are
//! waiting, up to a batch, runs them, sends the results back and wakes
//! the loop through the `mio::Waker`.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use mio::Waker;

/// Helper threads taking `J`s and giving back `R`s.
pub struct Pool<J, R> {
    jobs: Option<Sender<J>>,
    /// Jobs sent and not yet taken by a helper (for `status`).
    waiting: Arc<AtomicUsize>,
    done: Receiver<R>,
    threads: Vec<JoinHandle<()>>,
}

impl<J: Send + 'static, R: Send + 'static> Pool<J, R> {
    /// Starts `n` threads named `name-i`; each runs `work` on up to
    /// `batch` jobs at a time.
    pub fn start(
        name: &str,
        n: usize,
        batch: usize,
        waker: Arc<Waker>,
        work: fn(Vec<J>) -> Vec<R>,
    ) -> io::Result<Pool<J, R>> {
        let (jobs_tx, jobs_rx) = mpsc::channel::<J>();
        let (done_tx, done) = mpsc::channel();
        let jobs_rx = Arc::new(Mutex::new(jobs_rx));
        let waiting = Arc::new(AtomicUsize::new(0));
        let mut threads = Vec::new();
        for i in 0..n {
            let rx = Arc::clone(&jobs_rx);
            let taken = Arc::clone(&waiting);
            let tx = done_tx.clone();
            let waker = Arc::clone(&waker);
            threads.push(
                std::thread::Builder::new()
                    .name(format!("{name}-{i}"))
                    .spawn(move || {
                        while let Some(jobs) = next_batch(&rx, batch) {
                            taken.fetch_sub(jobs.len(), Ordering::Relaxed);
                            // Each module guards its own jobs, answering
                            // a failed one; this keeps the thread alive
                            // should one slip through.
                            let results = crate::util::contain::guarded(
                                || {
                                    "helper batch: its jobs go unanswered"
                                        .into()
                                },
                                || work(jobs),
                            );
                            for result in results.unwrap_or_default() {
                                let _ = tx.send(result);
                            }
                            let _ = waker.wake();
                        }
                    })?,
            );
        }
        Ok(Pool {
            jobs: Some(jobs_tx),
            waiting,
            done,
            threads,
        })
    }

    /// Queues a job.
    pub fn send(&self, job: J) {
        if let Some(tx) = &self.jobs {
            self.waiting.fetch_add(1, Ordering::Relaxed);
            // invariant: helpers only exit once `jobs` is dropped.
            let _ = tx.send(job);
        }
    }

    /// Jobs waiting for a helper now.
    pub fn depth(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Results ready now.
    pub fn finished(&self) -> impl Iterator<Item = R> + '_ {
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

/// Blocks for one job, then takes what else is waiting; None at stop.
fn next_batch<J>(jobs: &Mutex<Receiver<J>>, batch: usize) -> Option<Vec<J>> {
    let rx = jobs.lock().unwrap_or_else(|p| p.into_inner());
    let first = rx.recv().ok()?;
    let mut all = vec![first];
    while all.len() < batch {
        match rx.try_recv() {
            Ok(job) => all.push(job),
            Err(_) => break,
        }
    }
    Some(all)
}
