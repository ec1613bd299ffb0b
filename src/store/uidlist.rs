//! Dovecot's `dovecot-uidlist` (version 3), read and written, so a
//! Maildir moved from Dovecot keeps its UIDVALIDITY and UIDs and no
//! client downloads everything again:
//!
//! ```text
//! 3 V1700000000 N43 G3085f01b7f11094c501100008c4a11c1
//! 41 :1700000001.M1P2.host,S=1234,W=1260
//! 42 W1260 :1700000002.M3P4.host
//! ```
//!
//! The header holds the UIDVALIDITY (`V`) and the next UID (`N`); each
//! line a UID, optional fields, and after `:` the file's base name (the
//! name up to `:2,`). Changes are made under `dovecot-uidlist.lock`
//! (created exclusively, as Dovecot does) and written whole, then renamed
//! into place, so a reader never sees half a list.

use std::fs::{self, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

/// The last UIDVALIDITY given to a new list.
static LAST_VALIDITY: AtomicU32 = AtomicU32::new(0);

/// The list's file name.
pub const FILE: &str = "dovecot-uidlist";
/// Its lock.
pub const LOCK: &str = "dovecot-uidlist.lock";
/// A lock older than this was left by a crash: take it over (Dovecot
/// does the same after 2 minutes).
const STALE_LOCK: Duration = Duration::from_secs(120);

/// A folder's UID list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UidList {
    /// UIDVALIDITY.
    pub validity: u32,
    /// The next UID to give.
    pub next: u32,
    /// Base names by UID, UIDs ascending.
    pub entries: Vec<(u32, String)>,
    /// Other header fields, kept as written (Dovecot's `G` GUID...).
    pub extra: Vec<String>,
}

impl UidList {
    /// A new list for a folder that had none.
    pub fn fresh() -> UidList {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(1);
        let now = u32::try_from(now).unwrap_or(1).max(1);
        // A folder deleted and made again in the same second must not
        // get the same UIDVALIDITY: never give one twice.
        let mut last = LAST_VALIDITY.load(Ordering::Relaxed);
        let validity = loop {
            let v = now.max(last.wrapping_add(1)).max(1);
            match LAST_VALIDITY.compare_exchange(
                last,
                v,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break v,
                Err(seen) => last = seen,
            }
        };
        UidList {
            validity,
            next: 1,
            entries: Vec::new(),
            extra: Vec::new(),
        }
    }

    /// Parses a list; None if its header is not one we read.
    pub fn parse(text: &str) -> Option<UidList> {
        let mut lines = text.lines();
        let header = lines.next()?;
        let mut fields = header.split(' ');
        let version = fields.next()?;
        let mut list = UidList::default();
        match version {
            "3" => {
                for f in fields.filter(|f| !f.is_empty()) {
                    if let Some(v) = f.strip_prefix('V') {
                        list.validity = v.parse().ok()?;
                    } else if let Some(n) = f.strip_prefix('N') {
                        list.next = n.parse().ok()?;
                    } else {
                        list.extra.push(f.to_string());
                    }
                }
            }
            "1" => {
                // Version 1: "1 validity next".
                list.validity = fields.next()?.parse().ok()?;
                list.next = fields.next()?.parse().ok()?;
            }
            _ => return None,
        }
        if list.validity == 0 {
            return None;
        }
        for l in lines {
            let Some((uid, rest)) = l.split_once(' ') else {
                continue;
            };
            let Ok(uid) = uid.parse::<u32>() else {
                continue;
            };
            // Version 3 puts the name after " :"; version 1 right after
            // the UID.
            let name = match rest.find(':') {
                Some(i) if version == "3" => &rest[i + 1..],
                _ => rest,
            };
            if uid == 0 || name.is_empty() {
                continue;
            }
            if list.entries.last().is_some_and(|&(last, _)| last >= uid) {
                continue;
            }
            list.entries.push((uid, name.to_string()));
        }
        let top = list.entries.last().map_or(0, |&(u, _)| u);
        list.next = list.next.max(top + 1);
        Some(list)
    }

