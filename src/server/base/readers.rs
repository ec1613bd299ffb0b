//! The reader helper threads: the octets of a message being sent (POP3
//! RETR and TOP, later IMAP FETCH) are read here, a chunk at a time,
//! never on the poll loop; a slow card read holds up only the session
//! that asked for it.

use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::Arc;

use mio::Waker;

use crate::server::base::pool::Pool;
use crate::store::lock;
use crate::store::maildrop::{self, Snapshot};

/// Octets read per step of a transfer.
pub const CHUNK: usize = 32 * 1024;

/// Where the next chunk comes from.
pub enum Source {
    /// The start of message `index` of a snapshot.
    Open {
        /// The maildrop.
        snapshot: Arc<Snapshot>,
        /// Which message.
        index: usize,
    },
    /// A file from an offset to its end (IMAP FETCH streams).
    Path {
        /// The file.
        path: PathBuf,
        /// Where to start.
        offset: u64,
    },
    /// More of a message already open.
    Next {
        /// The open file, at the next octet.
        file: File,
        /// Octets of the message still to read.
        left: u64,
    },
    /// A transfer is over: close the file (for mbox, without dropping a
    /// delivery's lock, which may mean waiting for it; here, not on a
    /// durability helper, whose batch would wait too). Reports nothing.
    Close(File),
}

/// One read to make for the connection `key`.
pub struct ReadJob {
    /// The connection waiting (slot, generation).
    pub key: (usize, u64),
    /// What to read.
    pub source: Source,
    /// For mbox: the mailbox file, whose descriptors must be closed with
    /// care (see `store::lock::close_safely`).
    pub mbox: Option<PathBuf>,
}

/// What a read gave.
pub struct Chunk {
    /// The connection waiting.
    pub key: (usize, u64),
    /// The file (to read on from), the octets still unread, and the
    /// chunk; or why reading failed.
    pub result: io::Result<(File, u64, Vec<u8>)>,
    /// For mbox: the mailbox file, as in the job.
    pub mbox: Option<PathBuf>,
}

/// The reader helpers.
pub type Readers = Pool<ReadJob, Chunk>;

/// Starts `n` reader helpers.
pub fn start(n: usize, waker: Arc<Waker>) -> io::Result<Readers> {
    Pool::start("reader", n, 1, waker, |jobs| {
        jobs.into_iter().filter_map(guarded_read).collect()
    })
}

/// [`read`], a panic inside failing only this transfer (its session
/// gets `-ERR`, or its FETCH is cut short).
fn guarded_read(job: ReadJob) -> Option<Chunk> {
    let (key, mbox) = (job.key, job.mbox.clone());
    crate::util::contain::guarded(
        || format!("reader helper: transfer for connection {key:?}"),
        || read(job),
    )
    .unwrap_or_else(|| {
        Some(Chunk {
            key,
            result: Err(io::Error::other("internal error")),
            mbox,
        })
    })
}

fn read(job: ReadJob) -> Option<Chunk> {
    let opened = match job.source {
        Source::Open { snapshot, index } => maildrop::reader(&snapshot, index),
        Source::Path { path, offset } => open_at(&path, offset),
        Source::Next { file, left } => Ok((file, left)),
        Source::Close(file) => {
            close(file, job.mbox.as_ref());
            return None;
        }
    };
    let result = opened.and_then(|(mut file, left)| {
        let want = usize::try_from(left).unwrap_or(CHUNK).min(CHUNK);
        let mut data = vec![0; want];
        let mut got = 0;
        while got < want {
            match file.read(&mut data[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    close(file, job.mbox.as_ref());
                    return Err(e);
                }
            }
        }
        data.truncate(got);
        crate::util::fault::probe("read", &data);
        // A file shorter than its listing ends the message here.
        let left = if got < want { 0 } else { left - got as u64 };
        Ok((file, left, data))
    });
    Some(Chunk {
        key: job.key,
        result,
        mbox: job.mbox,
    })
}

fn open_at(path: &std::path::Path, offset: u64) -> io::Result<(File, u64)> {
    use std::io::{Seek, SeekFrom};
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    f.seek(SeekFrom::Start(offset))?;
    Ok((f, len.saturating_sub(offset)))
}

fn close(file: File, mbox: Option<&PathBuf>) {
    match mbox {
        Some(path) => lock::close_safely(file, path),
        None => drop(file),
    }
}
