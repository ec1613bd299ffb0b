//! ManageSieve's command reader (RFC 5804 §4): atoms, numbers, quoted
//! strings and literals (`{n+}` as clients send them, `{n}` taken the
//! same way), a command ending at a CRLF outside a literal. Input is
//! consumed as it comes, a literal gathered here up to [`MAX_LITERAL`]
//! and a line up to [`MAX_LINE`]: whatever a client sends, what is
//! held stays bounded, and a command too long is read to its end and
//! refused, keeping the dialog in step.

/// A command line (literals apart) at most.
pub const MAX_LINE: usize = 8 * 1024;
/// A literal at most: a script's largest size.
pub const MAX_LITERAL: usize = 128 * 1024;
/// Arguments one command takes at most.
const MAX_ARGS: usize = 8;

/// An argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    Atom(String),
    Number(u64),
    /// A quoted string or a literal.
    Str(Vec<u8>),
}

/// What a feed gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    /// More input is needed.
    More,
    /// A command.
    Command(Vec<Arg>),
    /// A command that cannot be read (too long, bad syntax): refuse it.
    Bad(&'static str),
}

#[derive(Debug, Default)]
pub struct Reader {
    args: Vec<Arg>,
    /// Octets of a literal still to come.
    literal_left: usize,
    literal: Vec<u8>,
    /// The command is too long or bad: read to its end, then refuse.
    broken: Option<&'static str>,
    /// Line octets read of this command so far.
    line_len: usize,
}

impl Reader {
    /// Reads from `input`; returns the octets used and what they gave.
    pub fn feed(&mut self, input: &[u8]) -> (usize, Read) {
        let mut used = 0;
        loop {
            let rest = &input[used..];
            if self.literal_left > 0 {
                let n = self.literal_left.min(rest.len());
                if self.broken.is_none() {
                    self.literal.extend_from_slice(&rest[..n]);
                }
                self.literal_left -= n;
                used += n;
                if self.literal_left > 0 {
                    return (used, Read::More);
                }
                let lit = std::mem::take(&mut self.literal);
                self.args.push(Arg::Str(lit));
                continue;
            }
            let Some(nl) = memchr::memchr(b'\n', rest) else {
                if rest.len() + self.line_len > MAX_LINE {
                    // Too long a line: dropped as it comes.
                    self.broken.get_or_insert("line too long");
                    self.line_len += rest.len();
                    return (input.len(), Read::More);
                }
                return (used, Read::More);
            };
            let line = &rest[..nl];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            used += nl + 1;
            self.line_len += nl + 1;
            if self.line_len > MAX_LINE {
                self.broken.get_or_insert("line too long");
            }
            match self.broken {
                Some(_) => self.skip_line(line),
                None => {
                    if let Err(e) = self.tokens(line) {
                        self.broken = Some(e);
                        self.skip_line(line);
                    }
                }
            }
            if self.literal_left > 0 {
                continue;
            }
            let done = match self.broken.take() {
                Some(why) => Read::Bad(why),
                None => Read::Command(std::mem::take(&mut self.args)),
            };
            self.args.clear();
            self.line_len = 0;
            return (used, done);
        }
    }

    /// A broken command's line: a literal it announces is still read.
    fn skip_line(&mut self, line: &[u8]) {
        if let Some((n, _)) = literal_at_end(line) {
            self.literal_left = n;
        }
    }

