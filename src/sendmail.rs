//! `postling sendmail` (and the binary run as `sendmail`): the command
//! cron, git send-email and scripts call. It reads a message from
//! standard input and hands it to the running server over the local
//! socket, speaking SMTP through our own client; the server stores it
//! as it would a submission from the host (delivered, or queued and
//! DKIM-signed). Exit codes as sendmail's (sysexits.h).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use crate::proto::smtp::client::session::{
    Action, Client, Message, Outcome, TlsPolicy,
};

/// Bad arguments.
pub const EX_USAGE: u8 = 64;
/// Bad input: no recipients, a bad address, no message.
pub const EX_DATAERR: u8 = 65;
/// Refused for good by the server.
pub const EX_UNAVAILABLE: u8 = 69;
/// The server is not running, or said to try later: try again.
pub const EX_TEMPFAIL: u8 = 75;
/// The server refused the sender as not ours to use.
pub const EX_NOPERM: u8 = 77;

/// What `sendmail` was asked.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Args {
    /// `-t`: recipients from To, Cc and Bcc (Bcc removed).
    pub from_headers: bool,
    /// `-i` / `-oi`: a line with a single dot does not end the message.
    pub ignore_dots: bool,
    /// `-f`: the envelope sender.
    pub sender: Option<String>,
    /// `-F`: the full name for a From field we add.
    pub full_name: Option<String>,
    /// Recipients given as arguments.
    pub rcpts: Vec<String>,
}

/// Reads sendmail's arguments; flags it does not need (`-oem`, `-odi`,
/// `-bm`, ...) are taken and ignored, as other MTAs' sendmail does.
pub fn parse(args: &[String]) -> Result<Args, String> {
    let mut a = Args::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "-t" => a.from_headers = true,
            "-i" | "-oi" => a.ignore_dots = true,
            "-f" | "-r" => {
                a.sender =
                    Some(it.next().ok_or("-f needs an address")?.clone())
            }
            "-F" => {
                a.full_name = Some(it.next().ok_or("-F needs a name")?.clone())
            }
            "--" => a.rcpts.extend(it.by_ref().cloned()),
            s if s.starts_with("-f") && s.len() > 2 => {
                a.sender = Some(s[2..].to_string())
            }
            s if s.starts_with("-F") && s.len() > 2 => {
                a.full_name = Some(s[2..].to_string())
            }
            s if s.starts_with("-o")
                || s.starts_with("-b")
                || s.starts_with("-e") => {}
            s if s.starts_with('-') => {
                return Err(format!("unknown option {s}"));
            }
            s => a.rcpts.push(s.to_string()),
        }
    }
    Ok(a)
}

/// The message as given: until end of input, or (without `-i`) a line
/// holding only a dot.
pub fn read_message(
    input: &mut dyn Read,
    ignore_dots: bool,
    limit: u64,
) -> Result<Vec<u8>, String> {
    let mut raw = Vec::new();
    input
        .take(limit + 1)
        .read_to_end(&mut raw)
        .map_err(|e| format!("reading the message: {e}"))?;
    if raw.len() as u64 > limit {
        return Err(format!("the message is over {limit} octets"));
    }
    if !ignore_dots {
        let mut at = 0;
        while at < raw.len() {
            let end = memchr::memchr(b'\n', &raw[at..])
                .map_or(raw.len(), |e| at + e + 1);
            let line = &raw[at..end];
            if line == b".\n" || line == b".\r\n" || line == b"." {
                raw.truncate(at);
                break;
            }
            at = end;
        }
    }
    Ok(raw)
}

/// The header block's end (after its blank line) in `msg` (LF or CRLF).
fn header_end(msg: &[u8]) -> usize {
    let mut at = 0;
    while at < msg.len() {
        let end = memchr::memchr(b'\n', &msg[at..])
            .map_or(msg.len(), |e| at + e + 1);
        let line = &msg[at..end];
        if line == b"\n" || line == b"\r\n" {
            return end;
        }
        // A message that starts with a body line: no header.
        if at == 0 && !line.contains(&b':') {
            return 0;
        }
        at = end;
    }
    msg.len()
}

/// `-t`: the addresses in To, Cc and Bcc, and the message without Bcc.
pub fn recipients_from_headers(msg: &[u8]) -> (Vec<String>, Vec<u8>) {
    let end = header_end(msg);
    let (head, body) = msg.split_at(end);
    let mut rcpts = Vec::new();
    let mut kept = Vec::with_capacity(msg.len());
    let mut skipping = false;
    for line in head.split_inclusive(|&b| b == b'\n') {
        let continuation = matches!(line.first(), Some(b' ') | Some(b'\t'));
        if !continuation {
            let name = line
                .split(|&b| b == b':')
                .next()
                .unwrap_or_default()
                .trim_ascii();
            skipping = name.eq_ignore_ascii_case(b"bcc");
        }
        if !skipping {
            kept.extend_from_slice(line);
        }
    }
    for (name, value) in crate::proto::imap::mime::fields_whole(head) {
        if ["to", "cc", "bcc"]
            .iter()
            .any(|n| name.eq_ignore_ascii_case(n))
        {
            for a in crate::proto::imap::structure::addresses(&value) {
                if let (Some(m), Some(h)) = (a.mailbox, a.host) {
                    rcpts.push(format!(
                        "{}@{}",
                        String::from_utf8_lossy(&m),
                        String::from_utf8_lossy(&h)
                    ));
                }
            }
        }
    }
    kept.extend_from_slice(body);
    (rcpts, kept)
}

