//! Local delivery of one accepted message: the trace headers we prepend,
//! and the all-or-nothing write into every recipient mailbox.
//!
//! [`trace_headers`] runs on the poll loop (it is cheap); [`deliver`]
//! runs on a durability helper thread. Depends on `store`, `util`,
//! `proto`.

mod notices;
pub mod quotas;
mod sieve_plans;

use std::collections::BTreeSet;
use std::fs;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::SystemTime;

use crate::config::MailboxFormat;
use crate::proto::Failure;
use crate::proto::smtp::{Envelope, Route};
use crate::store::content::Content;
use crate::store::{self, Message, StageError, Staged};
use crate::util::date;
use crate::util::fs::{sync_dir, sync_filesystem};

/// One message to store, as handed to the helper threads.
#[derive(Debug)]
pub struct Job {
    /// Trace headers and message, LF line ends.
    pub content: Content,
    /// Envelope sender, empty for `<>`.
    pub sender: String,
    /// Mailbox folders, each once.
    pub mailboxes: Vec<PathBuf>,
    /// How they are stored.
    pub format: MailboxFormat,
    /// Recipients in other domains, for the outbound queue.
    pub relay: Vec<String>,
    /// Alias targets in other domains, queued apart.
    pub forward: Option<Box<Forward>>,
    /// The outbound queue's folder.
    pub queue_dir: PathBuf,
    /// The queue id (the queue file's name).
    pub id: String,
    /// DKIM signers: queued mail from one of their domains is signed.
    pub dkim: std::sync::Arc<[crate::proto::dkim::sign::Signer]>,
    /// Whose From: addresses the submitter may have signed.
    pub signing: Signing,
    /// The folder local copies go into: INBOX, or Junk (the checks'
    /// verdict).
    pub folder: &'static str,
    /// Mailboxes whose copy goes elsewhere, with header lines of its
    /// own (a user's filter sent it to Junk).
    pub filed: Vec<Filed>,
    /// Authentication-Results to add, forged ones to drop; applied once,
    /// before the first copy.
    pub edit: Option<Box<HeaderEdit>>,
    /// The users' Sieve scripts, for mail that runs them.
    pub sieve: Option<Box<crate::sieve::delivery::Work>>,
    /// The users' storage limits.
    pub quota: Option<Box<quotas::QuotaWork>>,
}

impl HeaderEdit {
    /// The verdict's field, put in before our Received (at `at`), and
    /// the forged fields it names left out; a message the checks send
    /// to Junk also says so and why (`X-Spam`).
    pub fn of(
        decided: crate::inbound::assemble::Decided,
        at: u64,
    ) -> HeaderEdit {
        let mut text = decided.field.into_bytes();
        if let crate::inbound::verdict::Disposition::Junk(why) =
            &decided.disposition
        {
            let why: String = why
                .chars()
                .filter(|c| !c.is_control() && *c != '"')
                .collect();
            text.extend(spam_header(&format!("reason=\"{why}\"")));
        }
        HeaderEdit {
            at,
            text,
            remove: decided.forged,
        }
    }
}

/// The header lines of a copy we put into Junk: `why` says why
/// (SpamAssassin's names, which mail clients' filters know).
pub fn spam_header(why: &str) -> Vec<u8> {
    format!("X-Spam: yes\nX-Spam-Status: Yes, {why}\n").into_bytes()
}

/// One mailbox's copy, filed apart from the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filed {
    /// The mailbox.
    pub mailbox: PathBuf,
    /// Its folder.
    pub folder: &'static str,
    /// Header lines for this copy alone (LF line ends).
    pub header: Vec<u8>,
}

/// A header change made at delivery (`Content::edit`).
#[derive(Debug, Clone)]
pub struct HeaderEdit {
    /// Where the new field goes.
    pub at: u64,
    /// The field, LF line ends.
    pub text: Vec<u8>,
    /// Octet ranges of fields left out.
    pub remove: Vec<(u64, u64)>,
}

