//! SMTP envelope addresses (RFC 5321 4.1.2), with UTF-8 where the client
//! asked for SMTPUTF8 (RFC 6531 3.3).
//!
//! A [`Path`] can only be made by [`parse_path`], so holding one means the
//! address was valid.

/// RFC 5321 4.5.3.1.1: at most 64 octets of local part.
pub const MAX_LOCAL_PART: usize = 64;
/// RFC 5321 4.5.3.1.2: at most 255 octets of domain.
pub const MAX_DOMAIN: usize = 255;
/// RFC 5321 4.5.3.1.3: at most 256 octets of path, brackets included.
pub const MAX_PATH: usize = 256;

/// A mailbox address `local@domain`. The local part keeps its case (RFC
/// 5321 2.4); the domain is folded to lower case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Path {
    local: String,
    domain: String,
}

impl Path {
    /// The local part, unquoted: `"a b"@x` gives `a b`.
    pub fn local(&self) -> &str {
        &self.local
    }

    /// The domain, lower case; an address literal keeps its brackets.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// True if the address has any non-ASCII octet (needs SMTPUTF8).
    pub fn is_utf8(&self) -> bool {
        !self.local.is_ascii() || !self.domain.is_ascii()
    }

    /// `Postmaster` with no domain, which RFC 5321 4.1.1.3 says every
    /// server must accept as a recipient.
    pub fn is_bare_postmaster(&self) -> bool {
        self.domain.is_empty()
    }
}

impl std::fmt::Display for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.domain.is_empty() {
            return f.write_str(&self.local);
        }
        if self.local.bytes().all(is_atext_or_dot)
            && dot_string_ok(&self.local)
        {
            write!(f, "{}@{}", self.local, self.domain)
        } else {
            f.write_str("\"")?;
            for c in self.local.chars() {
                if c == '"' || c == '\\' {
                    f.write_str("\\")?;
                }
                write!(f, "{c}")?;
            }
            write!(f, "\"@{}", self.domain)
        }
    }
}

/// The MAIL FROM path: a mailbox, or `<>` for bounces (RFC 5321 4.5.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReversePath {
    /// `<>`: the null sender of delivery status notifications.
    Null,
    /// An ordinary sender.
    Mailbox(Path),
}

impl std::fmt::Display for ReversePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReversePath::Null => Ok(()),
            ReversePath::Mailbox(p) => p.fmt(f),
        }
    }
}

/// Why an address did not parse; each maps to a reply in the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressError {
    /// Not RFC 5321 syntax.
    Syntax,
    /// Over one of the length limits of RFC 5321 4.5.3.1.
    TooLong,
    /// Valid UTF-8 address, but the transaction lacks SMTPUTF8.
    NeedsUtf8,
}

/// Parses `<...>` at the start of `input`, returning the path and the rest
/// (parameters). `utf8` allows non-ASCII (SMTPUTF8 was given).
pub fn parse_reverse_path(
    input: &[u8],
    utf8: bool,
) -> Result<(ReversePath, &[u8]), AddressError> {
    if let Some(rest) = input.strip_prefix(b"<>") {
        return Ok((ReversePath::Null, rest));
    }
    let (path, rest) = parse_path(input, utf8)?;
    Ok((ReversePath::Mailbox(path), rest))
}

/// Parses a `<[A-d-l:]mailbox>` path; source routes are accepted and
/// dropped as RFC 5321 4.1.1.3 asks.
pub fn parse_path(
    input: &[u8],
    utf8: bool,
) -> Result<(Path, &[u8]), AddressError> {
    let inner_start = input.strip_prefix(b"<").ok_or(AddressError::Syntax)?;
    let close = find_close(inner_start).ok_or(AddressError::Syntax)?;
    if close + 2 > MAX_PATH {
        return Err(AddressError::TooLong);
    }
    let inner = &inner_start[..close];
    let rest = &inner_start[close + 1..];
    let mailbox = skip_source_route(inner)?;
    if mailbox.eq_ignore_ascii_case(b"postmaster") {
        let path = Path {
            local: "Postmaster".into(),
            domain: String::new(),
        };
        return Ok((path, rest));
    }
    let path = parse_mailbox(mailbox)?;
    if path.is_utf8() && !utf8 {
        return Err(AddressError::NeedsUtf8);
    }
    Ok((path, rest))
}

