//! DKIM's canonicalizations (RFC 6376 3.4), simple and relaxed, over
//! messages stored with LF line ends (hashed as CRLF): the signer uses
//! relaxed, the verifier whichever a signature names.

use ring::digest::{Context, SHA256};

/// How a signature canonicalizes its header or its body (`c=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Canon {
    Simple,
    Relaxed,
}

/// A header field as `canon` hashes it (CRLF at the end).
pub fn header_as(canon: Canon, field: &[u8]) -> Vec<u8> {
    match canon {
        Canon::Relaxed => header(field),
        Canon::Simple => {
            // As written; stored LF line ends go back to CRLF.
            let mut out = Vec::with_capacity(field.len() + 8);
            for line in field.split_inclusive(|&b| b == b'\n') {
                let text = line.strip_suffix(b"\n").unwrap_or(line);
                let text = text.strip_suffix(b"\r").unwrap_or(text);
                out.extend_from_slice(text);
                out.extend_from_slice(b"\r\n");
            }
            out
        }
    }
}

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

/// A line longer than this is hashed in pieces as it comes (relaxed
/// keeps the white space state across pieces): a line of a stranger's
/// choosing never grows a buffer past it.
const MAX_HELD_LINE: usize = 64 * 1024;

/// The body hash, fed the body a piece at a time (LF or CRLF lines),
/// with CRLF line ends and trailing empty lines dropped; relaxed makes
/// white space runs one space and drops it at line ends. With a limit
/// (`l=`), only that many canonical octets count.
pub struct BodyHash {
    ctx: Context,
    canon: Canon,
    /// Octets still to hash under `l=`, if any.
    left: Option<u64>,
    /// Canonical octets, counted before any limit (what `l=` leaves
    /// out is reported).
    total: u64,
    /// The line not yet ended (relaxed: canonical so far).
    line: Vec<u8>,
    /// Relaxed: white space seen and not yet written.
    space: bool,
    /// Part of the current line was hashed already (a long line).
    partial: bool,
    /// Empty lines held back: they count only if more text follows.
    blank: u64,
}

impl Default for BodyHash {
    fn default() -> Self {
        BodyHash::new(Canon::Relaxed, None)
    }
}

impl BodyHash {
    /// A hash canonicalizing with `canon`, of at most `limit` octets.
    pub fn new(canon: Canon, limit: Option<u64>) -> BodyHash {
        BodyHash {
            ctx: Context::new(&SHA256),
            canon,
            left: limit,
            total: 0,
            line: Vec::new(),
            space: false,
            partial: false,
            blank: 0,
        }
    }

