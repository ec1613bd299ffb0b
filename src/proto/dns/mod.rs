//! DNS, sans-I/O: the wire format (through hickory-proto), a bounded
//! cache, and the resolver's state machine the loop drives with UDP and
//! TCP sockets.

pub mod cache;
pub mod resolver;
pub mod route;
pub mod wire;
