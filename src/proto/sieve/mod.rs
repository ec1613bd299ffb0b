//! Sieve (RFC 5228), as users write it for delivery: reading a script
//! ([`lexer`], [`parser`]). What the commands mean, and running them,
//! are to come (issue 20). No I/O.

pub mod lexer;
pub mod parser;
