//! IMAP URLs (RFC 5092) naming a message or a part of one, as CATENATE
//! (RFC 4469) takes them: `/mailbox;UIDVALIDITY=n/;UID=n/;SECTION=s
//! /;PARTIAL=o.l`, or the same after `imap://[user@]host[:port]`.

use super::args::Args;
use super::fetch::{Section, section};
use super::names;

/// What a URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImapUrl {
    /// The folder (our spelling).
    pub mailbox: String,
    /// The UIDVALIDITY the folder must have, if given.
    pub uidvalidity: Option<u32>,
    /// The message.
    pub uid: u32,
    /// A section of it, if given.
    pub section: Option<Section>,
    /// `PARTIAL=offset[.length]`.
    pub partial: Option<(u64, Option<u64>)>,
}

/// Reads a URL; the error says why it is not one we can resolve.
pub fn parse(url: &str) -> Result<ImapUrl, &'static str> {
    let path = match strip_prefix_ci(url, "imap://") {
        Some(rest) => &rest[rest.find('/').ok_or("no path")?..],
        None => url,
    };
    let path = path.strip_prefix('/').ok_or("not an absolute path")?;
    let mut pieces = split_ci(path, "/;");
    let first = pieces.next().ok_or("no mailbox")?;
    let (mailbox, validity) = match find_ci(first, ";UIDVALIDITY=") {
        Some(at) => (
            &first[..at],
            Some(number(&first[at + ";UIDVALIDITY=".len()..])?),
        ),
        None => (first, None),
    };
    let mailbox = names::decode(&unescape(mailbox)?, true)?;
    let mut url = ImapUrl {
        mailbox,
        uidvalidity: validity.map(|v| v as u32),
        uid: 0,
        section: None,
        partial: None,
    };
    for piece in pieces {
        if find_ci(piece, ";URLAUTH=").is_some()
            || find_ci(piece, ";EXPIRE=").is_some()
        {
            return Err("URLAUTH is not offered");
        }
        let (name, value) = piece.split_once('=').ok_or("bad URL part")?;
        match name.to_ascii_uppercase().as_str() {
            "UID" if url.uid == 0 => url.uid = number(value)? as u32,
            "SECTION" if url.uid != 0 && url.section.is_none() => {
                let text = format!(
                    "[{}]",
                    String::from_utf8_lossy(&unescape(value)?)
                );
                let mut a = Args::new(text.as_bytes());
                let s = section(&mut a, false).map_err(|_| "bad section")?;
                if !a.at_end() {
                    return Err("bad section");
                }
                url.section = Some(s);
            }
            "PARTIAL" if url.uid != 0 && url.partial.is_none() => {
                url.partial = Some(match value.split_once('.') {
                    Some((o, l)) => (offset(o)?, Some(number(l)?)),
                    None => (offset(value)?, None),
                });
            }
            _ => return Err("bad URL part"),
        }
    }
    if url.uid == 0 {
        return Err("the URL names no message");
    }
    Ok(url)
}

/// PARTIAL's offset, which may be 0.
fn offset(s: &str) -> Result<u64, &'static str> {
    if s == "0" { Ok(0) } else { number(s) }
}

/// A non-zero 32-bit number.
fn number(s: &str) -> Result<u64, &'static str> {
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err("bad number");
    }
    let n: u64 = s.parse().map_err(|_| "bad number")?;
    if n == 0 || n > u64::from(u32::MAX) {
        return Err("bad number");
    }
    Ok(n)
}

/// `%XX` escapes undone.
fn unescape(s: &str) -> Result<Vec<u8>, &'static str> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3).ok_or("bad escape")?;
            let hex = std::str::from_utf8(hex).map_err(|_| "bad escape")?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| "bad escape")?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}

fn find_ci(hay: &str, needle: &str) -> Option<usize> {
    hay.to_ascii_uppercase().find(&needle.to_ascii_uppercase())
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// Splits on `sep` in any case.
fn split_ci<'a>(s: &'a str, sep: &'a str) -> impl Iterator<Item = &'a str> {
    let mut rest = Some(s);
    std::iter::from_fn(move || {
        let r = rest?;
        match find_ci(r, sep) {
            Some(at) => {
                rest = Some(&r[at + sep.len()..]);
                Some(&r[..at])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::super::fetch::SectionText;
    use super::*;

    #[test]
    fn forms() {
        let u = parse("/imaptest;uidvalidity=17/;uid=3/;section=1.header")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(u.mailbox, "imaptest");
        assert_eq!(u.uidvalidity, Some(17));
        assert_eq!(u.uid, 3);
        let s = u.section.unwrap_or_else(|| panic!("no section"));
        assert_eq!(s.part, vec![1]);
        assert_eq!(s.text, SectionText::Header);
        let u = parse(
            "imap://joe@example.com/Lists%2Erust/;UID=20/;PARTIAL=100000.1",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(u.mailbox, "Lists.rust");
        assert_eq!(u.partial, Some((100000, Some(1))));
        let u = parse("/inbox/;uid=1").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(u.mailbox, "INBOX");
        assert!(u.section.is_none());
    }

    #[test]
    fn refused() {
        for bad in [
            "",
            "/",
            "INBOX/;UID=1",
            "/INBOX",
            "/INBOX/;UID=0",
            "/INBOX/;UID=x",
            "/INBOX/;UID=1/;SECTION=bogus",
            "/INBOX/;UID=1/;UID=2",
            "/INBOX/;UID=1;URLAUTH=anonymous:internal:0123",
            "/..%2F..%2Fetc/;UID=1",
            "/INBOX;UIDVALIDITY=99999999999/;UID=1",
            "/%ZZ/;UID=1",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
