//! Reading an SPF record (RFC 7208 §4.5, §4.6, §5, §6): its directives
//! and modifiers, checked whole before any is evaluated, so a record
//! with a syntax error anywhere is a permerror (§4.6) however early a
//! match would have come. Borrowed from the TXT string; linear in it.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::macros::{self, Use};

/// What a directive gives when its mechanism matches (§4.6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qualifier {
    Pass,
    Fail,
    SoftFail,
    Neutral,
}

/// A mechanism (§5), its domain-spec still a macro-string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mechanism<'a> {
    All,
    Include(&'a str),
    /// `a[:domain][/v4][//v6]`.
    A(Option<&'a str>, u8, u8),
    /// `mx[:domain][/v4][//v6]`.
    Mx(Option<&'a str>, u8, u8),
    Ptr(Option<&'a str>),
    Ip4(Ipv4Addr, u8),
    Ip6(Ipv6Addr, u8),
    Exists(&'a str),
}

impl Mechanism<'_> {
    /// True if evaluating it queries DNS (it counts against the limit
    /// of 10, §4.6.4).
    pub fn queries_dns(&self) -> bool {
        !matches!(
            self,
            Mechanism::All | Mechanism::Ip4(..) | Mechanism::Ip6(..)
        )
    }
}

/// One directive: a qualifier and a mechanism.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive<'a> {
    pub qualifier: Qualifier,
    pub mechanism: Mechanism<'a>,
}

/// A record, read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record<'a> {
    pub directives: Vec<Directive<'a>>,
    /// `redirect=` (§6.1), a domain-spec.
    pub redirect: Option<&'a str>,
    /// `exp=` (§6.2), a domain-spec.
    pub exp: Option<&'a str>,
}

/// Why a record is a permerror.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermError(pub &'static str);

/// True if a TXT string is an SPF record at all: `v=spf1` alone or
/// followed by a space (§4.5). Others are not SPF records and are
/// ignored.
pub fn is_spf(txt: &str) -> bool {
    let b = txt.as_bytes();
    b.len() >= 6
        && b[..6].eq_ignore_ascii_case(b"v=spf1")
        && matches!(b.get(6), None | Some(b' '))
}

/// Reads a record whose TXT strings are joined in `txt` (§3.3).
pub fn parse(txt: &str) -> Result<Record<'_>, PermError> {
    if !is_spf(txt) {
        return Err(PermError("not an SPF record"));
    }
    let mut record = Record::default();
    for term in txt[6..].split(' ').filter(|t| !t.is_empty()) {
        if let Some((name, value)) = modifier(term) {
            let slot = match name.to_ascii_lowercase().as_str() {
                "redirect" => &mut record.redirect,
                "exp" => &mut record.exp,
                // Unknown modifiers are ignored, once they read as one.
                _ => {
                    macros::check(value, Use::Domain)
                        .or_else(|_| macros::check(value, Use::Explanation))
                        .map_err(|_| PermError("bad modifier value"))?;
                    continue;
                }
            };
            if slot.is_some() {
                return Err(PermError("modifier given twice"));
            }
            domain_spec(value)?;
            *slot = Some(value);
            continue;
        }
        record.directives.push(directive(term)?);
    }
    Ok(record)
}

/// `name=value`, if the term is a modifier (a name, then `=`, §4.6.1).
pub fn modifier(term: &str) -> Option<(&str, &str)> {
    let (name, value) = term.split_once('=')?;
    let b = name.as_bytes();
    let named = b.first().is_some_and(u8::is_ascii_alphabetic)
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(c));
    named.then_some((name, value))
}

