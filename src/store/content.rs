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
    /// ranges `remove` (sorted, not overlapping, none across `at`)
    /// left out. A spooled message is copied into a new spool file
    /// beside it (in the kernel: `io::copy` between files), the old one
    /// removed; on a helper thread, before anything links it.
    pub fn edit(
        &mut self,
        at: u64,
        text: &[u8],
        remove: &[(u64, u64)],
    ) -> io::Result<()> {
        self.finish()?;
        // The kept ranges, with the insertion among them.
        let mut cuts: Vec<(u64, u64)> = remove.to_vec();
        cuts.sort_unstable();
        let mut kept = Vec::new();
        let mut from = 0;
        for (start, end) in cuts {
            kept.push((from, start.max(from)));
            from = end.max(from);
        }
        kept.push((from, self.len));
        let pieces = |out: &mut dyn FnMut(Piece<'_>) -> io::Result<()>| -> io::Result<()> {
            let mut inserted = false;
            for &(start, end) in &kept {
                if !inserted && at <= end && at >= start {
                    out(Piece::Range(start, at))?;
                    out(Piece::Text(text))?;
                    out(Piece::Range(at, end))?;
                    inserted = true;
                } else {
                    out(Piece::Range(start, end))?;
                }
            }
            if !inserted {
                out(Piece::Text(text))?;
            }
            Ok(())
        };
        let stored = match &self.stored {
            Stored::Memory(bytes) => {
                let mut out = Vec::with_capacity(bytes.len() + text.len());
                pieces(&mut |p| {
                    match p {
                        Piece::Text(t) => out.extend_from_slice(t),
                        Piece::Range(a, b) => out
                            .extend_from_slice(&bytes[a as usize..b as usize]),
                    }
                    Ok(())
                })?;
                Stored::Memory(out)
            }
            Stored::File { path, .. } => {
                use std::io::{Seek, SeekFrom, Write};
                use std::os::unix::fs::OpenOptionsExt;
                let mut name = path.as_os_str().to_owned();
                name.push(".e");
                let new_path = PathBuf::from(name);
                let mut out = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&new_path)?;
                let mut source = File::open(path)?;
                let copied = pieces(&mut |p| match p {
                    Piece::Text(t) => out.write_all(t),
                    Piece::Range(a, b) => {
                        source.seek(SeekFrom::Start(a))?;
                        let n = io::copy(
                            &mut (&mut source).take(b - a),
                            &mut out,
                        )?;
                        match n == b - a {
                            true => Ok(()),
                            false => {
                                Err(io::Error::other("spool file is short"))
                            }
                        }
                    }
                });
                if let Err(e) = copied {
                    let _ = std::fs::remove_file(&new_path);
                    return Err(e);
                }
                Stored::File {
                    file: out,
                    path: new_path,
                    tail: Vec::new(),
                }
            }
        };
        // What was left out: the octets between kept ranges.
        let gaps: Vec<(u64, u64)> =
            kept.windows(2).map(|w| (w[0].1, w[1].0)).collect();
        let mut removed_lines = 0u64;
        {
            let mut old = self.reader()?;
            let mut at_octet = 0u64;
            for &(a, b) in &gaps {
                io::copy(&mut (&mut old).take(a - at_octet), &mut io::sink())?;
                let mut gap = Vec::new();
                (&mut old).take(b - a).read_to_end(&mut gap)?;
                removed_lines +=
                    memchr::memchr_iter(b'\n', &gap).count() as u64;
                at_octet = b;
            }
        }
        let removed: u64 = gaps.iter().map(|(a, b)| b - a).sum();
        self.len = self.len - removed + text.len() as u64;
        self.lines = self.lines - removed_lines
            + memchr::memchr_iter(b'\n', text).count() as u64;
        // The old stored form is dropped here: its spool file goes.
        self.stored = stored;
        Ok(())
    }
}

/// A piece of an edited message: octets of the old one, or new text.
enum Piece<'a> {
    Range(u64, u64),
    Text(&'a [u8]),
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
        // The old spool file is gone; the new one goes with the content.
        assert!(!path.exists());
        drop(spooled);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
