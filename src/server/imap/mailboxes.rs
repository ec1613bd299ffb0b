//! The mailbox helper threads: IMAP's disk work (scanning folders,
//! renames for flags, expunges, APPEND and COPY, reading messages for
//! FETCH, folder administration) runs here and wakes the loop when
//! done, like deliveries and POP3 reads.

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use mio::Waker;

use crate::config::MailboxFormat;
use crate::proto::imap::command::ListParams;
use crate::proto::imap::fetch::Item;
use crate::proto::imap::folder::{Flags, Folder};
use crate::proto::imap::names;
use crate::proto::imap::request::{Fetched, Listed, No, Segment, Status};
use crate::proto::imap::{mime, render};
use crate::server::imap::fair_pool::{FairPool, Turn};
use crate::server::imap::folder_io::{
    Added, failed, flags_for, folder_exists, read_message, scan, stamp,
    system_flags,
};
use crate::server::imap::searching::{Found, SearchJob, search_slice};
use crate::store::folders;
use crate::store::mailfolder::{self, Source};
use crate::store::{envelopes, headers, mboxfolder};
use crate::util::contain::guarded;

/// Log lines keep the target they had before the file moved into its
/// folder: a log's format is an interface (filters, RUST_LOG).
const LOG_TARGET: &str = "postling::server::mailboxes";

/// Work for a mailbox helper.
pub enum Work {
    /// Scan a folder (SELECT, or a sync); the MODSEQ the loop's copy had
    /// when it was asked, so changes of ours made meanwhile are kept.
    Scan(PathBuf, u64),
    /// Scan a folder if its stamp is not this one (and the MODSEQ).
    Check(PathBuf, Option<mailfolder::Stamp>, u64),
    /// LIST: the user's root, patterns, options.
    List(PathBuf, Vec<String>, ListParams),
    /// CREATE name [special-use] under the root.
    Create(PathBuf, String, Option<String>),
    /// DELETE.
    Delete(PathBuf, String),
    /// RENAME.
    Rename(PathBuf, String, String),
    /// (UN)SUBSCRIBE.
    Subscribe(PathBuf, String, bool),
    /// STATUS of a folder not open.
    Status(PathBuf),
    /// GENURLAUTH: the user's root, the user, the rump URLs.
    GenUrlAuth(PathBuf, String, Vec<String>),
    /// URLFETCH by a user, its answers within a budget of octets.
    UrlFetch(String, Vec<crate::server::imap::urlauth::FetchOne>, u64),
    /// RESETKEY: the user's root and a mailbox (None: all).
    ResetKey(PathBuf, Option<String>),
    /// NOTIFY: the user's root, the spec and the selected folder (left
    /// out): scan every folder the spec covers.
    NotifyOpen(PathBuf, crate::proto::imap::notify::Spec, Option<String>),
    /// APPEND messages to a folder.
    Append(Box<crate::server::imap::appending::AppendJob>),
    /// Set flags: (uid, file, new flags), the keyword table, and what
    /// the change teaches the spam filter.
    SetFlags(
        PathBuf,
        Vec<(u32, String, Flags)>,
        Vec<String>,
        Option<Box<crate::server::imap::lessons::Lessons>>,
    ),
    /// Remove files.
    Expunge(PathBuf, Vec<(u32, String)>),
    /// COPY/MOVE files (uid, file, flags) to another folder.
    Copy {
        /// The source Maildir.
        from: PathBuf,
        /// The destination Maildir.
        to: PathBuf,
        /// What to copy.
        msgs: Vec<(u32, String, Flags)>,
        /// Remove the sources once the copies are durable.
        moving: bool,
        /// What the copy teaches the spam filter.
        lessons: Option<Box<crate::server::imap::lessons::Lessons>>,
        /// The user's root, limit and the copies' octets, when limited.
        room: Option<(PathBuf, u64, u64)>,
    },
    /// The user's storage used, with their limit.
    Quota(PathBuf, u64),
    /// Read messages for FETCH.
    Fetch(PathBuf, u32, Vec<(u32, String)>, Arc<[Item]>),
    /// Make the login's default folders.
    Defaults(PathBuf),
    /// SEARCH inside messages.
    Search(Box<SearchJob>),
    /// Write a folder's index (mbox: its sidecar).
    SaveIndex(Box<SaveJob>),
    /// Move claimed \Recent messages from new/ to cur/.
    Settle(PathBuf, Vec<(u32, String, Flags)>),
}

