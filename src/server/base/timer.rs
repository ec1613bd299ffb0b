//! Every deadline the loop keeps, in one heap, each with its kind: idle
//! connections, delayed login failures, deliveries retrying a locked
//! mailbox, PROXY headers overdue. An entry names its connection (slot
//! and generation); when it comes due the loop checks that the
//! connection is still there and still waiting, so stale entries cost
//! nothing but a pop. A connection whose idle deadline moved on is pushed
//! again with the new one, so activity costs no heap work.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// What a deadline is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Timer {
    /// A connection's idle deadline (it may have moved on since).
    Idle,
    /// A failed login's delayed answer.
    LoginFailure,
    /// A delivery that met a locked mailbox tries again.
    LockRetry,
    /// A connection on a `proxy:` listener has not sent its header.
    ProxyHeader,
    /// Time to look for changes other programs made to open folders.
    FolderCheck,
    /// A DNS query's time is up.
    Dns,
    /// Time to look for queued messages due.
    QueueRun,
    /// An outbound connection's deadline (slot and generation).
    Peer,
    /// A message's checks have had their time.
    Checks,
    /// Time to check the blocklists' health again.
    Blocklists,
    /// A screened client's greeting may end.
    Greeting,
    /// Time to empty Junk of old mail (`junk_expire`).
    JunkExpire,
    /// Time for the daily report.
    DailyReport,
}

/// The key of a timer or helper job no connection waits for (a queue
/// run, a sync after a delivery).
pub const NOBODY: (usize, u64) = (usize::MAX, 0);

/// Deadlines, soonest first.
#[derive(Debug, Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(Instant, Timer, usize, u64)>>,
}

impl Timers {
    /// Adds a `kind` deadline for connection `key` (slot, generation).
    pub fn add(&mut self, at: Instant, kind: Timer, key: (usize, u64)) {
        self.heap.push(Reverse((at, kind, key.0, key.1)));
    }

    /// How long the poll may sleep, at most.
    pub fn next_timeout(&self, now: Instant) -> Option<Duration> {
        self.heap
            .peek()
            .map(|Reverse((at, ..))| at.saturating_duration_since(now))
    }

    /// Removes and returns one entry that is due.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Timer, (usize, u64))> {
        match self.heap.peek() {
            Some(Reverse((at, ..))) if *at <= now => {
                let Reverse((_, kind, slot, generation)) = self.heap.pop()?;
                Some((kind, (slot, generation)))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soonest_first_and_only_when_due() {
        let mut t = Timers::default();
        let now = Instant::now();
        let s = Duration::from_secs(1);
        t.add(now + 3 * s, Timer::Idle, (1, 1));
        t.add(now + s, Timer::LoginFailure, (2, 2));
        t.add(now + 2 * s, Timer::LockRetry, (3, 3));
        assert_eq!(t.next_timeout(now), Some(s));
        assert_eq!(t.pop_due(now), None);
        assert_eq!(
            t.pop_due(now + 2 * s),
            Some((Timer::LoginFailure, (2, 2)))
        );
        assert_eq!(t.pop_due(now + 2 * s), Some((Timer::LockRetry, (3, 3))));
        assert_eq!(t.pop_due(now + 2 * s), None);
    }
}
