//! The Sendmail milter protocol (libmilter's version 6, as Postfix
//! speaks it), our side: packets ([`wire`]) and one conversation about
//! one message ([`conversation`]). No I/O.

pub mod conversation;
pub mod message;
pub mod wire;

/// A replacement body a milter may give at most.
pub const MAX_BODY: usize = 64 * 1024 * 1024;
