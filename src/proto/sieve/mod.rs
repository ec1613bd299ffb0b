//! Sieve (RFC 5228), as users write it for delivery: reading a script
//! ([`lexer`], [`parser`]), checking and compiling it ([`compile`] into
//! a [`script::Script`]), and running it against one message
//! ([`run`]). No I/O: the message and the store come through
//! [`run::Env`], and delivery does what the outcome says.

pub mod compile;
pub mod dates;
pub mod lexer;
pub mod matching;
pub mod parser;
pub mod run;
pub mod script;
pub mod strings;
