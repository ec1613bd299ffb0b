//! Message body scanning: [`DotReader`] finds the end of DATA and removes
//! dot-stuffing (RFC 5321 4.5.2); [`Body`] passes the octets on to a
//! [`Sink`], turning CRLF into the LF that Maildir and mbox files use,
//! and notes every flaw that must refuse the message once it has all
//! arrived. The body itself is never held here: the loop's sink spools
//! it to disk past a small threshold, so memory stays bounded.
//!
//! Both keep their state between calls, so input may be split anywhere.

use memchr::{memchr, memchr2};

use super::Envelope;

/// RFC 5321 4.5.3.1.6: a text line is at most 1000 octets, CRLF included.
pub const MAX_TEXT_LINE: usize = 1000;

/// What was wrong with a message; each refuses it at the end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flaws {
    /// More octets than the size limit (RFC 1870: 552 5.3.4).
    pub too_big: bool,
    /// A line over [`MAX_TEXT_LINE`].
    pub long_line: bool,
    /// A CR or LF not part of a CRLF pair (RFC 5321 2.3.8).
    pub bare_newline: bool,
}

/// Where a message's octets (LF line ends) go as they arrive: a
/// `Vec<u8>` in tests and fuzzers, a spool in the server.
pub trait Sink {
    /// A message begins: forget any earlier one. The server's spool
    /// writes the trace headers for `envelope` (its size still 0) first.
    fn begin(&mut self, envelope: &Envelope);
    /// Takes the next octets of the message.
    fn write(&mut self, bytes: &[u8]);
    /// Forgets everything written: the message will be refused.
    fn discard(&mut self);
}

impl Sink for Vec<u8> {
    fn begin(&mut self, _: &Envelope) {
        self.clear();
    }

    fn write(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }

    fn discard(&mut self) {
        *self = Vec::new();
    }
}

/// RFC 5321 6.3 leaves loop detection to us; 50 hops is Postfix's and
/// Sendmail's threshold too.
pub const MAX_RECEIVED: usize = 50;

/// The scanner of one message's body, in LF line ends.
#[derive(Debug)]
pub struct Body {
    /// Octets as sent, CRLF counting two (what SIZE measures).
    size: u64,
    limit: u64,
    line_len: usize,
    cr_pending: bool,
    flaws: Flaws,
    headers: HeaderScan,
}

/// Counts `Received:` fields while the header section lasts, from each
/// line's first octets (the only part that decides).
#[derive(Debug, Default)]
struct HeaderScan {
    done: bool,
    start: [u8; 9],
    start_len: usize,
    received: usize,
}

impl HeaderScan {
    fn text(&mut self, bytes: &[u8]) {
        let room = self.start.len() - self.start_len;
        let n = room.min(bytes.len());
        self.start[self.start_len..self.start_len + n]
            .copy_from_slice(&bytes[..n]);
        self.start_len += n;
    }

    fn end_line(&mut self) {
        if self.done {
            return;
        }
        if self.start_len == 0 {
            // The blank line: the body begins.
            self.done = true;
        } else if self.start[..self.start_len]
            .eq_ignore_ascii_case(b"Received:")
        {
            self.received += 1;
        }
        self.start_len = 0;
    }
}

impl Body {
    /// An empty body that refuses to hold more than `limit` octets.
    pub fn new(limit: u64) -> Self {
        Body {
            size: 0,
            limit,
            line_len: 0,
            cr_pending: false,
            flaws: Flaws::default(),
            headers: HeaderScan::default(),
        }
    }

    /// Adds octets as they came off the wire (after dot-unstuffing).
    pub fn push(&mut self, mut bytes: &[u8], sink: &mut dyn Sink) {
        while !bytes.is_empty() {
            if self.cr_pending {
                self.cr_pending = false;
                if bytes[0] == b'\n' {
                    self.end_line(sink);
                    bytes = &bytes[1..];
                    continue;
                }
                self.flaws.bare_newline = true;
                self.text(b"\r", sink);
            }
            match memchr2(b'\r', b'\n', bytes) {
                None => {
                    self.text(bytes, sink);
                    return;
                }
                Some(i) => {
                    self.text(&bytes[..i], sink);
                    if bytes[i] == b'\r' {
                        self.cr_pending = true;
                    } else {
                        self.flaws.bare_newline = true;
                        self.end_line(sink);
                    }
                    bytes = &bytes[i + 1..];
                }
            }
        }
    }

