//! POP3 (RFC 1939) with CAPA and response codes (RFC 2449, 3206), AUTH
//! PLAIN (RFC 5034) and STLS (RFC 2595): the command parser, the session
//! state machine, and the encoder that turns a stored message into what
//! RETR and TOP send.

pub mod command;
pub mod session;
pub mod transfer;

pub use session::{Listing, Listings, LoginError, Maildrop, Pop3, Pop3Step};