/// Adds From, Date and Message-ID when the message has none (RFC 5322
/// asks for the first two; receivers score mail without the third).
pub fn complete_header(
    msg: Vec<u8>,
    sender: &str,
    full_name: Option<&str>,
    hostname: &str,
    now: std::time::SystemTime,
) -> Vec<u8> {
    let end = header_end(&msg);
    let fields = crate::proto::imap::mime::fields(&msg[..end]);
    let has = |n: &str| fields.iter().any(|(f, _)| f.eq_ignore_ascii_case(n));
    let mut add = String::new();
    if !has("from") {
        match full_name {
            Some(name) => {
                let name = name.replace(['"', '\\', '\r', '\n'], "");
                add.push_str(&format!("From: \"{name}\" <{sender}>\n"));
            }
            None => add.push_str(&format!("From: {sender}\n")),
        }
    }
    if !has("date") {
        add.push_str(&format!("Date: {}\n", crate::util::date::rfc5322(now)));
    }
    if !has("message-id") {
        add.push_str(&format!(
            "Message-ID: <{}@{hostname}>\n",
            crate::util::id::queue_id()
        ));
    }
    let mut out = add.into_bytes();
    if end == 0 {
        // No header at all: ours, then a blank line, then the text.
        out.push(b'\n');
    }
    out.extend_from_slice(&msg);
    out
}

/// Who runs us, as an address at `domain` (the host name: the address
/// the server lets a local account use as its own).
pub fn default_sender(domain: &str) -> String {
    let uid = rustix::process::getuid().as_raw();
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let name = passwd
        .lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let (name, _, id) = (f.next()?, f.next()?, f.next()?);
            (id.parse::<u32>().ok()? == uid).then(|| name.to_string())
        })
        .next()
        .unwrap_or_else(|| format!("uid{uid}"));
    format!("{name}@{domain}")
}

/// Sends over the socket; the exit code and a line for stderr.
pub fn submit(
    socket: &Path,
    from: &str,
    rcpts: &[String],
    msg: &[u8],
) -> (u8, Option<String>) {
    let mut stream = match UnixStream::connect(socket) {
        Ok(s) => s,
        Err(e) => {
            return (
                EX_TEMPFAIL,
                Some(format!(
                    "the mail server is not running ({}: {e}); try again later",
                    socket.display()
                )),
            );
        }
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(300)));
    let wire = to_wire(msg);
    let mut client = Client::new("localhost", TlsPolicy::Off);
    let message = Message {
        from: from.to_string(),
        rcpts: rcpts.to_vec(),
        size: wire.len() as u64,
        eight_bit: msg.iter().any(|&b| b >= 0x80),
        utf8: false,
    };
    let mut pending = Some(message);
    let mut buf = vec![0u8; 8192];
    let mut input = Vec::new();
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => return (
                EX_TEMPFAIL,
                Some(
                    "the mail server closed the connection; try again later"
                        .into(),
                ),
            ),
            Ok(n) => n,
        };
        input.extend_from_slice(&buf[..n]);
        let (used, actions) = client.feed(&input);
        input.drain(..used);
        let mut queue: std::collections::VecDeque<Action> = actions.into();
        while let Some(action) = queue.pop_front() {
            let written = match action {
                Action::Write(b) => stream.write_all(&b),
                Action::Ready => match pending.take() {
                    Some(m) => {
                        queue.extend(client.send(m));
                        Ok(())
                    }
                    None => Ok(()),
                },
                Action::SendBody => {
                    client.body_sent();
                    stream.write_all(&wire)
                }
                Action::Finished(outcomes) => {
                    let _ = stream.write_all(b"QUIT\r\n");
                    return verdict(rcpts, &outcomes);
                }
                Action::StartTls => Ok(()),
                Action::Close => {
                    return (EX_TEMPFAIL, Some("the mail server ended the session; try again later".into()));
                }
            };
            if let Err(e) = written {
                return (
                    EX_TEMPFAIL,
                    Some(format!("writing to the mail server: {e}")),
                );
            }
        }
    }
}

/// `ETRN` on the local socket: the running server tries every queued
/// message now.
pub fn etrn(socket: &Path) -> Result<(), String> {
    ask(socket, b"ETRN all\r\n").map(|_| ())
}

/// `XSTATUS` on the local socket: the running server's figures, as
/// text or JSON, a line each.
pub fn status(socket: &Path, json: bool) -> Result<Vec<String>, String> {
    let command: &[u8] = if json {
        b"XSTATUS JSON\r\n"
    } else {
        b"XSTATUS\r\n"
    };
    ask(socket, command)
}

