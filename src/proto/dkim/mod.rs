//! DKIM (RFC 6376, RFC 8463): canonicalization, the signature field we
//! sign with, tag lists and key records, and checking signatures.

pub mod canon;
pub mod der;
pub mod fields;
pub mod key_cache;
pub mod sign;
pub mod tags;
pub mod verify;
