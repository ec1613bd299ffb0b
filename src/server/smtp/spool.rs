//! The connection's message sink: the SMTP session writes a message's
//! octets here as they arrive. The first [`IN_MEMORY`] octets stay in
//! memory; past that they go, [`IN_MEMORY`] at a time, to a file in
//! `{data_dir}/tmp/`, written by a spool helper thread, never on the
//! loop (on an SD card a write can wait for the card). One write per
//! connection is in flight at a time; while it is and the next piece is
//! full, the connection reads nothing more ([`Spool::congested`]), so a
//! connection holds about two pieces of its message however large it is.
//!
//! The trace headers are written first, at `begin`, so the spool file
//! is the stored message as it will sit in every Maildir mailbox.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::SystemTime;

use mio::Waker;

use crate::config::net::Cidr;
use crate::deliver;
use crate::inbound::read::{Prehash, Wanted};
use crate::proto::Failure;
use crate::proto::smtp::Envelope;
use crate::proto::smtp::body::Sink;
use crate::server::base::pool::Pool;
use crate::store::content::{Content, Stored};

/// Log lines keep the target they had before the file moved into its
/// folder: a log's format is an interface (filters, RUST_LOG).
const LOG_TARGET: &str = "postling::server::spool";

/// Octets of a message kept in memory before it spills to a file.
pub const IN_MEMORY: usize = 32 * 1024;

/// Where spool files go, what the trace headers say, and the helpers
/// that write them.
pub struct SpoolConfig {
    /// `{data_dir}/tmp`.
    pub dir: PathBuf,
    /// Our host name, for Received.
    pub hostname: String,
    /// The spool helpers.
    pub writers: Rc<Spoolers>,
    /// With the inbound checks on: the signatures they read (whose
    /// body hashes are computed as a stranger's message is written),
    /// and the clients not checked (`trusted_networks`).
    pub checks: Option<(Wanted, Vec<Cidr>)>,
}

/// One piece of a spool file to write.
pub struct SpoolJob {
    /// The connection (slot, generation).
    pub key: (usize, u64),
    /// The file, open; `None` for the first piece (the helper creates it).
    pub file: Option<File>,
    /// Its name.
    pub path: PathBuf,
    /// The octets to append.
    pub data: Vec<u8>,
    /// The body hashes the checks need, carried along: the piece's
    /// octets from `hash_from` on go into them as they are written.
    pub prehash: Option<Box<Prehash>>,
    pub hash_from: usize,
}

/// A piece written, or why not.
pub struct SpoolWritten {
    /// The connection.
    pub key: (usize, u64),
    /// The file's name.
    pub path: PathBuf,
    /// The file to append to next.
    pub result: io::Result<File>,
    /// The body hashes, back.
    pub prehash: Option<Box<Prehash>>,
}

/// The spool helpers.
pub type Spoolers = Pool<SpoolJob, SpoolWritten>;

/// Starts `n` spool helpers.
pub fn start(n: usize, waker: Arc<Waker>) -> io::Result<Spoolers> {
    Pool::start("spool", n, 1, waker, |jobs| {
        jobs.into_iter().map(guarded_write).collect()
    })
}

/// [`write_piece`], a panic inside failing only this message.
fn guarded_write(job: SpoolJob) -> SpoolWritten {
    let (key, path) = (job.key, job.path.clone());
    crate::util::contain::guarded(
        || format!("spool helper: {}", path.display()),
        || write_piece(job),
    )
    .unwrap_or_else(|| SpoolWritten {
        key,
        path,
        result: Err(std::io::Error::other("internal error")),
        prehash: None,
    })
}

fn write_piece(mut job: SpoolJob) -> SpoolWritten {
    if let Some(p) = &mut job.prehash {
        p.update(job.data.get(job.hash_from..).unwrap_or_default());
    }
    let result = match job.file {
        Some(f) => Ok(f),
        None => OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&job.path),
    }
    .and_then(|mut f| f.write_all(&job.data).map(|()| f));
    SpoolWritten {
        key: job.key,
        path: job.path,
        result,
        prehash: job.prehash,
    }
}

