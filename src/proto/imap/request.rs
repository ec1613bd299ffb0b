//! What an IMAP session asks the loop to do with mailboxes on disk, and
//! what it is told back. Names are UTF-8, already checked by `names.rs`.

use std::cell::RefCell;
use std::rc::Rc;

use super::fetch::Item;
use super::folder::{Flags, Folder};
use super::search::Key;
use super::types::{ListParams, StatusItem};
pub use super::types::{Listed, No, Segment, Status, Stream};
use crate::proto::sasl::Credentials;

/// A mailbox operation for the loop.
#[derive(Debug)]
pub enum Request {
    /// Open (and sync) a folder for SELECT/EXAMINE.
    Select(String),
    /// List folders matching any of the patterns (already joined with
    /// the reference).
    List(Vec<String>, ListParams),
    /// Create a folder, with a SPECIAL-USE attribute perhaps.
    Create(String, Option<String>),
    /// Delete a folder.
    Delete(String),
    /// Rename a folder (and its children).
    Rename(String, String),
    /// Subscribe (`true`) or unsubscribe.
    Subscribe(String, bool),
    /// STATUS of a folder.
    Status(String, Vec<StatusItem>),
    /// The user's storage used and its limit (GETQUOTA, GETQUOTAROOT).
    Quota,
    /// Store the messages streamed to the sink (and the parts URLs
    /// name) in a folder, all or none.
    Append {
        /// The folder.
        folder: String,
        /// The messages, in order.
        messages: Vec<super::append::AppendMessage>,
    },
    /// GENURLAUTH: tokens for these rump URLs.
    GenUrlAuth(Vec<String>),
    /// URLFETCH: each URL with BINARY and BODYPARTSTRUCTURE.
    UrlFetch(Vec<(String, bool, bool)>),
    /// RESETKEY: one mailbox's key, or all.
    ResetKey(Option<String>),
    /// NOTIFY: watch the folders the spec covers (None: stop), except
    /// the selected one.
    Notify(Option<super::notify::Spec>),
    /// Set these messages' flags in the selected folder.
    Store(Vec<(u32, Flags)>),
    /// Remove these messages from the selected folder.
    Expunge(Vec<u32>),
    /// Copy (or move) these messages to another folder.
    Copy {
        /// UIDs in the selected folder.
        uids: Vec<u32>,
        /// The destination.
        to: String,
        /// MOVE.
        moving: bool,
    },
    /// Read these messages' files for FETCH items.
    Fetch(Vec<u32>, Rc<[Item]>),
    /// Look on disk for changes other programs made.
    Sync,
    /// Send part of a message file (a large literal), then `Streamed`.
    Stream(Stream),
    /// SEARCH keys that look inside messages, over these candidates.
    Search {
        /// The keys.
        key: Key,
        /// Every message of the session's view.
        candidates: Vec<Candidate>,
        /// Highest sequence number.
        max_seq: u32,
        /// Highest UID.
        max_uid: u32,
        /// The folder's keyword names.
        keywords: Vec<String>,
        /// SORT or THREAD: how the matches are put in order.
        sort: Option<super::arrange::Arrange>,
        /// CONTEXT=SEARCH: every candidate's content answers instead.
        answers: bool,
        /// The keys (or SORT) look inside messages: read each one.
        read: bool,
    },
}

/// What one URL of a URLFETCH gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlFetched {
    /// The URL as sent.
    pub url: String,
    /// Its octets (None: NIL).
    pub data: Option<Vec<u8>>,
    /// BODYPARTSTRUCTURE (None: NIL).
    pub structure: Option<Vec<u8>>,
    /// BINARY was asked for.
    pub binary: bool,
    /// BODYPARTSTRUCTURE was asked for.
    pub asked_structure: bool,
}

/// What SEARCH keys see of a message besides its octets.
#[derive(Debug, Clone, Copy)]
pub struct Candidate {
    /// UID.
    pub uid: u32,
    /// Sequence number.
    pub seq: u32,
    /// Flags.
    pub flags: Flags,
    /// \Recent for the session.
    pub recent: bool,
    /// MODSEQ.
    pub modseq: u64,
}

/// One message's answer to a FETCH of file data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// Its UID.
    pub uid: u32,
    /// The items (` BODY[] {12}\r\n...`, each with a leading space),
    /// in pieces; None if the message is gone.
    pub data: Option<Vec<Segment>>,
}

/// The loop's answer to a [`Request`].
#[derive(Debug)]
pub enum Reply {
    /// The folder is open.
    Selected(Result<Rc<RefCell<Folder>>, No>),
    /// LIST results.
    Listed(Result<Vec<Listed>, No>),
    /// CREATE, DELETE, RENAME, SUBSCRIBE, EXPUNGE, STORE, SYNC done.
    Done(Result<(), No>),
    /// STATUS.
    Status(Result<Status, No>),
    /// The storage used and the limit, in octets (0: none).
    Quota(Result<(u64, u64), No>),
    /// APPEND: the UIDVALIDITY and UID given.
    Appended(Result<(u32, Vec<u32>), No>),
    /// COPY/MOVE: the UIDVALIDITY of the destination, source and new
    /// UIDs in the same order.
    Copied(Result<(u32, Vec<u32>, Vec<u32>), No>),
    /// FETCH data.
    Fetched(Vec<Fetched>),
    /// SEARCH: the UIDs that match.
    Searched(Vec<u32>),
    /// SORT or THREAD: the matches in order.
    Sorted(super::arrange::Arranged),
    /// GENURLAUTH: the URLs with their tokens.
    GenUrlAuth(Result<Vec<String>, No>),
    /// URLFETCH: what each URL gave.
    UrlFetched(Vec<UrlFetched>),
    /// NOTIFY: each folder now watched, its events and its STATUS.
    Notified(Vec<(String, super::notify::Events, Status)>),
    /// Each candidate's content answers (`matcher::content_answers`).
    Answers(Vec<(u32, u64)>),
    /// The helper's job failed for want of something internal (a panic,
    /// contained and logged): the command waiting gets this NO.
    Failed(No),
    /// The stream is sent; an error means the literal is cut short and
    /// the session must end.
    Streamed(Result<(), No>),
}

/// What the loop must do after a call.
#[derive(Debug)]
pub enum ImapStep {
    /// Keep reading.
    Continue,
    /// Flush and close.
    Close,
    /// Flush, drop input already read, start TLS, then `tls_started`.
    StartTls,
    /// Check the password; then `logged_in`.
    Authenticate(Credentials),
    /// Do this mailbox work; then `done`.
    Io(Request),
}