    fn text(&mut self, bytes: &[u8], sink: &mut dyn Sink) {
        if bytes.is_empty() {
            return;
        }
        self.line_len += bytes.len();
        if self.line_len + 2 > MAX_TEXT_LINE {
            self.flaws.long_line = true;
        }
        if !self.headers.done {
            self.headers.text(bytes);
        }
        self.grow(bytes.len() as u64, sink);
        if !self.flaws.too_big {
            sink.write(bytes);
        }
    }

    fn end_line(&mut self, sink: &mut dyn Sink) {
        self.line_len = 0;
        self.headers.end_line();
        self.grow(2, sink);
        if !self.flaws.too_big {
            sink.write(b"\n");
        }
    }

    fn grow(&mut self, n: u64, sink: &mut dyn Sink) {
        self.size += n;
        if self.size > self.limit && !self.flaws.too_big {
            self.flaws.too_big = true;
            // Keep counting, stop holding: the message will be refused.
            sink.discard();
        }
    }

    /// Ends the body: a CR left at the very end was bare.
    pub fn finish(mut self, sink: &mut dyn Sink) -> Flaws {
        if self.cr_pending {
            self.flaws.bare_newline = true;
            self.text(b"\r", sink);
        }
        self.flaws
    }

    /// `Received:` fields in the header section so far (a mail loop
    /// shows as too many).
    pub fn received(&self) -> usize {
        self.headers.received
    }

