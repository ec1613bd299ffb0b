//! The loop's side of IMAP: turning a session's [`Request`] into work
//! for the mailbox helpers, and the registry of open folders. A folder
//! selected by any session is held once, in memory, shared by all of
//! them; every change (ours, a delivery's, another program's found by a
//! scan) is applied there and the sessions watching it are told at once
//! if they are IDLE, at their next command otherwise.

pub(in crate::server) mod appending;
pub(in crate::server) mod fair_pool;
pub(in crate::server) mod folder_io;
pub(in crate::server) mod imap_stream;
pub(in crate::server) mod lessons;
pub(in crate::server) mod mailboxes;
pub(in crate::server) mod searching;
pub(in crate::server) mod set_aside;
pub(in crate::server) mod urlauth;

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use log::{info, warn};

use crate::config::MailboxFormat;
use crate::proto::imap::folder::{Flags, Folder};
use crate::proto::imap::notify::Events;
use crate::proto::imap::request::{No, Reply, Request, Status};
use crate::proto::imap::session::FolderEvent;
use crate::server::Server;
use crate::server::base::conn::Phase;
use crate::server::base::timer::NOBODY;
use crate::server::imap::mailboxes::{
    Outcome, SaveJob, Work, shared_items, status_of,
};
use crate::store::folders;
use crate::util::logsafe::Quoted;

/// The answer to a request on the selected folder when it is closed.
fn closed(request: &Request) -> Reply {
    let no = || No::text("mailbox closed");
    match request {
        Request::Copy { .. } => Reply::Copied(Err(no())),
        Request::Fetch(..) => Reply::Fetched(Vec::new()),
        Request::Search { .. } => Reply::Searched(Vec::new()),
        _ => Reply::Done(Err(no())),
    }
}

/// The user's mailbox root, its format and our authserv-id: where a
/// request's lessons for the spam filter go.
struct Learner<'a> {
    root: &'a Path,
    fmt: MailboxFormat,
    ours: &'a str,
    /// The user's storage limit (0: none), for COPY.
    quota: u64,
}

/// What a message counts for in its user's quota, from its file name
/// (Maildir `S=`) or location (mbox).
fn message_octets(fmt: MailboxFormat, file: &str) -> u64 {
    match fmt {
        MailboxFormat::Maildir => crate::store::quota::size_in_name(file),
        MailboxFormat::Mbox => crate::store::mboxfolder::Loc::block_len(file),
    }
    .unwrap_or(0)
}

/// Work for a request on the selected folder: its UIDs turned into the
/// files (or mbox locations) the helpers need, and what it teaches the
/// spam filter.
fn selected_work(
    dir: PathBuf,
    f: &Folder,
    request: Request,
    learner: &Learner<'_>,
) -> Work {
    let file = |uid: u32| f.get(uid).map(|m| m.file.to_string());
    let Learner {
        root,
        fmt,
        ours,
        quota,
    } = *learner;
    match request {
        Request::Store(changes) => {
            let teach = lessons::of_store(f, root, fmt, &dir, &changes, ours);
            let list = changes
                .into_iter()
                .filter_map(|(uid, flags)| Some((uid, file(uid)?, flags)))
                .collect();
            Work::SetFlags(dir, list, f.keywords.clone(), teach)
        }
        Request::Expunge(uids) => Work::Expunge(
            dir,
            uids.into_iter()
                .filter_map(|u| Some((u, file(u)?)))
                .collect(),
        ),
        Request::Copy { uids, to, moving } => {
            let to = folders::place(root, &to, fmt);
            let teach = lessons::of_copy(f, root, fmt, &dir, &to, &uids, ours);
            let msgs: Vec<(u32, String, Flags)> = uids
                .into_iter()
                .filter_map(|u| {
                    f.get(u).map(|m| (u, m.file.to_string(), m.flags))
                })
                .collect();
            // A MOVE within the user's folders takes no more room.
            let room = (quota > 0 && !moving).then(|| {
                let bytes = msgs
                    .iter()
                    .map(|(_, file, _)| message_octets(fmt, file))
                    .sum();
                (root.to_path_buf(), quota, bytes)
            });
            Work::Copy {
                from: dir,
                to,
                lessons: teach,
                msgs,
                moving,
                room,
            }
        }
        Request::Fetch(uids, items) => Work::Fetch(
            dir,
            f.uidvalidity,
            uids.into_iter()
                .filter_map(|u| Some((u, file(u)?)))
                .collect(),
            shared_items(&items),
        ),
        Request::Search {
            key,
            candidates,
            max_seq,
            max_uid,
            keywords,
            sort,
            answers,
            read,
        } => {
            Work::Search(Box::new(crate::server::imap::searching::SearchJob {
                sort,
                answers,
                read,
                validity: f.uidvalidity,
                dir,
                key,
                msgs: {
                    let name_len =
                        f.msgs.first().map_or(0, |m| m.file.len() + 8);
                    let mut msgs =
                    crate::server::imap::searching::Candidates::with_capacity(
                        candidates.len(),
                        name_len,
                    );
                    for c in candidates {
                        if let Some(m) = f.get(c.uid) {
                            msgs.push(c, &m.file);
                        }
                    }
                    msgs
                },
                max_seq,
                max_uid,
                keywords,
                progress: Default::default(),
            }))
        }
        // invariant: the caller sends only the requests above here.
        _ => Work::Scan(dir, 0),
    }
}

