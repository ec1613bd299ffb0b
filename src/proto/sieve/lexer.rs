//! Sieve's tokens (RFC 5228 §2 and §8.1): identifiers, tags, numbers
//! with their K/M/G quantifiers, quoted strings, multi-line strings
//! (`text:` to a line of one dot, dot-stuffed), the punctuation, and
//! comments left out. One pass; each token knows its line, for the
//! errors ManageSieve reports.

/// One token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// `fileinto`, `header`: lower case (Sieve's names have no case).
    Identifier(String),
    /// `:contains`, lower case, without its colon.
    Tag(String),
    /// A number, quantifier applied.
    Number(u64),
    /// A quoted or multi-line string, escapes undone.
    Str(String),
    /// `[`, `]`, `(`, `)`, `{`, `}`, `,`, `;`.
    Punct(char),
}

/// A token and the line it starts on (from 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spanned {
    pub token: Token,
    pub line: usize,
}

/// Why a script does not read, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub line: usize,
    pub what: String,
}

impl Error {
    pub fn new(line: usize, what: impl Into<String>) -> Error {
        Error {
            line,
            what: what.into(),
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.what)
    }
}

/// Reads a whole script into tokens.
pub fn tokens(script: &str) -> Result<Vec<Spanned>, Error> {
    let b = script.as_bytes();
    let mut out = Vec::new();
    let mut at = 0;
    let mut line = 1;
    while at < b.len() {
        let c = b[at];
        let start_line = line;
        match c {
            b'\n' => {
                line += 1;
                at += 1;
            }
            b' ' | b'\t' | b'\r' => at += 1,
            b'#' => {
                at = memchr::memchr(b'\n', &b[at..])
                    .map_or(b.len(), |i| at + i);
            }
            b'/' if b.get(at + 1) == Some(&b'*') => {
                let end = memchr::memmem::find(&b[at + 2..], b"*/")
                    .ok_or_else(|| Error::new(line, "comment not closed"))?;
                line +=
                    memchr::memchr_iter(b'\n', &b[at..at + 2 + end]).count();
                at += 2 + end + 2;
            }
            b'[' | b']' | b'(' | b')' | b'{' | b'}' | b',' | b';' => {
                out.push(Spanned {
                    token: Token::Punct(c as char),
                    line,
                });
                at += 1;
            }
            b'"' => {
                let (s, end, lines) = quoted(b, at + 1)
                    .ok_or_else(|| Error::new(line, "string not closed"))?;
                out.push(Spanned {
                    token: Token::Str(s),
                    line,
                });
                line += lines;
                at = end;
            }
            b':' => {
                let (name, end) = word(b, at + 1);
                if name.is_empty() {
                    return Err(Error::new(line, "a lone ':'"));
                }
                out.push(Spanned {
                    token: Token::Tag(name),
                    line,
                });
                at = end;
            }
            b'0'..=b'9' => {
                let digits =
                    b[at..].iter().take_while(|d| d.is_ascii_digit()).count();
                let n: u64 = script[at..at + digits]
                    .parse()
                    .map_err(|_| Error::new(line, "number too large"))?;
                at += digits;
                let scale = match b.get(at).map(u8::to_ascii_uppercase) {
                    Some(b'K') => 1 << 10,
                    Some(b'M') => 1 << 20,
                    Some(b'G') => 1 << 30,
                    _ => 1,
                };
                if scale > 1 {
                    at += 1;
                }
                let n = n
                    .checked_mul(scale)
                    .ok_or_else(|| Error::new(line, "number too large"))?;
                out.push(Spanned {
                    token: Token::Number(n),
                    line,
                });
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let (name, end) = word(b, at);
                if name == "text" && b.get(end) == Some(&b':') {
                    let (s, end, lines) =
                        multiline(b, end + 1).ok_or_else(|| {
                            Error::new(
                                line,
                                "text: not ended by a line of one dot",
                            )
                        })?;
                    out.push(Spanned {
                        token: Token::Str(s),
                        line: start_line,
                    });
                    line += lines;
                    at = end;
                } else {
                    out.push(Spanned {
                        token: Token::Identifier(name),
                        line,
                    });
                    at = end;
                }
            }
            _ => {
                return Err(Error::new(
                    line,
                    format!("unexpected {:?}", c as char),
                ));
            }
        }
    }
    Ok(out)
}

