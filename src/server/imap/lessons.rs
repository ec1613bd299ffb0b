//! What a user's IMAP actions teach their spam filter, and only those:
//! a message moved or copied into Junk, or given `$Junk`, is spam; one
//! moved out of Junk, or given `$NotJunk`, is ham. Mail merely left in
//! INBOX teaches nothing. Found on the loop from the request and the
//! folder as the session sees it; learnt on the mailbox helper, from
//! the messages' files, before the change itself is made.
//!
//! One action is taught once: Thunderbird marks `$Junk` and then moves
//! to Junk, so a move skips what carries the keyword already.

use std::path::{Path, PathBuf};

use crate::config::MailboxFormat;
use crate::proto::imap::folder::{Flags, Folder};
use crate::spam::filing::Taught;
use crate::store::folders;

/// Lessons to learn with a request's work.
pub struct Lessons {
    /// The user's mailbox root (where the word file is).
    pub root: PathBuf,
    /// Our authserv-id.
    pub ours: String,
    /// Each message (file, or mbox location) and what it teaches.
    pub items: Vec<(String, Taught)>,
}

/// The index of keyword `name` in the folder's table (keywords are
/// compared without case, RFC 9051 2.3.2).
fn keyword(f: &Folder, name: &str) -> Option<Flags> {
    f.keywords
        .iter()
        .position(|k| k.eq_ignore_ascii_case(name))
        .map(Flags::keyword)
}

/// The lessons of a COPY or MOVE from `from` to `to` of `uids`.
pub fn of_copy(
    f: &Folder,
    root: &Path,
    fmt: MailboxFormat,
    from: &Path,
    to: &Path,
    uids: &[u32],
    ours: &str,
) -> Option<Box<Lessons>> {
    let junk = folders::place(root, folders::JUNK, fmt);
    let (taught, skip) = match (from == junk, to == junk) {
        (false, true) => (Taught::IntoJunk, keyword(f, "$Junk")),
        (true, false) => (Taught::OutOfJunk, keyword(f, "$NotJunk")),
        _ => return None,
    };
    let items = uids
        .iter()
        .filter_map(|u| f.get(*u))
        .filter(|m| !skip.is_some_and(|k| m.flags.has(k)))
        .map(|m| (m.file.to_string(), taught))
        .collect();
    lessons(root, ours, items)
}

/// The lessons of a STORE: `$Junk` or `$NotJunk` newly set.
pub fn of_store(
    f: &Folder,
    root: &Path,
    fmt: MailboxFormat,
    dir: &Path,
    changes: &[(u32, Flags)],
    ours: &str,
) -> Option<Box<Lessons>> {
    let in_junk = dir == folders::place(root, folders::JUNK, fmt);
    let (junk, not_junk) = (keyword(f, "$Junk"), keyword(f, "$NotJunk"));
    let set = |k: Option<Flags>, old: Flags, new: Flags| {
        k.is_some_and(|k| new.has(k) && !old.has(k))
    };
    let items = changes
        .iter()
        .filter_map(|(uid, new)| {
            let m = f.get(*uid)?;
            let taught = if set(junk, m.flags, *new) && !in_junk {
                // In Junk already, its move there taught it.
                Taught::MarkedJunk
            } else if set(not_junk, m.flags, *new) {
                let was = junk.is_some_and(|k| m.flags.has(k)) || in_junk;
                Taught::MarkedNotJunk { was_junk: was }
            } else {
                return None;
            };
            Some((m.file.to_string(), taught))
        })
        .collect();
    lessons(root, ours, items)
}

fn lessons(
    root: &Path,
    ours: &str,
    items: Vec<(String, Taught)>,
) -> Option<Box<Lessons>> {
    (!items.is_empty()).then(|| {
        Box::new(Lessons {
            root: root.to_path_buf(),
            ours: ours.to_string(),
            items,
        })
    })
}

/// On the mailbox helper: reads each message of `dir` and learns. A
/// failure is logged: the user's action itself goes ahead.
pub fn learn(fmt: MailboxFormat, dir: &Path, lessons: &Lessons) {
    // One message read at a time (a moved one may be gone: skipped).
    let mut items = lessons.items.iter();
    let next = || {
        items.find_map(|(file, taught)| {
            let (mut raw, _) =
                super::folder_io::read_message(fmt, dir, file).ok()?;
            raw.truncate(crate::spam::filing::MAX_READ as usize);
            Some((raw, *taught))
        })
    };
    let learnt =
        crate::spam::filing::learn(&lessons.root, &lessons.ours, next);
    let what = lessons.items.first().map_or("", |m| m.1.name());
    match learnt {
        Ok(n) => log::info!(
            "spam filter of {}: learnt {n} message(s) ({what})",
            lessons.root.display(),
        ),
        Err(e) => log::warn!(
            "spam filter of {}: not learnt: {e}",
            lessons.root.display()
        ),
    }
}
