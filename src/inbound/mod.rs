//! What postling checks of mail from strangers (issue 18), away from
//! the loop: `read` reads a message once for its signatures and body
//! hashes (or takes the hashes the spool helpers computed as it was
//! written); `assemble` turns what was gathered into the verdict and
//! runs a [`assemble::Pending`] message's checks where it is stored;
//! `verdict` is the decision and the Authentication-Results field;
//! `greylist` the greylisting decision (issue 19). The
//! loop's side (lookups) is `server::smtp::checks`. Depends on `proto`,
//! `config` and `store`.

pub mod assemble;
pub mod greylist;
pub mod read;
pub mod verdict;
