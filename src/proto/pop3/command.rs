//! POP3 command lines (RFC 1939 3): a keyword of up to four letters and
//! arguments separated by single spaces.

/// RFC 2449 4 lets lines reach 255 octets; AUTH PLAIN responses can be
/// longer, so we take up to this many and refuse the rest cleanly.
pub const MAX_LINE: usize = 2048;

/// One parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<'a> {
    /// `USER name`.
    User(&'a str),
    /// `PASS password` (the rest of the line: passwords may hold spaces).
    Pass(&'a [u8]),
    /// `AUTH [mechanism [initial-response]]`.
    Auth(Option<&'a str>, Option<&'a [u8]>),
    /// `STAT`.
    Stat,
    /// `LIST [msg]`.
    List(Option<usize>),
    /// `RETR msg`.
    Retr(usize),
    /// `DELE msg`.
    Dele(usize),
    /// `NOOP`.
    Noop,
    /// `RSET`.
    Rset,
    /// `TOP msg n`.
    Top(usize, usize),
    /// `UIDL [msg]`.
    Uidl(Option<usize>),
    /// `CAPA`.
    Capa,
    /// `XCLIENT ADDR=...`: the client a front end logs in for.
    Xclient(Option<std::net::IpAddr>),
    /// `STLS`.
    Stls,
    /// `QUIT`.
    Quit,
}

/// Why a line did not parse; the text goes after `-ERR `.
pub type ParseError = &'static str;

/// Parses one line without its CRLF.
pub fn parse(line: &[u8]) -> Result<Command<'_>, ParseError> {
    crate::util::fault::probe("command", line);
    let (word, rest) = match memchr::memchr(b' ', line) {
        Some(sp) => (&line[..sp], Some(&line[sp + 1..])),
        None => (line, None),
    };
    let keyword = word.to_ascii_uppercase();
    let args = || rest.map(split).unwrap_or_default();
    match keyword.as_slice() {
        b"USER" => {
            let name =
                rest.filter(|r| !r.is_empty()).ok_or("USER needs a name")?;
            std::str::from_utf8(name)
                .map(Command::User)
                .map_err(|_| "bad user name")
        }
        b"PASS" => rest.map(Command::Pass).ok_or("PASS needs a password"),
        b"AUTH" => {
            let a = args();
            if a.len() > 2 {
                return Err("AUTH takes a mechanism and a response");
            }
            let mechanism = match a.first() {
                Some(m) => {
                    Some(std::str::from_utf8(m).map_err(|_| "bad mechanism")?)
                }
                None => None,
            };
            Ok(Command::Auth(mechanism, a.get(1).copied()))
        }
        b"STAT" => none(rest, Command::Stat),
        b"LIST" => optional_number(rest).map(Command::List),
        b"UIDL" => optional_number(rest).map(Command::Uidl),
        b"RETR" => number(rest).map(Command::Retr),
        b"DELE" => number(rest).map(Command::Dele),
        b"TOP" => {
            let a = args();
            match a[..] {
                [m, n] => Ok(Command::Top(to_number(m)?, to_number(n)?)),
                _ => Err("usage: TOP msg lines"),
            }
        }
        b"NOOP" => none(rest, Command::Noop),
        b"RSET" => none(rest, Command::Rset),
        b"CAPA" => none(rest, Command::Capa),
        // Dovecot's and Postfix's convention: a front end names its client.
        b"XCLIENT" => Ok(Command::Xclient(
            crate::proto::smtp::host::xclient_addr(rest.unwrap_or_default()),
        )),
        b"STLS" => none(rest, Command::Stls),
        b"QUIT" => none(rest, Command::Quit),
        _ => Err("unknown command"),
    }
}

fn split(s: &[u8]) -> Vec<&[u8]> {
    s.split(|&b| b == b' ').filter(|w| !w.is_empty()).collect()
}

fn none<'a>(
    rest: Option<&[u8]>,
    cmd: Command<'a>,
) -> Result<Command<'a>, ParseError> {
    match rest {
        Some(r) if !r.iter().all(|&b| b == b' ') => {
            Err("no arguments allowed")
        }
        _ => Ok(cmd),
    }
}

fn to_number(w: &[u8]) -> Result<usize, ParseError> {
    if w.is_empty() || w.len() > 9 || !w.iter().all(u8::is_ascii_digit) {
        return Err("bad number");
    }
    std::str::from_utf8(w)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or("bad number")
}

fn number(rest: Option<&[u8]>) -> Result<usize, ParseError> {
    match rest.map(split).as_deref() {
        Some([w]) => to_number(w),
        _ => Err("a message number is required"),
    }
}

fn optional_number(rest: Option<&[u8]>) -> Result<Option<usize>, ParseError> {
    match rest.map(split).as_deref() {
        None | Some([]) => Ok(None),
        Some([w]) => to_number(w).map(Some),
        _ => Err("too many arguments"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert_eq!(
            parse(b"user alice@x.test"),
            Ok(Command::User("alice@x.test"))
        );
        assert_eq!(parse(b"PASS two words"), Ok(Command::Pass(b"two words")));
        assert_eq!(parse(b"list"), Ok(Command::List(None)));
        assert_eq!(parse(b"LIST 3"), Ok(Command::List(Some(3))));
        assert_eq!(parse(b"TOP 1 0"), Ok(Command::Top(1, 0)));
        assert_eq!(
            parse(b"AUTH PLAIN AGEAYg=="),
            Ok(Command::Auth(Some("PLAIN"), Some(&b"AGEAYg=="[..])))
        );
        assert_eq!(parse(b"AUTH"), Ok(Command::Auth(None, None)));
    }

    #[test]
    fn nasty_lines() {
        for bad in [
            &b""[..],
            b"RETR",
            b"RETR x",
            b"RETR 1 2",
            b"DELE -1",
            b"TOP 1",
            b"TOP a b",
            b"STAT now",
            b"USER",
            b"PASS",
            b"LIST 1 2",
            b"RETR 99999999999",
            b"\xff\xfe",
            b"XTND",
            b"AUTH a b c",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