    /// True if Dovecot wrote this list (its header has a `G` GUID,
    /// which we never write): POP3 UIDLs then follow Dovecot's format.
    pub fn from_dovecot(&self) -> bool {
        self.extra.iter().any(|f| f.starts_with('G'))
    }

    /// The list as written.
    pub fn render(&self) -> String {
        let mut s = format!("3 V{} N{}", self.validity, self.next);
        for f in &self.extra {
            s.push(' ');
            s.push_str(f);
        }
        s.push('\n');
        for (uid, name) in &self.entries {
            s.push_str(&format!("{uid} :{name}\n"));
        }
        s
    }
}

/// Reads the list in `dir`; a missing or unreadable one gives a fresh
/// list (new UIDVALIDITY: clients start over, as they must).
pub fn read(dir: &Path) -> io::Result<UidList> {
    match fs::read_to_string(dir.join(FILE)) {
        Ok(text) => Ok(UidList::parse(&text).unwrap_or_else(|| {
            log::warn!("{}: unreadable {FILE}, starting over", dir.display());
            UidList::fresh()
        })),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(UidList::fresh()),
        Err(e) => Err(e),
    }
}

/// True if the list in `dir` was written by Dovecot (reads its first
/// line only).
pub fn written_by_dovecot(dir: &Path) -> bool {
    use std::io::BufRead;
    let Ok(f) = fs::File::open(dir.join(FILE)) else {
        return false;
    };
    let mut header = String::new();
    let _ = io::BufReader::new(f).take(4096).read_line(&mut header);
    UidList::parse(&header).is_some_and(|l| l.from_dovecot())
}

/// Writes the list durably (new file, fsync, rename, folder fsync).
pub fn write(dir: &Path, list: &UidList) -> io::Result<()> {
    crate::util::fs::atomic_write(&dir.join(FILE), list.render().as_bytes())
}

/// Holds `dovecot-uidlist.lock` while alive.
#[derive(Debug)]
pub struct Lock {
    path: PathBuf,
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Takes the lock, waiting up to 10 s (another helper, or Dovecot).
pub fn lock(dir: &Path) -> io::Result<Lock> {
    let path = dir.join(LOCK);
    for _ in 0..1000 {
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(_) => return Ok(Lock { path }),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let stale = fs::metadata(&path)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > STALE_LOCK);
                if stale {
                    let _ = fs::remove_file(&path);
                    continue;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(io::ErrorKind::TimedOut, "uidlist lock held"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dovecot_forms() {
        let text = "3 V1700000000 N43 G3085f01b7f11094c501100008c4a11c1\n\
                    41 :1700000001.M1P2.host,S=1234,W=1260\n\
                    42 W1260 :1700000002.M3P4.host\n";
        let l = UidList::parse(text).unwrap();
        assert_eq!(l.validity, 1_700_000_000);
        assert_eq!(l.next, 43);
        assert_eq!(l.entries[1], (42, "1700000002.M3P4.host".to_string()));
        assert_eq!(UidList::parse(&l.render()).unwrap(), l);
        assert!(l.from_dovecot());
        assert!(l.render().starts_with(
            "3 V1700000000 N43 G3085f01b7f11094c501100008c4a11c1\n"
        ));
        let v1 = UidList::parse("1 123 5\n4 abc\n").unwrap();
        assert_eq!(v1.entries, vec![(4, "abc".to_string())]);
    }

    #[test]
    fn nasty_lists() {
        assert!(UidList::parse("").is_none());
        assert!(UidList::parse("9 V1 N1\n").is_none());
        assert!(UidList::parse("3 V0 N1\n").is_none());
        let l =
            UidList::parse("3 V5 N2\n7 :a\n3 :b\nx :c\n0 :d\n8 :\n").unwrap();
        assert_eq!(l.entries, vec![(7, "a".to_string())]);
        assert_eq!(l.next, 8);
    }
}
