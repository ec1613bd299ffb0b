//! The selected mailbox: this session's view of it (the UIDs it has been
//! told about, in sequence order) over the folder every session shares,
//! and the commands that work on it: FETCH, STORE, SEARCH, EXPUNGE,
//! COPY, MOVE, CLOSE, UNSELECT.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::rc::Rc;

use super::arrange::{Arrange, Arranged};
use super::command::{
    Command, FetchArgs, Qresync, SearchReturn, StoreArgs, StoreMode,
};
use super::fetch::Item;
use super::folder::{Flags, Folder};
use super::matcher::{self, Facts, needs_content};
use super::request::ImapStep;
use super::request::{Candidate, Fetched, Reply, Request, Segment};
use super::response::tagged_no;
use super::response::{line, tagged};
use super::search::Key;
use super::sequence::{SeqSet, write_set};
use super::types::Enabled;
use super::updates::Updates;
use crate::proto::OUTPUT_CAP;

/// Messages whose files one FETCH request reads.
const FETCH_BATCH: usize = 32;
/// Key evaluations (messages times keys) a SEARCH may make on the loop;
/// a bigger one is the helpers' work.
const LOOP_SEARCH_BUDGET: usize = 200_000;

/// A command waiting for the loop, with what it needs to finish.
#[derive(Debug)]
pub enum Pending {
    /// LOGIN or AUTHENTICATE.
    Login(Vec<u8>),
    /// SELECT or EXAMINE.
    Select {
        /// Tag.
        tag: Vec<u8>,
        /// EXAMINE.
        readonly: bool,
        /// The folder.
        name: String,
        /// QRESYNC parameters.
        qresync: Option<Qresync>,
    },
    /// A command answered with OK or NO only.
    Plain(Vec<u8>),
    /// GETQUOTA (no mailbox) or GETQUOTAROOT.
    Quota {
        /// Tag.
        tag: Vec<u8>,
        /// GETQUOTAROOT's mailbox.
        mailbox: Option<String>,
    },
    /// LIST or LSUB.
    List {
        /// Tag.
        tag: Vec<u8>,
        /// LSUB.
        lsub: bool,
        /// Options.
        params: super::command::ListParams,
    },
    /// STATUS.
    Status {
        /// Tag.
        tag: Vec<u8>,
        /// The folder.
        name: String,
        /// Items asked for.
        items: Vec<super::command::StatusItem>,
    },
    /// APPEND.
    Append(Vec<u8>),
    /// NOTIFY.
    Notify(Vec<u8>),
    /// GENURLAUTH.
    GenUrlAuth(Vec<u8>),
    /// URLFETCH.
    UrlFetch(Vec<u8>),
    /// FETCH under way.
    Fetch(Box<FetchState>),
    /// STORE (also FETCH's implicit \Seen, then the FETCH).
    Store(Box<StoreState>),
    /// EXPUNGE; `close` for CLOSE (no responses, then unselect).
    Expunge {
        /// Tag.
        tag: Vec<u8>,
        /// CLOSE.
        close: bool,
    },
    /// SEARCH looking inside messages.
    Search(Box<SearchState>),
    /// Content answers for a search kept up to date, asked after a
    /// command; then its tagged line, held back until they came.
    Answers {
        /// Which search.
        index: usize,
        /// The UIDs asked for.
        asked: Vec<u32>,
        /// The command's tagged line.
        held: Vec<u8>,
    },
    /// COPY or MOVE.
    Copy {
        /// Tag.
        tag: Vec<u8>,
        /// MOVE.
        moving: bool,
    },
    /// Not a command: the session leaves Selected state.
    Unselect,
}

impl Pending {
    /// The tag of the command waiting, if one waits (for a tagged NO
    /// when its helper job failed); an Answers' held line otherwise.
    pub fn tag_or_held(&self) -> Result<&[u8], &[u8]> {
        match self {
            Pending::Login(tag)
            | Pending::Plain(tag)
            | Pending::Append(tag)
            | Pending::Notify(tag)
            | Pending::GenUrlAuth(tag)
            | Pending::UrlFetch(tag)
            | Pending::Select { tag, .. }
            | Pending::List { tag, .. }
            | Pending::Status { tag, .. }
            | Pending::Quota { tag, .. }
            | Pending::Expunge { tag, .. }
            | Pending::Copy { tag, .. } => Ok(tag),
            Pending::Fetch(f) => Ok(&f.tag),
            Pending::Store(s) => Ok(&s.tag),
            Pending::Search(s) => Ok(&s.tag),
            Pending::Answers { held, .. } => Err(held),
            Pending::Unselect => Err(b""),
        }
    }
}

/// A FETCH being answered, a bounded piece at a time.
#[derive(Debug)]
pub struct FetchState {
    tag: Vec<u8>,
    items: Rc<[Item]>,
    targets: Vec<u32>,
    next: usize,
    needs_file: bool,
    changed_since: Option<u64>,
    /// Answers read, not yet written.
    queue: VecDeque<Fetched>,
    /// The front answer's `* n FETCH (` is written.
    open: bool,
    /// Waiting for the loop (files read, or a stream sent).
    waiting: bool,
}

/// A STORE waiting for its renames.
#[derive(Debug)]
pub struct StoreState {
    tag: Vec<u8>,
    uid_mode: bool,
    silent: bool,
    targets: Vec<u32>,
    modified: Vec<u32>,
    /// FETCH's implicit \Seen: the FETCH to answer once stored.
    then_fetch: Option<Box<FetchState>>,
    /// The session was in step with the folder before: its own change
    /// is not news to it afterwards.
    in_step: bool,
}

/// The selected mailbox as this session sees it.
#[derive(Debug)]
pub struct Selected {
    /// The shared folder.
    pub folder: Rc<RefCell<Folder>>,
    /// Its name.
    pub name: String,
    /// EXAMINE.
    pub readonly: bool,
    /// UIDs the client knows, sequence number = index + 1.
    view: Vec<u32>,
    /// Flag changes up to this MODSEQ have been told.
    told_modseq: u64,
    /// \Recent for this session (sorted UIDs).
    recent: Vec<u32>,
    /// Keywords the client has been told of in FLAGS.
    told_keywords: usize,
    /// Searches kept up to date (CONTEXT=SEARCH).
    updates: Updates,
    /// The last RETURN (UPDATE) could not be kept.
    noupdate: bool,
}

