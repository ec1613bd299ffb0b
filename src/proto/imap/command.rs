//! IMAP commands (RFC 9051 6 and the extensions we offer) read from one
//! framed command. Names are in the client's form (modified UTF-7 or
//! UTF-8); the session decodes them.

use std::borrow::Cow;

use super::args::{Args, Bad};
use super::fetch::{self, Item};
use super::search::{self, Key};
use super::sequence::SeqSet;
pub use super::types::{ListParams, StatusItem};

/// How STORE changes flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    /// `FLAGS`: replace.
    Replace,
    /// `+FLAGS`: add.
    Add,
    /// `-FLAGS`: remove.
    Remove,
}

/// What SELECT/EXAMINE asked for beyond the mailbox.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SelectParams {
    /// `(CONDSTORE)`.
    pub condstore: bool,
    /// `(QRESYNC (uidvalidity modseq [known-uids [seq-match]]))`.
    pub qresync: Option<Qresync>,
}

/// RFC 7162 QRESYNC parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qresync {
    /// The UIDVALIDITY the client knows.
    pub uidvalidity: u32,
    /// The last MODSEQ it saw.
    pub modseq: u64,
    /// UIDs it knows, if given.
    pub known: Option<SeqSet>,
}

/// SEARCH's RETURN options (RFC 4731 ESEARCH, RFC 5182 SAVE).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchReturn {
    /// The RETURN form was used: answer with ESEARCH.
    pub extended: bool,
    /// MIN.
    pub min: bool,
    /// MAX.
    pub max: bool,
    /// ALL.
    pub all: bool,
    /// COUNT.
    pub count: bool,
    /// SAVE.
    pub save: bool,
    /// UPDATE (RFC 5267): keep the result up to date.
    pub update: bool,
    /// PARTIAL (RFC 9394): these positions of the result, 1-based
    /// (negative: from the end), low first.
    pub partial: Option<(i64, i64)>,
}

/// FETCH's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchArgs {
    /// UID FETCH.
    pub uid: bool,
    /// Which messages.
    pub set: SeqSet,
    /// What of them.
    pub items: Vec<Item>,
    /// CHANGEDSINCE.
    pub changed_since: Option<u64>,
    /// VANISHED (QRESYNC).
    pub vanished: bool,
}

/// STORE's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreArgs<'a> {
    /// UID STORE.
    pub uid: bool,
    /// Which messages.
    pub set: SeqSet,
    /// UNCHANGEDSINCE.
    pub unchanged_since: Option<u64>,
    /// How.
    pub mode: StoreMode,
    /// .SILENT.
    pub silent: bool,
    /// The flags.
    pub flags: Vec<&'a [u8]>,
}