/// What a folder's index needs from the loop's copy of it.
pub struct SaveJob {
    /// The folder.
    pub dir: PathBuf,
    /// Its UIDVALIDITY.
    pub validity: u32,
    /// Its highest MODSEQ.
    pub highest: u64,
    /// The first UID no session has claimed as \Recent.
    pub recent_from: u32,
    /// Its keyword table.
    pub keywords: Vec<String>,
    /// UID, flags and MODSEQ of every message.
    pub msgs: Vec<(u32, Flags, u64)>,
}

/// What a helper did.
pub enum Outcome {
    /// A scanned folder, and the MODSEQ it was asked at.
    Scanned(PathBuf, u64, Result<Folder, No>),
    /// A folder checked: its stamp, a scan if it changed, the MODSEQ.
    Checked(PathBuf, Option<mailfolder::Stamp>, Option<Folder>, u64),
    /// LIST results.
    Listed(Result<Vec<Listed>, No>),
    /// Done, or not.
    Done(Result<(), No>),
    /// STATUS figures.
    Status(Result<Status, No>),
    /// Storage used and the limit.
    Quota(Result<(u64, u64), No>),
    /// APPEND: the folder, UIDVALIDITY, and the UID, flags and file.
    Appended(PathBuf, Result<(u32, Vec<Added>), No>),
    /// Flags set: by UID, the file now (None: gone) and the flags.
    FlagsSet(PathBuf, Result<Vec<(u32, Option<String>, Flags)>, No>),
    /// Expunged UIDs.
    Expunged(PathBuf, Result<Vec<u32>, No>),
    /// COPY/MOVE: destination, UIDVALIDITY, sources, new UIDs.
    Copied {
        /// The source.
        from: PathBuf,
        /// The destination.
        to: PathBuf,
        /// The result: UIDVALIDITY, source UIDs, what was added.
        result: Result<(u32, Vec<u32>, Vec<Added>), No>,
        /// MOVE.
        moving: bool,
    },
    /// FETCH data.
    Fetched(Vec<Fetched>),
    /// SEARCH: matching UIDs.
    Searched(Vec<u32>),
    /// SORT or THREAD: the matches in order.
    Sorted(crate::proto::imap::arrange::Arranged),
    /// GENURLAUTH's URLs.
    GenUrlAuth(Result<Vec<String>, No>),
    /// URLFETCH's answers.
    UrlFetched(Vec<crate::proto::imap::request::UrlFetched>),
    /// NOTIFY: each folder covered, its place, events and scan.
    NotifyOpened(Vec<NotifyFolder>),
    /// Each candidate's answers to the content keys.
    Answers(Vec<(u32, u64)>),
    /// An index written (nobody waits for it).
    Saved,
    /// Messages moved to cur/: their new files.
    Settled(PathBuf, Vec<(u32, Option<String>)>),
    /// The job failed inside (a panic, contained and logged).
    Failed(No),
}

/// A folder NOTIFY watches: name, place, events, its scan.
pub type NotifyFolder =
    (String, PathBuf, crate::proto::imap::notify::Events, Folder);

/// A job: the connection waiting, the store's format, the work.
pub type Job = ((usize, u64), MailboxFormat, Work);

/// The helpers' pool, shared fairly between users: jobs carry the
/// connection key.
pub type Mailboxes = FairPool<Job, ((usize, u64), Outcome)>;

/// Starts `n` mailbox helpers.
pub fn start(n: usize, waker: Arc<Waker>) -> std::io::Result<Mailboxes> {
    FairPool::start("mailbox", n, waker, take_turn)
}

/// One turn at a job: all of it, or a slice of a long one.
fn take_turn(job: Job) -> Turn<Job, ((usize, u64), Outcome)> {
    let (key, fmt, work) = job;
    let (what, failed) = (describe(&work), failed_outcome(&work));
    match guarded(|| what, || run_slice(fmt, work)) {
        Some(Turn::Done(outcome)) => Turn::Done((key, outcome)),
        Some(Turn::Again(rest)) => Turn::Again((key, fmt, rest)),
        None => Turn::Done((key, failed)),
    }
}

/// Runs a job, or (for a content SEARCH, SORT or THREAD) as much of it
/// as fits in a slice (`searching::SLICE`).
fn run_slice(fmt: MailboxFormat, work: Work) -> Turn<Work, Outcome> {
    match work {
        Work::Search(job) => match search_slice(fmt, job) {
            Turn::Done(found) => Turn::Done(found.into()),
            Turn::Again(rest) => Turn::Again(Work::Search(rest)),
        },
        other => Turn::Done(run(fmt, other)),
    }
}

