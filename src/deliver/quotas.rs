//! Quotas at delivery, on the durability helper: a mailbox whose user
//! is at their limit, or that this message would take past it, gets no
//! copy. With one mailbox and nothing else to do, the dialog says so
//! (`552 5.2.2`); otherwise the others get theirs and the sender a
//! notice. What is stored is counted into each user's quota file, and
//! a user who passes 90 % of their limit is told, once.

use std::path::{Path, PathBuf};

use super::{Job, Made};
use crate::proto::Failure;
use crate::store::content::Content;
use crate::store::quota::{self, Usage};
use crate::store::{self, Message, StageError, Staged};

/// What quotas need at delivery.
#[derive(Debug, Clone)]
pub struct QuotaWork {
    /// Each local mailbox, its user, and their limit (0: none).
    pub limits: Vec<(PathBuf, String, u64)>,
    pub hostname: String,
    /// One recipient over SMTP: a full mailbox is the dialog's reply.
    pub refuse_in_dialog: bool,
}

/// A mailbox's copies: octets and messages stored, and its usage and
/// limit before them (when it has a limit).
pub type Counted = (PathBuf, u64, u64, Option<(Usage, u64)>);

/// The copy's octets in a mailbox (what `S=` will say).
pub fn copy_size(job: &Job, prefix: &[u8]) -> u64 {
    job.content.len + prefix.len() as u64
}

/// Whether `bytes` more fit in `dir`'s quota; its usage before, when
/// it has a limit. A full mailbox that the dialog can refuse fails the
/// delivery.
pub fn room(
    job: &Job,
    dir: &Path,
    bytes: u64,
) -> Result<(bool, Option<(Usage, u64)>), StageError> {
    let Some(work) = &job.quota else {
        return Ok((true, None));
    };
    let limit = work
        .limits
        .iter()
        .find(|(d, _, _)| d == dir)
        .map_or(0, |(_, _, l)| *l);
    if limit == 0 {
        return Ok((true, None));
    }
    let used = crate::store::usage::usage(dir, job.format).map_err(|e| {
        StageError::Failed(store::transient("reading the quota of", dir, e))
    })?;
    if used.fits(bytes, limit) {
        return Ok((true, Some((used, limit))));
    }
    let alone = job.mailboxes.len() == 1
        && job.relay.is_empty()
        && job.forward.is_none();
    if alone && work.refuse_in_dialog {
        return Err(StageError::Failed(Failure::MailboxFull));
    }
    log::info!("id={} {}: mailbox full: not stored", job.id, dir.display());
    Ok((false, Some((used, limit))))
}

/// Notices for the mailboxes that were full, staged for the queue.
pub fn full_notices(
    job: &Job,
    full: &[PathBuf],
    staged: &mut Vec<Staged>,
    made: &mut Made,
) -> Result<(), StageError> {
    let Some(work) = &job.quota else {
        return Ok(());
    };
    if job.sender.is_empty() {
        return Ok(()); // a bounce is never bounced
    }
    for (i, dir) in full.iter().enumerate() {
        let user = work
            .limits
            .iter()
            .find(|(d, _, _)| d == dir)
            .map_or("", |(_, u, _)| u.as_str());
        let text = super::notices::failed(
            job,
            user,
            "552 5.2.2 Mailbox full",
            &work.hostname,
        )?;
        let content = Content::in_memory(text, std::time::SystemTime::now());
        let msg = Message {
            content: &content,
            sender: "",
            prefix: b"",
        };
        let id = format!("{}Q{i}", job.id);
        let s = store::queue::stage(
            &job.queue_dir,
            &id,
            std::slice::from_ref(&job.sender),
            &msg,
            &[],
            &|_| false,
        )?;
        staged.push(Staged::Maildir(s));
        made.queued.push(id);
    }
    Ok(())
}

/// Counts what was stored into each mailbox's quota file; a user who
/// passed 90 % of their limit with it gets a notice in their INBOX.
pub fn record(job: &Job, stored: &[Counted]) {
    for (dir, bytes, count, before) in stored {
        if before.is_some() && quota::known(dir).is_none() {
            // A limited user's first mail: counted from the folders,
            // this message included.
            if let Err(e) = crate::store::usage::rebuild(dir, job.format) {
                log::warn!("quota of {}: {e}", dir.display());
            }
        } else {
            quota::add(dir, *bytes as i64, *count as i64);
        }
        if let Some((used, limit)) = before {
            let mark = limit / 10 * 9;
            if used.bytes < mark && used.bytes + bytes >= mark {
                warn_user(job, dir, *limit);
            }
        }
    }
}

/// The 90 % notice, stored straight into INBOX.
fn warn_user(job: &Job, dir: &Path, limit: u64) {
    let host = job
        .quota
        .as_ref()
        .map_or("localhost", |w| w.hostname.as_str());
    let text = format!(
        "From: Mail system <postmaster@{host}>\nSubject: Your mailbox is 90% full\n\
         Date: {}\nAuto-Submitted: auto-generated\nMIME-Version: 1.0\n\
         Content-Type: text/plain; charset=utf-8\n\n\
         Your mailbox holds more than 90% of the {} MiB it may.\n\
         Delete or move mail you no longer need; when it is full, new mail is refused.\n",
        crate::util::date::rfc5322(std::time::SystemTime::now()),
        limit >> 20
    );
    let content =
        Content::in_memory(text.into_bytes(), std::time::SystemTime::now());
    let msg = Message {
        content: &content,
        sender: "",
        prefix: b"",
    };
    let stored = store::stage(job.format, dir, &msg, None)
        .map_err(|e| format!("{e:?}"))
        .and_then(|s| s.commit().map_err(|e| e.to_string()));
    match stored {
        Ok(_) => quota::add(dir, content.len as i64, 1),
        Err(e) => log::warn!("quota notice for {}: {e}", dir.display()),
    }
}