/// Whose addresses a message may be DKIM-signed for: our signature
/// vouches for its From:, so only for what the submitter owns.
#[derive(Debug, Clone)]
pub enum Signing {
    /// Any address: the host itself (root, the server's account, our
    /// own notices) or `trusted_networks`.
    Any,
    /// A local account's own addresses (lower case).
    Addresses(Vec<String>),
    /// A logged-in user's: their address and aliases that reach them.
    User(std::sync::Arc<crate::config::directory::Directory>, String),
    /// None: nobody vouches for it.
    Nobody,
}

impl Signing {
    /// True if a From: address `local@domain` may be signed for.
    pub fn owns(&self, address: &str) -> bool {
        match self {
            Signing::Any => true,
            Signing::Nobody => false,
            Signing::Addresses(own) => {
                own.iter().any(|a| a.eq_ignore_ascii_case(address))
            }
            Signing::User(directory, user) => {
                crate::proto::smtp::address::parse_mailbox(address.as_bytes())
                    .is_ok_and(|p| directory.may_send_as(user, &p))
            }
        }
    }
}

/// The forwarded copy of a message.
#[derive(Debug)]
pub struct Forward {
    /// Its recipients (alias targets in other domains).
    pub rcpts: Vec<String>,
    /// Its envelope sender (rewritten with SRS).
    pub sender: String,
}

/// The queue id of a message's forwarded copy.
pub fn forward_id(id: &str) -> String {
    format!("{id}F")
}

/// Copies a delivery made visible: Maildir and queue files whose folders
/// still need an fsync before the `250`.
#[derive(Debug, Default)]
pub struct Published {
    /// The files, as named in `new/`.
    pub files: Vec<PathBuf>,
    /// Their folders, to fsync (batched by the caller).
    pub dirs: BTreeSet<PathBuf>,
    /// What the loop learns of it once durable.
    pub made: Made,
}

/// What a delivery made besides the copies the loop expected: queue
/// entries and folders a Sieve script chose.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Made {
    /// Queue ids (redirects, vacation replies, rejections' notices).
    pub queued: Vec<String>,
    /// Folders copies went into.
    pub folders: Vec<PathBuf>,
}

impl Published {
    fn add(&mut self, file: PathBuf) {
        if let Some(dir) = file.parent() {
            self.dirs.insert(dir.to_path_buf());
        }
        self.files.push(file);
    }

    /// Takes every copy back: the client is told the delivery failed,
    /// and its retry must not find a duplicate.
    pub fn withdraw(self) {
        for file in &self.files {
            log::warn!("withdrawing {}", file.display());
            let _ = fs::remove_file(file);
        }
        for dir in &self.dirs {
            let _ = sync_dir(dir);
        }
    }
}

/// The local mailboxes (user addresses) `env` delivers to, each once.
pub fn local_mailboxes(env: &Envelope) -> Vec<&str> {
    let mut boxes: Vec<&str> = env
        .rcpts
        .iter()
        .filter_map(|r| match &r.route {
            Route::Local(b) => Some(b.iter().map(String::as_str)),
            Route::Relay => None,
        })
        .flatten()
        .collect();
    boxes.sort_unstable();
    boxes.dedup();
    boxes
}

/// The number of copies `env` makes: one per local mailbox, and one
/// queue file for all remote recipients.
pub fn copies(env: &Envelope) -> usize {
    let relay = env.rcpts.iter().any(|r| r.route == Route::Relay);
    local_mailboxes(env).len() + usize::from(relay)
}