/// Mailbox helper threads: IMAP's folder scans, renames and reads.
const MAILBOX_HELPERS: usize = 2;

/// IMAP's state in the loop.
pub struct ImapState {
    /// Folders open in memory.
    pub(in crate::server::imap) registry: Registry,
    /// The mailbox helpers: scans, searches, fetches, APPEND, COPY.
    pub(in crate::server::imap) helpers: mailboxes::Mailboxes,
}

impl ImapState {
    /// Starts the mailbox helpers.
    pub(in crate::server) fn start(
        waker: std::sync::Arc<mio::Waker>,
    ) -> std::io::Result<ImapState> {
        Ok(ImapState {
            registry: Registry::default(),
            helpers: mailboxes::start(MAILBOX_HELPERS, waker)?,
        })
    }

    /// Stops the mailbox helpers (at shutdown).
    pub(in crate::server) fn stop(self) {
        self.helpers.stop();
    }
}

/// Folders open in memory, by Maildir path.
#[derive(Default)]
pub struct Registry {
    open: HashMap<PathBuf, Open>,
    /// Folders closed lately: UIDVALIDITY and the first unclaimed
    /// \Recent UID. Their index write and the move of claimed messages
    /// out of new/ run on the helpers; a SELECT that scans the folder
    /// before they are done would see claimed messages as \Recent again
    /// and give them to a second session (RFC 3501 2.3.2: one session
    /// only). Bounded: past [`MAX_CLOSED`] it starts afresh.
    closed: HashMap<PathBuf, (u32, u32)>,
}

/// Closed folders remembered for their \Recent claims.
const MAX_CLOSED: usize = 10_000;

struct Open {
    folder: Rc<RefCell<Folder>>,
    /// Connections (slot, generation) with it selected.
    watchers: Vec<(usize, u64)>,
    /// Connections watching it for NOTIFY's STATUS, not selected.
    status_watchers: Vec<(usize, u64)>,
    /// A scan is under way.
    scanning: bool,
    /// A move of claimed messages from new/ to cur/ is under way.
    settling: bool,
    /// Messages below this UID are settled in cur/ (or were checked).
    settled_below: u32,
    /// The folder's stamp when last checked.
    stamp: Option<crate::store::mailfolder::Stamp>,
    /// The highest MODSEQ the index on disk has.
    saved_modseq: u64,
    /// The first unclaimed \Recent UID the index on disk has (mbox keeps
    /// it there; Maildir keeps it as `new/`).
    saved_recent: u32,
}

impl Open {
    /// The index write this folder needs, if it changed since the last.
    fn save(&mut self, dir: &Path) -> Option<Work> {
        let f = self.folder.borrow();
        if f.highest_modseq == self.saved_modseq
            && f.recent_from == self.saved_recent
        {
            return None;
        }
        self.saved_modseq = f.highest_modseq;
        self.saved_recent = f.recent_from;
        let msgs = f.msgs.iter().map(|m| (m.uid, m.flags, m.modseq)).collect();
        Some(Work::SaveIndex(Box::new(SaveJob {
            dir: dir.to_path_buf(),
            validity: f.uidvalidity,
            highest: f.highest_modseq,
            recent_from: f.recent_from,
            keywords: f.keywords.clone(),
            msgs,
        })))
    }
}

impl Registry {
    /// The folder at `dir`, if open.
    pub fn get(&self, dir: &Path) -> Option<Rc<RefCell<Folder>>> {
        self.open.get(dir).map(|o| Rc::clone(&o.folder))
    }

    fn status_watchers(&self, dir: &Path) -> Vec<(usize, u64)> {
        self.open
            .get(dir)
            .map(|o| o.status_watchers.clone())
            .unwrap_or_default()
    }

    fn watchers(&self, dir: &Path) -> Vec<(usize, u64)> {
        self.open
            .get(dir)
            .map(|o| o.watchers.clone())
            .unwrap_or_default()
    }

    /// Stops `key` watching `dir`; the folder is dropped with its last
    /// watcher, and the index write it needs is returned.
    #[must_use]
    pub fn unwatch(&mut self, dir: &Path, key: (usize, u64)) -> Option<Work> {
        let o = self.open.get_mut(dir)?;
        o.watchers.retain(|&k| k != key);
        o.status_watchers.retain(|&k| k != key);
        if o.watchers.is_empty() && o.status_watchers.is_empty() && !o.scanning
        {
            let mut o = self.close(dir)?;
            return o.save(dir);
        }
        None
    }