/// `* FLAGS` and `* OK [PERMANENTFLAGS]` for a folder.
fn write_flag_lists(f: &Folder, readonly: bool, out: &mut Vec<u8>) {
    let mut flags = Vec::new();
    f.write_flags(Flags(!super::folder::PASSED), &mut flags);
    let flags = String::from_utf8_lossy(&flags).into_owned();
    line(out, &format!("* FLAGS {flags}"));
    let permanent = if readonly {
        "()".to_string()
    } else if flags == "()" {
        "(\\*)".to_string()
    } else {
        format!("{} \\*)", flags.trim_end_matches(')'))
    };
    line(out, &format!("* OK [PERMANENTFLAGS {permanent}] Flags"));
}

type CmdResult = Result<(Option<Pending>, ImapStep), (Vec<u8>, &'static str)>;

impl Selected {
    /// SELECT succeeded: the untagged data and the tagged OK.
    pub fn open(
        folder: Rc<RefCell<Folder>>,
        name: String,
        readonly: bool,
        qresync: Option<Qresync>,
        enabled: Enabled,
        tag: &[u8],
        out: &mut Vec<u8>,
    ) -> Selected {
        let recent = folder.borrow_mut().take_recent(!readonly);
        let f = folder.borrow();
        let view: Vec<u32> = f.msgs.iter().map(|m| m.uid).collect();
        line(out, &format!("* {} EXISTS", view.len()));
        if !enabled.rev2 {
            line(out, &format!("* {} RECENT", recent.len()));
        }
        write_flag_lists(&f, readonly, out);
        if enabled.rev2 {
            // RFC 9051 6.3.2: IMAP4rev2 names the mailbox in a LIST.
            out.extend_from_slice(b"* LIST () \".\" ");
            super::response::mailbox(out, &name);
            out.extend_from_slice(b"\r\n");
        }
        if !enabled.rev2
            && let (_, Some(first)) = f.unseen()
        {
            line(out, &format!("* OK [UNSEEN {first}] First unseen"));
        }
        line(
            out,
            &format!("* OK [UIDVALIDITY {}] UIDs valid", f.uidvalidity),
        );
        line(
            out,
            &format!("* OK [UIDNEXT {}] Predicted next UID", f.uidnext),
        );
        if enabled.condstore {
            line(
                out,
                &format!(
                    "* OK [HIGHESTMODSEQ {}] Highest",
                    f.highest_modseq.max(1)
                ),
            );
        }
        if let Some(q) = qresync.filter(|q| q.uidvalidity == f.uidvalidity) {
            write_qresync(&f, &q, out);
        }
        let access = if readonly { "READ-ONLY" } else { "READ-WRITE" };
        let verb = if readonly { "EXAMINE" } else { "SELECT" };
        tagged(out, tag, "OK", &format!("[{access}] {verb} completed"));
        let told_modseq = f.highest_modseq;
        let told_keywords = f.keywords.len();
        drop(f);
        Selected {
            folder,
            name,
            readonly,
            view,
            told_modseq,
            recent,
            told_keywords,
            updates: Updates::default(),
            noupdate: false,
        }
    }

    fn seq_of(&self, uid: u32) -> Option<usize> {
        self.view.binary_search(&uid).ok().map(|i| i + 1)
    }

    /// UIDs a set names: sequence numbers or UIDs as the command says.
    fn targets(
        &self,
        set: &SeqSet,
        uid_mode: bool,
    ) -> Result<Vec<u32>, &'static str> {
        if self.view.is_empty() && !uid_mode {
            return Err("no messages");
        }
        let max = if uid_mode {
            self.view.last().copied().unwrap_or(0)
        } else {
            self.view.len() as u32
        };
        // Normalised ranges: sorted and disjoint, so the UIDs come out
        // in order, each once, and no more than the view holds.
        let Some(ranges) = set.resolve(max) else {
            return Err("no saved search result");
        };
        let mut uids = Vec::new();
        if uid_mode {
            for (a, b) in ranges {
                let lo = self.view.partition_point(|&u| u < a);
                let hi = self.view.partition_point(|&u| u <= b);
                uids.extend_from_slice(&self.view[lo..hi]);
            }
        } else {
            if set.highest(max).unwrap_or(0) as usize > self.view.len() {
                return Err("invalid message sequence number");
            }
            for (a, b) in ranges {
                uids.extend_from_slice(&self.view[a as usize - 1..b as usize]);
            }
        }
        Ok(uids)
    }

    /// In EXAMINE: says NO and returns true.
    fn refuse_read_only(&self, tag: &[u8], out: &mut Vec<u8>) -> bool {
        if self.readonly {
            tagged(out, tag, "NO", "[READ-ONLY] mailbox is read-only");
        }
        self.readonly
    }

    /// [`Selected::targets`], where a UID set naming nothing is no
    /// error (RFC 9051 6.4.9: UIDs not in use are ignored).
    fn targets_or_none(
        &self,
        set: &SeqSet,
        uid_mode: bool,
    ) -> Result<Vec<u32>, &'static str> {
        match self.targets(set, uid_mode) {
            Err(_) if uid_mode => Ok(Vec::new()),
            other => other,
        }
    }

    /// Tells the client what changed since it last heard: new keywords,
    /// new messages, expunges (when `expunges`), flag changes.
    pub fn sync(
        &mut self,
        out: &mut Vec<u8>,
        expunges: bool,
        enabled: Enabled,
    ) {
        let folder = Rc::clone(&self.folder);
        self.announce_keywords(out);
        if expunges {
            let f = folder.borrow();
            let gone: Vec<u32> = self
                .view
                .iter()
                .copied()
                .filter(|&u| f.find(u).is_none())
                .collect();
            if !gone.is_empty() {
                self.updates.expunging(&self.view, &gone, out);
                if enabled.qresync {
                    let mut set = Vec::new();
                    write_set(&gone, &mut set);
                    out.extend_from_slice(b"* VANISHED ");
                    out.extend_from_slice(&set);
                    out.extend_from_slice(b"\r\n");
                } else {
                    // Highest first, so no number shifts under the next.
                    for &u in gone.iter().rev() {
                        if let Ok(i) = self.view.binary_search(&u) {
                            line(out, &format!("* {} EXPUNGE", i + 1));
                        }
                    }
                }
                self.view.retain(|u| gone.binary_search(u).is_err());
                self.recent.retain(|u| gone.binary_search(u).is_err());
            }
        }
        let last = self.view.last().copied().unwrap_or(0);
        let has_new =
            folder.borrow().msgs.last().is_some_and(|m| m.uid > last);
        if has_new {
            let claimed = folder.borrow_mut().take_recent(!self.readonly);
            self.recent.extend(claimed);
            self.recent.sort_unstable();
            self.recent.dedup();
            let f = folder.borrow();
            let start = f.msgs.partition_point(|m| m.uid <= last);
            self.view.extend(f.msgs[start..].iter().map(|m| m.uid));
            line(out, &format!("* {} EXISTS", self.view.len()));
            if !enabled.rev2 {
                line(out, &format!("* {} RECENT", self.recent.len()));
            }
        }
        let f = folder.borrow();
        if f.highest_modseq > self.told_modseq {
            for (i, &uid) in self.view.iter().enumerate() {
                let Some(m) = f.get(uid) else { continue };
                if m.modseq <= self.told_modseq || m.uid > last {
                    continue;
                }
                out.extend_from_slice(
                    format!("* {} FETCH (", i + 1).as_bytes(),
                );
                if enabled.condstore || enabled.qresync {
                    out.extend_from_slice(format!("UID {uid} ").as_bytes());
                }
                out.extend_from_slice(b"FLAGS ");
                self.write_msg_flags(&f, m, out);
                if enabled.condstore {
                    out.extend_from_slice(
                        format!(" MODSEQ ({})", m.modseq).as_bytes(),
                    );
                }
                out.extend_from_slice(b")\r\n");
            }
            self.told_modseq = f.highest_modseq;
        }
        self.updates.refresh(&self.view, &self.recent, &f, out);
    }

    /// After a command: the helper work that searches kept up to date
    /// need for new messages, with the command's tagged line `held`
    /// until it is done.
    pub fn answers_needed(&self, held: Vec<u8>) -> Option<(Pending, Request)> {
        let (index, key, asked) = self.updates.unanswered(&self.view)?;
        let f = self.folder.borrow();
        let candidates = asked
            .iter()
            .filter_map(|&u| {
                let m = f.get(u)?;
                Some(Candidate {
                    uid: u,
                    seq: self.seq_of(u)? as u32,
                    flags: m.flags,
                    recent: self.recent.binary_search(&u).is_ok(),
                    modseq: m.modseq,
                })
            })
            .collect();
        let request = Request::Search {
            key,
            candidates,
            max_seq: self.view.len() as u32,
            max_uid: self.view.last().copied().unwrap_or(0),
            keywords: f.keywords.clone(),
            sort: None,
            answers: true,
            read: true,
        };
        Some((Pending::Answers { index, asked, held }, request))
    }

    /// `* FLAGS` again when the folder has keywords the client has not
    /// been told of.
    fn announce_keywords(&mut self, out: &mut Vec<u8>) {
        let f = self.folder.borrow();
        if f.keywords.len() != self.told_keywords {
            write_flag_lists(&f, self.readonly, out);
            self.told_keywords = f.keywords.len();
        }
    }

    /// A message's flags, with \Recent if it is recent for this session.
    fn write_msg_flags(
        &self,
        f: &Folder,
        m: &super::folder::Msg,
        out: &mut Vec<u8>,
    ) {
        f.write_flags(m.flags, out);
        if self.recent.binary_search(&m.uid).is_ok() {
            out.pop();
            if out.last() != Some(&b'(') {
                out.push(b' ');
            }
            out.extend_from_slice(b"\\Recent)");
        }
    }

    /// The folder's highest MODSEQ.
    pub fn highest_modseq(&self) -> u64 {
        self.folder.borrow().highest_modseq.max(1)
    }

    /// A command in Selected state.
    pub fn command(
        &mut self,
        tag: Vec<u8>,
        cmd: Command<'_>,
        enabled: Enabled,
        out: &mut Vec<u8>,
    ) -> CmdResult {
        match cmd {
            Command::Unselect => {
                tagged(out, &tag, "OK", "UNSELECT completed");
                Ok((Some(Pending::Unselect), ImapStep::Continue))
            }
            Command::Close => {
                let deleted = self.deleted(None);
                if self.readonly || deleted.is_empty() {
                    tagged(out, &tag, "OK", "CLOSE completed");
                    return Ok((Some(Pending::Unselect), ImapStep::Continue));
                }
                Ok((
                    Some(Pending::Expunge { tag, close: true }),
                    ImapStep::Io(Request::Expunge(deleted)),
                ))
            }
            Command::Expunge(set) => {
                if self.refuse_read_only(&tag, out) {
                    return Ok((None, ImapStep::Continue));
                }
                let within = match set.map(|s| self.targets(&s, true)) {
                    Some(Ok(t)) => Some(t),
                    Some(Err(why)) => return Err((tag, why)),
                    None => None,
                };
                let deleted = self.deleted(within.as_deref());
                if deleted.is_empty() {
                    self.sync(out, true, enabled);
                    tagged(out, &tag, "OK", "EXPUNGE completed");
                    return Ok((None, ImapStep::Continue));
                }
                Ok((
                    Some(Pending::Expunge { tag, close: false }),
                    ImapStep::Io(Request::Expunge(deleted)),
                ))
            }
            Command::Fetch(args) => self.fetch(tag, args, enabled, out),
            Command::Store(args) => self.store(tag, args, enabled, out),
            Command::CancelUpdate(tags) => {
                for t in &tags {
                    self.updates.cancel(t);
                }
                tagged(out, &tag, "OK", "CANCELUPDATE completed");
                Ok((None, ImapStep::Continue))
            }
            Command::Search { uid, ret, keys } => {
                Ok(self.search(tag, uid, ret, keys, None, enabled, out))
            }
            Command::Sort {
                uid,
                ret,
                criteria,
                keys,
            } => Ok(self.search(
                tag,
                uid,
                ret,
                keys,
                Some(Arrange {
                    criteria,
                    thread: None,
                    uid_mode: uid,
                }),
                enabled,
                out,
            )),
            Command::Thread {
                uid,
                algorithm,
                keys,
            } => Ok(self.search(
                tag,
                uid,
                SearchReturn::default(),
                keys,
                Some(Arrange {
                    criteria: super::thread::keys(),
                    thread: Some(algorithm),
                    uid_mode: uid,
                }),
                enabled,
                out,
            )),
            Command::Copy {
                uid,
                set,
                mailbox,
                moving,
            } => {
                if moving && self.refuse_read_only(&tag, out) {
                    return Ok((None, ImapStep::Continue));
                }
                let targets = match self.targets_or_none(&set, uid) {
                    Ok(t) => t,
                    Err(why) => return Err((tag, why)),
                };
                let to = match super::names::decode(&mailbox, enabled.utf8) {
                    Ok(n) => n,
                    Err(why) => {
                        tagged(out, &tag, "NO", why);
                        return Ok((None, ImapStep::Continue));
                    }
                };
                if targets.is_empty() {
                    let verb = if moving { "MOVE" } else { "COPY" };
                    tagged(
                        out,
                        &tag,
                        "OK",
                        &format!("{verb} completed (no messages)"),
                    );
                    return Ok((None, ImapStep::Continue));
                }
                Ok((
                    Some(Pending::Copy { tag, moving }),
                    ImapStep::Io(Request::Copy {
                        uids: targets,
                        to,
                        moving,
                    }),
                ))
            }
            _ => Err((tag, "command not valid in this state")),
        }
    }

    /// FETCH: the messages' items, after marking them \\Seen where the
    /// items say so (a STORE first).
    fn fetch(
        &mut self,
        tag: Vec<u8>,
        args: FetchArgs,
        enabled: Enabled,
        out: &mut Vec<u8>,
    ) -> CmdResult {
        let FetchArgs {
            uid,
            set,
            items,
            changed_since,
            vanished,
        } = args;
        let targets = match self.targets_or_none(&set, uid) {
            Ok(t) => t,
            Err(why) => return Err((tag, why)),
        };
        if vanished {
            self.write_vanished(&set, changed_since.unwrap_or(0), out);
        }
        let mut items = items;
        if uid && !items.contains(&Item::Uid) {
            items.insert(0, Item::Uid);
        }
        if (changed_since.is_some() || enabled.condstore)
            && !items.contains(&Item::ModSeq)
            && changed_since.is_some()
        {
            items.push(Item::ModSeq);
        }
        let sets_seen = !self.readonly && items.iter().any(Item::sets_seen);
        let needs_file = items.iter().any(Item::needs_file);
        let mut fetch = Box::new(FetchState {
            tag,
            items: Rc::from(items),
            targets,
            next: 0,
            needs_file,
            changed_since,
            queue: VecDeque::new(),
            open: false,
            waiting: false,
        });
        if sets_seen {
            let unseen: Vec<(u32, Flags)> = {
                let f = self.folder.borrow();
                fetch
                    .targets
                    .iter()
                    .filter_map(|&u| f.get(u))
                    .filter(|m| !m.flags.has(Flags::SEEN))
                    .map(|m| (m.uid, Flags(m.flags.0 | Flags::SEEN.0)))
                    .collect()
            };
            if !unseen.is_empty() {
                if !fetch.items.contains(&Item::Flags) {
                    let mut items = fetch.items.to_vec();
                    items.push(Item::Flags);
                    fetch.items = Rc::from(items);
                }
                let store = StoreState {
                    tag: Vec::new(),
                    uid_mode: uid,
                    silent: true,
                    targets: Vec::new(),
                    modified: Vec::new(),
                    then_fetch: Some(fetch),
                    in_step: self.in_step(),
                };
                return Ok((
                    Some(Pending::Store(Box::new(store))),
                    ImapStep::Io(Request::Store(unseen)),
                ));
            }
        }
        Ok(self.pump(fetch, enabled, out))
    }

    /// STORE: the flags worked out here, the change made by the loop.
    fn store(
        &mut self,
        tag: Vec<u8>,
        args: StoreArgs<'_>,
        enabled: Enabled,
        out: &mut Vec<u8>,
    ) -> CmdResult {
        let StoreArgs {
            uid,
            set,
            unchanged_since,
            mode,
            silent,
            flags,
        } = args;
        if self.refuse_read_only(&tag, out) {
            return Ok((None, ImapStep::Continue));
        }
        let targets = match self.targets_or_none(&set, uid) {
            Ok(t) => t,
            Err(why) => return Err((tag, why)),
        };
        let mut f = self.folder.borrow_mut();
        let mut bits = Flags(0);
        for name in &flags {
            match f.flag_bit(name, true) {
                Some(b) => bits.0 |= b.0,
                None if name.eq_ignore_ascii_case(b"\\Recent") => {}
                None if name.first() == Some(&b'\\') => {
                    drop(f);
                    return Err((tag, "unknown system flag"));
                }
                None => {
                    drop(f);
                    tagged(
                        out,
                        &tag,
                        "NO",
                        "too many keywords in this mailbox",
                    );
                    return Ok((None, ImapStep::Continue));
                }
            }
        }
        let mut changes = Vec::new();
        let mut modified = Vec::new();
        for &u in &targets {
            let Some(m) = f.get(u) else { continue };
            if unchanged_since.is_some_and(|s| m.modseq > s) {
                modified.push(u);
                continue;
            }
            let keep = m.flags.0 & super::folder::PASSED;
            let new = match mode {
                StoreMode::Replace => Flags(bits.0 | keep),
                StoreMode::Add => Flags(m.flags.0 | bits.0),
                StoreMode::Remove => Flags(m.flags.0 & !bits.0),
            };
            if new != m.flags {
                changes.push((u, new));
            }
        }
        drop(f);
        let mut store = Box::new(StoreState {
            tag,
            uid_mode: uid,
            silent,
            targets,
            modified,
            then_fetch: None,
            in_step: self.in_step(),
        });
        if changes.is_empty() {
            return Ok(self.finish_store(&mut store, enabled, out));
        }
        Ok((
            Some(Pending::Store(store)),
            ImapStep::Io(Request::Store(changes)),
        ))
    }

    fn in_step(&self) -> bool {
        self.told_modseq == self.folder.borrow().highest_modseq
    }

    /// UIDs with \Deleted, within `within` if given.
    fn deleted(&self, within: Option<&[u32]>) -> Vec<u32> {
        let f = self.folder.borrow();
        self.view
            .iter()
            .copied()
            .filter(|u| within.is_none_or(|w| w.binary_search(u).is_ok()))
            .filter(|&u| f.get(u).is_some_and(|m| m.flags.has(Flags::DELETED)))
            .collect()
    }

    /// QRESYNC's VANISHED (EARLIER) for a UID FETCH: UIDs in the set
    /// the folder no longer has, as far as we can tell (any UID below
    /// UIDNEXT that is not there).
    fn write_vanished(&self, set: &SeqSet, _since: u64, out: &mut Vec<u8>) {
        let f = self.folder.borrow();
        if let Some(ranges) = set.within(f.uidnext.saturating_sub(1)) {
            write_vanished_earlier(&missing(&f, &ranges), out);
        }
    }

    /// Writes FETCH answers until the output is full or the loop must
    /// read files or stream one; then asks the loop, or finishes.
    fn pump(
        &mut self,
        mut fetch: Box<FetchState>,
        enabled: Enabled,
        out: &mut Vec<u8>,
    ) -> (Option<Pending>, ImapStep) {
        fetch.waiting = false;
        loop {
            if out.len() >= OUTPUT_CAP {
                return (Some(Pending::Fetch(fetch)), ImapStep::Continue);
            }
            if let Some(front) = fetch.queue.front_mut() {
                let uid = front.uid;
                let Some(segments) = front.data.as_mut() else {
                    fetch.queue.pop_front();
                    continue;
                };
                if !fetch.open {
                    match self.write_fetch_head(
                        uid,
                        &fetch.items,
                        enabled,
                        out,
                    ) {
                        None => {
                            fetch.queue.pop_front();
                            continue;
                        }
                        // No item before the first file item: drop its space.
                        Some(true) => {
                            if let Some(Segment::Bytes(b)) =
                                segments.first_mut()
                                && b.first() == Some(&b' ')
                            {
                                b.remove(0);
                            }
                        }
                        Some(false) => {}
                    }
                    fetch.open = true;
                }
                if segments.is_empty() {
                    out.extend_from_slice(b")\r\n");
                    fetch.open = false;
                    fetch.queue.pop_front();
                    continue;
                }
                match segments.remove(0) {
                    Segment::Bytes(b) => out.extend_from_slice(&b),
                    Segment::File(stream) => {
                        fetch.waiting = true;
                        return (
                            Some(Pending::Fetch(fetch)),
                            ImapStep::Io(Request::Stream(stream)),
                        );
                    }
                }
                continue;
            }
            if fetch.next >= fetch.targets.len() {
                break;
            }
            if fetch.needs_file {
                let end = (fetch.next + FETCH_BATCH).min(fetch.targets.len());
                let batch = self.filter_changed(&fetch, end);
                fetch.next = end;
                if batch.is_empty() {
                    continue;
                }
                let items = Rc::clone(&fetch.items);
                fetch.waiting = true;
                return (
                    Some(Pending::Fetch(fetch)),
                    ImapStep::Io(Request::Fetch(batch, items)),
                );
            }
            let uid = fetch.targets[fetch.next];
            fetch.next += 1;
            if self.changed(&fetch, uid)
                && self
                    .write_fetch_head(uid, &fetch.items, enabled, out)
                    .is_some()
            {
                out.extend_from_slice(b")\r\n");
            }
        }
        self.sync(out, false, enabled);
        tagged(out, &fetch.tag, "OK", "FETCH completed");
        (None, ImapStep::Continue)
    }

    fn changed(&self, fetch: &FetchState, uid: u32) -> bool {
        let Some(since) = fetch.changed_since else {
            return true;
        };
        self.folder
            .borrow()
            .get(uid)
            .is_some_and(|m| m.modseq > since)
    }

    fn filter_changed(&self, fetch: &FetchState, end: usize) -> Vec<u32> {
        fetch.targets[fetch.next..end]
            .iter()
            .copied()
            .filter(|&u| self.changed(fetch, u))
            .collect()
    }

    /// True while a FETCH answer waits for room in the output.
    pub fn fetch_stalled(pending: &Option<Pending>) -> bool {
        matches!(pending, Some(Pending::Fetch(f)) if !f.waiting)
    }

    /// Goes on with a FETCH stopped at the output cap.
    pub fn resume(
        &mut self,
        pending: Pending,
        enabled: Enabled,
        out: &mut Vec<u8>,
    ) -> (Option<Pending>, ImapStep) {
        match pending {
            Pending::Fetch(f) => self.pump(f, enabled, out),
            other => (Some(other), ImapStep::Continue),
        }
    }

    /// `* seq FETCH (` and the items held in memory, for one message;
    /// None if it is gone, else whether nothing was written after `(`.
    fn write_fetch_head(
        &self,
        uid: u32,
        items: &[Item],
        enabled: Enabled,
        out: &mut Vec<u8>,
    ) -> Option<bool> {
        let f = self.folder.borrow();
        let (Some(seq), Some(m)) = (self.seq_of(uid), f.get(uid)) else {
            return None;
        };
        out.extend_from_slice(format!("* {seq} FETCH (").as_bytes());
        let mut first = true;
        let mut sep = |out: &mut Vec<u8>| {
            if !first {
                out.push(b' ');
            }
            first = false;
        };
        for item in items {
            match item {
                Item::Uid => {
                    sep(out);
                    out.extend_from_slice(format!("UID {uid}").as_bytes());
                }
                Item::Flags => {
                    sep(out);
                    out.extend_from_slice(b"FLAGS ");
                    self.write_msg_flags(&f, m, out);
                }
                Item::ModSeq => {
                    sep(out);
                    out.extend_from_slice(
                        format!("MODSEQ ({})", m.modseq).as_bytes(),
                    );
                }
                _ => {}
            }
        }
        if enabled.condstore
            && !items.contains(&Item::ModSeq)
            && items.contains(&Item::Flags)
        {
            sep(out);
            out.extend_from_slice(format!("MODSEQ ({})", m.modseq).as_bytes());
        }
        Some(first)
    }

    /// `* seq FETCH (...)` for one message, from memory alone.
    fn write_fetch(
        &self,
        uid: u32,
        items: &[Item],
        enabled: Enabled,
        out: &mut Vec<u8>,
    ) {
        if self.write_fetch_head(uid, items, enabled, out).is_some() {
            out.extend_from_slice(b")\r\n");
        }
    }

    fn finish_store(
        &mut self,
        store: &mut StoreState,
        enabled: Enabled,
        out: &mut Vec<u8>,
    ) -> (Option<Pending>, ImapStep) {
        self.announce_keywords(out);
        if !store.silent {
            let mut items = vec![Item::Flags];
            if store.uid_mode {
                items.insert(0, Item::Uid);
            }
            if enabled.condstore {
                items.push(Item::ModSeq);
            }
            for &u in &store.targets {
                if store.modified.binary_search(&u).is_err() {
                    self.write_fetch(u, &items, enabled, out);
                }
            }
        }
        if store.in_step {
            self.told_modseq = self.folder.borrow().highest_modseq;
        }
        self.sync(out, false, enabled);
        if store.modified.is_empty() {
            tagged(out, &store.tag, "OK", "STORE completed");
        } else {
            let mut set = Vec::new();
            let numbers: Vec<u32> = if store.uid_mode {
                store.modified.clone()
            } else {
                store
                    .modified
                    .iter()
                    .filter_map(|&u| self.seq_of(u))
                    .map(|s| s as u32)
                    .collect()
            };
            write_set(&numbers, &mut set);
            let set = String::from_utf8_lossy(&set);
            tagged(
                out,
                &store.tag,
                "OK",
                &format!("[MODIFIED {set}] Conditional STORE failed"),
            );
        }
        (None, ImapStep::Continue)
    }

    /// The loop's answer for a command of ours.
    pub fn done(
        &mut self,
        pending: Pending,
        reply: Reply,
        enabled: Enabled,
        out: &mut Vec<u8>,
    ) -> (Option<Pending>, ImapStep) {
        match (pending, reply) {
            (Pending::Fetch(mut fetch), Reply::Fetched(results)) => {
                fetch.queue.extend(results);
                self.pump(fetch, enabled, out)
            }
            (Pending::Fetch(fetch), Reply::Streamed(Ok(()))) => {
                self.pump(fetch, enabled, out)
            }
            (Pending::Fetch(_), Reply::Streamed(Err(no))) => {
                // A literal cut short cannot be mended: the session ends.
                line(out, &format!("* BYE {}", no.text));
                (None, ImapStep::Close)
            }
            (Pending::Store(mut store), Reply::Done(result)) => {
                if let Err(no) = result {
                    if let Some(fetch) = &store.then_fetch {
                        tagged_no(out, &fetch.tag, &no);
                    } else {
                        tagged_no(out, &store.tag, &no);
                    }
                    return (None, ImapStep::Continue);
                }
                if store.in_step {
                    self.told_modseq = self.folder.borrow().highest_modseq;
                }
                match store.then_fetch.take() {
                    Some(fetch) => self.pump(fetch, enabled, out),
                    None => self.finish_store(&mut store, enabled, out),
                }
            }
            (Pending::Expunge { tag, close }, Reply::Done(result)) => {
                if let Err(no) = result {
                    tagged_no(out, &tag, &no);
                    return (None, ImapStep::Continue);
                }
                if close {
                    tagged(out, &tag, "OK", "CLOSE completed");
                    return (Some(Pending::Unselect), ImapStep::Continue);
                }
                self.sync(out, true, enabled);
                tagged(out, &tag, "OK", "EXPUNGE completed");
                (None, ImapStep::Continue)
            }
            (Pending::Copy { tag, moving }, Reply::Copied(result)) => {
                let (validity, src, dst) = match result {
                    Ok(x) => x,
                    Err(no) => {
                        tagged_no(out, &tag, &no);
                        return (None, ImapStep::Continue);
                    }
                };
                let mut s = Vec::new();
                write_set(&src, &mut s);
                let mut d = Vec::new();
                for (i, u) in dst.iter().enumerate() {
                    if i > 0 {
                        d.push(b',');
                    }
                    d.extend_from_slice(u.to_string().as_bytes());
                }
                let code = format!(
                    "COPYUID {validity} {} {}",
                    String::from_utf8_lossy(&s),
                    String::from_utf8_lossy(&d)
                );
                if moving {
                    line(out, &format!("* OK [{code}] Moved"));
                    self.sync(out, true, enabled);
                    tagged(out, &tag, "OK", "MOVE completed");
                } else {
                    self.sync(out, true, enabled);
                    tagged(
                        out,
                        &tag,
                        "OK",
                        &format!("[{code}] COPY completed"),
                    );
                }
                (None, ImapStep::Continue)
            }
            (Pending::Search(search), Reply::Sorted(found)) => {
                self.write_sort(&search, found, enabled, out);
                (None, ImapStep::Continue)
            }
            (Pending::Search(search), Reply::Searched(hits)) => {
                self.write_search(&search, &hits, enabled, out);
                (None, ImapStep::Continue)
            }
            (Pending::Search(search), Reply::Answers(answers)) => {
                let answers: HashMap<u32, u64> = answers.into_iter().collect();
                let hits = self.hits_with(&search, &answers);
                self.keep_updated(&search, answers, &hits);
                self.write_search(&search, &hits, enabled, out);
                (None, ImapStep::Continue)
            }
            (
                Pending::Answers { index, asked, held },
                Reply::Answers(answers),
            ) => {
                self.updates.answered(index, &asked, &answers);
                let f = self.folder.borrow();
                self.updates.refresh(&self.view, &self.recent, &f, out);
                out.extend_from_slice(&held);
                (None, ImapStep::Continue)
            }
            (Pending::Plain(tag), Reply::Done(result)) => {
                match result {
                    Ok(()) => {
                        self.sync(out, true, enabled);
                        tagged(out, &tag, "OK", "completed");
                    }
                    Err(no) => tagged_no(out, &tag, &no),
                }
                (None, ImapStep::Continue)
            }
            (_, _) => (None, ImapStep::Continue),
        }
    }

    /// SEARCH: keys on flags and numbers are answered from memory;
    /// keys that look inside messages go to the helpers.
    #[allow(clippy::too_many_arguments)]
    fn search(
        &mut self,
        tag: Vec<u8>,
        uid_mode: bool,
        ret: SearchReturn,
        keys: Key,
        sort: Option<Arrange>,
        enabled: Enabled,
        out: &mut Vec<u8>,
    ) -> (Option<Pending>, ImapStep) {
        let search_ret_update = ret.update;
        let f = self.folder.borrow();
        let max_uid = self.view.last().copied().unwrap_or(0);
        let max_seq = self.view.len() as u32;
        // SORT reads every message's header (and size, date).
        let read = sort.is_some() || needs_content(&keys);
        // A search whose size the user chose (many keys over a big
        // folder) goes to the helpers even without content to read.
        let heavy = self.view.len().saturating_mul(matcher::weight(&keys))
            > LOOP_SEARCH_BUDGET;
        let content = read || heavy;
        let mut hits = Vec::new();
        let mut candidates = Vec::new();
        for (i, &u) in self.view.iter().enumerate() {
            let Some(m) = f.get(u) else { continue };
            let facts = Facts {
                seq: i as u32 + 1,
                max_seq,
                uid: u,
                max_uid,
                flags: m.flags,
                recent: self.recent.binary_search(&u).is_ok(),
                modseq: m.modseq,
                keywords: &f.keywords,
            };
            if content {
                candidates.push(Candidate {
                    uid: u,
                    seq: facts.seq,
                    flags: m.flags,
                    recent: facts.recent,
                    modseq: m.modseq,
                });
            } else if matcher::matches(&keys, &facts, None) {
                hits.push(u);
            }
        }
        let keywords = f.keywords.clone();
        drop(f);
        let search = Box::new(SearchState {
            tag,
            uid_mode,
            ret,
            modseq: super::search::mentions_modseq(&keys),
            thread: sort.as_ref().is_some_and(|s| s.thread.is_some()),
            keep: search_ret_update.then(|| keys.clone()),
        });
        if content {
            let request = Request::Search {
                key: keys,
                candidates,
                max_seq,
                max_uid,
                keywords,
                sort,
                answers: search_ret_update,
                read,
            };
            return (Some(Pending::Search(search)), ImapStep::Io(request));
        }
        self.keep_updated(&search, HashMap::new(), &hits);
        self.write_search(&search, &hits, enabled, out);
        (None, ImapStep::Continue)
    }

    /// A search's hits from its content answers and the flags now.
    fn hits_with(
        &self,
        search: &SearchState,
        answers: &HashMap<u32, u64>,
    ) -> Vec<u32> {
        let Some(keys) = &search.keep else {
            return Vec::new();
        };
        let f = self.folder.borrow();
        let max_uid = self.view.last().copied().unwrap_or(0);
        let mut hits = Vec::new();
        for (i, &uid) in self.view.iter().enumerate() {
            let (Some(m), Some(&a)) = (f.get(uid), answers.get(&uid)) else {
                continue;
            };
            let facts = Facts {
                seq: i as u32 + 1,
                max_seq: self.view.len() as u32,
                uid,
                max_uid,
                flags: m.flags,
                recent: self.recent.binary_search(&uid).is_ok(),
                modseq: m.modseq,
                keywords: &f.keywords,
            };
            if matcher::matches_with(keys, &facts, a) {
                hits.push(uid);
            }
        }
        hits
    }

    /// RETURN (UPDATE): the search is kept from now on, unless there are
    /// too many (the answer then says NOUPDATE).
    fn keep_updated(
        &mut self,
        search: &SearchState,
        answers: HashMap<u32, u64>,
        hits: &[u32],
    ) {
        if let Some(keys) = &search.keep {
            let kept = self.updates.add(
                &search.tag,
                search.uid_mode,
                keys.clone(),
                answers,
                hits.to_vec(),
            );
            self.noupdate = kept.is_err();
        }
    }

    /// The answer to a SEARCH: `hits` are UIDs.
    fn write_search(
        &mut self,
        search: &SearchState,
        hits: &[u32],
        enabled: Enabled,
        out: &mut Vec<u8>,
    ) {
        let f = self.folder.borrow();
        let mut numbers = Vec::with_capacity(hits.len());
        let mut modseqs = Vec::with_capacity(hits.len());
        for &u in hits {
            let Some(seq) = self.seq_of(u) else { continue };
            numbers.push(if search.uid_mode { u } else { seq as u32 });
            modseqs.push(f.get(u).map_or(0, |m| m.modseq));
        }
        drop(f);
        let ret = &search.ret;
        // RFC 7162 3.1.5: the highest MODSEQ of the messages returned
        // (with only MIN or MAX, of those alone).
        let only_ends =
            ret.extended && !ret.all && !ret.count && (ret.min || ret.max);
        let top = if only_ends && !modseqs.is_empty() {
            let mut t = 0;
            if ret.min {
                t = t.max(modseqs[0]);
            }
            if ret.max {
                t = t.max(modseqs[modseqs.len() - 1]);
            }
            t
        } else {
            modseqs.iter().copied().max().unwrap_or(0)
        };
        let modseq = search.modseq.then_some(top);
        let tag = String::from_utf8_lossy(&search.tag);
        if ret.extended || enabled.rev2 {
            let mut s = format!("* ESEARCH (TAG \"{tag}\")");
            if search.uid_mode {
                s.push_str(" UID");
            }
            // Plain SEARCH under IMAP4rev2 answers ESEARCH ALL.
            let all = ret.all || !ret.extended;
            if ret.min && !numbers.is_empty() {
                s.push_str(&format!(" MIN {}", numbers[0]));
            }
            if ret.max && !numbers.is_empty() {
                s.push_str(&format!(" MAX {}", numbers[numbers.len() - 1]));
            }
            if ret.count {
                s.push_str(&format!(" COUNT {}", numbers.len()));
            }
            if all && !numbers.is_empty() {
                let mut set = Vec::new();
                write_set(&numbers, &mut set);
                s.push_str(" ALL ");
                s.push_str(&String::from_utf8_lossy(&set));
            }
            if let Some(range) = ret.partial {
                s.push_str(&partial(range, &numbers));
            }
            if let Some(m) = modseq.filter(|_| !numbers.is_empty()) {
                s.push_str(&format!(" MODSEQ {m}"));
            }
            line(out, &s);
        } else {
            let mut s = String::from("* SEARCH");
            for h in &numbers {
                let _ = write!(s, " {h}");
            }
            if let Some(m) = modseq.filter(|_| !numbers.is_empty()) {
                s.push_str(&format!(" (MODSEQ {m})"));
            }
            line(out, &s);
        }
        self.sync(out, false, enabled);
        if std::mem::take(&mut self.noupdate) {
            let t = String::from_utf8_lossy(&search.tag).into_owned();
            tagged(
                out,
                &search.tag,
                "OK",
                &format!("[NOUPDATE \"{t}\"] SEARCH completed"),
            );
        } else {
            tagged(out, &search.tag, "OK", "SEARCH completed");
        }
    }
}

