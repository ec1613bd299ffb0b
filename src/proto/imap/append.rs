//! APPEND's arguments, read a line segment at a time between the
//! literals that stream to the spool: MULTIAPPEND (RFC 3502) messages
//! and CATENATE (RFC 4469) parts.

use super::args::{Args, Bad};
use super::frame::Literal;

/// At most this many messages and parts in one APPEND.
const MAX_PIECES: usize = 1000;

/// One message of an APPEND.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppendMessage {
    /// Flag names given.
    pub flags: Vec<String>,
    /// INTERNALDATE (seconds since the epoch), if given.
    pub date: Option<i64>,
    /// Its pieces, in order.
    pub parts: Vec<Part>,
}

impl AppendMessage {
    /// One literal, as plain APPEND sends it: stored as it came.
    pub fn is_plain(&self) -> bool {
        matches!(self.parts.as_slice(), [Part::Text { .. }])
    }
}

/// A piece of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// The next `len` octets of the spool (LF line ends, or as sent for
    /// a literal8).
    Text {
        /// Octets in the spool.
        len: u64,
        /// literal8: CRLF kept, binary parts to re-encode.
        binary: bool,
    },
    /// A message or part of one, named by an IMAP URL (RFC 5092).
    Url(String),
}

/// What the session does after a segment.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Stream this literal into the last message.
    Literal(Literal),
    /// The command is complete.
    Done,
}

/// An APPEND being read.
#[derive(Debug)]
pub struct Plan {
    /// The destination folder.
    pub folder: String,
    /// The messages so far.
    pub messages: Vec<AppendMessage>,
    /// Inside `CATENATE (`.
    in_catenate: bool,
    /// Literal octets announced so far.
    pub announced: u64,
}

impl Plan {
    /// A plan for `folder`; `read` takes what follows the mailbox name.
    pub fn new(folder: String) -> Plan {
        Plan {
            folder,
            messages: Vec::new(),
            in_catenate: false,
            announced: 0,
        }
    }

    /// Counts octets streamed into the last message's last text part.
    pub fn streamed(&mut self, n: u64) {
        if let Some(Part::Text { len, .. }) =
            self.messages.last_mut().and_then(|m| m.parts.last_mut())
        {
            *len += n;
        }
    }

    /// Reads `seg`, the arguments up to `lit`'s announcement (or to the
    /// end of the command when `lit` is None).
    pub fn read(
        &mut self,
        seg: &[u8],
        lit: Option<Literal>,
    ) -> Result<Next, Bad> {
        let mut a = Args::new(seg);
        loop {
            if self.in_catenate {
                if a.byte(b')') {
                    self.in_catenate = false;
                    continue;
                }
                let first = matches!(
                    self.messages.last().map(|m| m.parts.len()),
                    Some(0)
                );
                if !first {
                    a.sp()?;
                }
                if a.keyword("TEXT ") {
                    if !a.at_end() {
                        return Err(Bad("TEXT needs a literal"));
                    }
                    return self.literal(lit);
                }
                if a.keyword("URL ") {
                    let url = a.astring()?;
                    let url = String::from_utf8(url.into_owned())
                        .map_err(|_| Bad("bad URL"))?;
                    self.add_part(Part::Url(url))?;
                    continue;
                }
                return Err(Bad("expected TEXT, URL or )"));
            }
            if a.at_end() {
                return match lit {
                    None if !self.messages.is_empty() => Ok(Next::Done),
                    _ => Err(Bad("APPEND needs a message")),
                };
            }
            a.sp()?;
            let mut msg = AppendMessage::default();
            if a.peek() == Some(b'(') {
                let flags = a.list(|a| a.flag())?;
                msg.flags = flags
                    .iter()
                    .map(|f| String::from_utf8_lossy(f).into_owned())
                    .collect();
                a.sp()?;
            }
            if a.peek() == Some(b'"') {
                let d = a.string()?;
                msg.date =
                    Some(parse_date_time(&d).ok_or(Bad("bad date-time"))?);
                a.sp()?;
            }
            if a.at_end() {
                return self.start(msg, lit);
            }
            if a.keyword("CATENATE") {
                a.sp()?;
                if !a.byte(b'(') {
                    return Err(Bad("expected ("));
                }
                self.push(msg)?;
                self.in_catenate = true;
                continue;
            }
            return Err(Bad("expected a message literal or CATENATE"));
        }
    }

    /// A plain message: its literal follows.
    fn start(
        &mut self,
        msg: AppendMessage,
        lit: Option<Literal>,
    ) -> Result<Next, Bad> {
        self.push(msg)?;
        self.literal(lit)
    }

    fn literal(&mut self, lit: Option<Literal>) -> Result<Next, Bad> {
        let lit = lit.ok_or(Bad("expected a literal"))?;
        self.add_part(Part::Text {
            len: 0,
            binary: lit.binary,
        })?;
        self.announced = self.announced.saturating_add(lit.len);
        Ok(Next::Literal(lit))
    }

