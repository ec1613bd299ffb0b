//! The password helper threads: hashing is slow on purpose (argon2 takes
//! tens of milliseconds), so checks run here and wake the loop when done.
//! A POP3 login also takes its maildrop snapshot here, since scanning an
//! mbox reads the whole file.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use mio::Waker;

use crate::auth::password;
use crate::config::MailboxFormat;
use crate::proto::Failure;
use crate::server::base::pool::Pool;
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
    /// The login cache knows this login: no hashing needed.
    pub cached: bool,
    /// What the login cache will know it by, if it succeeds.
    pub tag: Option<crate::auth::cache::LoginTag>,
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
    /// For the login cache: the login, if it was verified by hashing.
    pub verified: Option<crate::auth::cache::LoginTag>,
    /// The login cache vouched for it.
    pub cached: bool,
}

/// The password helpers.
pub type Logins = Pool<Check, Checked>;

/// Starts `n` password helpers.
pub fn start(n: usize, waker: Arc<Waker>) -> std::io::Result<Logins> {
    Pool::start("login", n, 1, waker, |checks| {
        checks.into_iter().map(guarded_check).collect()
    })
}

/// [`check`], a panic inside (a malformed stored hash, say) failing only
/// this login, as a wrong password would.
fn guarded_check(c: Check) -> Checked {
    let (key, user, started) = (c.key, c.user.clone(), c.started);
    crate::util::contain::guarded(
        || {
            format!(
                "password check for user={}",
                crate::util::logsafe::Quoted(&user)
            )
        },
        || check(c),
    )
    .unwrap_or(Checked {
        key,
        user,
        ok: false,
        started,
        snapshot: None,
        verified: None,
        cached: false,
    })
}

fn check(check: Check) -> Checked {
    let ok = check.cached
        || password::verify(check.stored.as_deref(), &check.password);
    let snapshot = match (&check.open, ok) {
        (Some((format, dir)), true) => Some(maildrop::open(*format, dir)),
        _ => None,
    };
    Checked {
        key: check.key,
        user: check.user,
        ok,
        started: check.started,
        snapshot,
        verified: check.tag.filter(|_| ok && !check.cached),
        cached: check.cached,
    }
}