impl From<Found> for Outcome {
    fn from(found: Found) -> Outcome {
        match found {
            Found::Uids(uids) => Outcome::Searched(uids),
            Found::Answers(answers) => Outcome::Answers(answers),
            Found::Sorted(arranged) => Outcome::Sorted(arranged),
        }
    }
}

/// An internal error's answer: the client is told no more than that.
fn internal_error() -> No {
    No::code("SERVERBUG", "internal error; the server's log says more")
}

/// What a job is, for the error line if it fails: its kind and folder
/// (whose path names the user).
fn describe(work: &Work) -> String {
    let (kind, place): (&str, Option<&Path>) = match work {
        Work::Scan(d, _) | Work::Check(d, ..) => ("scan", Some(d)),
        Work::List(r, ..) => ("LIST", Some(r)),
        Work::Create(r, ..) => ("CREATE", Some(r)),
        Work::Delete(r, ..) => ("DELETE", Some(r)),
        Work::Rename(r, ..) => ("RENAME", Some(r)),
        Work::Subscribe(r, ..) => ("SUBSCRIBE", Some(r)),
        Work::Status(d) => ("STATUS", Some(d)),
        Work::Quota(r, _) => ("GETQUOTA", Some(r)),
        Work::GenUrlAuth(r, ..) => ("GENURLAUTH", Some(r)),
        Work::UrlFetch(..) => ("URLFETCH", None),
        Work::ResetKey(r, _) => ("RESETKEY", Some(r)),
        Work::NotifyOpen(r, ..) => ("NOTIFY", Some(r)),
        Work::Append(job) => ("APPEND", Some(&job.dir)),
        Work::SetFlags(d, ..) => ("STORE", Some(d)),
        Work::Expunge(d, _) => ("EXPUNGE", Some(d)),
        Work::Copy { from, .. } => ("COPY", Some(from)),
        Work::Fetch(d, ..) => ("FETCH", Some(d)),
        Work::Defaults(r) => ("default folders", Some(r)),
        Work::Search(job) => ("SEARCH", Some(&job.dir)),
        Work::SaveIndex(save) => ("index write", Some(&save.dir)),
        Work::Settle(d, _) => ("settle", Some(d)),
    };
    match place {
        Some(p) => format!("mailbox helper: {kind} in {}", p.display()),
        None => format!("mailbox helper: {kind}"),
    }
}

/// The answer a job gets if it fails inside: its own kind of failure,
/// so the loop's bookkeeping (scans, settles under way) stays right.
fn failed_outcome(work: &Work) -> Outcome {
    let bug = internal_error;
    match work {
        Work::Scan(d, since) => {
            Outcome::Scanned(d.clone(), *since, Err(bug()))
        }
        Work::Check(d, _, since) => {
            Outcome::Checked(d.clone(), None, None, *since)
        }
        Work::List(..) => Outcome::Listed(Err(bug())),
        Work::Status(..) => Outcome::Status(Err(bug())),
        Work::Quota(..) => Outcome::Quota(Err(bug())),
        Work::GenUrlAuth(..) => Outcome::GenUrlAuth(Err(bug())),
        Work::NotifyOpen(..) => Outcome::NotifyOpened(Vec::new()),
        Work::Append(job) => Outcome::Appended(job.dir.clone(), Err(bug())),
        Work::SetFlags(d, ..) => Outcome::FlagsSet(d.clone(), Err(bug())),
        Work::Expunge(d, _) => Outcome::Expunged(d.clone(), Err(bug())),
        Work::Copy {
            from, to, moving, ..
        } => Outcome::Copied {
            from: from.clone(),
            to: to.clone(),
            result: Err(bug()),
            moving: *moving,
        },
        Work::SaveIndex(_) => Outcome::Saved,
        Work::Settle(d, _) => Outcome::Settled(d.clone(), Vec::new()),
        Work::Create(..)
        | Work::Delete(..)
        | Work::Rename(..)
        | Work::Subscribe(..)
        | Work::ResetKey(..)
        | Work::Defaults(_) => Outcome::Done(Err(bug())),
        Work::UrlFetch(..) | Work::Fetch(..) | Work::Search(_) => {
            Outcome::Failed(bug())
        }
    }
}

