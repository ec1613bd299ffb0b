//! One SMTP connection's checks as the loop keeps them: iprev for the
//! connection, and each transaction's state from MAIL to the verdict.
//! Only data: `checks.rs` and `checks_dns.rs` move it along.

use crate::inbound::verdict;
use crate::proto::dkim::tags::Key;
use crate::proto::dkim::verify::Outcome;
use crate::proto::smtp::Envelope;
use crate::proto::spf::check::Check;
use crate::store::content::Content;

/// What a checks lookup is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    Spf,
    /// A key record, by its index in the transaction's list.
    Key(usize),
    Dmarc,
    /// One of the client's names (by its index), for iprev.
    IprevName(usize),
    /// A blocklist's answer: for the client, or for the sender; by the
    /// lookup's index.
    Listed {
        sender: bool,
        index: usize,
    },
    /// A link list's answer (`uribl`), by the lookup's index.
    Link(usize),
}

/// One connection's checks.
#[derive(Default)]
pub struct ConnChecks {
    pub iprev: Iprev,
    pub txn: Option<Box<TxnChecks>>,
    /// The client lists' lookups (`dnsbl`).
    pub client_lists: Vec<ListAsk>,
    /// The sender lists' lookups for the latest transaction (`rhsbl`).
    pub sender_lists: Option<Box<SenderAsks>>,
    /// The link lists' lookups for a message waiting for them (`uribl`).
    pub link_lists: Option<Box<LinkAsks>>,
    /// A message the milters have: its envelope and placement wait here.
    pub milting: Option<Box<(Envelope, Placement)>>,
    /// The checks before content's outcome is logged (and a pass kept).
    pub screen_logged: bool,
}

/// iprev (RFC 8601 §3), for the whole connection.
#[derive(Default)]
pub enum Iprev {
    /// The PTR lookup is out.
    #[default]
    Asking,
    /// The names' addresses are being looked up.
    Forward {
        names: Vec<String>,
        pending: usize,
        matched: Option<String>,
        temp: bool,
    },
    Done(verdict::Iprev),
}

/// SPF for one transaction.
pub enum Spf {
    Off,
    Running {
        check: Box<Check>,
        identity: String,
        helo: bool,
        domain: String,
    },
    Done(verdict::Spf),
}

/// One transaction's checks.
pub struct TxnChecks {
    /// Tells this transaction's answers from an earlier one's.
    pub serial: u64,
    /// Its queue id.
    pub id: String,
    pub spf: Spf,
    pub end: Option<Box<End>>,
}

/// What is gathered after the end of DATA.
pub struct End {
    pub envelope: Box<Envelope>,
    /// The message, while it is not at a helper.
    pub content: Option<Content>,
    /// Where our trace fields end, and where Received starts.
    pub trace: (u64, u64),
    /// What the verdict is made from, beside SPF and iprev.
    pub g: crate::inbound::assemble::Gathered,
    /// Each item's key record name (index into `keys`).
    pub item_keys: Vec<usize>,
    pub keys: Vec<(String, Option<Result<Key, Outcome>>)>,
    pub stage: Stage,
    /// A spooled message's body hashes so far, and its header's reading.
    pub prehashed: Option<Box<crate::inbound::read::Prehash>>,
    /// The key names came from the header on the loop: the message is
    /// read, checked and decided where it is stored, once they are in.
    pub unread: bool,
    /// The deadline passed: what is unanswered is `temperror`.
    pub late: bool,
    pub deadline: std::time::Instant,
}

/// Where the end-of-DATA work stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Reading,
    /// Lookups being started: answers arriving meanwhile wait.
    Asking,
    Looking,
    Verifying,
    Deciding,
}

/// One list's lookup for one connection or transaction.
#[derive(Debug)]
pub struct ListAsk {
    /// The list, by its index among the configured ones.
    pub list: usize,
    pub name: String,
    pub state: AskState,
}

#[derive(Debug)]
pub enum AskState {
    Asking,
    /// Listed: its TXT reason is being looked up.
    Reason,
    /// Not listed (None), or listed with this reason.
    Done(Option<String>),
}

/// A sender's lookups, for one transaction.
#[derive(Debug)]
pub struct SenderAsks {
    pub serial: u64,
    pub id: String,
    pub sender: String,
    pub asks: Vec<ListAsk>,
}

/// Where a message goes, and the header change that goes with it; or
/// the checks that decide both, to run where it is stored.
pub struct Placement {
    pub folder: &'static str,
    /// The milters had their say already.
    pub milted: bool,
    /// The filter had its say already (with the checks' last step).
    pub filtered: bool,
    /// Mailboxes whose filter filed the message elsewhere.
    pub filed: Vec<crate::deliver::Filed>,
    /// The filter's probabilities, for Sieve's `spamtest`.
    pub scores: Vec<(std::path::PathBuf, f64)>,
    pub edit: Option<Box<crate::deliver::HeaderEdit>>,
    /// The results, for the delivery's log line.
    pub summary: String,
}

impl Default for Placement {
    fn default() -> Placement {
        Placement {
            folder: "INBOX",
            milted: false,
            filtered: false,
            filed: Vec::new(),
            scores: Vec::new(),
            edit: None,
            summary: String::new(),
        }
    }
}

impl Placement {
    /// Where a verdict puts a message: Junk or INBOX, with the field
    /// (before our Received, at `at`) and without forged ones.
    pub fn of(
        mut decided: crate::inbound::assemble::Decided,
        at: u64,
    ) -> Placement {
        Placement {
            folder: decided.folder(),
            milted: false,
            filtered: false,
            filed: Vec::new(),
            scores: Vec::new(),
            summary: std::mem::take(&mut decided.summary),
            edit: Some(Box::new(crate::deliver::HeaderEdit::of(decided, at))),
        }
    }
}

/// One message's link lookups (`uribl`): it waits for them.
pub struct LinkAsks {
    pub serial: u64,
    /// (domain, zone, answer: None while out, then listed or not).
    pub asks: Vec<(String, String, Option<bool>)>,
    /// The message, waiting to be stored.
    pub waiting: Box<(Envelope, Content, Placement)>,
}
