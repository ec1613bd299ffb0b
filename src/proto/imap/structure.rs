//! ENVELOPE, BODY and BODYSTRUCTURE (RFC 9051 7.5.2) from our MIME
//! parser's parts, addresses parsed the RFC 5322 way (groups, routes,
//! quoted names, a comment as the name when there is no phrase).

use super::mime::{Part, fields};
use super::response::{nstring, string};

/// Writes `(date subject from sender reply-to to cc bcc in-reply-to
/// message-id)` for the header at `head`.
pub fn envelope(head: &[u8], out: &mut Vec<u8>) {
    let fs = fields(head);
    let get = |name: &str| {
        fs.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| trim(v))
    };
    out.push(b'(');
    nstring(out, get("date").filter(|v| !v.is_empty()));
    out.push(b' ');
    nstring(out, get("subject"));
    // A field given more than once (two Cc: lines) counts as one list,
    // as mail readers show it.
    let all = |name: &str| -> Vec<Address> {
        fs.iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| addresses(trim(v)))
            .collect()
    };
    let from = all("from");
    for name in ["from", "sender", "reply-to", "to", "cc", "bcc"] {
        out.push(b' ');
        let list = match name {
            "from" => from.clone(),
            "sender" | "reply-to" => {
                let l = all(name);
                if l.is_empty() { from.clone() } else { l }
            }
            _ => all(name),
        };
        write_addresses(&list, out);
    }
    out.push(b' ');
    nstring(out, get("in-reply-to").filter(|v| !v.is_empty()));
    out.push(b' ');
    nstring(out, get("message-id").filter(|v| !v.is_empty()));
    out.push(b')');
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &v[start..end]
}

/// One element of an address list: an address, or a group's start
/// (`host` None, `mailbox` the group name) or end (all None).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Address {
    /// The display name.
    pub name: Option<Vec<u8>>,
    /// The obsolete source route.
    pub adl: Option<Vec<u8>>,
    /// The local part (or group name).
    pub mailbox: Option<Vec<u8>>,
    /// The domain.
    pub host: Option<Vec<u8>>,
}

fn write_addresses(list: &[Address], out: &mut Vec<u8>) {
    if list.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for a in list {
        out.push(b'(');
        nstring(out, a.name.as_deref());
        out.push(b' ');
        nstring(out, a.adl.as_deref());
        out.push(b' ');
        nstring(out, a.mailbox.as_deref());
        out.push(b' ');
        nstring(out, a.host.as_deref());
        out.push(b')');
    }
    out.push(b')');
}

/// A token of an address header.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(Vec<u8>),
    Quoted(Vec<u8>),
    Comment(Vec<u8>),
    Special(u8),
}

fn tokens(v: &[u8]) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let c = v[i];
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'"' => {
                let mut s = Vec::new();
                i += 1;
                while i < v.len() && v[i] != b'"' {
                    if v[i] == b'\\' && i + 1 < v.len() {
                        i += 1;
                    }
                    s.push(v[i]);
                    i += 1;
                }
                i += 1;
                out.push(Tok::Quoted(s));
            }
            b'(' => {
                let mut depth = 0;
                let mut s = Vec::new();
                while i < v.len() {
                    match v[i] {
                        b'(' => {
                            if depth > 0 {
                                s.push(b'(');
                            }
                            depth += 1;
                        }
                        b')' => {
                            depth -= 1;
                            if depth == 0 {
                                i += 1;
                                break;
                            }
                            s.push(b')');
                        }
                        b'\\' if i + 1 < v.len() => {
                            i += 1;
                            s.push(v[i]);
                        }
                        b => s.push(b),
                    }
                    i += 1;
                }
                out.push(Tok::Comment(s));
            }
            b'<' | b'>' | b'@' | b',' | b';' | b':' | b'.' | b'[' | b']' => {
                out.push(Tok::Special(c));
                i += 1;
            }
            _ => {
                let start = i;
                while i < v.len() && !b" \t\r\n\"(<>@,;:.[]".contains(&v[i]) {
                    i += 1;
                }
                out.push(Tok::Word(v[start..i].to_vec()));
            }
        }
    }
    out
}