/// A command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<'a> {
    /// CAPABILITY.
    Capability,
    /// NOOP.
    Noop,
    /// LOGOUT.
    Logout,
    /// STARTTLS.
    StartTls,
    /// AUTHENTICATE mechanism [initial response].
    Authenticate(Cow<'a, [u8]>, Option<&'a [u8]>),
    /// LOGIN user password.
    Login(Cow<'a, [u8]>, Cow<'a, [u8]>),
    /// ENABLE capabilities.
    Enable(Vec<&'a [u8]>),
    /// ID (field value ...) or NIL.
    Id(Option<std::net::IpAddr>),
    /// NAMESPACE.
    Namespace,
    /// SELECT (`false`) or EXAMINE (`true`).
    Select(Cow<'a, [u8]>, bool, SelectParams),
    /// CREATE name [(USE (\Special))].
    Create(Cow<'a, [u8]>, Vec<&'a [u8]>),
    /// DELETE.
    Delete(Cow<'a, [u8]>),
    /// RENAME from to.
    Rename(Cow<'a, [u8]>, Cow<'a, [u8]>),
    /// SUBSCRIBE (`true`) or UNSUBSCRIBE.
    Subscribe(Cow<'a, [u8]>, bool),
    /// LIST reference patterns, or LSUB (params.subscribed, lsub).
    List {
        /// The reference name.
        reference: Cow<'a, [u8]>,
        /// Patterns (more than one with LIST-EXTENDED).
        patterns: Vec<Cow<'a, [u8]>>,
        /// Options.
        params: ListParams,
        /// It was LSUB.
        lsub: bool,
    },
    /// STATUS name (items).
    Status(Cow<'a, [u8]>, Vec<StatusItem>),
    /// GETQUOTA (RFC 9208): a quota root.
    GetQuota(Cow<'a, [u8]>),
    /// GETQUOTAROOT: a mailbox.
    GetQuotaRoot(Cow<'a, [u8]>),
    /// SETQUOTA: refused (quotas are the administrator's).
    SetQuota,
    /// APPEND name [flags] [date]: the message follows as a literal,
    /// which the session streams (it is not part of the command).
    Append {
        /// The mailbox.
        mailbox: Cow<'a, [u8]>,
        /// Flags to set.
        flags: Vec<&'a [u8]>,
        /// INTERNALDATE, as given.
        date: Option<Cow<'a, [u8]>>,
    },
    /// IDLE.
    Idle,
    /// GENURLAUTH (url mechanism)...
    GenUrlAuth(Vec<(Vec<u8>, Vec<u8>)>),
    /// URLFETCH (url [BINARY] [BODYPARTSTRUCTURE])...
    UrlFetch(Vec<(Vec<u8>, bool, bool)>),
    /// RESETKEY [mailbox [mechanism...]].
    ResetKey(Option<Cow<'a, [u8]>>),
    /// NOTIFY and the rest of its line, read by the session (which knows
    /// how mailbox names are spelled).
    Notify(&'a [u8]),
    /// CHECK.
    Check,
    /// CLOSE.
    Close,
    /// UNSELECT.
    Unselect,
    /// EXPUNGE, or UID EXPUNGE set.
    Expunge(Option<SeqSet>),
    /// [UID] SEARCH.
    Search {
        /// UID SEARCH.
        uid: bool,
        /// RETURN options.
        ret: SearchReturn,
        /// The keys.
        keys: Key,
    },
    /// [UID] SORT [RETURN (...)] (criteria) charset keys.
    Sort {
        /// UID SORT.
        uid: bool,
        /// RETURN options (ESORT).
        ret: SearchReturn,
        /// Criteria, each with REVERSE.
        criteria: Vec<(super::sort::SortKey, bool)>,
        /// The search keys.
        keys: Key,
    },
    /// CANCELUPDATE tag... (RFC 5267).
    CancelUpdate(Vec<Vec<u8>>),
    /// [UID] THREAD algorithm charset keys.
    Thread {
        /// UID THREAD.
        uid: bool,
        /// The algorithm.
        algorithm: super::thread::Algorithm,
        /// The search keys.
        keys: Key,
    },
    /// [UID] FETCH set items [(CHANGEDSINCE n [VANISHED])].
    Fetch(FetchArgs),
    /// [UID] STORE set [(UNCHANGEDSINCE n)] [+-]FLAGS[.SILENT] flags.
    Store(StoreArgs<'a>),
    /// [UID] COPY (`false`) or MOVE (`true`) set mailbox.
    Copy {
        /// UID form.
        uid: bool,
        /// Which messages.
        set: SeqSet,
        /// Where to.
        mailbox: Cow<'a, [u8]>,
        /// MOVE.
        moving: bool,
    },
}

/// A command and its tag, or why not (with the tag if it was read).
pub type Parsed<'a> = Result<(&'a [u8], Command<'a>), (Option<&'a [u8]>, Bad)>;

/// Reads `tag command args CRLF`. On error, gives the tag if it could
/// be read, so the BAD carries it.
pub fn parse(cmd: &[u8]) -> Parsed<'_> {
    crate::util::fault::probe("command", cmd);
    let mut a = Args::new(cmd);
    let tag = a.tag().map_err(|e| (None, e))?;
    let tagged = |e| (Some(tag), e);
    a.sp().map_err(tagged)?;
    let command = command(&mut a).map_err(tagged)?;
    a.end().map_err(tagged)?;
    Ok((tag, command))
}

fn command<'a>(a: &mut Args<'a>) -> Result<Command<'a>, Bad> {
    let name = a.name().to_ascii_uppercase();
    let none = |c| Ok(c);
    match name.as_slice() {
        b"CAPABILITY" => none(Command::Capability),
        b"NOOP" => none(Command::Noop),
        b"LOGOUT" => none(Command::Logout),
        b"STARTTLS" => none(Command::StartTls),
        b"NAMESPACE" => none(Command::Namespace),
        b"IDLE" => none(Command::Idle),
        b"GENURLAUTH" => genurlauth(a),
        b"URLFETCH" => urlfetch(a),
        b"RESETKEY" => resetkey(a),
        b"NOTIFY" => {
            a.sp()?;
            let rest = a.rest();
            a.skip(rest.len());
            Ok(Command::Notify(rest))
        }
        b"CHECK" => none(Command::Check),
        b"CLOSE" => none(Command::Close),
        b"UNSELECT" => none(Command::Unselect),
        b"EXPUNGE" => none(Command::Expunge(None)),
        b"AUTHENTICATE" => authenticate(a),
        b"LOGIN" => {
            a.sp()?;
            let user = a.astring()?;
            a.sp()?;
            Ok(Command::Login(user, a.astring()?))
        }
        b"ENABLE" => {
            let mut caps = Vec::new();
            while a.byte(b' ') {
                caps.push(a.atom()?);
            }
            if caps.is_empty() {
                return Err(Bad("ENABLE needs a capability"));
            }
            Ok(Command::Enable(caps))
        }
        b"ID" => id(a),
        b"SELECT" | b"EXAMINE" => {
            a.sp()?;
            let mailbox = a.astring()?;
            let params = if a.byte(b' ') {
                select_params(a)?
            } else {
                SelectParams::default()
            };
            Ok(Command::Select(
                mailbox,
                name.as_slice() == b"EXAMINE",
                params,
            ))
        }
        b"CREATE" => create(a),
        b"DELETE" => {
            a.sp()?;
            Ok(Command::Delete(a.astring()?))
        }
        b"RENAME" => {
            a.sp()?;
            let from = a.astring()?;
            a.sp()?;
            Ok(Command::Rename(from, a.astring()?))
        }
        b"SUBSCRIBE" | b"UNSUBSCRIBE" => {
            a.sp()?;
            Ok(Command::Subscribe(
                a.astring()?,
                name.as_slice() == b"SUBSCRIBE",
            ))
        }
        b"LIST" => list(a),
        b"LSUB" => {
            a.sp()?;
            let reference = a.astring()?;
            a.sp()?;
            let pattern = a.list_mailbox()?;
            Ok(Command::List {
                reference,
                patterns: vec![pattern],
                params: ListParams {
                    subscribed: true,
                    ..ListParams::default()
                },
                lsub: true,
            })
        }
        b"GETQUOTA" => {
            a.sp()?;
            Ok(Command::GetQuota(a.astring()?))
        }
        b"GETQUOTAROOT" => {
            a.sp()?;
            Ok(Command::GetQuotaRoot(a.astring()?))
        }
        b"SETQUOTA" => {
            // Whatever it asks is refused; its arguments are not read.
            let rest = a.rest().len();
            a.skip(rest);
            Ok(Command::SetQuota)
        }
        b"STATUS" => {
            a.sp()?;
            let mailbox = a.astring()?;
            a.sp()?;
            Ok(Command::Status(mailbox, status_items(a)?))
        }
        b"APPEND" => append(a),
        b"SEARCH" => search(a, false),
        b"SORT" => sort(a, false),
        b"THREAD" => thread(a, false),
        b"CANCELUPDATE" => {
            let mut tags = Vec::new();
            while !a.at_end() {
                a.sp()?;
                tags.push(a.string()?.into_owned());
            }
            if tags.is_empty() {
                return Err(Bad("CANCELUPDATE needs a tag"));
            }
            Ok(Command::CancelUpdate(tags))
        }
        b"FETCH" => fetch(a, false),
        b"STORE" => store(a, false),
        b"COPY" => copy(a, false, false),
        b"MOVE" => copy(a, false, true),
        b"UID" => {
            a.sp()?;
            let sub = a.name().to_ascii_uppercase();
            match sub.as_slice() {
                b"SEARCH" => search(a, true),
                b"SORT" => sort(a, true),
                b"THREAD" => thread(a, true),
                b"FETCH" => fetch(a, true),
                b"STORE" => store(a, true),
                b"COPY" => copy(a, true, false),
                b"MOVE" => copy(a, true, true),
                b"EXPUNGE" => {
                    a.sp()?;
                    Ok(Command::Expunge(Some(SeqSet::parse(a)?)))
                }
                _ => Err(Bad("unknown UID command")),
            }
        }
        _ => Err(Bad("unknown command")),
    }
}

/// GENURLAUTH url mechanism ...: the URLs to sign (RFC 4467).
fn genurlauth<'a>(a: &mut Args<'a>) -> Result<Command<'a>, Bad> {
    let mut urls = Vec::new();
    while !a.at_end() {
        a.sp()?;
        let url = a.astring()?.into_owned();
        a.sp()?;
        urls.push((url, a.atom()?.to_vec()));
    }
    if urls.is_empty() || urls.len() > 100 {
        return Err(Bad("GENURLAUTH needs URLs"));
    }
    Ok(Command::GenUrlAuth(urls))
}

/// URLFETCH url | (url params) ...: what to fetch (RFC 4467, 5524).
fn urlfetch<'a>(a: &mut Args<'a>) -> Result<Command<'a>, Bad> {
    let mut urls = Vec::new();
    while !a.at_end() {
        a.sp()?;
        if a.byte(b'(') {
            let url = a.astring()?.into_owned();
            let (mut binary, mut structure) = (false, false);
            while a.byte(b' ') {
                match a.atom()?.to_ascii_uppercase().as_slice() {
                    b"BINARY" => binary = true,
                    b"BODYPARTSTRUCTURE" => structure = true,
                    _ => {
                        return Err(Bad("unknown URLFETCH parameter"));
                    }
                }
            }
            if !a.byte(b')') {
                return Err(Bad("expected )"));
            }
            urls.push((url, binary, structure));
        } else {
            urls.push((a.astring()?.into_owned(), false, false));
        }
    }
    if urls.is_empty() || urls.len() > 100 {
        return Err(Bad("URLFETCH needs URLs"));
    }
    Ok(Command::UrlFetch(urls))
}

/// RESETKEY [mailbox [mechanism ...]] (RFC 4467).
fn resetkey<'a>(a: &mut Args<'a>) -> Result<Command<'a>, Bad> {
    if a.at_end() {
        return Ok(Command::ResetKey(None));
    }
    a.sp()?;
    let mailbox = a.astring()?;
    while !a.at_end() {
        a.sp()?;
        if !a.atom()?.eq_ignore_ascii_case(b"INTERNAL") {
            return Err(Bad("unknown URLAUTH mechanism"));
        }
    }
    Ok(Command::ResetKey(Some(mailbox)))
}

