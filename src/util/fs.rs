//! Durable file-system steps. A file counts as written only when its data
//! and the directory entry naming it have both been fsync'd.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

/// Fsyncs a directory, making the names in it durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Flushes everything written to the file system holding `dir`: file
/// data, inodes and directory entries, in one journal commit (syncfs(2),
/// which reports write-back errors since Linux 5.8). One call makes a
/// whole batch of deliveries durable, where a file and a folder fsync
/// for each would cost two flushes a message on a slow card.
pub fn sync_filesystem(dir: &Path) -> io::Result<()> {
    rustix::fs::syncfs(File::open(dir)?).map_err(io::Error::from)
}

/// Creates `dir` and any missing parents, fsyncing each parent that
/// gained an entry, so the new folders survive a crash.
pub fn create_dir_durable(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dir_durable(parent)?;
    }
    // Mail is private: folders 0700 (files are created 0600).
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(e),
    }
    if let Some(parent) = dir.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Replaces `path` with `bytes` atomically: a temporary file in the same
/// folder, fsync, rename, fsync the folder. Readers see the old file or
/// the new one, never a mix. The new file is private (0600: it may hold
/// password hashes) and keeps the old file's owner and group, so a
/// users file root edits stays readable by the account postling runs as.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace(path, bytes, true)
}

/// [`atomic_write`] without the flushes, for a caller that flushes a
/// whole batch at once (`sync_filesystem`) before it relies on them.
pub fn atomic_write_unflushed(path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace(path, bytes, false)
}

fn replace(path: &Path, bytes: &[u8], flush: bool) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    // Unique per call: helper threads may write the same file at once.
    static NEXT: std::sync::atomic::AtomicU64 =
        std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.tmp{}.{n}", std::process::id()));
    let owner = fs::metadata(path).ok().map(|m| (m.uid(), m.gid()));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        if let Some((uid, gid)) = owner {
            // Best effort: only root may give a file away.
            let _ = std::os::unix::fs::fchown(&f, Some(uid), Some(gid));
        }
        f.write_all(bytes)?;
        if flush {
            f.sync_all()?;
        }
        fs::rename(&tmp, path)?;
        if flush { sync_dir(dir) } else { Ok(()) }
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
