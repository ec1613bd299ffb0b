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

/// The body hash, fed the body a piece at a time (LF or CRLF lines),
/// with CRLF line ends and trailing empty lines dropped; relaxed makes
/// white space runs one space and drops it at line ends. With a limit
/// (`l=`), only that many canonical octets count. Nothing is buffered:
/// runs of text go to the hash as they are found (a line of a
/// stranger's choosing costs no memory), and only what a line end
/// decides is held back as state (a space, a CR, empty lines).
pub struct BodyHash {
    ctx: Context,
    canon: Canon,
    /// Octets still to hash under `l=`, if any.
    left: Option<u64>,
    /// Canonical octets, counted before any limit (what `l=` leaves
    /// out is reported).
    total: u64,
    /// The current line has text (it is not an empty line).
    text: bool,
    /// Relaxed: white space seen, not yet written (one space, if text
    /// follows on the line).
    space: bool,
    /// A CR last: the line's end if LF follows, else text.
    cr: bool,
    /// Empty lines held back: they count only if more text follows.
    blank: u64,
    /// Canonical octets not yet hashed: the hash takes them a few KiB
    /// at a time (a call per word would cost more than the hashing).
    out: Vec<u8>,
}

/// Text whose white space is already relaxed's: single spaces between
/// words, none at either end (where it would join a neighbouring run),
/// no tabs.
fn spaced_once(piece: &[u8]) -> bool {
    let (Some(&first), Some(&last)) = (piece.first(), piece.last()) else {
        return false;
    };
    if first == b' ' || last == b' ' || memchr::memchr(b'\t', piece).is_some()
    {
        return false;
    }
    memchr::memmem::find(piece, b"  ").is_none()
}

/// `text` without the spaces and tabs at its end.
fn trim_wsp_end(text: &[u8]) -> &[u8] {
    let keep = text
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(0, |at| at + 1);
    &text[..keep]
}