/// Whether another program changed the folder: scanned again unless
/// its stamp is the one known and old enough to prove it.
fn check(
    fmt: MailboxFormat,
    dir: PathBuf,
    known: Option<mailfolder::Stamp>,
    since: u64,
) -> Outcome {
    // The stamp before the scan: a change during it shows next time.
    let now = stamp(fmt, &dir);
    // Folder times tick coarsely: a change in the same tick as
    // the last look leaves the same time, so a recent time
    // proves nothing (Dovecot waits the same way).
    let settled = now.is_some_and(|(n, c)| {
        let old =
            std::time::SystemTime::now() - std::time::Duration::from_secs(2);
        n < old && c < old
    });
    let scan = if settled && now == known {
        None
    } else {
        scan(fmt, &dir).ok()
    };
    Outcome::Checked(dir, now, scan, since)
}

/// The folder's index written, and the caches' dead records dropped.
fn save_index(fmt: MailboxFormat, save: SaveJob) -> Outcome {
    let SaveJob {
        dir,
        validity,
        highest,
        recent_from,
        keywords,
        msgs,
    } = save;
    let live: Vec<u32> = msgs.iter().map(|m| m.0).collect();
    headers::compact(fmt, &dir, validity, &live);
    match fmt {
        MailboxFormat::Maildir => {
            mailfolder::save_index(&dir, validity, highest, msgs.into_iter());
            envelopes::compact(&dir, validity, &live);
        }
        MailboxFormat::Mbox => {
            let saved = mboxfolder::save(
                &dir,
                Some(validity),
                highest,
                Some(recent_from),
                Some(&keywords),
                msgs.into_iter(),
            );
            if let Err(e) = saved {
                log::warn!(target: LOG_TARGET, "{}: saving flags: {e}", dir.display());
            }
        }
    }
    Outcome::Saved
}

fn run(fmt: MailboxFormat, work: Work) -> Outcome {
    match work {
        Work::Check(dir, known, since) => check(fmt, dir, known, since),
        Work::Scan(dir, since) => {
            let r = scan(fmt, &dir).map_err(|e| failed("scan", e));
            Outcome::Scanned(dir, since, r)
        }
        Work::List(root, patterns, params) => {
            Outcome::Listed(list(fmt, &root, &patterns, &params))
        }
        Work::GenUrlAuth(root, user, rumps) => Outcome::GenUrlAuth(
            crate::server::imap::urlauth::generate(fmt, &root, &user, &rumps),
        ),
        Work::UrlFetch(user, urls, budget) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            Outcome::UrlFetched(crate::server::imap::urlauth::fetch(
                fmt, &user, &urls, now, budget,
            ))
        }
        Work::ResetKey(root, mailbox) => {
            Outcome::Done(crate::server::imap::urlauth::reset(
                fmt,
                &root,
                mailbox.as_deref(),
            ))
        }
        Work::NotifyOpen(root, spec, selected) => {
            Outcome::NotifyOpened(notify_open(fmt, &root, &spec, selected))
        }
        Work::Create(root, name, special) => Outcome::Done(
            folders::create(&root, &name, special.as_deref(), fmt)
                .map_err(|e| failed("create", e)),
        ),
        Work::Delete(root, name) => Outcome::Done(
            folders::delete(&root, &name, fmt)
                .map_err(|e| failed("delete", e)),
        ),
        Work::Rename(root, from, to) => Outcome::Done(
            folders::rename(&root, &from, &to, fmt)
                .map_err(|e| failed("rename", e)),
        ),
        Work::Subscribe(root, name, on) => Outcome::Done(
            folders::subscribe(&root, &name, on)
                .map_err(|e| failed("subscribe", e)),
        ),
        Work::Status(dir) => Outcome::Status(
            scan(fmt, &dir)
                .map(|f| status_of(&f))
                .map_err(|e| failed("status", e)),
        ),
        Work::Append(mut job) => {
            let r = crate::server::imap::appending::run(fmt, &mut job);
            Outcome::Appended(job.dir.clone(), r)
        }
        Work::SetFlags(dir, changes, keywords, lessons) => {
            if let Some(lessons) = &lessons {
                crate::server::imap::lessons::learn(fmt, &dir, lessons);
            }
            let r = set_flags(fmt, &dir, &changes, &keywords)
                .map_err(|e| failed("store", e));
            Outcome::FlagsSet(dir, r)
        }
        Work::Expunge(dir, msgs) => {
            let files: Vec<String> =
                msgs.iter().map(|(_, f)| f.clone()).collect();
            let done = match fmt {
                MailboxFormat::Maildir => mailfolder::expunge(&dir, &files),
                MailboxFormat::Mbox => mboxfolder::expunge(&dir, &files),
            };
            let r = done
                .map(|()| msgs.iter().map(|m| m.0).collect())
                .map_err(|e| failed("expunge", e));
            Outcome::Expunged(dir, r)
        }
        Work::Quota(root, limit) => Outcome::Quota(
            crate::store::usage::usage(&root, fmt)
                .map(|u| (u.bytes, limit))
                .map_err(|e| failed("quota", e)),
        ),
        Work::Copy {
            from,
            to,
            msgs,
            moving,
            lessons,
            room,
        } => {
            if let Some(lessons) = &lessons {
                crate::server::imap::lessons::learn(fmt, &from, lessons);
            }
            let result = match crate::server::imap::appending::over_quota(
                fmt,
                room.as_ref(),
            ) {
                Some(no) => Err(no),
                None => copy(fmt, &from, &to, &msgs, moving),
            };
            Outcome::Copied {
                from,
                to,
                result,
                moving,
            }
        }
        Work::Fetch(dir, validity, msgs, items) => {
            Outcome::Fetched(fetch(fmt, &dir, validity, &msgs, &items))
        }
        Work::Search(job) => match search_slice(fmt, job) {
            Turn::Done(found) => found.into(),
            // invariant: run_slice hands searches to search_slice.
            Turn::Again(_) => Outcome::Failed(internal_error()),
        },
        Work::SaveIndex(save) => save_index(fmt, *save),
        Work::Settle(dir, msgs) => {
            crate::util::fault::probe(
                "settle",
                dir.as_os_str().as_encoded_bytes(),
            );
            let list: Vec<(String, Flags)> =
                msgs.iter().map(|(_, f, fl)| (f.clone(), *fl)).collect();
            let files = mailfolder::settle(&dir, &list).unwrap_or_else(|e| {
                log::warn!(target: LOG_TARGET, "moving to cur/ in {}: {e}", dir.display());
                vec![None; 0]
            });
            Outcome::Settled(
                dir,
                msgs.iter().map(|m| m.0).zip(files).collect(),
            )
        }
        Work::Defaults(root) => Outcome::Done(
            folders::ensure_defaults(&root, fmt)
                .map_err(|e| failed("creating folders", e)),
        ),
    }
}

