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
}
