//! Per-message record files beside a folder, append-only: a header
//! (five octets naming the kind and version, UIDVALIDITY), then records
//! of `uid`, `length` and the payload. Caches: a missing or foreign
//! file is started afresh, a record cut short by a crash is dropped, and
//! records of expunged messages are dropped when the folder's index is
//! next written and they are over half. The ENVELOPE cache and the
//! header cache are such files.
//!
//! Runs on helper threads; the offsets of the files in use are held
//! here (16 octets a message, a few files at a time).

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Files whose offsets stay loaded.
const KEEP: usize = 16;

/// Which cache: the file's first five octets, telling one kind (and
/// version) from another.
pub type Magic = &'static [u8; 5];

/// Hashes a UID with one multiplication: UIDs are ours, not a
/// stranger's choice, so the default hasher's defence against chosen
/// keys buys nothing here, and a folder's worth of lookups is hot.
#[derive(Default, Clone, Copy)]
struct UidHasher(u64);

impl std::hash::Hasher for UidHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b))
                .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type ByUid<V> = HashMap<u32, V, std::hash::BuildHasherDefault<UidHasher>>;

struct Loaded {
    validity: u32,
    /// uid → (offset of the record, its length).
    at: ByUid<(u64, u32)>,
    len: u64,
    used: u64,
}

static CACHE: Mutex<Option<HashMap<PathBuf, Loaded>>> = Mutex::new(None);

/// Reads the offsets of every record; a file not ours (or another
/// UIDVALIDITY's) is started again.
fn load(path: &Path, magic: Magic, validity: u32) -> io::Result<Loaded> {
    let mut at = ByUid::default();
    let fresh = |path: &Path| -> io::Result<Loaded> {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        f.write_all(magic)?;
        f.write_all(&validity.to_le_bytes())?;
        Ok(Loaded {
            validity,
            at: ByUid::default(),
            len: 9,
            used: 0,
        })
    };
    let Ok(mut f) = File::open(path) else {
        return fresh(path);
    };
    let mut head = [0u8; 9];
    if f.read_exact(&mut head).is_err()
        || &head[..5] != magic
        || u32::from_le_bytes(head[5..9].try_into().unwrap_or_default())
            != validity
    {
        return fresh(path);
    }
    let len = f.metadata()?.len();
    let mut pos = 9u64;
    let mut rec = [0u8; 8];
    // One sequential read through a buffer, skipping payloads in it:
    // not a call per record (a folder's worth on the first command).
    let mut reader = io::BufReader::with_capacity(64 * 1024, f);
    while pos + 8 <= len {
        reader.read_exact(&mut rec)?;
        let uid = u32::from_le_bytes(rec[..4].try_into().unwrap_or_default());
        let n = u32::from_le_bytes(rec[4..].try_into().unwrap_or_default());
        if pos + 8 + u64::from(n) > len {
            break;
        }
        at.insert(uid, (pos + 8, n));
        reader.seek_relative(i64::from(n))?;
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
    path: &Path,
    magic: Magic,
    validity: u32,
    f: impl FnOnce(&Path, &mut Loaded) -> io::Result<T>,
) -> io::Result<T> {
    let mut guard = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    let cache = guard.get_or_insert_with(HashMap::new);
    let stale = cache.get(path).is_none_or(|l| l.validity != validity);
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
        cache.insert(path.to_path_buf(), load(path, magic, validity)?);
    }
    let tick = cache.values().map(|l| l.used).max().unwrap_or(0) + 1;
    let loaded = cache
        .get_mut(path)
        .ok_or_else(|| io::Error::other("cache"))?;
    loaded.used = tick;
    f(path, loaded)
}

/// The record of `uid` in the file at `path`, if any.
pub fn get(
    path: &Path,
    magic: Magic,
    validity: u32,
    uid: u32,
) -> Option<Vec<u8>> {
    with(path, magic, validity, |path, l| {
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

/// True if `uid` has a record (nothing is read but the offsets).
pub fn has(path: &Path, magic: Magic, validity: u32, uid: u32) -> bool {
    with(path, magic, validity, |_, l| Ok(l.at.contains_key(&uid)))
        .unwrap_or(false)
}

/// The records of the first of `uids`, as many as fit in `budget`
/// octets (at least one), read through one open file into `buf` (which
/// is cleared first and kept by the caller from one batch to the next):
/// where each lies in it, None where there is none. Many messages at a
/// time without a call or an allocation per message, and never more
/// memory than the budget, however large a stranger made their headers.
pub fn get_many(
    path: &Path,
    magic: Magic,
    validity: u32,
    uids: &[u32],
    budget: usize,
    buf: &mut Vec<u8>,
) -> Vec<Option<Range<usize>>> {
    buf.clear();
    let read = with(path, magic, validity, |path, l| {
        let file = File::open(path)?;
        let mut total = 0usize;
        let places: Vec<Option<(u64, u32)>> = uids
            .iter()
            .map(|u| l.at.get(u).copied())
            .enumerate()
            .take_while(|(i, p)| {
                total += p.map_or(0, |(_, n)| n as usize);
                *i == 0 || total <= budget
            })
            .map(|(_, p)| p)
            .collect();
        let wanted: u64 =
            places.iter().flatten().map(|&(_, n)| u64::from(n)).sum();
        let lo = places.iter().flatten().map(|&(o, _)| o).min().unwrap_or(0);
        let hi = places
            .iter()
            .flatten()
            .map(|&(o, n)| o + u64::from(n))
            .max()
            .unwrap_or(0);
        // Records are appended as messages are first read, so a run of
        // UIDs mostly lies together: one read for all, when the span
        // is not much more than what is wanted.
        if hi > lo && hi - lo <= 4 * wanted + 64 * 1024 {
            buf.resize((hi - lo) as usize, 0);
            file.read_exact_at(buf, lo)?;
            return Ok(places
                .iter()
                .map(|p| {
                    let (o, n) = (*p)?;
                    let at = (o - lo) as usize;
                    Some(at..at + n as usize)
                })
                .collect());
        }
        Ok(places
            .iter()
            .map(|p| {
                let (off, n) = (*p)?;
                let start = buf.len();
                buf.resize(start + n as usize, 0);
                if file.read_exact_at(&mut buf[start..], off).is_err() {
                    buf.truncate(start);
                    return None;
                }
                Some(start..buf.len())
            })
            .collect())
    });
    read.unwrap_or_else(|_| vec![None; uids.len()])
}

/// Appends the record of `uid` (unless it has one).
pub fn put(
    path: &Path,
    magic: Magic,
    validity: u32,
    uid: u32,
    envelope: &[u8],
) {
    let r = with(path, magic, validity, |path, l| {
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
        log::warn!("{}: caching: {e}", path.display());
    }
}

/// Drops records of messages no longer in the folder, when they are
/// over half of the file.
pub fn compact(path: &Path, magic: Magic, validity: u32, live: &[u32]) {
    let r = with(path, magic, validity, |path, l| {
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
        out.write_all(magic)?;
        out.write_all(&validity.to_le_bytes())?;
        let mut at =
            ByUid::with_capacity_and_hasher(alive.len(), Default::default());
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
        log::warn!("{}: compacting: {e}", path.display());
    }
}

/// Forgets the loaded offsets of `path` (tests: read the file again).
#[cfg(test)]
pub fn forget(path: &Path) {
    if let Some(c) = CACHE.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
        c.remove(path);
    }
}
