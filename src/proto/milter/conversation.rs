//! Our side (the MTA's) of one conversation with one milter about one
//! message, as Postfix holds it, but all of it at the end of DATA: the
//! options, then connect, HELO, MAIL, each RCPT, DATA, each header
//! field, the end of the header, the body in pieces, and the end of
//! the message, each with the macros a milter expects (`{client_addr}`,
//! `i`, `{auth_authen}`, `{mail_addr}`, `{rcpt_addr}`...). Steps the
//! milter said it does without are left out, and replies it said it
//! will not send are not waited for. What it answers at the end (and
//! the header and body changes before it) is the [`Outcome`].
//!
//! Sans-I/O: the caller writes what [`Next`] says, reads the milter's
//! packets and hands each response back.

use std::net::IpAddr;

use super::wire::{Response, packet};

/// Protocol version 6 (Sendmail 8.14, Postfix 2.6 on).
const VERSION: u32 = 6;
/// What we let a milter do: add, change and insert header fields,
/// replace the body, quarantine. Not recipients, not the sender.
pub const ACTIONS: u32 = 0x01 | 0x02 | 0x10 | 0x20;
/// The steps a milter may leave out, and the replies it may not send.
const PROTOCOL: u32 = 0x001F_F7FF;

const NO_CONNECT: u32 = 0x1;
const NO_HELO: u32 = 0x2;
const NO_MAIL: u32 = 0x4;
const NO_RCPT: u32 = 0x8;
const NO_BODY: u32 = 0x10;
const NO_HDRS: u32 = 0x20;
const NO_EOH: u32 = 0x40;
const NR_HDR: u32 = 0x80;
const NO_DATA: u32 = 0x200;
const NR_CONN: u32 = 0x1000;
const NR_HELO: u32 = 0x2000;
const NR_MAIL: u32 = 0x4000;
const NR_RCPT: u32 = 0x8000;
const NR_DATA: u32 = 0x10000;
const NR_EOH: u32 = 0x40000;
const NR_BODY: u32 = 0x80000;
const HDR_LEADSPC: u32 = 0x100000;

/// What the milter is told of the SMTP session and transaction.
#[derive(Debug, Clone)]
pub struct Facts {
    /// Our host name (macro `j`).
    pub hostname: String,
    /// The client's address and port.
    pub client: (IpAddr, u16),
    /// The client's verified reverse name, if any.
    pub client_name: Option<String>,
    pub helo: String,
    /// The queue id (macro `i`).
    pub queue_id: String,
    /// The logged-in user (`{auth_authen}`), if any.
    pub auth_user: Option<String>,
    /// The TLS version and cipher, if any.
    pub tls: Option<(String, String)>,
    /// MAIL FROM, without brackets (empty for `<>`).
    pub sender: String,
    pub rcpts: Vec<String>,
}

/// A header change a milter asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    /// At the end of the header.
    Add { name: String, value: String },
    /// At `index` (0: first).
    Insert {
        index: u32,
        name: String,
        value: String,
    },
    /// The `index`th field (from 1) of this name; an empty value
    /// removes it.
    Change {
        index: u32,
        name: String,
        value: String,
    },
}

/// The milter's word on the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Go on (with the changes).
    Continue,
    /// Refuse with 5xx: its own reply, or ours.
    Reject(Option<String>),
    /// Refuse with 4xx: its own reply, or ours.
    Tempfail(Option<String>),
    /// Accept and drop it.
    Discard,
}

/// What came of the conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub verdict: Verdict,
    pub edits: Vec<Edit>,
    /// The new body, CRLF line ends, if it was replaced.
    pub body: Option<Vec<u8>>,
    /// Quarantine (Junk here), and why.
    pub quarantine: Option<String>,
}

/// What the caller does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Write these bytes, then read one response and [`answer`] it.
    ///
    /// [`answer`]: Conversation::answer
    Ask(Vec<u8>),
    /// Write these bytes; no reply comes: call [`proceed`].
    ///
    /// [`proceed`]: Conversation::proceed
    Tell(Vec<u8>),
    /// Read one more response (the milter said it is still working).
    Wait,
    /// Give the next body piece (CRLF line ends, at most 64 KiB) to
    /// [`body`], or an empty one at the end.
    ///
    /// [`body`]: Conversation::body
    Body,
    /// Over: write `QUIT` and close.
    Done(Outcome),
    /// The milter broke the protocol.
    Broken(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Negotiating,
    Connect,
    Helo,
    Mail,
    Rcpt(usize),
    Data,
    Header(usize),
    Eoh,
    Body,
    EndOfMessage,
}

