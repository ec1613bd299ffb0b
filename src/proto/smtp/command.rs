//! SMTP command lines (RFC 5321 4.1.1) parsed into typed [`Command`]s.
//!
//! The parser borrows from the connection's buffer; it sees one line with
//! its CRLF already removed.

use super::Reply;
use super::address::{self, AddressError, Path, ReversePath};

/// RFC 5321 4.5.3.1.4: a command line is at most 512 octets, CRLF
/// included.
pub const MAX_COMMAND_LINE: usize = 512;
/// RFC 4954 4: AUTH lines (with an initial response) and SASL responses
/// may be up to 12288 octets.
pub const MAX_AUTH_LINE: usize = 12288;

/// One parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<'a> {
    /// `EHLO domain`.
    Ehlo(&'a str),
    /// `HELO domain`.
    Helo(&'a str),
    /// `MAIL FROM:<path> [params]`.
    Mail {
        /// The sender.
        from: ReversePath,
        /// ESMTP parameters.
        params: MailParams,
    },
    /// `RCPT TO:<path>`.
    Rcpt {
        /// The recipient.
        to: Path,
    },
    /// `DATA`.
    Data,
    /// `BDAT size [LAST]` (RFC 3030).
    Bdat {
        /// Octets in this chunk.
        size: u64,
        /// The last chunk of the message.
        last: bool,
    },
    /// `RSET`.
    Rset,
    /// `NOOP [string]`.
    Noop,
    /// `QUIT`.
    Quit,
    /// `VRFY string`.
    Vrfy,
    /// `HELP [string]`.
    Help,
    /// `ETRN node` (RFC 1985): run the queue.
    Etrn,
    /// `XSTATUS [JSON]`: the server's figures, for `postling status`
    /// on the local socket.
    Xstatus { json: bool },
    /// `XCLIENT ADDR=...` (Postfix's convention): a front end names the
    /// client it speaks for; None if it named no usable address.
    Xclient(Option<std::net::IpAddr>),
    /// `STARTTLS` (RFC 3207).
    StartTls,
    /// `AUTH mechanism [initial-response]` (RFC 4954).
    Auth {
        /// The SASL mechanism.
        mechanism: Mechanism,
        /// The initial response, still base64; `=` stands for empty.
        initial: Option<&'a [u8]>,
    },
}

/// The SASL mechanisms we offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// RFC 4616.
    Plain,
    /// The LOGIN mechanism mail clients use.
    Login,
}

/// The MAIL FROM parameters we implement.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailParams {
    /// RFC 1870 `SIZE=`: the client's estimate of the message size.
    pub size: Option<u64>,
    /// RFC 6531 `SMTPUTF8`.
    pub smtputf8: bool,
    /// RFC 6152 `BODY=8BITMIME` (as opposed to `7BIT`).
    pub eight_bit: bool,
}

/// Parses one command line (no CRLF). An `Err` is the reply to send.
pub fn parse(line: &[u8]) -> Result<Command<'_>, Reply> {
    crate::util::fault::probe("command", line);
    let (verb, arg) = match memchr::memchr(b' ', line) {
        Some(sp) => (&line[..sp], &line[sp + 1..]),
        None => (line, &b""[..]),
    };
    let verb = verb.to_ascii_uppercase();
    match verb.as_slice() {
        b"EHLO" => Ok(Command::Ehlo(hello_arg(arg)?)),
        b"HELO" => Ok(Command::Helo(hello_arg(arg)?)),
        b"MAIL" => parse_mail(arg),
        b"RCPT" => parse_rcpt(arg),
        b"DATA" => no_arg(arg, Command::Data),
        b"BDAT" => parse_bdat(arg),
        b"RSET" => no_arg(arg, Command::Rset),
        b"NOOP" => Ok(Command::Noop),
        b"QUIT" => no_arg(arg, Command::Quit),
        b"VRFY" if !arg.is_empty() => Ok(Command::Vrfy),
        b"VRFY" => Err(syntax("Syntax: VRFY address")),
        b"HELP" => Ok(Command::Help),
        b"ETRN" if !arg.is_empty() => Ok(Command::Etrn),
        b"ETRN" => Err(syntax("Syntax: ETRN node")),
        b"XSTATUS" if arg.is_empty() => Ok(Command::Xstatus { json: false }),
        b"XSTATUS" if arg.eq_ignore_ascii_case(b"JSON") => {
            Ok(Command::Xstatus { json: true })
        }
        b"XSTATUS" => Err(syntax("Syntax: XSTATUS [JSON]")),
        b"XCLIENT" if !arg.is_empty() => {
            Ok(Command::Xclient(super::host::xclient_addr(arg)))
        }
        b"XCLIENT" => Err(syntax("Syntax: XCLIENT attribute=value ...")),
        b"STARTTLS" => no_arg(arg, Command::StartTls),
        b"AUTH" => parse_auth(arg),
        _ => Err(Reply::new(500, "5.5.1", "Command unrecognized")),
    }
}