/// The header block we prepend: Return-Path (RFC 5321 4.4), Delivered-To
/// and Received (RFC 5321 4.4, RFC 3848 protocol names).
///
/// With one mailbox, Received names the recipient (`for <...>`) and
/// Delivered-To is added. With several, one identical file is written
/// and hard-linked into each, so neither header can name a recipient
/// without showing it to the others (a Bcc leak).
pub fn trace_headers(
    env: &Envelope,
    hostname: &str,
    now: SystemTime,
    mailbox_count: usize,
) -> Vec<u8> {
    let mut h = String::with_capacity(256);
    h.push_str(&format!("Return-Path: <{}>\n", env.from));
    let single = (mailbox_count == 1 && env.rcpts.len() == 1)
        .then(|| env.rcpts[0].path.to_string());
    // Delivered-To is the final delivery's; a relayed copy goes without.
    let local = env.rcpts.first().is_some_and(|r| r.route != Route::Relay);
    if let Some(rcpt) = single.as_ref().filter(|_| local) {
        h.push_str(&format!("Delivered-To: {rcpt}\n"));
    }
    let ip = match env.peer {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("IPv6:{v6}"),
    };
    // RFC 5321 4.4: the TCP-info is the client's name from reverse DNS
    // (when it came in time) and its address.
    let name = env.peer_name.as_deref().unwrap_or("");
    match env.local_uid {
        // The local socket: the account, as the kernel named it.
        Some(uid) => h.push_str(&format!(
            "Received: from local (uid {uid})\n\tby {hostname} (postling) with {}",
            env.protocol
        )),
        None => h.push_str(&format!(
            "Received: from {} ({}{}[{ip}])\n\tby {hostname} (postling) with {}",
            env.helo,
            name,
            if name.is_empty() { "" } else { " " },
            env.protocol
        )),
    }
    if let Some(tls) = &env.tls {
        h.push_str(&format!(" ({} {})", tls.version, tls.cipher));
    }
    h.push_str(&format!(" id {}", env.id));
    if let Some(rcpt) = &single {
        h.push_str(&format!("\n\tfor <{rcpt}>"));
    }
    h.push_str(&format!(";\n\t{}\n", date::rfc5322(now)));
    h.into_bytes()
}

/// Stores `job` in all its mailboxes (and the outbound queue), or in
/// none. Returns what is now visible, whose folders the caller fsyncs
/// (batched); if that fails, the caller withdraws it. `Busy`: a mailbox
/// is locked by another program and nothing was written; try later.
pub fn deliver(job: &Job) -> Result<Published, StageError> {
    crate::util::fault::probe("deliver", job.sender.as_bytes());
    let msg = Message {
        content: &job.content,
        sender: &job.sender,
        prefix: b"",
    };
    let plans = sieve_plans::plans(job)?;
    let mut at = Staging::default();
    if let Err(e) = stage_mailboxes(job, &plans, &msg, &mut at) {
        at.staged.into_iter().for_each(Staged::abort);
        return Err(e);
    }
    let Staging {
        mut staged,
        mut made,
        full,
        counted,
        ..
    } = at;
    let queued = sieve_plans::queue(job, &plans, &mut staged, &mut made)
        .and_then(|()| {
            quotas::full_notices(job, &full, &mut staged, &mut made)
        });
    if let Err(e) = queued {
        staged.into_iter().for_each(Staged::abort);
        return Err(e);
    }
    if !job.relay.is_empty() {
        match store::queue::stage(
            &job.queue_dir,
            &job.id,
            &job.relay,
            &msg,
            &job.dkim,
            &|address| job.signing.owns(address),
        ) {
            Ok(s) => staged.push(Staged::Maildir(s)),
            Err(f) => {
                staged.into_iter().for_each(Staged::abort);
                return Err(f.into());
            }
        }
    }
    if let Some(fwd) = &job.forward {
        let forwarded = Message {
            content: &job.content,
            sender: &fwd.sender,
            prefix: b"",
        };
        // Not signed: it is someone else's mail passing through.
        let id = forward_id(&job.id);
        match store::queue::stage(
            &job.queue_dir,
            &id,
            &fwd.rcpts,
            &forwarded,
            &[],
            &|_| false,
        ) {
            Ok(s) => staged.push(Staged::Maildir(s)),
            Err(f) => {
                staged.into_iter().for_each(Staged::abort);
                return Err(f.into());
            }
        }
    }
    // Renames first, while mbox locks are still held: if one fails, the
    // others are withdrawn and the mbox appends cut back.
    let (mboxes, files): (Vec<Staged>, Vec<Staged>) =
        staged.into_iter().partition(Staged::is_mbox);
    let mut published = Published {
        made,
        ..Published::default()
    };
    let mut files = files.into_iter();
    while let Some(s) = files.next() {
        match s.commit() {
            Ok(Some(file)) => published.add(file),
            Ok(None) => {}
            Err(f) => {
                published.withdraw();
                files.for_each(Staged::abort);
                mboxes.into_iter().for_each(Staged::abort);
                return Err(f.into());
            }
        }
    }
    if mboxes.is_empty() {
        sieve_plans::remember(&plans);
        quotas::record(job, &counted);
        return Ok(published);
    }
    // Unlocking an mbox cannot be undone, so the queue entry is made
    // durable first (no batching on this rarer path).
    let synced: std::io::Result<()> =
        published.dirs.iter().try_for_each(|d| sync_filesystem(d));
    if let Err(e) = synced {
        published.withdraw();
        mboxes.into_iter().for_each(Staged::abort);
        return Err(transient_io("syncing", e).into());
    }
    published.dirs.clear();
    for m in mboxes {
        m.commit()?;
    }
    sieve_plans::remember(&plans);
    quotas::record(job, &counted);
    Ok(published)
}