/// One conversation.
#[derive(Debug)]
pub struct Conversation {
    facts: Facts,
    /// Header fields: name, and the value as written (CRLF inside).
    fields: Vec<(String, String)>,
    stage: Stage,
    /// The milter's protocol flags (steps left out, replies not sent).
    protocol: u32,
    actions: u32,
    edits: Vec<Edit>,
    body: Option<Vec<u8>>,
    quarantine: Option<String>,
}

/// The option packet we start with.
pub fn options() -> Vec<u8> {
    let mut d = Vec::with_capacity(12);
    for n in [VERSION, ACTIONS, PROTOCOL] {
        d.extend_from_slice(&n.to_be_bytes());
    }
    packet(b'O', &d)
}

/// `D` packets: the macros for a stage.
fn macros(stage: u8, pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut d = vec![stage];
    for (name, value) in pairs {
        d.extend_from_slice(name.as_bytes());
        d.push(0);
        d.extend_from_slice(value.as_bytes());
        d.push(0);
    }
    packet(b'D', &d)
}

/// A string with NULs taken out (they would end it early).
fn z(s: &str) -> Vec<u8> {
    let mut v: Vec<u8> = s.bytes().filter(|&b| b != 0).collect();
    v.push(0);
    v
}

impl Conversation {
    /// A conversation about a message with these header fields; the
    /// first thing to write is the option packet.
    pub fn start(
        facts: Facts,
        fields: Vec<(String, String)>,
    ) -> (Conversation, Next) {
        let c = Conversation {
            facts,
            fields,
            stage: Stage::Negotiating,
            protocol: 0,
            actions: 0,
            edits: Vec::new(),
            body: None,
            quarantine: None,
        };
        (c, Next::Ask(options()))
    }

    fn done(&mut self, verdict: Verdict) -> Next {
        Next::Done(Outcome {
            verdict,
            edits: std::mem::take(&mut self.edits),
            body: self.body.take(),
            quarantine: self.quarantine.take(),
        })
    }

    /// The milter's response to what we last asked.
    pub fn answer(&mut self, r: Response) -> Next {
        if self.stage == Stage::Negotiating {
            let Response::Negotiate {
                version,
                actions,
                protocol,
            } = r
            else {
                return Next::Broken("no option negotiation");
            };
            if !(2..=VERSION).contains(&version) {
                return Next::Broken("unknown protocol version");
            }
            self.actions = actions & ACTIONS;
            self.protocol = protocol & PROTOCOL;
            self.stage = Stage::Connect;
            return self.step();
        }
        let at_end = self.stage == Stage::EndOfMessage;
        match r {
            Response::Progress => Next::Wait,
            Response::Continue if at_end => self.done(Verdict::Continue),
            Response::Continue => self.proceed(),
            // Accepted: nothing more is asked of this milter; at the
            // end, its changes stand.
            Response::Accept => {
                if !at_end {
                    self.edits.clear();
                    self.body = None;
                }
                self.done(Verdict::Continue)
            }
            Response::Reject => self.done(Verdict::Reject(None)),
            Response::Tempfail => self.done(Verdict::Tempfail(None)),
            Response::Discard => self.done(Verdict::Discard),
            Response::ReplyCode(text) => match text.as_bytes().first() {
                Some(b'4') => self.done(Verdict::Tempfail(Some(text))),
                Some(b'5') => self.done(Verdict::Reject(Some(text))),
                _ => Next::Broken("reply code neither 4xx nor 5xx"),
            },
            Response::Skip if self.stage == Stage::Body => {
                self.stage = Stage::EndOfMessage;
                self.step()
            }
            Response::Skip => Next::Broken("skip outside the body"),
            r if at_end => self.change(r),
            _ => Next::Broken("a change before the end of the message"),
        }
    }

