//! Answers kept for their TTL (times are milliseconds of the loop's
//! clock), at most `MAX_ENTRIES` of them and at
//! most a day each; when full, the entry closest to expiry goes first.

use std::collections::HashMap;

use super::wire::{Qtype, Rec};

/// Entries kept at most.
pub const MAX_ENTRIES: usize = 4096;
/// No answer is kept longer than this, whatever its TTL.
const MAX_TTL: u32 = 86_400;
/// Nor a negative one longer than this.
const MAX_NEGATIVE_TTL: u32 = 3_600;

/// A final answer for a name and type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// The records.
    Records(Vec<Rec>),
    /// The name has none of this type.
    NoData,
    /// No such name.
    NxDomain,
}

/// The cache.
#[derive(Debug, Default)]
pub struct Cache {
    entries: HashMap<(String, Qtype), (u64, Found)>,
}

impl Cache {
    /// A live answer for `name` and `qtype`.
    pub fn get(&self, name: &str, qtype: Qtype, now: u64) -> Option<Found> {
        let (until, found) = self.entries.get(&(name.to_string(), qtype))?;
        (*until > now).then(|| found.clone())
    }

    /// Keeps an answer for `ttl` seconds (0: not kept).
    pub fn put(
        &mut self,
        name: &str,
        qtype: Qtype,
        found: Found,
        ttl: u32,
        now: u64,
    ) {
        let cap = match found {
            Found::Records(_) => MAX_TTL,
            _ => MAX_NEGATIVE_TTL,
        };
        let ttl = ttl.min(cap);
        if ttl == 0 {
            return;
        }
        if self.entries.len() >= MAX_ENTRIES {
            self.entries.retain(|_, (until, _)| *until > now);
        }
        if self.entries.len() >= MAX_ENTRIES
            && let Some(k) = self
                .entries
                .iter()
                .min_by_key(|(_, (until, _))| *until)
                .map(|(k, _)| k.clone())
        {
            self.entries.remove(&k);
        }
        let until = now + u64::from(ttl) * 1000;
        self.entries
            .insert((name.to_string(), qtype), (until, found));
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_and_bound() {
        let now = 5_000u64;
        let mut c = Cache::default();
        c.put("a", Qtype::A, Found::NxDomain, 10, now);
        assert_eq!(c.get("a", Qtype::A, now), Some(Found::NxDomain));
        assert_eq!(c.get("a", Qtype::Mx, now), None);
        assert_eq!(c.get("a", Qtype::A, now + 11_000), None);
        c.put("z", Qtype::A, Found::NoData, 0, now);
        assert_eq!(c.get("z", Qtype::A, now), None);
        for i in 0..MAX_ENTRIES + 10 {
            c.put(
                &format!("n{i}"),
                Qtype::A,
                Found::NoData,
                100 + i as u32,
                now,
            );
        }
        assert_eq!(c.len(), MAX_ENTRIES);
        // The latest stay; the soonest to expire went.
        assert!(
            c.get(&format!("n{}", MAX_ENTRIES + 9), Qtype::A, now)
                .is_some()
        );
        assert!(c.get("n0", Qtype::A, now).is_none());
    }
}
