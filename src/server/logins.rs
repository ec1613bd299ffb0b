//! The password helper threads: hashing is slow on purpose (argon2 takes
//! tens of milliseconds), so checks run here and wake the loop when done.
//! A POP3 login also takes its maildrop snapshot here, since scanning an
//! mbox reads the whole file.

use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use mio::Waker;

use crate::auth::password;
use crate::config::MailboxFormat;
use crate::proto::Failure;
use crate::store::maildrop::{self, Snapshot};

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
    /// POP3: the mailbox to snapshot once the password is right.
    pub open: Option<(MailboxFormat, PathBuf)>,
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
    /// POP3: the snapshot, if asked for and the password was right.
    pub snapshot: Option<Result<Snapshot, Failure>>,
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
                    .spawn(move || run(&rx, &done_tx, &waker))?,
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

fn run(rx: &Mutex<Receiver<Check>>, done: &Sender<Checked>, waker: &Waker) {
    loop {
        let next = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
        let Ok(check) = next else { return };
        let ok = password::verify(check.stored.as_deref(), &check.password);
        let snapshot = match (&check.open, ok) {
            (Some((format, dir)), true) => Some(maildrop::open(*format, dir)),
            _ => None,
        };
        let _ = done.send(Checked {
            key: check.key,
            user: check.user,
            ok,
            started: check.started,
            snapshot,
        });
        let _ = waker.wake();
    }
}
