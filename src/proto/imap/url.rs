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

/// Who may fetch through a URLAUTH URL (RFC 4467 3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// `user+name`: that user, logged in.
    User(String),
    /// `submit+name`: a submission server acting for that user.
    Submit(String),
    /// `authuser`: any user logged in here.
    AuthUser,
    /// `anonymous`: anyone.
    Anonymous,
}

/// A URLAUTH URL: its message, who made it, who may fetch it, until
/// when, and what its token signs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUrl {
    /// The message it names.
    pub url: ImapUrl,
    /// The user whose mailbox it is, as the URL writes it.
    pub owner: String,
    /// The URL's host.
    pub host: String,
    /// Who may fetch it.
    pub access: Access,
    /// `EXPIRE`, seconds since the epoch.
    pub expire: Option<i64>,
    /// The URL up to the access identifier: what the token signs.
    pub rump: String,
    /// `:mechanism:token`, when given.
    pub token: Option<(String, String)>,
}

/// Reads an `imap://user@host/...;URLAUTH=access[:mech:token]` URL.
pub fn parse_auth(text: &str) -> Result<AuthUrl, &'static str> {
    let rest = strip_prefix_ci(text, "imap://").ok_or("not an imap:// URL")?;
    let authority = &rest[..rest.find('/').ok_or("no path")?];
    let (user, host) =
        authority.rsplit_once('@').ok_or("no user in the URL")?;
    let host = host.split(':').next().unwrap_or(host).to_ascii_lowercase();
    let user = match find_ci(user, ";AUTH=") {
        Some(at) => &user[..at],
        None => user,
    };
    let owner = String::from_utf8(unescape(user)?).map_err(|_| "bad user")?;
    let at = find_ci(text, ";URLAUTH=").ok_or("no URLAUTH")?;
    let tail = &text[at + ";URLAUTH=".len()..];
    let (access_text, token) = match tail.split_once(':') {
        Some((a, t)) => {
            let (mech, token) = t.split_once(':').ok_or("bad token")?;
            if mech.is_empty() || token.is_empty() {
                return Err("bad token");
            }
            (a, Some((mech.to_string(), token.to_string())))
        }
        None => (tail, None),
    };
    let rump = text[..at + ";URLAUTH=".len() + access_text.len()].to_string();
    let before = &text[..at];
    let (path, expire) = match find_ci(before, ";EXPIRE=") {
        Some(e) => (
            &before[..e],
            Some(rfc3339(&before[e + ";EXPIRE=".len()..])?),
        ),
        None => (before, None),
    };
    let url = parse(path)?;
    let lower = access_text.to_ascii_lowercase();
    let named = |prefix: &str| -> Result<Option<String>, &'static str> {
        match lower.strip_prefix(prefix) {
            Some(_) => {
                let raw = unescape(&access_text[prefix.len()..])?;
                let name = String::from_utf8(raw).map_err(|_| "bad user")?;
                if name.is_empty() {
                    return Err("bad access");
                }
                Ok(Some(name))
            }
            None => Ok(None),
        }
    };
    let access = if let Some(u) = named("user+")? {
        Access::User(u)
    } else if let Some(u) = named("submit+")? {
        Access::Submit(u)
    } else if lower == "authuser" {
        Access::AuthUser
    } else if lower == "anonymous" {
        Access::Anonymous
    } else {
        return Err("bad access");
    };
    Ok(AuthUrl {
        url,
        owner,
        host,
        access,
        expire,
        rump,
        token,
    })
}

impl AuthUrl {
    /// The login names the URL's user may stand for: itself, and, for
    /// a bare local part, that part at the URL's host (clients build
    /// `imap://alice@example.org/` from the address).
    pub fn owners(&self) -> Vec<String> {
        let mut names = vec![self.owner.clone()];
        if !self.owner.contains('@') {
            names.push(format!("{}@{}", self.owner, self.host));
        }
        names
    }
}

/// `2006-05-28T11:36:10Z` or with `+hh:mm`, fractions ignored.
fn rfc3339(s: &str) -> Result<i64, &'static str> {
    let bad = "bad EXPIRE";
    let (date, time) = s.split_once(['T', 't']).ok_or(bad)?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().map_err(|_| bad));
    let (y, mo, da) = (
        d.next().ok_or(bad)??,
        d.next().ok_or(bad)??,
        d.next().ok_or(bad)??,
    );
    let (clock, offset) = if let Some(c) = time.strip_suffix(['Z', 'z']) {
        (c, 0)
    } else {
        let at = time.rfind(['+', '-']).ok_or(bad)?;
        let (h, m) = time[at + 1..].split_once(':').ok_or(bad)?;
        let secs = h.parse::<i64>().map_err(|_| bad)? * 3600
            + m.parse::<i64>().map_err(|_| bad)? * 60;
        (
            &time[..at],
            if time.as_bytes()[at] == b'-' {
                -secs
            } else {
                secs
            },
        )
    };
    let clock = clock.split('.').next().unwrap_or(clock);
    let mut c = clock.split(':').map(|p| p.parse::<i64>().map_err(|_| bad));
    let (h, mi, se) = (
        c.next().ok_or(bad)??,
        c.next().ok_or(bad)??,
        c.next().ok_or(bad)??,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&da) {
        return Err(bad);
    }
    let days = super::search::days_from_civil(y, mo as u32, da as u32);
    Ok(days * 86_400 + h * 3600 + mi * 60 + se - offset)
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
    fn urlauth_forms() {
        let u = parse_auth(
            "imap://joe@example.com/INBOX/;uid=20/;section=1.2;expire=2006-05-28T11:36:10Z;urlauth=submit+fred:internal:91354a47",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(u.owner, "joe");
        assert_eq!(u.access, Access::Submit("fred".into()));
        assert_eq!(u.expire, Some(1_148_816_170));
        assert!(u.rump.ends_with(";urlauth=submit+fred"));
        assert_eq!(u.token, Some(("internal".into(), "91354a47".into())));
        assert_eq!(u.url.uid, 20);
        let u =
            parse_auth("imap://a%40b.c@h/INBOX/;UID=1;URLAUTH=user+a%40b.c")
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(u.owner, "a@b.c");
        assert_eq!(u.access, Access::User("a@b.c".into()));
        assert!(u.token.is_none());
        for bad in [
            "/INBOX/;UID=1;URLAUTH=anonymous",
            "imap://h/INBOX/;UID=1;URLAUTH=anonymous",
            "imap://a@h/INBOX/;UID=1",
            "imap://a@h/INBOX/;UID=1;URLAUTH=whoever",
            "imap://a@h/INBOX/;UID=1;URLAUTH=user+",
            "imap://a@h/INBOX/;UID=1;EXPIRE=yesterday;URLAUTH=anonymous",
            "imap://a@h/INBOX/;UID=1;URLAUTH=anonymous:internal",
        ] {
            assert!(parse_auth(bad).is_err(), "{bad}");
        }
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
