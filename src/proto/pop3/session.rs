//! The POP3 session (RFC 1939): AUTHORIZATION, TRANSACTION and UPDATE,
//! fed bytes like the SMTP one. Passwords, the maildrop snapshot,
//! message octets and the final deletions all come from the loop: the
//! session asks with a [`Pop3Step`] and is told the outcome.

use memchr::memchr;

use std::sync::Arc;

use super::command::{self, Command, MAX_LINE};
use crate::proto::OUTPUT_CAP;
use crate::proto::sasl::{self, Credentials, SaslError};
use crate::proto::smtp::Link;

/// Errors tolerated before the session is dropped (Dovecot's limit of
/// bad commands is 20 too).
pub const MAX_ERRORS: u32 = 20;

/// One message of the maildrop as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// The UIDL, stable across sessions (RFC 1939 7).
    pub uid: String,
    /// Octets the client receives (CRLF line ends, before dot-stuffing).
    pub size: u64,
}

/// The messages of a maildrop as the session reads them; the loop's
/// snapshot keeps them compactly, tests use a `Vec<Listing>`.
pub trait Listings: std::fmt::Debug + Send + Sync {
    /// How many messages.
    fn count(&self) -> usize;
    /// Message `i`'s size (CRLF line ends, before dot-stuffing).
    fn size(&self, i: usize) -> u64;
    /// Message `i`'s UIDL.
    fn uid(&self, i: usize) -> &str;
}

impl Listings for Vec<Listing> {
    fn count(&self) -> usize {
        self.len()
    }

    fn size(&self, i: usize) -> u64 {
        self[i].size
    }

    fn uid(&self, i: usize) -> &str {
        &self[i].uid
    }
}

const DELETED: u8 = 1;
const RETRIEVED: u8 = 2;

/// The snapshot taken at login, with this session's marks (one octet a
/// message).
#[derive(Debug, Clone)]
pub struct Maildrop {
    messages: Arc<dyn Listings>,
    marks: Vec<u8>,
}

impl Maildrop {
    /// A snapshot of these messages, none marked.
    pub fn new(messages: Arc<dyn Listings>) -> Self {
        let n = messages.count();
        Maildrop {
            messages,
            marks: vec![0; n],
        }
    }

    /// Message `number` (1-based) if it exists and is not deleted.
    fn get(&self, number: usize) -> Result<usize, &'static str> {
        let i = number.checked_sub(1).filter(|&i| i < self.marks.len());
        match i {
            None => Err("-ERR no such message"),
            Some(i) if self.is(i, DELETED) => Err("-ERR message is deleted"),
            Some(i) => Ok(i),
        }
    }

    fn is(&self, i: usize, mark: u8) -> bool {
        self.marks[i] & mark != 0
    }

    fn live(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.marks.len()).filter(|&i| !self.is(i, DELETED))
    }
}

/// A multi-line LIST or UIDL answer being written, a bounded piece at a
/// time (a 100,000-message UIDL is megabytes).
#[derive(Debug, Clone, Copy)]
struct ListingState {
    uidl: bool,
    next: usize,
}

/// What the loop must do after a call.
#[derive(Debug)]
pub enum Pop3Step {
    /// Keep reading.
    Continue,
    /// Flush, drop input already read, start TLS, then `tls_started`.
    StartTls,
    /// Check the password, lock the mailbox and snapshot it; then
    /// `logged_in`.
    Authenticate(Credentials),
    /// Send message `index` (0-based), whole or `top` body lines, then
    /// `sent`. The `+OK` line is already written.
    Send {
        /// Which message.
        index: usize,
        /// TOP's line count.
        top: Option<usize>,
    },
    /// QUIT in TRANSACTION: delete these, mark those seen, all or nothing;
    /// then `updated`.
    Update {
        /// Indexes to delete.
        deleted: Vec<usize>,
        /// Indexes retrieved (and not deleted): mark them seen.
        seen: Vec<usize>,
    },
    /// Flush the output and close.
    Close,
}