/// Sets flags: Maildir renames files, mbox records them in its sidecar.
fn set_flags(
    fmt: MailboxFormat,
    dir: &Path,
    changes: &[(u32, String, Flags)],
    keywords: &[String],
) -> std::io::Result<Vec<(u32, Option<String>, Flags)>> {
    match fmt {
        MailboxFormat::Maildir => {
            mailfolder::write_keywords(dir, keywords)?;
            let list: Vec<(String, Flags)> =
                changes.iter().map(|(_, f, fl)| (f.clone(), *fl)).collect();
            let files = mailfolder::set_flags(dir, &list)?;
            Ok(changes
                .iter()
                .zip(files)
                .map(|((uid, _, fl), file)| (*uid, file, *fl))
                .collect())
        }
        MailboxFormat::Mbox => {
            let msgs = changes.iter().map(|(uid, _, fl)| (*uid, *fl, 0));
            mboxfolder::save(dir, None, 0, None, Some(keywords), msgs)?;
            Ok(changes
                .iter()
                .map(|(uid, file, fl)| (*uid, Some(file.clone()), *fl))
                .collect())
        }
    }
}

/// STATUS figures of a scanned folder.
pub fn status_of(f: &Folder) -> Status {
    let size = f
        .msgs
        .iter()
        .map(|m| {
            let name = m.file.rsplit('/').next().unwrap_or(&m.file);
            name.split(':')
                .next()
                .and_then(|b| {
                    b.split(',').find_map(|x| {
                        x.strip_prefix("W=")?.parse::<u64>().ok()
                    })
                })
                .unwrap_or(0)
        })
        .sum();
    Status {
        messages: f.msgs.len() as u32,
        recent: f.recent_count() as u32,
        uidnext: f.uidnext,
        uidvalidity: f.uidvalidity,
        unseen: f.unseen().0 as u32,
        deleted: f
            .msgs
            .iter()
            .filter(|m| m.flags.has(Flags::DELETED))
            .count() as u32,
        size,
        highest_modseq: f.highest_modseq,
    }
}