fn syntax(text: &str) -> Reply {
    Reply::new(501, "5.5.4", text)
}

fn no_arg<'a>(arg: &[u8], cmd: Command<'a>) -> Result<Command<'a>, Reply> {
    if arg.iter().all(|&b| b == b' ') {
        Ok(cmd)
    } else {
        Err(syntax("No parameters allowed"))
    }
}

/// The EHLO/HELO argument: one printable token. Lenient on purpose (many
/// real clients send names with underscores); it is only logged.
fn hello_arg(arg: &[u8]) -> Result<&str, Reply> {
    let arg = trim_spaces(arg);
    let printable = arg.iter().all(|&b| b.is_ascii_graphic());
    match std::str::from_utf8(arg) {
        Ok(s) if !s.is_empty() && printable => Ok(s),
        _ => Err(syntax("Syntax: EHLO hostname")),
    }
}

fn trim_spaces(mut s: &[u8]) -> &[u8] {
    while let [b' ', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' '] = s {
        s = rest;
    }
    s
}

/// Strips `prefix` (case-insensitive) and any spaces after it: some
/// clients write `MAIL FROM: <a@b>`, which Postfix accepts too.
fn strip_keyword<'a>(arg: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    let head = arg.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let mut rest = &arg[prefix.len()..];
    while let [b' ', r @ ..] = rest {
        rest = r;
    }
    Some(rest)
}

fn address_reply(e: AddressError) -> Reply {
    match e {
        AddressError::Syntax => Reply::new(501, "5.1.7", "Bad address syntax"),
        AddressError::TooLong => Reply::new(501, "5.1.7", "Address too long"),
        AddressError::NeedsUtf8 => {
            Reply::new(553, "5.6.7", "Non-ASCII address needs SMTPUTF8")
        }
    }
}

fn parse_mail(arg: &[u8]) -> Result<Command<'_>, Reply> {
    let rest = strip_keyword(arg, b"FROM:")
        .ok_or_else(|| syntax("Syntax: MAIL FROM:<address>"))?;
    let (from, params) =
        address::parse_reverse_path(rest, true).map_err(address_reply)?;
    let params = parse_mail_params(params)?;
    let needs_utf8 = matches!(&from, ReversePath::Mailbox(p) if p.is_utf8());
    if needs_utf8 && !params.smtputf8 {
        return Err(address_reply(AddressError::NeedsUtf8));
    }
    Ok(Command::Mail { from, params })
}

fn parse_mail_params(s: &[u8]) -> Result<MailParams, Reply> {
    let mut params = MailParams::default();
    for word in s.split(|&b| b == b' ').filter(|w| !w.is_empty()) {
        let (key, value) = match memchr::memchr(b'=', word) {
            Some(eq) => (&word[..eq], Some(&word[eq + 1..])),
            None => (word, None),
        };
        let key = key.to_ascii_uppercase();
        match (key.as_slice(), value) {
            (b"SIZE", Some(v)) => params.size = Some(number(v)?),
            (b"BODY", Some(v)) if v.eq_ignore_ascii_case(b"8BITMIME") => {
                params.eight_bit = true
            }
            (b"BODY", Some(v)) if v.eq_ignore_ascii_case(b"7BIT") => {}
            (b"SMTPUTF8", None) => params.smtputf8 = true,
            // RFC 4954 5: the identity a relaying client vouches for;
            // accepted and not used.
            (b"AUTH", Some(_)) => {}
            _ => {
                return Err(Reply::new(
                    555,
                    "5.5.4",
                    "Unsupported MAIL parameter",
                ));
            }
        }
    }
    Ok(params)
}

fn number(v: &[u8]) -> Result<u64, Reply> {
    let bad = || syntax("Bad number");
    if v.is_empty() || v.len() > 20 || !v.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(bad)
}

fn parse_rcpt(arg: &[u8]) -> Result<Command<'_>, Reply> {
    let rest = strip_keyword(arg, b"TO:")
        .ok_or_else(|| syntax("Syntax: RCPT TO:<address>"))?;
    // The session checks UTF-8 against the transaction's SMTPUTF8.
    let (to, params) =
        address::parse_path(rest, true).map_err(address_reply)?;
    if !trim_spaces(params).is_empty() {
        return Err(Reply::new(555, "5.5.4", "Unsupported RCPT parameter"));
    }
    Ok(Command::Rcpt { to })
}