/// One directive term (the record it came from was read whole first).
pub fn directive(term: &str) -> Result<Directive<'_>, PermError> {
    let (qualifier, rest) = match term.as_bytes()[0] {
        b'+' => (Qualifier::Pass, &term[1..]),
        b'-' => (Qualifier::Fail, &term[1..]),
        b'~' => (Qualifier::SoftFail, &term[1..]),
        b'?' => (Qualifier::Neutral, &term[1..]),
        _ => (Qualifier::Pass, term),
    };
    // The name ends at `:` or `/`.
    let end = rest.find([':', '/']).unwrap_or(rest.len());
    let (name, args) = rest.split_at(end);
    let mechanism = match name.to_ascii_lowercase().as_str() {
        "all" if args.is_empty() => Mechanism::All,
        "include" => Mechanism::Include(with_domain(args)?),
        "exists" => Mechanism::Exists(with_domain(args)?),
        "ptr" => Mechanism::Ptr(match args {
            "" => None,
            _ => Some(with_domain(args)?),
        }),
        "a" | "mx" => {
            let (domain, v4, v6) = domain_and_cidrs(args)?;
            match name.eq_ignore_ascii_case("a") {
                true => Mechanism::A(domain, v4, v6),
                false => Mechanism::Mx(domain, v4, v6),
            }
        }
        "ip4" => {
            let net = args
                .strip_prefix(':')
                .ok_or(PermError("ip4 needs an address"))?;
            let (addr, len) = split_cidr(net);
            let addr =
                addr.parse().map_err(|_| PermError("bad ip4 address"))?;
            Mechanism::Ip4(addr, cidr(len, 32)?)
        }
        "ip6" => {
            let net = args
                .strip_prefix(':')
                .ok_or(PermError("ip6 needs an address"))?;
            let (addr, len) = split_cidr(net);
            let addr =
                addr.parse().map_err(|_| PermError("bad ip6 address"))?;
            Mechanism::Ip6(addr, cidr(len, 128)?)
        }
        _ => return Err(PermError("unknown mechanism")),
    };
    Ok(Directive {
        qualifier,
        mechanism,
    })
}

/// `:domain-spec`, as `include`, `exists` and `ptr` take it.
fn with_domain(args: &str) -> Result<&str, PermError> {
    let d = args
        .strip_prefix(':')
        .ok_or(PermError("mechanism needs a domain"))?;
    domain_spec(d)
}

/// `[:domain-spec][/v4][//v6]` of `a` and `mx` (§5.3, §5.4).
fn domain_and_cidrs(args: &str) -> Result<(Option<&str>, u8, u8), PermError> {
    let (domain, cidrs) = match args.strip_prefix(':') {
        Some(rest) => {
            let end = rest.find('/').unwrap_or(rest.len());
            (Some(domain_spec(&rest[..end])?), &rest[end..])
        }
        None => (None, args),
    };
    let (v4, v6) = match cidrs.split_once("//") {
        Some((v4, v6)) => (v4, Some(v6)),
        None => (cidrs, None),
    };
    let v4 = match v4.strip_prefix('/') {
        Some(n) => cidr(Some(n), 32)?,
        None if v4.is_empty() => 32,
        None => return Err(PermError("bad cidr length")),
    };
    let v6 = cidr(v6, 128)?;
    Ok((domain, v4, v6))
}

/// An address and its `/len`, if any.
fn split_cidr(net: &str) -> (&str, Option<&str>) {
    match net.split_once('/') {
        Some((addr, len)) => (addr, Some(len)),
        None => (net, None),
    }
}

/// A cidr length (no leading zeros, at most `max`); `max` if absent.
fn cidr(len: Option<&str>, max: u8) -> Result<u8, PermError> {
    let Some(len) = len else { return Ok(max) };
    let ok = !len.is_empty()
        && len.len() <= 3
        && len.bytes().all(|c| c.is_ascii_digit())
        && (len == "0" || !len.starts_with('0'));
    match len.parse::<u8>() {
        Ok(n) if ok && n <= max => Ok(n),
        _ => Err(PermError("bad cidr length")),
    }
}