fn list(
    fmt: MailboxFormat,
    root: &std::path::Path,
    patterns: &[String],
    params: &ListParams,
) -> Result<Vec<Listed>, No> {
    let all = folders::all(root, fmt).map_err(|e| failed("list", e))?;
    let subs = folders::subscriptions(root).map_err(|e| failed("list", e))?;
    let lsub = params.subscribed && !params.extended;
    let matching = |n: &str| patterns.iter().any(|p| names::matches(p, n));
    let mut candidates: Vec<String> = all.clone();
    if params.subscribed {
        // Subscribed names that no longer exist are listed too.
        for s in &subs {
            if !candidates.contains(s) {
                candidates.push(s.clone());
            }
        }
    }
    // LSUB (RFC 3501 6.3.9) and RECURSIVEMATCH (RFC 5258 3.5): a parent
    // that matches where a subscribed child does not is shown too.
    let mut parents: Vec<String> = Vec::new();
    if lsub || params.recursive {
        for s in &subs {
            let levels: Vec<&str> = s.split('.').collect();
            for i in 1..levels.len() {
                let parent = levels[..i].join(".");
                if matching(&parent) && !parents.contains(&parent) {
                    parents.push(parent.clone());
                }
                if !candidates.contains(&parent) && matching(&parent) {
                    candidates.push(parent);
                }
            }
        }
    }
    let mut out = Vec::new();
    for name in candidates {
        if !matching(&name) {
            continue;
        }
        let subscribed = subs.contains(&name);
        let prefix = format!("{name}.");
        // CHILDINFO names a subscribed descendant the answer would not
        // show otherwise: not one another pattern lists on its own.
        let hidden = |d: &String| {
            patterns
                .iter()
                .all(|p| !names::matches(p, d) || names::matches(p, &name))
        };
        let childinfo = params.recursive
            && subs.iter().any(|s| s.starts_with(&prefix) && hidden(s));
        let shown_parent = lsub && parents.contains(&name);
        if params.subscribed && !(subscribed || childinfo || shown_parent) {
            continue;
        }
        let exists = all.contains(&name);
        let special = folders::special_use(root, &name);
        if params.special_use && special.is_none() {
            continue;
        }
        let children = all.iter().any(|n| n.starts_with(&prefix));
        let mut attributes: Vec<&'static str> = Vec::new();
        if lsub && !subscribed {
            attributes.push("\\Noselect");
        } else if !exists {
            attributes.push("\\NonExistent");
        } else {
            attributes.push(if children {
                "\\HasChildren"
            } else {
                "\\HasNoChildren"
            });
        }
        if (params.subscribed || params.ret_subscribed) && subscribed {
            attributes.push("\\Subscribed");
        }
        if let Some(s) = special
            && let Some(known) =
                folders::SPECIAL_USES.iter().find(|u| **u == s)
        {
            attributes.push(known);
        }
        let status = match (&params.ret_status, exists) {
            (Some(_), true) => scan(fmt, &folders::place(root, &name, fmt))
                .ok()
                .map(|f| status_of(&f)),
            _ => None,
        };
        out.push(Listed {
            name,
            attributes,
            status,
            childinfo,
        });
    }
    Ok(out)
}

fn copy(
    fmt: MailboxFormat,
    from: &std::path::Path,
    to: &std::path::Path,
    msgs: &[(u32, String, Flags)],
    moving: bool,
) -> Result<(u32, Vec<u32>, Vec<Added>), No> {
    if !folder_exists(fmt, to) {
        return Err(No::code("TRYCREATE", "no such mailbox"));
    }
    if fmt == MailboxFormat::Mbox {
        return copy_mbox(from, to, msgs, moving);
    }
    let src_keywords = mailfolder::scan_keywords(from);
    let paths: Vec<PathBuf> = msgs
        .iter()
        .map(|(_, f, _)| {
            mailfolder::locate(from, f).unwrap_or_else(|_| from.join(f))
        })
        .collect();
    let mut sources = Vec::new();
    let mut uids = Vec::new();
    let mut bits_of = Vec::new();
    for ((uid, _, flags), path) in msgs.iter().zip(&paths) {
        if !path.exists() {
            continue;
        }
        // Keywords are renumbered for the destination's table.
        let mut names = Vec::new();
        for (i, k) in src_keywords.iter().enumerate() {
            if flags.has(Flags::keyword(i)) {
                names.push(k.clone());
            }
        }
        let bits = Flags(system_flags(*flags).0 | flags_for(to, &names).0);
        let date = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        sources.push((Source::File(path), bits, date));
        uids.push(*uid);
        bits_of.push(bits);
    }
    let (validity, new) =
        mailfolder::add(to, &sources).map_err(|e| failed("copy", e))?;
    let new: Vec<Added> = new
        .into_iter()
        .zip(bits_of)
        .map(|((uid, file), bits)| (uid, bits, file.into()))
        .collect();
    if moving {
        let files: Vec<String> = msgs
            .iter()
            .filter(|(u, _, _)| uids.contains(u))
            .map(|(_, f, _)| f.clone())
            .collect();
        mailfolder::expunge(from, &files).map_err(|e| failed("move", e))?;
    }
    Ok((validity, uids, new))
}

