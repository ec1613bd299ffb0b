//! Evaluating SEARCH keys for one message: flags, numbers and MODSEQs
//! from the folder's state, and, when the keys need them, headers,
//! bodies, dates and sizes from the message itself. Text matches are
//! case-insensitive substrings on decoded text: RFC 2047 encoded words
//! in headers, base64 and quoted-printable bodies, and the charsets
//! encoding_rs knows (ISO-8859-x, Windows-125x, KOI8, ...).

use super::folder::{Flags, SYSTEM};
use super::mime::{self, Part};
use super::mime::{decode_words, split, to_utf8};
use super::search::{DateCmp, DateField, Key};
use super::structure;

/// What the keys can see of one message.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    /// Sequence number.
    pub seq: u32,
    /// Highest sequence number (for `*`).
    pub max_seq: u32,
    /// UID.
    pub uid: u32,
    /// Highest UID (for `*`).
    pub max_uid: u32,
    /// Flags.
    pub flags: Flags,
    /// \Recent for this session.
    pub recent: bool,
    /// MODSEQ.
    pub modseq: u64,
    /// The folder's keyword names.
    pub keywords: &'a [String],
}

/// The message itself, for keys that look inside.
#[derive(Debug, Clone, Copy)]
pub struct Content<'a> {
    /// The message as sent (CRLF), or (see [`header_only`]) its header
    /// alone, or the header fields the keys read.
    pub msg: &'a [u8],
    /// INTERNALDATE, seconds since the epoch.
    pub internal: i64,
    /// The message's size as sent.
    pub size: u64,
}

