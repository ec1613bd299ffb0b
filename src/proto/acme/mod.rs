//! ACME (RFC 8555) pieces that need no I/O: signed requests, the
//! certificate request. The protocol's steps run on the ACME helper.

pub mod csr;
pub mod jws;
