//! A message's stored octets (trace headers included, LF line ends) as
//! the loop hands them to delivery: small messages in memory, large ones
//! in a spool file under `{data_dir}/tmp/` that Maildir delivery
//! hard-links into each mailbox, so a big message is never copied again.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Where the octets are.
#[derive(Debug)]
pub enum Stored {
    /// The whole message, in memory.
    Memory(Vec<u8>),
    /// A spool file (not yet flushed), removed when this is dropped:
    /// the mailboxes keep their own links.
    File {
        /// The open spool file.
        file: File,
        /// Its name, for hard links and for removal.
        path: PathBuf,
        /// The last octets, not yet in the file: `finish` appends them
        /// (on a helper thread, not on the loop).
        tail: Vec<u8>,
    },
}

impl Drop for Stored {
    fn drop(&mut self) {
        if let Stored::File { path, .. } = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// One message's stored form.
#[derive(Debug)]
pub struct Content {
    /// The octets.
    pub stored: Stored,
    /// Their number.
    pub len: u64,
    /// Line ends among them (the size with CRLF is `len + lines`).
    pub lines: u64,
    /// When the message began to arrive (the Received date).
    pub received: SystemTime,
}

impl Content {
    /// Content held in memory (notices we write, and tests).
    pub fn in_memory(bytes: Vec<u8>, received: SystemTime) -> Content {
        let lines = memchr::memchr_iter(b'\n', &bytes).count() as u64;
        Content {
            len: bytes.len() as u64,
            lines,
            stored: Stored::Memory(bytes),
            received,
        }
    }

    /// A reader from the first octet.
    pub fn reader(&self) -> io::Result<Box<dyn Read + '_>> {
        match &self.stored {
            Stored::Memory(bytes) => Ok(Box::new(bytes.as_slice())),
            Stored::File { path, .. } => Ok(Box::new(File::open(path)?)),
        }
    }

    /// Completes a spool file with its last octets; before anything
    /// reads or links it.
    pub fn finish(&mut self) -> io::Result<()> {
        if let Stored::File { file, tail, .. } = &mut self.stored
            && !tail.is_empty()
        {
            io::Write::write_all(file, tail)?;
            *tail = Vec::new();
        }
        Ok(())
    }

    /// The spool file, which delivery may hard-link.
    pub fn spool_path(&self) -> Option<&Path> {
        match &self.stored {
            Stored::Memory(_) => None,
            Stored::File { path, .. } => Some(path),
        }
    }

    /// Rewrites the header: `text` inserted at octet `at`, the octet
    /// ranges `remove` (sorted or not, not overlapping, none across
    /// `at`) left out. Everything edited is read into memory (a header's
    /// worth); a spooled message is edited in place, its body moved by
    /// the difference, so no second file (no second inode: creating
    /// them is what costs on ext4) is made. On a helper thread, before
    /// anything links the file.
    pub fn edit(
        &mut self,
        at: u64,
        text: &[u8],
        remove: &[(u64, u64)],
    ) -> io::Result<()> {
        self.finish()?;
        let upto = remove
            .iter()
            .map(|r| r.1)
            .chain([at])
            .max()
            .unwrap_or(at)
            .min(self.len);
        let mut head = Vec::new();
        self.reader()?.take(upto).read_to_end(&mut head)?;
        if head.len() as u64 != upto {
            return Err(io::Error::other("spool file is short"));
        }
        let new_head = edited(&head, at, text, remove);
        match &mut self.stored {
            Stored::Memory(bytes) => {
                bytes.splice(..upto as usize, new_head.iter().copied());
            }
            Stored::File { path, .. } => {
                // Handles of our own: the one kept may append (pwrite
                // ignores the offset then).
                let source = File::open(&*path)?;
                let file =
                    std::fs::OpenOptions::new().write(true).open(&*path)?;
                shift(&source, &file, upto, self.len, new_head.len() as u64)?;
                std::os::unix::fs::FileExt::write_all_at(&file, &new_head, 0)?;
                let new_len = self.len - upto + new_head.len() as u64;
                if new_len < self.len {
                    file.set_len(new_len)?;
                }
            }
        }
        let newlines = |b: &[u8]| memchr::memchr_iter(b'\n', b).count() as u64;
        self.len = self.len - upto + new_head.len() as u64;
        self.lines = self.lines - newlines(&head) + newlines(&new_head);
        Ok(())
    }
}

/// `head` with `text` inserted at `at` and the `remove` ranges left out.
fn edited(
    head: &[u8],
    at: u64,
    text: &[u8],
    remove: &[(u64, u64)],
) -> Vec<u8> {
    let mut cuts: Vec<(u64, u64)> = remove.to_vec();
    cuts.sort_unstable();
    let mut out = Vec::with_capacity(head.len() + text.len());
    let mut from = 0u64;
    let mut inserted = false;
    let mut keep = |out: &mut Vec<u8>, a: u64, b: u64| {
        if !inserted && (a..=b).contains(&at) {
            out.extend_from_slice(&head[a as usize..at as usize]);
            out.extend_from_slice(text);
            out.extend_from_slice(&head[at as usize..b as usize]);
            inserted = true;
        } else {
            out.extend_from_slice(&head[a as usize..b as usize]);
        }
    };
    for (start, end) in cuts {
        keep(&mut out, from, start.max(from));
        from = end.max(from);
    }
    keep(&mut out, from, head.len() as u64);
    out
}

/// Moves the file's octets `[from, len)` so that they start at `to`:
/// from the end when moving forward, from the start when back, so that
/// nothing is overwritten before it is read.
fn shift(
    source: &File,
    file: &File,
    from: u64,
    len: u64,
    to: u64,
) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    const PIECE: u64 = 64 * 1024;
    if to == from {
        return Ok(());
    }
    let mut buf = vec![0u8; PIECE.min(len - from) as usize];
    let mut moved = 0u64;
    let total = len - from;
    while moved < total {
        let n = PIECE.min(total - moved);
        // Forward: the last piece first.
        let offset = match to > from {
            true => len - moved - n,
            false => from + moved,
        };
        let piece = &mut buf[..n as usize];
        source.read_exact_at(piece, offset)?;
        file.write_all_at(piece, offset - from + to)?;
        moved += n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"Return-Path: <a@b>\nReceived: x\nAuthentication-Results: us; spf=pass\nSubject: s\n\nbody\n";

    fn edited(content: &mut Content) -> Vec<u8> {
        let at = 19; // after Return-Path
        let line = b"Authentication-Results: us; spf=pass\n";
        let start = memchr::memmem::find(MSG, line).unwrap() as u64;
        let forged = (start, start + line.len() as u64);
        content
            .edit(at, b"Authentication-Results: us; none\n", &[forged])
            .unwrap();
        let mut out = Vec::new();
        content.reader().unwrap().read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn edits_the_header_in_memory_and_in_a_file() {
        let want = b"Return-Path: <a@b>\nAuthentication-Results: us; none\nReceived: x\nSubject: s\n\nbody\n";
        let mut memory =
            Content::in_memory(MSG.to_vec(), SystemTime::UNIX_EPOCH);
        assert_eq!(edited(&mut memory), want);
        assert_eq!((memory.len, memory.lines), (want.len() as u64, 6));
        let dir = std::env::temp_dir()
            .join(format!("postling-edit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("spool-1");
        std::fs::write(&path, &MSG[..40]).unwrap();
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        let mut spooled = Content {
            stored: Stored::File {
                file,
                path: path.clone(),
                tail: MSG[40..].to_vec(),
            },
            len: MSG.len() as u64,
            lines: 6,
            received: SystemTime::UNIX_EPOCH,
        };
        assert_eq!(edited(&mut spooled), want);
        assert_eq!((spooled.len, spooled.lines), (want.len() as u64, 6));
        // Edited in place: the same file, which goes with the content.
        assert_eq!(std::fs::read(&path).unwrap(), want);
        drop(spooled);
        assert!(!path.exists());
        // Longer and shorter, over a body of many pieces.
        let body: Vec<u8> =
            (0..300_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        for (insert, cut) in [(&b"X-Long: grown\n"[..], 0u64), (b"", 5)] {
            let msg = [&b"Subject: s\nX-Old: zap\n\n"[..], &body].concat();
            std::fs::write(&path, &msg).unwrap();
            let file =
                std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            let mut big = Content {
                stored: Stored::File {
                    file,
                    path: path.clone(),
                    tail: Vec::new(),
                },
                len: msg.len() as u64,
                lines: 3,
                received: SystemTime::UNIX_EPOCH,
            };
            big.edit(11, insert, &[(11, 11 + cut)]).unwrap();
            let mut want = msg.clone();
            want.splice(11..11 + cut as usize, insert.iter().copied());
            let mut got = Vec::new();
            big.reader().unwrap().read_to_end(&mut got).unwrap();
            assert!(got == want, "insert {insert:?} cut {cut}");
            assert_eq!(big.len, want.len() as u64);
        }
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