/// What [`BodyHash`] gathers before hashing.
const HASH_BATCH: usize = 8 * 1024;

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
            text: false,
            space: false,
            cr: false,
            blank: 0,
            out: Vec::new(),
        }
    }

    /// More of the body.
    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let lf = memchr::memchr(b'\n', data);
            let piece = &data[..lf.unwrap_or(data.len())];
            self.take(piece, lf.is_some());
            match lf {
                Some(at) => {
                    self.end_line();
                    data = &data[at + 1..];
                }
                None => data = &[],
            }
        }
    }

    /// Part of a line (no LF in it); `ends_line` when an LF follows.
    fn take(&mut self, mut piece: &[u8], ends_line: bool) {
        if piece.is_empty() {
            return;
        }
        if std::mem::take(&mut self.cr) {
            // The CR held back was not the line's end: it is text.
            self.text_run(b"\r");
        }
        if piece.last() == Some(&b'\r') {
            self.cr = true;
            piece = &piece[..piece.len() - 1];
        }
        match self.canon {
            Canon::Simple => {
                if self.text {
                    self.emit(piece);
                } else {
                    self.text_run(piece);
                }
            }
            Canon::Relaxed => {
                if ends_line {
                    // White space at a line's end is dropped anyway.
                    piece = trim_wsp_end(piece);
                }
                if spaced_once(piece) {
                    // Most prose: already canonical, hashed in one go
                    // rather than a word at a time.
                    return self.text_run(piece);
                }
                while !piece.is_empty() {
                    let ws = memchr::memchr2(b' ', b'\t', piece)
                        .unwrap_or(piece.len());
                    self.text_run(&piece[..ws]);
                    let rest = &piece[ws..];
                    let run = rest
                        .iter()
                        .take_while(|&&b| b == b' ' || b == b'\t')
                        .count();
                    if run > 0 {
                        self.space = true;
                    }
                    piece = &rest[run..];
                }
            }
        }
    }

    /// Text (relaxed: no white space in it; simple: anything).
    fn text_run(&mut self, run: &[u8]) {
        if run.is_empty() {
            return;
        }
        if self.canon == Canon::Simple && !self.text {
            // Simple: even white space makes a line non-empty.
            self.flush_blank();
            self.text = true;
            self.emit(run);
            return;
        }
        if !self.text {
            // White space alone does not make a line (its end drops it).
            self.flush_blank();
            self.text = true;
        }
        if std::mem::take(&mut self.space) {
            self.emit(b" ");
        }
        self.emit(run);
    }

    fn end_line(&mut self) {
        // A CR right before LF is part of the line end.
        self.cr = false;
        self.space = false;
        if !std::mem::take(&mut self.text) {
            self.blank += 1;
            return;
        }
        self.emit(b"\r\n");
    }

    fn flush_blank(&mut self) {
        for _ in 0..std::mem::take(&mut self.blank) {
            self.emit(b"\r\n");
            if self.left == Some(0) {
                // Nothing more counts: the rest only adds to the total.
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
        if self.out.len() + data.len() > HASH_BATCH {
            self.ctx.update(&self.out);
            self.out.clear();
            if data.len() > HASH_BATCH {
                return self.ctx.update(data);
            }
        }
        self.out.extend_from_slice(data);
    }

    /// The SHA-256 of the canonical body.
    pub fn finish(self) -> [u8; 32] {
        self.finish_counted().0
    }

    /// The SHA-256 of the canonical body, and the canonical body's whole
    /// length (past any limit).
    pub fn finish_counted(mut self) -> ([u8; 32], u64) {
        if std::mem::take(&mut self.cr) {
            self.text_run(b"\r");
        }
        if self.text {
            // A last line without its line end gets one (RFC 6376 3.4.4).
            self.end_line();
        }
        if self.canon == Canon::Simple && self.total == 0 {
            // Simple: an empty body is one CRLF (3.4.3).
            self.emit(b"\r\n");
        }
        self.ctx.update(&self.out);
        let mut out = [0u8; 32];
        out.copy_from_slice(self.ctx.finish().as_ref());
        (out, self.total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bstr::ByteSlice;

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
        let mut long = vec![b'x'; 3 * 64 * 1024];
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
        // Simple keeps a line of white space; relaxed makes it empty.
        assert_eq!(
            hash_as(Canon::Simple, None, b"a\n \t\n\n"),
            sha(b"a\r\n \t\r\n")
        );
        assert_eq!(
            hash_as(Canon::Relaxed, None, b"a\n \t\n\nb"),
            sha(b"a\r\n\r\n\r\nb\r\n")
        );
        // A CR not before LF is text; split CRLF across pieces is a line end.
        let mut h = BodyHash::new(Canon::Simple, None);
        for piece in [&b"a\r"[..], b"\nb\rc\r", b"\n"] {
            h.update(piece);
        }
        assert_eq!(h.finish(), sha(b"a\r\nb\rc\r\n"));
    }

    /// Relaxed body canonicalization written the plain way (whole
    /// lines), to check the streaming one against.
    fn relaxed_whole(body: &[u8]) -> Vec<u8> {
        let mut lines: Vec<Vec<u8>> = Vec::new();
        let mut segments = body.split(|&b| b == b'\n').peekable();
        while let Some(segment) = segments.next() {
            let last = segments.peek().is_none();
            if last && segment.is_empty() {
                break;
            }
            // A CR before LF is the line end; at the very end, text.
            let line = match (last, segment.strip_suffix(b"\r")) {
                (false, Some(line)) => line,
                _ => segment,
            };
            let mut out = Vec::new();
            let mut space = false;
            for &b in line {
                if b == b' ' || b == b'\t' {
                    space = true;
                    continue;
                }
                if std::mem::take(&mut space) {
                    out.push(b' ');
                }
                out.push(b);
            }
            lines.push(out);
        }
        while lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        lines
            .iter()
            .flat_map(|l| [&l[..], b"\r\n"].concat())
            .collect()
    }

    #[test]
    fn relaxed_streaming_equals_whole_lines() {
        // Bodies from an alphabet rich in white space and line ends,
        // fed in pieces of several sizes: prose-like lines take the
        // one-go path, the rest the word-at-a-time one.
        let alphabet = b"ab  \t\r\n.xy z";
        let mut seed: u32 = 7;
        for round in 0..400 {
            let len = (round * 7) % 300;
            let body: Vec<u8> = (0..len)
                .map(|_| {
                    seed =
                        seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    alphabet[(seed >> 16) as usize % alphabet.len()]
                })
                .collect();
            let want = sha(&relaxed_whole(&body));
            for piece in [1usize, 3, 17, 300] {
                let mut h = BodyHash::new(Canon::Relaxed, None);
                for c in body.chunks(piece) {
                    h.update(c);
                }
                assert_eq!(
                    h.finish(),
                    want,
                    "{:?} in pieces of {piece}",
                    body.as_bstr()
                );
            }
        }
    }
}
