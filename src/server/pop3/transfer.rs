//! The loop's state for a POP3 message being sent (RETR, TOP), held by
//! the connection's session; the steps that move it are in `pop3`.

use std::fs::File;

use crate::proto::pop3::transfer::Encoder;

/// A message being sent. Its octets come from a reader helper a chunk
/// at a time; `reading` is true while a chunk is on its way.
pub struct Transfer {
    /// The open file, while no read is in flight.
    pub(super) file: Option<File>,
    /// For mbox: the file, whose descriptor must be closed with care.
    pub(super) mbox: Option<std::path::PathBuf>,
    /// Octets of the message not yet read.
    pub(super) left: u64,
    /// A chunk is being read.
    pub(super) reading: bool,
    pub(super) encoder: Encoder,
    /// Octets read but not yet encoded (a line start still undecided).
    pub(super) carry: Vec<u8>,
}

impl Transfer {
    /// True while the transfer waits for a reader, not for the socket.
    pub fn is_reading(&self) -> bool {
        self.reading
    }
}