/// COPY/MOVE between mbox files: each message appended to the
/// destination (durable), then, for MOVE, cut from the source.
fn copy_mbox(
    from: &Path,
    to: &Path,
    msgs: &[(u32, String, Flags)],
    moving: bool,
) -> Result<(u32, Vec<u32>, Vec<Added>), No> {
    let src = mboxfolder::scan(from).map_err(|e| failed("copy", e))?;
    let mut uids = Vec::new();
    let mut batch = Vec::new();
    let mut locs = Vec::new();
    for (uid, loc, flags) in msgs {
        let Ok((bytes, date)) = mboxfolder::read_dated(from, loc) else {
            continue;
        };
        // Keywords go by name: the destination has its own table.
        let names = src
            .keywords
            .iter()
            .enumerate()
            .filter(|(i, _)| flags.has(Flags::keyword(*i)))
            .map(|(_, k)| k.clone())
            .collect();
        // COPY keeps INTERNALDATE (RFC 9051 6.4.7).
        let date = Some(mailfolder::from_unix(date));
        batch.push((bytes, system_flags(*flags), names, date));
        uids.push(*uid);
        locs.push(loc.clone());
    }
    let (validity, added) =
        mboxfolder::add(to, &batch).map_err(|e| failed("copy", e))?;
    let new = added
        .into_iter()
        .map(|(uid, loc, bits)| (uid, bits, loc.into()))
        .collect();
    if moving {
        mboxfolder::expunge(from, &locs).map_err(|e| failed("move", e))?;
    }
    Ok((validity, uids, new))
}

/// Messages larger than this are not read whole for FETCH: their
/// header is read and their body streamed by the loop.
const LARGE: u64 = 128 * 1024;

fn fetch(
    fmt: MailboxFormat,
    dir: &std::path::Path,
    validity: u32,
    msgs: &[(u32, String)],
    items: &[Item],
) -> Vec<Fetched> {
    let aside = crate::server::imap::set_aside::load(fmt, dir);
    msgs.iter()
        .map(|(uid, file)| {
            let derived = || fetch_msg(fmt, dir, validity, *uid, file, items);
            let data = match aside.contains(uid) {
                true => None,
                false => crate::server::imap::set_aside::guard(
                    fmt, dir, *uid, derived,
                ),
            };
            Fetched {
                uid: *uid,
                data: data
                    .unwrap_or_else(|| fetch_set_aside(fmt, dir, file, items)),
            }
        })
        .collect()
}

/// FETCH of a message set aside: its octets as they are, everything
/// derived from its content (ENVELOPE, BODYSTRUCTURE, parts, header
/// fields) as for a message with an empty header.
fn fetch_set_aside(
    fmt: MailboxFormat,
    dir: &Path,
    file: &str,
    items: &[Item],
) -> Option<Vec<Segment>> {
    let (raw, date) = read_message(fmt, dir, file).ok()?;
    let wire = mailfolder::to_crlf(&raw);
    let (plain, derived): (Vec<Item>, Vec<Item>) =
        items.iter().cloned().partition(render::is_raw);
    let mut out = Vec::new();
    render::items(&wire, date, &plain, &mut out);
    render::items(b"\r\n", date, &derived, &mut out);
    Some(vec![Segment::Bytes(out)])
}