    fn tokens(&mut self, line: &[u8]) -> Result<(), &'static str> {
        let (body, literal) = match literal_at_end(line) {
            Some((n, at)) => (&line[..at], Some(n)),
            None => (line, None),
        };
        let mut i = 0;
        while i < body.len() {
            match body[i] {
                b' ' | b'\t' => i += 1,
                b'"' => {
                    let (s, next) = quoted(body, i + 1)?;
                    self.args.push(Arg::Str(s));
                    i = next;
                }
                c if c.is_ascii_digit() => {
                    let end = body[i..]
                        .iter()
                        .position(|b| !b.is_ascii_digit())
                        .map_or(body.len(), |p| i + p);
                    let n = std::str::from_utf8(&body[i..end])
                        .ok()
                        .and_then(|s| s.parse().ok());
                    self.args.push(Arg::Number(n.ok_or("number too large")?));
                    i = end;
                }
                c if c.is_ascii_alphabetic() => {
                    let end = body[i..]
                        .iter()
                        .position(|b| {
                            !(b.is_ascii_alphanumeric() || *b == b'-')
                        })
                        .map_or(body.len(), |p| i + p);
                    self.args.push(Arg::Atom(
                        String::from_utf8_lossy(&body[i..end])
                            .to_ascii_uppercase(),
                    ));
                    i = end;
                }
                _ => return Err("syntax error"),
            }
            if self.args.len() > MAX_ARGS {
                return Err("too many arguments");
            }
        }
        if let Some(n) = literal {
            if n > MAX_LITERAL {
                return Err("literal too large");
            }
            self.literal_left = n;
            if n == 0 {
                self.args.push(Arg::Str(Vec::new()));
            }
        }
        Ok(())
    }
}

/// `{n+}` or `{n}` ending a line: its size and where it starts.
fn literal_at_end(line: &[u8]) -> Option<(usize, usize)> {
    let body = line.strip_suffix(b"}")?;
    let open = body.iter().rposition(|&b| b == b'{')?;
    let digits = &body[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    if digits.is_empty()
        || digits.len() > 12
        || !digits.iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    let n = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some((n, open))
}

/// A quoted string from after its `"`: the text and where it ended.
fn quoted(
    line: &[u8],
    mut i: usize,
) -> Result<(Vec<u8>, usize), &'static str> {
    let mut out = Vec::new();
    while i < line.len() {
        match line[i] {
            b'"' => return Ok((out, i + 1)),
            b'\\' if i + 1 < line.len() => {
                out.push(line[i + 1]);
                i += 2;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Err("unterminated string")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(input: &[u8], chunk: usize) -> Vec<Read> {
        let mut r = Reader::default();
        let mut out = Vec::new();
        let mut pending: Vec<u8> = Vec::new();
        for piece in input.chunks(chunk) {
            pending.extend_from_slice(piece);
            loop {
                let (n, got) = r.feed(&pending);
                pending.drain(..n);
                match got {
                    Read::More => break,
                    other => out.push(other),
                }
            }
        }
        out
    }

    #[test]
    fn commands_in_any_chunks() {
        let input = b"PUTSCRIPT \"my \\\"s\\\"\" {12+}\r\nkeep;\r\nstop;\r\nLISTSCRIPTS\r\nhavespace \"a\" 100\r\n";
        for chunk in [1, 2, 3, 7, 64, 1000] {
            let got = read_all(input, chunk);
            assert_eq!(
                got,
                [
                    Read::Command(vec![
                        Arg::Atom("PUTSCRIPT".into()),
                        Arg::Str(b"my \"s\"".to_vec()),
                        Arg::Str(b"keep;\r\nstop;".to_vec())
                    ]),
                    Read::Command(vec![Arg::Atom("LISTSCRIPTS".into())]),
                    Read::Command(vec![
                        Arg::Atom("HAVESPACE".into()),
                        Arg::Str(b"a".to_vec()),
                        Arg::Number(100)
                    ]),
                ],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn too_long_is_read_to_its_end_and_refused() {
        let mut input = b"PUTSCRIPT \"a\" {999999+}\r\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 999_999));
        input.extend_from_slice(b"\r\nNOOP\r\n");
        let got = read_all(&input, 4096);
        assert_eq!(
            got,
            [
                Read::Bad("literal too large"),
                Read::Command(vec![Arg::Atom("NOOP".into())])
            ]
        );
        let mut long = vec![b'A'; MAX_LINE * 3];
        long.extend_from_slice(b"\r\nNOOP\r\n");
        let got = read_all(&long, 1000);
        assert_eq!(
            got,
            [
                Read::Bad("line too long"),
                Read::Command(vec![Arg::Atom("NOOP".into())])
            ]
        );
        assert_eq!(
            read_all(b"X \"open\r\n", 5),
            [Read::Bad("unterminated string")]
        );
    }
}