    /// Drops the open folder at `dir`, remembering its \Recent claims.
    fn close(&mut self, dir: &Path) -> Option<Open> {
        let o = self.open.remove(dir)?;
        if self.closed.len() >= MAX_CLOSED {
            self.closed.clear();
        }
        let f = o.folder.borrow();
        self.closed
            .insert(dir.to_path_buf(), (f.uidvalidity, f.recent_from));
        drop(f);
        Some(o)
    }

    /// A scan of a folder about to be opened: messages claimed as
    /// \Recent before it was last closed stay claimed.
    fn reopening(&mut self, dir: &Path, scan: &mut Folder) {
        if let Some((validity, from)) = self.closed.remove(dir)
            && validity == scan.uidvalidity
        {
            scan.recent_from = scan.recent_from.max(from);
        }
    }

    /// Index writes every changed folder needs (at the periodic check,
    /// and at shutdown).
    pub fn saves(&mut self) -> Vec<Work> {
        self.open
            .iter_mut()
            .filter_map(|(dir, o)| o.save(dir))
            .collect()
    }
}

impl Server {
    fn imap_root(&self, slot: usize) -> Option<PathBuf> {
        let conn = self.core.conns.get(slot)?.as_ref()?;
        let crate::server::session::Session::Imap(i) = &conn.session else {
            return None;
        };
        let user = i.imap.user()?;
        Some(self.services.config.mailbox_dir(user))
    }

    /// The logged-in IMAP user's storage limit (0: none).
    fn imap_quota(&self, slot: usize) -> u64 {
        let user = self.imap_user(slot);
        let default = self.services.config.filtering.quota;
        self.services.directory.quota(&user, default)
    }

    /// The logged-in user of an IMAP session.
    fn imap_user(&self, slot: usize) -> String {
        self.core
            .conn(slot)
            .and_then(|c| match &c.session {
                crate::server::session::Session::Imap(i) => {
                    i.imap.user().map(str::to_string)
                }
                _ => None,
            })
            .unwrap_or_default()
    }

    /// An IMAP login succeeded: make the default folders first.
    pub(in crate::server) fn imap_logged_in(
        &mut self,
        slot: usize,
        user: String,
    ) {
        let root = self.services.config.mailbox_dir(&user);
        let Some(conn) = self.core.conn_mut(slot) else {
            return;
        };
        conn.phase = Phase::Delivering;
        let key = (slot, conn.generation);
        if let Some(i) = conn.session.as_imap() {
            i.pending_login = Some(user);
        }
        self.send_work(key, Work::Defaults(root));
    }

    /// URLFETCH: each URL with the mailboxes of its owner, if the
    /// owner is a user here.
    fn urlfetch_work(
        &self,
        slot: usize,
        urls: Vec<(String, bool, bool)>,
    ) -> Work {
        let cfg = &self.services.config;
        let urls = urls
            .into_iter()
            .map(|(url, binary, structure)| {
                // The owner's mailboxes, if the owner is a user.
                let root = crate::proto::imap::url::parse_auth(&url)
                    .ok()
                    .and_then(|u| {
                        u.owners().into_iter().find(|o| {
                            self.services.directory.password(o).is_some()
                        })
                    })
                    .map(|owner| cfg.mailbox_dir(&owner));
                crate::server::imap::urlauth::FetchOne {
                    url,
                    root,
                    binary,
                    structure,
                }
            })
            .collect();
        let budget = cfg.max_message_size;
        Work::UrlFetch(self.imap_user(slot), urls, budget)
    }

    /// APPEND: the message pieces spooled, handed to a helper; None if
    /// answered here or waiting for the spool's last write.
    fn append_work(
        &mut self,
        slot: usize,
        root: PathBuf,
        folder: String,
        messages: Vec<crate::proto::imap::append::AppendMessage>,
    ) -> Option<Work> {
        let fmt = self.services.config.mailbox_format;
        let conn = self.core.conn_mut(slot)?;
        let i = conn.session.as_imap()?;
        if i.spool.is_writing() {
            // Its last piece is still being written: once it is.
            i.appending = Some(Request::Append { folder, messages });
            return None;
        }
        let content = match i.spool.take() {
            Ok(c) => c,
            Err(f) => {
                let no = No::text(format!("[SERVERBUG] {f}"));
                self.imap_reply(slot, Reply::Appended(Err(no)));
                return None;
            }
        };
        Some(Work::Append(Box::new(
            crate::server::imap::appending::AppendJob {
                dir: folders::place(&root, &folder, fmt),
                root,
                content,
                messages,
                limit: self.services.config.max_message_size,
                quota: self.imap_quota(slot),
            },
        )))
    }

