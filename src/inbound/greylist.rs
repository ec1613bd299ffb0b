//! Greylisting (RFC 6647): a stranger's first try at a (client network,
//! sender, recipient) triplet gets `451 4.7.1`; a retry after the delay
//! is accepted, and the client's network is then let through at once
//! for 30 days. Real servers retry; most spam software does not. Nor
//! is a client that passes SPF for a domain that passed DMARC here
//! before: the domains that did are kept for 30 days.
//!
//! Pure: the time is passed in, and the state reads from and writes to
//! bytes (the loop keeps it in memory and has a helper write it out).
//! Bounded: triplets are kept as 64-bit keyed hashes, at most
//! [`MAX_TRIPLETS`] of them and [`MAX_CLIENTS`] networks, oldest first
//! out.

use std::collections::HashMap;
use std::hash::Hasher;
use std::net::IpAddr;

/// Triplets kept at most (16 octets each, and the map's own).
pub const MAX_TRIPLETS: usize = 32_768;
/// Networks let through at most.
pub const MAX_CLIENTS: usize = 8_192;
/// Domains that passed DMARC kept at most.
pub const MAX_DOMAINS: usize = 8_192;
/// How long a network that retried properly is let through.
pub const PASS_KEPT: u64 = 30 * 86_400;
/// How long a first try waits for its retry.
pub const RETRY_KEPT: u64 = 2 * 86_400;

/// What RCPT gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Pass,
    /// Try again in this many seconds.
    Defer(u64),
}

/// The greylist.
#[derive(Debug)]
pub struct Greylist {
    delay: u64,
    /// Keyed so a stranger cannot aim collisions at a triplet.
    key: (u64, u64),
    /// Triplet hash -> first try (Unix seconds).
    triplets: HashMap<u64, u64>,
    /// Network -> let through until (Unix seconds).
    clients: HashMap<IpAddr, u64>,
    /// Domain hash -> it passed DMARC; SPF for it vouches until then.
    domains: HashMap<u64, u64>,
    /// Changed since it was last written out.
    pub dirty: bool,
}

/// The network a client is counted by: its /24, or its /64.
pub fn network(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            IpAddr::V4(std::net::Ipv4Addr::from(u32::from(v4) & 0xffff_ff00))
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => network(IpAddr::V4(v4)),
            None => IpAddr::V6(std::net::Ipv6Addr::from(
                u128::from(v6) & !((1u128 << 64) - 1),
            )),
        },
    }
}

impl Greylist {
    /// An empty greylist with `delay` seconds; `key` keys the hashes.
    pub fn new(delay: u64, key: (u64, u64)) -> Greylist {
        Greylist {
            delay,
            key,
            triplets: HashMap::new(),
            clients: HashMap::new(),
            domains: HashMap::new(),
            dirty: false,
        }
    }

