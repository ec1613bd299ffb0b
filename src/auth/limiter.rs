//! Per-address login failure counting: after `limit` failures within
//! `window`, the address is refused until its oldest failure ages out.
//! Pure logic; the caller passes the time.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Addresses tracked at most, so a flood of sources cannot grow memory
/// without bound; the oldest entries go first.
const MAX_TRACKED: usize = 10_000;

/// Failure history by client address.
#[derive(Debug)]
pub struct Limiter {
    limit: usize,
    window: Duration,
    failures: HashMap<IpAddr, VecDeque<Instant>>,
}

impl Limiter {
    /// At most `limit` failures per `window`.
    pub fn new(limit: usize, window: Duration) -> Self {
        Limiter {
            limit,
            window,
            failures: HashMap::new(),
        }
    }

    /// Records a failure from `ip`.
    pub fn fail(&mut self, ip: IpAddr, now: Instant) {
        if self.failures.len() >= MAX_TRACKED
            && !self.failures.contains_key(&ip)
        {
            self.prune(now);
        }
        let list = self.failures.entry(ip).or_default();
        list.push_back(now);
        while list.len() > self.limit {
            list.pop_front();
        }
    }

    /// True if `ip` has used up its failures.
    pub fn blocked(&mut self, ip: IpAddr, now: Instant) -> bool {
        let window = self.window;
        let Some(list) = self.failures.get_mut(&ip) else {
            return false;
        };
        while list
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            list.pop_front();
        }
        if list.is_empty() {
            self.failures.remove(&ip);
            return false;
        }
        list.len() >= self.limit
    }

    fn prune(&mut self, now: Instant) {
        let window = self.window;
        self.failures.retain(|_, l| {
            l.back().is_some_and(|t| now.duration_since(*t) < window)
        });
        if self.failures.len() >= MAX_TRACKED {
            self.failures.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_limit_and_forgets_after_window() {
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let mut l = Limiter::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        for i in 0..3 {
            assert!(!l.blocked(ip, t0));
            l.fail(ip, t0 + Duration::from_secs(i));
        }
        assert!(l.blocked(ip, t0 + Duration::from_secs(10)));
        assert!(!l.blocked(other, t0));
        assert!(!l.blocked(ip, t0 + Duration::from_secs(61)));
    }
}
