//! Unique names: queue ids and Maildir file names.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A queue id: time in microseconds and a process-wide counter, in upper
/// case base 32 so it reads like Postfix's (`4F2K9XQ3A1B7`).
pub fn queue_id() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut v = (now.as_micros() as u64) << 12 ^ (n & 0xfff);
    let mut s = Vec::with_capacity(13);
    while v > 0 {
        s.push(b"0123456789ABCDEFGHJKLMNPQRSTVWXY"[(v & 31) as usize]);
        v >>= 5;
    }
    s.reverse();
    String::from_utf8(s).expect("invariant: ASCII alphabet")
}

/// A Maildir base name: `<secs>.M<usec>P<pid>Q<n>.<host>` as the Maildir
/// spec and Dovecot write it, unique within this host.
pub fn maildir_name(host: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // '/' and ':' would break the name; the spec says to encode them.
    let host = host.replace('/', "\\057").replace(':', "\\072");
    format!(
        "{}.M{}P{}Q{n}.{host}",
        now.as_secs(),
        now.subsec_micros(),
        std::process::id()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique() {
        let a: std::collections::HashSet<_> =
            (0..1000).map(|_| queue_id()).collect();
        assert_eq!(a.len(), 1000);
        assert_ne!(maildir_name("h"), maildir_name("h"));
        assert!(maildir_name("a/b:c").ends_with(".a\\057b\\072c"));
    }
}