impl<'a> Content<'a> {
    /// A whole message.
    pub fn whole(msg: &'a [u8], internal: i64) -> Content<'a> {
        Content {
            msg,
            internal,
            size: msg.len() as u64,
        }
    }
}

/// True if `key` reads no more of a message than its size, dates and
/// the header fields named in `fields` (lower case): then those fields
/// alone, as a header, answer it as the whole message would.
pub fn header_only(key: &Key, fields: &[&str]) -> bool {
    match key {
        Key::Header(name, _) => {
            fields.iter().any(|f| f.eq_ignore_ascii_case(name))
        }
        Key::Body(_) | Key::Text(_) => false,
        Key::Not(k) => header_only(k, fields),
        Key::Or(a, b) => header_only(a, fields) && header_only(b, fields),
        Key::And(keys) => keys.iter().all(|k| header_only(k, fields)),
        _ => true,
    }
}

/// True if any key needs the message's octets, dates or size.
pub fn needs_content(key: &Key) -> bool {
    match key {
        Key::Header(..)
        | Key::Body(_)
        | Key::Text(_)
        | Key::Date(..)
        | Key::Size(..) => true,
        Key::Not(k) => needs_content(k),
        Key::Or(a, b) => needs_content(a) || needs_content(b),
        Key::And(keys) => keys.iter().any(needs_content),
        _ => false,
    }
}

/// The number of keys in `key`, nested ones counted: its cost per
/// message.
pub fn weight(key: &Key) -> usize {
    match key {
        Key::Not(k) => 1 + weight(k),
        Key::Or(a, b) => 1 + weight(a) + weight(b),
        Key::And(keys) => 1 + keys.iter().map(weight).sum::<usize>(),
        _ => 1,
    }
}

/// True if the message matches `key`. `content` is required when
/// [`needs_content`] says so (without it such keys do not match).
pub fn matches(
    key: &Key,
    f: &Facts<'_>,
    content: Option<Content<'_>>,
) -> bool {
    match key {
        Key::All => true,
        Key::Old => !f.recent,
        Key::Recent => f.recent,
        Key::New => f.recent && !f.flags.has(Flags::SEEN),
        Key::Flag(name, set) => flag(f, name) == *set,
        Key::Seq(set) => set.contains(f.seq, f.max_seq),
        Key::Uid(set) => set.contains(f.uid, f.max_uid),
        Key::Not(k) => !matches(k, f, content),
        Key::Or(a, b) => matches(a, f, content) || matches(b, f, content),
        Key::And(keys) => keys.iter().all(|k| matches(k, f, content)),
        Key::ModSeq(n) => f.modseq >= *n,
        Key::Size(larger, n) => content.is_some_and(|c| {
            let size = c.size;
            if *larger { size > *n } else { size < *n }
        }),
        Key::Date(field, cmp, day) => content.is_some_and(|c| {
            let when = match field {
                DateField::Internal => Some(c.internal.div_euclid(86_400)),
                DateField::Sent => sent_day(split(c.msg).0),
            };
            when.is_some_and(|d| match cmp {
                DateCmp::Before => d < *day,
                DateCmp::On => d == *day,
                DateCmp::Since => d >= *day,
            })
        }),
        Key::Header(name, value) => {
            content.is_some_and(|c| header_has(split(c.msg).0, name, value))
        }
        Key::Body(value) => content.is_some_and(|c| body_has(c.msg, value)),
        Key::Text(value) => content.is_some_and(|c| text_has(c.msg, value)),
    }
}

/// A key whose answer depends only on the message's octets and dates,
/// so it can be kept while flags change (CONTEXT=SEARCH updates).
fn is_content_leaf(key: &Key) -> bool {
    matches!(
        key,
        Key::Header(..)
            | Key::Body(_)
            | Key::Text(_)
            | Key::Date(..)
            | Key::Size(..)
    )
}

/// How many content keys `key` holds.
pub fn content_leaf_count(key: &Key) -> usize {
    match key {
        Key::Not(k) => content_leaf_count(k),
        Key::Or(a, b) => content_leaf_count(a) + content_leaf_count(b),
        Key::And(keys) => keys.iter().map(content_leaf_count).sum(),
        k => usize::from(is_content_leaf(k)),
    }
}

/// The answers of `key`'s content keys for one message, as bits in the
/// order the keys appear (at most 64 of them).
pub fn content_answers(key: &Key, f: &Facts<'_>, content: Content<'_>) -> u64 {
    fn walk(
        key: &Key,
        f: &Facts<'_>,
        c: Content<'_>,
        bits: &mut u64,
        i: &mut u32,
    ) {
        match key {
            Key::Not(k) => walk(k, f, c, bits, i),
            Key::Or(a, b) => {
                walk(a, f, c, bits, i);
                walk(b, f, c, bits, i);
            }
            Key::And(keys) => keys.iter().for_each(|k| walk(k, f, c, bits, i)),
            k if is_content_leaf(k) => {
                if *i < 64 && matches(k, f, Some(c)) {
                    *bits |= 1 << *i;
                }
                *i += 1;
            }
            _ => {}
        }
    }
    let (mut bits, mut i) = (0, 0);
    walk(key, f, content, &mut bits, &mut i);
    bits
}

/// `matches` with the content keys answered by `content_answers`.
pub fn matches_with(key: &Key, f: &Facts<'_>, answers: u64) -> bool {
    fn eval(key: &Key, f: &Facts<'_>, answers: u64, i: &mut u32) -> bool {
        match key {
            Key::Not(k) => !eval(k, f, answers, i),
            // Every branch is walked, so the leaves keep their numbers.
            Key::Or(a, b) => {
                let x = eval(a, f, answers, i);
                eval(b, f, answers, i) || x
            }
            Key::And(keys) => {
                let mut all = true;
                for k in keys {
                    all &= eval(k, f, answers, i);
                }
                all
            }
            k if is_content_leaf(k) => {
                let bit = *i < 64 && answers & (1 << *i) != 0;
                *i += 1;
                bit
            }
            k => matches(k, f, None),
        }
    }
    eval(key, f, answers, &mut 0)
}

fn flag(f: &Facts<'_>, name: &str) -> bool {
    if let Some(i) = SYSTEM
        .iter()
        .position(|(n, _)| n.eq_ignore_ascii_case(name))
    {
        return f.flags.has(Flags(1 << i));
    }
    if name.eq_ignore_ascii_case("\\Recent") {
        return f.recent;
    }
    f.keywords
        .iter()
        .position(|k| k.eq_ignore_ascii_case(name))
        .is_some_and(|i| f.flags.has(Flags::keyword(i)))
}

/// Lower-cased for comparison (Unicode simple folding is near enough).
fn fold(s: &[u8]) -> String {
    String::from_utf8_lossy(s).to_lowercase()
}

fn contains(haystack: &str, needle: &str) -> bool {
    needle.is_empty() || haystack.to_lowercase().contains(needle)
}

fn header_has(head: &[u8], name: &str, value: &[u8]) -> bool {
    let needle = fold(value);
    let address = ["FROM", "TO", "CC", "BCC", "SENDER", "REPLY-TO"]
        .iter()
        .any(|a| a.eq_ignore_ascii_case(name));
    mime::fields_named(head, name).iter().any(|(_, v)| {
        contains(&decode_words(v), &needle)
            || (address && contains(&normalized_addresses(v), &needle))
    })
}

/// An address header as `name <mailbox@host>, ...`, comments and
/// source routes gone, so `user@domain` finds `<user (x)@ domain>`.
fn normalized_addresses(v: &[u8]) -> String {
    let mut out = String::new();
    for a in structure::addresses(v) {
        if let Some(n) = &a.name {
            out.push_str(&decode_words(n));
            out.push(' ');
        }
        if let (Some(m), Some(h)) = (&a.mailbox, &a.host) {
            out.push('<');
            out.push_str(&String::from_utf8_lossy(m));
            out.push('@');
            out.push_str(&String::from_utf8_lossy(h));
            out.push_str(">, ");
        }
    }
    out
}

/// TEXT: the header or the body, and (RFC 3501 6.4.4, RFC 9051) a
/// part's own MIME header is body, so `filename=` finds attachments.
fn text_has(msg: &[u8], value: &[u8]) -> bool {
    let needle = fold(value);
    contains(&decode_words(split(msg).0), &needle)
        || parts_have(msg, &needle, true)
}

/// The body's text parts, decoded, searched for `value`.
fn body_has(msg: &[u8], value: &[u8]) -> bool {
    parts_have(msg, &fold(value), false)
}

/// Whether a part of the message (decoded), or with `headers` a part's
/// own MIME header, holds `needle`: one parse, one walk.
fn parts_have(msg: &[u8], needle: &str, headers: bool) -> bool {
    let tree = mime::parse(msg);
    let mut found = false;
    tree.visit(&mut |p: &Part| {
        if found {
            return;
        }
        if headers && !std::ptr::eq(p, &tree) {
            let head = &msg[p.header.0..p.header.1];
            found = contains(&decode_words(head), needle);
        }
        if found || p.is_multipart() {
            return;
        }
        let body = &msg[p.body.0..p.body.1];
        let raw = mime::decode(body, p.encoding.as_deref())
            .unwrap_or_else(|| body.to_vec());
        let text =
            if p.kind.0.eq_ignore_ascii_case("text") || p.kind.0.is_empty() {
                to_utf8(&raw, p.param("charset"))
            } else {
                String::from_utf8_lossy(&raw).into_owned()
            };
        found = contains(&text, needle);
    });
    found
}

/// The day (since 1970) of the Date: header, time and zone ignored.
fn sent_day(head: &[u8]) -> Option<i64> {
    let fields = mime::fields(head);
    let (_, v) = fields
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("date"))?;
    Some(super::search::header_date(v)?.day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::imap::args::Args;
    use crate::proto::imap::search::parse_keys;

    fn facts() -> Facts<'static> {
        Facts {
            seq: 1,
            max_seq: 1,
            uid: 1,
            max_uid: 1,
            flags: Flags(0),
            recent: false,
            modseq: 1,
            keywords: &[],
        }
    }

