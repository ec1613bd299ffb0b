//! The SMTP receiver's session (RFC 5321, with PIPELINING, SIZE, 8BITMIME,
//! ENHANCEDSTATUSCODES, SMTPUTF8, CHUNKING, STARTTLS and AUTH): fed
//! bytes, it writes replies and returns a [`Step`] telling the event loop
//! what to do. AUTH and STARTTLS live in `server/auth.rs`.
//!
//! Recipients are checked through [`Host`]; an accepted message leaves as
//! [`Step::Deliver`], and the session waits, reading nothing more, until
//! the loop reports the outcome with [`Server::delivered`]. Only then is
//! the final 250 sent, so a 250 always means the message is on disk.

mod auth;
mod listings;
mod screen;

use std::rc::Rc;

use memchr::memchr;

use super::body::{Body, DotReader, Flaws, MAX_RECEIVED};
use super::command::{
    self, Command, MAX_AUTH_LINE, MAX_COMMAND_LINE, MailParams,
};
use super::host::{
    Cx, Envelope, Link, RcptError, Recipient, Route, Settings, Step, TlsInfo,
    protocol_name,
};
use super::{Path, Reply, ReversePath, write_multiline};
use crate::proto::{Failure, OUTPUT_CAP};

/// Errors tolerated before the session is dropped (Postfix's
/// smtpd_hard_error_limit is 20; a real client makes none).
pub const MAX_ERRORS: u32 = 10;

/// The greeting name the client gave, and how.
#[derive(Debug, Clone)]
struct Hello {
    name: String,
    extended: bool,
}

/// A transaction between commands.
#[derive(Debug)]
enum Txn {
    Idle,
    Mail {
        id: String,
        from: ReversePath,
        params: MailParams,
    },
    Rcpt {
        mail: Mail,
    },
    /// BDAT chunks so far; only BDAT, RSET, NOOP, QUIT go on from here.
    Chunking {
        mail: Mail,
        body: Body,
    },
}

/// A transaction with at least one recipient.
#[derive(Debug)]
struct Mail {
    id: String,
    from: ReversePath,
    params: MailParams,
    rcpts: Vec<Recipient>,
}

#[derive(Debug)]
enum State {
    /// Reading command lines.
    Command(Txn),
    /// Discarding a command line that is over the limit.
    LongLine(Txn),
    /// Reading DATA up to CRLF.CRLF.
    Data {
        mail: Mail,
        reader: DotReader,
        body: Body,
    },
    /// Reading a BDAT chunk's octets; `size` is the whole chunk's.
    Chunk {
        mail: Mail,
        body: Body,
        size: u64,
        left: u64,
        last: bool,
    },
    /// Reading a BDAT chunk only to stay in step, then replying.
    Skip { left: u64, reply: Reply },
    /// A message is being written; nothing is read until it is done.
    Delivering,
    /// AUTH is waiting for the client's next SASL response line.
    Sasl(auth::Sasl),
    /// Credentials are being checked; nothing is read until then.
    Authenticating,
    /// QUIT or a fatal error: nothing more.
    Closed,
}

/// One SMTP server session.
#[derive(Debug)]
pub struct Server {
    settings: Rc<Settings>,
    link: Link,
    hello: Option<Hello>,
    /// The logged-in user.
    user: Option<String>,
    /// The client a front end named (XCLIENT ADDR).
    forwarded: Option<std::net::IpAddr>,
    state: State,
    errors: u32,
    /// The client's name from reverse DNS, once known.
    peer_name: Option<String>,
    /// The blocklists' verdicts, for RCPT.
    listings: listings::Listings,
    /// RCPT is waiting for them: its line stays unread, and the loop
    /// reads nothing more until they are in (what a client sends
    /// meanwhile waits in its socket, not in our memory).
    held: bool,
    /// The checks before content, for a client not seen before.
    screen: screen::Screen,
    /// The last HELO or EHLO offered PIPELINING.
    pipelining: bool,
}