/// An identifier from `at`: letters, digits, `_`; lower case.
fn word(b: &[u8], at: usize) -> (String, usize) {
    let n = b[at.min(b.len())..]
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
        .count();
    let s = String::from_utf8_lossy(&b[at..at + n]).to_ascii_lowercase();
    (s, at + n)
}

/// A quoted string whose text starts at `at`: the text (`\x` is `x`),
/// where it ends (after the closing quote) and the line ends inside.
fn quoted(b: &[u8], at: usize) -> Option<(String, usize, usize)> {
    let mut out = Vec::new();
    let mut i = at;
    while i < b.len() {
        match b[i] {
            b'"' => {
                let lines = memchr::memchr_iter(b'\n', &b[at..i]).count();
                return Some((
                    String::from_utf8_lossy(&out).into_owned(),
                    i + 1,
                    lines,
                ));
            }
            b'\\' if i + 1 < b.len() => {
                out.push(b[i + 1]);
                i += 2;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    None
}

/// A multi-line string after `text:` (at `at`): the rest of that line
/// (white space or a comment) is skipped; lines up to one of a lone dot,
/// a leading dot of two taken away. Returns the text, its end and the
/// line ends it spans.
fn multiline(b: &[u8], at: usize) -> Option<(String, usize, usize)> {
    let first = memchr::memchr(b'\n', &b[at..])? + at + 1;
    let rest_of_line = &b[at..first];
    let blank = rest_of_line
        .iter()
        .take_while(|c| matches!(c, b' ' | b'\t'))
        .count();
    let after = &rest_of_line[blank..];
    if !(after.starts_with(b"\r\n")
        || after.starts_with(b"\n")
        || after.starts_with(b"#"))
    {
        return None;
    }
    let mut out = Vec::new();
    let mut i = first;
    let mut lines = 1;
    loop {
        let end = memchr::memchr(b'\n', &b[i..]).map(|n| i + n + 1)?;
        let mut l = &b[i..end];
        lines += 1;
        let bare = l.strip_suffix(b"\n").unwrap_or(l);
        let bare = bare.strip_suffix(b"\r").unwrap_or(bare);
        if bare == b"." {
            return Some((
                String::from_utf8_lossy(&out).into_owned(),
                end,
                lines,
            ));
        }
        if l.starts_with(b"..") {
            l = &l[1..];
        }
        out.extend_from_slice(l);
        i = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Token> {
        tokens(s).unwrap().into_iter().map(|t| t.token).collect()
    }

    #[test]
    fn every_kind() {
        assert_eq!(
            toks(
                "if Header :Contains [\"From\", \"to\"] \"a\\\"b\\\\c\" { fileinto \"x\"; } # c\n/* x\ny */ size :over 100K;"
            ),
            vec![
                Token::Identifier("if".into()),
                Token::Identifier("header".into()),
                Token::Tag("contains".into()),
                Token::Punct('['),
                Token::Str("From".into()),
                Token::Punct(','),
                Token::Str("to".into()),
                Token::Punct(']'),
                Token::Str("a\"b\\c".into()),
                Token::Punct('{'),
                Token::Identifier("fileinto".into()),
                Token::Str("x".into()),
                Token::Punct(';'),
                Token::Punct('}'),
                Token::Identifier("size".into()),
                Token::Tag("over".into()),
                Token::Number(100 * 1024),
                Token::Punct(';'),
            ]
        );
    }

    #[test]
    fn multi_line_strings_and_lines() {
        let t = tokens(
            "vacation text: # the reply\nI am away.\n..dotted\n.\n;\nkeep;",
        )
        .unwrap();
        assert_eq!(t[1].token, Token::Str("I am away.\n.dotted\n".into()));
        assert_eq!(
            t[2],
            Spanned {
                token: Token::Punct(';'),
                line: 5
            }
        );
        assert_eq!(t[3].line, 6);
    }

    #[test]
    fn errors_say_where() {
        assert_eq!(tokens("keep;\n\"open").unwrap_err().line, 2);
        assert!(tokens("/* open").is_err());
        assert!(tokens("text:\nno end\n").is_err());
        assert!(
            tokens("text: x\n.\n").is_err(),
            "text: wants its line to end"
        );
        assert!(tokens("99999999999999999999").is_err());
        assert!(tokens("17179869184G").is_err());
        assert!(tokens(": x").is_err());
        assert!(tokens("keep @").is_err());
    }
}
