//! The small HTTP/1.1 listener's protocol: requests parsed in place,
//! the pages mail clients ask for, and a session that answers them.

pub mod pages;
pub mod request;
pub mod session;

pub use session::{Http, HttpStep};
