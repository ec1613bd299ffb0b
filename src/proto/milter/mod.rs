//! The Sendmail milter protocol (libmilter's version 6, as Postfix
//! speaks it), our side: packets ([`wire`]) and one conversation about
//! one message ([`conversation`]). No I/O.

pub mod conversation;
pub mod message;
pub mod wire;

/// A replacement body a milter may give at most (it is held whole: a
/// little over the default `max_message_size`).
pub const MAX_BODY: usize = 32 * 1024 * 1024;
