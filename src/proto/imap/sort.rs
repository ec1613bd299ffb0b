//! SORT (RFC 5256), SORT=DISPLAY (RFC 5957) and ESORT (RFC 5267): sort
//! criteria, the values a message is sorted by (base subject, first
//! address, sent date), and the order.

use super::args::{Args, Bad};
use super::mime::decode_words;
use super::mime::fields;
use super::structure::addresses;

/// One sort criterion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// INTERNALDATE.
    Arrival,
    /// First Cc mailbox.
    Cc,
    /// Sent date (INTERNALDATE if none).
    Date,
    /// First From mailbox.
    From,
    /// RFC822.SIZE.
    Size,
    /// Base subject.
    Subject,
    /// First To mailbox.
    To,
    /// First From display name (or address).
    DisplayFrom,
    /// First To display name (or address).
    DisplayTo,
    /// THREAD only: 1 if the subject marks a reply or forward.
    Reply,
    /// THREAD only: the Message-ID.
    MessageId,
    /// THREAD only: References (or the first In-Reply-To), oldest first.
    Parents,
}

/// Reads `(criterion ...)`: each with whether REVERSE came before it.
pub fn parse_criteria(a: &mut Args<'_>) -> Result<Vec<(SortKey, bool)>, Bad> {
    let words = a.list(|a| Ok(a.name().to_ascii_uppercase()))?;
    let mut out = Vec::new();
    let mut reverse = false;
    for w in words {
        let key = match w.as_slice() {
            b"REVERSE" => {
                reverse = true;
                continue;
            }
            b"ARRIVAL" => SortKey::Arrival,
            b"CC" => SortKey::Cc,
            b"DATE" => SortKey::Date,
            b"FROM" => SortKey::From,
            b"SIZE" => SortKey::Size,
            b"SUBJECT" => SortKey::Subject,
            b"TO" => SortKey::To,
            b"DISPLAYFROM" => SortKey::DisplayFrom,
            b"DISPLAYTO" => SortKey::DisplayTo,
            _ => return Err(Bad("unknown sort criterion")),
        };
        out.push((key, std::mem::take(&mut reverse)));
    }
    if out.is_empty() || reverse {
        return Err(Bad("bad sort criteria"));
    }
    Ok(out)
}

/// A message's value for one criterion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A number (dates, sizes).
    Number(i64),
    /// Text, compared without case.
    Text(String),
}

/// A value borrowed from where it is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueRef<'a> {
    Number(i64),
    Text(&'a [u8]),
}

impl Value {
    pub fn as_ref(&self) -> ValueRef<'_> {
        match self {
            Value::Number(n) => ValueRef::Number(*n),
            Value::Text(t) => ValueRef::Text(t.as_bytes()),
        }
    }
}

/// Appends `v` to `out` so that comparing two messages' appended bytes
/// orders them as comparing their values does (reversed if asked): a
/// kind (numbers before texts), then a number big-endian with its sign
/// flipped, or a text with 0x00 escaped and ended by 0x00 0x00. No
/// encoding is the start of another, so the criteria can follow one
/// another and a reversed one is its bytes complemented.
pub fn encode(v: ValueRef<'_>, reverse: bool, out: &mut Vec<u8>) {
    let start = out.len();
    match v {
        ValueRef::Number(n) => {
            out.push(0);
            out.extend_from_slice(&((n as u64) ^ (1 << 63)).to_be_bytes());
        }
        ValueRef::Text(t) => {
            out.push(1);
            for part in t.split(|&b| b == 0) {
                out.extend_from_slice(part);
                out.extend_from_slice(&[0, 0xFF]);
            }
            // The last part's escape becomes the end mark.
            let end = out.len();
            out[end - 1] = 0;
        }
    }
    if reverse {
        for b in &mut out[start..] {
            *b = !*b;
        }
    }
}

/// A SORT match: UID, sequence number, where its encoding lies.
type Row = (u32, u32, std::ops::Range<usize>);

/// SORT's matches with their values encoded (see [`encode`]) one after
/// another in one buffer: no allocation per message, and ordering them
/// compares octets.
#[derive(Debug, Default)]
pub struct Keyed {
    rows: Vec<Row>,
    bytes: Vec<u8>,
}

impl Keyed {
    pub fn with_capacity(n: usize) -> Keyed {
        Keyed {
            rows: Vec::with_capacity(n),
            bytes: Vec::with_capacity(n * 32),
        }
    }

    /// Adds a match whose values `write` encodes.
    pub fn push(
        &mut self,
        uid: u32,
        seq: u32,
        write: impl FnOnce(&mut Vec<u8>),
    ) {
        let start = self.bytes.len();
        write(&mut self.bytes);
        self.rows.push((uid, seq, start..self.bytes.len()));
    }

