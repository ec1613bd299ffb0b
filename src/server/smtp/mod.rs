//! The loop's side of SMTP (port 25, submission and the local socket):
//! the spool a message arrives into, and the durability helpers that
//! write it into every mailbox and flush before the `250`.

pub mod spool;
pub mod writer;
