//! One client connection: its socket, optional TLS, buffers, session and
//! deadline. The loop in `server/mod.rs` drives it; this file only moves
//! bytes, through rustls when TLS is on.

use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::time::Instant;

use mio::net::{TcpStream, UnixStream};

use super::services::Service;
use super::session::Session;

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

/// A client connection.
pub struct Conn {
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
    /// TLS state, once STARTTLS or implicit TLS began.
    pub tls: Option<Box<rustls::ServerConnection>>,
    /// The session has been told the handshake finished.
    pub tls_announced: bool,
    /// The protocol session.
    pub session: Session,
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

/// What one read gave.
pub enum Input {
    /// Octets in the scratch buffer.
    Data(usize),
    /// Nothing more for now.
    Drained,
    /// The client closed or the socket failed.
    Gone,
    /// A TLS handshake just finished.
    Handshaked,
}

impl Conn {
    /// True if reading now is allowed and may find input.
    pub fn can_read(&self) -> bool {
        self.read_pending
            && self.phase == Phase::Open
            && self.wbuf.len() < WBUF_CAP
            && !self.session.congested()
    }

    /// One read into `scratch`: plaintext, decrypted if TLS is on.
    pub fn read(&mut self, scratch: &mut [u8]) -> Input {
        if self.tls.is_some() {
            return self.read_tls(scratch);
        }
        loop {
            return match self.stream.read(scratch) {
                Ok(0) => Input::Gone,
                Ok(n) => Input::Data(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.read_pending = false;
                    Input::Drained
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => Input::Gone,
            };
        }
    }

    fn read_tls(&mut self, scratch: &mut [u8]) -> Input {
        let Some(tls) = self.tls.as_mut() else {
            return Input::Gone;
        };
        loop {
            if !tls.is_handshaking() && !self.tls_announced {
                self.tls_announced = true;
                return Input::Handshaked;
            }
            match tls.reader().read(scratch) {
                Ok(0) => return Input::Gone,
                Ok(n) => return Input::Data(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return Input::Gone,
            }
            match tls.read_tls(&mut self.stream) {
                Ok(0) => return Input::Gone,
                Ok(_) => {
                    if let Err(e) = tls.process_new_packets() {
                        log::info!("TLS error from {}: {e}", self.peer);
                        // Send the alert rustls queued, best effort.
                        let _ = tls.write_tls(&mut self.stream);
                        return Input::Gone;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.read_pending = false;
                    return Input::Drained;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Input::Gone,
            }
        }
    }

    /// True while output waits: replies, or TLS records.
    pub fn has_output(&self) -> bool {
        !self.wbuf.is_empty()
            || self.tls.as_ref().is_some_and(|t| t.wants_write())
    }

    /// Writes as much output as the socket takes; returns the octets
    /// the socket took.
    pub fn flush(&mut self) -> io::Result<usize> {
        if self.tls.is_some() {
            return self.flush_tls();
        }
        let mut written = 0;
        while written < self.wbuf.len() {
            match self.stream.write(&self.wbuf[written..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.wbuf.drain(..written);
        if self.wbuf.is_empty() && self.wbuf.capacity() > KEEP_CAPACITY {
            self.wbuf = Vec::new();
        }
        Ok(written)
    }

    fn flush_tls(&mut self) -> io::Result<usize> {
        let Some(tls) = self.tls.as_mut() else {
            return Ok(0);
        };
        let mut written = 0;
        // Until the socket would block or nothing is left: mio is
        // edge-triggered, so stopping while the socket still has room
        // would wait for a writable edge that never comes.
        loop {
            if !self.wbuf.is_empty() {
                // Bounded by the buffer limit: what does not fit stays
                // in wbuf, which stops reading once it is over its cap.
                let n = tls.writer().write(&self.wbuf)?;
                self.wbuf.drain(..n);
            }
            if self.phase == Phase::Closing && self.wbuf.is_empty() {
                // A clean TLS end, so clients see EOF, not a truncation
                // attack; rustls sends the alert only once.
                tls.send_close_notify();
            }
            if !tls.wants_write() {
                break;
            }
            match tls.write_tls(&mut self.stream) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
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
