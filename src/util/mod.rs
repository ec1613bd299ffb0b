//! Small helpers with no protocol knowledge: durable file writes, dates
//! and unique ids.

pub mod date;
pub mod fs;
pub mod id;