/// A domain-spec: a macro-string whose end, once expanded, is a domain
/// (§4.6.1: `domain-end` is a top label, or a macro). The top label is
/// checked here when it is literal.
fn domain_spec(s: &str) -> Result<&str, PermError> {
    if s.is_empty() {
        return Err(PermError("empty domain"));
    }
    macros::check(s, Use::Domain)
        .map_err(|_| PermError("bad macro in domain"))?;
    let trimmed = s.strip_suffix('.').unwrap_or(s);
    if trimmed.ends_with('}') {
        return Ok(s);
    }
    let top = trimmed.rsplit('.').next().unwrap_or("");
    // toplabel: alphanumerics and `-`, not all digits, not starting or
    // ending with `-`; and a domain has at least two labels.
    let ok = trimmed.contains('.')
        && !top.is_empty()
        && top.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
        && !top.bytes().all(|c| c.is_ascii_digit())
        && !top.starts_with('-')
        && !top.ends_with('-');
    match ok {
        true => Ok(s),
        false => Err(PermError("bad domain")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_mechanism_and_modifier() {
        let r = parse(
            "v=spf1 +all -include:_spf.example.com ~a a:mail.example.com/24//64 mx/28 \
             ?ptr ptr:example.org ip4:192.0.2.0/24 ip6:2001:db8::/32 ip4:192.0.2.9 \
             exists:%{i}.bl.example.net redirect=_spf.example.net exp=explain.%{d} x-foo=bar",
        )
        .unwrap();
        let m: Vec<_> =
            r.directives.iter().map(|d| d.mechanism.clone()).collect();
        assert_eq!(
            m,
            vec![
                Mechanism::All,
                Mechanism::Include("_spf.example.com"),
                Mechanism::A(None, 32, 128),
                Mechanism::A(Some("mail.example.com"), 24, 64),
                Mechanism::Mx(None, 28, 128),
                Mechanism::Ptr(None),
                Mechanism::Ptr(Some("example.org")),
                Mechanism::Ip4("192.0.2.0".parse().unwrap(), 24),
                Mechanism::Ip6("2001:db8::".parse().unwrap(), 32),
                Mechanism::Ip4("192.0.2.9".parse().unwrap(), 32),
                Mechanism::Exists("%{i}.bl.example.net"),
            ]
        );
        let q: Vec<_> =
            r.directives.iter().map(|d| d.qualifier).take(3).collect();
        assert_eq!(q, [Qualifier::Pass, Qualifier::Fail, Qualifier::SoftFail]);
        assert_eq!(r.redirect, Some("_spf.example.net"));
        assert_eq!(r.exp, Some("explain.%{d}"));
        assert_eq!(
            parse("V=SPF1 MX:Example.COM/24").unwrap().directives.len(),
            1
        );
        assert_eq!(parse("v=spf1").unwrap(), Record::default());
    }

    #[test]
    fn tells_spf_records_from_other_txt() {
        assert!(
            is_spf("v=spf1") && is_spf("v=spf1 -all") && is_spf("V=SPF1 a")
        );
        assert!(
            !is_spf("v=spf10 -all")
                && !is_spf("v=spf1-all")
                && !is_spf("spf2.0/pra")
        );
    }

    #[test]
    fn a_syntax_error_anywhere_is_a_permerror() {
        for bad in [
            "v=spf1 a:",
            "v=spf1 include",
            "v=spf1 ip4:192.0.2.0/33",
            "v=spf1 ip4:192.0.2.0/024",
            "v=spf1 ip4:192.0.2",
            "v=spf1 ip6:2001:db8::/129",
            "v=spf1 a/",
            "v=spf1 a//",
            "v=spf1 mx:example.com//129",
            "v=spf1 foo",
            "v=spf1 all:example.com",
            "v=spf1 redirect=a.example redirect=b.example",
            "v=spf1 exp=a.example exp=b.example",
            "v=spf1 include:%{q}.example.com",
            "v=spf1 include:example.123",
            "v=spf1 exists:example",
            "v=spf1 -all x=%{",
            "v=spf1 ip4:1.2.3.4 ~all garbage!",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn counts_what_queries_dns() {
        let r = parse("v=spf1 ip4:192.0.2.1 a mx ptr include:x.example exists:y.example all").unwrap();
        let n = r
            .directives
            .iter()
            .filter(|d| d.mechanism.queries_dns())
            .count();
        assert_eq!(n, 5);
    }
}
