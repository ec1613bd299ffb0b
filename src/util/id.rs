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

/// The arrival time in a Maildir name, `<secs>.M<usec>...`, as
/// numbers: the microseconds are not zero-padded, so as text `M99999`
/// sorts after `M100000`.
pub fn maildir_time(name: &str) -> (u64, u64) {
    let (secs, rest) = name.split_once('.').unwrap_or((name, ""));
    let digits = |r: &str| {
        r.bytes().take_while(u8::is_ascii_digit).fold(0u64, |n, d| {
            n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
        })
    };
    let usec = rest.strip_prefix('M').map(digits).unwrap_or(0);
    (secs.parse().unwrap_or(0), usec)
}

/// Arrival order of Maildir names: their times, then as text.
pub fn maildir_order(a: &str, b: &str) -> std::cmp::Ordering {
    maildir_time(a).cmp(&maildir_time(b)).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrival_order() {
        let mut names = vec![
            "1700.M100000P1Q2.h",
            "1700.M99999P1Q1.h",
            "1699.M5P1.h",
            "zz",
        ];
        names.sort_by(|a, b| maildir_order(a, b));
        assert_eq!(
            names,
            vec![
                "zz",
                "1699.M5P1.h",
                "1700.M99999P1Q1.h",
                "1700.M100000P1Q2.h"
            ]
        );
    }

    #[test]
    fn ids_are_unique() {
        let a: std::collections::HashSet<_> =
            (0..1000).map(|_| queue_id()).collect();
        assert_eq!(a.len(), 1000);
        assert_ne!(maildir_name("h"), maildir_name("h"));
        assert!(maildir_name("a/b:c").ends_with(".a\\057b\\072c"));
    }
}