impl Selected {
    /// The answer to a SORT or THREAD, its matches put in order by a
    /// helper.
    fn write_sort(
        &mut self,
        search: &SearchState,
        found: Arranged,
        enabled: Enabled,
        out: &mut Vec<u8>,
    ) {
        let uids = match found {
            Arranged::Threaded(answer) => {
                line(out, &answer);
                self.sync(out, false, enabled);
                let done = if search.thread { "THREAD" } else { "SORT" };
                tagged(out, &search.tag, "OK", &format!("{done} completed"));
                return;
            }
            Arranged::Sorted(uids) => uids,
        };
        let numbers: Vec<u32> = uids
            .into_iter()
            .filter_map(|u| match search.uid_mode {
                true => Some(u),
                false => self.seq_of(u).map(|s| s as u32),
            })
            .collect();
        let ret = &search.ret;
        if ret.extended {
            let tag = String::from_utf8_lossy(&search.tag);
            let mut s = format!("* ESEARCH (TAG \"{tag}\")");
            if search.uid_mode {
                s.push_str(" UID");
            }
            if let (true, Some(first)) = (ret.min, numbers.first()) {
                s.push_str(&format!(" MIN {first}"));
            }
            if let (true, Some(last)) = (ret.max, numbers.last()) {
                s.push_str(&format!(" MAX {last}"));
            }
            if ret.count {
                s.push_str(&format!(" COUNT {}", numbers.len()));
            }
            if ret.all && !numbers.is_empty() {
                s.push_str(" ALL ");
                s.push_str(&in_order(&numbers));
            }
            line(out, &s);
        } else {
            let mut s = String::from("* SORT");
            for n in &numbers {
                let _ = write!(s, " {n}");
            }
            line(out, &s);
        }
        self.sync(out, false, enabled);
        tagged(out, &search.tag, "OK", "SORT completed");
    }
}