/// AUTHENTICATE mechanism [initial-response] (RFC 4959).
fn authenticate<'a>(a: &mut Args<'a>) -> Result<Command<'a>, Bad> {
    a.sp()?;
    let mech = Cow::Borrowed(a.atom()?);
    let initial = if a.byte(b' ') {
        let ir = a.rest();
        let ir = &ir[..ir
            .iter()
            .position(|&b| b == b'\r' || b == b'\n')
            .unwrap_or(ir.len())];
        a.skip(ir.len());
        Some(ir)
    } else {
        None
    };
    Ok(Command::Authenticate(mech, initial))
}

/// ID (fields) | NIL: of them, only the client a webmail names (RFC 2971).
fn id<'a>(a: &mut Args<'a>) -> Result<Command<'a>, Bad> {
    a.sp()?;
    let mut client = None;
    if !a.keyword("NIL") {
        let fields = a.list(|a| {
            let name = a.string()?;
            a.sp()?;
            let value = a.nstring()?;
            // What a webmail says of the client it logs in for.
            if name.eq_ignore_ascii_case(b"x-originating-ip") {
                client = value
                    .as_deref()
                    .and_then(crate::proto::smtp::host::named_client);
            }
            Ok(())
        })?;
        if fields.len() > 30 {
            return Err(Bad("too many ID fields"));
        }
    }
    Ok(Command::Id(client))
}

