//! Messages set aside: one whose processing panicked twice (a parser
//! bug a stranger's message found) is listed in its folder's
//! `postling-set-aside` file (mbox: `.NAME.set-aside` beside the sidecar).
//! SEARCH, SORT, THREAD and FETCH of derived data then treat it as a
//! message with an empty header, and FETCH of its octets still works, so
//! one message cannot keep failing every command that touches it.
//!
//! The first panic fails the job (IMAP `NO [SERVERBUG]`) and is counted;
//! counts live in memory, so after a restart a message gets one more
//! chance. Runs on the mailbox helpers.

use std::collections::{HashMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::config::MailboxFormat;
use crate::util::contain;

/// Log lines keep the target they had before the file moved into its
/// folder: a log's format is an interface (filters, RUST_LOG).
const LOG_TARGET: &str = "postling::server::set_aside";

/// Panics a message may cause before it is set aside.
const CHANCES: u32 = 2;

/// Panics counted per (folder, UID), at most this many entries.
const MAX_COUNTED: usize = 10_000;

static PANICS: Mutex<Option<HashMap<(PathBuf, u32), u32>>> = Mutex::new(None);

/// The UIDs set aside in a folder.
pub fn load(fmt: MailboxFormat, dir: &Path) -> HashSet<u32> {
    std::fs::read_to_string(file(fmt, dir))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

fn file(fmt: MailboxFormat, dir: &Path) -> PathBuf {
    match fmt {
        MailboxFormat::Maildir => dir.join("postling-set-aside"),
        MailboxFormat::Mbox => {
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            dir.with_file_name(format!(".{name}.set-aside"))
        }
    }
}

/// Runs `f` on message `uid`. Its first panic is counted and passed on
/// (the job fails); at the second the message is set aside and `None`
/// comes back, for the caller to go on around it.
pub fn guard<T>(
    fmt: MailboxFormat,
    dir: &Path,
    uid: u32,
    f: impl FnOnce() -> T,
) -> Option<T> {
    let payload = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => return Some(v),
        Err(p) => p,
    };
    let count = {
        let mut guard = PANICS.lock().unwrap_or_else(|p| p.into_inner());
        let map = guard.get_or_insert_with(HashMap::new);
        if map.len() >= MAX_COUNTED {
            map.clear();
        }
        let n = map.entry((dir.to_path_buf(), uid)).or_insert(0);
        *n += 1;
        *n
    };
    let why = contain::message(&*payload);
    if count < CHANCES {
        log::error!(target: LOG_TARGET,
            "folder {} uid={uid}: processing failed ({why}); once more and it is set aside",
            dir.display()
        );
        resume_unwind(payload);
    }
    let mut aside = load(fmt, dir);
    aside.insert(uid);
    let mut text: Vec<String> = aside.iter().map(u32::to_string).collect();
    text.sort();
    let written = crate::util::fs::atomic_write(
        &file(fmt, dir),
        (text.join("\n") + "\n").as_bytes(),
    );
    match written {
        Ok(()) => log::error!(target: LOG_TARGET,
            "folder {} uid={uid}: processing failed again ({why}); message set aside: searches and \
             derived FETCH data treat it as having an empty header, its octets can still be fetched",
            dir.display()
        ),
        Err(e) => log::error!(target: LOG_TARGET,
            "folder {} uid={uid}: setting the message aside: {e}",
            dir.display()
        ),
    }
    None
}