    /// More of the body.
    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let lf = memchr::memchr(b'\n', data);
            let piece = &data[..lf.unwrap_or(data.len())];
            self.take(piece);
            match lf {
                Some(at) => {
                    self.end_line();
                    data = &data[at + 1..];
                }
                None => data = &[],
            }
        }
    }

    /// Part of a line.
    fn take(&mut self, piece: &[u8]) {
        match self.canon {
            Canon::Simple => self.line.extend_from_slice(piece),
            Canon::Relaxed => {
                for &b in piece {
                    if b == b' ' || b == b'\t' {
                        self.space = true;
                        continue;
                    }
                    if self.space && (b != b'\r') {
                        self.line.push(b' ');
                    }
                    self.space = false;
                    self.line.push(b);
                }
            }
        }
        if self.line.len() > MAX_HELD_LINE {
            // Not empty, and not its end: what it holds so far counts.
            // A CR last may be the line's end, so it stays.
            let keep = usize::from(self.line.last() == Some(&b'\r'));
            let upto = self.line.len() - keep;
            let head: Vec<u8> = self.line.drain(..upto).collect();
            self.flush_blank();
            self.emit(&head);
            self.partial = true;
        }
    }

    fn end_line(&mut self) {
        if self.line.last() == Some(&b'\r') {
            self.line.pop();
        }
        // Relaxed drops white space at a line's end.
        self.space = false;
        if self.line.is_empty() && !self.partial {
            self.blank += 1;
            return;
        }
        self.flush_blank();
        let line = std::mem::take(&mut self.line);
        self.emit(&line);
        self.emit(b"\r\n");
        self.line = line;
        self.line.clear();
        self.partial = false;
    }

    fn flush_blank(&mut self) {
        for _ in 0..std::mem::take(&mut self.blank) {
            self.emit(b"\r\n");
            if self.left == Some(0) {
                // Nothing more counts: stop walking the held lines.
                self.blank = 0;
                break;
            }
        }
    }

    fn emit(&mut self, data: &[u8]) {
        self.total += data.len() as u64;
        let data = match self.left {
            Some(left) => {
                let n = (data.len() as u64).min(left) as usize;
                self.left = Some(left - n as u64);
                &data[..n]
            }
            None => data,
        };
        self.ctx.update(data);
    }

    /// The SHA-256 of the canonical body.
    pub fn finish(self) -> [u8; 32] {
        self.finish_counted().0
    }

    /// The SHA-256 of the canonical body, and the canonical body's whole
    /// length (past any limit).
    pub fn finish_counted(mut self) -> ([u8; 32], u64) {
        if !self.line.is_empty() || self.partial {
            // A last line without its line end gets one (RFC 6376 3.4.4).
            self.end_line();
        }
        if self.canon == Canon::Simple && self.total == 0 {
            // Simple: an empty body is one CRLF (3.4.3).
            self.blank = 0;
            self.emit(b"\r\n");
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(self.ctx.finish().as_ref());
        (out, self.total)
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

    fn hash_as(canon: Canon, limit: Option<u64>, body: &[u8]) -> [u8; 32] {
        let mut h = BodyHash::new(canon, limit);
        h.update(body);
        h.finish()
    }

    #[test]
    fn simple_and_limited() {
        let s = |b: &[u8]| hash_as(Canon::Simple, None, b);
        assert_eq!(s(b" C \r\nD \t E\r\n\r\n\r\n"), sha(b" C \r\nD \t E\r\n"));
        assert_eq!(s(b""), sha(b"\r\n"));
        assert_eq!(s(b"\n\n"), sha(b"\r\n"));
        assert_eq!(s(b"a  \n"), sha(b"a  \r\n"));
        // l= counts canonical octets.
        assert_eq!(
            hash_as(Canon::Relaxed, Some(3), b"ab  \ncd\n"),
            sha(b"ab\r")
        );
        assert_eq!(hash_as(Canon::Simple, Some(0), b"abc\n"), sha(b""));
        let mut counted = BodyHash::new(Canon::Relaxed, Some(3));
        counted.update(b"ab  \ncd\n\n");
        assert_eq!(counted.finish_counted(), (sha(b"ab\r"), 8));
        // Header fields, simple: as written, CRLF line ends.
        assert_eq!(
            header_as(Canon::Simple, b"B : Y\t\n\tZ  \n"),
            b"B : Y\t\r\n\tZ  \r\n"
        );
    }

    #[test]
    fn long_lines_hash_as_short_ones_would() {
        // A line past the held limit gives the hash it would whole.
        let mut long = vec![b'x'; MAX_HELD_LINE * 3];
        long[100] = b' ';
        long[101] = b'\t';
        let mut body = long.clone();
        body.extend_from_slice(b"  \r\n\n\nend\n");
        let mut expect = long.clone();
        expect.remove(101);
        expect.extend_from_slice(b"\r\n\r\n\r\nend\r\n");
        for piece in [7usize, 4096, body.len()] {
            let mut h = BodyHash::new(Canon::Relaxed, None);
            for c in body.chunks(piece) {
                h.update(c);
            }
            assert_eq!(h.finish(), sha(&expect), "pieces of {piece}");
        }
        assert!(BodyHash::default().line.capacity() == 0);
    }
}