/// Parses an address list header value.
pub fn addresses(v: &[u8]) -> Vec<Address> {
    let toks = tokens(v);
    let mut out = Vec::new();
    let mut i = 0;
    let mut in_group = false;
    while i < toks.len() {
        // One mailbox, group start, or group end, up to , ; or :
        let start = i;
        let mut depth = 0;
        // A `<` in this piece makes a later `:` part of a route; kept as
        // we go, so a piece of many colons is read once, not per colon.
        let mut route_start = false;
        while i < toks.len() {
            match &toks[i] {
                Tok::Special(b'<') => {
                    depth += 1;
                    route_start = true;
                }
                Tok::Special(b'>') => depth -= 1,
                Tok::Special(b',') | Tok::Special(b';') if depth <= 0 => break,
                Tok::Special(b':')
                    if depth <= 0 && !in_group && !route_start =>
                {
                    break;
                }
                _ => {}
            }
            i += 1;
        }
        let piece = &toks[start..i];
        let sep = toks.get(i).cloned();
        i += 1;
        match sep {
            Some(Tok::Special(b':')) => {
                out.push(Address {
                    mailbox: Some(phrase(piece)),
                    ..Address::default()
                });
                in_group = true;
                continue;
            }
            Some(Tok::Special(b';')) => {
                if let Some(a) = mailbox(piece) {
                    out.push(a);
                }
                if in_group {
                    out.push(Address::default());
                    in_group = false;
                }
                continue;
            }
            _ => {}
        }
        if let Some(a) = mailbox(piece) {
            out.push(a);
        }
    }
    if in_group {
        out.push(Address::default());
    }
    out
}

/// The words of a phrase joined by single spaces.
fn phrase(toks: &[Tok]) -> Vec<u8> {
    let mut out = Vec::new();
    for t in toks {
        let w = match t {
            Tok::Word(w) | Tok::Quoted(w) => w.as_slice(),
            Tok::Special(b'.') => {
                out.push(b'.');
                continue;
            }
            _ => continue,
        };
        if !out.is_empty() && out.last() != Some(&b'.') {
            out.push(b' ');
        }
        out.extend_from_slice(w);
    }
    out
}

/// An addr-spec's text from tokens (comments dropped).
fn spec(toks: &[Tok]) -> Vec<u8> {
    let mut out = Vec::new();
    for t in toks {
        match t {
            Tok::Word(w) => out.extend_from_slice(w),
            Tok::Quoted(w) => {
                out.push(b'"');
                out.extend_from_slice(w);
                out.push(b'"');
            }
            Tok::Special(c) => out.push(*c),
            Tok::Comment(_) => {}
        }
    }
    out
}

fn mailbox(toks: &[Tok]) -> Option<Address> {
    if toks.iter().all(|t| matches!(t, Tok::Comment(_))) {
        return None;
    }
    let lt = toks.iter().position(|t| *t == Tok::Special(b'<'));
    let (name, inner) = match lt {
        Some(l) => {
            let gt = toks[l..]
                .iter()
                .position(|t| *t == Tok::Special(b'>'))
                .map_or(toks.len(), |g| l + g);
            let name = phrase(&toks[..l]);
            (
                if name.is_empty() { None } else { Some(name) },
                &toks[l + 1..gt],
            )
        }
        None => {
            // A comment standing for the name: its words, one space
            // between them, as a phrase's are.
            let comment = toks.iter().rev().find_map(|t| match t {
                Tok::Comment(c) if !c.is_empty() => Some(
                    c.split(|b| b.is_ascii_whitespace())
                        .filter(|w| !w.is_empty())
                        .collect::<Vec<_>>()
                        .join(&b' '),
                ),
                _ => None,
            });
            (comment.filter(|c| !c.is_empty()), toks)
        }
    };
    let mut text = spec(inner);
    let mut adl = None;
    if text.first() == Some(&b'@')
        && let Some(colon) = text.iter().position(|&b| b == b':')
    {
        adl = Some(text[..colon].to_vec());
        text = text[colon + 1..].to_vec();
    }
    let (mbox, host) = match text.iter().rposition(|&b| b == b'@') {
        Some(at) => (text[..at].to_vec(), text[at + 1..].to_vec()),
        None => (text.clone(), Vec::new()),
    };
    let mbox = match (mbox.first(), mbox.last()) {
        (Some(b'"'), Some(b'"')) if mbox.len() >= 2 => {
            mbox[1..mbox.len() - 1].to_vec()
        }
        _ => mbox,
    };
    Some(Address {
        name,
        adl,
        mailbox: Some(mbox),
        host: Some(host),
    })
}

