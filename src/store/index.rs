//! `postling-index`: what a Maildir's files do not hold, kept beside
//! them: each message's MODSEQ (CONDSTORE/QRESYNC), its flags as last
//! seen (so a change another program made while we were down gets a
//! new MODSEQ) and its size as sent (for files without `W=`). A cache:
//! when it is missing or damaged it is rebuilt from the files, and
//! clients resynchronise flags; no mail depends on it.
//!
//! Binary, little-endian: `PLIX`, version, UIDVALIDITY, highest MODSEQ,
//! count, then per message UID, flags, MODSEQ, size; an FNV-1a checksum
//! of everything before it ends the file.

use std::fs;
use std::io;
use std::path::Path;

/// The file's name.
pub const FILE: &str = "postling-index";
const MAGIC: &[u8; 4] = b"PLIX";
const VERSION: u32 = 1;
const RECORD: usize = 4 + 4 + 8 + 8;

/// One message's entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// UID.
    pub uid: u32,
    /// Flags (`proto::imap::folder::Flags` bits).
    pub flags: u32,
    /// MODSEQ.
    pub modseq: u64,
    /// Size with CRLF line ends (0: not known).
    pub size: u64,
}

/// A folder's index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Index {
    /// The UIDVALIDITY the entries belong to.
    pub uidvalidity: u32,
    /// The highest MODSEQ given.
    pub highest_modseq: u64,
    /// Entries by UID ascending.
    pub entries: Vec<Entry>,
}

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

impl Index {
    /// The index as stored.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(28 + self.entries.len() * RECORD + 8);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&self.uidvalidity.to_le_bytes());
        out.extend_from_slice(&self.highest_modseq.to_le_bytes());
        out.extend_from_slice(&(self.entries.len() as u64).to_le_bytes());
        for e in &self.entries {
            out.extend_from_slice(&e.uid.to_le_bytes());
            out.extend_from_slice(&e.flags.to_le_bytes());
            out.extend_from_slice(&e.modseq.to_le_bytes());
            out.extend_from_slice(&e.size.to_le_bytes());
        }
        let sum = fnv(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    /// Reads a stored index; None if it is not whole and ours.
    pub fn decode(data: &[u8]) -> Option<Index> {
        let (body, sum) = data.split_at_checked(data.len().checked_sub(8)?)?;
        if fnv(body) != u64::from_le_bytes(sum.try_into().ok()?) {
            return None;
        }
        let u32_at = |i: usize| {
            Some(u32::from_le_bytes(body.get(i..i + 4)?.try_into().ok()?))
        };
        let u64_at = |i: usize| {
            Some(u64::from_le_bytes(body.get(i..i + 8)?.try_into().ok()?))
        };
        if body.get(..4)? != MAGIC || u32_at(4)? != VERSION {
            return None;
        }
        let count = usize::try_from(u64_at(20)?).ok()?;
        if body.len() != 28 + count.checked_mul(RECORD)? {
            return None;
        }
        let mut entries = Vec::with_capacity(count);
        for k in 0..count {
            let at = 28 + k * RECORD;
            entries.push(Entry {
                uid: u32_at(at)?,
                flags: u32_at(at + 4)?,
                modseq: u64_at(at + 8)?,
                size: u64_at(at + 16)?,
            });
        }
        Some(Index {
            uidvalidity: u32_at(8)?,
            highest_modseq: u64_at(12)?,
            entries,
        })
    }

    /// The entry for `uid`.
    pub fn get(&self, uid: u32) -> Option<&Entry> {
        self.entries
            .binary_search_by_key(&uid, |e| e.uid)
            .ok()
            .map(|i| &self.entries[i])
    }
}

/// Reads the index in `dir`; None if missing or damaged.
pub fn read(dir: &Path) -> Option<Index> {
    let data = fs::read(dir.join(FILE)).ok()?;
    let index = Index::decode(&data);
    if index.is_none() {
        log::warn!("{}: damaged {FILE}, rebuilding it", dir.display());
    }
    index
}

/// Writes the index (new file, rename; no flush: it is a cache).
pub fn write(dir: &Path, index: &Index) -> io::Result<()> {
    static NEXT: std::sync::atomic::AtomicU64 =
        std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!("{FILE}.tmp{n}"));
    fs::write(&tmp, index.encode())?;
    fs::rename(&tmp, dir.join(FILE)).inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })
}

/// A MODSEQ above any given before: microseconds since the epoch. After
/// a restart every new MODSEQ is higher than all the last run gave (it
/// gave fewer than one a microsecond), whatever the index remembered.
pub fn fresh_modseq(now_micros: u64) -> u64 {
    now_micros.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let index = Index {
            uidvalidity: 9,
            highest_modseq: 77,
            entries: vec![
                Entry {
                    uid: 1,
                    flags: 1,
                    modseq: 5,
                    size: 100,
                },
                Entry {
                    uid: 4,
                    flags: 0,
                    modseq: 77,
                    size: 0,
                },
            ],
        };
        let data = index.encode();
        assert_eq!(Index::decode(&data), Some(index.clone()));
        assert_eq!(index.get(4).unwrap().modseq, 77);
        for cut in 0..data.len() {
            assert_eq!(Index::decode(&data[..cut]), None);
        }
        let mut flipped = data.clone();
        flipped[30] ^= 1;
        assert_eq!(Index::decode(&flipped), None);
    }
}
