//! SPF macros (RFC 7208 §7): checking a macro-string's syntax, and
//! expanding it for one check. Linear in the string; a transformer's
//! digit count is capped (it only ever keeps that many labels).

use std::fmt::Write as _;
use std::net::IpAddr;

/// What the macros of one check expand to.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    /// `l`: the sender's local part (`postmaster` when MAIL FROM was
    /// `<>` and the HELO name is checked).
    pub local: &'a str,
    /// `o`: the sender's domain.
    pub sender_domain: &'a str,
    /// `d`: the domain whose record is being evaluated.
    pub domain: &'a str,
    /// `i`, `c`, `v`: the client's address.
    pub ip: IpAddr,
    /// `h`: the HELO/EHLO name.
    pub helo: &'a str,
    /// `p`: the client's validated name, once looked up (`unknown` when
    /// there is none).
    pub validated: Option<&'a str>,
    /// `r`: our own host name (explanations only).
    pub receiver: &'a str,
    /// `t`: the time of the check, in seconds (explanations only).
    pub now: i64,
}

/// Why a macro-string is not one (the record is then a permerror).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadMacro(pub &'static str);

/// Where the expansion goes: a domain-spec, or an `exp` explanation
/// (which alone may use `c`, `r` and `t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    Domain,
    Explanation,
}

const DELIMITERS: &[u8] = b".-+,/_=";

/// A transformer keeps at most this many parts (a domain has fewer
/// than 128 labels, so larger counts change nothing).
const MAX_PARTS: usize = 128;

/// One piece of a macro-string.
enum Piece<'a> {
    Literal(&'a str),
    Expand {
        letter: u8,
        escape: bool,
        parts: Option<usize>,
        reverse: bool,
        delimiters: &'a [u8],
    },
}

/// Reads the pieces of `s`, or says why it is not a macro-string.
fn pieces(s: &str, how: Use) -> Result<Vec<Piece<'_>>, BadMacro> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut at = 0;
    while at < b.len() {
        let Some(pct) = memchr::memchr(b'%', &b[at..]).map(|i| at + i) else {
            out.push(Piece::Literal(literal(&s[at..], how)?));
            break;
        };
        if pct > at {
            out.push(Piece::Literal(literal(&s[at..pct], how)?));
        }
        match b.get(pct + 1) {
            Some(b'%') => out.push(Piece::Literal("%")),
            Some(b'_') => out.push(Piece::Literal(" ")),
            Some(b'-') => out.push(Piece::Literal("%20")),
            Some(b'{') => {
                let close = memchr::memchr(b'}', &b[pct..])
                    .map(|i| pct + i)
                    .ok_or(BadMacro("unterminated macro"))?;
                out.push(expand_spec(&s[pct + 2..close], how)?);
                at = close + 1;
                continue;
            }
            _ => return Err(BadMacro("lone %")),
        }
        at = pct + 2;
    }
    Ok(out)
}

/// Visible characters but `%` (macro-literal); an explanation may also
/// hold spaces (§6.2 explain-string).
fn literal(s: &str, how: Use) -> Result<&str, BadMacro> {
    let space = how == Use::Explanation;
    match s
        .bytes()
        .all(|c| (0x21..=0x7e).contains(&c) || (space && c == b' '))
    {
        true => Ok(s),
        false => Err(BadMacro("bad character in macro-string")),
    }
}

