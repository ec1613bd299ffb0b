//! Sans-I/O protocol code: state machines fed bytes, writing replies into
//! an output buffer and returning what the event loop must do next.
//!
//! Nothing here touches a socket, a file or the clock; `make lint` checks
//! that. Depends on std, memchr and bstr only.

pub mod acme;
pub mod arc;
pub mod authres;
pub mod dkim;
pub mod dmarc;
pub mod dns;
pub mod dnsbl;
pub mod http;
pub mod imap;
pub mod json;
pub mod managesieve;
pub mod milter;
pub mod pop3;
pub mod proxy;
pub mod sasl;
pub mod sieve;
pub mod smtp;
pub mod spf;
#[cfg(test)]
mod testing;
pub mod x509;

/// Output a session may leave waiting: past it, a session stops taking
/// input (and a long listing stops writing) until the loop has sent some,
/// so a client that pipelines without reading cannot grow our memory.
pub const OUTPUT_CAP: usize = 64 * 1024;

/// Whether a failure is worth retrying: it decides the reply class (4xx or
/// 5xx) and, for outbound mail, retry or bounce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Try again later (4xx).
    Transient(String),
    /// Do not try again (5xx).
    Permanent(String),
    /// Our own error (a panic, contained and logged): try again later.
    Internal,
    /// Refused by the recipient's own rules (a Sieve `reject`): 550
    /// 5.7.1 with their reason.
    Refused(String),
    /// The one mailbox is too full for the message (552 5.2.2).
    MailboxFull,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Transient(why) => write!(f, "temporary failure: {why}"),
            Failure::Permanent(why) => write!(f, "permanent failure: {why}"),
            Failure::Internal => write!(f, "internal error"),
            Failure::Refused(why) => write!(f, "refused: {why}"),
            Failure::MailboxFull => write!(f, "mailbox full"),
        }
    }
}