/// CREATE mailbox [(USE (attributes))] (RFC 6154).
fn create<'a>(a: &mut Args<'a>) -> Result<Command<'a>, Bad> {
    a.sp()?;
    let mailbox = a.astring()?;
    let mut uses = Vec::new();
    if a.byte(b' ') {
        a.list(|a| {
            if !a.keyword("USE") {
                return Err(Bad("unknown CREATE parameter"));
            }
            a.sp()?;
            uses = a.list(|a| a.flag())?;
            Ok(())
        })?;
    }
    Ok(Command::Create(mailbox, uses))
}

fn select_params(a: &mut Args<'_>) -> Result<SelectParams, Bad> {
    let mut p = SelectParams::default();
    a.list(|a| {
        if a.keyword("CONDSTORE") {
            p.condstore = true;
            return Ok(());
        }
        if !a.keyword("QRESYNC") {
            return Err(Bad("unknown SELECT parameter"));
        }
        a.sp()?;
        if !a.byte(b'(') {
            return Err(Bad("expected ("));
        }
        let uidvalidity = a.nz_number()?;
        a.sp()?;
        let modseq = a.number()?;
        let mut known = None;
        if a.byte(b' ') {
            if a.peek() != Some(b'(') {
                known = Some(SeqSet::parse(a)?);
                a.byte(b' ');
            }
            if a.peek() == Some(b'(') {
                // The sequence match data only speeds things up.
                a.list(|a| SeqSet::parse(a).map(|_| ()))?;
            }
        }
        if !a.byte(b')') {
            return Err(Bad("expected )"));
        }
        p.qresync = Some(Qresync {
            uidvalidity,
            modseq,
            known,
        });
        Ok(())
    })?;
    Ok(p)
}

