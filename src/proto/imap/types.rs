//! Types the IMAP parser, the session, the selected state and the
//! renderers share: what a client turned on, LIST's and STATUS's
//! options and figures, why an operation failed, and the pieces of a
//! FETCH answer. A leaf: it imports none of the modules that use it, so
//! each of those can be read on its own.

/// Which extensions the client turned on (RFC 5161).
#[derive(Debug, Clone, Copy, Default)]
pub struct Enabled {
    /// IMAP4rev2 rules.
    pub rev2: bool,
    /// UTF-8 names and strings (UTF8=ACCEPT, or rev2).
    pub utf8: bool,
    /// CONDSTORE: MODSEQ in FETCH answers.
    pub condstore: bool,
    /// QRESYNC: VANISHED instead of EXPUNGE.
    pub qresync: bool,
}

/// LIST's options (RFC 5258, 5819, 6154).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListParams {
    /// Selection: only subscribed.
    pub subscribed: bool,
    /// Selection: only special-use.
    pub special_use: bool,
    /// Selection: RECURSIVEMATCH.
    pub recursive: bool,
    /// Return: SUBSCRIBED.
    pub ret_subscribed: bool,
    /// Return: CHILDREN.
    pub ret_children: bool,
    /// Return: SPECIAL-USE.
    pub ret_special_use: bool,
    /// Return: STATUS (items).
    pub ret_status: Option<Vec<StatusItem>>,
    /// The extended form was used (answers carry extended data).
    pub extended: bool,
}

/// A STATUS item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusItem {
    /// MESSAGES.
    Messages,
    /// RECENT (IMAP4rev1).
    Recent,
    /// UIDNEXT.
    UidNext,
    /// UIDVALIDITY.
    UidValidity,
    /// UNSEEN.
    Unseen,
    /// DELETED (IMAP4rev2).
    Deleted,
    /// SIZE (RFC 8438).
    Size,
    /// HIGHESTMODSEQ (RFC 7162).
    HighestModSeq,
}

/// One folder of a LIST answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Its name (UTF-8).
    pub name: String,
    /// Attributes: `\HasChildren`, `\Sent`, `\NonExistent`, ...
    pub attributes: Vec<&'static str>,
    /// STATUS for LIST-STATUS.
    pub status: Option<Status>,
    /// RECURSIVEMATCH: a child is subscribed (CHILDINFO).
    pub childinfo: bool,
}

/// A folder's STATUS figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Status {
    /// MESSAGES.
    pub messages: u32,
    /// RECENT.
    pub recent: u32,
    /// UIDNEXT.
    pub uidnext: u32,
    /// UIDVALIDITY.
    pub uidvalidity: u32,
    /// UNSEEN.
    pub unseen: u32,
    /// DELETED.
    pub deleted: u32,
    /// SIZE.
    pub size: u64,
    /// HIGHESTMODSEQ.
    pub highest_modseq: u64,
}

/// Why an operation failed: the response code and text for `NO`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct No {
    /// A response code such as `NONEXISTENT`, `ALREADYEXISTS`, `TRYCREATE`.
    pub code: Option<&'static str>,
    /// Human text.
    pub text: String,
}

impl No {
    /// A NO with a code.
    pub fn code(code: &'static str, text: impl Into<String>) -> No {
        No {
            code: Some(code),
            text: text.into(),
        }
    }

    /// A NO without a code.
    pub fn text(text: impl Into<String>) -> No {
        No {
            code: None,
            text: text.into(),
        }
    }
}

/// A piece of a FETCH answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Octets to send as they are.
    Bytes(Vec<u8>),
    /// Octets of the message file the loop streams.
    File(Stream),
}

/// Part of a stored message (LF line ends) sent as CRLF: from the
/// file's octet `from`, the converted octets after the first `skip`,
/// `len` of them (the literal's announced length).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stream {
    /// The message's file in the selected folder.
    pub file: String,
    /// Where in the file to start.
    pub from: u64,
    /// Converted octets to drop first (a partial FETCH's start).
    pub skip: u64,
    /// Converted octets to send.
    pub len: u64,
    /// File offsets of octets to leave out (mbox: the `>` that quotes a
    /// `From ` line).
    pub drops: Vec<u64>,
}
