//! Small helpers with no protocol knowledge: durable file writes, dates
//! unique ids and log-safe quoting.

pub mod bounded;
pub mod certs;
pub mod contain;
pub mod date;
pub mod fault;
pub mod fs;
pub mod id;
pub mod logsafe;