fn list<'a>(a: &mut Args<'a>) -> Result<Command<'a>, Bad> {
    a.sp()?;
    let mut params = ListParams::default();
    if a.peek() == Some(b'(') {
        params.extended = true;
        a.list(|a| {
            let o = a.atom()?.to_ascii_uppercase();
            match o.as_slice() {
                b"SUBSCRIBED" => params.subscribed = true,
                b"SPECIAL-USE" => params.special_use = true,
                b"RECURSIVEMATCH" => params.recursive = true,
                b"REMOTE" => {}
                _ => return Err(Bad("unknown LIST selection option")),
            }
            Ok(())
        })?;
        a.sp()?;
    }
    let reference = a.astring()?;
    a.sp()?;
    let patterns = if a.peek() == Some(b'(') {
        params.extended = true;
        a.list(|a| a.list_mailbox())?
    } else {
        vec![a.list_mailbox()?]
    };
    if a.byte(b' ') {
        if !a.keyword("RETURN") {
            return Err(Bad("expected RETURN"));
        }
        params.extended = true;
        a.sp()?;
        a.list(|a| {
            let o = a.atom()?.to_ascii_uppercase();
            match o.as_slice() {
                b"SUBSCRIBED" => params.ret_subscribed = true,
                b"CHILDREN" => params.ret_children = true,
                b"SPECIAL-USE" => params.ret_special_use = true,
                b"STATUS" => {
                    a.sp()?;
                    params.ret_status = Some(status_items(a)?);
                }
                _ => return Err(Bad("unknown LIST return option")),
            }
            Ok(())
        })?;
    }
    if params.recursive && !params.subscribed {
        return Err(Bad("RECURSIVEMATCH needs SUBSCRIBED"));
    }
    Ok(Command::List {
        reference,
        patterns,
        params,
        lsub: false,
    })
}