    /// Octets received so far, as sent.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The flaws seen so far.
    pub fn flaws(&self) -> Flaws {
        self.flaws
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DotState {
    /// Just after a CRLF (or at the start): a dot here is special.
    LineStart,
    /// Saw a dot at line start.
    Dot,
    /// Saw `.` CR at line start.
    DotCr,
    /// Inside a line.
    Text,
    /// Inside a line, the last octet was CR.
    TextCr,
}

/// Finds CRLF.CRLF, the end of DATA, and undoes dot-stuffing. Only a dot
/// after a real CRLF counts: `LF.LF` and `CR.CR` are data (and flaws),
/// which defeats SMTP smuggling.
#[derive(Debug)]
pub struct DotReader {
    state: DotState,
}

impl Default for DotReader {
    fn default() -> Self {
        Self::new()
    }
}

impl DotReader {
    /// A reader at the start of the message.
    pub fn new() -> Self {
        DotReader {
            state: DotState::LineStart,
        }
    }

    /// Feeds `input` into `body`. Returns the octets consumed and whether
    /// the terminating `.CRLF` was among them.
    pub fn feed(
        &mut self,
        input: &[u8],
        body: &mut Body,
        sink: &mut dyn Sink,
    ) -> (usize, bool) {
        let mut i = 0;
        while i < input.len() {
            match self.state {
                DotState::LineStart => {
                    if input[i] == b'.' {
                        self.state = DotState::Dot;
                        i += 1;
                    } else {
                        self.state = DotState::Text;
                    }
                }
                DotState::Dot => {
                    if input[i] == b'\r' {
                        self.state = DotState::DotCr;
                        i += 1;
                    } else {
                        // RFC 5321 4.5.2: drop the leading dot.
                        self.state = DotState::Text;
                    }
                }
                DotState::DotCr => {
                    if input[i] == b'\n' {
                        self.state = DotState::LineStart;
                        return (i + 1, true);
                    }
                    body.push(b"\r", sink);
                    self.state = DotState::TextCr;
                }
                DotState::Text | DotState::TextCr => {
                    i += self.scan_text(&input[i..], body, sink);
                }
            }
        }
        (i, false)
    }

    /// Passes text through up to and including the next line end.
    fn scan_text(
        &mut self,
        input: &[u8],
        body: &mut Body,
        sink: &mut dyn Sink,
    ) -> usize {
        if self.state == DotState::TextCr && input[0] == b'\n' {
            body.push(b"\n", sink);
            self.state = DotState::LineStart;
            return 1;
        }
        let Some(lf) = memchr(b'\n', input) else {
            body.push(input, sink);
            self.state = if input.last() == Some(&b'\r') {
                DotState::TextCr
            } else {
                DotState::Text
            };
            return input.len();
        };
        body.push(&input[..=lf], sink);
        let crlf = lf > 0 && input[lf - 1] == b'\r';
        self.state = if crlf {
            DotState::LineStart
        } else {
            DotState::Text
        };
        lf + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `input` through a DotReader in chunks of `size` octets.
    fn read(input: &[u8], size: usize) -> (usize, bool, Vec<u8>, Flaws) {
        let mut reader = DotReader::new();
        let mut body = Body::new(1 << 20);
        let mut data = Vec::new();
        let mut used = 0;
        let mut done = false;
        for chunk in input.chunks(size) {
            let (n, end) = reader.feed(chunk, &mut body, &mut data);
            used += n;
            if end {
                done = true;
                break;
            }
        }
        let flaws = body.finish(&mut data);
        (used, done, data, flaws)
    }

    fn all_splits(input: &[u8]) -> (usize, bool, Vec<u8>, Flaws) {
        let whole = read(input, input.len().max(1));
        for size in 1..=input.len() {
            assert_eq!(read(input, size), whole, "chunk size {size}");
        }
        whole
    }

    #[test]
    fn simple_message() {
        let (used, done, data, flaws) =
            all_splits(b"Subject: x\r\n\r\nhello\r\n.\r\nQUIT\r\n");
        assert!(done);
        assert_eq!(used, 24);
        assert_eq!(data, b"Subject: x\n\nhello\n");
        assert_eq!(flaws, Flaws::default());
    }

    #[test]
    fn dot_unstuffing() {
        let (_, done, data, _) = all_splits(b"..a\r\n...\r\n.b\r\n.\r\n");
        assert!(done);
        assert_eq!(data, b".a\n..\nb\n");
    }

    #[test]
    fn empty_message() {
        let (used, done, data, _) = all_splits(b".\r\n");
        assert!(done);
        assert_eq!(used, 3);
        assert!(data.is_empty());
    }

    #[test]
    fn smuggling_sequences_do_not_end_data() {
        for evil in [
            &b"a\n.\nMAIL FROM:<x@y>\r\n"[..],
            b"a\r\n.\nRCPT\r\n",
            b"a\n.\r\nRCPT\r\n",
            b"a\r.\r\nX\r\n",
            b"a\r\n.\rX\r\n",
        ] {
            let (_, done, _, flaws) = all_splits(evil);
            assert!(!done, "{evil:?} ended data");
            assert!(flaws.bare_newline, "{evil:?} not flagged");
        }
        // ...and the real end after them is still found.
        let (_, done, _, flaws) = all_splits(b"a\n.\nb\r\n.\r\n");
        assert!(done && flaws.bare_newline);
    }

    #[test]
    fn long_lines_are_flagged() {
        let mut ok = vec![b'a'; 998];
        ok.extend_from_slice(b"\r\n.\r\n");
        assert!(!all_splits(&ok).3.long_line);
        let mut long = vec![b'a'; 999];
        long.extend_from_slice(b"\r\n.\r\n");
        assert!(all_splits(&long).3.long_line);
    }

    #[test]
    fn size_limit_counts_crlf_as_two() {
        let mut body = Body::new(7);
        let mut data = Vec::new();
        body.push(b"abc\r\nde", &mut data);
        assert_eq!(body.size(), 7);
        assert!(!body.flaws().too_big);
        body.push(b"f", &mut data);
        let flaws = body.finish(&mut data);
        assert!(flaws.too_big);
        assert!(data.is_empty());
    }

    #[test]
    fn cr_at_the_very_end_is_bare() {
        let mut body = Body::new(100);
        let mut data = Vec::new();
        body.push(b"abc\r", &mut data);
        assert!(body.finish(&mut data).bare_newline);
    }

    #[test]
    fn received_fields_are_counted_in_the_header_only() {
        let text = b"Received: a\r\nreceived:b\r\n\tcont\r\nX: y\r\n\
                     RECEIVED: c\r\n\r\nReceived: in body\r\n.\r\n";
        for size in 1..text.len() {
            let mut reader = DotReader::new();
            let mut body = Body::new(1 << 20);
            let mut data = Vec::new();
            for chunk in text.chunks(size) {
                reader.feed(chunk, &mut body, &mut data);
            }
            assert_eq!(body.received(), 3, "chunk size {size}");
        }
    }
}
