//! Replies from the SMTP servers we send to (RFC 5321 4.2), read a
//! line at a time from whatever arrives. A peer controls their length
//! and number, so both are bounded: an over-long line is cut (the rest
//! of it skipped), and past `MAX_LINES` lines only the code is checked.

use memchr::memchr;

/// Text kept of one line; the rest of it is read and dropped.
pub const MAX_LINE: usize = 1000;
/// Lines of one reply whose text is kept.
pub const MAX_LINES: usize = 100;
/// Octets of one line read at most before it counts as junk (a peer
/// sending an endless line).
const MAX_RAW_LINE: usize = 64 * 1024;

/// A whole reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit code.
    pub code: u16,
    /// The text of each line (after the code and separator).
    pub lines: Vec<String>,
}

impl Reply {
    /// 2yz.
    pub fn is_ok(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// 4yz: try again later.
    pub fn is_temporary(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// The enhanced status code of the first line (RFC 3463), if any.
    pub fn enhanced(&self) -> Option<String> {
        let first = self.lines.first()?;
        let word = first.split_whitespace().next()?;
        let mut parts = word.split('.');
        let class = parts.next()?;
        let ok = matches!(class, "2" | "4" | "5")
            && parts.clone().count() == 2
            && parts.all(|p| {
                !p.is_empty()
                    && p.len() <= 3
                    && p.bytes().all(|b| b.is_ascii_digit())
            });
        ok.then(|| word.to_string())
    }

    /// One line for logs and bounces: `550 5.1.1 no such user`.
    pub fn one_line(&self) -> String {
        let text = self.lines.join(" ");
        let clean: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        format!("{} {}", self.code, clean.trim())
            .trim_end()
            .to_string()
    }
}

/// What went wrong with the peer's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Garbled {
    /// A line that does not start with a code and a separator.
    NotAReply,
    /// A continuation line with another code.
    CodeChanged,
    /// A line longer than any server would send.
    Endless,
}

/// Reads replies from a stream of bytes.
#[derive(Debug, Default)]
pub struct Reader {
    code: Option<u16>,
    lines: Vec<String>,
    /// Octets of the current line passed over already (a line cut short).
    skipped: usize,
    /// The line cut short was its reply's last.
    pending_final: bool,
}

impl Reader {
    /// Reads from `input`: the octets used, and a reply if one ended.
    /// Call again with the rest; `Err` ends the connection.
    pub fn read(
        &mut self,
        input: &[u8],
    ) -> (usize, Option<Result<Reply, Garbled>>) {
        let mut used = 0;
        loop {
            let rest = &input[used..];
            let Some(lf) = memchr(b'\n', rest) else {
                if self.skipped > 0 {
                    // Still the line cut short: pass over it, not for ever.
                    self.skipped += rest.len();
                    if self.skipped > MAX_RAW_LINE {
                        return (input.len(), Some(Err(Garbled::Endless)));
                    }
                    return (input.len(), None);
                }
                if rest.len() > MAX_LINE + 8 {
                    // Too long to keep whole: keep its start, skip on.
                    if let Err(g) = self.line(&rest[..MAX_LINE + 8], false) {
                        return (input.len(), Some(Err(g)));
                    }
                    self.skipped = rest.len();
                    return (input.len(), None);
                }
                return (used, None);
            };
            let raw = &rest[..lf];
            used += lf + 1;
            if self.skipped > 0 {
                // The end of a line cut short: its start was read.
                self.skipped = 0;
                if let Some(done) = self.finish_if_last() {
                    return (used, Some(Ok(done)));
                }
                continue;
            }
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            match self.line(raw, true) {
                Err(g) => return (used, Some(Err(g))),
                Ok(true) => {
                    let code = self.code.take().unwrap_or(0);
                    let lines = std::mem::take(&mut self.lines);
                    return (used, Some(Ok(Reply { code, lines })));
                }
                Ok(false) => {}
            }
        }
    }

    /// A cut line ended: whether it was the last of its reply is known
    /// from its separator, kept in `last_was_final`.
    fn finish_if_last(&mut self) -> Option<Reply> {
        if self.pending_final {
            self.pending_final = false;
            let code = self.code.take().unwrap_or(0);
            return Some(Reply {
                code,
                lines: std::mem::take(&mut self.lines),
            });
        }
        None
    }