fn status_items(a: &mut Args<'_>) -> Result<Vec<StatusItem>, Bad> {
    let items = a.list(|a| {
        let n = a.name().to_ascii_uppercase();
        Ok(match n.as_slice() {
            b"MESSAGES" => StatusItem::Messages,
            b"RECENT" => StatusItem::Recent,
            b"UIDNEXT" => StatusItem::UidNext,
            b"UIDVALIDITY" => StatusItem::UidValidity,
            b"UNSEEN" => StatusItem::Unseen,
            b"DELETED" => StatusItem::Deleted,
            b"SIZE" => StatusItem::Size,
            b"HIGHESTMODSEQ" => StatusItem::HighestModSeq,
            _ => return Err(Bad("unknown STATUS item")),
        })
    })?;
    if items.is_empty() {
        return Err(Bad("STATUS needs items"));
    }
    Ok(items)
}

/// APPEND's arguments before the message literal; the caller has cut
/// the command at the literal's announcement.
fn append<'a>(a: &mut Args<'a>) -> Result<Command<'a>, Bad> {
    a.sp()?;
    let mailbox = a.astring()?;
    let mut flags = Vec::new();
    let mut date = None;
    if a.byte(b' ') && a.peek() == Some(b'(') {
        flags = a.list(|a| a.flag())?;
        a.byte(b' ');
    }
    if a.peek() == Some(b'"') {
        date = Some(a.string()?);
        a.byte(b' ');
    }
    Ok(Command::Append {
        mailbox,
        flags,
        date,
    })
}

/// `RETURN (...) ` of SEARCH (RFC 4731) or SORT (RFC 5267), if there.
fn search_return(a: &mut Args<'_>) -> Result<SearchReturn, Bad> {
    let mut ret = SearchReturn::default();
    if !a.keyword("RETURN ") {
        return Ok(ret);
    }
    ret.extended = true;
    a.list(|a| {
        let o = a.atom()?.to_ascii_uppercase();
        match o.as_slice() {
            b"MIN" => ret.min = true,
            b"MAX" => ret.max = true,
            b"ALL" => ret.all = true,
            b"COUNT" => ret.count = true,
            b"SAVE" => ret.save = true,
            b"UPDATE" => ret.update = true,
            // A hint only (RFC 5267 4.2).
            b"CONTEXT" => {}
            b"PARTIAL" if ret.partial.is_none() => {
                a.sp()?;
                ret.partial = Some(partial_range(a.atom()?)?);
            }
            _ => return Err(Bad("unknown RETURN option")),
        }
        Ok(())
    })?;
    if !(ret.min || ret.max || ret.count || ret.save || ret.update)
        && ret.partial.is_none()
    {
        // RFC 4731 3.1: RETURN () means RETURN (ALL).
        ret.all = true;
    }
    a.sp()?;
    Ok(ret)
}

/// `m:n` positions, both from the start or both (negative) from the
/// end, none zero; in either order.
fn partial_range(atom: &[u8]) -> Result<(i64, i64), Bad> {
    let bad = Bad("bad PARTIAL range");
    let text =
        std::str::from_utf8(atom).map_err(|_| Bad("bad PARTIAL range"))?;
    let (a, b) = text.split_once(':').ok_or(Bad("bad PARTIAL range"))?;
    let num = |t: &str| -> Option<i64> {
        let digits = t.strip_prefix('-').unwrap_or(t);
        if digits.is_empty()
            || digits.len() > 10
            || !digits.bytes().all(|c| c.is_ascii_digit())
        {
            return None;
        }
        t.parse::<i64>()
            .ok()
            .filter(|&n| n != 0 && n.abs() <= i64::from(u32::MAX))
    };
    match (num(a), num(b)) {
        (Some(x), Some(y)) if (x > 0) == (y > 0) => Ok((x.min(y), x.max(y))),
        _ => Err(bad),
    }
}

