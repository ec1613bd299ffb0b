//! One client connection: its socket, optional TLS, buffers, session and
//! deadline. The loop in `server/mod.rs` drives it; this file only moves
//! bytes, through rustls when TLS is on.

use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::time::Instant;

use mio::net::{TcpStream, UnixStream};

use crate::server::base::services::Service;
use crate::server::base::tls_io;

/// Stop reading while this much output waits for a client that does not
/// read its replies (a pipelining flood must not grow memory).
pub const WBUF_CAP: usize = crate::proto::OUTPUT_CAP;
/// Buffers bigger than this are freed once empty, so idle connections
/// stay small.
const KEEP_CAPACITY: usize = 1024;

/// A client's socket: TCP, or the local submission socket that
/// `postling sendmail` uses.
pub enum Stream {
    /// A network client.
    Tcp(TcpStream),
    /// A local program.
    Unix(UnixStream),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.flush(),
            Stream::Unix(s) => s.flush(),
        }
    }
}

impl mio::event::Source for Stream {
    fn register(
        &mut self,
        r: &mio::Registry,
        t: mio::Token,
        i: mio::Interest,
    ) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.register(r, t, i),
            Stream::Unix(s) => s.register(r, t, i),
        }
    }

    fn reregister(
        &mut self,
        r: &mio::Registry,
        t: mio::Token,
        i: mio::Interest,
    ) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.reregister(r, t, i),
            Stream::Unix(s) => s.reregister(r, t, i),
        }
    }

    fn deregister(&mut self, r: &mio::Registry) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.deregister(r),
            Stream::Unix(s) => s.deregister(r),
        }
    }
}

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Reading and answering.
    Open,
    /// A message is with the helper threads; input waits.
    Delivering,
    /// A password is being checked (or its failure delayed); input
    /// waits.
    Authenticating,
    /// A POP3 message is streaming out; input waits.
    Sending,
    /// Flushing the last replies before closing.
    Closing,
}

/// What the transport needs of the session it carries: whether it can
/// take more input now. The only thing it knows of one, so the transport
/// imports no protocol.
pub trait Backpressure {
    /// True while the session is still busy with earlier input (a
    /// message piece being written) and reading more must wait.
    fn congested(&self) -> bool;
}

/// A client connection, carrying its protocol session `S`.
pub struct Conn<S> {
    /// Log id, unique for the process's life.
    pub id: u64,
    /// Tells this connection from an earlier one in the same slot.
    pub generation: u64,
    /// The socket.
    pub stream: Stream,
    /// The client's address.
    pub peer: IpAddr,
    /// What limits count it under (IPv6: its prefix).
    pub client: IpAddr,
    /// Which listener it came in on.
    pub service: Service,
    /// Whom the last login's failure counts against (see `login_key`).
    pub login_key: Option<crate::auth::limiter::Key>,
    /// TLS state, once STARTTLS or implicit TLS began.
    pub tls: Option<Box<rustls::ServerConnection>>,
    /// The session has been told the handshake finished.
    pub tls_announced: bool,
    /// The protocol session.
    pub session: S,
    /// Idle time allowed (smtp_timeout or pop3_timeout).
    pub idle: std::time::Duration,
    /// Input the session has not used yet (a partial line, or what was
    /// pipelined behind a message being stored).
    pub rbuf: Vec<u8>,
    /// Replies not yet written.
    pub wbuf: Vec<u8>,
    /// When the idle timer fires.
    pub deadline: Instant,
    /// Where the connection is.
    pub phase: Phase,
    /// The socket may hold unread input (mio is edge-triggered).
    pub read_pending: bool,
    /// WRITABLE interest is registered.
    pub want_write: bool,
    /// The session stopped at the output cap with work left (input kept
    /// in `rbuf`, or a listing to finish).
    pub stalled: bool,
}

pub use crate::server::base::tls_io::Input;

impl<S: Backpressure> Conn<S> {
    /// True if reading now is allowed and may find input.
    pub fn can_read(&self) -> bool {
        self.read_pending
            && self.phase == Phase::Open
            && self.wbuf.len() < WBUF_CAP
            && !self.session.congested()
    }

    /// One read into `scratch`: plaintext, decrypted if TLS is on.
    pub fn read(&mut self, scratch: &mut [u8]) -> Input {
        let got = match self.tls.as_mut() {
            Some(tls) => tls_io::read(
                tls,
                &mut self.stream,
                scratch,
                &mut self.tls_announced,
            ),
            None => tls_io::read_plain(&mut self.stream, scratch),
        };
        if matches!(got, Input::Drained) {
            self.read_pending = false;
        }
        got
    }

    /// True while output waits: replies, or TLS records.
    pub fn has_output(&self) -> bool {
        !self.wbuf.is_empty()
            || self.tls.as_ref().is_some_and(|t| t.wants_write())
    }

    /// Writes as much output as the socket takes; returns the octets
    /// the socket took.
    pub fn flush(&mut self) -> io::Result<usize> {
        let closing = self.phase == Phase::Closing;
        let written = match self.tls.as_mut() {
            Some(tls) => {
                tls_io::flush(tls, &mut self.stream, &mut self.wbuf, closing)?
            }
            None => tls_io::flush_plain(&mut self.stream, &mut self.wbuf)?,
        };
        if self.wbuf.is_empty() && self.wbuf.capacity() > KEEP_CAPACITY {
            self.wbuf = Vec::new();
        }
        Ok(written)
    }

    /// Keeps `rest` as unused input.
    pub fn keep_input(&mut self, rest: &[u8]) {
        self.rbuf.clear();
        self.rbuf.extend_from_slice(rest);
        if self.rbuf.is_empty() && self.rbuf.capacity() > KEEP_CAPACITY {
            self.rbuf = Vec::new();
        }
    }
}
