//! One connection of ours to another mail server: its socket, optional
//! TLS, buffers, deadline and the SMTP client state machine. Moves
//! octets only; `outbound.rs` decides what they carry.

use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use mio::net::TcpStream;

use crate::proto::pop3::transfer::Encoder;
use crate::proto::smtp::client::session::Client;
use crate::server::base::tls_io::{self, Input};
use crate::server::outbound::tls_client::Checked;

/// The message body on its way from the queue file: chunks come from a
/// reader helper and are dot-stuffed into the output as it drains.
pub struct Body {
    /// The open file, while no read is in flight.
    pub file: Option<File>,
    /// Octets not yet read.
    pub left: u64,
    /// A chunk is being read.
    pub reading: bool,
    /// CRLF and dot-stuffing.
    pub encoder: Encoder,
    /// Octets read, not yet encoded (a line start still undecided).
    pub carry: Vec<u8>,
}

/// An outbound connection.
pub struct Peer {
    /// Tells this connection from an earlier one in the same slot (and
    /// from client connections: the counter is shared).
    pub generation: u64,
    /// The socket.
    pub stream: TcpStream,
    /// TLS, once STARTTLS (or the smarthost's implicit TLS) began.
    pub tls: Option<Box<rustls::ClientConnection>>,
    /// The end of the handshake was reported.
    pub tls_announced: bool,
    /// How the certificate check came out.
    pub checked: Option<Checked>,
    /// The SMTP client.
    pub client: Client,
    /// Input the client has not used yet.
    pub rbuf: Vec<u8>,
    /// Output not yet written.
    pub wbuf: Vec<u8>,
    /// The destination it counts against (a domain, or the smarthost).
    pub dest: String,
    /// The host name it reached (for TLS and the log).
    pub host: String,
    /// The address it reached.
    pub addr: SocketAddr,
    /// The batch it is sending, if any.
    pub batch: Option<u64>,
    /// The TCP connection is up.
    pub connected: bool,
    /// When it is given up on.
    pub deadline: Instant,
    /// A body being sent.
    pub body: Option<Body>,
    /// WRITABLE interest is registered.
    pub want_write: bool,
    /// QUIT was sent (or the client failed): close once output is out.
    pub closing: bool,
    /// Messages it carried.
    pub sent: u32,
    /// Between messages, kept open a moment for the next one to its
    /// destination.
    pub idle: bool,
}

impl Peer {
    /// `host[ip]:port` for the log.
    pub fn relay(&self) -> String {
        format!("{}[{}]:{}", self.host, self.addr.ip(), self.addr.port())
    }

    /// `none`, `verified` or `unverified`.
    pub fn tls_word(&self) -> &'static str {
        match (&self.tls, &self.checked) {
            (Some(_), Some(c)) => c.word(),
            _ => "none",
        }
    }

    /// One read into `scratch`, decrypted if TLS is on.
    pub fn read(&mut self, scratch: &mut [u8]) -> Input {
        match self.tls.as_mut() {
            Some(tls) => tls_io::read(
                tls,
                &mut self.stream,
                scratch,
                &mut self.tls_announced,
            ),
            None => tls_io::read_plain(&mut self.stream, scratch),
        }
    }

    /// True while output waits.
    pub fn has_output(&self) -> bool {
        !self.wbuf.is_empty()
            || self.tls.as_ref().is_some_and(|t| t.wants_write())
    }

    /// Writes what the socket takes.
    pub fn flush(&mut self) -> io::Result<usize> {
        match self.tls.as_mut() {
            Some(tls) => tls_io::flush(
                tls,
                &mut self.stream,
                &mut self.wbuf,
                self.closing,
            ),
            None => tls_io::flush_plain(&mut self.stream, &mut self.wbuf),
        }
    }
}
