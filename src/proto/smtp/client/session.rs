//! One outbound SMTP connection as a state machine (RFC 5321 client,
//! RFC 2920 PIPELINING, RFC 3207 STARTTLS, RFC 1870 SIZE, RFC 6152
//! 8BITMIME, RFC 6531 SMTPUTF8). The loop feeds it the peer's bytes and
//! carries out its actions; several messages may go over one connection.

use std::collections::VecDeque;

use super::reply::{Garbled, Reader, Reply};

/// A message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The envelope sender, without brackets (empty for `<>`).
    pub from: String,
    /// The recipients, without brackets.
    pub rcpts: Vec<String>,
    /// Its size as it will be sent (CRLF), for SIZE.
    pub size: u64,
    /// It has octets over 127 in its body.
    pub eight_bit: bool,
    /// Its envelope or header needs SMTPUTF8.
    pub utf8: bool,
}

/// What became of one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted by the peer (2yz after the message).
    Sent(Reply),
    /// Try again later (4yz, or the connection failed).
    Deferred(Reply),
    /// Refused for good (5yz): a bounce.
    Bounced(Reply),
}

impl Outcome {
    fn of(reply: &Reply) -> Outcome {
        match reply.code {
            200..=299 => Outcome::Sent(reply.clone()),
            500..=599 => Outcome::Bounced(reply.clone()),
            _ => Outcome::Deferred(reply.clone()),
        }
    }
}

/// How much TLS matters on this connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsPolicy {
    /// Use STARTTLS when offered, go on without it otherwise (RFC 7435).
    Opportunistic,
    /// STARTTLS must work (a smarthost): otherwise defer.
    Required,
    /// TLS is already on (implicit TLS), or never wanted.
    Off,
}

/// What the loop must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write these octets.
    Write(Vec<u8>),
    /// Start the TLS handshake now, then call `tls_started`.
    StartTls,
    /// Stream the message now (dot-stuffed, then `.` CRLF), then call
    /// `body_sent`.
    SendBody,
    /// The message is done with: each recipient's outcome, in order.
    /// The connection is ready for another `send`, or `quit`.
    Finished(Vec<Outcome>),
    /// The connection is ready (greeted, EHLO done): `send` may begin.
    Ready,
    /// Close the connection; a message under way gets its outcomes in
    /// a `Finished` just before.
    Close,
}

/// The extensions the peer announced in its EHLO reply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extensions {
    /// PIPELINING.
    pub pipelining: bool,
    /// SIZE's limit (0: none given).
    pub size: Option<u64>,
    /// 8BITMIME.
    pub eight_bit: bool,
    /// SMTPUTF8.
    pub utf8: bool,
    /// STARTTLS.
    pub starttls: bool,
    /// AUTH mechanisms.
    pub auth: Vec<String>,
}

impl Extensions {
    fn from_ehlo(reply: &Reply) -> Extensions {
        let mut e = Extensions::default();
        for line in reply.lines.iter().skip(1) {
            let mut words = line.split_whitespace();
            let Some(word) = words.next() else { continue };
            match word.to_ascii_uppercase().as_str() {
                "PIPELINING" => e.pipelining = true,
                "SIZE" => {
                    e.size = Some(
                        words.next().and_then(|n| n.parse().ok()).unwrap_or(0),
                    )
                }
                "8BITMIME" => e.eight_bit = true,
                "SMTPUTF8" => e.utf8 = true,
                "STARTTLS" => e.starttls = true,
                "AUTH" => {
                    e.auth = words.map(str::to_ascii_uppercase).collect()
                }
                _ => {}
            }
        }
        e
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Greeting,
    Ehlo,
    Helo,
    StartTls,
    /// AUTH sent; with LOGIN, `step` answers given so far.
    Auth {
        step: u8,
    },
    /// Between messages.
    Ready,
    /// MAIL, RCPTs and DATA sent (or being sent one at a time).
    Envelope,
    /// The body is being streamed.
    Body,
    /// Waiting for the reply to the final dot.
    Final,
    Quit,
    Closed,
}

/// A client connection.
#[derive(Debug)]
pub struct Client {
    hostname: String,
    tls: TlsPolicy,
    tls_on: bool,
    state: State,
    reader: Reader,
    ext: Extensions,
    message: Option<Message>,
    /// Commands not yet written (without PIPELINING, one per reply).
    to_send: VecDeque<Vec<u8>>,
    /// Replies still expected to the envelope commands.
    expected: usize,
    mail: Option<Reply>,
    rcpts: Vec<Reply>,
    /// An RSET's reply is still to come.
    rset_pending: bool,
    /// User name and password for AUTH (a smarthost).
    login: Option<(String, String)>,
}

/// A reply we make up when the peer gave none we can use.
pub fn local_reply(code: u16, text: &str) -> Reply {
    Reply {
        code,
        lines: vec![text.to_string()],
    }
}

impl Client {
    /// A connection just opened; `hostname` is ours, for EHLO.
    pub fn new(hostname: &str, tls: TlsPolicy) -> Client {
        Client {
            hostname: hostname.to_string(),
            tls,
            tls_on: tls == TlsPolicy::Off,
            state: State::Greeting,
            reader: Reader::default(),
            ext: Extensions::default(),
            message: None,
            to_send: VecDeque::new(),
            expected: 0,
            mail: None,
            rcpts: Vec::new(),
            rset_pending: false,
            login: None,
        }
    }