    /// At the end of the message: a change (then the next response).
    fn change(&mut self, r: Response) -> Next {
        let allowed = |bit: u32| self.actions & bit != 0;
        match r {
            Response::AddHeader { name, value } if allowed(0x01) => {
                self.edits.push(Edit::Add { name, value })
            }
            Response::InsertHeader { index, name, value } if allowed(0x01) => {
                self.edits.push(Edit::Insert { index, name, value })
            }
            Response::ChangeHeader { index, name, value } if allowed(0x10) => {
                self.edits.push(Edit::Change { index, name, value })
            }
            Response::ReplaceBody(piece) if allowed(0x02) => {
                let body = self.body.get_or_insert_with(Vec::new);
                if body.len() + piece.len() > super::MAX_BODY {
                    return Next::Broken("replacement body too large");
                }
                body.extend_from_slice(&piece);
            }
            Response::Quarantine(why) if allowed(0x20) => {
                self.quarantine = Some(why)
            }
            _ => return Next::Broken("a change we did not offer"),
        }
        Next::Wait
    }

    /// After a step whose reply the milter does not send.
    pub fn proceed(&mut self) -> Next {
        self.stage = match self.stage {
            Stage::Negotiating => return Next::Broken("not negotiated"),
            Stage::Connect => Stage::Helo,
            Stage::Helo => Stage::Mail,
            Stage::Mail => Stage::Rcpt(0),
            Stage::Rcpt(i) if i + 1 < self.facts.rcpts.len() => {
                Stage::Rcpt(i + 1)
            }
            Stage::Rcpt(_) => Stage::Data,
            Stage::Data => Stage::Header(0),
            Stage::Header(i) if i + 1 < self.fields.len() => {
                Stage::Header(i + 1)
            }
            Stage::Header(_) => Stage::Eoh,
            Stage::Eoh => Stage::Body,
            Stage::Body => return Next::Body,
            Stage::EndOfMessage => return Next::Wait,
        };
        self.step()
    }

    /// The next body piece (empty: the body has ended).
    pub fn body(&mut self, piece: &[u8]) -> Next {
        if self.stage != Stage::Body {
            return Next::Broken("body out of turn");
        }
        if piece.is_empty() {
            self.stage = Stage::EndOfMessage;
            return self.step();
        }
        let bytes = packet(b'B', piece);
        self.send(bytes, NR_BODY)
    }

    fn send(&self, bytes: Vec<u8>, no_reply: u32) -> Next {
        match self.protocol & no_reply != 0 {
            true => Next::Tell(bytes),
            false => Next::Ask(bytes),
        }
    }