/// One message's FETCH data.
fn fetch_msg(
    fmt: MailboxFormat,
    dir: &Path,
    validity: u32,
    uid: u32,
    file: &str,
    items: &[Item],
) -> Option<Vec<Segment>> {
    match fmt {
        MailboxFormat::Maildir => fetch_one(dir, validity, uid, file, items),
        MailboxFormat::Mbox => {
            if let Some(segs) = fetch_large_mbox(dir, file, items) {
                return Some(segs);
            }
            read_message(fmt, dir, file).ok().map(|(raw, date)| {
                let wire = mailfolder::to_crlf(&raw);
                let mut out = Vec::new();
                render::items(&wire, date, items, &mut out);
                vec![Segment::Bytes(out)]
            })
        }
    }
}

fn fetch_one(
    dir: &std::path::Path,
    validity: u32,
    uid: u32,
    file: &str,
    items: &[Item],
) -> Option<Vec<Segment>> {
    let (path, mut opened) = mailfolder::open(dir, file).ok()?;
    let meta = opened.metadata().ok()?;
    let internal = meta.modified().map(mailfolder::unix_seconds).unwrap_or(0);
    // A folder listing (ENVELOPE, sizes, dates) without opening the file.
    let listing = items.iter().all(|i| {
        matches!(i, Item::Envelope | Item::Size | Item::InternalDate)
            || !i.needs_file()
    });
    let size = mailfolder::known_size(dir, file, None, uid)
        .ok()
        .filter(|_| file.contains(",W="));
    if let (true, Some(size)) = (listing, size) {
        let wants = items.contains(&Item::Envelope);
        let cached = if wants {
            envelopes::get(dir, validity, uid)
        } else {
            None
        };
        if cached.is_some() || !wants {
            let mut out = Vec::new();
            render::listing(
                items,
                internal,
                size,
                cached.as_deref(),
                &mut out,
            );
            return Some(vec![Segment::Bytes(out)]);
        }
    }
    if meta.len() > LARGE
        && render::streamable(items)
        && let Ok(Some(large)) = mailfolder::large(&path)
    {
        // The stream names the file as it is now.
        let name = path.strip_prefix(dir).ok()?.to_string_lossy().into_owned();
        return Some(render::large_items(
            render::Large {
                file: &name,
                head: &large.head,
                head_stored: large.head_stored,
                base: 0,
                drops: &[],
                size: large.size,
                internal,
            },
            items,
        ));
    }
    let mut raw = Vec::with_capacity(meta.len() as usize);
    std::io::Read::read_to_end(&mut opened, &mut raw).ok()?;
    let wire = mailfolder::to_crlf(&raw);
    if items.contains(&Item::Envelope) {
        let mut env = Vec::new();
        crate::proto::imap::structure::envelope(
            mime::split(&wire).0,
            &mut env,
        );
        envelopes::put(dir, validity, uid, &env);
    }
    let mut out = Vec::new();
    render::items(&wire, internal, items, &mut out);
    Some(vec![Segment::Bytes(out)])
}

/// A large mbox message as pieces the loop streams from the file, or
/// None to read it whole.
fn fetch_large_mbox(
    dir: &Path,
    loc: &str,
    items: &[Item],
) -> Option<Vec<Segment>> {
    if !render::streamable(items) {
        return None;
    }
    let large = mboxfolder::large(dir, loc, LARGE).ok()??;
    let internal = large.date;
    Some(render::large_items(
        render::Large {
            file: "",
            head: &large.head,
            head_stored: large.head_stored,
            base: large.base,
            drops: &large.drops,
            size: large.size,
            internal,
        },
        items,
    ))
}

/// At most this many folders are watched for one NOTIFY.
const MAX_NOTIFY_FOLDERS: usize = 1000;

/// The folders a NOTIFY covers (but the selected one), scanned.
fn notify_open(
    fmt: MailboxFormat,
    root: &Path,
    spec: &crate::proto::imap::notify::Spec,
    selected: Option<String>,
) -> Vec<NotifyFolder> {
    let names = folders::all(root, fmt).unwrap_or_default();
    let subscribed = folders::subscriptions(root).unwrap_or_default();
    let mut out = Vec::new();
    for name in names {
        let events = spec.for_mailbox(&name, subscribed.contains(&name));
        if !events.messages() || selected.as_deref() == Some(name.as_str()) {
            continue;
        }
        if out.len() >= MAX_NOTIFY_FOLDERS {
            break;
        }
        let dir = folders::place(root, &name, fmt);
        if let Ok(f) = scan(fmt, &dir) {
            out.push((name, dir, events, f));
        }
    }
    out
}

/// Items shared between the loop and a helper.
pub fn shared_items(items: &Rc<[Item]>) -> Arc<[Item]> {
    Arc::from(items.to_vec())
}