    /// Logs in with AUTH PLAIN (or LOGIN) after EHLO, and after TLS when
    /// TLS is wanted; without a mechanism we can use, the connection
    /// fails.
    pub fn with_login(mut self, user: &str, password: &str) -> Client {
        self.login = Some((user.to_string(), password.to_string()));
        self
    }

    /// True once the connection is over (or failed), or QUIT is out.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed | State::Quit)
    }

    /// True once nothing more is read: the peer's bytes are not wanted.
    pub fn is_done(&self) -> bool {
        self.state == State::Closed
    }

    /// What the peer announced.
    pub fn extensions(&self) -> &Extensions {
        &self.ext
    }

    /// True while a TLS layer is on.
    pub fn tls_on(&self) -> bool {
        self.tls_on
    }

    /// Bytes from the peer: the octets used and what to do.
    pub fn feed(&mut self, input: &[u8]) -> (usize, Vec<Action>) {
        let mut used = 0;
        let mut actions = Vec::new();
        while self.state != State::Closed {
            let (n, got) = self.reader.read(&input[used..]);
            used += n;
            match got {
                None => break,
                Some(Ok(reply)) => actions.extend(self.reply(reply)),
                Some(Err(g)) => {
                    let why = match g {
                        Garbled::NotAReply => {
                            "4.5.0 the peer's reply made no sense"
                        }
                        Garbled::CodeChanged => {
                            "4.5.0 the peer changed its reply code"
                        }
                        Garbled::Endless => {
                            "4.5.0 the peer sent an endless line"
                        }
                    };
                    actions.extend(self.fail(local_reply(451, why)));
                    break;
                }
            }
            if n == 0 {
                break;
            }
        }
        (used, actions)
    }

    /// The connection ended or timed out: what was under way is
    /// deferred (at least once: a message whose dot got no reply may
    /// have arrived, and is sent again).
    pub fn lost(&mut self, why: &str) -> Vec<Action> {
        if self.state == State::Closed {
            return Vec::new();
        }
        self.fail(local_reply(421, &format!("4.4.2 {why}")))
    }

    /// The TLS handshake is done: EHLO again (RFC 3207 4.2).
    pub fn tls_started(&mut self) -> Vec<Action> {
        self.tls_on = true;
        self.ext = Extensions::default();
        self.state = State::Ehlo;
        vec![self.write(format!("EHLO {}\r\n", self.hostname))]
    }

