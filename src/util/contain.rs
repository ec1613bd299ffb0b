//! Containment: a panic while serving one connection or one helper job
//! fails only that, never the process (release builds unwind). The
//! caller says what failed, so the error line names the user, folder,
//! message or queue id concerned.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Runs `f`; a panic becomes `None`, logged as an error naming `what`.
///
/// Unwind safety is asserted: callers hand in only state that the
/// failure path discards or that stays valid at every step (see the
/// README's Architecture section, "When something panics").
pub fn guarded<T>(
    what: impl FnOnce() -> String,
    f: impl FnOnce() -> T,
) -> Option<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => Some(v),
        Err(payload) => {
            log::error!(
                "{}: internal error ({}); only this failed",
                what(),
                message(&*payload)
            );
            None
        }
    }
}

/// The text a panic carried.
pub fn message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}