    /// Adds a match by its values.
    pub fn push_values(
        &mut self,
        uid: u32,
        seq: u32,
        keys: &[(SortKey, bool)],
        values: &[Value],
    ) {
        self.push(uid, seq, |out| {
            for (v, (_, reverse)) in values.iter().zip(keys) {
                encode(v.as_ref(), *reverse, out);
            }
        });
    }

    /// Takes `other`'s matches after these.
    pub fn append(&mut self, other: Keyed) {
        let base = self.bytes.len();
        self.bytes.extend_from_slice(&other.bytes);
        self.rows.extend(
            other
                .rows
                .into_iter()
                .map(|(u, s, r)| (u, s, r.start + base..r.end + base)),
        );
    }

    /// The UIDs in order; ties by sequence number (unique, so an
    /// unstable sort gives the one order RFC 5256 allows).
    pub fn order(self) -> Vec<u32> {
        let bytes = &self.bytes;
        // Most comparisons are settled by the leading octets, compared
        // as one number.
        let prefix = |r: &std::ops::Range<usize>| {
            let mut b = [0u8; 16];
            let n = r.len().min(16);
            b[..n].copy_from_slice(&bytes[r.start..r.start + n]);
            u128::from_be_bytes(b)
        };
        let mut rows: Vec<(u128, &Row)> =
            self.rows.iter().map(|row| (prefix(&row.2), row)).collect();
        rows.sort_unstable_by(|(pa, a), (pb, b)| {
            pa.cmp(pb)
                .then_with(|| bytes[a.2.clone()].cmp(&bytes[b.2.clone()]))
                .then(a.1.cmp(&b.1))
        });
        rows.into_iter().map(|(_, row)| row.0).collect()
    }
}

/// The values of `keys` for a message (its header as sent, its size,
/// its INTERNALDATE).
pub fn values(
    keys: &[(SortKey, bool)],
    head: &[u8],
    size: u64,
    internal: i64,
) -> Vec<Value> {
    let fs = fields(head);
    let get = |name: &str| {
        fs.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    };
    // The first entry, a group's name counting as a mailbox (RFC 5256:
    // the first "mailbox" of the header; RFC 5957 for the display form).
    let first = |name: &str| {
        get(name).map(addresses).and_then(|l| l.into_iter().next())
    };
    let text = |b: &Option<Vec<u8>>| {
        String::from_utf8_lossy(b.as_deref().unwrap_or_default()).into_owned()
    };
    let mailbox = |name: &str| {
        let m = first(name).map(|a| text(&a.mailbox)).unwrap_or_default();
        Value::Text(m.to_uppercase())
    };
    let display = |name: &str| {
        let shown = match first(name) {
            None => String::new(),
            Some(a) => match a
                .name
                .as_deref()
                .map(decode_words)
                .filter(|n| !n.trim().is_empty())
            {
                Some(n) => n,
                None => match (&a.host, text(&a.mailbox)) {
                    (Some(h), m) if !h.is_empty() => {
                        format!("{m}@{}", text(&Some(h.clone())))
                    }
                    (_, m) => m,
                },
            },
        };
        Value::Text(shown.to_uppercase())
    };
    keys.iter()
        .map(|(k, _)| match k {
            SortKey::Arrival => Value::Number(internal),
            SortKey::Size => Value::Number(size as i64),
            SortKey::Date => Value::Number(
                get("date").and_then(sent_seconds).unwrap_or(internal),
            ),
            SortKey::Subject => Value::Text(base_subject(&decode_words(
                get("subject").unwrap_or_default(),
            ))),
            SortKey::From => mailbox("from"),
            SortKey::To => mailbox("to"),
            SortKey::Cc => mailbox("cc"),
            SortKey::DisplayFrom => display("from"),
            SortKey::DisplayTo => display("to"),
            SortKey::Reply => Value::Number(is_reply(&decode_words(
                get("subject").unwrap_or_default(),
            )) as i64),
            SortKey::MessageId => Value::Text(
                msg_ids(get("message-id").unwrap_or_default())
                    .next()
                    .unwrap_or_default()
                    .to_string(),
            ),
            SortKey::Parents => {
                let refs = get("references").unwrap_or_default();
                let ids: Vec<String> = match msg_ids(refs).next() {
                    Some(_) => {
                        let mut all: Vec<String> = msg_ids(refs).collect();
                        // The nearest ancestors are the last ids.
                        let cut = all.len().saturating_sub(MAX_REFERENCES);
                        all.drain(..cut);
                        all
                    }
                    None => msg_ids(get("in-reply-to").unwrap_or_default())
                        .take(1)
                        .collect(),
                };
                Value::Text(ids.join(" "))
            }
        })
        .collect()
}

