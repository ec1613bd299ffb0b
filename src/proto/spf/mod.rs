//! SPF (RFC 7208), sans-I/O: reading a record and expanding its macros.
//! Evaluating a record against a client (the lookups it asks for, the
//! limits on them, the result) builds on these.

pub mod check;
pub mod macros;
pub mod record;
pub mod resolved;