    fn search(keys: &str, msg: &[u8]) -> bool {
        let key = parse_keys(&mut Args::new(keys.as_bytes())).unwrap();
        matches(&key, &facts(), Some(Content::whole(msg, 0)))
    }

    /// Cached content answers give what a full evaluation gives, for
    /// every flag state.
    #[test]
    fn cached_answers_agree() {
        let msg = b"Subject: lunch\r\n\r\nsoup today\r\n";
        let content = Content::whole(msg, 0);
        for keys in [
            "BODY soup SEEN",
            "OR SUBJECT lunch FLAGGED",
            "NOT (BODY pizza UNSEEN)",
            "OR (SEEN BODY pizza) (NOT SUBJECT dinner)",
            "LARGER 5 OR BODY x SMALLER 2",
        ] {
            let key = parse_keys(&mut Args::new(keys.as_bytes())).unwrap();
            let mut f = facts();
            let answers = content_answers(&key, &f, content);
            for bits in [0, 1, 4, 5] {
                f.flags = Flags(bits);
                assert_eq!(
                    matches_with(&key, &f, answers),
                    matches(&key, &f, Some(content)),
                    "{keys} flags {bits}"
                );
            }
        }
    }

    /// Hostile encoded words: a language after the charset with a
    /// character across the end (this sliced inside it and panicked),
    /// and words that never close, which once cost a scan to the end
    /// each. Big inputs finish at once when the work is linear.
    #[test]
    fn encoded_words_nasty_cases() {
        assert_eq!(decode_words("=?utf-8*xx?Q?\u{e9}?=".as_bytes()), "\u{e9}");
        assert_eq!(decode_words(b"=?utf-8*en?Q?caf=C3=A9?= x"), "caf\u{e9} x");
        assert_eq!(decode_words(b"=?a?b?c d"), "=?a?b?c d");
        assert_eq!(decode_words(b"a =?utf-8?q?x?= =?utf-8?q?y?= b"), "a xy b");
        assert_eq!(decode_words(b"=?=?utf-8?q?z?="), "=?z");
        for junk in
            [&b"=?"[..], b"=??", b"=?x?", b"=?x?q", b"=?x?q?", b"=?x?q??"]
        {
            assert_eq!(decode_words(junk).as_bytes(), junk);
        }
        let big = "=?a?b?c ".repeat(200_000);
        assert_eq!(decode_words(big.as_bytes()), big);
        let big = "=?a?q?=".repeat(200_000);
        assert_eq!(decode_words(big.as_bytes()).len(), big.len());
        let big = "=?".repeat(500_000) + "\u{e9}";
        assert_eq!(decode_words(big.as_bytes()), big);
    }

    #[test]
    fn text_keys() {
        let msg = b"From: =?iso-8859-1?q?J=F6rg?= <j@x>\r\nSubject: =?utf-8?B?SGVsbG8=?= =?utf-8?B?IFdvcmxk?=\r\n\
            Date: Mon, 7 Feb 1994 21:52:25 -0800\r\nContent-Type: text/plain; charset=windows-1252\r\n\
            Content-Transfer-Encoding: quoted-printable\r\n\r\nCaf=E9 au lait\r\n";
        assert!(search("FROM \"jörg\"", msg));
        assert!(search("SUBJECT \"hello world\"", msg));
        assert!(search("BODY \"CAFÉ\"", msg));
        assert!(search("TEXT lait", msg));
        assert!(!search("BODY tea", msg));
        assert!(search("SENTON 7-Feb-1994", msg));
        assert!(search("SENTBEFORE 8-Feb-1994 SENTSINCE 7-Feb-1994", msg));
        assert!(search("HEADER Content-Type \"\"", msg));
        assert!(search("LARGER 10 SMALLER 1000", msg));
        assert!(search("ON 1-Jan-1970", msg));
    }
}