/// Writes BODYSTRUCTURE (`ext`) or BODY for a part.
pub fn body(msg: &[u8], p: &Part, ext: bool, out: &mut Vec<u8>) {
    out.push(b'(');
    if p.is_multipart() {
        for c in &p.children {
            body(msg, c, ext, out);
        }
        out.push(b' ');
        string(out, p.kind.1.as_bytes());
        if ext {
            out.push(b' ');
            params(&p.params, out);
            extensions(p, out);
        }
        out.push(b')');
        return;
    }
    string(out, p.kind.0.as_bytes());
    out.push(b' ');
    string(out, p.kind.1.as_bytes());
    out.push(b' ');
    // RFC 2046 4.1.2: a text part without a charset is US-ASCII.
    let text = p.kind.0.eq_ignore_ascii_case("text");
    if text && p.param("charset").is_none() {
        let mut with = p.params.clone();
        with.push(("charset".to_string(), "us-ascii".to_string()));
        params(&with, out);
    } else {
        params(&p.params, out);
    }
    out.push(b' ');
    nstring(out, p.id.as_deref().map(str::as_bytes));
    out.push(b' ');
    nstring(out, p.description.as_deref().map(str::as_bytes));
    out.push(b' ');
    string(out, p.encoding.as_deref().unwrap_or("7bit").as_bytes());
    out.extend_from_slice(format!(" {}", p.body.1 - p.body.0).as_bytes());
    if let Some(m) = &p.message {
        out.push(b' ');
        envelope(&msg[m.header.0..m.header.1], out);
        out.push(b' ');
        body(msg, m, ext, out);
        out.extend_from_slice(format!(" {}", p.lines).as_bytes());
    } else if p.kind.0.eq_ignore_ascii_case("text") {
        out.extend_from_slice(format!(" {}", p.lines).as_bytes());
    }
    if ext {
        out.push(b' ');
        nstring(out, p.md5.as_deref().map(str::as_bytes));
        extensions(p, out);
    }
    out.push(b')');
}

fn params(list: &[(String, String)], out: &mut Vec<u8>) {
    if list.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (i, (n, v)) in list.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        string(out, n.as_bytes());
        out.push(b' ');
        string(out, v.as_bytes());
    }
    out.push(b')');
}

/// Disposition, language, location.
fn extensions(p: &Part, out: &mut Vec<u8>) {
    out.push(b' ');
    match &p.disposition {
        Some((d, ps)) => {
            out.push(b'(');
            string(out, d.as_bytes());
            out.push(b' ');
            params(ps, out);
            out.push(b')');
        }
        None => out.extend_from_slice(b"NIL"),
    }
    out.push(b' ');
    match p.language.as_slice() {
        [] => out.extend_from_slice(b"NIL"),
        [one] => string(out, one.as_bytes()),
        many => {
            out.push(b'(');
            for (i, l) in many.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                string(out, l.as_bytes());
            }
            out.push(b')');
        }
    }
    out.push(b' ');
    nstring(out, p.location.as_deref().map(str::as_bytes));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(head: &str) -> String {
        let mut out = Vec::new();
        envelope(head.as_bytes(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn envelopes() {
        assert_eq!(
            env(
                "From: user@domain (Real Name)\r\nTo: group: g1@d1.org, g2@d2.org;, group2: g3@d3.org;\r\nCc: group:;, group2: (foo) ;\r\n\r\n"
            ),
            "(NIL NIL ((\"Real Name\" NIL \"user\" \"domain\")) ((\"Real Name\" NIL \"user\" \"domain\")) ((\"Real Name\" NIL \"user\" \"domain\")) \
             ((NIL NIL \"group\" NIL)(NIL NIL \"g1\" \"d1.org\")(NIL NIL \"g2\" \"d2.org\")(NIL NIL NIL NIL)(NIL NIL \"group2\" NIL)(NIL NIL \"g3\" \"d3.org\")(NIL NIL NIL NIL)) \
             ((NIL NIL \"group\" NIL)(NIL NIL NIL NIL)(NIL NIL \"group2\" NIL)(NIL NIL NIL NIL)) NIL NIL NIL)"
        );
        assert!(
            env("From: <@route:user@domain>\r\n\r\n")
                .contains("((NIL \"@route\" \"user\" \"domain\"))")
        );
        assert!(
            env("From: \"Q, R\" <a@b>\r\n\r\n")
                .contains("((\"Q, R\" NIL \"a\" \"b\"))")
        );
    }

    #[test]
    fn nasty_addresses() {
        for v in [
            "", ",,,", "<", ">", "@", ":;", "a:b:c;", "\"", "(((", "<@a:>",
        ] {
            addresses(v.as_bytes());
        }
        // Colons after a `<`: once rescanned the piece at each one.
        let v = format!("{}<>{}", ".".repeat(200_000), ":".repeat(200_000));
        assert_eq!(addresses(v.as_bytes()).len(), 1);
        let v = format!("g:{}", "a@b,".repeat(100_000));
        assert_eq!(addresses(v.as_bytes()).len(), 100_002);
        let v = "(".repeat(200_000) + &"\"".repeat(200_000);
        addresses(v.as_bytes());
    }

    /// ENVELOPE reads at most `MAX_FIELD` of a field.
    #[test]
    fn fields_are_capped() {
        let head = format!("To: {}\r\n\r\n", "a@b, ".repeat(100_000));
        let n = env(&head).matches("\"a\" \"b\"").count();
        assert!(n > 1000 && n <= super::super::mime::MAX_FIELD / 5, "{n}");
    }
}
