//! Authentication-Results (RFC 8601): the field we write from a
//! message's results, and finding the authserv-id of one already in a
//! message, so that a forged field naming us is removed (§5).

/// The authserv-id a field's value starts with (after comments and
/// white space), or `None` if it has none. Linear in the value.
pub fn authserv_id(value: &[u8]) -> Option<String> {
    let mut i = skip_cfws(value, 0);
    if value.get(i) == Some(&b'"') {
        let mut out = Vec::new();
        i += 1;
        while let Some(&c) = value.get(i) {
            match c {
                b'"' => return String::from_utf8(out).ok(),
                b'\\' => {
                    out.extend(value.get(i + 1));
                    i += 2;
                }
                _ => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        return None; // unterminated
    }
    let start = i;
    while i < value.len()
        && !matches!(value[i], b' ' | b'\t' | b'\r' | b'\n' | b';' | b'(')
    {
        i += 1;
    }
    (i > start).then(|| String::from_utf8_lossy(&value[start..i]).into_owned())
}

/// True if a field's value names `ours` as its authserv-id (case
/// does not matter: it is a domain name).
pub fn is_ours(value: &[u8], ours: &str) -> bool {
    authserv_id(value).is_some_and(|id| id.eq_ignore_ascii_case(ours))
}

/// Skips white space and comments (nested, with quoted pairs).
fn skip_cfws(v: &[u8], mut i: usize) -> usize {
    let mut depth = 0usize;
    while let Some(&c) = v.get(i) {
        match c {
            b'(' => depth += 1,
            b')' if depth > 0 => depth -= 1,
            b'\\' if depth > 0 => i += 1,
            b' ' | b'\t' | b'\r' | b'\n' => {}
            _ if depth > 0 => {}
            _ => return i,
        }
        i += 1;
    }
    i
}

/// One method's result, as a line of the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Method {
    /// `spf`, `dkim`, `dmarc`, `arc`, `iprev`, `auth`.
    pub method: &'static str,
    /// `pass`, `fail` and so on.
    pub result: &'static str,
    /// Why, for a comment.
    pub reason: Option<String>,
    /// `ptype.property` and its value.
    pub properties: Vec<(&'static str, String)>,
}

impl Method {
    /// A method's result with no comment and no properties yet.
    pub fn new(method: &'static str, result: &'static str) -> Method {
        Method {
            method,
            result,
            reason: None,
            properties: Vec::new(),
        }
    }

    /// With a comment.
    pub fn because(mut self, reason: impl Into<String>) -> Method {
        self.reason = Some(reason.into());
        self
    }

    /// With a property.
    pub fn with(
        mut self,
        property: &'static str,
        value: impl Into<String>,
    ) -> Method {
        self.properties.push((property, value.into()));
        self
    }
}

/// The whole field, `Authentication-Results: id; m=r ...`, one method a
/// line, LF line ends. With no methods, `none` (§2.2).
pub fn field(authserv_id: &str, methods: &[Method]) -> String {
    let mut out = format!("Authentication-Results: {}", pvalue(authserv_id));
    if methods.is_empty() {
        out.push_str("; none\n");
        return out;
    }
    for m in methods {
        out.push_str(";\n\t");
        out.push_str(m.method);
        out.push('=');
        out.push_str(m.result);
        if let Some(r) = &m.reason {
            out.push_str(" (");
            out.push_str(&comment(r));
            out.push(')');
        }
        for (p, v) in &m.properties {
            out.push(' ');
            out.push_str(p);
            out.push('=');
            out.push_str(&pvalue(v));
        }
    }
    out.push('\n');
    out
}

/// A property's value: as it is when it reads as one (a token, or
/// `local@domain`), else a quoted string. Control characters become
/// `?`: nothing a stranger wrote can end the field.
pub fn pvalue(v: &str) -> String {
    let plain = !v.is_empty()
        && v.bytes().all(|b| {
            b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.@".contains(&b)
        })
        && v.bytes().filter(|&b| b == b'@').count() <= 1;
    if plain {
        return v.to_string();
    }
    let mut out = String::with_capacity(v.len() + 2);
    out.push('"');
    for c in v.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push('?'),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A comment's text, its parentheses and escapes made harmless.
fn comment(v: &str) -> String {
    v.chars()
        .map(|c| match c {
            '(' | ')' | '\\' => '_',
            c if c.is_control() => '?',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_authserv_id() {
        for (value, id) in [
            (&b" mx.example.org; spf=pass"[..], Some("mx.example.org")),
            (
                b" (a (nested) comment) mx.example.org 1; none",
                Some("mx.example.org"),
            ),
            (b"\r\n\tMX.Example.Org;dkim=pass", Some("MX.Example.Org")),
            (b" \"mx.exa\\\"mple\"; none", Some("mx.exa\"mple")),
            (b" \"unterminated", None),
            (b" (only a comment", None),
            (b"", None),
            (b";", None),
        ] {
            assert_eq!(authserv_id(value).as_deref(), id, "{value:?}");
        }
        assert!(is_ours(b" mx.EXAMPLE.org; spf=fail", "mx.example.org"));
        assert!(!is_ours(
            b" mx.example.org.evil; spf=pass",
            "mx.example.org"
        ));
        // Deep comments cost one pass.
        let deep = [b"(".repeat(100_000), b"x".to_vec()].concat();
        assert_eq!(authserv_id(&deep), None);
    }

    #[test]
    fn writes_the_field() {
        let f = field(
            "mx.example.org",
            &[
                Method::new("spf", "pass")
                    .with("smtp.mailfrom", "a@b.example"),
                Method::new("dkim", "fail")
                    .because("body hash did not verify")
                    .with("header.d", "b.example")
                    .with("header.b", "ab/+c=d"),
                Method::new("iprev", "pass")
                    .because("mx(1).b.example")
                    .with("policy.iprev", "192.0.2.1"),
                Method::new("spf", "none")
                    .with("smtp.helo", "bad\r\nX-Injected: 1"),
            ],
        );
        assert_eq!(
            f,
            "Authentication-Results: mx.example.org;\n\tspf=pass smtp.mailfrom=a@b.example;\n\t\
             dkim=fail (body hash did not verify) header.d=b.example header.b=ab/+c=d;\n\t\
             iprev=pass (mx_1_.b.example) policy.iprev=192.0.2.1;\n\t\
             spf=none smtp.helo=\"bad??X-Injected: 1\"\n"
        );
        assert_eq!(field("h", &[]), "Authentication-Results: h; none\n");
        assert_eq!(pvalue("\"x\"@y"), "\"\\\"x\\\"@y\"");
    }
}