    /// A session's mailbox request: to the helpers, or answered from an
    /// open folder.
    pub(in crate::server) fn imap_request(
        &mut self,
        slot: usize,
        request: Request,
    ) {
        let Some(root) = self.imap_root(slot) else {
            return self.close(slot, "IMAP request without login");
        };
        let fmt = self.services.config.mailbox_format;
        let Some(conn) = self.core.conn_mut(slot) else {
            return;
        };
        let key = (slot, conn.generation);
        conn.phase = Phase::Delivering;
        let selected = conn
            .session
            .as_imap()
            .and_then(|i| i.imap.selected_name().map(str::to_string));
        let selected_dir =
            selected.as_deref().map(|n| folders::place(&root, n, fmt));
        if let Some(i) = conn.session.as_imap() {
            i.folder_event = FolderEvent::of(&request);
        }
        let work = match request {
            Request::Notify(None) => {
                self.stop_notify(slot, key);
                return self.imap_reply(slot, Reply::Notified(Vec::new()));
            }
            Request::Notify(Some(spec)) => {
                Work::NotifyOpen(root, spec, selected)
            }
            Request::GenUrlAuth(rumps) => {
                Work::GenUrlAuth(root, self.imap_user(slot), rumps)
            }
            Request::UrlFetch(urls) => self.urlfetch_work(slot, urls),
            Request::ResetKey(mailbox) => Work::ResetKey(root, mailbox),
            Request::Select(name) => {
                if !folders::exists(&root, &name, fmt) {
                    return self.imap_reply(
                        slot,
                        Reply::Selected(Err(No::code(
                            "NONEXISTENT",
                            "no such mailbox",
                        ))),
                    );
                }
                let dir = folders::place(&root, &name, fmt);
                let since = self
                    .imap
                    .registry
                    .get(&dir)
                    .map_or(0, |f| f.borrow().highest_modseq);
                Work::Scan(dir, since)
            }
            Request::List(patterns, params) => {
                Work::List(root, patterns, params)
            }
            Request::Create(name, special) => {
                if let Some(s) = &special
                    && !folders::SPECIAL_USES
                        .iter()
                        .any(|u| u.eq_ignore_ascii_case(s))
                {
                    return self.imap_reply(
                        slot,
                        Reply::Done(Err(No::code(
                            "USEATTR",
                            "unknown special use",
                        ))),
                    );
                }
                Work::Create(root, name, special)
            }
            Request::Delete(name) => Work::Delete(root, name),
            Request::Rename(from, to) => Work::Rename(root, from, to),
            Request::Subscribe(name, on) => Work::Subscribe(root, name, on),
            Request::Quota => Work::Quota(root.clone(), self.imap_quota(slot)),
            Request::Status(name, _) => {
                let dir = folders::place(&root, &name, fmt);
                if let Some(f) = self.imap.registry.get(&dir) {
                    let st = status_of(&f.borrow());
                    return self.imap_reply(slot, Reply::Status(Ok(st)));
                }
                if !folders::exists(&root, &name, fmt) {
                    return self.imap_reply(
                        slot,
                        Reply::Status(Err(No::code(
                            "NONEXISTENT",
                            "no such mailbox",
                        ))),
                    );
                }
                Work::Status(dir)
            }
            Request::Append { folder, messages } => {
                match self.append_work(slot, root, folder, messages) {
                    Some(work) => work,
                    None => return,
                }
            }
            Request::Store(..)
            | Request::Expunge(_)
            | Request::Copy { .. }
            | Request::Fetch(..)
            | Request::Search { .. } => {
                let Some((dir, folder)) = self.selected_folder(selected_dir)
                else {
                    return self.imap_reply(slot, closed(&request));
                };
                // A user's limit matters to COPY alone: not looked up for
                // every FETCH and STORE.
                let quota = match &request {
                    Request::Copy { moving: false, .. } => {
                        self.imap_quota(slot)
                    }
                    _ => 0,
                };
                let learner = Learner {
                    quota,
                    root: &root,
                    fmt,
                    ours: &self.services.config.hostname,
                };
                selected_work(dir, &folder.borrow(), request, &learner)
            }
            Request::Stream(s) => {
                let Some(dir) = selected_dir else {
                    return self.imap_reply(
                        slot,
                        Reply::Streamed(Err(No::text("mailbox closed"))),
                    );
                };
                return self.start_stream(slot, dir, s);
            }
            Request::Sync => match selected_dir {
                Some(dir) => {
                    let since = self
                        .imap
                        .registry
                        .get(&dir)
                        .map_or(0, |f| f.borrow().highest_modseq);
                    Work::Scan(dir, since)
                }
                None => return self.imap_reply(slot, Reply::Done(Ok(()))),
            },
        };
        self.send_work(key, work);
    }

