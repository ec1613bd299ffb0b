//! Sending mail out, the parts that need neither sockets nor clocks:
//! what an attempt's results mean for a queued message ([`settle`]) and
//! the delivery status notifications sent back to senders ([`dsn`]).
//! The loop's side is `server::outbound`.

pub mod dsn;
pub mod settle;
pub mod srs;
