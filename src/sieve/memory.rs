//! What a user's scripts remember between messages: whom a vacation
//! reply went to, and which messages `duplicate` has seen. One small
//! file per user, `{mailbox}/sieve/.memory`: a line per id, `KIND HASH
//! EXPIRES`, the id hashed (no address is kept in clear), rewritten
//! whole and flushed before the delivery that used it is answered.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Ids kept at most per user; the soonest to expire go first.
const MAX_IDS: usize = 10_000;

/// What an id is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Vacation,
    Duplicate,
}

impl Kind {
    fn letter(self) -> char {
        match self {
            Kind::Vacation => 'v',
            Kind::Duplicate => 'd',
        }
    }
}

fn file(root: &Path) -> PathBuf {
    root.join(super::scripts::DIR).join(".memory")
}

fn hash(kind: Kind, key: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
    let hex: String = d.as_ref()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{}{hex}", kind.letter())
}

/// (hash, expires) lines still in force at `now`.
fn load(root: &Path, now: i64) -> Vec<(String, i64)> {
    let text = fs::read_to_string(file(root)).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (h, t) = l.split_once(' ')?;
            let t: i64 = t.trim().parse().ok()?;
            (t > now).then(|| (h.to_string(), t))
        })
        .collect()
}

/// True if `key` is remembered (not yet expired).
pub fn seen(root: &Path, kind: Kind, key: &str, now: i64) -> bool {
    let h = hash(kind, key);
    load(root, now).iter().any(|(x, _)| *x == h)
}

/// Remembers each `(kind, key, seconds)` from `now`; an id already
/// kept gets the new expiry. Flushed before it returns.
pub fn remember(
    root: &Path,
    ids: &[(Kind, String, u64)],
    now: i64,
) -> io::Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut kept = load(root, now);
    for (kind, key, secs) in ids {
        let h = hash(*kind, key);
        let until =
            now.saturating_add(i64::try_from(*secs).unwrap_or(i64::MAX));
        match kept.iter_mut().find(|(x, _)| *x == h) {
            Some(slot) => slot.1 = until,
            None => kept.push((h, until)),
        }
    }
    if kept.len() > MAX_IDS {
        kept.sort_by_key(|(_, t)| std::cmp::Reverse(*t));
        kept.truncate(MAX_IDS);
    }
    let text: String =
        kept.iter().map(|(h, t)| format!("{h} {t}\n")).collect();
    crate::util::fs::create_dir_durable(&root.join(super::scripts::DIR))?;
    crate::util::fs::atomic_write(&file(root), text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_until_expiry() {
        let dir = std::env::temp_dir()
            .join(format!("postling-memory-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        assert!(!seen(&dir, Kind::Vacation, "a@x", 100));
        remember(&dir, &[(Kind::Vacation, "a@x".into(), 50)], 100).unwrap();
        assert!(seen(&dir, Kind::Vacation, "a@x", 149));
        assert!(!seen(&dir, Kind::Duplicate, "a@x", 149), "kinds apart");
        assert!(!seen(&dir, Kind::Vacation, "a@x", 150));
        let text = fs::read_to_string(file(&dir)).unwrap();
        assert!(!text.contains("a@x"), "hashed, not in clear");
        fs::remove_dir_all(&dir).unwrap();
    }
}
