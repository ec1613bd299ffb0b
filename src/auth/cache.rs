//! The login cache, as Dovecot's `auth_cache`: a webmail logs in afresh
//! on every page, and a password hash is built to be slow (tens of ms
//! here, several times that on a Raspberry Pi). A verified login is
//! remembered for `auth_cache_ttl` as an HMAC of the user, the password
//! and the stored hash under a key made at start, never the password
//! itself; the same login again within that time needs no hashing.
//! Failures are never cached. A changed password (a new stored hash)
//! misses by itself; the whole cache is dropped on reload (SIGHUP, when
//! the users file changes).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

/// Logins remembered at most; the oldest go first when full.
const MAX_ENTRIES: usize = 4096;

/// Verified logins by user.
pub struct AuthCache {
    key: hmac::Key,
    ttl: Duration,
    entries: HashMap<String, (LoginTag, Instant)>,
}

/// A login as the cache knows it (no password in it).
#[derive(Clone, Copy)]
pub struct LoginTag([u8; 32]);

impl AuthCache {
    /// A cache whose entries last `ttl` (zero: nothing is kept).
    pub fn new(ttl: Duration) -> AuthCache {
        let mut secret = [0u8; 32];
        // Without system randomness the cache stays empty (see `key`).
        let seeded = SystemRandom::new().fill(&mut secret).is_ok();
        AuthCache {
            key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
            ttl: if seeded { ttl } else { Duration::ZERO },
            entries: HashMap::new(),
        }
    }

    /// What a login is remembered by: an HMAC of the user, the password
    /// and the stored hash.
    pub fn tag(&self, user: &str, password: &[u8], stored: &str) -> LoginTag {
        let mut ctx = hmac::Context::with_key(&self.key);
        for part in [user.as_bytes(), password, stored.as_bytes()] {
            ctx.update(&(part.len() as u64).to_le_bytes());
            ctx.update(part);
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.sign().as_ref());
        LoginTag(out)
    }

    /// True if this login (user, password, stored hash) was verified
    /// within the last `ttl`.
    pub fn verified(
        &mut self,
        user: &str,
        want: &LoginTag,
        now: Instant,
    ) -> bool {
        let Some((tag, until)) = self.entries.get(user) else {
            return false;
        };
        if now >= *until {
            self.entries.remove(user);
            return false;
        }
        // In time that does not depend on where they differ.
        tag.0.iter().zip(want.0).fold(0u8, |d, (a, b)| d | (a ^ b)) == 0
    }

    /// Remembers a login the password helpers verified.
    pub fn remember(&mut self, user: &str, tag: LoginTag, now: Instant) {
        if self.ttl.is_zero() {
            return;
        }
        if self.entries.len() >= MAX_ENTRIES
            && !self.entries.contains_key(user)
        {
            self.entries.retain(|_, (_, until)| *until > now);
            if self.entries.len() >= MAX_ENTRIES
                && let Some(oldest) = self
                    .entries
                    .iter()
                    .min_by_key(|(_, (_, u))| *u)
                    .map(|(k, _)| k.clone())
            {
                self.entries.remove(&oldest);
            }
        }
        self.entries.insert(user.to_string(), (tag, now + self.ttl));
    }

    /// Forgets every login (the users file may have changed).
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_only_the_same_login_for_a_while() {
        let t0 = Instant::now();
        let mut c = AuthCache::new(Duration::from_secs(60));
        let t = |c: &AuthCache, u, p: &[u8], h| c.tag(u, p, h);
        let good = t(&c, "a@x", b"pw", "{H}1");
        assert!(!c.verified("a@x", &good, t0));
        c.remember("a@x", good, t0);
        assert!(c.verified(
            "a@x",
            &t(&c, "a@x", b"pw", "{H}1"),
            t0 + Duration::from_secs(1)
        ));
        assert!(!c.verified("a@x", &t(&c, "a@x", b"pW", "{H}1"), t0));
        let rehashed = t(&c, "a@x", b"pw", "{H}2");
        assert!(
            !c.verified("a@x", &rehashed, t0),
            "a new stored hash misses"
        );
        assert!(!c.verified("b@x", &t(&c, "b@x", b"pw", "{H}1"), t0));
        assert!(!c.verified("a@x", &good, t0 + Duration::from_secs(61)));
        c.remember("a@x", good, t0);
        c.clear();
        assert!(!c.verified("a@x", &good, t0));
        let mut off = AuthCache::new(Duration::ZERO);
        let tag = off.tag("a@x", b"pw", "{H}1");
        off.remember("a@x", tag, t0);
        assert!(!off.verified("a@x", &tag, t0));
    }
}