/// Why a login did not open a maildrop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginError {
    /// Wrong user or password.
    Credentials,
    /// Another session holds the mailbox.
    InUse,
    /// The mailbox could not be read.
    Unavailable(String),
}

#[derive(Debug)]
enum State {
    /// Before login; `user` once USER was given.
    Authorization { user: Option<String> },
    /// AUTH PLAIN sent `+ `; waiting for the response.
    Sasl,
    /// Waiting for the loop's password check.
    Authenticating,
    /// Logged in.
    Transaction(Box<Maildrop>),
    /// Writing a LIST or UIDL answer; input waits.
    Listing(Box<Maildrop>, ListingState),
    /// A message is being sent; input waits.
    Sending(Box<Maildrop>),
    /// QUIT: deletions being applied.
    Updating,
    /// Discarding an over-long line.
    LongLine(Box<State>),
    /// Done.
    Closed,
}

/// One POP3 session.
#[derive(Debug)]
pub struct Pop3 {
    hostname: String,
    starttls: bool,
    link: Link,
    state: State,
    errors: u32,
    /// The client a front end named (XCLIENT ADDR).
    forwarded: Option<std::net::IpAddr>,
}

impl Pop3 {
    /// A session on a connection described by `link`; `starttls` if STLS
    /// may be offered.
    pub fn new(hostname: String, starttls: bool, link: Link) -> Self {
        Pop3 {
            hostname,
            starttls,
            link,
            state: State::Authorization { user: None },
            errors: 0,
            forwarded: None,
        }
    }

    /// The client a front end named with XCLIENT, if any.
    pub fn forwarded(&self) -> Option<std::net::IpAddr> {
        self.forwarded
    }

    /// Writes the greeting.
    pub fn greet(&self, out: &mut Vec<u8>) {
        line(out, &format!("+OK {} POP3 postling ready", self.hostname));
    }

    /// True if closing now loses nothing (no UPDATE under way).
    pub fn is_idle(&self) -> bool {
        !matches!(
            self.state,
            State::Updating | State::Sending(_) | State::Listing(..)
        )
    }

    /// RFC 1939 3: an idle session ends without UPDATE.
    pub fn timed_out(&mut self, out: &mut Vec<u8>) -> Pop3Step {
        line(out, "-ERR [SYS/TEMP] Autologout; idle for too long");
        self.state = State::Closed;
        Pop3Step::Close
    }

    /// Too many failed logins from this address: say so and close.
    pub fn locked_out(&mut self, out: &mut Vec<u8>) -> Pop3Step {
        line(out, "-ERR [AUTH] Too many authentication failures");
        self.state = State::Closed;
        Pop3Step::Close
    }

    /// The server is stopping: nothing is deleted.
    pub fn shutdown(&mut self, out: &mut Vec<u8>) -> Pop3Step {
        line(out, "-ERR [SYS/TEMP] Server shutting down");
        self.state = State::Closed;
        Pop3Step::Close
    }

    fn may_login(&self) -> bool {
        self.link.tls.is_some() || self.link.cleartext_auth
    }

