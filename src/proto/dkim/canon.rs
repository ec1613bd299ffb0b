//! DKIM's relaxed canonicalization (RFC 6376 3.4.2 and 3.4.4), over
//! messages stored with LF line ends (hashed as CRLF).

use ring::digest::{Context, SHA256};

/// A header field, relaxed: name lower-cased, folding undone, runs of
/// white space one space, none at the ends or around the colon; CRLF at
/// the end. `field` is the whole field as written (continuation lines
/// included, line ends LF or CRLF).
pub fn header(field: &[u8]) -> Vec<u8> {
    let colon = field.iter().position(|&b| b == b':').unwrap_or(field.len());
    let name: Vec<u8> = field[..colon]
        .iter()
        .filter(|b| !b.is_ascii_whitespace())
        .map(u8::to_ascii_lowercase)
        .collect();
    let value = field.get(colon + 1..).unwrap_or_default();
    let mut out = name;
    out.push(b':');
    let mut space = false;
    let mut started = false;
    for &b in value {
        if b == b'\r' || b == b'\n' {
            continue;
        }
        if b == b' ' || b == b'\t' {
            space = true;
            continue;
        }
        if space && started {
            out.push(b' ');
        }
        space = false;
        started = true;
        out.push(b);
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// The body hash, fed the body a piece at a time (LF or CRLF lines):
/// white space runs one space, none at line ends, trailing empty lines
/// dropped, CRLF line ends.
pub struct BodyHash {
    ctx: Context,
    /// The line not yet ended.
    line: Vec<u8>,
    /// Empty lines held back: they count only if more text follows.
    blank: usize,
}

impl Default for BodyHash {
    fn default() -> Self {
        BodyHash {
            ctx: Context::new(&SHA256),
            line: Vec::new(),
            blank: 0,
        }
    }
}

impl BodyHash {
    /// More of the body.
    pub fn update(&mut self, mut data: &[u8]) {
        while let Some(lf) = memchr::memchr(b'\n', data) {
            self.line.extend_from_slice(&data[..lf]);
            self.end_line();
            data = &data[lf + 1..];
        }
        self.line.extend_from_slice(data);
    }

    fn end_line(&mut self) {
        if self.line.last() == Some(&b'\r') {
            self.line.pop();
        }
        let mut out = Vec::with_capacity(self.line.len() + 2);
        let mut space = false;
        for &b in &self.line {
            if b == b' ' || b == b'\t' {
                space = true;
                continue;
            }
            if space {
                out.push(b' ');
            }
            space = false;
            out.push(b);
        }
        self.line.clear();
        if out.is_empty() {
            self.blank += 1;
            return;
        }
        for _ in 0..std::mem::take(&mut self.blank) {
            self.ctx.update(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        self.ctx.update(&out);
    }

    /// The SHA-256 of the canonical body.
    pub fn finish(mut self) -> [u8; 32] {
        if !self.line.is_empty() {
            // A last line without its line end gets one (RFC 6376 3.4.4).
            self.end_line();
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(self.ctx.finish().as_ref());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(body: &[u8]) -> [u8; 32] {
        let mut h = BodyHash::default();
        h.update(body);
        h.finish()
    }

    fn sha(data: &[u8]) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(ring::digest::digest(&SHA256, data).as_ref());
        out
    }

    #[test]
    fn rfc6376_examples() {
        // RFC 6376 3.4.5.
        assert_eq!(header(b"A: X\r\n"), b"a:X\r\n");
        assert_eq!(header(b"B : Y\t\r\n\tZ  \r\n"), b"b:Y Z\r\n");
        assert_eq!(hash(b" C \r\nD \t E\r\n\r\n\r\n"), sha(b" C\r\nD E\r\n"));
        // LF storage hashes as CRLF; pieces may split anywhere.
        let mut h = BodyHash::default();
        for piece in [&b" C "[..], b"\nD \t", b" E\n", b"\n", b"\n"] {
            h.update(piece);
        }
        assert_eq!(h.finish(), sha(b" C\r\nD E\r\n"));
        // Empty bodies hash as nothing; a last line gets its CRLF.
        assert_eq!(hash(b""), sha(b""));
        assert_eq!(hash(b"\n\n"), sha(b""));
        assert_eq!(hash(b"x"), sha(b"x\r\n"));
    }
}