    /// One line (or the start of one, `whole` false); true if it ends
    /// the reply.
    fn line(&mut self, raw: &[u8], whole: bool) -> Result<bool, Garbled> {
        if raw.len() < 3 || !raw[..3].iter().all(u8::is_ascii_digit) {
            return Err(Garbled::NotAReply);
        }
        let code = u16::from(raw[0] - b'0') * 100
            + u16::from(raw[1] - b'0') * 10
            + u16::from(raw[2] - b'0');
        if !(200..600).contains(&code) {
            return Err(Garbled::NotAReply);
        }
        if self.code.is_some_and(|c| c != code) {
            return Err(Garbled::CodeChanged);
        }
        self.code = Some(code);
        let last = match raw.get(3) {
            None | Some(b' ') => true,
            Some(b'-') => false,
            Some(_) => return Err(Garbled::NotAReply),
        };
        if self.lines.len() < MAX_LINES {
            let text = raw.get(4..).unwrap_or_default();
            let text = &text[..text.len().min(MAX_LINE)];
            self.lines.push(String::from_utf8_lossy(text).into_owned());
        }
        if !whole {
            self.pending_final = last;
            return Ok(false);
        }
        Ok(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8]) -> Vec<Result<Reply, Garbled>> {
        let mut r = Reader::default();
        let mut out = Vec::new();
        let mut at = 0;
        loop {
            let (n, got) = r.read(&input[at..]);
            at += n;
            match got {
                Some(x) => out.push(x),
                None if n == 0 || at == input.len() => return out,
                None => {}
            }
            if at == input.len() {
                return out;
            }
        }
    }

    #[test]
    fn multiline_and_pipelined() {
        let got = all(b"250-mx.example Hello\r\n250-PIPELINING\r\n250 SIZE 1000\r\n250 2.1.0 Ok\r\n");
        assert_eq!(got.len(), 2);
        let ehlo = got[0].clone().unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(ehlo.code, 250);
        assert_eq!(
            ehlo.lines,
            vec!["mx.example Hello", "PIPELINING", "SIZE 1000"]
        );
        let ok = got[1].clone().unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(ok.enhanced().as_deref(), Some("2.1.0"));
        assert_eq!(ok.one_line(), "250 2.1.0 Ok");
    }

    #[test]
    fn byte_at_a_time_is_the_same() {
        let input = b"220-hi\r\n220 there\r\n550 5.1.1 no\n";
        let mut r = Reader::default();
        let mut got = Vec::new();
        let mut pending = Vec::new();
        for &b in input.iter() {
            pending.push(b);
            let (n, reply) = r.read(&pending);
            pending.drain(..n);
            if let Some(x) = reply {
                got.push(x.unwrap_or_else(|e| panic!("{e:?}")));
            }
        }
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].code, 550);
    }

    #[test]
    fn bounded_and_garbled() {
        // 200 kB with no line end, in pieces: Endless.
        let mut r = Reader::default();
        let mut end = None;
        for i in 0..50 {
            let piece = if i == 0 {
                b"250 ".repeat(1000)
            } else {
                vec![b'x'; 4096]
            };
            let (n, got) = r.read(&piece);
            assert_eq!(n, piece.len());
            if got.is_some() {
                end = got;
                break;
            }
        }
        assert_eq!(end, Some(Err(Garbled::Endless)));
        // A 10 kB line is cut to MAX_LINE and the reply still ends.
        let mut wide = b"250 ".to_vec();
        wide.extend(std::iter::repeat_n(b'y', 10_000));
        wide.extend_from_slice(b"\r\n");
        let got = all(&wide);
        let r = got[0].clone().unwrap_or_else(|e| panic!("{e:?}"));
        assert!(r.lines[0].len() <= MAX_LINE);
        // Many lines: text of the first MAX_LINES only.
        let many: Vec<u8> = (0..500)
            .flat_map(|_| b"250-x\r\n".to_vec())
            .chain(b"250 end\r\n".to_vec())
            .collect();
        let r = all(&many)[0].clone().unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(r.lines.len(), MAX_LINES);
        assert_eq!(all(b"hello\r\n"), vec![Err(Garbled::NotAReply)]);
        assert_eq!(
            all(b"250-a\r\n251 b\r\n"),
            vec![Err(Garbled::CodeChanged)]
        );
        assert_eq!(all(b"199 no\r\n"), vec![Err(Garbled::NotAReply)]);
        assert_eq!(all(b"250x\r\n"), vec![Err(Garbled::NotAReply)]);
    }
}
