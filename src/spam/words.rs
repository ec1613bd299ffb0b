//! One user's word database: for each token hash, how many of the
//! user's spam and ham messages had it, and how many of each were
//! learnt. Eight octets a token, sorted by hash: a lookup is a binary
//! search, a lesson one merge, and the file is the same bytes as the
//! memory. Bounded: past [`MAX_WORDS`] the rarest tokens go first (a
//! token seen once tells little).
//!
//! The file: `PLWORDS1`, spam and ham message counts (u32, little
//! endian), the number of entries (u32), then each entry as hash (u32),
//! spam count and ham count (u16 each, saturating).

use std::io;
use std::path::Path;

/// Tokens kept at most: 8 octets each, 1 MiB in all.
pub const MAX_WORDS: usize = 128 * 1024;
const MAGIC: &[u8; 8] = b"PLWORDS1";
const HEAD: usize = 8 + 4 * 3;

/// One token's counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The token's hash.
    pub hash: u32,
    /// Spam messages that had it.
    pub spam: u16,
    /// Ham messages that had it.
    pub ham: u16,
}

/// The database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Words {
    /// Spam messages learnt.
    pub spam: u32,
    /// Ham messages learnt.
    pub ham: u32,
    entries: Vec<Entry>,
}

/// Which way a message teaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lesson {
    /// It is spam.
    Spam,
    /// It is ham.
    Ham,
    /// It was learnt as spam by mistake: take that back.
    UnSpam,
    /// It was learnt as ham by mistake: take that back.
    UnHam,
}

impl Words {
    /// Reads a database; a missing file is an empty one.
    pub fn load(path: &Path) -> io::Result<Words> {
        match std::fs::read(path) {
            Ok(bytes) => Words::from_bytes(&bytes).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    "not a word database",
                )
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Ok(Words::default())
            }
            Err(e) => Err(e),
        }
    }

    /// Writes it durably (a new file renamed over the old).
    pub fn save(&self, path: &Path) -> io::Result<()> {
        crate::util::fs::atomic_write(path, &self.to_bytes())
    }

    /// Parses the file's bytes; None if they are not a database.
    pub fn from_bytes(bytes: &[u8]) -> Option<Words> {
        let u32_at = |at: usize| -> Option<u32> {
            Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
        };
        if bytes.get(..8)? != MAGIC {
            return None;
        }
        let (spam, ham, n) = (u32_at(8)?, u32_at(12)?, u32_at(16)? as usize);
        if n > MAX_WORDS || bytes.len() != HEAD + n * 8 {
            return None;
        }
        let entries: Vec<Entry> = bytes[HEAD..]
            .chunks_exact(8)
            .map(|c| Entry {
                hash: u32::from_le_bytes([c[0], c[1], c[2], c[3]]),
                spam: u16::from_le_bytes([c[4], c[5]]),
                ham: u16::from_le_bytes([c[6], c[7]]),
            })
            .collect();
        // Sorted and each hash once, or lookups would be wrong.
        if entries.windows(2).any(|w| w[0].hash >= w[1].hash) {
            return None;
        }
        Some(Words { spam, ham, entries })
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEAD + self.entries.len() * 8);
        out.extend_from_slice(MAGIC);
        for n in [self.spam, self.ham, self.entries.len() as u32] {
            out.extend_from_slice(&n.to_le_bytes());
        }
        for e in &self.entries {
            out.extend_from_slice(&e.hash.to_le_bytes());
            out.extend_from_slice(&e.spam.to_le_bytes());
            out.extend_from_slice(&e.ham.to_le_bytes());
        }
        out
    }

    /// Tokens known.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True before anything was learnt.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A token's counts.
    pub fn get(&self, hash: u32) -> Option<Entry> {
        self.entries
            .binary_search_by_key(&hash, |e| e.hash)
            .ok()
            .map(|i| self.entries[i])
    }

    /// Learns one message's tokens (each once).
    pub fn learn(&mut self, hashes: &[u32], lesson: Lesson) {
        match lesson {
            Lesson::Spam => self.spam = self.spam.saturating_add(1),
            Lesson::Ham => self.ham = self.ham.saturating_add(1),
            Lesson::UnSpam => self.spam = self.spam.saturating_sub(1),
            Lesson::UnHam => self.ham = self.ham.saturating_sub(1),
        }
        let mut sorted = hashes.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let old = std::mem::take(&mut self.entries);
        let mut merged = Vec::with_capacity(old.len() + sorted.len());
        let mut new = sorted.into_iter().peekable();
        for e in old {
            while let Some(&h) = new.peek().filter(|&&h| h < e.hash) {
                new.next();
                merged.extend(fresh(h, lesson));
            }
            let mut e = e;
            if new.peek() == Some(&e.hash) {
                new.next();
                change(&mut e, lesson);
            }
            if e.spam > 0 || e.ham > 0 {
                merged.push(e);
            }
        }
        merged.extend(new.filter_map(|h| fresh(h, lesson)));
        self.entries = merged;
        if self.entries.len() > MAX_WORDS {
            self.prune(MAX_WORDS - MAX_WORDS / 8);
        }
    }

    /// Keeps the `keep` tokens seen most (ties: the lower hashes).
    fn prune(&mut self, keep: usize) {
        let total = |e: &Entry| u32::from(e.spam) + u32::from(e.ham);
        let mut totals: Vec<u32> = self.entries.iter().map(total).collect();
        let cut = totals.len() - keep;
        let (_, &mut threshold, _) = totals.select_nth_unstable(cut);
        // Below the threshold: out. At it: as many as still fit.
        let above =
            self.entries.iter().filter(|e| total(e) > threshold).count();
        let mut room_at = keep - above;
        self.entries.retain(|e| {
            let t = total(e);
            t > threshold
                || (t == threshold && room_at > 0 && {
                    room_at -= 1;
                    true
                })
        });
    }
}