    fn selected_folder(
        &self,
        dir: Option<PathBuf>,
    ) -> Option<(PathBuf, Rc<RefCell<Folder>>)> {
        let dir = dir?;
        let folder = self.imap.registry.get(&dir)?;
        Some((dir, folder))
    }

    /// Hands a reply to a session and goes on with it.
    pub(in crate::server) fn imap_reply(&mut self, slot: usize, reply: Reply) {
        let Some(conn) = self.core.conn_mut(slot) else {
            return;
        };
        let key = (slot, conn.generation);
        if conn.session.as_imap().is_none() {
            return;
        }
        conn.phase = Phase::Open;
        let what = crate::server::SessionName::of(conn);
        let Some(i) = conn.session.as_imap() else {
            return;
        };
        let done = crate::util::contain::guarded(
            || what.to_string(),
            || i.imap.done(reply, &mut conn.wbuf),
        );
        let Some(step) = done else {
            return self.session_failed(slot);
        };
        let now = i.imap.selected_name().map(str::to_string);
        let watching = i.watching.clone();
        self.track_selection(slot, key, watching, now);
        if let Some(dir) = self
            .core
            .conn_mut(slot)
            .and_then(|c| c.session.as_imap())
            .and_then(|i| i.watching.clone())
        {
            self.settle_recent(&dir);
        }
        self.act(slot, step.into());
        self.resume(slot);
    }

    /// Keeps the registry's watchers in step with what the session has
    /// selected.
    fn track_selection(
        &mut self,
        slot: usize,
        key: (usize, u64),
        watching: Option<PathBuf>,
        selected: Option<String>,
    ) {
        let Some(root) = self.imap_root(slot) else {
            return;
        };
        let fmt = self.services.config.mailbox_format;
        let want = selected.map(|n| folders::place(&root, &n, fmt));
        if want == watching {
            return;
        }
        if let Some(old) = &watching {
            self.unwatch(old, key);
        }
        if let Some(new) = &want
            && let Some(o) = self.imap.registry.open.get_mut(new)
        {
            o.watchers.push(key);
        }
        if let Some(i) =
            self.core.conn_mut(slot).and_then(|c| c.session.as_imap())
        {
            i.watching = want;
        }
    }

    /// Results from the mailbox helpers.
    pub(in crate::server) fn finish_mailbox_work(&mut self) {
        let done: Vec<_> = self.imap.helpers.finished().collect();
        for (key, outcome) in done {
            self.mailbox_done(key, outcome);
        }
    }

    /// A folder scanned for SELECT or a sync: taken into the registry;
    /// the reply, or None if there is none to give.
    fn scanned(
        &mut self,
        key: (usize, u64),
        dir: PathBuf,
        since: u64,
        result: Result<Folder, No>,
    ) -> Option<Reply> {
        let (slot, generation) = key;
        if result.is_err()
            && let Some(o) = self.imap.registry.open.get_mut(&dir)
        {
            o.scanning = false;
        }
        let folder = result.map(|scan| self.take_scan(&dir, scan, since, key));
        if key == NOBODY {
            return None;
        }
        Some(match folder {
            Ok(f) => {
                if let Some(o) = self.imap.registry.open.get_mut(&dir)
                    && !o.watchers.contains(&key)
                {
                    o.watchers.push(key);
                }
                if let Some(i) = self
                    .live_conn(slot, generation)
                    .and_then(|c| c.session.as_imap())
                {
                    if i.imap.selected_name().is_some() {
                        // A sync for a selected session.
                        let old = i.watching.replace(dir.clone());
                        if let Some(old) = old.filter(|o| *o != dir) {
                            self.unwatch(&old, key);
                        }
                        self.imap_reply(slot, Reply::Done(Ok(())));
                        return None;
                    }
                    let old = i.watching.replace(dir.clone());
                    if let Some(old) = old.filter(|o| *o != dir) {
                        self.unwatch(&old, key);
                    }
                }
                Reply::Selected(Ok(f))
            }
            Err(no) => Reply::Selected(Err(no)),
        })
    }

    /// STORE done by a helper: the new flags and files in the registry.
    fn flags_set(
        &mut self,
        key: (usize, u64),
        dir: PathBuf,
        r: Result<Vec<(u32, Option<String>, Flags)>, No>,
    ) -> Reply {
        match r {
            Ok(files) => {
                if let Some(f) = self.imap.registry.get(&dir) {
                    let mut f = f.borrow_mut();
                    for (uid, file, flags) in files {
                        let modseq = f.bump();
                        match (f.find(uid), file) {
                            (Some(i), Some(file)) => {
                                let m = &mut f.msgs[i];
                                m.flags = flags;
                                m.file = file.into();
                                m.modseq = modseq;
                            }
                            (Some(_), None) => f.remove(&[uid]),
                            _ => {}
                        }
                    }
                }
                self.notify(&dir, key);
                Reply::Done(Ok(()))
            }
            Err(no) => Reply::Done(Err(no)),
        }
    }