/// `letter [digits] [r] [delimiters]`, between the braces.
fn expand_spec(spec: &str, how: Use) -> Result<Piece<'_>, BadMacro> {
    let b = spec.as_bytes();
    let (&first, mut rest) = b.split_first().ok_or(BadMacro("empty macro"))?;
    let letter = first.to_ascii_lowercase();
    let allowed: &[u8] = match how {
        Use::Domain => b"slodiphv",
        Use::Explanation => b"slodiphvcrt",
    };
    if !allowed.contains(&letter) {
        return Err(BadMacro("unknown macro letter"));
    }
    let digits = rest.iter().take_while(|c| c.is_ascii_digit()).count();
    let parts = match digits {
        0 => None,
        _ => {
            let n = rest[..digits]
                .iter()
                .try_fold(0usize, |n, d| {
                    Some((n * 10 + usize::from(d - b'0')).min(MAX_PARTS))
                })
                .unwrap_or(MAX_PARTS);
            if n == 0 {
                return Err(BadMacro("zero parts"));
            }
            Some(n)
        }
    };
    rest = &rest[digits..];
    let reverse = matches!(rest.first(), Some(b'r' | b'R'));
    if reverse {
        rest = &rest[1..];
    }
    if !rest.iter().all(|c| DELIMITERS.contains(c)) {
        return Err(BadMacro("bad macro delimiter"));
    }
    Ok(Piece::Expand {
        letter,
        escape: first.is_ascii_uppercase(),
        parts,
        reverse,
        delimiters: rest,
    })
}

/// Checks the syntax of a macro-string (at parse time: a bad one makes
/// the record a permerror whether or not it is reached).
pub fn check(s: &str, how: Use) -> Result<(), BadMacro> {
    pieces(s, how).map(|_| ())
}

/// Expands `s` for the check `cx` describes.
pub fn expand(
    s: &str,
    how: Use,
    cx: &Context<'_>,
) -> Result<String, BadMacro> {
    let mut out = String::with_capacity(s.len() + 32);
    for piece in pieces(s, how)? {
        match piece {
            Piece::Literal(l) => out.push_str(l),
            Piece::Expand {
                letter,
                escape,
                parts,
                reverse,
                delimiters,
            } => {
                let value = value(letter, cx);
                let shaped = transform(&value, parts, reverse, delimiters);
                match escape {
                    true => url_escape(&shaped, &mut out),
                    false => out.push_str(&shaped),
                }
            }
        }
    }
    Ok(out)
}

/// A macro letter's value (§7.3).
fn value(letter: u8, cx: &Context<'_>) -> String {
    match letter {
        b's' => format!("{}@{}", cx.local, cx.sender_domain),
        b'l' => cx.local.to_string(),
        b'o' => cx.sender_domain.to_string(),
        b'd' => cx.domain.to_string(),
        b'i' => dotted(cx.ip),
        b'p' => cx.validated.unwrap_or("unknown").to_string(),
        b'v' => match cx.ip {
            IpAddr::V4(_) => "in-addr".to_string(),
            IpAddr::V6(_) => "ip6".to_string(),
        },
        b'h' => cx.helo.to_string(),
        b'c' => cx.ip.to_string(),
        b'r' => cx.receiver.to_string(),
        b't' => cx.now.to_string(),
        _ => String::new(),
    }
}

/// `i`: IPv4 as usual; IPv6 as its 32 nibbles, dot-separated (§7.3).
fn dotted(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let mut s = String::with_capacity(63);
            for byte in v6.octets() {
                for nibble in [byte >> 4, byte & 0xf] {
                    if !s.is_empty() {
                        s.push('.');
                    }
                    s.push(
                        char::from_digit(u32::from(nibble), 16).unwrap_or('0'),
                    );
                }
            }
            s
        }
    }
}

/// Splits on the delimiters (`.` if none), reverses if asked, keeps the
/// rightmost `parts`, and joins with `.` (§7.3).
fn transform(
    value: &str,
    parts: Option<usize>,
    reverse: bool,
    delimiters: &[u8],
) -> String {
    if parts.is_none() && !reverse && delimiters.is_empty() {
        return value.to_string();
    }
    let delimiters = if delimiters.is_empty() {
        b"."
    } else {
        delimiters
    };
    let mut split: Vec<&str> = value
        .split(|c: char| c.is_ascii() && delimiters.contains(&(c as u8)))
        .collect();
    if reverse {
        split.reverse();
    }
    let keep = parts.unwrap_or(split.len()).min(split.len());
    split[split.len() - keep..].join(".")
}