/// THREAD=REFERENCES keeps this many of a message's References ids, the
/// last ones (its nearest ancestors), as other RFC 5256 servers do.
pub const MAX_REFERENCES: usize = 1000;

/// The UIDs of messages (UID, sequence number, values) ordered by the
/// criteria; ties by sequence number.
pub fn order(
    keys: &[(SortKey, bool)],
    msgs: &[(u32, u32, Vec<Value>)],
) -> Vec<u32> {
    let mut keyed = Keyed::with_capacity(msgs.len());
    for (uid, seq, values) in msgs {
        keyed.push_values(*uid, *seq, keys, values);
    }
    keyed.order()
}

/// The `<...>` message ids in a header value, brackets kept. Ids a
/// mailer broke are repaired, as other servers do: white space inside
/// (folding) is dropped, and of `<junk<id>` the last `<` starts the id.
fn msg_ids(v: &[u8]) -> impl Iterator<Item = String> + '_ {
    let mut rest = v;
    std::iter::from_fn(move || {
        loop {
            let open = memchr::memchr(b'<', rest)?;
            let close = open + memchr::memchr(b'>', &rest[open..])?;
            let inner = &rest[open + 1..close];
            rest = &rest[close + 1..];
            let inner = match memchr::memrchr(b'<', inner) {
                Some(i) => &inner[i + 1..],
                None => inner,
            };
            let id: Vec<u8> = inner
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            if let (false, Ok(id)) = (id.is_empty(), String::from_utf8(id)) {
                return Some(format!("<{id}>"));
            }
        }
    })
}

/// RFC 5256 2.1: the subject without reply and forward markers and
/// list tags, upper-cased for comparison.
pub fn base_subject(subject: &str) -> String {
    subject_parts(subject).0
}

/// Whether taking the base subject removed a reply or forward marker
/// (THREAD=REFERENCES merges replies under their originals).
pub fn is_reply(subject: &str) -> bool {
    subject_parts(subject).1
}

/// The base subject and whether it was a reply or forward. Every step
/// narrows one borrowed slice of the normalised subject, so the work is
/// linear in its length however many markers it repeats.
fn subject_parts(subject: &str) -> (String, bool) {
    let mut reply = false;
    let normal: String =
        subject.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut s: &str = &normal;
    loop {
        s = s.trim();
        // (2) trailers: "(fwd)" and white space at the end.
        while let Some(rest) = strip_suffix_ignore_case(s, "(fwd)") {
            s = rest.trim_end();
            reply = true;
        }
        // (3)/(4) leaders (re/fw/fwd markers) and blobs, one at a time.
        loop {
            if let Some(rest) = strip_leader(s) {
                s = rest;
                reply = true;
                continue;
            }
            match strip_blob(s) {
                Some(rest) if !rest.is_empty() => s = rest,
                _ => break,
            }
        }
        // (5) "[fwd: ... ]" around the whole.
        if let Some(inner) = strip_prefix_ignore_case(s, "[fwd:")
            .and_then(|r| r.strip_suffix(']'))
        {
            s = inner;
            reply = true;
            continue;
        }
        break;
    }
    (s.trim().to_uppercase(), reply)
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.as_bytes().get(..prefix.len())?;
    // An ASCII prefix matched means the cut is on a character boundary.
    head.eq_ignore_ascii_case(prefix.as_bytes())
        .then(|| &s[prefix.len()..])
}

fn strip_suffix_ignore_case<'a>(s: &'a str, suffix: &str) -> Option<&'a str> {
    let cut = s.len().checked_sub(suffix.len())?;
    s.as_bytes()[cut..]
        .eq_ignore_ascii_case(suffix.as_bytes())
        .then(|| &s[..cut])
}

/// A leading `[...]` and the white space after it; None if there is none.
fn strip_blob(s: &str) -> Option<&str> {
    let rest = s.strip_prefix('[')?;
    let end = rest.find(['[', ']'])?;
    if rest.as_bytes()[end] == b'[' {
        return None;
    }
    Some(rest[end + 1..].trim_start())
}

/// One leader `("re" / "fw" / "fwd") *WSP [blob] ":"` and the white
/// space after it. Blobs before a leader are taken one at a time by the
/// caller, so none is read twice.
fn strip_leader(s: &str) -> Option<&str> {
    let t = s.trim_start();
    let after = ["re", "fwd", "fw"]
        .iter()
        .find_map(|p| strip_prefix_ignore_case(t, p))?
        .trim_start();
    let after = match after.starts_with('[') {
        true => strip_blob(after)?,
        false => after,
    };
    Some(after.strip_prefix(':')?.trim_start())
}