    /// Sends a message (the connection must be Ready).
    pub fn send(&mut self, msg: Message) -> Vec<Action> {
        if self.state != State::Ready {
            let reply = local_reply(451, "4.3.0 connection not ready");
            return vec![Action::Finished(vec![
                Outcome::Deferred(reply);
                msg.rcpts.len()
            ])];
        }
        if let Some(limit) = self.ext.size.filter(|&l| l > 0 && msg.size > l) {
            // RFC 1870: the peer said it would refuse it.
            let reply = local_reply(
                552,
                &format!(
                    "5.3.4 message of {} octets is over the peer's limit of {limit}",
                    msg.size
                ),
            );
            return vec![Action::Finished(vec![
                Outcome::Bounced(reply);
                msg.rcpts.len()
            ])];
        }
        if msg.utf8 && !self.ext.utf8 {
            let reply = local_reply(
                553,
                "5.6.7 the message needs SMTPUTF8 and the peer does not offer it",
            );
            return vec![Action::Finished(vec![
                Outcome::Bounced(reply);
                msg.rcpts.len()
            ])];
        }
        let mut mail = format!("MAIL FROM:<{}>", msg.from);
        if self.ext.size.is_some() {
            mail.push_str(&format!(" SIZE={}", msg.size));
        }
        if msg.eight_bit && self.ext.eight_bit {
            mail.push_str(" BODY=8BITMIME");
        }
        if msg.utf8 {
            mail.push_str(" SMTPUTF8");
        }
        mail.push_str("\r\n");
        let mut commands = vec![mail.into_bytes()];
        for r in &msg.rcpts {
            commands.push(format!("RCPT TO:<{r}>\r\n").into_bytes());
        }
        commands.push(b"DATA\r\n".to_vec());
        self.expected = commands.len();
        self.mail = None;
        self.rcpts = Vec::with_capacity(msg.rcpts.len());
        self.message = Some(msg);
        self.state = State::Envelope;
        if self.ext.pipelining {
            // RFC 2920: the whole envelope in one write.
            vec![Action::Write(commands.concat())]
        } else if self.rset_pending {
            // After the RSET's reply.
            self.to_send = commands.into();
            Vec::new()
        } else {
            self.to_send = commands.into();
            let first = self.to_send.pop_front().unwrap_or_default();
            vec![Action::Write(first)]
        }
    }

    /// The body and its final dot are written.
    pub fn body_sent(&mut self) {
        if self.state == State::Body {
            self.state = State::Final;
        }
    }

    /// Ends the connection politely.
    pub fn quit(&mut self) -> Vec<Action> {
        match self.state {
            State::Closed | State::Quit => Vec::new(),
            _ => {
                self.state = State::Quit;
                vec![self.write("QUIT\r\n".to_string())]
            }
        }
    }

    fn write(&self, s: String) -> Action {
        Action::Write(s.into_bytes())
    }

    fn reply(&mut self, reply: Reply) -> Vec<Action> {
        if std::mem::take(&mut self.rset_pending) {
            // RSET done: a message sent meanwhile goes now.
            return self
                .to_send
                .pop_front()
                .map(Action::Write)
                .into_iter()
                .collect();
        }
        match self.state {
            State::Greeting => {
                if !reply.is_ok() {
                    return self.fail(reply);
                }
                self.state = State::Ehlo;
                vec![self.write(format!("EHLO {}\r\n", self.hostname))]
            }
            State::Ehlo => {
                if reply.is_ok() {
                    self.ext = Extensions::from_ehlo(&reply);
                    return self.after_hello();
                }
                if reply.code >= 500 && !self.tls_on {
                    // An old server: HELO (RFC 5321 3.2).
                    self.state = State::Helo;
                    return vec![
                        self.write(format!("HELO {}\r\n", self.hostname)),
                    ];
                }
                self.fail(reply)
            }
            State::Helo => {
                if !reply.is_ok() {
                    return self.fail(reply);
                }
                self.ext = Extensions::default();
                self.after_hello()
            }
            State::StartTls => {
                if reply.code == 220 {
                    return vec![Action::StartTls];
                }
                if self.tls == TlsPolicy::Required {
                    return self.fail(local_reply(
                        451,
                        &format!(
                            "4.7.0 STARTTLS refused: {}",
                            reply.one_line()
                        ),
                    ));
                }
                // Opportunistic: on in the clear.
                self.tls = TlsPolicy::Off;
                self.state = State::Ready;
                vec![Action::Ready]
            }
            State::Auth { step } => self.auth_reply(reply, step),
            State::Envelope => self.envelope_reply(reply),
            // A reply before our final dot: the peer gave up on the
            // message (and a peer that keeps talking must not keep us
            // reading for ever).
            State::Body => self.fail(reply),
            State::Final => {
                let outcomes = self.outcomes(Some(&reply));
                self.state = State::Ready;
                vec![Action::Finished(outcomes)]
            }
            State::Ready => {
                // Unasked (a 421 before closing): the connection is done.
                self.state = State::Closed;
                vec![Action::Close]
            }
            State::Quit | State::Closed => {
                self.state = State::Closed;
                vec![Action::Close]
            }
        }
    }

