//! A compiled script: the parser's commands checked against what each
//! command and test takes, tags resolved into fields, `if`/`elsif`/
//! `else` joined. Running it needs no more checking and no lookups by
//! name. Strings stay as written: with `variables` they are expanded
//! when used.

/// The extensions a script may `require`.
pub const EXTENSIONS: [&str; 22] = [
    "fileinto",
    "envelope",
    "reject",
    "ereject",
    "vacation",
    "vacation-seconds",
    "imap4flags",
    "variables",
    "body",
    "relational",
    "subaddress",
    "copy",
    "date",
    "index",
    "mailbox",
    "duplicate",
    "spamtest",
    "spamtestplus",
    "encoded-character",
    "comparator-i;ascii-numeric",
    "comparator-i;octet",
    "comparator-i;ascii-casemap",
];

/// A script, ready to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    pub commands: Vec<Cmd>,
    /// `variables` is required: strings are expanded when used.
    pub variables: bool,
    /// `body` is required: the script may read past the header.
    pub body: bool,
    /// An estimate of the octets it holds in memory.
    pub size: usize,
}

/// A command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cmd {
    /// `if`, its `elsif`s, and an `else`.
    If(Vec<(Test, Vec<Cmd>)>, Option<Vec<Cmd>>),
    Stop,
    Keep {
        flags: Option<Vec<String>>,
    },
    Discard,
    FileInto {
        folder: String,
        copy: bool,
        create: bool,
        flags: Option<Vec<String>>,
    },
    Redirect {
        to: String,
        copy: bool,
    },
    Reject {
        reason: String,
        /// `ereject`: refuse in the dialog, never a bounce, if we can.
        extended: bool,
    },
    Vacation(Box<Vacation>),
    /// `setflag`, `addflag`, `removeflag`.
    Flags {
        op: FlagOp,
        variable: Option<String>,
        flags: Vec<String>,
    },
    Set {
        name: String,
        value: String,
        modifiers: Vec<Modifier>,
    },
}

/// How a flag command changes a flag variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagOp {
    Set,
    Add,
    Remove,
}

/// `set`'s modifiers, in the order RFC 5229 §4.1 applies them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Modifier {
    Lower,
    Upper,
    LowerFirst,
    UpperFirst,
    QuoteWildcard,
    Length,
}

/// `vacation`'s arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vacation {
    /// The period, in seconds (`:days` times a day, or `:seconds`).
    pub period: Option<u64>,
    pub subject: Option<String>,
    pub from: Option<String>,
    pub addresses: Vec<String>,
    /// The reason is a MIME entity of its own.
    pub mime: bool,
    pub handle: Option<String>,
    pub reason: String,
}

/// A test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Test {
    True,
    False,
    Not(Box<Test>),
    AllOf(Vec<Test>),
    AnyOf(Vec<Test>),
    Exists(Vec<String>),
    Size {
        over: bool,
        limit: u64,
    },
    Header {
        how: Match,
        names: Vec<String>,
        keys: Vec<String>,
        index: Option<Index>,
    },
    Address {
        how: Match,
        part: Part,
        names: Vec<String>,
        keys: Vec<String>,
        index: Option<Index>,
    },
    Envelope {
        how: Match,
        part: Part,
        names: Vec<String>,
        keys: Vec<String>,
    },
    String {
        how: Match,
        sources: Vec<String>,
        keys: Vec<String>,
    },
    HasFlag {
        how: Match,
        variables: Vec<String>,
        keys: Vec<String>,
    },
    Body {
        how: Match,
        transform: Transform,
        keys: Vec<String>,
    },
    Date {
        how: Match,
        zone: Zone,
        header: String,
        part: String,
        keys: Vec<String>,
        index: Option<Index>,
    },
    CurrentDate {
        how: Match,
        zone: Zone,
        part: String,
        keys: Vec<String>,
    },
    MailboxExists(Vec<String>),
    Duplicate(Box<Duplicate>),
    SpamTest {
        how: Match,
        percent: bool,
        value: String,
    },
}

/// `duplicate`'s arguments (RFC 7352).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicate {
    pub handle: String,
    /// What identifies a message: a header's value, or a string.
    pub by: DuplicateBy,
    pub seconds: Option<u64>,
    pub last: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DuplicateBy {
    Header(String),
    UniqueId(String),
}

/// `:index` (RFC 5260 §6): the Nth field, counted from the end with
/// `:last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Index {
    pub n: u64,
    pub last: bool,
}

/// A date test's zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Zone {
    /// Local time: UTC on this server.
    Local,
    /// `:zone "+0100"`, in minutes east.
    Fixed(i32),
    /// `:originalzone`: the header's own.
    Original,
}

/// `body`'s transform (RFC 5173).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transform {
    Raw,
    Text,
    Content(Vec<String>),
}

/// Which part of an address is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    All,
    LocalPart,
    Domain,
    /// subaddress: before the `+`.
    User,
    /// subaddress: after the `+`.
    Detail,
}

/// A comparison: the comparator and the match type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Match {
    pub comparator: Comparator,
    pub kind: MatchKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparator {
    Octet,
    AsciiCasemap,
    AsciiNumeric,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchKind {
    Is,
    Contains,
    Matches,
    /// relational `:count`.
    Count(Relation),
    /// relational `:value`.
    Value(Relation),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

impl Relation {
    pub fn of(name: &str) -> Option<Relation> {
        Some(match name.to_ascii_lowercase().as_str() {
            "gt" => Relation::Gt,
            "ge" => Relation::Ge,
            "lt" => Relation::Lt,
            "le" => Relation::Le,
            "eq" => Relation::Eq,
            "ne" => Relation::Ne,
            _ => return None,
        })
    }

    /// Whether `ordering` (value against key) satisfies it.
    pub fn holds(self, ordering: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            Relation::Gt => ordering == Greater,
            Relation::Ge => ordering != Less,
            Relation::Lt => ordering == Less,
            Relation::Le => ordering != Greater,
            Relation::Eq => ordering == Equal,
            Relation::Ne => ordering != Equal,
        }
    }
}

impl Default for Match {
    fn default() -> Match {
        Match {
            comparator: Comparator::AsciiCasemap,
            kind: MatchKind::Is,
        }
    }
}
