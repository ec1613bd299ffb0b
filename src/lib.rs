//! postling: a complete mail server in one small binary.
//!
//! Dependencies only point down the list below; `proto` does no I/O at
//! all, and `server` is the only module that touches sockets or the
//! clock.
//!
//! - [`cli`]: argv to a [`cli::Command`].
//! - [`server`]: the one `mio` poll loop, connections, timers, signals
//!   and the durability helper threads.
//! - [`deliver`]: trace headers and the hand-off of one accepted message
//!   to every recipient mailbox.
//! - [`config`]: the config file, users and aliases.
//! - [`store`]: Maildir and mbox mailboxes.
//! - [`util`]: durable file writes, dates, ids.
//! - [`spam`]: the filter that learns from each user.
//! - [`proto`]: sans-I/O protocol state machines (SMTP so far).
#![forbid(unsafe_code)]

pub mod acme;
pub mod admin;
pub mod auth;
pub mod cli;
pub mod config;
pub mod deliver;
pub mod doctor;
pub mod inbound;
pub mod keygen;
pub mod outbound;
pub mod proto;
pub mod sendmail;
pub mod server;
pub mod sieve;
pub mod spam;
pub mod store;
pub mod util;
