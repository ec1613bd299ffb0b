//! Login failure counting per client address, or per user name when a
//! trusted front end (a webmail) logs in for clients it does not name:
//! after `limit` failures within `window`, the key is refused until its
//! oldest failure ages out. Pure logic; the caller passes the time.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Addresses tracked at most, so a flood of sources cannot grow memory
/// without bound. When full, expired entries go first, then the oldest
/// that are not locked out; a lockout is never forgotten early.
pub const MAX_TRACKED: usize = 10_000;

/// Whom failures count against.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    /// A client address (an IPv6 client's prefix).
    Addr(IpAddr),
    /// A user name (lower case), for logins a front end relays unnamed.
    User(String),
}

impl From<IpAddr> for Key {
    fn from(ip: IpAddr) -> Key {
        Key::Addr(ip)
    }
}

/// Failure history by key.
#[derive(Debug)]
pub struct Limiter {
    limit: usize,
    window: Duration,
    failures: HashMap<Key, VecDeque<Instant>>,
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

    /// Records a failure against `ip` (a client address or a [`Key`]).
    pub fn fail(&mut self, ip: impl Into<Key>, now: Instant) {
        let ip = ip.into();
        if self.failures.len() >= MAX_TRACKED
            && !self.failures.contains_key(&ip)
        {
            self.prune(now);
            if self.failures.len() >= MAX_TRACKED {
                // Every entry is a live lockout: this one goes untracked.
                return;
            }
        }
        let list = self.failures.entry(ip).or_default();
        list.push_back(now);
        while list.len() > self.limit {
            list.pop_front();
        }
    }

    /// True if `ip` (a client address or a [`Key`]) has used up its
    /// failures.
    pub fn blocked(&mut self, ip: impl Into<Key>, now: Instant) -> bool {
        let ip = ip.into();
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

    /// Addresses and users locked out now.
    pub fn locked_out(&self, now: Instant) -> usize {
        self.failures
            .values()
            .filter(|list| {
                let live = list
                    .iter()
                    .filter(|t| now.duration_since(**t) < self.window)
                    .count();
                live >= self.limit
            })
            .count()
    }

    fn prune(&mut self, now: Instant) {
        let window = self.window;
        for list in self.failures.values_mut() {
            while list
                .front()
                .is_some_and(|t| now.duration_since(*t) >= window)
            {
                list.pop_front();
            }
        }
        self.failures.retain(|_, l| !l.is_empty());
        if self.failures.len() < MAX_TRACKED {
            return;
        }
        // Evict a tenth at once, oldest last failure first, so a flood
        // of new sources does not pay a full scan per failure.
        let limit = self.limit;
        let mut open: Vec<(Instant, Key)> = self
            .failures
            .iter()
            .filter(|(_, l)| l.len() < limit)
            .filter_map(|(ip, l)| Some((*l.back()?, ip.clone())))
            .collect();
        open.sort_unstable();
        for (_, ip) in open.into_iter().take(MAX_TRACKED / 10) {
            self.failures.remove(&ip);
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

    #[test]
    fn a_full_table_evicts_the_oldest_but_never_a_lockout() {
        let mut l = Limiter::new(2, Duration::from_secs(600));
        let t0 = Instant::now();
        let locked: IpAddr = "198.51.100.1".parse().unwrap();
        l.fail(locked, t0);
        l.fail(locked, t0);
        assert!(l.blocked(locked, t0));
        // A flood of one-off failures from ever new addresses.
        for i in 0..(MAX_TRACKED as u32 * 3) {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            l.fail(ip, t0 + Duration::from_millis(u64::from(i)));
        }
        assert!(l.failures.len() <= MAX_TRACKED);
        assert!(l.blocked(locked, t0 + Duration::from_secs(60)));
        // The newest sources are still counted.
        let newest = IpAddr::from(std::net::Ipv4Addr::from(
            0x0a00_0000 + MAX_TRACKED as u32 * 3 - 1,
        ));
        assert!(l.failures.contains_key(&Key::Addr(newest)));
    }
}
