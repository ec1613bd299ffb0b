//! Authentication: password hashes in the schemes Dovecot writes, the
//! failure limiter, and the cache of verified logins. Hashing is slow on
//! purpose, so the server runs [`password::verify`] on helper threads,
//! never on the loop.

pub mod cache;
pub mod limiter;
pub mod password;