impl Server {
    /// A session on a connection described by `link`.
    pub fn new(settings: Rc<Settings>, link: Link) -> Self {
        Server {
            settings,
            link,
            hello: None,
            user: None,
            forwarded: None,
            state: State::Command(Txn::Idle),
            errors: 0,
            peer_name: None,
            listings: listings::Listings::default(),
            held: false,
            screen: screen::Screen::default(),
            pipelining: false,
        }
    }

    /// The client's name came from reverse DNS: Received headers of
    /// messages begun from now on name it.
    pub fn set_peer_name(&mut self, name: String) {
        self.peer_name = Some(name);
    }

    /// Writes the 220 greeting.
    pub fn greet(&mut self, out: &mut Vec<u8>) {
        let text = format!("{} ESMTP postling", self.settings.hostname);
        write_multiline(out, 220, &[&text]);
    }

    /// The client a front end named with XCLIENT, if any.
    pub fn forwarded(&self) -> Option<std::net::IpAddr> {
        self.forwarded
    }

    /// The transaction under way, once MAIL is accepted: its queue id
    /// and MAIL FROM (the loop starts its SPF check then).
    pub fn transaction(&self) -> Option<(&str, &ReversePath)> {
        let txn = match &self.state {
            State::Command(t) | State::LongLine(t) => t,
            State::Data { mail, .. } | State::Chunk { mail, .. } => {
                return Some((&mail.id, &mail.from));
            }
            _ => return None,
        };
        match txn {
            Txn::Mail { id, from, .. } => Some((id, from)),
            Txn::Rcpt { mail } | Txn::Chunking { mail, .. } => {
                Some((&mail.id, &mail.from))
            }
            Txn::Idle => None,
        }
    }

    /// The client's HELO or EHLO name, if it gave one.
    pub fn helo(&self) -> &str {
        self.hello.as_ref().map_or("", |h| h.name.as_str())
    }

    /// The client's address (the one a front end named, if any).
    pub fn peer(&self) -> std::net::IpAddr {
        self.link.peer
    }

    /// True for a client neither logged in, nor in `trusted_networks`,
    /// nor on the local socket: its mail is checked.
    pub fn is_stranger(&self) -> bool {
        self.user.is_none()
            && !self.link.trusted
            && self.link.local_uid.is_none()
    }

    /// The message is refused after all (the checks' verdict): the
    /// final reply to DATA, and on with what the client pipelined.
    pub fn refused(
        &mut self,
        code: u16,
        status: &'static str,
        text: &str,
        out: &mut Vec<u8>,
    ) {
        self.state = State::Command(Txn::Idle);
        Reply::new(code, status, text.to_string()).write(out);
    }

