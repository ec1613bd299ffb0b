//! Helper threads shared fairly between users: each user's jobs wait in
//! their own queue and the helpers serve the users in turn, one job at
//! a time. A long job is cut into slices: a slice that has done its
//! share hands the rest of the job back ([`Turn::Again`]) to wait at the
//! back of its user's queue. So another user's short job waits at most
//! for the slices already running, never for a whole SEARCH over a big
//! folder (Dovecot gets this from a process per user; we earn it here).

use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use mio::Waker;

/// What one turn at a job gave.
pub enum Turn<J, R> {
    /// The job is done.
    Done(R),
    /// A slice is done; the rest goes to the back of the user's queue.
    Again(J),
}

/// Jobs by user, and the order users are served in.
struct Queues<J> {
    by_user: HashMap<String, VecDeque<J>>,
    /// Users with jobs waiting, next first.
    turns: VecDeque<String>,
    stopping: bool,
}

impl<J> Queues<J> {
    fn push(&mut self, user: String, job: J) {
        let queue = self.by_user.entry(user.clone()).or_default();
        queue.push_back(job);
        if queue.len() == 1 {
            self.turns.push_back(user);
        }
    }

    fn pop(&mut self) -> Option<(String, J)> {
        let user = self.turns.pop_front()?;
        let queue = self.by_user.get_mut(&user)?;
        let job = queue.pop_front()?;
        if queue.is_empty() {
            self.by_user.remove(&user);
        } else {
            self.turns.push_back(user.clone());
        }
        Some((user, job))
    }
}

type Shared<J> = Arc<(Mutex<Queues<J>>, Condvar)>;

/// Helper threads taking `J`s per user and giving back `R`s.
pub struct FairPool<J, R> {
    shared: Shared<J>,
    done: Receiver<R>,
    threads: Vec<JoinHandle<()>>,
}

impl<J: Send + 'static, R: Send + 'static> FairPool<J, R> {
    /// Starts `n` threads named `name-i`, each running `work` on one job
    /// (or one slice of one) at a time.
    pub fn start(
        name: &str,
        n: usize,
        waker: Arc<Waker>,
        work: fn(J) -> Turn<J, R>,
    ) -> io::Result<FairPool<J, R>> {
        let shared: Shared<J> = Arc::new((
            Mutex::new(Queues {
                by_user: HashMap::new(),
                turns: VecDeque::new(),
                stopping: false,
            }),
            Condvar::new(),
        ));
        let (done_tx, done) = mpsc::channel();
        let mut threads = Vec::new();
        for i in 0..n {
            let shared = Arc::clone(&shared);
            let tx = done_tx.clone();
            let waker = Arc::clone(&waker);
            threads.push(
                std::thread::Builder::new()
                    .name(format!("{name}-{i}"))
                    .spawn(move || {
                        while let Some((user, job)) = next(&shared) {
                            match work(job) {
                                Turn::Done(r) => {
                                    let _ = tx.send(r);
                                    let _ = waker.wake();
                                }
                                Turn::Again(rest) => {
                                    let (lock, ready) = &*shared;
                                    let mut q = lock
                                        .lock()
                                        .unwrap_or_else(|p| p.into_inner());
                                    q.push(user, rest);
                                    ready.notify_one();
                                }
                            }
                        }
                    })?,
            );
        }
        Ok(FairPool {
            shared,
            done,
            threads,
        })
    }

    /// Queues a job of `user`'s (the empty name for the server's own).
    pub fn send(&self, user: &str, job: J) {
        let (lock, ready) = &*self.shared;
        let mut q = lock.lock().unwrap_or_else(|p| p.into_inner());
        q.push(user.to_string(), job);
        ready.notify_one();
    }

    /// Results ready now.
    pub fn finished(&self) -> impl Iterator<Item = R> + '_ {
        self.done.try_iter()
    }

    /// Lets the helpers finish what is queued, then joins them.
    pub fn stop(mut self) {
        {
            let (lock, ready) = &*self.shared;
            lock.lock().unwrap_or_else(|p| p.into_inner()).stopping = true;
            ready.notify_all();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Waits for the next user's next job; None once stopping and empty.
fn next<J>(shared: &Shared<J>) -> Option<(String, J)> {
    let (lock, ready) = &**shared;
    let mut q = lock.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        if let Some(found) = q.pop() {
            return Some(found);
        }
        if q.stopping {
            return None;
        }
        q = ready.wait(q).unwrap_or_else(|p| p.into_inner());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_served_in_turn() {
        let mut q = Queues {
            by_user: HashMap::new(),
            turns: VecDeque::new(),
            stopping: false,
        };
        for i in 0..3 {
            q.push("a".into(), i);
        }
        q.push("b".into(), 10);
        let order: Vec<(String, i32)> =
            std::iter::from_fn(|| q.pop()).collect();
        let users: Vec<&str> = order.iter().map(|(u, _)| u.as_str()).collect();
        assert_eq!(users, ["a", "b", "a", "a"]);
        // A slice handed back waits behind the other users' jobs.
        q.push("a".into(), 1);
        q.push("b".into(), 11);
        let (user, job) = q.pop().unwrap();
        q.push(user, job);
        assert_eq!(q.pop().map(|(u, _)| u), Some("b".into()));
        assert_eq!(q.pop().map(|(u, _)| u), Some("a".into()));
        assert!(q.pop().is_none());
    }
}
