//! ManageSieve (RFC 5804): how users' mail clients (Roundcube's
//! managesieve plugin, Thunderbird's Sieve add-on, sieve-connect)
//! upload and choose their scripts. The command reader ([`reader`]) and
//! the session ([`session`]); the script work itself runs on a helper
//! (`sieve::manage`). No I/O.

pub mod reader;
pub mod session;

pub use session::{ManageSieve, ScriptOp, SieveStep};
