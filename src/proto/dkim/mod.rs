//! DKIM (RFC 6376, RFC 8463): relaxed canonicalization, the signature
//! field we sign with, and reading tag lists and key records.

pub mod canon;
pub mod sign;
pub mod tags;
