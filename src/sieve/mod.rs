//! Sieve at delivery: each user's scripts ([`scripts`]: where they
//! live, which is active, the compiled cache), the message as a script
//! sees it ([`message`]), what scripts remember ([`memory`]), vacation
//! replies ([`vacation`]), and one mailbox's plan ([`delivery`]). The
//! language itself is `proto::sieve`.

pub mod delivery;
pub mod manage;
pub mod memory;
pub mod message;
pub mod scripts;
pub mod vacation;
