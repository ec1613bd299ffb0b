//! The SMTP client that sends mail to other servers, sans-I/O like the
//! server: replies in, commands and what became of each recipient out.

pub mod reply;
pub mod session;
