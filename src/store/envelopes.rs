//! `postling-envelopes`: each message's ENVELOPE as last computed, kept
//! beside a Maildir folder, so a client listing a folder (mutt, a
//! phone) is answered without opening a file per message: on an SD card
//! that is one sequential read instead of thousands of seeks.
//!
//! Append-only records after a header (`PLEV2`, UIDVALIDITY):
//! `uid`, `length`, the ENVELOPE as written. A cache: a missing or
//! foreign file is started afresh, and records of expunged messages are
//! dropped when the index is next written and they are over half.
//!
//! Runs on helper threads; the offsets of open folders are held here
//! (16 octets a message, a few folders at a time).

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The file's name in a Maildir folder.
pub const FILE: &str = "postling-envelopes";
// PLEV2: repeated address fields merged, comment names spaced as
// phrases; an older file is started afresh.
const MAGIC: &[u8; 5] = b"PLEV2";
/// Folders whose offsets stay loaded.
const KEEP: usize = 8;

struct Loaded {
    validity: u32,
    /// uid → (offset of the envelope, its length).
    at: HashMap<u32, (u64, u32)>,
    len: u64,
    used: u64,
}

static CACHE: Mutex<Option<HashMap<PathBuf, Loaded>>> = Mutex::new(None);

/// Reads the offsets of every record; a file not ours (or another
/// UIDVALIDITY's) is started again.
fn load(path: &Path, validity: u32) -> io::Result<Loaded> {
    let mut at = HashMap::new();
    let fresh = |path: &Path| -> io::Result<Loaded> {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        f.write_all(MAGIC)?;
        f.write_all(&validity.to_le_bytes())?;
        Ok(Loaded {
            validity,
            at: HashMap::new(),
            len: 9,
            used: 0,
        })
    };
    let Ok(mut f) = File::open(path) else {
        return fresh(path);
    };
    let mut head = [0u8; 9];
    if f.read_exact(&mut head).is_err()
        || &head[..5] != MAGIC
        || u32::from_le_bytes(head[5..9].try_into().unwrap_or_default())
            != validity
    {
        return fresh(path);
    }
    let len = f.metadata()?.len();
    let mut pos = 9u64;
    let mut rec = [0u8; 8];
    while pos + 8 <= len {
        f.read_exact_at(&mut rec, pos)?;
        let uid = u32::from_le_bytes(rec[..4].try_into().unwrap_or_default());
        let n = u32::from_le_bytes(rec[4..].try_into().unwrap_or_default());
        if pos + 8 + u64::from(n) > len {
            break;
        }
        at.insert(uid, (pos + 8, n));
        pos += 8 + u64::from(n);
    }
    // A record cut short by a crash is dropped.
    if pos < len {
        OpenOptions::new().write(true).open(path)?.set_len(pos)?;
    }
    Ok(Loaded {
        validity,
        at,
        len: pos,
        used: 0,
    })
}

fn with<T>(
    dir: &Path,
    validity: u32,
    f: impl FnOnce(&Path, &mut Loaded) -> io::Result<T>,
) -> io::Result<T> {
    let mut guard = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    let cache = guard.get_or_insert_with(HashMap::new);
    let path = dir.join(FILE);
    let stale = cache.get(dir).is_none_or(|l| l.validity != validity);
    if stale {
        if cache.len() >= KEEP {
            let oldest = cache
                .iter()
                .min_by_key(|(_, l)| l.used)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                cache.remove(&k);
            }
        }
        cache.insert(dir.to_path_buf(), load(&path, validity)?);
    }
    let tick = cache.values().map(|l| l.used).max().unwrap_or(0) + 1;
    let loaded = cache
        .get_mut(dir)
        .ok_or_else(|| io::Error::other("cache"))?;
    loaded.used = tick;
    f(&path, loaded)
}

/// The cached ENVELOPE of `uid`, if any.
pub fn get(dir: &Path, validity: u32, uid: u32) -> Option<Vec<u8>> {
    with(dir, validity, |path, l| {
        let Some(&(off, n)) = l.at.get(&uid) else {
            return Ok(None);
        };
        let mut buf = vec![0; n as usize];
        File::open(path)?.read_exact_at(&mut buf, off)?;
        Ok(Some(buf))
    })
    .ok()
    .flatten()
}

/// Remembers the ENVELOPE of `uid`.
pub fn put(dir: &Path, validity: u32, uid: u32, envelope: &[u8]) {
    let r = with(dir, validity, |path, l| {
        if l.at.contains_key(&uid) {
            return Ok(());
        }
        let mut f = OpenOptions::new().append(true).open(path)?;
        let mut rec = Vec::with_capacity(8 + envelope.len());
        rec.extend_from_slice(&uid.to_le_bytes());
        rec.extend_from_slice(&(envelope.len() as u32).to_le_bytes());
        rec.extend_from_slice(envelope);
        f.write_all(&rec)?;
        l.at.insert(uid, (l.len + 8, envelope.len() as u32));
        l.len += rec.len() as u64;
        Ok(())
    });
    if let Err(e) = r {
        log::warn!("{}: caching an envelope: {e}", dir.display());
    }
}

/// Drops records of messages no longer in the folder, when they are
/// over half of the file.
pub fn compact(dir: &Path, validity: u32, live: &[u32]) {
    let r = with(dir, validity, |path, l| {
        let alive: Vec<(u32, (u64, u32))> = live
            .iter()
            .filter_map(|u| l.at.get(u).map(|&x| (*u, x)))
            .collect();
        if alive.len() * 2 >= l.at.len() {
            return Ok(());
        }
        let mut src = File::open(path)?;
        let tmp = path.with_extension("tmp");
        let mut out = io::BufWriter::new(
            OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?,
        );
        out.write_all(MAGIC)?;
        out.write_all(&validity.to_le_bytes())?;
        let mut at = HashMap::with_capacity(alive.len());
        let mut pos = 9u64;
        let mut buf = Vec::new();
        for (uid, (off, n)) in alive {
            buf.resize(n as usize, 0);
            src.seek(SeekFrom::Start(off))?;
            src.read_exact(&mut buf)?;
            out.write_all(&uid.to_le_bytes())?;
            out.write_all(&n.to_le_bytes())?;
            out.write_all(&buf)?;
            at.insert(uid, (pos + 8, n));
            pos += 8 + u64::from(n);
        }
        out.flush()?;
        fs::rename(&tmp, path)?;
        l.at = at;
        l.len = pos;
        Ok(())
    });
    if let Err(e) = r {
        log::warn!("{}: compacting envelopes: {e}", dir.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_and_compacts() {
        let dir = std::env::temp_dir()
            .join(format!("postling-env-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        assert_eq!(get(&dir, 7, 1), None);
        put(&dir, 7, 1, b"(one)");
        put(&dir, 7, 2, b"(two)");
        put(&dir, 7, 3, b"(three)");
        assert_eq!(get(&dir, 7, 2).as_deref(), Some(&b"(two)"[..]));
        compact(&dir, 7, &[3]);
        assert_eq!(get(&dir, 7, 1), None);
        assert_eq!(get(&dir, 7, 3).as_deref(), Some(&b"(three)"[..]));
        // Read back from the file by a fresh load.
        CACHE.lock().unwrap().as_mut().unwrap().remove(&dir);
        assert_eq!(get(&dir, 7, 3).as_deref(), Some(&b"(three)"[..]));
        // Another UIDVALIDITY starts afresh.
        assert_eq!(get(&dir, 8, 3), None);
        fs::remove_dir_all(&dir).unwrap();
    }
}