/// Uppercase macro letters: URL-escaped (RFC 3986 unreserved stay).
fn url_escape(s: &str, out: &mut String) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// A domain name from an expansion, for a query: over 253 octets, whole
/// labels are dropped from the left until it fits (§7.3).
pub fn fit_domain(mut name: &str) -> &str {
    name = name.strip_suffix('.').unwrap_or(name);
    while name.len() > 253 {
        match name.find('.') {
            Some(i) => name = &name[i + 1..],
            None => return "",
        }
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx(ip: &str) -> Context<'static> {
        Context {
            local: "strong-bad",
            sender_domain: "email.example.com",
            domain: "email.example.com",
            ip: ip.parse().unwrap(),
            helo: "mx.example.org",
            validated: None,
            receiver: "mx.example.net",
            now: 1_700_000_000,
        }
    }

    #[test]
    fn the_rfc_7208_examples() {
        // RFC 7208 §7.4, sender strong-bad@email.example.com.
        let v4 = cx("192.0.2.3");
        let cases = [
            ("%{s}", "strong-bad@email.example.com"),
            ("%{o}", "email.example.com"),
            ("%{d}", "email.example.com"),
            ("%{d4}", "email.example.com"),
            ("%{d3}", "email.example.com"),
            ("%{d2}", "example.com"),
            ("%{d1}", "com"),
            ("%{dr}", "com.example.email"),
            ("%{d2r}", "example.email"),
            ("%{l}", "strong-bad"),
            ("%{l-}", "strong.bad"),
            ("%{lr}", "strong-bad"),
            ("%{lr-}", "bad.strong"),
            ("%{l1r-}", "strong"),
            (
                "%{ir}.%{v}._spf.%{d2}",
                "3.2.0.192.in-addr._spf.example.com",
            ),
            ("%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"),
            (
                "%{lr-}.lp.%{ir}.%{v}._spf.%{d2}",
                "bad.strong.lp.3.2.0.192.in-addr._spf.example.com",
            ),
            (
                "%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}",
                "3.2.0.192.in-addr.strong.lp._spf.example.com",
            ),
            (
                "%{d2}.trusted-domains.example.net",
                "example.com.trusted-domains.example.net",
            ),
        ];
        for (macro_string, want) in cases {
            assert_eq!(
                expand(macro_string, Use::Domain, &v4).unwrap(),
                want,
                "{macro_string}"
            );
        }
        let v6 = cx("2001:db8::cb01");
        assert_eq!(
            expand("%{ir}.%{v}._spf.%{d2}", Use::Domain, &v6).unwrap(),
            "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com"
        );
    }

    #[test]
    fn escapes_literals_and_explanation_letters() {
        let c = cx("192.0.2.3");
        assert_eq!(expand("%%%_%-", Use::Domain, &c).unwrap(), "% %20");
        assert_eq!(
            expand("%{S}", Use::Domain, &c).unwrap(),
            "strong-bad%40email.example.com"
        );
        assert_eq!(expand("%{p}", Use::Domain, &c).unwrap(), "unknown");
        assert_eq!(
            expand("%{c} %{r} %{t}", Use::Explanation, &c).unwrap(),
            "192.0.2.3 mx.example.net 1700000000"
        );
        // c, r and t belong to explanations only.
        assert!(check("%{c}", Use::Domain).is_err());
        assert!(check("%{r}.x", Use::Domain).is_err());
    }

    #[test]
    fn refuses_what_is_not_a_macro_string() {
        for bad in [
            "%", "%x", "%{", "%{d", "%{}", "%{q}", "%{d0}", "%{d2x}", "a b",
            "%{d!}",
        ] {
            assert!(check(bad, Use::Domain).is_err(), "{bad:?}");
        }
        // Huge digit counts are capped, not overflowed.
        let c = cx("192.0.2.3");
        assert_eq!(
            expand("%{d99999999999999999999999}", Use::Domain, &c).unwrap(),
            "email.example.com"
        );
    }

    #[test]
    fn long_names_lose_labels_from_the_left() {
        let long = format!("{}.example.com", "a1234567.".repeat(40));
        let fit = fit_domain(&long);
        assert!(fit.len() <= 253 && fit.ends_with(".example.com"));
        assert!(!fit.starts_with('.'));
        assert_eq!(fit_domain("example.com."), "example.com");
    }
}