/// `CHARSET`'s value: only UTF-8 and US-ASCII.
fn charset(a: &mut Args<'_>) -> Result<(), Bad> {
    let charset = a.astring()?;
    let cs = charset.to_ascii_uppercase();
    if cs != b"UTF-8" && cs != b"US-ASCII" {
        return Err(Bad("[BADCHARSET (UTF-8 US-ASCII)] unsupported charset"));
    }
    Ok(())
}

fn search<'a>(a: &mut Args<'a>, uid: bool) -> Result<Command<'a>, Bad> {
    a.sp()?;
    let ret = search_return(a)?;
    if a.keyword("CHARSET ") {
        charset(a)?;
        a.sp()?;
    }
    let keys = search::parse_keys(a)?;
    Ok(Command::Search { uid, ret, keys })
}

fn sort<'a>(a: &mut Args<'a>, uid: bool) -> Result<Command<'a>, Bad> {
    a.sp()?;
    let ret = search_return(a)?;
    if ret.update || ret.partial.is_some() {
        // CONTEXT=SORT is not offered.
        return Err(Bad("UPDATE and PARTIAL are for SEARCH only"));
    }
    let criteria = super::sort::parse_criteria(a)?;
    a.sp()?;
    charset(a)?;
    a.sp()?;
    let keys = search::parse_keys(a)?;
    Ok(Command::Sort {
        uid,
        ret,
        criteria,
        keys,
    })
}

fn thread<'a>(a: &mut Args<'a>, uid: bool) -> Result<Command<'a>, Bad> {
    a.sp()?;
    let algorithm = super::thread::parse_algorithm(a)?;
    a.sp()?;
    charset(a)?;
    a.sp()?;
    let keys = search::parse_keys(a)?;
    Ok(Command::Thread {
        uid,
        algorithm,
        keys,
    })
}

fn fetch<'a>(a: &mut Args<'a>, uid: bool) -> Result<Command<'a>, Bad> {
    a.sp()?;
    let set = SeqSet::parse(a)?;
    a.sp()?;
    let items = fetch::parse_items(a)?;
    let mut changed_since = None;
    let mut vanished = false;
    if a.byte(b' ') {
        a.list(|a| {
            if a.keyword("CHANGEDSINCE") {
                a.sp()?;
                changed_since = Some(a.number()?);
            } else if a.keyword("VANISHED") {
                vanished = true;
            } else {
                return Err(Bad("unknown FETCH modifier"));
            }
            Ok(())
        })?;
    }
    if vanished && (!uid || changed_since.is_none()) {
        return Err(Bad("VANISHED needs UID FETCH with CHANGEDSINCE"));
    }
    Ok(Command::Fetch(FetchArgs {
        uid,
        set,
        items,
        changed_since,
        vanished,
    }))
}

fn store<'a>(a: &mut Args<'a>, uid: bool) -> Result<Command<'a>, Bad> {
    a.sp()?;
    let set = SeqSet::parse(a)?;
    a.sp()?;
    let mut unchanged_since = None;
    if a.peek() == Some(b'(') {
        a.list(|a| {
            if !a.keyword("UNCHANGEDSINCE") {
                return Err(Bad("unknown STORE modifier"));
            }
            a.sp()?;
            unchanged_since = Some(a.number()?);
            Ok(())
        })?;
        a.sp()?;
    }
    let mode = if a.byte(b'+') {
        StoreMode::Add
    } else if a.byte(b'-') {
        StoreMode::Remove
    } else {
        StoreMode::Replace
    };
    if !a.keyword("FLAGS") {
        return Err(Bad("expected FLAGS"));
    }
    let silent = a.keyword(".SILENT");
    a.sp()?;
    let flags = if a.peek() == Some(b'(') {
        a.list(|a| a.flag())?
    } else {
        let mut flags = vec![a.flag()?];
        while a.byte(b' ') {
            flags.push(a.flag()?);
        }
        flags
    };
    Ok(Command::Store(StoreArgs {
        uid,
        set,
        unchanged_since,
        mode,
        silent,
        flags,
    }))
}

