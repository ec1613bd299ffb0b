//! Mailbox file locking the way mutt, procmail and Dovecot expect on
//! Debian: a `NAME.lock` dotlock and an fcntl write lock on the file, plus
//! an in-process guard (fcntl locks belong to the process, so two of our
//! own threads would not exclude each other).

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime};

use rustix::fs::{FlockOperation, fcntl_lock};

/// How long to wait for another program's lock before giving up with a
/// temporary failure (the client retries later).
pub const LOCK_WAIT: Duration = Duration::from_secs(10);
/// A dotlock older than this was left by a crash (procmail uses 17 s
/// for its own; mutt and Dovecot consider 5 minutes).
pub const STALE_DOTLOCK: Duration = Duration::from_secs(300);
const RETRY: Duration = Duration::from_millis(50);

static HELD: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);
static RELEASED: Condvar = Condvar::new();

/// An exclusively locked mailbox file, open for reading and writing.
/// Dropping it releases every lock.
#[derive(Debug)]
pub struct Locked {
    /// The open file; closing any other descriptor of the same file would
    /// drop the fcntl lock, so all access goes through this one.
    pub file: File,
    dotlock: PathBuf,
    /// Dropped after `file` (fields drop in order): the file is closed
    /// before another thread of ours may lock it.
    _guard: Guard,
}

/// The in-process claim on a mailbox file, released on drop.
#[derive(Debug)]
struct Guard(PathBuf);

impl Drop for Guard {
    fn drop(&mut self) {
        release_in_process(&self.0);
    }
}

/// Locks (creating if needed) the mailbox file `path`, waiting up to
/// [`LOCK_WAIT`] for another holder.
pub fn lock(path: &Path) -> io::Result<Locked> {
    lock_within(path, LOCK_WAIT)
}

/// Locks the mailbox file `path`, waiting at most `wait` for another
/// holder; after that the error is `TimedOut`.
pub fn lock_within(path: &Path, wait: Duration) -> io::Result<Locked> {
    let deadline = Instant::now() + wait;
    claim_in_process(path, deadline)?;
    let mut dotlock = path.as_os_str().to_owned();
    dotlock.push(".lock");
    let dotlock = PathBuf::from(dotlock);
    let result = take_dotlock(&dotlock, deadline).and_then(|()| {
        let file = open_and_fcntl(path, deadline);
        if file.is_err() {
            let _ = fs::remove_file(&dotlock);
        }
        file
    });
    match result {
        Ok(file) => Ok(Locked {
            file,
            dotlock,
            _guard: Guard(path.to_path_buf()),
        }),
        Err(e) => {
            release_in_process(path);
            Err(e)
        }
    }
}

fn claim_in_process(path: &Path, deadline: Instant) -> io::Result<()> {
    let mut held = HELD.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let set = held.get_or_insert_with(HashSet::new);
        if set.insert(path.to_path_buf()) {
            return Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(timeout());
        }
        held = RELEASED
            .wait_timeout(held, left)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
}

fn release_in_process(path: &Path) {
    let mut held = HELD.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(set) = held.as_mut() {
        set.remove(path);
    }
    RELEASED.notify_all();
}

fn timeout() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "mailbox is locked")
}

