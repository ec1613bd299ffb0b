//! Turns a stored message (LF line ends, maybe mboxrd-quoted) into what
//! RETR and TOP send: CRLF line ends, dot-stuffing (RFC 1939 3), and for
//! TOP only the header and the first n body lines. Works on chunks, so a
//! 50 MiB message streams through a small buffer.

use memchr::memchr;

/// A line starting with more `>` than this is passed on as it is, so
/// deciding never needs more than a few dozen octets of look-ahead.
const MAX_ARROWS: usize = 64;

/// Encodes one message for the wire.
#[derive(Debug)]
pub struct Encoder {
    at_line_start: bool,
    last_was_cr: bool,
    in_body: bool,
    body_lines_left: Option<usize>,
    unquote: bool,
    done: bool,
    /// Octets of the current line other than a final CR.
    line_text: usize,
}

impl Encoder {
    /// An encoder for a whole message (`top = None`) or its header and
    /// first `top` body lines. `unquote` undoes mboxrd `>From` quoting.
    pub fn new(top: Option<usize>, unquote: bool) -> Self {
        Encoder {
            at_line_start: true,
            last_was_cr: false,
            in_body: false,
            body_lines_left: top,
            unquote,
            done: false,
            line_text: 0,
        }
    }

    /// True once TOP has sent all it should: no more input is needed.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Encodes what it can of `input` into `out`; returns the octets
    /// used. Unused octets (a line start it cannot judge yet) must be
    /// offered again with more behind them, or with `eof`.
    pub fn push(
        &mut self,
        input: &[u8],
        eof: bool,
        out: &mut Vec<u8>,
    ) -> usize {
        let mut i = 0;
        while i < input.len() && !self.done {
            if self.at_line_start {
                match self.line_start(&input[i..], eof, out) {
                    Some(skip) => i += skip,
                    None => return i,
                }
                if self.done {
                    break;
                }
            }
            let rest = &input[i..];
            match memchr(b'\n', rest) {
                Some(lf) => {
                    self.text(&rest[..lf], out);
                    self.end_line(out);
                    i += lf + 1;
                }
                None => {
                    self.text(rest, out);
                    i = input.len();
                }
            }
        }
        if self.done { input.len() } else { i }
    }

    /// Handles a line's first octets; None to wait for more input.
    fn line_start(
        &mut self,
        rest: &[u8],
        eof: bool,
        out: &mut Vec<u8>,
    ) -> Option<usize> {
        self.at_line_start = false;
        if self.in_body {
            match &mut self.body_lines_left {
                Some(0) => {
                    self.done = true;
                    return Some(0);
                }
                Some(n) => *n -= 1,
                None => {}
            }
        }
        let mut skip = 0;
        if self.unquote && rest.first() == Some(&b'>') {
            let arrows = rest.iter().take_while(|&&b| b == b'>').count();
            let known = arrows > MAX_ARROWS || rest.len() >= arrows + 5 || eof;
            if !known {
                // Undo the bookkeeping; we will see this line again.
                self.at_line_start = true;
                if self.in_body
                    && let Some(n) = &mut self.body_lines_left
                {
                    *n += 1;
                }
                return None;
            }
            if arrows <= MAX_ARROWS && rest[arrows..].starts_with(b"From ") {
                skip = 1;
            }
        }
        if rest.get(skip) == Some(&b'.') {
            out.push(b'.');
        }
        Some(skip)
    }

    fn text(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        if let Some(&last) = bytes.last() {
            out.extend_from_slice(bytes);
            self.line_text += bytes.len();
            self.last_was_cr = last == b'\r';
        }
    }

    fn end_line(&mut self, out: &mut Vec<u8>) {
        let content = self.line_text - usize::from(self.last_was_cr);
        if self.last_was_cr {
            out.push(b'\n');
        } else {
            out.extend_from_slice(b"\r\n");
        }
        // The first empty line ends the header (RFC 5322 2.1).
        if content == 0 {
            self.in_body = true;
        }
        self.last_was_cr = false;
        self.at_line_start = true;
        self.line_text = 0;
    }