    fn after_hello(&mut self) -> Vec<Action> {
        let wants_tls = self.tls != TlsPolicy::Off && !self.tls_on;
        if wants_tls && self.ext.starttls {
            self.state = State::StartTls;
            return vec![self.write("STARTTLS\r\n".to_string())];
        }
        if self.tls == TlsPolicy::Required && !self.tls_on {
            return self.fail(local_reply(
                451,
                "4.7.0 the peer does not offer STARTTLS",
            ));
        }
        if let Some((user, password)) = &self.login {
            let mechs = &self.ext.auth;
            let line = if mechs.iter().any(|m| m == "PLAIN") {
                let token = format!("\0{user}\0{password}");
                format!(
                    "AUTH PLAIN {}\r\n",
                    crate::proto::sasl::encode(token.as_bytes())
                )
            } else if mechs.iter().any(|m| m == "LOGIN") {
                "AUTH LOGIN\r\n".to_string()
            } else {
                return self.fail(local_reply(
                    451,
                    "4.7.0 the peer offers no AUTH PLAIN or LOGIN",
                ));
            };
            self.state = State::Auth { step: 0 };
            return vec![self.write(line)];
        }
        self.state = State::Ready;
        vec![Action::Ready]
    }

    /// AUTH's replies: 235 logs in; LOGIN's 334s ask for the user name,
    /// then the password.
    fn auth_reply(&mut self, reply: Reply, step: u8) -> Vec<Action> {
        let Some((user, password)) = self.login.clone() else {
            return self.fail(reply);
        };
        match reply.code {
            235 => {
                self.state = State::Ready;
                vec![Action::Ready]
            }
            334 if step < 2 => {
                let answer = if step == 0 { user } else { password };
                self.state = State::Auth { step: step + 1 };
                let encoded = crate::proto::sasl::encode(answer.as_bytes());
                vec![self.write(format!("{encoded}\r\n"))]
            }
            _ => self.fail(local_reply(
                451,
                &format!("4.7.0 login refused: {}", reply.one_line()),
            )),
        }
    }

    /// A reply to MAIL, a RCPT or DATA, in the order they were sent.
    fn envelope_reply(&mut self, reply: Reply) -> Vec<Action> {
        let rcpt_count = self.message.as_ref().map_or(0, |m| m.rcpts.len());
        let mut actions = Vec::new();
        if self.mail.is_none() {
            self.mail = Some(reply.clone());
        } else if self.rcpts.len() < rcpt_count {
            self.rcpts.push(reply.clone());
        } else {
            // DATA's reply.
            self.expected = 0;
            let accepted = self.mail.as_ref().is_some_and(Reply::is_ok)
                && self.rcpts.iter().any(Reply::is_ok);
            if reply.code == 354 && accepted {
                self.state = State::Body;
                return vec![Action::SendBody];
            }
            if reply.code == 354 {
                // Nobody to send to, yet the peer waits for data: give it
                // none (an empty message is refused for want of
                // recipients; RFC 2920 3.1).
                actions.push(self.write(".\r\n".to_string()));
                self.state = State::Final;
                return actions;
            }
            let outcomes = self.outcomes(Some(&reply));
            self.state = State::Ready;
            actions.push(Action::Finished(outcomes));
            return actions;
        }
        self.expected = self.expected.saturating_sub(1);
        if let Some(next) = self.to_send.pop_front() {
            // Without PIPELINING, after a failed MAIL there is no point
            // in the RCPTs.
            if self.mail.as_ref().is_some_and(|m| !m.is_ok()) {
                self.to_send.clear();
                let outcomes = self.outcomes(None);
                self.state = State::Ready;
                return vec![Action::Finished(outcomes)];
            }
            let all_refused = self.rcpts.len() == rcpt_count
                && !self.rcpts.iter().any(Reply::is_ok);
            if all_refused {
                // Every RCPT refused: no DATA; RSET ends the transaction
                // (its reply is awaited before the next command).
                self.to_send.clear();
                let outcomes = self.outcomes(None);
                self.state = State::Ready;
                self.rset_pending = true;
                return vec![
                    self.write("RSET\r\n".to_string()),
                    Action::Finished(outcomes),
                ];
            }
            actions.push(Action::Write(next));
        }
        actions
    }

