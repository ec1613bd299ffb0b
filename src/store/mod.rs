//! Mailboxes on disk. Delivery is two-phase so one message to several
//! mailboxes lands in all of them or in none: [`stage`] makes the copy
//! durable but not yet visible (Maildir) or holds the lock with the
//! append fsync'd (mbox); [`Staged::commit`] publishes it and
//! [`Staged::abort`] takes it back.
//!
//! Runs on the durability helper threads, never on the poll loop.
//! Depends on std::fs, `util` and `proto`.

pub mod cleanup;
pub mod content;
pub mod envelopes;
pub mod folders;
pub mod headers;
pub mod index;
pub mod junk_expire;
pub mod lock;
pub mod maildir;
pub mod maildrop;
pub mod mailfolder;
pub mod mbox;
pub mod mboxfolder;
pub mod queue;
pub mod queue_state;
pub mod quota;
pub mod records;
pub mod uidlist;
pub mod usage;

use std::path::{Path, PathBuf};

use crate::config::MailboxFormat;
use crate::proto::Failure;
use content::Content;

/// One message as delivery writes it.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// The octets: trace headers, then the message, LF line ends.
    pub content: &'a Content,
    /// Envelope sender for mbox `From ` lines (`MAILER-DAEMON` if null).
    pub sender: &'a str,
    /// Header lines this copy alone gets, before the content (LF line
    /// ends): a copy with them is written, not linked.
    pub prefix: &'a [u8],
}

/// A copy written but not yet published.
#[derive(Debug)]
pub enum Staged {
    /// A file in `tmp/`, fsync'd.
    Maildir(maildir::Staged),
    /// An append under lock, fsync'd.
    Mbox(mbox::Staged),
}

impl Staged {
    /// Publishes the copy; returns the Maildir file now visible, whose
    /// folder must be fsync'd before the delivery counts (batched by the
    /// caller).
    pub fn commit(self) -> Result<Option<PathBuf>, Failure> {
        match self {
            Staged::Maildir(s) => s.commit().map(Some),
            Staged::Mbox(s) => s.commit().map(|()| None),
        }
    }

    /// Takes the copy back, leaving the mailbox as it was.
    pub fn abort(self) {
        match self {
            Staged::Maildir(s) => s.abort(),
            Staged::Mbox(s) => s.abort(),
        }
    }

    /// True for an mbox append (published by unlocking).
    pub fn is_mbox(&self) -> bool {
        matches!(self, Staged::Mbox(_))
    }

    /// The staged Maildir file, which later mailboxes may hard-link.
    pub fn link_source(&self) -> Option<&Path> {
        match self {
            Staged::Maildir(s) => Some(s.tmp_path()),
            Staged::Mbox(_) => None,
        }
    }
}

/// Why a copy could not be staged.
#[derive(Debug)]
pub enum StageError {
    /// Another program (mutt, procmail) holds the mailbox's lock: try
    /// again shortly rather than hold a helper thread.
    Busy,
    /// It failed.
    Failed(Failure),
}

impl From<Failure> for StageError {
    fn from(f: Failure) -> StageError {
        StageError::Failed(f)
    }
}

/// Writes `msg` into the mailbox folder `dir`, durable but unpublished.
/// `link` is an already staged identical Maildir file to hard-link.
pub fn stage(
    format: MailboxFormat,
    dir: &Path,
    msg: &Message<'_>,
    link: Option<&Path>,
) -> Result<Staged, StageError> {
    match format {
        MailboxFormat::Maildir => maildir::stage(dir, msg, link)
            .map(Staged::Maildir)
            .map_err(StageError::from),
        MailboxFormat::Mbox => mbox::stage(dir, msg).map(Staged::Mbox),
    }
}

/// Writes `msg` into folder `folder` of the mailbox `root`: INBOX, or
/// another (Junk) that is made and subscribed on first use.
pub fn stage_in(
    format: MailboxFormat,
    root: &Path,
    folder: &str,
    msg: &Message<'_>,
    link: Option<&Path>,
) -> Result<Staged, StageError> {
    if folder == "INBOX" {
        return stage(format, root, msg, link);
    }
    if !folders::exists(root, folder, format) {
        match folders::create(root, folder, None, format) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(transient("creating folder", root, e).into()),
        }
        folders::subscribe(root, folder, true)
            .map_err(|e| transient("subscribing", root, e))?;
    }
    let place = folders::place(root, folder, format);
    match format {
        MailboxFormat::Maildir => maildir::stage(&place, msg, link)
            .map(Staged::Maildir)
            .map_err(StageError::from),
        MailboxFormat::Mbox => mbox::stage_at(&place, msg).map(Staged::Mbox),
    }
}

/// [`stage_in`] with flags (a Sieve script's): Maildir puts them in the
/// file's name in `cur/`, mbox in the `Status`/`X-Status`/`X-Keywords`
/// lines mail readers use.
pub fn stage_flagged(
    format: MailboxFormat,
    root: &Path,
    folder: &str,
    msg: &Message<'_>,
    link: Option<&Path>,
    flags: &[String],
) -> Result<Staged, StageError> {
    if flags.is_empty() {
        return stage_in(format, root, folder, msg, link);
    }
    match format {
        MailboxFormat::Maildir => {
            let staged = stage_in(format, root, folder, msg, link)?;
            let dir = folders::place(root, folder, format);
            let bits = mailfolder::flags_for(&dir, flags);
            Ok(match staged {
                Staged::Maildir(s) => {
                    Staged::Maildir(s.flagged(&bits.to_maildir()))
                }
                other => other,
            })
        }
        MailboxFormat::Mbox => {
            let mut prefix = mbox_flag_lines(flags);
            prefix.extend_from_slice(msg.prefix);
            let flagged = Message {
                prefix: &prefix,
                ..*msg
            };
            stage_in(format, root, folder, &flagged, None)
        }
    }
}

/// mbox's flag header lines for IMAP flag names.
fn mbox_flag_lines(flags: &[String]) -> Vec<u8> {
    let has = |f: &str| flags.iter().any(|x| x.eq_ignore_ascii_case(f));
    let mut out = String::new();
    if has("\\Seen") {
        out.push_str("Status: RO\n");
    }
    let x: String = [
        ("\\Answered", 'A'),
        ("\\Flagged", 'F'),
        ("\\Deleted", 'D'),
        ("\\Draft", 'T'),
    ]
    .iter()
    .filter(|(f, _)| has(f))
    .map(|(_, c)| *c)
    .collect();
    if !x.is_empty() {
        out.push_str(&format!("X-Status: {x}\n"));
    }
    let keywords: Vec<&str> = flags
        .iter()
        .filter(|f| {
            !f.starts_with('\\') && f.bytes().all(|b| b.is_ascii_graphic())
        })
        .map(String::as_str)
        .collect();
    if !keywords.is_empty() {
        out.push_str(&format!("X-Keywords: {}\n", keywords.join(" ")));
    }
    out.into_bytes()
}

/// Any write error is worth retrying: disk full, quota, permissions
/// fixed by the admin (452 4.3.1 at the SMTP level).
pub fn transient(what: &str, path: &Path, e: std::io::Error) -> Failure {
    log::error!("{what} {}: {e}", path.display());
    Failure::Transient(format!("{what}: {}", e.kind()))
}