    fn domain_hash(&self, domain: &str) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        h.write_u64(self.key.0 ^ 0x646f_6d61_696e);
        h.write_u64(self.key.1);
        h.write(domain.trim_end_matches('.').to_ascii_lowercase().as_bytes());
        h.finish()
    }

    /// `domain` (an organizational domain) passed DMARC at `now`.
    pub fn dmarc_passed(&mut self, domain: &str, now: u64) {
        let key = self.domain_hash(domain);
        let until = now + PASS_KEPT;
        if self.domains.get(&key).is_some_and(|&u| u + 86_400 > until) {
            return; // refreshed within the day: no write for it
        }
        bounded_insert(&mut self.domains, key, until, MAX_DOMAINS, now);
        self.dirty = true;
    }

    /// True if `domain` passed DMARC within the last 30 days: a client
    /// that passes SPF for it is not greylisted.
    pub fn vouches(&self, domain: &str, now: u64) -> bool {
        self.domains
            .get(&self.domain_hash(domain))
            .is_some_and(|&until| until > now)
    }

    fn hash(&self, net: IpAddr, sender: &str, rcpt: &str) -> u64 {
        // SipHash behind a secret prefix. Its algorithm may change with
        // Rust: then the triplets kept are lost, and their clients are
        // greylisted once more (no mail is lost).
        let mut h = std::collections::hash_map::DefaultHasher::new();
        h.write_u64(self.key.0);
        h.write_u64(self.key.1);
        h.write(net.to_string().as_bytes());
        h.write_u8(0);
        h.write(sender.to_ascii_lowercase().as_bytes());
        h.write_u8(0);
        h.write(rcpt.to_ascii_lowercase().as_bytes());
        h.finish()
    }

    /// RCPT `rcpt` from `sender` by the client `ip`, at `now`.
    pub fn check(
        &mut self,
        ip: IpAddr,
        sender: &str,
        rcpt: &str,
        now: u64,
    ) -> Decision {
        let net = network(ip);
        if self.clients.get(&net).is_some_and(|&until| until > now) {
            return Decision::Pass;
        }
        let key = self.hash(net, sender, rcpt);
        match self.triplets.get(&key).copied() {
            Some(first)
                if now.saturating_sub(first) >= self.delay
                    && now - first < RETRY_KEPT =>
            {
                self.triplets.remove(&key);
                bounded_insert(
                    &mut self.clients,
                    net,
                    now + PASS_KEPT,
                    MAX_CLIENTS,
                    now,
                );
                self.dirty = true;
                Decision::Pass
            }
            Some(first) if now.saturating_sub(first) < self.delay => {
                Decision::Defer(self.delay - now.saturating_sub(first))
            }
            // New, or its retry came too late: a first try again.
            _ => {
                bounded_insert(
                    &mut self.triplets,
                    key,
                    now,
                    MAX_TRIPLETS,
                    now.saturating_sub(RETRY_KEPT),
                );
                self.dirty = true;
                Decision::Defer(self.delay)
            }
        }
    }

    /// The state as bytes: `t HASH FIRST`, `c NET UNTIL` and
    /// `d HASH UNTIL` lines.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = String::with_capacity(
            self.triplets.len() * 32 + self.clients.len() * 40,
        );
        for (k, first) in &self.triplets {
            out.push_str(&format!("t {k:016x} {first}\n"));
        }
        for (net, until) in &self.clients {
            out.push_str(&format!("c {net} {until}\n"));
        }
        for (k, until) in &self.domains {
            out.push_str(&format!("d {k:016x} {until}\n"));
        }
        out.into_bytes()
    }

    /// Takes in what [`Greylist::to_bytes`] wrote (lines that do not
    /// read, and entries past their time at `now`, are skipped).
    pub fn load(&mut self, bytes: &[u8], now: u64) {
        let text = String::from_utf8_lossy(bytes);
        for line in text.lines() {
            let mut parts = line.split(' ');
            match (
                parts.next(),
                parts.next(),
                parts.next().and_then(|t| t.parse::<u64>().ok()),
            ) {
                (Some("t"), Some(k), Some(first))
                    if first + RETRY_KEPT > now =>
                {
                    if let Ok(k) = u64::from_str_radix(k, 16) {
                        bounded_insert(
                            &mut self.triplets,
                            k,
                            first,
                            MAX_TRIPLETS,
                            0,
                        );
                    }
                }
                (Some("d"), Some(k), Some(until)) if until > now => {
                    if let Ok(k) = u64::from_str_radix(k, 16) {
                        bounded_insert(
                            &mut self.domains,
                            k,
                            until,
                            MAX_DOMAINS,
                            now,
                        );
                    }
                }
                (Some("c"), Some(net), Some(until)) if until > now => {
                    if let Ok(net) = net.parse::<IpAddr>() {
                        bounded_insert(
                            &mut self.clients,
                            network(net),
                            until,
                            MAX_CLIENTS,
                            now,
                        );
                    }
                }
                _ => {}
            }
        }
    }
}

