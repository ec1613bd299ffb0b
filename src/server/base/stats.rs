//! What the server has done, counted for `status` and `/metrics`: each
//! kind of event since start, and per minute over the last day (so the
//! last hour's and day's figures are sums of at most 1,440 buckets).
//! A fixed 1,440 buckets a kind: memory does not grow with traffic.

use std::time::Instant;

/// What is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A message accepted with 250 (any listener).
    Received,
    /// A copy stored in a local mailbox.
    Delivered,
    /// A recipient accepted by another server.
    Sent,
    /// A recipient's attempt that will be tried again.
    Deferred,
    /// A recipient given up on (a bounce goes to the sender).
    Bounced,
    /// A login refused for its password.
    LoginFailed,
    /// A TLS session that failed, ours or a peer's.
    TlsFailed,
}

impl Event {
    pub const ALL: [Event; 7] = [
        Event::Received,
        Event::Delivered,
        Event::Sent,
        Event::Deferred,
        Event::Bounced,
        Event::LoginFailed,
        Event::TlsFailed,
    ];

    /// The name in `status` and in metric names.
    pub fn name(self) -> &'static str {
        match self {
            Event::Received => "received",
            Event::Delivered => "delivered",
            Event::Sent => "sent",
            Event::Deferred => "deferred",
            Event::Bounced => "bounced",
            Event::LoginFailed => "login_failures",
            Event::TlsFailed => "tls_failures",
        }
    }
}

const MINUTES: usize = 24 * 60;

/// One kind's counts.
struct Counts {
    total: u64,
    per_minute: Box<[u32; MINUTES]>,
}

/// The counters, and when the server started.
pub struct Stats {
    pub started: Instant,
    counts: Vec<Counts>,
    /// The minute (since start) the buckets were last brought up to.
    minute: u64,
}

impl Stats {
    pub fn new(now: Instant) -> Stats {
        Stats {
            started: now,
            counts: Event::ALL
                .iter()
                .map(|_| Counts {
                    total: 0,
                    per_minute: Box::new([0; MINUTES]),
                })
                .collect(),
            minute: 0,
        }
    }

    /// Counts `n` events of `kind` now.
    pub fn add(&mut self, kind: Event, n: u64, now: Instant) {
        self.advance(now);
        let slot = (self.minute % MINUTES as u64) as usize;
        let c = &mut self.counts[kind as usize];
        c.total += n;
        c.per_minute[slot] = c.per_minute[slot].saturating_add(n as u32);
    }

    /// (since start, last hour, last day) of `kind`.
    pub fn figures(&mut self, kind: Event, now: Instant) -> (u64, u64, u64) {
        self.advance(now);
        let c = &self.counts[kind as usize];
        let back = |minutes: u64| -> u64 {
            (0..minutes.min(self.minute + 1))
                .map(|m| {
                    let at = (self.minute - m) % MINUTES as u64;
                    u64::from(c.per_minute[at as usize])
                })
                .sum()
        };
        (c.total, back(60), back(MINUTES as u64))
    }

    /// Empties the buckets of the minutes passed since the last event.
    fn advance(&mut self, now: Instant) {
        let minute =
            now.saturating_duration_since(self.started).as_secs() / 60;
        let passed = (minute.saturating_sub(self.minute)).min(MINUTES as u64);
        for step in 1..=passed {
            let slot = ((self.minute + step) % MINUTES as u64) as usize;
            for c in &mut self.counts {
                c.per_minute[slot] = 0;
            }
        }
        self.minute = self.minute.max(minute);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn hour_and_day_windows() {
        let t0 = Instant::now();
        let mut s = Stats::new(t0);
        s.add(Event::Received, 2, t0);
        s.add(Event::Received, 1, t0 + Duration::from_secs(30 * 60));
        assert_eq!(
            s.figures(Event::Received, t0 + Duration::from_secs(31 * 60)),
            (3, 3, 3)
        );
        // Past an hour, the first two leave the hour but not the day.
        let later = t0 + Duration::from_secs(65 * 60);
        assert_eq!(s.figures(Event::Received, later), (3, 1, 3));
        let next_day = t0 + Duration::from_secs(25 * 3600);
        assert_eq!(s.figures(Event::Received, next_day), (3, 0, 0));
        s.add(Event::Bounced, 1, next_day);
        assert_eq!(s.figures(Event::Bounced, next_day), (1, 1, 1));
        assert_eq!(s.figures(Event::Sent, next_day), (0, 0, 0));
    }
}