    fn mailbox_done(&mut self, key: (usize, u64), outcome: Outcome) {
        let (slot, generation) = key;
        let reply = match outcome {
            Outcome::Scanned(dir, since, result) => {
                match self.scanned(key, dir, since, result) {
                    Some(reply) => reply,
                    None => return,
                }
            }
            Outcome::Listed(r) => Reply::Listed(r),
            Outcome::GenUrlAuth(r) => Reply::GenUrlAuth(r),
            Outcome::UrlFetched(list) => Reply::UrlFetched(list),
            Outcome::NotifyOpened(list) => {
                let alive = self
                    .core
                    .conn(slot)
                    .is_some_and(|c| c.generation == generation);
                if !alive {
                    return;
                }
                Reply::Notified(self.start_notify(slot, key, list))
            }
            Outcome::Done(r) => {
                if r.is_ok() {
                    self.tell_folder_event(slot, generation);
                }
                if let Some(user) = self
                    .live_conn(slot, generation)
                    .and_then(|c| c.session.as_imap())
                    .and_then(|i| i.pending_login.take())
                {
                    return self.imap_login_done(slot, user, r);
                }
                Reply::Done(r)
            }
            Outcome::Status(r) => Reply::Status(r),
            Outcome::Quota(r) => Reply::Quota(r),
            Outcome::Appended(dir, r) => {
                Reply::Appended(r.map(|(validity, added)| {
                    let uids = added.iter().map(|a| a.0).collect();
                    self.added(&dir, validity, added, key);
                    (validity, uids)
                }))
            }
            Outcome::FlagsSet(dir, r) => self.flags_set(key, dir, r),
            Outcome::Expunged(dir, r) => match r {
                Ok(uids) => {
                    if let Some(f) = self.imap.registry.get(&dir) {
                        f.borrow_mut().remove(&uids);
                    }
                    self.notify(&dir, key);
                    if self.services.config.mailbox_format
                        == MailboxFormat::Mbox
                    {
                        // The rewrite moved every later message.
                        self.rescan(&dir);
                    }
                    Reply::Done(Ok(()))
                }
                Err(no) => Reply::Done(Err(no)),
            },
            Outcome::Copied {
                from,
                to,
                result,
                moving,
            } => {
                let result = result.map(|(validity, src, added)| {
                    let uids = added.iter().map(|a| a.0).collect();
                    self.added(&to, validity, added, key);
                    if moving {
                        if let Some(f) = self.imap.registry.get(&from) {
                            f.borrow_mut().remove(&src);
                        }
                        self.notify(&from, key);
                        if self.services.config.mailbox_format
                            == MailboxFormat::Mbox
                        {
                            self.rescan(&from);
                        }
                    }
                    (validity, src, uids)
                });
                Reply::Copied(result)
            }
            Outcome::Checked(dir, stamp, scan, since) => {
                if let Some(o) = self.imap.registry.open.get_mut(&dir) {
                    o.scanning = false;
                    o.stamp = stamp;
                }
                if let Some(scan) = scan
                    && self.imap.registry.open.contains_key(&dir)
                {
                    self.take_scan(&dir, scan, since, NOBODY);
                }
                return;
            }
            Outcome::Saved => return,
            Outcome::Settled(dir, files) => {
                if let Some(o) = self.imap.registry.open.get_mut(&dir) {
                    o.settling = false;
                    let mut f = o.folder.borrow_mut();
                    for (uid, file) in files {
                        if let (Some(i), Some(file)) = (f.find(uid), file) {
                            f.msgs[i].file = file.into();
                        }
                    }
                }
                return;
            }
            Outcome::Fetched(data) => Reply::Fetched(data),
            Outcome::Searched(uids) => Reply::Searched(uids),
            Outcome::Sorted(found) => Reply::Sorted(found),
            Outcome::Answers(a) => Reply::Answers(a),
            Outcome::Failed(no) => Reply::Failed(no),
        };
        let waiting = self
            .core
            .conn(slot)
            .is_some_and(|c| c.generation == generation);
        if waiting {
            self.imap_reply(slot, reply);
        }
    }