fn parse_auth(arg: &[u8]) -> Result<Command<'_>, Reply> {
    let mut words = arg.split(|&b| b == b' ').filter(|w| !w.is_empty());
    let usage = || syntax("Syntax: AUTH mechanism [initial-response]");
    let name = words.next().ok_or_else(usage)?;
    let mechanism = if name.eq_ignore_ascii_case(b"PLAIN") {
        Mechanism::Plain
    } else if name.eq_ignore_ascii_case(b"LOGIN") {
        Mechanism::Login
    } else {
        return Err(Reply::new(
            504,
            "5.5.4",
            "Unrecognized authentication type",
        ));
    };
    let initial = words.next();
    if words.next().is_some() {
        return Err(usage());
    }
    Ok(Command::Auth { mechanism, initial })
}

fn parse_bdat(arg: &[u8]) -> Result<Command<'_>, Reply> {
    let mut words = arg.split(|&b| b == b' ').filter(|w| !w.is_empty());
    let usage = || syntax("Syntax: BDAT size [LAST]");
    let size = number(words.next().ok_or_else(usage)?).map_err(|_| usage())?;
    let last = match words.next() {
        None => false,
        Some(w) if w.eq_ignore_ascii_case(b"LAST") => true,
        Some(_) => return Err(usage()),
    };
    if words.next().is_some() {
        return Err(usage());
    }
    Ok(Command::Bdat { size, last })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_are_case_insensitive() {
        assert_eq!(
            parse(b"ehlo client.test"),
            Ok(Command::Ehlo("client.test"))
        );
        assert_eq!(parse(b"QuIt"), Ok(Command::Quit));
        assert_eq!(parse(b"noop anything"), Ok(Command::Noop));
    }

    #[test]
    fn mail_with_params() {
        let cmd =
            parse(b"MAIL FROM:<a@b.test> SIZE=1000 BODY=8BITMIME").unwrap();
        let Command::Mail { from, params } = cmd else {
            panic!()
        };
        assert_eq!(from.to_string(), "a@b.test");
        assert_eq!(params.size, Some(1000));
        assert!(params.eight_bit);
    }

    #[test]
    fn mail_space_after_colon_is_tolerated() {
        assert!(matches!(parse(b"MAIL FROM: <>"), Ok(Command::Mail { .. })));
    }

    #[test]
    fn utf8_sender_needs_param() {
        let e = parse("MAIL FROM:<jö@x.de>".as_bytes()).unwrap_err();
        assert_eq!(e.code, 553);
        assert!(parse("MAIL FROM:<jö@x.de> SMTPUTF8".as_bytes()).is_ok());
    }

    #[test]
    fn auth_forms() {
        assert_eq!(
            parse(b"auth plain AGEAYg=="),
            Ok(Command::Auth {
                mechanism: Mechanism::Plain,
                initial: Some(&b"AGEAYg=="[..])
            })
        );
        assert_eq!(
            parse(b"AUTH LOGIN"),
            Ok(Command::Auth {
                mechanism: Mechanism::Login,
                initial: None
            })
        );
        assert!(parse(b"MAIL FROM:<a@b.test> AUTH=<>").is_ok());
    }

    #[test]
    fn bdat_forms() {
        assert_eq!(
            parse(b"BDAT 10 LAST"),
            Ok(Command::Bdat {
                size: 10,
                last: true
            })
        );
        assert_eq!(
            parse(b"bdat 0"),
            Ok(Command::Bdat {
                size: 0,
                last: false
            })
        );
        for bad in [
            &b"BDAT"[..],
            b"BDAT x",
            b"BDAT 1 FIRST",
            b"BDAT -1",
            b"BDAT 1 LAST x",
            b"BDAT 99999999999999999999999",
        ] {
            assert_eq!(parse(bad).unwrap_err().code, 501, "{bad:?}");
        }
    }

    #[test]
    fn nasty_lines_get_replies() {
        let cases: &[(&[u8], u16)] = &[
            (b"", 500),
            (b"\x00\xff", 500),
            (b"EHLO", 501),
            (b"EHLO \x01", 501),
            (b"MAIL", 501),
            (b"MAIL TO:<a@b>", 501),
            (b"MAIL FROM:<a@b> SIZE=x", 501),
            (b"MAIL FROM:<a@b> FOO=bar", 555),
            (b"MAIL FROM:a@b", 501),
            (b"RCPT TO:<a@b> NOTIFY=NEVER", 555),
            (b"RCPT TO:<>", 501),
            (b"DATA now", 501),
            (b"VRFY", 501),
            (b"GET / HTTP/1.1", 500),
            (b"STARTTLS now", 501),
            (b"AUTH", 501),
            (b"AUTH CRAM-MD5", 504),
            (b"AUTH PLAIN a b", 501),
        ];
        for (line, code) in cases {
            assert_eq!(parse(line).unwrap_err().code, *code, "{line:?}");
        }
    }
}