    /// Ends the message: closes an unterminated last line and writes the
    /// terminating `.CRLF`.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.at_line_start && !self.done {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
    }
}

/// The size a client receives for `data` (CRLF line ends, before
/// dot-stuffing, RFC 1939 5), with mboxrd quoting undone if `unquote`.
pub fn wire_size(data: &[u8], unquote: bool) -> u64 {
    let mut size = 0u64;
    for line in data.split_inclusive(|&b| b == b'\n') {
        size += line.len() as u64;
        if line.ends_with(b"\n") && !line.ends_with(b"\r\n") {
            size += 1;
        } else if !line.ends_with(b"\n") {
            size += 2;
        }
        if unquote && line.starts_with(b">") {
            let arrows = line.iter().take_while(|&&b| b == b'>').count();
            if arrows <= MAX_ARROWS && line[arrows..].starts_with(b"From ") {
                size -= 1;
            }
        }
    }
    size
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(
        data: &[u8],
        top: Option<usize>,
        unquote: bool,
        chunk: usize,
    ) -> Vec<u8> {
        let mut enc = Encoder::new(top, unquote);
        let mut out = Vec::new();
        let mut pending: Vec<u8> = Vec::new();
        for part in data.chunks(chunk.max(1)) {
            pending.extend_from_slice(part);
            let used = enc.push(&pending, false, &mut out);
            pending.drain(..used);
        }
        let used = enc.push(&pending, true, &mut out);
        assert_eq!(used, pending.len());
        enc.finish(&mut out);
        out
    }

    fn all_chunks(data: &[u8], top: Option<usize>, unquote: bool) -> Vec<u8> {
        let whole = encode(data, top, unquote, data.len());
        for chunk in 1..=data.len() {
            assert_eq!(
                encode(data, top, unquote, chunk),
                whole,
                "chunk {chunk}"
            );
        }
        whole
    }

    const MSG: &[u8] = b"Subject: x\nFrom: a\n\n.dot\n>From q\nline3\nlast";

    #[test]
    fn retr_crlf_and_dots() {
        let out = all_chunks(MSG, None, false);
        assert_eq!(out, b"Subject: x\r\nFrom: a\r\n\r\n..dot\r\n>From q\r\nline3\r\nlast\r\n.\r\n");
        assert_eq!(wire_size(MSG, false), out.len() as u64 - 3 - 1);
    }

    #[test]
    fn mboxrd_unquoting() {
        let out =
            all_chunks(b"A: b\n\n>From x\n>>From y\n>Fro\n>\n", None, true);
        assert_eq!(
            out,
            b"A: b\r\n\r\nFrom x\r\n>From y\r\n>Fro\r\n>\r\n.\r\n"
        );
        assert_eq!(
            wire_size(b"A: b\n\n>From x\n>>From y\n>Fro\n>\n", true),
            out.len() as u64 - 3
        );
    }

    #[test]
    fn long_runs_of_arrows_decide_the_same_in_any_split() {
        for n in [63, 64, 65, 70] {
            let mut data = b"A: b\n\n".to_vec();
            data.extend_from_slice(&vec![b'>'; n]);
            data.extend_from_slice(b"From x\n");
            let out = all_chunks(&data, None, true);
            assert_eq!(wire_size(&data, true), out.len() as u64 - 3);
        }
    }

    #[test]
    fn top_sends_header_and_n_lines() {
        assert_eq!(
            all_chunks(MSG, Some(0), false),
            b"Subject: x\r\nFrom: a\r\n\r\n.\r\n"
        );
        assert_eq!(
            all_chunks(MSG, Some(2), false),
            b"Subject: x\r\nFrom: a\r\n\r\n..dot\r\n>From q\r\n.\r\n"
        );
        assert_eq!(
            all_chunks(MSG, Some(99), false),
            all_chunks(MSG, None, false)
        );
    }

    #[test]
    fn existing_crlf_is_kept_and_empty_message() {
        assert_eq!(all_chunks(b"a\r\nb\n", None, false), b"a\r\nb\r\n.\r\n");
        assert_eq!(all_chunks(b"", None, false), b".\r\n");
    }
}