    /// A scan came back: merged into the open folder (others told), or
    /// opened.
    fn take_scan(
        &mut self,
        dir: &Path,
        scan: Folder,
        since: u64,
        key: (usize, u64),
    ) -> Rc<RefCell<Folder>> {
        if let Some(o) = self.imap.registry.open.get_mut(dir) {
            o.scanning = false;
            let changed = o.folder.borrow_mut().merge(scan, since);
            let f = Rc::clone(&o.folder);
            if changed {
                self.notify(dir, key);
            }
            if self.imap.registry.watchers(dir).is_empty()
                && self.imap.registry.status_watchers(dir).is_empty()
                && key == NOBODY
            {
                self.imap.registry.close(dir);
            }
            return f;
        }
        let mut scan = scan;
        self.imap.registry.reopening(dir, &mut scan);
        let saved_modseq = scan.highest_modseq;
        let saved_recent = scan.recent_from;
        let folder = Rc::new(RefCell::new(scan));
        self.imap.registry.open.insert(
            dir.to_path_buf(),
            Open {
                folder: Rc::clone(&folder),
                watchers: Vec::new(),
                status_watchers: Vec::new(),
                scanning: false,
                settling: false,
                settled_below: 0,
                stamp: None,
                saved_modseq,
                saved_recent,
            },
        );
        folder
    }

    /// Messages we stored in a folder: into the open copy at once (or
    /// a scan, if they do not fit), and its watchers told.
    fn added(
        &mut self,
        dir: &Path,
        validity: u32,
        added: Vec<crate::server::imap::folder_io::Added>,
        actor: (usize, u64),
    ) {
        let Some(f) = self.imap.registry.get(dir) else {
            return;
        };
        let fits = {
            let mut f = f.borrow_mut();
            f.uidvalidity == validity && f.add(added)
        };
        if fits {
            self.notify(dir, actor);
        } else {
            self.rescan(dir);
        }
    }

    /// Messages some session has claimed as \Recent move from new/ to
    /// cur/ (on a helper), so they are not \Recent after a restart.
    pub(in crate::server) fn settle_recent(&mut self, dir: &Path) {
        let Some(o) = self.imap.registry.open.get_mut(dir) else {
            return;
        };
        if o.settling {
            return;
        }
        let f = o.folder.borrow();
        let from = f.msgs.partition_point(|m| m.uid < o.settled_below);
        let to = f.msgs.partition_point(|m| m.uid < f.recent_from);
        if from >= to {
            return;
        }
        let msgs: Vec<_> = f.msgs[from..to]
            .iter()
            .filter(|m| m.file.starts_with("new/"))
            .map(|m| (m.uid, m.file.to_string(), m.flags))
            .collect();
        o.settled_below = f.recent_from;
        drop(f);
        if msgs.is_empty() {
            return;
        }
        o.settling = true;
        self.send_work(NOBODY, Work::Settle(dir.to_path_buf(), msgs));
    }

    /// Every open folder watched by a session: look for changes other
    /// programs made (mutt, procmail, a Dovecot LDA), at most one check
    /// per folder in flight.
    pub(in crate::server) fn check_folders(&mut self) {
        let mut checks = Vec::new();
        for (dir, o) in self.imap.registry.open.iter_mut() {
            if o.watchers.is_empty() || o.scanning {
                continue;
            }
            o.scanning = true;
            let since = o.folder.borrow().highest_modseq;
            checks.push(Work::Check(dir.clone(), o.stamp, since));
        }
        for work in checks {
            self.send_work(NOBODY, work);
        }
    }

    /// Hands work to the mailbox helpers, with the mailbox format.
    /// Each user's jobs wait in their own queue, served in turn with
    /// other users' (the server's own, with no connection, as "").
    fn send_work(&self, key: (usize, u64), work: Work) {
        let fmt = self.services.config.mailbox_format;
        let user = self
            .core
            .conns
            .get(key.0)
            .and_then(Option::as_ref)
            .filter(|c| c.generation == key.1)
            .and_then(|c| match &c.session {
                crate::server::session::Session::Imap(i) => i.imap.user(),
                _ => None,
            })
            .unwrap_or_default()
            .to_string();
        self.imap.helpers.send(&user, (key, fmt, work));
    }

    /// Looks at a folder on disk again if any session has it open.
    pub(in crate::server) fn rescan(&mut self, dir: &Path) {
        if let Some(o) = self.imap.registry.open.get_mut(dir)
            && !o.scanning
        {
            o.scanning = true;
            let since = o.folder.borrow().highest_modseq;
            self.send_work(NOBODY, Work::Scan(dir.to_path_buf(), since));
        }
    }

    /// NOTIFY SET: the folders it covers are held open with this session
    /// watching them; their names, events and STATUS for the answer.
    fn start_notify(
        &mut self,
        slot: usize,
        key: (usize, u64),
        list: Vec<crate::server::imap::mailboxes::NotifyFolder>,
    ) -> Vec<(String, Events, Status)> {
        self.stop_notify(slot, key);
        let mut told = Vec::with_capacity(list.len());
        let mut watching = Vec::with_capacity(list.len());
        for (name, dir, events, scan) in list {
            let folder = match self.imap.registry.get(&dir) {
                Some(f) => f,
                None => self.take_scan(&dir, scan, 0, key),
            };
            if let Some(o) = self.imap.registry.open.get_mut(&dir) {
                o.status_watchers.push(key);
            }
            told.push((name.clone(), events, status_of(&folder.borrow())));
            watching.push((dir, name));
        }
        if let Some(i) =
            self.core.conn_mut(slot).and_then(|c| c.session.as_imap())
        {
            i.status_watching = watching;
        }
        told
    }