/// Finds the `>` closing the path, skipping over a quoted local part.
fn find_close(s: &[u8]) -> Option<usize> {
    let mut quoted = false;
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'\\' if quoted => i += 1,
            b'"' => quoted = !quoted,
            b'>' if !quoted => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

fn skip_source_route(inner: &[u8]) -> Result<&[u8], AddressError> {
    if inner.first() != Some(&b'@') {
        return Ok(inner);
    }
    let colon = inner
        .iter()
        .position(|&b| b == b':')
        .ok_or(AddressError::Syntax)?;
    for hop in inner[..colon].split(|&b| b == b',') {
        let domain = hop.strip_prefix(b"@").ok_or(AddressError::Syntax)?;
        parse_domain(domain)?;
    }
    Ok(&inner[colon + 1..])
}

/// Parses `local@domain` (RFC 5321 4.1.2 Mailbox).
pub fn parse_mailbox(s: &[u8]) -> Result<Path, AddressError> {
    let (local, after) = if s.first() == Some(&b'"') {
        parse_quoted(s)?
    } else {
        let at = s
            .iter()
            .rposition(|&b| b == b'@')
            .ok_or(AddressError::Syntax)?;
        let local = &s[..at];
        if !local.iter().all(|&b| is_atext_or_dot(b) || b >= 0x80)
            || !dot_string_ok_bytes(local)
        {
            return Err(AddressError::Syntax);
        }
        (utf8(local)?, &s[at..])
    };
    let domain = after.strip_prefix(b"@").ok_or(AddressError::Syntax)?;
    if local.len() > MAX_LOCAL_PART {
        return Err(AddressError::TooLong);
    }
    let domain = parse_domain(domain)?;
    Ok(Path { local, domain })
}

fn parse_quoted(s: &[u8]) -> Result<(String, &[u8]), AddressError> {
    let mut local = Vec::new();
    let mut i = 1;
    while i < s.len() {
        match s[i] {
            b'"' => return Ok((utf8(&local)?, &s[i + 1..])),
            b'\\' => {
                let next = *s.get(i + 1).ok_or(AddressError::Syntax)?;
                if !(32..=126).contains(&next) {
                    return Err(AddressError::Syntax);
                }
                local.push(next);
                i += 2;
            }
            b if b == 32
                || b == 33
                || (35..=126).contains(&b)
                || b >= 0x80 =>
            {
                local.push(b);
                i += 1;
            }
            _ => return Err(AddressError::Syntax),
        }
    }
    Err(AddressError::Syntax)
}

/// Parses a domain or address literal, returning it in lower case.
pub fn parse_domain(s: &[u8]) -> Result<String, AddressError> {
    if s.len() > MAX_DOMAIN {
        return Err(AddressError::TooLong);
    }
    if s.first() == Some(&b'[') {
        return parse_literal(s);
    }
    if s.is_empty() {
        return Err(AddressError::Syntax);
    }
    for label in s.split(|&b| b == b'.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label.first() != Some(&b'-')
            && label.last() != Some(&b'-')
            && label
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b >= 0x80);
        if !ok {
            return Err(AddressError::Syntax);
        }
    }
    Ok(utf8(s)?.to_lowercase())
}

fn parse_literal(s: &[u8]) -> Result<String, AddressError> {
    let inner = s
        .strip_prefix(b"[")
        .and_then(|r| r.strip_suffix(b"]"))
        .ok_or(AddressError::Syntax)?;
    let text = std::str::from_utf8(inner).map_err(|_| AddressError::Syntax)?;
    let valid = match text.get(..5) {
        Some(tag) if tag.eq_ignore_ascii_case("IPv6:") => {
            text[5..].parse::<std::net::Ipv6Addr>().is_ok()
        }
        _ => text.parse::<std::net::Ipv4Addr>().is_ok(),
    };
    if !valid {
        return Err(AddressError::Syntax);
    }
    Ok(format!("[{}]", text.to_ascii_lowercase()))
}