/// What staging the local copies gathered.
#[derive(Default)]
struct Staging {
    staged: Vec<Staged>,
    made: Made,
    /// Mailboxes too full for the message.
    full: Vec<PathBuf>,
    /// What each other one gets, for its quota.
    counted: Vec<quotas::Counted>,
    /// The first copy as the content is, which the others may link.
    plain: Option<usize>,
}

/// Stages every local mailbox's copies (its plan's, or the one the
/// server chose); on an error the caller aborts what was staged.
fn stage_mailboxes(
    job: &Job,
    plans: &[(PathBuf, crate::sieve::delivery::Plan)],
    msg: &Message<'_>,
    at: &mut Staging,
) -> Result<(), StageError> {
    // Sorted order: two helper threads locking the same mbox files can
    // never wait on each other in a cycle.
    let mut boxes: Vec<&PathBuf> = job.mailboxes.iter().collect();
    boxes.sort();
    for dir in boxes {
        let filed = job.filed.iter().find(|f| &f.mailbox == dir);
        let (default, msg) = match filed {
            Some(f) => (
                f.folder,
                Message {
                    prefix: &f.header,
                    ..*msg
                },
            ),
            None => (job.folder, *msg),
        };
        let plan = plans.iter().find(|(d, _)| d == dir).map(|(_, p)| p);
        let copies = sieve_plans::copies(plan, default, &job.id);
        let bytes = copies.len() as u64 * quotas::copy_size(job, msg.prefix);
        let before = match quotas::room(job, dir, bytes)? {
            (true, before) => before,
            (false, _) => {
                at.full.push(dir.clone());
                continue;
            }
        };
        if !copies.is_empty() {
            at.counted
                .push((dir.clone(), bytes, copies.len() as u64, before));
        }
        for (folder, flags) in copies {
            let link = at.plain.and_then(|i| at.staged[i].link_source());
            let fmt = job.format;
            let s =
                store::stage_flagged(fmt, dir, &folder, &msg, link, &flags)?;
            let bare = msg.prefix.is_empty() && flags.is_empty();
            if bare && at.plain.is_none() {
                at.plain = Some(at.staged.len());
            }
            if plan.is_some() {
                at.made
                    .folders
                    .push(store::folders::place(dir, &folder, fmt));
            }
            at.staged.push(s);
        }
    }
    Ok(())
}

fn transient_io(what: &str, e: std::io::Error) -> Failure {
    log::error!("{what}: {e}");
    Failure::Transient(format!("{what}: {}", e.kind()))
}