    /// What the current stage sends (or the next, if left out).
    fn step(&mut self) -> Next {
        let f = &self.facts;
        let skipped = |bit: u32| self.protocol & bit != 0;
        match self.stage {
            Stage::Connect if !skipped(NO_CONNECT) => {
                let (ip, port) = f.client;
                let name =
                    f.client_name.clone().unwrap_or_else(|| format!("[{ip}]"));
                let addr = ip.to_string();
                let mut out = macros(
                    b'C',
                    &[
                        ("j", &f.hostname),
                        ("{daemon_name}", "postling"),
                        ("v", concat!("postling ", env!("CARGO_PKG_VERSION"))),
                        ("_", &format!("{name} [{addr}]")),
                        ("{client_addr}", &addr),
                        ("{client_name}", &name),
                        ("{client_port}", &port.to_string()),
                    ],
                );
                let mut d = z(&name);
                d.push(if ip.is_ipv4() { b'4' } else { b'6' });
                d.extend_from_slice(&port.to_be_bytes());
                d.extend(z(&addr));
                out.extend(packet(b'C', &d));
                self.send(out, NR_CONN)
            }
            Stage::Helo if !skipped(NO_HELO) => {
                let (version, cipher) = f.tls.clone().unwrap_or_default();
                let mut out = macros(
                    b'H',
                    &[("{tls_version}", &version), ("{cipher}", &cipher)],
                );
                out.extend(packet(b'H', &z(&f.helo)));
                self.send(out, NR_HELO)
            }
            Stage::Mail if !skipped(NO_MAIL) => {
                let auth = f.auth_user.clone().unwrap_or_default();
                let mut out = macros(
                    b'M',
                    &[
                        ("i", &f.queue_id),
                        (
                            "{auth_type}",
                            if auth.is_empty() { "" } else { "PLAIN" },
                        ),
                        ("{auth_authen}", &auth),
                        ("{mail_addr}", &f.sender),
                        ("{mail_mailer}", "smtp"),
                    ],
                );
                out.extend(packet(b'M', &z(&format!("<{}>", f.sender))));
                self.send(out, NR_MAIL)
            }
            Stage::Rcpt(i) if !skipped(NO_RCPT) && i < f.rcpts.len() => {
                let rcpt = &f.rcpts[i];
                let mut out = macros(
                    b'R',
                    &[("{rcpt_addr}", rcpt), ("{rcpt_mailer}", "local")],
                );
                out.extend(packet(b'R', &z(&format!("<{rcpt}>"))));
                self.send(out, NR_RCPT)
            }
            Stage::Data if !skipped(NO_DATA) => {
                let mut out = macros(b'T', &[("i", &f.queue_id)]);
                out.extend(packet(b'T', b""));
                self.send(out, NR_DATA)
            }
            Stage::Header(i) if !skipped(NO_HDRS) && i < self.fields.len() => {
                let (name, value) = &self.fields[i];
                // Without HDR_LEADSPC, the one space after the colon is
                // not part of the value (as Sendmail sends it).
                let value = match skipped(HDR_LEADSPC) {
                    true => value.as_str(),
                    false => value.strip_prefix(' ').unwrap_or(value),
                };
                let mut d = z(name);
                d.extend(z(value));
                self.send(packet(b'L', &d), NR_HDR)
            }
            Stage::Eoh if !skipped(NO_EOH) => {
                self.send(packet(b'N', b""), NR_EOH)
            }
            Stage::Body if !skipped(NO_BODY) => Next::Body,
            Stage::Body => {
                self.stage = Stage::EndOfMessage;
                self.step()
            }
            Stage::EndOfMessage => {
                let mut out = macros(b'E', &[("i", &f.queue_id)]);
                out.extend(packet(b'E', b""));
                Next::Ask(out)
            }
            // Left out (or no recipients, no fields): the next step.
            _ => self.proceed(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::wire::{Packet, Reader};
    use super::*;

    fn facts() -> Facts {
        Facts {
            hostname: "mx.example.test".into(),
            client: ("192.0.2.7".parse().unwrap(), 40000),
            client_name: Some("mail.sender.test".into()),
            helo: "mail.sender.test".into(),
            queue_id: "Q1".into(),
            auth_user: None,
            tls: None,
            sender: "a@sender.test".into(),
            rcpts: vec!["b@example.test".into(), "c@example.test".into()],
        }
    }

    fn sent(bytes: &[u8]) -> Vec<Packet> {
        let mut r = Reader::default();
        r.feed(bytes);
        std::iter::from_fn(|| r.packet().unwrap()).collect()
    }

    fn negotiate(protocol: u32, actions: u32) -> Response {
        Response::Negotiate {
            version: 6,
            actions,
            protocol,
        }
    }

    /// Runs a conversation with a milter that answers `reply` to every
    /// question and `at_end` at the end; returns what was sent and the
    /// outcome.
    fn run(
        protocol: u32,
        at_end: Vec<Response>,
        body: &[&[u8]],
    ) -> (Vec<Packet>, Outcome) {
        let fields = vec![("Subject".to_string(), " hi".to_string())];
        let (mut c, mut next) = Conversation::start(facts(), fields);
        let mut all = Vec::new();
        let mut pieces = body.iter();
        let mut first = true;
        let mut end = at_end.into_iter();
        loop {
            next = match next {
                Next::Ask(bytes) => {
                    let ps = sent(&bytes);
                    let eom = ps.last().is_some_and(|p| p.cmd == b'E');
                    all.extend(ps);
                    if std::mem::take(&mut first) {
                        c.answer(negotiate(protocol, ACTIONS))
                    } else if eom {
                        c.answer(end.next().unwrap())
                    } else {
                        c.answer(Response::Continue)
                    }
                }
                Next::Tell(bytes) => {
                    all.extend(sent(&bytes));
                    c.proceed()
                }
                Next::Wait => c.answer(end.next().unwrap()),
                Next::Body => c.body(pieces.next().copied().unwrap_or(b"")),
                Next::Done(o) => return (all, o),
                Next::Broken(why) => panic!("{why}"),
            }
        }
    }

    #[test]
    fn every_step_with_its_macros() {
        let (sent, out) = run(0, vec![Response::Continue], &[b"line\r\n"]);
        let cmds: String = sent.iter().map(|p| p.cmd as char).collect();
        assert_eq!(cmds, "ODCDHDMDRDRDTLNBDE");
        let connect = &sent[2].data;
        assert!(connect.starts_with(b"mail.sender.test\0"));
        assert_eq!(&connect[17..20], b"4\x9c\x40");
        let needle = b"{client_addr}\x00192.0.2.7\x00";
        assert!(sent[1].data.windows(needle.len()).any(|w| w == needle));
        let mail_macros = String::from_utf8_lossy(&sent[5].data).to_string();
        assert!(
            mail_macros.contains("i\0Q1\0")
                && mail_macros.contains("{mail_addr}\0a@sender.test\0")
        );
        assert_eq!(sent[6].data, b"<a@sender.test>\0");
        assert_eq!(sent[13].data, b"Subject\0hi\0");
        assert_eq!(sent[15].data, b"line\r\n");
        assert_eq!(out.verdict, Verdict::Continue);
    }

    #[test]
    fn steps_left_out_and_replies_not_waited_for() {
        let protocol = NO_CONNECT
            | NO_HELO
            | NO_RCPT
            | NR_MAIL
            | NR_HDR
            | NO_EOH
            | NO_DATA;
        let (sent, _) = run(protocol, vec![Response::Continue], &[b"x\r\n"]);
        let cmds: String = sent.iter().map(|p| p.cmd as char).collect();
        assert_eq!(cmds, "ODMLBDE");
        let (sent, _) = run(NO_BODY, vec![Response::Continue], &[b"x\r\n"]);
        assert!(!sent.iter().any(|p| p.cmd == b'B'));
    }

    #[test]
    fn changes_and_final_words() {
        let (_, out) = run(
            0,
            vec![
                Response::AddHeader {
                    name: "X-Spam".into(),
                    value: "Yes".into(),
                },
                Response::ChangeHeader {
                    index: 1,
                    name: "Subject".into(),
                    value: "".into(),
                },
                Response::ReplaceBody(b"new\r\n".to_vec()),
                Response::Quarantine("virus".into()),
                Response::Progress,
                Response::Accept,
            ],
            &[b"old\r\n"],
        );
        assert_eq!(out.verdict, Verdict::Continue);
        assert_eq!(out.edits.len(), 2);
        assert_eq!(out.body.as_deref(), Some(&b"new\r\n"[..]));
        assert_eq!(out.quarantine.as_deref(), Some("virus"));
        let (_, out) = run(
            0,
            vec![Response::ReplyCode("554 5.7.1 Gtube pattern".into())],
            &[],
        );
        assert_eq!(
            out.verdict,
            Verdict::Reject(Some("554 5.7.1 Gtube pattern".into()))
        );
        let (_, out) = run(0, vec![Response::Tempfail], &[]);
        assert_eq!(out.verdict, Verdict::Tempfail(None));
        let (_, out) = run(0, vec![Response::Discard], &[]);
        assert_eq!(out.verdict, Verdict::Discard);
    }

    #[test]
    fn protocol_errors() {
        let (mut c, _) = Conversation::start(facts(), Vec::new());
        assert!(matches!(c.answer(Response::Continue), Next::Broken(_)));
        let (mut c, _) = Conversation::start(facts(), Vec::new());
        let v1 = Response::Negotiate {
            version: 1,
            actions: 0,
            protocol: 0,
        };
        assert!(matches!(c.answer(v1), Next::Broken(_)));
        let (mut c, _) = Conversation::start(facts(), Vec::new());
        c.answer(negotiate(0, ACTIONS));
        // A change in answer to CONNECT.
        let early = Response::AddHeader {
            name: "X".into(),
            value: "y".into(),
        };
        assert!(matches!(c.answer(early), Next::Broken(_)));
        let (mut c, _) = Conversation::start(facts(), Vec::new());
        c.answer(negotiate(0, ACTIONS));
        assert!(matches!(
            c.answer(Response::ReplyCode("250 ok".into())),
            Next::Broken(_)
        ));
    }
}
