//! The loop's core, the same for every service: listeners and accepting
//! under the limits, the transport [`conn::Conn`] (socket, TLS, buffers,
//! deadline), PROXY headers, timers, privilege drop, the helper pool the
//! services' helpers are built on, the reader helpers that take
//! message octets off the disk for POP3, IMAP and outbound alike, and
//! the durability helpers that write mail into mailboxes and flush
//! (SMTP's deliveries, outbound's notices, POP3's UPDATE).
//!
//! Nothing here knows a protocol: a session reaches the transport only
//! through the small [`conn::Backpressure`] trait.

pub mod accept;
pub mod conn;
pub mod listen;
pub mod pool;
pub mod privilege;
pub mod proxy;
pub mod readers;
pub mod services;
pub mod stats;
pub mod timer;
pub mod tls;
pub mod tls_io;
pub mod writer;
