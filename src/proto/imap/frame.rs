//! Finding where one IMAP command ends (RFC 9051 2.2): a line, unless it
//! ends in a literal announcement `{N}` / `{N+}` / `~{N}`, in which case
//! N octets and another line follow. The whole command stays in the
//! connection's buffer and the parser reads it in place; only a
//! message being APPENDed streams past (see `session.rs`).

use memchr::memchr;

/// A command line, literals included, may not be longer than this
/// (Dovecot's limit is 64 KiB too); APPEND's message is not counted.
pub const MAX_COMMAND: usize = 64 * 1024;
/// RFC 7888 LITERAL-: non-synchronizing literals are at most this.
pub const MAX_NONSYNC_BEFORE_LOGIN: u64 = 4096;

/// A literal announced at the end of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Literal {
    /// Its octets.
    pub len: u64,
    /// `{N+}`: the client sends it without waiting for `+`.
    pub nonsync: bool,
    /// `~{N}`: literal8 (BINARY), may hold NUL.
    pub binary: bool,
    /// Where the announcement starts in its line.
    pub at: usize,
}

/// What the octets so far hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framed {
    /// A whole command: `len` octets including its final CRLF.
    Command {
        /// Octets up to and including the last line's CRLF.
        len: usize,
    },
    /// More octets are needed. `literal` is a synchronizing literal
    /// whose continuation request has not been sent (`waits` literals
    /// into the command), with `line_end` the end of its line.
    Incomplete {
        /// A literal the client waits for us to accept.
        literal: Option<(Literal, usize)>,
        /// Literals before it in this command.
        waits: usize,
    },
    /// The line (`len` octets with its CRLF so far) is too long or
    /// malformed beyond reading on.
    TooLong,
}

/// Looks for the end of the command starting at `input[0]`.
pub fn frame(input: &[u8]) -> Framed {
    let mut pos = 0;
    let mut literals = 0;
    loop {
        let Some(lf) = memchr(b'\n', &input[pos..]) else {
            if input.len() > MAX_COMMAND {
                return Framed::TooLong;
            }
            return Framed::Incomplete {
                literal: None,
                waits: literals,
            };
        };
        let end = pos + lf + 1;
        if end > MAX_COMMAND {
            return Framed::TooLong;
        }
        let line = trim_eol(&input[pos..end]);
        let Some(mut lit) = literal_at_end(line) else {
            return Framed::Command { len: end };
        };
        lit.at += pos;
        let after = end as u64 + lit.len;
        if after > MAX_COMMAND as u64 {
            return Framed::TooLong;
        }
        if (input.len() as u64) < after {
            return Framed::Incomplete {
                literal: Some((lit, end)),
                waits: literals,
            };
        }
        literals += 1;
        pos = after as usize;
    }
}

/// The line without its CRLF (or bare LF).
pub fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// `{N}`, `{N+}` or `~{N}` at the end of `line`.
pub fn literal_at_end(line: &[u8]) -> Option<Literal> {
    let body = line.strip_suffix(b"}")?;
    let open = body.iter().rposition(|&b| b == b'{')?;
    let mut digits = &body[open + 1..];
    let nonsync = digits.last() == Some(&b'+');
    if nonsync {
        digits = &digits[..digits.len() - 1];
    }
    if digits.is_empty()
        || digits.len() > 19
        || !digits.iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    let len = std::str::from_utf8(digits).ok()?.parse().ok()?;
    let binary = open > 0 && body[open - 1] == b'~';
    let at = if binary { open - 1 } else { open };
    Some(Literal {
        len,
        nonsync,
        binary,
        at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_literals() {
        assert_eq!(frame(b"a NOOP\r\n"), Framed::Command { len: 8 });
        assert_eq!(frame(b"a NOOP\r\nb"), Framed::Command { len: 8 });
        assert!(matches!(
            frame(b"a NOO"),
            Framed::Incomplete { literal: None, .. }
        ));
        let cmd = b"a LOGIN {5}\r\nalice {3+}\r\npw!\r\n";
        assert_eq!(frame(cmd), Framed::Command { len: cmd.len() });
        match frame(b"a LOGIN {5}\r\nal") {
            Framed::Incomplete {
                literal: Some((lit, 13)),
                waits: 0,
            } => {
                assert_eq!(lit.len, 5);
                assert!(!lit.nonsync);
                assert_eq!(lit.at, 8);
            }
            other => panic!("{other:?}"),
        }
        match frame(b"a LOGIN {5}\r\nalice {3+}\r\np") {
            Framed::Incomplete {
                literal: Some((lit, _)),
                waits: 1,
            } => assert!(lit.nonsync),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn nasty_announcements() {
        for line in [
            &b"a x {}"[..],
            b"a x {+}",
            b"a x {-1}",
            b"a x {1a}",
            b"a x {99999999999999999999}",
            b"a x 5}",
        ] {
            assert_eq!(literal_at_end(line), None, "{line:?}");
        }
        let l = literal_at_end(b"a APPEND x ~{12}").unwrap();
        assert!(l.binary);
        assert_eq!(l.at, 11);
        assert_eq!(frame(&[b'a'; MAX_COMMAND + 1]), Framed::TooLong);
        assert_eq!(frame(b"a x {99999999}\r\n"), Framed::TooLong);
    }
}