    /// Each recipient's outcome: its RCPT reply if refused (or MAIL's
    /// if that was), else `last` (DATA's or the final dot's).
    fn outcomes(&mut self, last: Option<&Reply>) -> Vec<Outcome> {
        let Some(msg) = self.message.take() else {
            return Vec::new();
        };
        let mail = self.mail.take();
        let rcpts = std::mem::take(&mut self.rcpts);
        (0..msg.rcpts.len())
            .map(|i| {
                if let Some(m) = mail.as_ref().filter(|m| !m.is_ok()) {
                    return Outcome::of(m);
                }
                match rcpts.get(i) {
                    Some(r) if !r.is_ok() => Outcome::of(r),
                    Some(_) | None => match last {
                        Some(l) => Outcome::of(l),
                        None => Outcome::Deferred(local_reply(
                            451,
                            "4.4.2 no reply",
                        )),
                    },
                }
            })
            .collect()
    }

    /// The connection is unusable: a message under way is deferred (or
    /// bounced, for a 5yz before any transaction could start).
    fn fail(&mut self, reply: Reply) -> Vec<Action> {
        let mut actions = Vec::new();
        if let Some(msg) = &self.message {
            let n = msg.rcpts.len();
            // Whatever the code, a failure of the connection is not the
            // message's fault: it is tried again, elsewhere or later.
            let reply = if reply.code >= 500 {
                local_reply(451, &format!("4.4.0 {}", reply.one_line()))
            } else {
                reply.clone()
            };
            actions.push(Action::Finished(vec![Outcome::Deferred(reply); n]));
            self.message = None;
        }
        if self.state != State::Quit {
            actions.push(self.write("QUIT\r\n".to_string()));
        }
        self.state = State::Closed;
        actions.push(Action::Close);
        actions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(rcpts: &[&str]) -> Message {
        Message {
            from: "alice@example.org".into(),
            rcpts: rcpts.iter().map(|r| r.to_string()).collect(),
            size: 1000,
            eight_bit: false,
            utf8: false,
        }
    }

    fn writes(actions: &[Action]) -> String {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Write(b) => {
                    Some(String::from_utf8_lossy(b).into_owned())
                }
                _ => None,
            })
            .collect()
    }

    fn greeted(ehlo: &str) -> Client {
        let mut c = Client::new("mx.example.org", TlsPolicy::Opportunistic);
        let (_, a) = c.feed(b"220 peer ESMTP\r\n");
        assert_eq!(writes(&a), "EHLO mx.example.org\r\n");
        let (_, a) = c.feed(ehlo.as_bytes());
        assert!(a.contains(&Action::Ready), "{a:?}");
        c
    }

    #[test]
    fn logs_in_with_plain_or_login_and_fails_without() {
        let ehlo = |auth: &str| format!("250-peer\r\n250 AUTH {auth}\r\n");
        // PLAIN: one line, then Ready.
        let mut c = Client::new("us.example", TlsPolicy::Off)
            .with_login("me@x", "p w");
        c.feed(b"220 hi\r\n");
        let (_, a) = c.feed(ehlo("LOGIN PLAIN").as_bytes());
        // "\0me@x\0p w" in base64.
        assert_eq!(writes(&a), "AUTH PLAIN AG1lQHgAcCB3\r\n");
        let (_, a) = c.feed(b"235 2.7.0 ok\r\n");
        assert_eq!(a, vec![Action::Ready]);
        // LOGIN: user name, then password, at each 334.
        let mut c = Client::new("us.example", TlsPolicy::Off)
            .with_login("me@x", "p w");
        c.feed(b"220 hi\r\n");
        let (_, a) = c.feed(ehlo("LOGIN").as_bytes());
        assert_eq!(writes(&a), "AUTH LOGIN\r\n");
        let (_, a) = c.feed(b"334 VXNlcm5hbWU6\r\n");
        assert_eq!(writes(&a), "bWVAeA==\r\n");
        let (_, a) = c.feed(b"334 UGFzc3dvcmQ6\r\n");
        assert_eq!(writes(&a), "cCB3\r\n");
        let (_, a) = c.feed(b"535 5.7.8 no\r\n");
        assert!(a.contains(&Action::Close), "{a:?}");
        // No mechanism we can use: the connection fails.
        let mut c = Client::new("us.example", TlsPolicy::Off)
            .with_login("me@x", "p w");
        c.feed(b"220 hi\r\n");
        let (_, a) = c.feed(ehlo("CRAM-MD5").as_bytes());
        assert!(a.contains(&Action::Close) && c.is_closed(), "{a:?}");
    }

    #[test]
    fn a_reply_during_the_body_ends_the_connection() {
        let mut c = greeted("250-peer\r\n250 PIPELINING\r\n");
        c.send(msg(&["bob@x"]));
        let (_, a) = c.feed(b"250 ok\r\n250 ok\r\n354 go\r\n");
        assert_eq!(a, vec![Action::SendBody]);
        // The peer talks while we send: the message is deferred, we stop.
        let (_, a) = c.feed(b"250 noise\r\n");
        assert!(
            matches!(&a[0], Action::Finished(o) if matches!(&o[0], Outcome::Deferred(_)))
        );
        assert!(a.contains(&Action::Close) && c.is_done(), "{a:?}");
        let (n, a) = c.feed(b"250 more noise\r\n");
        assert_eq!((n, a.len()), (0, 0));
    }

    #[test]
    fn pipelined_transaction_with_one_refused_recipient() {
        let mut c = greeted(
            "250-peer\r\n250-PIPELINING\r\n250-SIZE 10000\r\n250 8BITMIME\r\n",
        );
        let a = c.send(msg(&["bob@x", "nobody@x"]));
        assert_eq!(
            writes(&a),
            "MAIL FROM:<alice@example.org> SIZE=1000\r\nRCPT TO:<bob@x>\r\nRCPT TO:<nobody@x>\r\nDATA\r\n"
        );
        let (_, a) = c.feed(b"250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 no such user\r\n354 go\r\n");
        assert_eq!(a, vec![Action::SendBody]);
        c.body_sent();
        let (_, a) = c.feed(b"250 2.0.0 queued as X\r\n");
        let [Action::Finished(o)] = a.as_slice() else {
            panic!("{a:?}")
        };
        assert!(matches!(&o[0], Outcome::Sent(r) if r.code == 250));
        assert!(matches!(&o[1], Outcome::Bounced(r) if r.code == 550));
        // The same connection takes the next message.
        let a = c.send(msg(&["carol@x"]));
        assert!(writes(&a).starts_with("MAIL FROM:"));
    }

    #[test]
    fn one_command_at_a_time_without_pipelining() {
        let mut c = greeted("250 peer\r\n");
        let a = c.send(msg(&["bob@x"]));
        assert_eq!(writes(&a), "MAIL FROM:<alice@example.org>\r\n");
        let (_, a) = c.feed(b"250 ok\r\n");
        assert_eq!(writes(&a), "RCPT TO:<bob@x>\r\n");
        let (_, a) = c.feed(b"451 4.3.0 try later\r\n");
        // The only recipient refused: RSET, no DATA.
        assert_eq!(writes(&a), "RSET\r\n");
        let Some(Action::Finished(o)) =
            a.iter().find(|x| matches!(x, Action::Finished(_)))
        else {
            panic!("{a:?}")
        };
        assert!(matches!(&o[0], Outcome::Deferred(r) if r.code == 451));
        // The next message waits for RSET's reply.
        assert!(c.send(msg(&["carol@x"])).is_empty());
        let (_, a) = c.feed(b"250 reset\r\n");
        assert_eq!(writes(&a), "MAIL FROM:<alice@example.org>\r\n");
    }

    #[test]
    fn size_and_smtputf8_are_checked_before_sending() {
        let mut c = greeted("250-peer\r\n250 SIZE 500\r\n");
        let a = c.send(msg(&["bob@x"]));
        let [Action::Finished(o)] = a.as_slice() else {
            panic!("{a:?}")
        };
        assert!(matches!(&o[0], Outcome::Bounced(r) if r.code == 552));
        let mut c = greeted("250 peer\r\n");
        let mut m = msg(&["bob@x"]);
        m.utf8 = true;
        let a = c.send(m);
        let [Action::Finished(o)] = a.as_slice() else {
            panic!("{a:?}")
        };
        assert!(
            matches!(&o[0], Outcome::Bounced(r) if r.enhanced().as_deref() == Some("5.6.7"))
        );
    }

    #[test]
    fn starttls_opportunistic_and_required() {
        let mut c = Client::new("me", TlsPolicy::Opportunistic);
        c.feed(b"220 hi\r\n");
        let (_, a) = c.feed(b"250-peer\r\n250 STARTTLS\r\n");
        assert_eq!(writes(&a), "STARTTLS\r\n");
        let (_, a) = c.feed(b"220 go ahead\r\n");
        assert_eq!(a, vec![Action::StartTls]);
        let a = c.tls_started();
        assert_eq!(writes(&a), "EHLO me\r\n");
        let (_, a) = c.feed(b"250 peer\r\n");
        assert_eq!(a, vec![Action::Ready]);
        assert!(c.tls_on());
        // Required, not offered: defer and close.
        let mut c = Client::new("me", TlsPolicy::Required);
        c.feed(b"220 hi\r\n");
        let (_, a) = c.feed(b"250 peer\r\n");
        assert!(a.contains(&Action::Close), "{a:?}");
        // Opportunistic, refused: on in the clear.
        let mut c = Client::new("me", TlsPolicy::Opportunistic);
        c.feed(b"220 hi\r\n");
        c.feed(b"250-peer\r\n250 STARTTLS\r\n");
        let (_, a) = c.feed(b"454 4.7.0 TLS not available\r\n");
        assert_eq!(a, vec![Action::Ready]);
    }

    #[test]
    fn failures_defer_what_is_under_way() {
        let mut c = greeted("250-peer\r\n250 PIPELINING\r\n");
        c.send(msg(&["bob@x", "carol@x"]));
        let (_, a) = c.feed(b"250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n");
        assert_eq!(a, vec![Action::SendBody]);
        c.body_sent();
        let a = c.lost("connection reset");
        let Some(Action::Finished(o)) = a.first() else {
            panic!("{a:?}")
        };
        assert_eq!(o.len(), 2);
        assert!(o.iter().all(|x| matches!(x, Outcome::Deferred(_))));
        assert!(a.contains(&Action::Close));
        // A greeting of 554: close, nothing to defer.
        let mut c = Client::new("me", TlsPolicy::Off);
        let (_, a) = c.feed(b"554 go away\r\n");
        assert!(a.contains(&Action::Close));
        // Garbage: close.
        let mut c = greeted("250 peer\r\n");
        c.send(msg(&["bob@x"]));
        let (_, a) = c.feed(b"HTTP/1.1 400 Bad Request\r\n");
        assert!(
            matches!(a.first(), Some(Action::Finished(o)) if matches!(&o[0], Outcome::Deferred(_)))
        );
    }

    #[test]
    fn old_servers_get_helo() {
        let mut c = Client::new("me", TlsPolicy::Opportunistic);
        c.feed(b"220 hi\r\n");
        let (_, a) = c.feed(b"502 what\r\n");
        assert_eq!(writes(&a), "HELO me\r\n");
        let (_, a) = c.feed(b"250 hello\r\n");
        assert_eq!(a, vec![Action::Ready]);
    }
}
