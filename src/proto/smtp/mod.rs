//! SMTP (RFC 5321) pieces shared by the receiver and, later, the client:
//! replies, addresses, commands and the message body scanners.

pub mod address;
pub mod body;
pub mod client;
pub mod command;
pub mod host;
pub mod server;

pub use address::{Path, ReversePath};
pub use host::{
    Cx, Envelope, Host, Link, RcptError, Recipient, Route, Settings, Step,
    TlsInfo,
};
pub use server::Server;

/// One SMTP reply: a three-digit code, an RFC 3463 enhanced status code
/// and text. Multi-line replies are written by [`write_multiline`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The basic reply code (RFC 5321 4.2).
    pub code: u16,
    /// The enhanced status code (RFC 3463), empty for the greeting.
    pub status: &'static str,
    /// Human-readable text.
    pub text: String,
}

impl Reply {
    /// A reply with an enhanced status code.
    pub fn new(
        code: u16,
        status: &'static str,
        text: impl Into<String>,
    ) -> Self {
        Reply {
            code,
            status,
            text: text.into(),
        }
    }

    /// Appends the reply, CRLF-terminated, to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.code.to_string().as_bytes());
        out.push(b' ');
        if !self.status.is_empty() {
            out.extend_from_slice(self.status.as_bytes());
            out.push(b' ');
        }
        out.extend_from_slice(self.text.as_bytes());
        out.extend_from_slice(b"\r\n");
    }

    /// True for 4xx and 5xx replies.
    pub fn is_error(&self) -> bool {
        self.code >= 400
    }
}

/// Writes a multi-line reply (RFC 5321 4.2.1): `250-` on every line but
/// the last, which gets `250 `.
pub fn write_multiline(out: &mut Vec<u8>, code: u16, lines: &[&str]) {
    for (i, line) in lines.iter().enumerate() {
        let sep = if i + 1 == lines.len() { ' ' } else { '-' };
        out.extend_from_slice(format!("{code}{sep}{line}\r\n").as_bytes());
    }
}