/// The entry a token new to the database gets, if the lesson adds.
fn fresh(hash: u32, lesson: Lesson) -> Option<Entry> {
    let mut e = Entry {
        hash,
        spam: 0,
        ham: 0,
    };
    change(&mut e, lesson);
    (e.spam > 0 || e.ham > 0).then_some(e)
}

fn change(e: &mut Entry, lesson: Lesson) {
    match lesson {
        Lesson::Spam => e.spam = e.spam.saturating_add(1),
        Lesson::Ham => e.ham = e.ham.saturating_add(1),
        Lesson::UnSpam => e.spam = e.spam.saturating_sub(1),
        Lesson::UnHam => e.ham = e.ham.saturating_sub(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_unlearns_and_round_trips() {
        let mut w = Words::default();
        w.learn(&[5, 1, 5, 9], Lesson::Spam);
        w.learn(&[9, 3], Lesson::Ham);
        assert_eq!((w.spam, w.ham, w.len()), (1, 1, 4));
        assert_eq!(
            w.get(9),
            Some(Entry {
                hash: 9,
                spam: 1,
                ham: 1
            })
        );
        assert_eq!(w.get(5).unwrap().spam, 1, "a token counts once a message");
        let back = Words::from_bytes(&w.to_bytes()).unwrap();
        assert_eq!(back, w);
        w.learn(&[5, 1, 9], Lesson::UnSpam);
        assert_eq!((w.spam, w.len()), (0, 2), "tokens at zero are gone");
        assert_eq!(
            w.get(9),
            Some(Entry {
                hash: 9,
                spam: 0,
                ham: 1
            })
        );
        w.learn(&[7], Lesson::UnHam);
        assert_eq!(
            w.get(7),
            None,
            "taking back what was never learnt adds nothing"
        );
    }

    #[test]
    fn bounded_keeping_the_tokens_seen_most() {
        let mut w = Words::default();
        let common: Vec<u32> = (0..1000).map(|i| i * 7919).collect();
        for _ in 0..3 {
            w.learn(&common, Lesson::Ham);
        }
        for round in 0..(MAX_WORDS as u32 / 4000 + 2) {
            let rare: Vec<u32> =
                (0..5000).map(|i| 0x8000_0000 + round * 5000 + i).collect();
            w.learn(&rare, Lesson::Spam);
        }
        assert!(w.len() <= MAX_WORDS);
        assert!(common.iter().all(|h| w.get(*h).is_some_and(|e| e.ham == 3)));
        assert!(w.to_bytes().len() <= HEAD + MAX_WORDS * 8);
    }

    #[test]
    fn damaged_files_are_refused() {
        let mut w = Words::default();
        w.learn(&[1, 2, 3], Lesson::Spam);
        let good = w.to_bytes();
        assert!(Words::from_bytes(&good[..good.len() - 1]).is_none());
        assert!(Words::from_bytes(b"PLWORDS2").is_none());
        let mut unsorted = good.clone();
        unsorted[HEAD..HEAD + 4].copy_from_slice(&9u32.to_le_bytes());
        assert!(Words::from_bytes(&unsorted).is_none());
        let mut huge = good;
        huge[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Words::from_bytes(&huge).is_none());
    }
}
