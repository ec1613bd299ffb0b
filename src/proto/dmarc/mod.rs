//! DMARC (RFC 7489), sans-I/O: reading a policy record, and finding a
//! domain's organizational domain with the Public Suffix List.
//! Alignment and the decision build on these.

pub mod psl;
pub mod record;