/// Inserts, making room first when full (entries whose time is at or
/// before `stale` first).
fn bounded_insert<K: std::hash::Hash + Eq + Copy>(
    map: &mut HashMap<K, u64>,
    key: K,
    time: u64,
    cap: usize,
    stale: u64,
) {
    if !map.contains_key(&key) {
        crate::util::bounded::make_room(map, cap, stale);
    }
    map.insert(key, time);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn domains_that_passed_dmarc_are_kept_30_days_and_saved() {
        let mut g = Greylist::new(300, (7, 8));
        assert!(!g.vouches("bank.example", 1000));
        g.dmarc_passed("Bank.Example.", 1000);
        assert!(g.vouches("bank.example", 1000 + PASS_KEPT - 1));
        assert!(!g.vouches("bank.example", 1000 + PASS_KEPT));
        assert!(!g.vouches("other.example", 1000));
        let mut again = Greylist::new(300, (7, 8));
        again.load(&g.to_bytes(), 2000);
        assert!(again.vouches("bank.example", 2000));
        let mut other_key = Greylist::new(300, (9, 9));
        other_key.load(&g.to_bytes(), 2000);
        assert!(!other_key.vouches("bank.example", 2000), "keyed");
        for i in 0..MAX_DOMAINS + 10 {
            g.dmarc_passed(&format!("d{i}.example"), 3000);
        }
        assert!(g.domains.len() <= MAX_DOMAINS);
    }

    #[test]
    fn first_try_deferred_retry_passes_network_remembered() {
        let mut g = Greylist::new(300, (1, 2));
        let c = ip("192.0.2.10");
        assert_eq!(
            g.check(c, "a@x.test", "bob@y.test", 1000),
            Decision::Defer(300)
        );
        // Too early: still deferred, the clock not restarted.
        assert_eq!(
            g.check(c, "a@x.test", "bob@y.test", 1100),
            Decision::Defer(200)
        );
        // Another sender is another triplet.
        assert_eq!(
            g.check(c, "b@x.test", "bob@y.test", 1100),
            Decision::Defer(300)
        );
        assert_eq!(g.check(c, "A@X.test", "bob@y.test", 1300), Decision::Pass);
        // The network (its /24) is let through from now on.
        assert_eq!(
            g.check(ip("192.0.2.99"), "z@q.test", "bob@y.test", 1301),
            Decision::Pass
        );
        assert_eq!(
            g.check(ip("192.0.3.1"), "z@q.test", "bob@y.test", 1301),
            Decision::Defer(300)
        );
        assert_eq!(
            g.check(c, "z@q.test", "bob@y.test", 1300 + PASS_KEPT + 1),
            Decision::Defer(300)
        );
    }

    #[test]
    fn a_retry_days_later_starts_again() {
        let mut g = Greylist::new(300, (1, 2));
        let c = ip("2001:db8:1:2::5");
        assert_eq!(
            g.check(c, "a@x.test", "b@y.test", 0),
            Decision::Defer(300)
        );
        assert_eq!(
            g.check(c, "a@x.test", "b@y.test", RETRY_KEPT + 10),
            Decision::Defer(300)
        );
        // Same /64.
        assert_eq!(network(c), network(ip("2001:db8:1:2:ffff::1")));
    }

    #[test]
    fn survives_a_round_trip_and_stays_bounded() {
        let mut g = Greylist::new(60, (7, 7));
        let c = ip("198.51.100.7");
        g.check(c, "a@x.test", "b@y.test", 100);
        g.check(ip("203.0.113.1"), "s@x.test", "b@y.test", 100);
        g.check(ip("203.0.113.1"), "s@x.test", "b@y.test", 200);
        let bytes = g.to_bytes();
        let mut h = Greylist::new(60, (7, 7));
        h.load(&bytes, 150);
        assert_eq!(h.check(c, "a@x.test", "b@y.test", 170), Decision::Pass);
        assert_eq!(
            h.check(ip("203.0.113.50"), "n@x.test", "b@y.test", 171),
            Decision::Pass
        );
        h.load(b"garbage\nt zz 1\nc not-an-ip 99999999999\n", 0);
        for i in 0..(MAX_TRIPLETS as u64 + 100) {
            h.check(
                ip("192.0.2.1"),
                &format!("s{i}@x.test"),
                "b@y.test",
                1000 + i,
            );
        }
        assert!(h.triplets.len() <= MAX_TRIPLETS);
    }
}