/// A Date: header as seconds since the epoch (UTC).
pub fn sent_seconds(v: &[u8]) -> Option<i64> {
    super::search::header_date(v)?.seconds()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering;

    #[test]
    fn ordering_encoded_values_gives_what_comparing_values_gives() {
        // Texts sharing long prefixes, numbers of both signs, reversed
        // keys, and (as a damaged cache could give) a column of mixed
        // kinds.
        let mut seed = 7u64;
        let mut next = move |n: u64| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            (seed >> 33) % n
        };
        let words = [
            "",
            "A",
            "AB",
            "ABCDEFGH",
            "ABCDEFGHI",
            "ABCDEFGHJ",
            "B",
            "A\0",
            "A\0B",
            "\0",
        ];
        for round in 0..40 {
            let keys = [
                (SortKey::Subject, round % 2 == 1),
                (SortKey::Date, round % 3 == 0),
            ];
            let msgs: Vec<(u32, u32, Vec<Value>)> = (0..200)
                .map(|i| {
                    let text = Value::Text(words[next(10) as usize].into());
                    let first = match (round >= 30, next(5)) {
                        (true, 0) => Value::Number(next(3) as i64 - 1),
                        _ => text,
                    };
                    (
                        1000 + i,
                        i + 1,
                        vec![first, Value::Number(next(5) as i64 - 2)],
                    )
                })
                .collect();
            // RFC 5256's order, compared value by value: numbers
            // before texts, texts by octets.
            let cmp = |a: &Value, b: &Value| match (a, b) {
                (Value::Number(a), Value::Number(b)) => a.cmp(b),
                (Value::Text(a), Value::Text(b)) => a.cmp(b),
                (Value::Number(_), Value::Text(_)) => Ordering::Less,
                (Value::Text(_), Value::Number(_)) => Ordering::Greater,
            };
            let mut plain = msgs.clone();
            plain.sort_by(|a, b| {
                for (i, (_, reverse)) in keys.iter().enumerate() {
                    let o = cmp(&a.2[i], &b.2[i]);
                    let o = if *reverse { o.reverse() } else { o };
                    if o != Ordering::Equal {
                        return o;
                    }
                }
                a.1.cmp(&b.1)
            });
            let want: Vec<u32> = plain.iter().map(|m| m.0).collect();
            assert_eq!(order(&keys, &msgs), want, "round {round}");
        }
    }

    #[test]
    fn base_subjects() {
        assert_eq!(
            base_subject("[foo] Fwd: [bar] Re: fw: b (fWd)  (fwd)"),
            "B"
        );
        assert_eq!(base_subject("Re: [FWD: c]"), "C");
        assert_eq!(
            base_subject("re: [fwd: [fwd: re: [fwd: babylon]]]"),
            "BABYLON"
        );
        assert_eq!(base_subject("[xyz]"), "[XYZ]");
        assert_eq!(
            base_subject("Ad: Re: Ad: Re: Ad: x"),
            "AD: RE: AD: RE: AD: X"
        );
        assert_eq!(base_subject("b (a)"), "B (A)");
        assert_eq!(base_subject("RE: C"), "C");
    }

    /// Markers repeated past any real subject: each step once.
    #[test]
    fn base_subjects_of_hostile_length() {
        let n = 100_000;
        assert_eq!(base_subject(&format!("{}x", "Re: ".repeat(n))), "X");
        assert_eq!(base_subject(&format!("x{}", " (fwd)".repeat(n))), "X");
        assert_eq!(
            base_subject(&format!("{}x{}", "[fwd: ".repeat(n), "]".repeat(n))),
            "X"
        );
        assert_eq!(base_subject(&format!("{}x", "[a] ".repeat(n))), "X");
        let open = "[".repeat(n);
        assert_eq!(base_subject(&open), open);
        assert!(is_reply(&format!("{}Re: x", "[b] ".repeat(n))));
    }

    #[test]
    fn dates() {
        let a = sent_seconds(b"Fri, 22 Feb 2008 00:00:00 +0200").unwrap();
        let b = sent_seconds(b"Thu, 21 Feb 2008 22:00:00 +0000").unwrap();
        assert_eq!(a, b);
        assert!(sent_seconds(b"garbage").is_none());
        // Octets, not characters: a month word with a character across
        // its third octet, huge numbers.
        assert!(sent_seconds("1 aa\u{e9} 2008".as_bytes()).is_none());
        assert!(sent_seconds(b"99999999999 Feb 2008").is_none());
        assert!(sent_seconds(b"1 Feb 99999999999999 00:00").is_none());
        assert!(
            sent_seconds("1 Feb 2008 00:00 +\u{e9}\u{e9}".as_bytes())
                .is_none()
        );
    }
}