/// One connection's spool.
pub struct Spool {
    config: Rc<SpoolConfig>,
    key: (usize, u64),
    id: String,
    /// Octets not yet handed to a helper.
    buf: Vec<u8>,
    /// The spool file of the message, once it has one.
    path: Option<PathBuf>,
    /// The open file, while no write is in flight.
    file: Option<File>,
    /// A helper is writing a piece.
    in_flight: bool,
    /// The piece in flight belongs to a message since given up.
    orphaned: bool,
    len: u64,
    lines: u64,
    received: SystemTime,
    failed: Option<io::Error>,
    /// Our trace fields' length, and where Received starts among them.
    trace: (u64, u64),
    /// This message is checked: its header is kept when it spills.
    checked: bool,
    /// Its body hashes are wanted (a stranger's, the checks reading
    /// signatures).
    prehash_wanted: Option<Wanted>,
    /// Its body hashes, while no helper has them.
    prehash: Option<Box<Prehash>>,
    /// A spooled message's header (trace fields too), kept when its
    /// first piece goes to a file, if it ends within [`HEAD_KEPT`]: the
    /// checks read the names they look up from it on the loop.
    head: Vec<u8>,
}

/// The most of a spooled message's header kept in memory.
pub const HEAD_KEPT: usize = 32 * 1024;

impl Spool {
    /// An empty spool for the connection `key`.
    pub fn new(config: Rc<SpoolConfig>, key: (usize, u64)) -> Spool {
        Spool {
            config,
            key,
            id: String::new(),
            buf: Vec::new(),
            path: None,
            file: None,
            in_flight: false,
            orphaned: false,
            len: 0,
            lines: 0,
            received: SystemTime::UNIX_EPOCH,
            failed: None,
            trace: (0, 0),
            head: Vec::new(),
            checked: false,
            prehash_wanted: None,
            prehash: None,
        }
    }

    /// True while a piece is being written and the next is full: the
    /// connection must not read until [`Spool::written`].
    pub fn congested(&self) -> bool {
        self.in_flight && self.buf.len() >= IN_MEMORY
    }

    /// True while a helper is writing a piece: [`Spool::take`] waits
    /// for [`Spool::written`].
    pub fn is_writing(&self) -> bool {
        self.in_flight
    }

    /// The message written since `begin`; call it when not
    /// [`Spool::is_writing`].
    pub fn take(&mut self) -> Result<Content, Failure> {
        let lost =
            |what: String| Failure::Transient(format!("spooling: {what}"));
        if let Some(e) = self.failed.take() {
            self.discard();
            return Err(lost(e.kind().to_string()));
        }
        let stored = match self.path.take() {
            None => Stored::Memory(std::mem::take(&mut self.buf)),
            Some(path) => {
                // The file is back from its helper unless one is writing.
                let Some(file) = self.file.take().filter(|_| !self.in_flight)
                else {
                    self.path = Some(path);
                    self.discard();
                    return Err(lost("taken while writing".into()));
                };
                Stored::File {
                    file,
                    path,
                    tail: std::mem::take(&mut self.buf),
                }
            }
        };
        let content = Content {
            stored,
            len: self.len,
            lines: self.lines,
            received: self.received,
        };
        self.len = 0;
        self.lines = 0;
        Ok(content)
    }

    /// The message's trace fields (written at `begin`): their length,
    /// and where our Received field starts, which Authentication-Results
    /// goes before.
    pub fn trace(&self) -> (u64, u64) {
        self.trace
    }

