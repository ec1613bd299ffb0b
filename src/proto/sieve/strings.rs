//! Sieve's strings: `encoded-character` (RFC 5228 §2.4.2.4), variable
//! references and `set`'s modifiers (RFC 5229), and the checks a
//! compiler makes of constant strings (addresses, names, zones).

use super::script::Modifier;

/// A variable's value is cut at this many octets (Pigeonhole's default).
pub const MAX_VALUE: usize = 4096;

/// A string fit for an error message or a log line.
pub fn shown(s: &str) -> String {
    let mut out: String =
        s.chars().take(64).flat_map(char::escape_default).collect();
    if s.chars().count() > 64 {
        out.push_str("...");
    }
    out
}

/// Undoes `${hex:..}` and `${unicode:..}`; a sequence that does not
/// read as one is left as written. A code point no character can have
/// is an error.
pub fn decode_encoded(s: &str) -> Result<String, String> {
    if !s.contains("${") {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        match encoded(after)? {
            Some((text, used)) => {
                out.push_str(&text);
                rest = &after[used..];
            }
            None => {
                out.push_str("${");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// One encoded sequence after its `${`: the text and the octets used.
/// Only hex digits and blanks are looked at past the `:`, so a string
/// of many `${` is read once, not once for each.
fn encoded(s: &str) -> Result<Option<(String, usize)>, String> {
    let prefix =
        |p: &str| s.get(..p.len()).is_some_and(|h| h.eq_ignore_ascii_case(p));
    let (kind, colon) = match () {
        _ if prefix("hex:") => ("hex", 3),
        _ if prefix("unicode:") => ("unicode", 7),
        _ => return Ok(None),
    };
    let body = &s[colon + 1..];
    let len = body
        .bytes()
        .take_while(|b| b.is_ascii_hexdigit() || b.is_ascii_whitespace())
        .count();
    if !body[len..].starts_with('}') {
        return Ok(None);
    }
    let close = len + 1;
    let inner = &body[..len];
    let items: Vec<&str> = inner.split_ascii_whitespace().collect();
    if items.is_empty()
        || !items
            .iter()
            .all(|i| i.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Ok(None);
    }
    let text = match kind {
        "hex" => {
            let mut bytes = Vec::new();
            for item in &items {
                if item.len() > 2 {
                    return Ok(None);
                }
                bytes.push(u8::from_str_radix(item, 16).unwrap_or(0));
            }
            String::from_utf8_lossy(&bytes).into_owned()
        }
        _ => {
            let mut text = String::new();
            for item in &items {
                let digits = item.trim_start_matches('0');
                if digits.len() > 6 {
                    return Err(format!(
                        "${{unicode:{}}} is no character",
                        shown(item)
                    ));
                }
                let n = u32::from_str_radix(
                    if digits.is_empty() { "0" } else { digits },
                    16,
                )
                .unwrap_or(u32::MAX);
                let c = char::from_u32(n).ok_or_else(|| {
                    format!("${{unicode:{}}} is no character", shown(item))
                })?;
                text.push(c);
            }
            text
        }
    };
    Ok(Some((text, colon + close + 1)))
}

/// True if `s` may refer to a variable (and variables are on).
pub fn has_variables(s: &str, variables: bool) -> bool {
    variables && s.contains("${")
}

/// A variable's name: an identifier, or dotted (a namespace's).
pub fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.split('.').all(identifier)
}

fn identifier(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

pub fn modifier(tag: &str) -> Option<Modifier> {
    Some(match tag {
        "lower" => Modifier::Lower,
        "upper" => Modifier::Upper,
        "lowerfirst" => Modifier::LowerFirst,
        "upperfirst" => Modifier::UpperFirst,
        "quotewildcard" => Modifier::QuoteWildcard,
        "length" => Modifier::Length,
        _ => return None,
    })
}

/// `set`'s modifiers applied, in order of precedence.
pub fn modified(value: String, modifiers: &[Modifier]) -> String {
    let mut v = value;
    for m in modifiers {
        v = match m {
            Modifier::Lower => v.to_lowercase(),
            Modifier::Upper => v.to_uppercase(),
            Modifier::LowerFirst | Modifier::UpperFirst => {
                let mut c = v.chars();
                match c.next() {
                    None => v,
                    Some(first) => {
                        let first: String = match m {
                            Modifier::LowerFirst => {
                                first.to_lowercase().collect()
                            }
                            _ => first.to_uppercase().collect(),
                        };
                        first + c.as_str()
                    }
                }
            }
            Modifier::QuoteWildcard => {
                let mut out = String::with_capacity(v.len());
                for c in v.chars() {
                    if matches!(c, '*' | '?' | '\\') {
                        out.push('\\');
                    }
                    out.push(c);
                }
                out
            }
            Modifier::Length => v.chars().count().to_string(),
        };
    }
    cut(v)
}

/// A value cut to [`MAX_VALUE`] on a character's boundary.
pub fn cut(mut v: String) -> String {
    if v.len() > MAX_VALUE {
        let mut at = MAX_VALUE;
        while !v.is_char_boundary(at) {
            at -= 1;
        }
        v.truncate(at);
    }
    v
}

/// `s` with its variable references replaced: `lookup` gives a named
/// variable's value, `matched` the match variables. A reference that
/// does not read as one is left as written; once, not again.
pub fn expand(
    s: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    matched: &[String],
) -> String {
    if !s.contains("${") {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        // A name is identifier characters and dots: read only those.
        let len = after
            .bytes()
            .take_while(|b| {
                b.is_ascii_alphanumeric() || *b == b'_' || *b == b'.'
            })
            .count();
        let name = after[len..].starts_with('}').then(|| &after[..len]);
        match name.filter(|n| {
            valid_name(n)
                || (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        }) {
            Some(n) => {
                if n.bytes().all(|b| b.is_ascii_digit()) {
                    let i: usize =
                        n.trim_start_matches('0').parse().unwrap_or(0);
                    let big = n.trim_start_matches('0').len() > 4;
                    if !big {
                        out.push_str(
                            matched.get(i).map_or("", String::as_str),
                        );
                    }
                } else if let Some(v) = lookup(&n.to_ascii_lowercase()) {
                    out.push_str(&v);
                }
                rest = &after[n.len() + 1..];
            }
            None => {
                out.push_str("${");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    cut(out)
}

/// An address as `redirect` takes it: `local@domain`, bare or in `<>`.
pub fn valid_address(s: &str) -> bool {
    // A variable may carry a decoded header: no line ends or controls
    // may reach the queue's envelope.
    if s.chars().any(char::is_control) {
        return false;
    }
    let s = s.trim();
    let s = match (s.find('<'), s.ends_with('>')) {
        (Some(i), true) => &s[i + 1..s.len() - 1],
        (None, false) => s,
        _ => return false,
    };
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && (local.starts_with('"') && local.ends_with('"') && local.len() > 1
            || local.bytes().all(|b| {
                b.is_ascii_graphic() && !b"()<>[]:;@\\,\"".contains(&b)
            }));
    let domain_ok = !domain.is_empty()
        && domain.split('.').all(|l| {
            !l.is_empty()
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        || domain.starts_with('[') && domain.ends_with(']');
    local_ok && domain_ok
}

/// vacation's `:from`: an address, perhaps with a display name.
pub fn valid_from(s: &str) -> bool {
    valid_address(s)
}

/// `+hhmm`/`-hhmm` as minutes east of UTC.
pub fn zone(s: &str) -> Option<i32> {
    let b = s.as_bytes();
    if b.len() != 5
        || !matches!(b[0], b'+' | b'-')
        || !b[1..].iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    let n: i32 = s[1..].parse().ok()?;
    let (h, m) = (n / 100, n % 100);
    if h > 23 || m > 59 {
        return None;
    }
    Some(if b[0] == b'-' {
        -(h * 60 + m)
    } else {
        h * 60 + m
    })
}

/// The date parts of RFC 5260 §4.2.
pub const DATE_PARTS: [&str; 13] = [
    "year", "month", "day", "date", "julian", "hour", "minute", "second",
    "time", "iso8601", "std11", "zone", "weekday",
];

pub fn date_part(s: &str) -> bool {
    DATE_PARTS.iter().any(|p| p.eq_ignore_ascii_case(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_characters() {
        assert_eq!(decode_encoded("${hex: 40 41}x").unwrap(), "@Ax");
        assert_eq!(decode_encoded("${UNICODE:263a}").unwrap(), "\u{263a}");
        assert_eq!(decode_encoded("${hex:zz}").unwrap(), "${hex:zz}");
        assert_eq!(decode_encoded("${hex:40").unwrap(), "${hex:40");
        assert_eq!(decode_encoded("$${hex:24}{x}").unwrap(), "$${x}");
        assert!(decode_encoded("${unicode:D800}").is_err());
        assert!(decode_encoded("${unicode:110000}").is_err());
        // Many openings, none closed: each is read once.
        let many = "${hex:".repeat(20_000);
        assert_eq!(decode_encoded(&many).unwrap(), many);
        let lookup = |_: &str| None;
        let open = "${a".repeat(20_000);
        assert_eq!(expand(&open, &lookup, &[]), cut(open.clone()));
    }

    #[test]
    fn expansion_is_once_and_leaves_bad_references() {
        let lookup = |n: &str| match n {
            "a" => Some("${b}".to_string()),
            "company" => Some("ACME".to_string()),
            _ => None,
        };
        let m = vec!["all".to_string(), "one".to_string()];
        assert_eq!(expand("${a}", &lookup, &m), "${b}");
        assert_eq!(
            expand("${Company} ${1} ${2} ${}", &lookup, &m),
            "ACME one  ${}"
        );
        assert_eq!(expand("${unknown}x${", &lookup, &m), "x${");
        assert_eq!(expand("${01}", &lookup, &m), "one");
    }

    #[test]
    fn modifiers_in_precedence_order() {
        use Modifier::*;
        assert_eq!(
            modified("juMBlEd lETteRS".into(), &[Lower, UpperFirst]),
            "Jumbled letters"
        );
        assert_eq!(modified("a*b?".into(), &[QuoteWildcard, Length]), "6");
        assert_eq!(modified("x".repeat(5000), &[]).len(), MAX_VALUE);
    }

    #[test]
    fn constants() {
        assert!(valid_address("user@example.com"));
        assert!(valid_address("<user@example.com>"));
        assert!(!valid_address("user"));
        assert!(!valid_address("user@"));
        assert!(!valid_address("a b@example.com"));
        assert!(!valid_address("\"a\r\nto <x@y.z>\"@example.com"));
        assert!(valid_address("\"a b\"@example.com"));
        assert_eq!(zone("+0130"), Some(90));
        assert_eq!(zone("-0500"), Some(-300));
        assert_eq!(zone("0500"), None);
        assert!(
            valid_name("a_1")
                && valid_name("env.x")
                && !valid_name("1a")
                && !valid_name("a-b")
        );
    }
}