fn take_dotlock(dotlock: &Path, deadline: Instant) -> io::Result<()> {
    loop {
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dotlock)
        {
            Ok(mut f) => {
                // Who holds it, as Dovecot writes it: a crash can be told
                // from a holder at once, not after STALE_DOTLOCK.
                let _ = io::Write::write_all(&mut f, holder().as_bytes());
                return Ok(());
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        if is_stale(dotlock) || left_by_dead_process(dotlock) {
            log::warn!("removing stale lock {}", dotlock.display());
            let _ = fs::remove_file(dotlock);
            continue;
        }
        if Instant::now() >= deadline {
            return Err(timeout());
        }
        sleep(RETRY);
    }
}

/// `pid:host` of this process.
fn holder() -> String {
    let host = rustix::system::uname();
    format!(
        "{}:{}",
        std::process::id(),
        host.nodename().to_string_lossy()
    )
}

/// A dotlock whose `pid:host` names a process of this host that is gone
/// (killed with the lock held). Our own pid counts as gone: this thread
/// holds the in-process claim, so the lock is a previous run's that had
/// the same pid (containers reuse pids across restarts).
fn left_by_dead_process(dotlock: &Path) -> bool {
    let Ok(text) = fs::read_to_string(dotlock) else {
        return false;
    };
    let Some((pid, host)) = text.trim().split_once(':') else {
        return false;
    };
    let ours = holder();
    let ours_host = ours.split_once(':').map_or("", |(_, h)| h);
    let Ok(pid) = pid.parse::<i32>() else {
        return false;
    };
    if host != ours_host {
        return false;
    }
    if pid == std::process::id() as i32 {
        return true;
    }
    match rustix::process::Pid::from_raw(pid) {
        Some(p) => rustix::process::test_kill_process(p)
            .is_err_and(|e| e == rustix::io::Errno::SRCH),
        None => false,
    }
}

fn is_stale(dotlock: &Path) -> bool {
    let modified = fs::metadata(dotlock).and_then(|m| m.modified());
    let age = modified
        .ok()
        .and_then(|m| SystemTime::now().duration_since(m).ok());
    age.is_some_and(|a| a > STALE_DOTLOCK)
}

fn open_and_fcntl(path: &Path, deadline: Instant) -> io::Result<File> {
    // A new mailbox file is private; an existing one keeps its mode.
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)?;
    loop {
        match fcntl_lock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(file),
            Err(e) if Instant::now() >= deadline => {
                return Err(io::Error::new(io::ErrorKind::TimedOut, e));
            }
            Err(_) => sleep(RETRY),
        }
    }
}

/// Closes a descriptor of a mailbox file we may also hold locked.
/// POSIX record locks belong to the process, and closing *any*
/// descriptor of the file drops them all, so a reader's close must never
/// overlap a writer's lock: it waits for the in-process guard first. May
/// block; call it off the poll loop.
pub fn close_safely(file: File, path: &Path) {
    let deadline = Instant::now() + LOCK_WAIT;
    match claim_in_process(path, deadline) {
        Ok(()) => {
            drop(file);
            release_in_process(path);
        }
        Err(_) => {
            log::warn!("closing {} while it may be locked", path.display());
            drop(file);
        }
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        let _ = fcntl_lock(&self.file, FlockOperation::Unlock);
        let _ = fs::remove_file(&self.dotlock);
        // `file`, then `_guard`, drop after this.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dotlock left by a killed process of this host is taken over at
    /// once; one held by a live process is waited for.
    #[test]
    fn dead_holders_are_told_from_live_ones() {
        let dir = std::env::temp_dir()
            .join(format!("postling-lock-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let mbox = dir.join("INBOX");
        let dotlock = dir.join("INBOX.lock");
        let host = holder()
            .split_once(':')
            .map(|(_, h)| h.to_string())
            .unwrap_or_default();
        // No process has pid 2^22 + 1 (above Linux's pid_max).
        for dead in [
            format!("4194305:{host}"),
            format!("{}:{host}", std::process::id()),
        ] {
            fs::write(&dotlock, dead).unwrap_or_else(|e| panic!("{e}"));
            let started = Instant::now();
            let held = lock_within(&mbox, Duration::from_secs(5))
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(started.elapsed() < Duration::from_secs(1));
            assert!(
                fs::read_to_string(&dotlock)
                    .unwrap_or_default()
                    .starts_with(&format!("{}:", std::process::id()))
            );
            drop(held);
        }
        // pid 1 is alive, and so is another host's lock as far as we know.
        for live in
            [format!("1:{host}"), "4194305:elsewhere.example".to_string()]
        {
            fs::write(&dotlock, live).unwrap_or_else(|e| panic!("{e}"));
            let err = lock_within(&mbox, Duration::from_millis(200))
                .map(|_| ())
                .unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        }
        let _ = fs::remove_dir_all(&dir);
    }
}
