//! DKIM signing (RFC 6376, RFC 8463): relaxed canonicalization and the
//! signature field. Verifying is for the receivers.

pub mod canon;
pub mod sign;