    /// The header of a message that went to a file (see `head`); empty
    /// for one in memory, or a header longer than [`HEAD_KEPT`].
    pub fn take_head(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.head)
    }

    /// A spooled message's body hashes so far (all but its last piece,
    /// still in memory), if they were wanted and its header ended in
    /// its first piece.
    pub fn take_prehash(&mut self) -> Option<Box<Prehash>> {
        self.prehash.take()
    }

    /// A helper finished a piece: go on with the next, if full.
    pub fn written(
        &mut self,
        path: PathBuf,
        result: io::Result<File>,
        prehash: Option<Box<Prehash>>,
    ) {
        self.in_flight = false;
        if std::mem::take(&mut self.orphaned) {
            let _ = std::fs::remove_file(&path);
        } else {
            self.prehash = prehash;
            match result {
                Ok(file) => self.file = Some(file),
                Err(e) => return self.fail(e),
            }
        }
        if self.buf.len() >= IN_MEMORY {
            self.spill();
        }
    }

    /// Hands the buffer to a helper, unless one is writing already.
    fn spill(&mut self) {
        if self.in_flight || self.failed.is_some() {
            return;
        }
        let mut hash_from = 0;
        if self.path.is_none() && self.checked {
            // The first piece: its header is kept, if it ends in it.
            let end = memchr::memmem::find(&self.buf, b"\n\n");
            self.head = match end {
                Some(e) if e + 2 <= HEAD_KEPT => self.buf[..e + 2].to_vec(),
                _ => Vec::new(),
            };
            // And the body hashes its signatures need start here.
            let trace = self.trace.0 as usize;
            if let Some(wanted) = self.prehash_wanted
                && let Some((p, body)) = Prehash::start(
                    &self.head,
                    trace,
                    &self.config.hostname,
                    wanted,
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs() as i64),
                )
            {
                self.prehash = Some(Box::new(p));
                hash_from = body;
            }
        }
        let path = self
            .path
            .get_or_insert_with(|| {
                self.config.dir.join(format!("spool-{}", self.id))
            })
            .clone();
        self.in_flight = true;
        self.config.writers.send(SpoolJob {
            key: self.key,
            file: self.file.take(),
            path,
            data: std::mem::take(&mut self.buf),
            prehash: self.prehash.take(),
            hash_from,
        });
    }

    fn fail(&mut self, e: io::Error) {
        log::error!(target: LOG_TARGET, "spool {}: {e}", self.config.dir.display());
        self.failed = Some(e);
        self.buf = Vec::new();
        self.remove_file();
    }

    /// Removes the message's spool file, now or when its piece in flight
    /// comes back.
    fn remove_file(&mut self) {
        self.file = None;
        let Some(path) = self.path.take() else {
            return;
        };
        if self.in_flight {
            self.orphaned = true;
        } else {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Sink for Spool {
    fn begin(&mut self, envelope: &Envelope) {
        self.discard();
        self.failed = None;
        self.id = envelope.id.clone();
        self.received = SystemTime::now();
        let copies = deliver::copies(envelope);
        let head = deliver::trace_headers(
            envelope,
            &self.config.hostname,
            self.received,
            copies,
        );
        let received =
            memchr::memmem::find(&head, b"\nReceived:").map_or(0, |i| i + 1);
        self.trace = (head.len() as u64, received as u64);
        self.prehash = None;
        // As `Server::checks_wanted` decides: not the local socket, not
        // trusted networks unless logged in.
        let (checked, wanted) = match &self.config.checks {
            Some((wanted, trusted)) => (
                envelope.local_uid.is_none()
                    && (envelope.user.is_some()
                        || !trusted.iter().any(|c| c.contains(envelope.peer))),
                *wanted,
            ),
            None => (
                false,
                Wanted {
                    dkim: false,
                    arc: false,
                },
            ),
        };
        self.checked = checked;
        self.prehash_wanted = (checked
            && envelope.user.is_none()
            && (wanted.dkim || wanted.arc))
            .then_some(wanted);
        self.write(&head);
    }

    fn write(&mut self, bytes: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        self.len += bytes.len() as u64;
        self.lines += memchr::memchr_iter(b'\n', bytes).count() as u64;
        if self.buf.capacity() == 0 {
            // One allocation of the final size, not a doubling series.
            self.buf.reserve_exact(IN_MEMORY.min(bytes.len().max(4096)));
        }
        if self.buf.len() + bytes.len() > self.buf.capacity()
            && self.buf.len() < IN_MEMORY
        {
            self.buf.reserve_exact(IN_MEMORY - self.buf.len());
        }
        // Past IN_MEMORY only while a piece is in flight, and then the
        // loop stops reading (congested), so this stays near two pieces.
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= IN_MEMORY {
            self.spill();
        }
    }

    fn discard(&mut self) {
        self.buf = Vec::new();
        self.head = Vec::new();
        self.prehash = None;
        self.remove_file();
        self.len = 0;
        self.lines = 0;
    }
}

/// IMAP APPEND: the message as the client sends it, no trace headers.
impl crate::proto::imap::AppendSink for Spool {
    fn begin_append(&mut self) {
        self.discard();
        self.checked = false;
        self.prehash_wanted = None;
        self.failed = None;
        self.id = crate::util::id::queue_id();
        self.received = SystemTime::now();
    }

    fn write_append(&mut self, bytes: &[u8]) {
        self.write(bytes);
    }

    fn discard_append(&mut self) {
        self.discard();
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        // A piece in flight comes back to a connection that is gone: the
        // loop removes its file then.
        if !self.in_flight {
            self.remove_file();
        }
    }
}