    /// Handles what it can of `input`; returns the octets used. A
    /// listing under way is continued first; nothing more is taken while
    /// [`OUTPUT_CAP`] octets of output wait.
    pub fn feed(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> (usize, Pop3Step) {
        self.continue_listing(out);
        let mut used = 0;
        while used < input.len() && out.len() < OUTPUT_CAP {
            let rest = &input[used..];
            if let State::LongLine(_) = self.state {
                let Some(lf) = memchr(b'\n', rest) else {
                    return (input.len(), Pop3Step::Continue);
                };
                used += lf + 1;
                if let State::LongLine(prev) =
                    std::mem::replace(&mut self.state, State::Closed)
                {
                    self.state = *prev;
                }
                let step = self.error(out, "-ERR line too long");
                if !matches!(step, Pop3Step::Continue) {
                    return (used, step);
                }
                continue;
            }
            if !matches!(
                self.state,
                State::Authorization { .. }
                    | State::Sasl
                    | State::Transaction(_)
            ) {
                return (used, Pop3Step::Continue);
            }
            let Some(lf) = memchr(b'\n', rest) else {
                if rest.len() >= MAX_LINE {
                    let prev =
                        std::mem::replace(&mut self.state, State::Closed);
                    self.state = State::LongLine(Box::new(prev));
                    return (input.len(), Pop3Step::Continue);
                }
                return (used, Pop3Step::Continue);
            };
            used += lf + 1;
            if lf + 1 > MAX_LINE {
                let step = self.error(out, "-ERR line too long");
                if !matches!(step, Pop3Step::Continue) {
                    return (used, step);
                }
                continue;
            }
            let text = rest[..lf].strip_suffix(b"\r").unwrap_or(&rest[..lf]);
            let step = self.line(text, out);
            if !matches!(step, Pop3Step::Continue) {
                return (used, step);
            }
        }
        (used, Pop3Step::Continue)
    }

    fn error(&mut self, out: &mut Vec<u8>, text: &str) -> Pop3Step {
        line(out, text);
        self.errors += 1;
        if self.errors >= MAX_ERRORS {
            line(out, "-ERR too many errors, closing");
            self.state = State::Closed;
            return Pop3Step::Close;
        }
        Pop3Step::Continue
    }

    fn line(&mut self, text: &[u8], out: &mut Vec<u8>) -> Pop3Step {
        if let State::Sasl = self.state {
            self.state = State::Authorization { user: None };
            return self.sasl_response(text, out);
        }
        let cmd = match command::parse(text) {
            Ok(c) => c,
            Err(why) => return self.error(out, &format!("-ERR {why}")),
        };
        match std::mem::replace(&mut self.state, State::Closed) {
            State::Authorization { user } => {
                self.authorization(user, cmd, out)
            }
            State::Transaction(drop) => self.transaction(drop, cmd, out),
            other => {
                self.state = other;
                Pop3Step::Continue
            }
        }
    }

    fn authorization(
        &mut self,
        user: Option<String>,
        cmd: Command<'_>,
        out: &mut Vec<u8>,
    ) -> Pop3Step {
        self.state = State::Authorization { user: None };
        match cmd {
            Command::Capa => {
                self.capa(out, true);
                Pop3Step::Continue
            }
            Command::Quit => {
                line(out, "+OK bye");
                self.state = State::Closed;
                Pop3Step::Close
            }
            Command::Noop => {
                line(out, "+OK");
                Pop3Step::Continue
            }
            Command::Stls if self.starttls && self.link.tls.is_none() => {
                line(out, "+OK Begin TLS negotiation");
                Pop3Step::StartTls
            }
            Command::Stls => self.error(out, "-ERR STLS not available"),
            Command::Xclient(client) if self.link.front_end => {
                self.forwarded = client;
                line(out, "+OK");
                Pop3Step::Continue
            }
            Command::Xclient(_) => self.error(out, "-ERR XCLIENT is for trusted front ends"),
            _ if !self.may_login() => self.error(
                out,
                "-ERR [AUTH] Plaintext authentication disallowed on non-secure connections",
            ),
            Command::User(name) => {
                line(out, "+OK");
                self.state = State::Authorization { user: Some(name.to_string()) };
                Pop3Step::Continue
            }
            Command::Pass(password) => match user {
                Some(user) => {
                    self.state = State::Authenticating;
                    Pop3Step::Authenticate(Credentials { user, password: password.to_vec() })
                }
                None => self.error(out, "-ERR USER first"),
            },
            Command::Auth(None, _) => {
                out.extend_from_slice(b"+OK\r\nPLAIN\r\n.\r\n");
                Pop3Step::Continue
            }
            Command::Auth(Some(m), initial) if m.eq_ignore_ascii_case("PLAIN") => match initial {
                Some(r) => self.sasl_response(r, out),
                None => {
                    line(out, "+ ");
                    self.state = State::Sasl;
                    Pop3Step::Continue
                }
            },
            Command::Auth(Some(_), _) => self.error(out, "-ERR unsupported mechanism"),
            _ => self.error(out, "-ERR not allowed before login"),
        }
    }

    fn sasl_response(&mut self, b64: &[u8], out: &mut Vec<u8>) -> Pop3Step {
        if b64 == b"*" {
            return self.error(out, "-ERR authentication cancelled");
        }
        let decoded = if b64 == b"=" {
            Ok(Vec::new())
        } else {
            sasl::decode(b64)
        };
        match decoded.and_then(|d| sasl::plain(&d)) {
            Ok(credentials) => {
                self.state = State::Authenticating;
                Pop3Step::Authenticate(credentials)
            }
            Err(SaslError::Base64 | SaslError::TooLong) => {
                self.error(out, "-ERR cannot decode response")
            }
            Err(SaslError::Malformed) => {
                self.error(out, "-ERR malformed response")
            }
        }
    }

    /// The loop's answer to [`Pop3Step::Authenticate`].
    pub fn logged_in(
        &mut self,
        result: Result<Arc<dyn Listings>, LoginError>,
        out: &mut Vec<u8>,
    ) {
        match result {
            Ok(messages) => {
                let drop = Maildrop::new(messages);
                let count = drop.messages.count();
                let total: u64 =
                    (0..count).map(|i| drop.messages.size(i)).sum();
                line(out, &format!("+OK {count} messages ({total} octets)"));
                self.state = State::Transaction(Box::new(drop));
            }
            Err(e) => {
                self.state = State::Authorization { user: None };
                let text = match e {
                    LoginError::Credentials => "-ERR [AUTH] Authentication failed".to_string(),
                    LoginError::InUse => "-ERR [IN-USE] Mailbox is locked by another POP3 session".to_string(),
                    LoginError::Unavailable(why) => format!("-ERR [SYS/TEMP] Cannot open mailbox: {why}"),
                };
                line(out, &text);
                self.errors += 1;
            }
        }
    }

    fn capa(&self, out: &mut Vec<u8>, before_login: bool) {
        line(out, "+OK Capability list follows");
        let mut caps = vec![
            "TOP",
            "UIDL",
            "RESP-CODES",
            "AUTH-RESP-CODE",
            "PIPELINING",
            "EXPIRE NEVER",
            "IMPLEMENTATION postling",
        ];
        if before_login && self.may_login() {
            caps.extend(["USER", "SASL PLAIN"]);
        }
        if before_login && self.starttls && self.link.tls.is_none() {
            caps.push("STLS");
        }
        if before_login && self.link.front_end {
            caps.push("XCLIENT");
        }
        for c in caps {
            line(out, c);
        }
        line(out, ".");
    }

    fn transaction(
        &mut self,
        mut drop: Box<Maildrop>,
        cmd: Command<'_>,
        out: &mut Vec<u8>,
    ) -> Pop3Step {
        let step = match cmd {
            Command::Stat => {
                let (n, size) = drop.live().fold((0, 0), |(n, s), i| {
                    (n + 1, s + drop.messages.size(i))
                });
                line(out, &format!("+OK {n} {size}"));
                Pop3Step::Continue
            }
            Command::List(None) | Command::Uidl(None) => {
                let uidl = matches!(cmd, Command::Uidl(_));
                line(out, "+OK");
                self.state =
                    State::Listing(drop, ListingState { uidl, next: 0 });
                self.continue_listing(out);
                return Pop3Step::Continue;
            }
            Command::List(Some(n)) | Command::Uidl(Some(n)) => match drop
                .get(n)
            {
                Ok(i) if matches!(cmd, Command::Uidl(_)) => {
                    line(out, &format!("+OK {n} {}", drop.messages.uid(i)));
                    Pop3Step::Continue
                }
                Ok(i) => {
                    line(out, &format!("+OK {n} {}", drop.messages.size(i)));
                    Pop3Step::Continue
                }
                Err(e) => self.error(out, e),
            },
            Command::Retr(n) | Command::Top(n, _) => match drop.get(n) {
                Ok(i) => {
                    let top = match cmd {
                        Command::Top(_, lines) => Some(lines),
                        _ => {
                            drop.marks[i] |= RETRIEVED;
                            None
                        }
                    };
                    line(
                        out,
                        &format!("+OK {} octets", drop.messages.size(i)),
                    );
                    self.state = State::Sending(drop);
                    return Pop3Step::Send { index: i, top };
                }
                Err(e) => self.error(out, e),
            },
            Command::Dele(n) => match drop.get(n) {
                Ok(i) => {
                    drop.marks[i] |= DELETED;
                    line(out, &format!("+OK message {n} deleted"));
                    Pop3Step::Continue
                }
                Err(e) => self.error(out, e),
            },
            Command::Rset => {
                drop.marks.iter_mut().for_each(|m| *m &= !DELETED);
                line(out, "+OK");
                Pop3Step::Continue
            }
            Command::Noop => {
                line(out, "+OK");
                Pop3Step::Continue
            }
            Command::Capa => {
                self.capa(out, false);
                Pop3Step::Continue
            }
            Command::Quit => {
                let n = drop.marks.len();
                let deleted: Vec<usize> =
                    (0..n).filter(|&i| drop.is(i, DELETED)).collect();
                let seen: Vec<usize> = (0..n)
                    .filter(|&i| drop.is(i, RETRIEVED) && !drop.is(i, DELETED))
                    .collect();
                self.state = State::Updating;
                return Pop3Step::Update { deleted, seen };
            }
            _ => self.error(out, "-ERR not allowed after login"),
        };
        if matches!(self.state, State::Closed)
            && !matches!(step, Pop3Step::Close)
        {
            self.state = State::Transaction(drop);
        }
        step
    }

    /// Writes more of a LIST or UIDL answer, up to [`OUTPUT_CAP`].
    fn continue_listing(&mut self, out: &mut Vec<u8>) {
        if !self.has_more_output() {
            return;
        }
        let State::Listing(drop, mut listing) =
            std::mem::replace(&mut self.state, State::Closed)
        else {
            return;
        };
        let n = drop.marks.len();
        while listing.next < n && out.len() < OUTPUT_CAP {
            let i = listing.next;
            listing.next += 1;
            if drop.is(i, DELETED) {
                continue;
            }
            if listing.uidl {
                line(out, &format!("{} {}", i + 1, drop.messages.uid(i)));
            } else {
                line(out, &format!("{} {}", i + 1, drop.messages.size(i)));
            }
        }
        if listing.next < n {
            self.state = State::Listing(drop, listing);
        } else {
            line(out, ".");
            self.state = State::Transaction(drop);
        }
    }

    /// True while a listing waits for room in the output.
    pub fn has_more_output(&self) -> bool {
        matches!(self.state, State::Listing(..))
    }

    /// The message of the last [`Pop3Step::Send`] has been written.
    pub fn sent(&mut self) {
        if let State::Sending(drop) =
            std::mem::replace(&mut self.state, State::Closed)
        {
            self.state = State::Transaction(drop);
        }
    }

    /// Sending failed (the file vanished, a read error): the client has
    /// a partial message, so the only honest move is to drop the
    /// connection without UPDATE.
    pub fn send_failed(&mut self) -> Pop3Step {
        self.state = State::Closed;
        Pop3Step::Close
    }

    /// The loop's answer to [`Pop3Step::Update`].
    pub fn updated(
        &mut self,
        result: Result<(), String>,
        out: &mut Vec<u8>,
    ) -> Pop3Step {
        match result {
            Ok(()) => line(
                out,
                &format!("+OK {} POP3 server signing off", self.hostname),
            ),
            Err(why) => line(
                out,
                &format!(
                    "-ERR [SYS/TEMP] Some deleted messages not removed: {why}"
                ),
            ),
        }
        self.state = State::Closed;
        Pop3Step::Close
    }

    /// The TLS handshake finished.
    pub fn tls_started(&mut self, info: crate::proto::smtp::TlsInfo) {
        self.link.tls = Some(info);
    }
}

fn line(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests;
