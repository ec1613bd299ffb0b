//! Putting a SORT's or THREAD's matches in order, on a helper: the one
//! place that knows both orders (`sort`, `thread`), so neither needs
//! the other.

use super::sort::{SortKey, Value, order};

/// How a helper puts a SORT's or THREAD's matches in order: the work
/// grows with the folder, so it is done off the loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrange {
    /// The values read of each match (for THREAD, `thread::keys()`).
    pub criteria: Vec<(SortKey, bool)>,
    /// THREAD: the algorithm.
    pub thread: Option<super::thread::Algorithm>,
    /// The answer names messages by UID.
    pub uid_mode: bool,
}

/// A SORT's or THREAD's matches in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arranged {
    /// SORT: the UIDs in order.
    Sorted(Vec<u32>),
    /// THREAD: the `* THREAD` line.
    Threaded(String),
}

/// Orders matches given as (UID, sequence number, values).
pub fn arrange(
    how: &Arrange,
    mut found: Vec<(u32, u32, Vec<Value>)>,
) -> Arranged {
    match how.thread {
        Some(algorithm) => {
            if !how.uid_mode {
                for m in &mut found {
                    m.0 = m.1;
                }
            }
            Arranged::Threaded(super::thread::thread(algorithm, &found))
        }
        None => Arranged::Sorted(order(&how.criteria, &found)),
    }
}
