//! One client connection: its socket, buffers, session and deadline. The
//! loop in `server/mod.rs` drives it; this file only moves bytes.

use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::time::Instant;

use mio::net::TcpStream;

use crate::proto::smtp;

/// Stop reading while this much output waits for a client that does not
/// read its replies (a pipelining flood must not grow memory).
pub const WBUF_CAP: usize = 64 * 1024;
/// Buffers bigger than this are freed once empty, so idle connections
/// stay small.
const KEEP_CAPACITY: usize = 1024;

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Reading and answering.
    Open,
    /// A message is with the helper threads; input waits.
    Delivering,
    /// Flushing the last replies before closing.
    Closing,
}

/// Log details of the message being stored.
#[derive(Debug)]
pub struct InFlight {
    /// Queue id.
    pub id: String,
    /// Summary for the log line.
    pub summary: String,
}

/// A client connection.
pub struct Conn {
    /// Log id, unique for the process's life.
    pub id: u64,
    /// Tells this connection from an earlier one in the same slot.
    pub generation: u64,
    /// The socket.
    pub stream: TcpStream,
    /// The client's address.
    pub peer: IpAddr,
    /// The SMTP session.
    pub session: smtp::Server,
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
    /// The message being stored, while `phase` is Delivering.
    pub in_flight: Option<InFlight>,
}

/// What one read gave.
pub enum Input {
    /// Octets in the scratch buffer.
    Data(usize),
    /// Nothing more for now.
    Drained,
    /// The client closed or the socket failed.
    Gone,
}

impl Conn {
    /// True if reading now is allowed and may find input.
    pub fn can_read(&self) -> bool {
        self.read_pending
            && self.phase == Phase::Open
            && self.wbuf.len() < WBUF_CAP
    }

    /// One read into `scratch`.
    pub fn read(&mut self, scratch: &mut [u8]) -> Input {
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

    /// Writes as much of `wbuf` as the socket takes.
    pub fn flush(&mut self) -> io::Result<()> {
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
        Ok(())
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
