//! SORT (RFC 5256), SORT=DISPLAY (RFC 5957) and ESORT (RFC 5267): sort
//! criteria, the values a message is sorted by (base subject, first
//! address, sent date), and the order.

use std::cmp::Ordering;

use super::args::{Args, Bad};
use super::matcher::decode_words;
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

impl Value {
    fn cmp(&self, other: &Value) -> Ordering {
        match (self, other) {
            (Value::Number(a), Value::Number(b)) => a.cmp(b),
            (Value::Text(a), Value::Text(b)) => a.cmp(b),
            (Value::Number(_), Value::Text(_)) => Ordering::Less,
            (Value::Text(_), Value::Number(_)) => Ordering::Greater,
        }
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
                let ids: Vec<&str> = match msg_ids(refs).next() {
                    Some(_) => msg_ids(refs).collect(),
                    None => msg_ids(get("in-reply-to").unwrap_or_default())
                        .take(1)
                        .collect(),
                };
                Value::Text(ids.join(" "))
            }
        })
        .collect()
}

/// Orders messages (UID, sequence number, values) by the criteria;
/// ties by sequence number.
pub fn order(keys: &[(SortKey, bool)], msgs: &mut [(u32, u32, Vec<Value>)]) {
    msgs.sort_by(|a, b| {
        for (i, (_, reverse)) in keys.iter().enumerate() {
            let o = a.2[i].cmp(&b.2[i]);
            let o = if *reverse { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        a.1.cmp(&b.1)
    });
}

/// The `<...>` message ids in a header value, brackets kept.
fn msg_ids(v: &[u8]) -> impl Iterator<Item = &str> {
    let text = std::str::from_utf8(v).unwrap_or_default();
    let mut rest = text;
    std::iter::from_fn(move || {
        loop {
            let open = rest.find('<')?;
            let close = open + rest[open..].find('>')?;
            let id = &rest[open..=close];
            rest = &rest[close + 1..];
            if id.len() > 2 && !id[1..].contains(['<', ' ', '\t']) {
                return Some(id);
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

/// The base subject and whether it was a reply or forward.
fn subject_parts(subject: &str) -> (String, bool) {
    let mut reply = false;
    let mut s: String =
        subject.split_whitespace().collect::<Vec<_>>().join(" ");
    loop {
        s = s.trim().to_string();
        // (2) trailers: "(fwd)" and white space at the end.
        loop {
            let t = s.trim_end();
            let lower = t.to_ascii_lowercase();
            if lower.ends_with("(fwd)") {
                s = t[..t.len() - 5].to_string();
                reply = true;
            } else {
                s = t.to_string();
                break;
            }
        }
        // (3)/(4) leaders: blobs and re/fw/fwd markers.
        loop {
            let before = s.clone();
            s = strip_leader(&s);
            reply |= s != before;
            if let Some(rest) = strip_blob(&s)
                && !rest.is_empty()
            {
                s = rest;
            }
            if s == before {
                break;
            }
        }
        // (5) "[fwd: ... ]" around the whole.
        let lower = s.to_ascii_lowercase();
        if lower.starts_with("[fwd:") && s.ends_with(']') {
            s = s[5..s.len() - 1].to_string();
            reply = true;
            continue;
        }
        break;
    }
    (s.trim().to_uppercase(), reply)
}

/// A leading `[...]` and the white space after it; None if there is none.
fn strip_blob(s: &str) -> Option<String> {
    let rest = s.strip_prefix('[')?;
    let end = rest.find(']')?;
    if rest[..end].contains('[') {
        return None;
    }
    Some(rest[end + 1..].trim_start().to_string())
}

/// One leader `*blob ("re" / "fw" / "fwd") *WSP [blob] ":"`, if there.
fn strip_leader(s: &str) -> String {
    let mut t = s.trim_start().to_string();
    while let Some(rest) = strip_blob(&t) {
        if rest.is_empty() {
            break;
        }
        t = rest;
    }
    let lower = t.to_ascii_lowercase();
    let after = ["re", "fwd", "fw"]
        .iter()
        .find(|p| lower.starts_with(*p))
        .map(|p| t[p.len()..].trim_start().to_string());
    let Some(mut after) = after else {
        return s.to_string();
    };
    if after.starts_with('[') {
        match strip_blob(&after) {
            Some(rest) => after = rest,
            None => return s.to_string(),
        }
    }
    match after.strip_prefix(':') {
        Some(rest) => rest.trim_start().to_string(),
        None => s.to_string(),
    }
}

/// A Date: header as seconds since the epoch (UTC).
pub fn sent_seconds(v: &[u8]) -> Option<i64> {
    super::search::header_date(v)?.seconds()
}

#[cfg(test)]
mod tests {
    use super::*;

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
