//! Start-up housekeeping of the data directory: the spool folder is
//! emptied (a message still there was never acknowledged); files in
//! Maildir and queue `tmp/` folders older than 36 hours are removed, the
//! Maildir spec's rule for what a crashed delivery left behind; and a
//! file in `new/` shorter than the `S=` size its name gives is removed:
//! a crash came before the batch's flush, so it was never acknowledged
//! (the sender still has it and tries again).

use std::fs;
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::util::fs::create_dir_durable;

/// Older than this, a file in a `tmp/` folder is a crash's leftover.
pub const STALE_TMP: Duration = Duration::from_secs(36 * 60 * 60);

/// Empties (creating if needed) the spool folder and removes stale
/// `tmp/` files under `{data_dir}/mail/*/*/` and `{data_dir}/queue/`.
/// Returns how many files were removed.
pub fn prepare(data_dir: &Path, spool: &Path) -> io::Result<usize> {
    create_dir_durable(spool)?;
    let mut removed = remove_older(spool, Duration::ZERO)?;
    removed += remove_older(&data_dir.join("queue").join("tmp"), STALE_TMP)?;
    for domain in subdirs(&data_dir.join("mail"))? {
        for mailbox in subdirs(&domain)? {
            removed += remove_older(&mailbox.join("tmp"), STALE_TMP)?;
            removed += remove_cut_short(&mailbox.join("new"))?;
        }
    }
    Ok(removed)
}

/// A folder that is missing, or is not a folder: nothing to clean there.
fn nothing_there(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

/// Removes files in `dir` shorter than the `S=` in their names.
fn remove_cut_short(dir: &Path) -> io::Result<usize> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if nothing_there(&e) => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(promised) = promised_size(&name.to_string_lossy()) else {
            continue;
        };
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_file()
            && meta.len() < promised
            && fs::remove_file(entry.path()).is_ok()
        {
            log::warn!(
                "removed {}: {} of {promised} octets, cut short by a crash \
                 before it was acknowledged",
                entry.path().display(),
                meta.len()
            );
            removed += 1;
        }
    }
    Ok(removed)
}

/// The `S=` field of a Maildir name (its base, before `:2,` flags).
fn promised_size(name: &str) -> Option<u64> {
    let base = name.split(':').next()?;
    base.split(',')
        .find_map(|f| f.strip_prefix("S=")?.parse().ok())
}

fn subdirs(dir: &Path) -> io::Result<Vec<std::path::PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if nothing_there(&e) => return Ok(vec![]),
        Err(e) => return Err(e),
    };
    Ok(entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect())
}

/// Removes the plain files in `dir` last modified more than `age` ago.
fn remove_older(dir: &Path, age: Duration) -> io::Result<usize> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if nothing_there(&e) => return Ok(0),
        Err(e) => return Err(e),
    };
    let now = SystemTime::now();
    let mut removed = 0;
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        let old = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .is_some_and(|a| a >= age);
        if meta.is_file() && old && fs::remove_file(entry.path()).is_ok() {
            log::info!("removed stale {}", entry.path().display());
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_promised_by_maildir_names() {
        assert_eq!(promised_size("1.M2P3Q4.h,S=1234,W=1260"), Some(1234));
        assert_eq!(promised_size("1.M2P3Q4.h,S=10:2,S"), Some(10));
        assert_eq!(promised_size("1.M2P3Q4.h"), None);
        assert_eq!(promised_size("1.M2.h,S=x"), None);
    }
}