fn utf8(b: &[u8]) -> Result<String, AddressError> {
    String::from_utf8(b.to_vec()).map_err(|_| AddressError::Syntax)
}

/// RFC 5322 3.2.3 atext, plus the dot that joins atoms.
fn is_atext_or_dot(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b)
}

fn dot_string_ok(s: &str) -> bool {
    dot_string_ok_bytes(s.as_bytes())
}

/// A Dot-string has no empty atom: no leading, trailing or double dot.
fn dot_string_ok_bytes(s: &[u8]) -> bool {
    !s.is_empty() && s.split(|&b| b == b'.').all(|atom| !atom.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Path {
        parse_path(s.as_bytes(), true).unwrap().0
    }

    fn err(s: &str) -> AddressError {
        parse_path(s.as_bytes(), false).unwrap_err()
    }

    #[test]
    fn plain_and_case() {
        let p = ok("<John.Doe@Example.COM>");
        assert_eq!(p.local(), "John.Doe");
        assert_eq!(p.domain(), "example.com");
        assert_eq!(p.to_string(), "John.Doe@example.com");
    }

    #[test]
    fn quoted_local_parts_round_trip() {
        let p = ok(r#"<"a b\"c"@x.org>"#);
        assert_eq!(p.local(), "a b\"c");
        assert_eq!(p.to_string(), r#""a b\"c"@x.org"#);
        let p = ok(r#"<"user@remote"@local.test>"#);
        assert_eq!(p.local(), "user@remote");
    }

    #[test]
    fn source_route_is_dropped() {
        let p = ok("<@relay.one,@relay.two:u@dest.test>");
        assert_eq!(p.to_string(), "u@dest.test");
    }

    #[test]
    fn literals() {
        assert_eq!(ok("<u@[127.0.0.1]>").domain(), "[127.0.0.1]");
        assert_eq!(ok("<u@[IPv6:::1]>").domain(), "[ipv6:::1]");
        assert_eq!(err("<u@[300.1.1.1]>"), AddressError::Syntax);
    }

    #[test]
    fn postmaster_without_domain() {
        assert!(ok("<postmaster>").is_bare_postmaster());
    }

    #[test]
    fn nasty_cases_are_refused() {
        for bad in [
            "",
            "<",
            "<>",
            "u@x",
            "<u@x",
            "<@x>",
            "<u@>",
            "<.u@x>",
            "<u.@x>",
            "<u..v@x>",
            "<u@-x>",
            "<u@x..y>",
            "<u v@x>",
            "<\"unterminated@x>",
            "<u@x_y>",
            "<@a,b:u@x>",
            "<u@[1.2.3]>",
        ] {
            assert!(parse_path(bad.as_bytes(), true).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn limits() {
        let long_local = format!("<{}@x.org>", "a".repeat(65));
        assert_eq!(err(&long_local), AddressError::TooLong);
        let long_path = format!("<u@{}.org>", "a.".repeat(130));
        assert_eq!(err(&long_path), AddressError::TooLong);
    }

    #[test]
    fn utf8_needs_smtputf8() {
        assert_eq!(err("<jös@bücher.de>"), AddressError::NeedsUtf8);
        assert_eq!(ok("<jös@Bücher.de>").domain(), "bücher.de");
        assert!(parse_path(b"<\xff@x.org>", true).is_err());
    }

    #[test]
    fn reverse_path_null_and_rest() {
        let (p, rest) = parse_reverse_path(b"<> SIZE=10", false).unwrap();
        assert_eq!(p, ReversePath::Null);
        assert_eq!(rest, b" SIZE=10");
    }
}