    /// True while no transaction is under way (safe to close at shutdown).
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Command(Txn::Idle) | State::Closed)
    }

    /// The idle timer ran out (RFC 5321 4.5.3.2).
    pub fn timed_out(&mut self, out: &mut Vec<u8>) -> Step {
        self.close(out, Reply::new(421, "4.4.2", "Idle timeout, closing"))
    }

    /// The server is stopping.
    pub fn shutdown(&mut self, out: &mut Vec<u8>) -> Step {
        self.close(out, Reply::new(421, "4.3.2", "Server shutting down"))
    }

    fn close(&mut self, out: &mut Vec<u8>, reply: Reply) -> Step {
        let name = &self.settings.hostname;
        Reply::new(reply.code, reply.status, format!("{name} {}", reply.text))
            .write(out);
        self.state = State::Closed;
        Step::Close
    }

    /// Handles what it can of `input`; returns the octets used. Stops
    /// early while [`OUTPUT_CAP`] octets of replies wait to be sent.
    pub fn feed(&mut self, input: &[u8], cx: &mut Cx<'_>) -> (usize, Step) {
        if !input.is_empty()
            && let Some(step) = self.talked_early(cx.out)
        {
            return (input.len(), step);
        }
        let mut used = 0;
        while used < input.len() && cx.out.len() < OUTPUT_CAP {
            let (n, step) = self.feed_one(&input[used..], cx);
            used += n;
            if !matches!(step, Step::Continue) || n == 0 {
                return (used, step);
            }
        }
        (used, Step::Continue)
    }

    /// One line, or one run of message octets.
    fn feed_one(&mut self, input: &[u8], cx: &mut Cx<'_>) -> (usize, Step) {
        match std::mem::replace(&mut self.state, State::Closed) {
            State::Command(txn) => self.command_input(txn, input, cx),
            State::LongLine(txn) => match memchr(b'\n', input) {
                Some(lf) => {
                    self.state = State::Command(txn);
                    let reply = Reply::new(500, "5.5.2", "Line too long");
                    (lf + 1, self.error(reply, cx))
                }
                None => {
                    self.state = State::LongLine(txn);
                    (input.len(), Step::Continue)
                }
            },
            State::Data {
                mail,
                mut reader,
                mut body,
            } => {
                let (n, end) = reader.feed(input, &mut body, cx.sink);
                if end {
                    return (n, self.finish(mail, body, true, cx));
                }
                self.state = State::Data { mail, reader, body };
                (n, Step::Continue)
            }
            State::Chunk {
                mail,
                mut body,
                size,
                left,
                last,
            } => {
                let n = input
                    .len()
                    .min(usize::try_from(left).unwrap_or(usize::MAX));
                body.push(&input[..n], cx.sink);
                let left = left - n as u64;
                if left > 0 {
                    self.state = State::Chunk {
                        mail,
                        body,
                        size,
                        left,
                        last,
                    };
                    return (n, Step::Continue);
                }
                (n, self.chunk_done(mail, body, size, last, cx))
            }
            State::Skip { left, reply } => {
                let n = input
                    .len()
                    .min(usize::try_from(left).unwrap_or(usize::MAX));
                let left = left - n as u64;
                if left > 0 {
                    self.state = State::Skip { left, reply };
                    return (n, Step::Continue);
                }
                self.state = State::Command(Txn::Idle);
                (n, self.error(reply, cx))
            }
            State::Sasl(sasl) => self.sasl_input(sasl, input, cx),
            state @ (State::Delivering
            | State::Authenticating
            | State::Closed) => {
                self.state = state;
                (0, Step::Continue)
            }
        }
    }

    fn command_input(
        &mut self,
        txn: Txn,
        input: &[u8],
        cx: &mut Cx<'_>,
    ) -> (usize, Step) {
        let limit = line_limit(input);
        let Some(lf) = memchr(b'\n', input) else {
            // A partial line waits for more; an overlong one is dropped.
            if input.len() >= limit {
                self.state = State::LongLine(txn);
                return (input.len(), Step::Continue);
            }
            self.state = State::Command(txn);
            return (0, Step::Continue);
        };
        self.state = State::Command(txn);
        if lf + 1 > limit {
            let reply = Reply::new(500, "5.5.2", "Line too long");
            return (lf + 1, self.error(reply, cx));
        }
        // Bare LF ends a command too, as in Postfix; only DATA is strict.
        let line = input[..lf].strip_suffix(b"\r").unwrap_or(&input[..lf]);
        // More behind a command when pipelining was not offered: the
        // client did not wait for our reply.
        let (more, offered) = (lf + 1 < input.len(), self.pipelining);
        if let Some(refused) = self.check_pipelining(more, offered, cx.out) {
            return (input.len(), refused);
        }
        let step = match command::parse(line) {
            Ok(cmd) => self.command(cmd, cx),
            Err(reply) => self.error(reply, cx),
        };
        if self.held {
            return (0, Step::Continue); // read again once answered
        }
        (lf + 1, step)
    }

    /// Sends an error reply and counts it; too many end the session.
    fn error(&mut self, reply: Reply, cx: &mut Cx<'_>) -> Step {
        reply.write(cx.out);
        self.errors += 1;
        if self.errors >= MAX_ERRORS {
            return self
                .close(cx.out, Reply::new(421, "4.7.0", "Too many errors"));
        }
        Step::Continue
    }

    fn reply(&mut self, reply: Reply, cx: &mut Cx<'_>) -> Step {
        if reply.is_error() {
            return self.error(reply, cx);
        }
        reply.write(cx.out);
        Step::Continue
    }

    fn txn(&mut self) -> Txn {
        match std::mem::replace(&mut self.state, State::Closed) {
            State::Command(txn) => txn,
            other => {
                self.state = other;
                Txn::Idle
            }
        }
    }

    fn command(&mut self, cmd: Command<'_>, cx: &mut Cx<'_>) -> Step {
        let txn = self.txn();
        let resets =
            matches!(cmd, Command::Rset | Command::Ehlo(_) | Command::Helo(_));
        if resets && matches!(txn, Txn::Chunking { .. }) {
            // The chunks so far will never be delivered.
            cx.sink.discard();
        }
        match cmd {
            Command::Ehlo(name) => self.proceed_hello(name, true, cx),
            Command::Helo(name) => self.proceed_hello(name, false, cx),
            Command::Mail { from, params } => self.mail(txn, from, params, cx),
            Command::Rcpt { to } => self.rcpt(txn, to, cx),
            Command::Data => self.data(txn, cx),
            Command::Bdat { size, last } => self.bdat(txn, size, last, cx),
            Command::Rset => {
                self.state = State::Command(Txn::Idle);
                self.reply(Reply::new(250, "2.0.0", "Ok"), cx)
            }
            Command::Noop => {
                self.keep(txn, Reply::new(250, "2.0.0", "Ok"), cx)
            }
            Command::Quit => {
                let name = &self.settings.hostname;
                Reply::new(221, "2.0.0", format!("{name} Bye")).write(cx.out);
                self.state = State::Closed;
                Step::Close
            }
            Command::Vrfy => {
                let text = "Cannot VRFY user, but will accept message";
                self.keep(txn, Reply::new(252, "2.5.0", text), cx)
            }
            Command::Etrn if self.link.trusted => {
                // RFC 1985: any node named runs the whole queue here.
                let reply = Reply::new(250, "2.0.0", "Queuing started");
                self.keep(txn, reply, cx);
                Step::FlushQueue
            }
            Command::Etrn => {
                let text = "ETRN is for trusted clients";
                self.keep(txn, Reply::new(459, "4.7.1", text), cx)
            }
            // The figures are the host's: the loop writes the reply.
            Command::Xstatus { json } if self.link.local_uid.is_some() => {
                self.state = State::Command(txn);
                Step::Status { json }
            }
            Command::Xstatus { .. } => {
                let text = "XSTATUS is for the local socket";
                self.keep(txn, Reply::new(502, "5.5.1", text), cx)
            }
            Command::Xclient(_) if !self.link.front_end => {
                let text = "Insufficient authorization";
                self.keep(txn, Reply::new(550, "5.7.0", text), cx)
            }
            Command::Xclient(client) => {
                // As Postfix: the session starts over, greeting and all.
                self.forwarded = client;
                self.hello = None;
                self.state = State::Command(Txn::Idle);
                self.greet(cx.out);
                Step::Continue
            }
            Command::StartTls => self.starttls(txn, cx),
            Command::Auth { mechanism, initial } => {
                self.auth(txn, mechanism, initial, cx)
            }
            Command::Help => {
                let text = "See RFC 5321; commands: EHLO HELO MAIL RCPT \
                            DATA BDAT RSET NOOP VRFY HELP QUIT";
                self.keep(txn, Reply::new(214, "2.0.0", text), cx)
            }
        }
    }

    /// Replies without touching the transaction.
    fn keep(&mut self, txn: Txn, reply: Reply, cx: &mut Cx<'_>) -> Step {
        self.state = State::Command(txn);
        self.reply(reply, cx)
    }

    fn proceed_hello(
        &mut self,
        name: &str,
        extended: bool,
        cx: &mut Cx<'_>,
    ) -> Step {
        // RFC 5321 4.1.4: EHLO/HELO also resets the transaction.
        self.state = State::Command(Txn::Idle);
        self.hello = Some(Hello {
            name: name.to_string(),
            extended,
        });
        self.pipelining = extended;
        let host = &self.settings.hostname;
        if !extended {
            return self.reply(Reply::new(250, "", host.clone()), cx);
        }
        let size = format!("SIZE {}", self.settings.max_message_size);
        let mut lines = vec![
            host.as_str(),
            "PIPELINING",
            &size,
            "8BITMIME",
            "ENHANCEDSTATUSCODES",
            "SMTPUTF8",
            "CHUNKING",
        ];
        if self.may_starttls() {
            lines.push("STARTTLS");
        }
        if self.may_auth() && self.user.is_none() {
            lines.push("AUTH PLAIN LOGIN");
        }
        if self.link.front_end {
            lines.push("XCLIENT ADDR");
        }
        write_multiline(cx.out, 250, &lines);
        Step::Continue
    }

    fn check_mail(
        &self,
        txn: &Txn,
        from: &ReversePath,
        params: &MailParams,
        cx: &mut Cx<'_>,
    ) -> Result<(), Reply> {
        if self.hello.is_none() {
            return Err(Reply::new(503, "5.5.1", "Send EHLO or HELO first"));
        }
        if !matches!(txn, Txn::Idle) {
            return Err(Reply::new(503, "5.5.1", "Nested MAIL command"));
        }
        if self.settings.submission && self.user.is_none() {
            return Err(Reply::new(530, "5.7.0", "Authentication required"));
        }
        // Submission: a user sends only as an address of their own.
        if let (Some(user), ReversePath::Mailbox(path)) = (&self.user, from)
            && !cx.host.may_send_as(user, path)
        {
            return Err(Reply::new(
                553,
                "5.7.1",
                format!("<{path}>: Sender address not owned by {user}"),
            ));
        }
        // The local socket: an account sends only as an address of its own.
        if let (Some(uid), ReversePath::Mailbox(path)) =
            (self.link.local_uid, from)
            && !cx.host.local_may_send_as(uid, path)
        {
            return Err(Reply::new(
                553,
                "5.7.1",
                format!("<{path}>: Sender address not owned by uid {uid}"),
            ));
        }
        if params
            .size
            .is_some_and(|s| s > self.settings.max_message_size)
        {
            return Err(Reply::new(
                552,
                "5.3.4",
                "Message size exceeds fixed limit",
            ));
        }
        if !cx.host.has_room() {
            return Err(Reply::new(
                452,
                "4.3.1",
                "Insufficient system storage, try later",
            ));
        }
        Ok(())
    }

    fn mail(
        &mut self,
        txn: Txn,
        from: ReversePath,
        params: MailParams,
        cx: &mut Cx<'_>,
    ) -> Step {
        if let Err(reply) = self.check_mail(&txn, &from, &params, cx) {
            return self.keep(txn, reply, cx);
        }
        let id = cx.host.queue_id();
        self.listings.sender = match (self.listings.sender_lists, &from) {
            (true, ReversePath::Mailbox(_)) => listings::Gate::Waiting,
            _ => listings::Gate::Open,
        };
        self.listings.vouch = listings::Vouch::No;
        self.state = State::Command(Txn::Mail { id, from, params });
        self.screen_mail();
        self.reply(Reply::new(250, "2.1.0", "Ok"), cx)
    }

    fn rcpt(&mut self, txn: Txn, to: Path, cx: &mut Cx<'_>) -> Step {
        self.held = false;
        if matches!(txn, Txn::Mail { .. } | Txn::Rcpt { .. })
            && self.is_stranger()
        {
            match self.listings.at_rcpt() {
                Err(()) => {
                    self.held = true;
                    self.state = State::Command(txn);
                    return Step::Continue;
                }
                Ok(Some(reply)) => return self.keep(txn, reply, cx),
                Ok(None) => {}
            }
        }
        let mut mail = match txn {
            Txn::Mail { id, from, params } => Mail {
                id,
                from,
                params,
                rcpts: Vec::new(),
            },
            Txn::Rcpt { mail } => mail,
            other => {
                let reply = Reply::new(503, "5.5.1", "Need MAIL command");
                return self.keep(other, reply, cx);
            }
        };
        let reply = self.add_rcpt(&mut mail, to, cx);
        // A refused first recipient still leaves MAIL in force.
        self.state = State::Command(if mail.rcpts.is_empty() {
            let Mail {
                id, from, params, ..
            } = mail;
            Txn::Mail { id, from, params }
        } else {
            Txn::Rcpt { mail }
        });
        self.reply(reply, cx)
    }

    fn add_rcpt(&self, mail: &mut Mail, to: Path, cx: &mut Cx<'_>) -> Reply {
        if mail.rcpts.len() >= self.settings.max_recipients {
            return Reply::new(452, "4.5.3", "Too many recipients");
        }
        if to.is_utf8() && !mail.params.smtputf8 {
            return Reply::new(
                553,
                "5.6.7",
                "Non-ASCII address needs SMTPUTF8",
            );
        }
        let route = match cx.host.resolve(&to) {
            Ok(mailboxes) => Ok(Route::Local(mailboxes)),
            // Only our own users and trusted networks may relay.
            Err(RcptError::NotLocal)
                if self.user.is_some() || self.link.trusted =>
            {
                Ok(Route::Relay)
            }
            Err(e) => Err(e),
        };
        let from = mail.from.to_string();
        if route.is_ok()
            && self.is_stranger()
            && self.listings.vouch != listings::Vouch::Yes
            && let Some(wait) = cx.host.greylisted(self.peer(), &from, &to)
        {
            return Reply::new(
                451,
                "4.7.1",
                format!("<{to}>: Greylisted, try again in {wait} seconds"),
            );
        }
        if let Ok(Route::Local(boxes)) = &route
            && cx.host.over_quota(boxes, mail.params.size.unwrap_or(0))
        {
            // Dovecot's quota-status answer: try later, it may be emptied.
            return Reply::new(452, "4.2.2", format!("<{to}>: Mailbox full"));
        }
        match route {
            Ok(route) => {
                mail.rcpts.push(Recipient { path: to, route });
                Reply::new(250, "2.1.5", "Ok")
            }
            Err(RcptError::UnknownUser) => Reply::new(
                550,
                "5.1.1",
                format!("<{to}>: Recipient address rejected: no such user"),
            ),
            Err(RcptError::NotLocal) => Reply::new(
                550,
                "5.7.1",
                format!("<{to}>: Relay access denied"),
            ),
            Err(RcptError::InvalidSrs) => Reply::new(
                550,
                "5.7.1",
                format!("<{to}>: invalid or expired SRS address"),
            ),
        }
    }

    fn data(&mut self, txn: Txn, cx: &mut Cx<'_>) -> Step {
        let Txn::Rcpt { mail } = txn else {
            let text = match txn {
                Txn::Chunking { .. } => "DATA not allowed after BDAT",
                Txn::Mail { .. } => "No valid recipients",
                _ => "Need MAIL command",
            };
            return self.keep(txn, Reply::new(503, "5.5.1", text), cx);
        };
        let body = Body::new(self.settings.max_message_size);
        cx.sink.begin(&self.envelope(&mail, 0));
        Reply::new(354, "", "End data with <CR><LF>.<CR><LF>").write(cx.out);
        self.state = State::Data {
            mail,
            reader: DotReader::new(),
            body,
        };
        Step::Continue
    }

    fn bdat(
        &mut self,
        txn: Txn,
        size: u64,
        last: bool,
        cx: &mut Cx<'_>,
    ) -> Step {
        let (mail, body) = match txn {
            Txn::Rcpt { mail } => {
                cx.sink.begin(&self.envelope(&mail, 0));
                (mail, Body::new(self.settings.max_message_size))
            }
            Txn::Chunking { mail, body } => (mail, body),
            other => {
                // RFC 3030 3: the chunk is read anyway to stay in step.
                let text = match other {
                    Txn::Mail { .. } => "No valid recipients",
                    _ => "Need MAIL command",
                };
                let reply = Reply::new(503, "5.5.1", text);
                self.state = State::Skip { left: size, reply };
                return self.feed_empty_chunk(cx);
            }
        };
        self.state = State::Chunk {
            mail,
            body,
            size,
            left: size,
            last,
        };
        self.feed_empty_chunk(cx)
    }

    /// A zero-length chunk is complete at once.
    fn feed_empty_chunk(&mut self, cx: &mut Cx<'_>) -> Step {
        match &self.state {
            State::Chunk { left: 0, .. } | State::Skip { left: 0, .. } => {
                self.feed_one(&[], cx).1
            }
            _ => Step::Continue,
        }
    }

    fn chunk_done(
        &mut self,
        mail: Mail,
        body: Body,
        size: u64,
        last: bool,
        cx: &mut Cx<'_>,
    ) -> Step {
        if last {
            return self.finish(mail, body, false, cx);
        }
        let text = format!("{size} octets received");
        self.state = State::Command(Txn::Chunking { mail, body });
        self.reply(Reply::new(250, "2.0.0", text), cx)
    }

    /// The whole message is in: refuse it or hand it to the loop.
    fn finish(
        &mut self,
        mail: Mail,
        body: Body,
        dot_framed: bool,
        cx: &mut Cx<'_>,
    ) -> Step {
        self.state = State::Command(Txn::Idle);
        let size = body.size();
        let received = body.received();
        let flaws = body.finish(cx.sink);
        if let Err(reply) = check_message(received, flaws, dot_framed) {
            cx.sink.discard();
            return self.reply(reply, cx);
        }
        let envelope = self.envelope(&mail, size);
        self.state = State::Delivering;
        Step::Deliver(Box::new(envelope))
    }

    /// The envelope of `mail` as it stands.
    fn envelope(&self, mail: &Mail, size: u64) -> Envelope {
        let (helo, extended) = match &self.hello {
            Some(h) => (h.name.clone(), h.extended),
            None => (String::new(), false),
        };
        Envelope {
            protocol: protocol_name(
                extended,
                mail.params.smtputf8,
                self.link.tls.is_some(),
                self.user.is_some(),
            ),
            id: mail.id.clone(),
            from: mail.from.clone(),
            rcpts: mail.rcpts.clone(),
            helo,
            peer: self.link.peer,
            peer_name: self.peer_name.clone(),
            tls: self.link.tls.clone(),
            user: self.user.clone(),
            local_uid: self.link.local_uid,
            size,
        }
    }

    /// The loop finished storing the message: send the final reply and go
    /// on with whatever the client pipelined after it.
    pub fn delivered(
        &mut self,
        id: &str,
        result: Result<(), Failure>,
        out: &mut Vec<u8>,
    ) {
        self.state = State::Command(Txn::Idle);
        let reply = match result {
            Ok(()) => Reply::new(250, "2.0.0", format!("Ok: queued as {id}")),
            Err(Failure::Transient(why)) => Reply::new(
                452,
                "4.3.1",
                format!("Insufficient system storage, try later ({why})"),
            ),
            Err(Failure::Permanent(why)) => {
                Reply::new(554, "5.3.0", format!("Delivery failed ({why})"))
            }
            Err(Failure::Internal) => Reply::new(
                451,
                "4.3.0",
                "Local error in processing, try again later",
            ),
            Err(Failure::Refused(why)) => Reply::new(550, "5.7.1", why),
            Err(Failure::MailboxFull) => Reply::new(
                552,
                "5.2.2",
                "Mailbox full: message too big for what is left",
            ),
        };
        reply.write(out);
    }
}

/// The checks that can only be made once the whole message is in.
fn check_message(
    received: usize,
    flaws: Flaws,
    dot_framed: bool,
) -> Result<(), Reply> {
    if flaws.too_big {
        return Err(Reply::new(
            552,
            "5.3.4",
            "Message size exceeds fixed limit",
        ));
    }
    if flaws.bare_newline && dot_framed {
        return Err(Reply::new(
            554,
            "5.6.0",
            "Message refused: bare CR or LF (RFC 5321 2.3.8)",
        ));
    }
    if flaws.long_line {
        return Err(Reply::new(
            554,
            "5.6.0",
            "Message refused: line over 1000 octets (RFC 5321 4.5.3.1.6)",
        ));
    }
    if received > MAX_RECEIVED {
        return Err(Reply::new(554, "5.4.6", "Too many hops: mail loop?"));
    }
    Ok(())
}

/// The longest line allowed for what `input` starts with.
fn line_limit(input: &[u8]) -> usize {
    let auth = input
        .get(..5)
        .is_some_and(|v| v.eq_ignore_ascii_case(b"AUTH "));
    if auth {
        MAX_AUTH_LINE
    } else {
        MAX_COMMAND_LINE
    }
}

#[cfg(test)]
mod tests;