/// Greets the server on the local socket, sends `command`, and returns
/// its reply's lines (a 2xx reply; anything else is the error).
fn ask(socket: &Path, command: &[u8]) -> Result<Vec<String>, String> {
    let mut stream = UnixStream::connect(socket).map_err(|e| {
        format!("the mail server is not running ({}: {e})", socket.display())
    })?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut reader = crate::proto::smtp::client::reply::Reader::default();
    let mut input = Vec::new();
    let mut buf = [0u8; 1024];
    let mut answer = Vec::new();
    for next in [&b"EHLO localhost\r\n"[..], command, b"QUIT\r\n"] {
        // The greeting comes first, then one reply per command.
        let reply = loop {
            let (used, got) = reader.read(&input);
            input.drain(..used);
            match got {
                Some(Ok(r)) => break r,
                Some(Err(_)) => {
                    return Err("the server's reply made no sense".into());
                }
                None => {}
            }
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => {
                    return Err("the server closed the connection".into());
                }
                Ok(n) => input.extend_from_slice(&buf[..n]),
            }
        };
        if !reply.is_ok() {
            return Err(format!("the server said: {}", reply.one_line()));
        }
        // The reply before QUIT is the command's.
        answer = reply.lines.clone();
        stream.write_all(next).map_err(|e| e.to_string())?;
    }
    Ok(answer)
}

/// The exit code for what became of the recipients.
fn verdict(rcpts: &[String], outcomes: &[Outcome]) -> (u8, Option<String>) {
    let mut worst = 0;
    let mut lines = Vec::new();
    for (r, o) in rcpts.iter().zip(outcomes) {
        match o {
            Outcome::Sent(_) => {}
            Outcome::Deferred(reply) => {
                worst = worst.max(EX_TEMPFAIL);
                lines.push(format!("<{r}>: {}", reply.one_line()));
            }
            // 553 5.7.1 at MAIL: the sender is not this account's.
            Outcome::Bounced(reply)
                if reply.code == 553
                    && reply.enhanced().as_deref() == Some("5.7.1") =>
            {
                worst = worst.max(EX_NOPERM);
                lines.push(format!("<{r}>: {}", reply.one_line()));
            }
            Outcome::Bounced(reply) => {
                worst = worst.max(EX_UNAVAILABLE);
                lines.push(format!("<{r}>: {}", reply.one_line()));
            }
        }
    }
    (worst, (!lines.is_empty()).then(|| lines.join("\n")))
}

/// The message as SMTP sends it: CRLF lines, leading dots doubled, and
/// the final dot line.
pub fn to_wire(msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len() + msg.len() / 40 + 5);
    for line in msg.split_inclusive(|&b| b == b'\n') {
        let text = line.strip_suffix(b"\n").unwrap_or(line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        if text.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(text);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn arguments() {
        let a =
            parse(&s(&["-t", "-oi", "-f", "me@x", "-Fname", "-odi", "b@y"]))
                .unwrap_or_default();
        assert!(a.from_headers && a.ignore_dots);
        assert_eq!(a.sender.as_deref(), Some("me@x"));
        assert_eq!(a.full_name.as_deref(), Some("name"));
        assert_eq!(a.rcpts, s(&["b@y"]));
        assert!(parse(&s(&["-Z"])).is_err());
        assert!(parse(&s(&["-f"])).is_err());
    }

    #[test]
    fn dots_headers_and_wire() {
        let m = read_message(&mut &b"a: b\n\nx\n.\nafter\n"[..], false, 1000)
            .unwrap_or_default();
        assert_eq!(m, b"a: b\n\nx\n");
        let m = read_message(&mut &b"a: b\n\nx\n.\nafter\n"[..], true, 1000)
            .unwrap_or_default();
        assert!(m.ends_with(b"after\n"));
        assert!(read_message(&mut &b"0123456789"[..], true, 5).is_err());
        let (rcpts, kept) = recipients_from_headers(b"To: A <a@x>, b@y\nBcc: secret@z,\n hidden@z\nCc: c@w\nSubject: s\n\nTo: not@me\n");
        assert_eq!(rcpts, s(&["a@x", "b@y", "secret@z", "hidden@z", "c@w"]));
        assert_eq!(
            kept,
            b"To: A <a@x>, b@y\nCc: c@w\nSubject: s\n\nTo: not@me\n"
        );
        assert_eq!(to_wire(b"a\n.b\nc"), b"a\r\n..b\r\nc\r\n.\r\n");
        let full = complete_header(
            b"Subject: s\n\nbody\n".to_vec(),
            "me@x",
            Some("Me \"Q\""),
            "h",
            std::time::SystemTime::now(),
        );
        let text = String::from_utf8_lossy(&full);
        assert!(text.starts_with("From: \"Me Q\" <me@x>\nDate: "), "{text}");
        assert!(
            text.contains("Message-ID: <")
                && text.ends_with("Subject: s\n\nbody\n")
        );
    }
}
