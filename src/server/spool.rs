//! The connection's message sink: the SMTP session writes a message's
//! octets here as they arrive. The first [`IN_MEMORY`] octets stay in
//! memory; past that they go to a file in `{data_dir}/tmp/`, written in
//! [`IN_MEMORY`] pieces, so a connection holds at most that much of its
//! message however large it is (`max_connections` clients each sending
//! 25 MiB must not need gigabytes).
//!
//! The trace headers are written first, at `begin`, so the spool file
//! is the stored message as it will sit in every Maildir mailbox.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::SystemTime;

use crate::deliver;
use crate::proto::Failure;
use crate::proto::smtp::Envelope;
use crate::proto::smtp::body::Sink;
use crate::store::content::{Content, Stored};

/// Octets of a message kept in memory before it spills to a file.
pub const IN_MEMORY: usize = 32 * 1024;

/// Where spool files go and what the trace headers say.
#[derive(Debug)]
pub struct SpoolConfig {
    /// `{data_dir}/tmp`.
    pub dir: PathBuf,
    /// Our host name, for Received.
    pub hostname: String,
}

/// One connection's spool.
pub struct Spool {
    config: Rc<SpoolConfig>,
    id: String,
    buf: Vec<u8>,
    file: Option<(File, PathBuf)>,
    len: u64,
    lines: u64,
    received: SystemTime,
    failed: Option<std::io::Error>,
}

impl Spool {
    /// An empty spool.
    pub fn new(config: Rc<SpoolConfig>) -> Spool {
        Spool {
            config,
            id: String::new(),
            buf: Vec::new(),
            file: None,
            len: 0,
            lines: 0,
            received: SystemTime::UNIX_EPOCH,
            failed: None,
        }
    }

    /// The message written since `begin`, or why it could not be kept.
    pub fn take(&mut self) -> Result<Content, Failure> {
        if let Some(e) = self.failed.take() {
            self.discard();
            return Err(Failure::Transient(format!("spooling: {}", e.kind())));
        }
        let stored = match self.file.take() {
            None => Stored::Memory(std::mem::take(&mut self.buf)),
            Some((mut file, path)) => {
                let written = file.write_all(&self.buf);
                self.buf = Vec::new();
                // Dropping it on an error below removes the file.
                let stored = Stored::File { file, path };
                if let Err(e) = written {
                    return Err(Failure::Transient(format!(
                        "spooling: {}",
                        e.kind()
                    )));
                }
                stored
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

    /// Moves the buffer into the spool file, creating it if needed.
    fn spill(&mut self) {
        if self.file.is_none() {
            let path = self.config.dir.join(format!("spool-{}", self.id));
            let opened = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path);
            match opened {
                Ok(f) => self.file = Some((f, path)),
                Err(e) => return self.fail(e),
            }
        }
        if let Some((file, _)) = self.file.as_mut() {
            if let Err(e) = file.write_all(&self.buf) {
                return self.fail(e);
            }
        }
        self.buf.clear();
    }

    fn fail(&mut self, e: std::io::Error) {
        log::error!("spool {}: {e}", self.config.dir.display());
        self.failed = Some(e);
        self.buf = Vec::new();
        self.remove_file();
    }

    fn remove_file(&mut self) {
        if let Some((_, path)) = self.file.take() {
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
        self.write(&head);
    }

    fn write(&mut self, bytes: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        self.len += bytes.len() as u64;
        self.lines += memchr::memchr_iter(b'\n', bytes).count() as u64;
        if self.buf.len() + bytes.len() > IN_MEMORY {
            self.spill();
            if self.failed.is_some() {
                return;
            }
        }
        if self.buf.capacity() == 0 {
            // One allocation of the final size, not a doubling series.
            self.buf.reserve_exact(IN_MEMORY.min(bytes.len().max(4096)));
        }
        if bytes.len() > IN_MEMORY {
            // Larger than the buffer: straight to the file.
            self.buf.extend_from_slice(bytes);
            return self.spill();
        }
        if self.buf.len() + bytes.len() > self.buf.capacity() {
            self.buf.reserve_exact(IN_MEMORY - self.buf.len());
        }
        self.buf.extend_from_slice(bytes);
    }

    fn discard(&mut self) {
        self.buf = Vec::new();
        self.remove_file();
        self.len = 0;
        self.lines = 0;
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        self.remove_file();
    }
}
