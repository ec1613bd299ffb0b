//! The password helper threads: hashing is slow on purpose (argon2 takes
//! tens of milliseconds), so checks run here and wake the loop when done.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use mio::Waker;

use crate::auth::password;

/// One login to check.
pub struct Check {
    /// The connection waiting (slot, generation).
    pub key: (usize, u64),
    /// The user name given.
    pub user: String,
    /// The password given.
    pub password: Vec<u8>,
    /// The stored hash, or None for an unknown user.
    pub stored: Option<String>,
    /// When the AUTH exchange finished, for the failure delay.
    pub started: Instant,
}

/// A checked login.
pub struct Checked {
    /// The connection waiting.
    pub key: (usize, u64),
    /// The user name given.
    pub user: String,
    /// True if the password matched.
    pub ok: bool,
    /// When the exchange finished.
    pub started: Instant,
}

/// The helper threads and their channels.
pub struct Logins {
    checks: Option<Sender<Check>>,
    done: Receiver<Checked>,
    threads: Vec<JoinHandle<()>>,
}

impl Logins {
    /// Starts `n` helpers that wake `waker` after each check.
    pub fn start(n: usize, waker: Arc<Waker>) -> std::io::Result<Logins> {
        let (tx, rx) = mpsc::channel::<Check>();
        let (done_tx, done) = mpsc::channel();
        let rx = Arc::new(Mutex::new(rx));
        let mut threads = Vec::new();
        for i in 0..n {
            let rx = Arc::clone(&rx);
            let done_tx = done_tx.clone();
            let waker = Arc::clone(&waker);
            threads.push(
                std::thread::Builder::new()
                    .name(format!("login-{i}"))
                    .spawn(move || {
                        loop {
                            let next = rx
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .recv();
                            let Ok(check) = next else { return };
                            let ok = password::verify(
                                check.stored.as_deref(),
                                &check.password,
                            );
                            let _ = done_tx.send(Checked {
                                key: check.key,
                                user: check.user,
                                ok,
                                started: check.started,
                            });
                            let _ = waker.wake();
                        }
                    })?,
            );
        }
        Ok(Logins {
            checks: Some(tx),
            done,
            threads,
        })
    }

    /// Queues a check.
    pub fn send(&self, check: Check) {
        if let Some(tx) = &self.checks {
            let _ = tx.send(check);
        }
    }

    /// Checks finished now.
    pub fn finished(&self) -> impl Iterator<Item = Checked> + '_ {
        self.done.try_iter()
    }

    /// Lets the helpers finish, then joins them.
    pub fn stop(mut self) {
        self.checks = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