fn copy<'a>(
    a: &mut Args<'a>,
    uid: bool,
    moving: bool,
) -> Result<Command<'a>, Bad> {
    a.sp()?;
    let set = SeqSet::parse(a)?;
    a.sp()?;
    let mailbox = a.astring()?;
    Ok(Command::Copy {
        uid,
        set,
        mailbox,
        moving,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &[u8]) -> Command<'_> {
        match parse(s) {
            Ok((_, c)) => c,
            Err(e) => panic!("{:?}: {e:?}", String::from_utf8_lossy(s)),
        }
    }

    #[test]
    fn forms() {
        assert_eq!(ok(b"a1 NOOP\r\n"), Command::Noop);
        assert_eq!(
            ok(b"a LOGIN alice \"pw \\\"x\"\r\n"),
            Command::Login(
                Cow::Borrowed(&b"alice"[..]),
                Cow::Owned(b"pw \"x".to_vec())
            )
        );
        assert!(matches!(
            ok(b"a UID FETCH 1:* (FLAGS) (CHANGEDSINCE 5 VANISHED)\r\n"),
            Command::Fetch(FetchArgs {
                uid: true,
                vanished: true,
                changed_since: Some(5),
                ..
            })
        ));
        assert!(matches!(
            ok(b"a STORE 1 +FLAGS.SILENT (\\Seen)\r\n"),
            Command::Store(StoreArgs {
                mode: StoreMode::Add,
                silent: true,
                ..
            })
        ));
        assert!(matches!(
            ok(b"a LIST (SUBSCRIBED) \"\" (\"*\" %) RETURN (CHILDREN STATUS (MESSAGES))\r\n"),
            Command::List { params: ListParams { subscribed: true, ret_children: true, .. }, .. }
        ));
        assert!(matches!(
            ok(b"a SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211))\r\n"),
            Command::Select(_, false, SelectParams { qresync: Some(_), .. })
        ));
        assert!(matches!(
            ok(b"a APPEND Sent (\\Seen) \"7-Feb-1994 21:52:25 -0800\" "),
            Command::Append { .. }
        ));
        assert!(matches!(
            ok(b"a AUTHENTICATE PLAIN AGFsaWNlAHB3\r\n"),
            Command::Authenticate(_, Some(b"AGFsaWNlAHB3"))
        ));
        assert!(matches!(
            ok(b"a SEARCH RETURN (MIN COUNT) CHARSET UTF-8 UNSEEN\r\n"),
            Command::Search {
                ret: SearchReturn {
                    min: true,
                    count: true,
                    ..
                },
                ..
            }
        ));
        assert!(matches!(
            ok(b"t UID EXPUNGE 3:5\r\n"),
            Command::Expunge(Some(_))
        ));
        assert!(matches!(
            ok(b"t LOGIN {5}\r\nalice {2}\r\npw\r\n"),
            Command::Login(..)
        ));
    }

    #[test]
    fn nasty_commands() {
        for bad in [
            &b"\r\n"[..],
            b"a\r\n",
            b"a \r\n",
            b"a FOO\r\n",
            b"+ NOOP\r\n",
            b"a NOOP x\r\n",
            b"a LOGIN alice\r\n",
            b"a SELECT\r\n",
            b"a FETCH 1\r\n",
            b"a FETCH x FLAGS\r\n",
            b"a STORE 1 FLAGS\r\n",
            b"a STORE 1 XFLAGS (\\Seen)\r\n",
            b"a UID FOO 1\r\n",
            b"a LIST (RECURSIVEMATCH) \"\" *\r\n",
            b"a SEARCH CHARSET KOI8-R ALL\r\n",
            b"a STATUS INBOX ()\r\n",
            b"a ENABLE\r\n",
            b"a UID FETCH 1 FLAGS (VANISHED)\r\n",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(parse(b"a1 FOO\r\n").unwrap_err().0, Some(&b"a1"[..]));
    }
}