/// ` PARTIAL (m:n set)`: the hits at those positions (RFC 9394).
fn partial((low, high): (i64, i64), numbers: &[u32]) -> String {
    let len = numbers.len() as i64;
    // Negative positions count from the end: -1 is the last.
    let (from, to) = if low < 0 {
        (len + low, len + high)
    } else {
        (low - 1, high - 1)
    };
    let from = from.max(0);
    let to = to.min(len - 1);
    let picked: Vec<u32> = if from <= to {
        numbers[from as usize..=to as usize].to_vec()
    } else {
        Vec::new()
    };
    let set = if picked.is_empty() {
        "NIL".to_string()
    } else {
        let mut set = Vec::new();
        write_set(&picked, &mut set);
        String::from_utf8_lossy(&set).into_owned()
    };
    format!(" PARTIAL ({low}:{high} {set})")
}

/// Numbers in the order given, runs of consecutive ones as `a:b`.
fn in_order(numbers: &[u32]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < numbers.len() {
        let start = numbers[i];
        let mut end = start;
        while i + 1 < numbers.len() && numbers[i + 1] == end + 1 {
            i += 1;
            end = numbers[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}:{end}")
        });
        i += 1;
    }
    parts.join(",")
}

/// A SEARCH waiting for the helpers.
#[derive(Debug)]
pub struct SearchState {
    tag: Vec<u8>,
    uid_mode: bool,
    ret: SearchReturn,
    /// The keys mention MODSEQ: the answer gives the highest.
    modseq: bool,
    /// THREAD, not SORT.
    thread: bool,
    /// RETURN (UPDATE): the keys, kept with the result.
    keep: Option<Key>,
}

