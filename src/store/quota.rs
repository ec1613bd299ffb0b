//! How much a user stores, kept as mail comes and goes, in the Maildir++
//! quota file `{mailbox}/maildirsize` that Dovecot and Courier read: a
//! line per change (`BYTES COUNT`, negative when mail leaves), summed
//! when read, folded into one line when the file passes 5 KiB. Changes
//! are appended under a lock, so no folder is walked per delivery; a
//! missing or unreadable file is rebuilt from the folders (Maildir: the
//! `S=` sizes in the file names; mbox: the files' lengths) by `usage`.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::config::MailboxFormat;

/// The quota file, in the mailbox's root.
pub const FILE: &str = "maildirsize";
/// Past this size the file is folded into one line (Maildir++'s rule).
const FOLD_AT: u64 = 5120;

/// What a user stores.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub bytes: u64,
    pub messages: u64,
}

impl Usage {
    /// Whether `more` octets still fit under `limit` (0: no limit).
    pub fn fits(self, more: u64, limit: u64) -> bool {
        limit == 0 || self.bytes.saturating_add(more) <= limit
    }
}

fn file(root: &Path) -> PathBuf {
    root.join(FILE)
}

/// The mailbox root a folder's place (its Maildir, its mbox file) is in.
pub fn root_of(place: &Path, format: MailboxFormat) -> PathBuf {
    match format {
        MailboxFormat::Maildir => {
            let dotted = place
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            match (dotted, place.parent()) {
                (true, Some(p)) => p.to_path_buf(),
                _ => place.to_path_buf(),
            }
        }
        MailboxFormat::Mbox => {
            let mut at = place.parent();
            while let Some(dir) = at {
                if dir.file_name().is_some_and(|n| n == "folders") {
                    return dir.parent().unwrap_or(dir).to_path_buf();
                }
                at = dir.parent();
            }
            place.parent().unwrap_or(place).to_path_buf()
        }
    }
}

/// The file's sum, if it reads.
pub(super) fn read(root: &Path) -> Option<Usage> {
    let text = fs::read_to_string(file(root)).ok()?;
    let mut lines = text.lines();
    lines.next()?; // the limits line
    let (mut bytes, mut count) = (0i64, 0i64);
    for l in lines {
        let mut f = l.split_ascii_whitespace();
        bytes = bytes.saturating_add(f.next()?.parse::<i64>().ok()?);
        count = count.saturating_add(f.next()?.parse::<i64>().ok()?);
    }
    Some(Usage {
        bytes: bytes.max(0) as u64,
        messages: count.max(0) as u64,
    })
}

/// The usage the file gives, without rebuilding (cheap: for the loop's
/// RCPT check; None when there is no file yet). A file past what we let
/// it grow to (another program appending and never folding) is not read
/// here: None, and delivery, on its helper, checks again.
pub fn known(root: &Path) -> Option<Usage> {
    let len = fs::metadata(file(root)).ok()?.len();
    match len <= KNOWN_MAX {
        true => read(root),
        false => None,
    }
}

/// The largest quota file the loop reads: folded past 5 KiB, ours stays
/// well under it.
const KNOWN_MAX: u64 = 4 * FOLD_AT;

/// `S=` in a Maildir file name.
pub fn size_in_name(name: &str) -> Option<u64> {
    let base = name.split(':').next()?;
    base.split(',')
        .find_map(|f| f.strip_prefix("S=")?.parse().ok())
}

pub(super) fn write_whole(root: &Path, u: Usage) -> io::Result<()> {
    let text = format!("0S\n{} {}\n", u.bytes, u.messages);
    crate::util::fs::atomic_write_unflushed(&file(root), text.as_bytes())
}

/// Records a change: `bytes` and `count` come (positive) or go
/// (negative). A mailbox without a file yet is left so: its file is
/// built from the folders when its usage is first asked (`usage`).
pub fn add(root: &Path, bytes: i64, count: i64) {
    if let Err(e) = try_add(root, bytes, count) {
        // The next rebuild puts it right.
        log::warn!("quota of {}: {e}", root.display());
        let _ = fs::remove_file(file(root));
    }
}

fn try_add(root: &Path, bytes: i64, count: i64) -> io::Result<()> {
    if !file(root).exists() {
        return Ok(());
    }
    let _lock = Lock::take(root)?;
    let mut f = OpenOptions::new()
        .append(true)
        .mode(0o600)
        .open(file(root))?;
    writeln!(f, "{bytes} {count}")?;
    if f.metadata()?.len() > FOLD_AT
        && let Some(u) = read(root)
    {
        write_whole(root, u)?;
    }
    Ok(())
}

/// The quota file's own lock (a `.lock` beside it), so appends and the
/// fold never lose each other's lines.
pub(super) struct Lock {
    _held: super::lock::Locked,
}

impl Lock {
    pub(super) fn take(root: &Path) -> io::Result<Lock> {
        let held = super::lock::lock(&root.join(format!("{FILE}.lock")))?;
        Ok(Lock { _held: held })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loop_reads_a_small_file_and_leaves_an_overgrown_one() {
        let root = std::env::temp_dir()
            .join(format!("postling-quota-{}", std::process::id()));
        fs::create_dir_all(&root).unwrap();
        fs::write(file(&root), "0S\n100 1\n-40 0\n").unwrap();
        let small = known(&root);
        // Another program's appends, never folded: 100,000 lines.
        fs::write(file(&root), "0S\n".to_string() + &"1 1\n".repeat(100_000))
            .unwrap();
        let grown = known(&root);
        let whole = read(&root);
        fs::remove_dir_all(&root).unwrap();
        assert_eq!(
            small,
            Some(Usage {
                bytes: 60,
                messages: 1
            })
        );
        assert_eq!(grown, None);
        assert_eq!(whole.map(|u| u.messages), Some(100_000));
    }
}
