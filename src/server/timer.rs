//! Idle deadlines. Each connection has at most one entry in the heap; a
//! popped entry whose connection has moved its deadline on is pushed
//! again with the new one, so activity costs no heap work.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// Deadlines keyed by connection (slot, generation).
#[derive(Debug, Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(Instant, usize, u64)>>,
}

impl Timers {
    /// Adds a deadline for connection `key`.
    pub fn add(&mut self, at: Instant, key: (usize, u64)) {
        self.heap.push(Reverse((at, key.0, key.1)));
    }

    /// How long the poll may sleep, at most.
    pub fn next_timeout(&self, now: Instant) -> Option<Duration> {
        self.heap
            .peek()
            .map(|Reverse((at, _, _))| at.saturating_duration_since(now))
    }

    /// Removes and returns one entry that is due.
    pub fn pop_due(&mut self, now: Instant) -> Option<(usize, u64)> {
        match self.heap.peek() {
            Some(Reverse((at, _, _))) if *at <= now => {
                let Reverse((_, slot, generation)) = self.heap.pop()?;
                Some((slot, generation))
            }
            _ => None,
        }
    }
}