    fn push(&mut self, msg: AppendMessage) -> Result<(), Bad> {
        if self.pieces() >= MAX_PIECES {
            return Err(Bad("too many messages in one APPEND"));
        }
        self.messages.push(msg);
        Ok(())
    }

    fn add_part(&mut self, part: Part) -> Result<(), Bad> {
        if self.pieces() >= MAX_PIECES {
            return Err(Bad("too many parts in one APPEND"));
        }
        match self.messages.last_mut() {
            Some(m) => m.parts.push(part),
            None => return Err(Bad("expected a message")),
        }
        Ok(())
    }

    fn pieces(&self) -> usize {
        self.messages.len()
            + self.messages.iter().map(|m| m.parts.len()).sum::<usize>()
    }

    /// A CATENATE without parts is malformed.
    pub fn check(&self) -> Result<(), Bad> {
        if self.messages.iter().any(|m| m.parts.is_empty()) {
            return Err(Bad("CATENATE needs at least one part"));
        }
        Ok(())
    }
}

/// `"dd-Mon-yyyy hh:mm:ss +zzzz"` (RFC 9051 date-time) as seconds since
/// the epoch.
pub fn parse_date_time(s: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(s).ok()?.trim_start();
    let (date, rest) = s.split_once(' ')?;
    let (time, zone) = rest.split_once(' ')?;
    let mut a = super::args::Args::new(date.as_bytes());
    let days = super::search::date(&mut a).ok()?;
    if !a.at_end() {
        return None;
    }
    let t: Vec<i64> = time
        .split(':')
        .map(|p| p.parse().ok().filter(|_| p.len() == 2))
        .collect::<Option<_>>()?;
    let [h, m, sec] = t[..] else { return None };
    if h > 23 || m > 59 || sec > 60 {
        return None;
    }
    let zone = zone.as_bytes();
    if zone.len() != 5 || !matches!(zone[0], b'+' | b'-') {
        return None;
    }
    let z: i64 = std::str::from_utf8(&zone[1..]).ok()?.parse().ok()?;
    let offset = (z / 100) * 3600 + (z % 100) * 60;
    let offset = if zone[0] == b'-' { -offset } else { offset };
    Some(days * 86_400 + h * 3600 + m * 60 + sec - offset)
}

#[cfg(test)]
mod tests {
    use super::super::frame::literal_at_end;
    use super::*;

    /// Feeds a command's segments as the session does: `segs` are the
    /// lines, each literal's octets left out.
    fn run(segs: &[&[u8]]) -> Result<Plan, Bad> {
        let mut plan = Plan::new("INBOX".into());
        for (i, seg) in segs.iter().enumerate() {
            let lit = literal_at_end(seg);
            let text = lit.map_or(*seg, |l| &seg[..l.at]);
            match plan.read(text, lit)? {
                Next::Literal(l) => {
                    assert!(i + 1 < segs.len(), "literal at the end");
                    plan.streamed(l.len);
                }
                Next::Done => assert_eq!(i + 1, segs.len()),
            }
        }
        plan.check()?;
        Ok(plan)
    }

    #[test]
    fn plain_and_multi() {
        let p = run(&[b" (\\Seen) \"7-Feb-1994 21:52:25 -0800\" {5}", b""])
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(p.messages.len(), 1);
        assert!(p.messages[0].is_plain());
        assert_eq!(p.messages[0].flags, vec!["\\Seen".to_string()]);
        assert!(p.messages[0].date.is_some());
        let p = run(&[b" {5}", b" (\\Flagged) {7+}", b" {1}", b""])
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(p.messages.len(), 3);
        assert_eq!(p.announced, 13);
    }

    #[test]
    fn catenate_parts() {
        let p = run(&[
            b" (\\Seen) CATENATE (URL \"/INBOX;UIDVALIDITY=1/;UID=2\" TEXT {4}",
            b" URL \"/a/;uid=1/;section=1\")",
        ])
        .unwrap_or_else(|e| panic!("{e:?}"));
        let parts = &p.messages[0].parts;
        assert_eq!(parts.len(), 3);
        assert!(matches!(parts[1], Part::Text { len: 4, .. }));
        // One line, URLs only; then two messages, the second plain.
        let p = run(&[b" CATENATE (URL \"/a/;uid=1\") {3}", b""])
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(p.messages.len(), 2);
    }

    #[test]
    fn malformed() {
        for segs in [
            &[&b""[..]][..],
            &[b" CATENATE ()"],
            &[b" CATENATE (URL)"],
            &[b" CATENATE (TEXT \"x\")"],
            &[b" (\\Seen"],
            &[b" \"bad date\" {3}", b""],
            &[b" {3}", b" junk"],
            &[b" CATENATE (URL \"/a/;uid=1\""],
        ] {
            assert!(run(segs).is_err(), "{segs:?}");
        }
    }
}
