//! Writing IMAP responses: tagged and untagged lines, strings as atoms,
//! quoted strings or literals as their octets need.
use super::types::No;

/// Writes `text` followed by CRLF.
pub fn line(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Writes `tag status [code] text CRLF`.
pub fn tagged(out: &mut Vec<u8>, tag: &[u8], status: &str, text: &str) {
    out.extend_from_slice(tag);
    out.push(b' ');
    out.extend_from_slice(status.as_bytes());
    out.push(b' ');
    line(out, text);
}

/// Writes a string: quoted if it can be, a literal otherwise.
pub fn string(out: &mut Vec<u8>, s: &[u8]) {
    let quotable = s.len() < 1024
        && s.iter().all(|&b| b >= 0x20 && b != 0x7f && b < 0x80);
    if quotable {
        out.push(b'"');
        for &b in s {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        literal(out, s);
    }
}

/// Writes a literal.
pub fn literal(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(format!("{{{}}}\r\n", s.len()).as_bytes());
    out.extend_from_slice(s);
}

/// Writes NIL or a string.
pub fn nstring(out: &mut Vec<u8>, s: Option<&[u8]>) {
    match s {
        None => out.extend_from_slice(b"NIL"),
        Some(s) => string(out, s),
    }
}

/// Writes a mailbox name (INBOX and plain names unquoted when safe).
pub fn mailbox(out: &mut Vec<u8>, name: &str) {
    string(out, name.as_bytes());
}

/// Writes `tag NO [code] text`.
pub fn tagged_no(out: &mut Vec<u8>, tag: &[u8], no: &No) {
    let text = match no.code {
        Some(c) => format!("[{c}] {}", no.text),
        None => no.text.clone(),
    };
    tagged(out, tag, "NO", &text);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings() {
        let mut out = Vec::new();
        string(&mut out, b"a \"b\"");
        out.push(b' ');
        string(&mut out, b"x\r\ny");
        out.push(b' ');
        nstring(&mut out, None);
        assert_eq!(out, b"\"a \\\"b\\\"\" {4}\r\nx\r\ny NIL");
    }
}