    /// NOTIFY NONE, or a new NOTIFY SET: stop watching for STATUS.
    fn stop_notify(&mut self, slot: usize, key: (usize, u64)) {
        let old = self
            .core
            .conn_mut(slot)
            .and_then(|c| c.session.as_imap())
            .map(|i| std::mem::take(&mut i.status_watching))
            .unwrap_or_default();
        for (dir, _) in old {
            self.unwatch(&dir, key);
        }
    }

    /// A folder of this session's user was created, deleted, renamed or
    /// (un)subscribed: the user's other sessions that asked (NOTIFY)
    /// hear of it.
    fn tell_folder_event(&mut self, slot: usize, generation: u64) {
        let Some((user, event)) = self
            .live_conn(slot, generation)
            .and_then(|c| c.session.as_imap())
            .and_then(|i| {
                Some((i.imap.user()?.to_string(), i.folder_event.take()?))
            })
        else {
            return;
        };
        let mut told = Vec::new();
        for (other, conn) in self.core.conns.iter_mut().enumerate() {
            let Some(conn) = conn.as_mut() else { continue };
            if other == slot {
                continue;
            }
            let Some(i) = conn.session.as_imap() else {
                continue;
            };
            if i.imap.user() == Some(user.as_str()) {
                i.imap.folder_event(&event, &mut conn.wbuf);
                told.push(other);
            }
        }
        for other in told {
            self.flush(other);
        }
    }

    /// Tells every session watching `dir` but `actor` that it changed.
    fn notify(&mut self, dir: &Path, actor: (usize, u64)) {
        let status_watchers = self.imap.registry.status_watchers(dir);
        if !status_watchers.is_empty()
            && let Some(f) = self.imap.registry.get(dir)
        {
            let st = status_of(&f.borrow());
            for (slot, generation) in status_watchers {
                let Some(conn) = self.live_conn(slot, generation) else {
                    continue;
                };
                let Some(i) = conn.session.as_imap() else {
                    continue;
                };
                let Some(name) = i
                    .status_watching
                    .iter()
                    .find(|(d, _)| d == dir)
                    .map(|(_, n)| n.clone())
                else {
                    continue;
                };
                i.imap.folder_status(&name, &st, &mut conn.wbuf);
                self.flush(slot);
            }
        }
        for (slot, generation) in self.imap.registry.watchers(dir) {
            if (slot, generation) == actor {
                continue;
            }
            let Some(conn) = self.live_conn(slot, generation) else {
                continue;
            };
            if let Some(i) = conn.session.as_imap() {
                i.imap.folder_changed(&mut conn.wbuf);
            }
            self.flush(slot);
        }
        self.settle_recent(dir);
    }

    /// The default folders are there: the login is complete.
    fn imap_login_done(
        &mut self,
        slot: usize,
        user: String,
        made: Result<(), No>,
    ) {
        let Some(conn) = self.core.conn_mut(slot) else {
            return;
        };
        if let Err(no) = &made {
            warn!(
                "conn={} imap folders for {}: {}",
                conn.id,
                Quoted(&user),
                no.text
            );
        }
        // Logged in: the autologout timer of RFC 9051 5.4 from now on.
        conn.idle =
            std::time::Duration::from_secs(self.services.config.imap_timeout);
        conn.deadline = std::time::Instant::now() + conn.idle;
        conn.phase = Phase::Open;
        if let Some(i) = conn.session.as_imap() {
            info!("conn={} imap login user={}", conn.id, Quoted(&user));
            i.imap.logged_in(Some(user), &mut conn.wbuf);
        }
        self.resume(slot);
    }

    /// Stops a session watching a folder, writing its index if it was
    /// the last.
    fn unwatch(&mut self, dir: &Path, key: (usize, u64)) {
        if let Some(work) = self.imap.registry.unwatch(dir, key) {
            self.send_work(NOBODY, work);
        }
    }

    /// Writes the index of every folder that changed.
    pub(in crate::server) fn save_indexes(&mut self) {
        for work in self.imap.registry.saves() {
            self.send_work(NOBODY, work);
        }
    }

    /// A connection is closing: stop watching its folder.
    pub(in crate::server) fn imap_closed(
        &mut self,
        key: (usize, u64),
        watching: Option<PathBuf>,
        notified: Vec<(PathBuf, String)>,
    ) {
        if let Some(dir) = watching {
            self.unwatch(&dir, key);
        }
        for (dir, _) in notified {
            self.unwatch(&dir, key);
        }
    }
}
