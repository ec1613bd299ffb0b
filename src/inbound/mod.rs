//! What postling checks of mail from strangers (issue 18): the helper
//! side. `read` reads a spooled message once for its signatures and
//! body hashes; the loop's side (lookups, the decision) is in
//! `server::smtp::checks`. Depends on `proto` and `store`.

pub mod assemble;
pub mod read;
pub mod verdict;