/// The UIDs in `ranges` (sorted, disjoint, below UIDNEXT) that the
/// folder does not hold, as ranges: the gaps between the messages it
/// has, found without visiting each number.
fn missing(f: &Folder, ranges: &[(u32, u32)]) -> Vec<(u32, u32)> {
    let mut gone = Vec::new();
    for &(a, b) in ranges {
        let mut next = a;
        let first = f.msgs.partition_point(|m| m.uid < a);
        for m in f.msgs[first..].iter().take_while(|m| m.uid <= b) {
            if m.uid > next {
                gone.push((next, m.uid - 1));
            }
            next = m.uid + 1;
        }
        if next <= b {
            gone.push((next, b));
        }
    }
    gone
}

/// `* VANISHED (EARLIER)` for ranges, adjacent ones joined; nothing if
/// there are none.
fn write_vanished_earlier(ranges: &[(u32, u32)], out: &mut Vec<u8>) {
    if ranges.is_empty() {
        return;
    }
    out.extend_from_slice(b"* VANISHED (EARLIER) ");
    super::sequence::write_ranges(ranges, out);
    out.extend_from_slice(b"\r\n");
}

/// SELECT's QRESYNC part: what vanished and what changed since the
/// client's MODSEQ.
fn write_qresync(f: &Folder, q: &Qresync, out: &mut Vec<u8>) {
    let known_max = f.uidnext.saturating_sub(1);
    if let Some(ranges) = q.known.as_ref().and_then(|k| k.within(known_max)) {
        write_vanished_earlier(&missing(f, &ranges), out);
    } else {
        let mut gone: Vec<u32> = f
            .expunged
            .iter()
            .filter(|&&(m, _)| m > q.modseq)
            .map(|&(_, u)| u)
            .collect();
        gone.sort_unstable();
        gone.dedup();
        let ranges: Vec<(u32, u32)> = gone.iter().map(|&u| (u, u)).collect();
        write_vanished_earlier(&ranges, out);
    }
    for (i, m) in f.msgs.iter().enumerate() {
        if m.modseq > q.modseq {
            out.extend_from_slice(
                format!("* {} FETCH (UID {} FLAGS ", i + 1, m.uid).as_bytes(),
            );
            f.write_flags(m.flags, out);
            out.extend_from_slice(
                format!(" MODSEQ ({}))\r\n", m.modseq).as_bytes(),
            );
        }
    }
}
