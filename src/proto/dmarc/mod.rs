//! DMARC (RFC 7489): records, organizational domains from the Public
//! Suffix List, and the decision.

pub mod evaluate;
pub mod psl;
pub mod record;
