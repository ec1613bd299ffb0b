//! One IMAP session: reading commands (literals, APPEND's streamed
//! message, AUTHENTICATE's exchange, IDLE's DONE), the states of RFC
//! 9051 3 and the commands valid in each. Mailbox work goes to the loop
//! as a [`Request`]; its [`Reply`] comes back through [`Imap::done`].
//! Commands on the selected mailbox live in `selected.rs`.

use std::rc::Rc;

use memchr::memchr;

use super::append::{Next, Plan};
use super::args::{Args, Bad};
use super::command::{self, Command};
use super::frame::{self, Framed, MAX_COMMAND, MAX_NONSYNC_BEFORE_LOGIN};
use super::names;
use super::notify::{Events, Refused, Spec};
use super::request::Status;
use super::request::{ImapStep, No, Reply, Request};
use super::response::{line, tagged, tagged_no};
use super::selected::{Pending, Selected};
pub use super::types::Enabled;
use super::types::ListParams;
use crate::proto::OUTPUT_CAP;
use crate::proto::sasl::{self, Credentials, SaslError};
use crate::proto::smtp::{Link, TlsInfo};

/// Errors tolerated before the session is dropped.
pub const MAX_ERRORS: u32 = 20;

/// What the loop needs to know for every session.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Our host name, for the greeting.
    pub hostname: String,
    /// STARTTLS may be offered.
    pub starttls: bool,
    /// APPENDLIMIT: the largest message APPEND takes.
    pub append_limit: u64,
}

/// Where a streamed APPEND message goes (the loop's spool).
pub trait AppendSink {
    /// A message begins.
    fn begin_append(&mut self);
    /// The next octets (LF line ends).
    fn write_append(&mut self, bytes: &[u8]);
    /// The message is abandoned.
    fn discard_append(&mut self);
}

impl AppendSink for Vec<u8> {
    fn begin_append(&mut self) {
        self.clear();
    }

    fn write_append(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }

    fn discard_append(&mut self) {
        self.clear();
    }
}

#[derive(Debug)]
enum State {
    /// Before login.
    NotAuthenticated,
    /// Logged in as `user`, nothing selected.
    Authenticated,
    /// A mailbox is selected.
    Selected(Box<Selected>),
    /// LOGOUT given.
    Logout,
}

/// What input means just now, besides commands.
#[derive(Debug)]
enum Reading {
    /// Commands.
    Commands,
    /// An AUTHENTICATE exchange: the next line is a SASL response.
    Sasl {
        tag: Vec<u8>,
        /// PLAIN (else LOGIN).
        plain: bool,
        /// LOGIN's user name, once given.
        login_user: Option<String>,
    },
    /// An APPEND literal: `left` octets still to come.
    Append {
        tag: Vec<u8>,
        plan: Box<Plan>,
        left: u64,
        /// The last octet written was a CR held back (CRLF → LF).
        cr: bool,
        /// literal8: octets kept exactly (binary parts are re-encoded
        /// when stored).
        raw: bool,
    },
    /// Discarding `left` octets of a literal we refused, then the rest
    /// of its command.
    Skip { left: u64 },
    /// Discarding up to the end of a line that was too long.
    LongLine,
    /// IDLE: waiting for DONE.
    Idle(Vec<u8>),
}

/// One IMAP session.
#[derive(Debug)]
pub struct Imap {
    settings: Rc<Settings>,
    link: Link,
    state: State,
    reading: Reading,
    /// The user, once logged in.
    user: Option<String>,
    /// Extensions enabled.
    pub enabled: Enabled,
    /// The command waiting for the loop, if any.
    pending: Option<Pending>,
    /// Continuations sent for the command being read.
    literals_accepted: usize,
    errors: u32,
    /// NOTIFY: what the client wants to hear of.
    notify: Option<Spec>,
    /// NOTIFY: other folders watched, their events and the STATUS last
    /// told.
    watched: Vec<(String, Events, Status)>,
    /// NOTIFY lines that came while a command was being answered.
    queued: Vec<u8>,
    /// The client a front end named (ID `x-originating-ip`).
    forwarded: Option<std::net::IpAddr>,
}

impl Imap {
    /// A session on a connection described by `link`.
    pub fn new(settings: Rc<Settings>, link: Link) -> Imap {
        Imap {
            settings,
            link,
            state: State::NotAuthenticated,
            reading: Reading::Commands,
            user: None,
            enabled: Enabled::default(),
            pending: None,
            literals_accepted: 0,
            errors: 0,
            notify: None,
            watched: Vec::new(),
            queued: Vec::new(),
            forwarded: None,
        }
    }

    /// The client a front end named with ID, if any.
    pub fn forwarded(&self) -> Option<std::net::IpAddr> {
        self.forwarded
    }

    fn may_login(&self) -> bool {
        self.link.tls.is_some() || self.link.cleartext_auth
    }

    fn logged_in_state(&self) -> bool {
        !matches!(self.state, State::NotAuthenticated | State::Logout)
    }

    /// The capability list for now.
    fn capabilities(&self) -> String {
        let mut c = String::from("IMAP4rev1 IMAP4rev2");
        if !self.logged_in_state() {
            c.push_str(" SASL-IR ID ENABLE LITERAL-");
            if self.settings.starttls && self.link.tls.is_none() {
                c.push_str(" STARTTLS");
            }
            if self.may_login() {
                c.push_str(" AUTH=PLAIN AUTH=LOGIN");
            } else {
                c.push_str(" LOGINDISABLED");
            }
            return c;
        }
        c.push_str(
            " SASL-IR ID ENABLE IDLE NAMESPACE LITERAL+ UIDPLUS MOVE UNSELECT \
             CHILDREN SPECIAL-USE CREATE-SPECIAL-USE LIST-EXTENDED \
             LIST-STATUS ESEARCH CONDSTORE QRESYNC BINARY UTF8=ACCEPT \
             STATUS=SIZE SORT SORT=DISPLAY ESORT \
             THREAD=ORDEREDSUBJECT THREAD=REFERENCES MULTIAPPEND CATENATE \
             CONTEXT=SEARCH NOTIFY URLAUTH URLAUTH=BINARY QUOTA \
             QUOTA=RES-STORAGE",
        );
        c.push_str(&format!(" APPENDLIMIT={}", self.settings.append_limit));
        c
    }

    /// Writes the greeting.
    pub fn greet(&self, out: &mut Vec<u8>) {
        line(
            out,
            &format!(
                "* OK [CAPABILITY {}] {} IMAP postling ready",
                self.capabilities(),
                self.settings.hostname
            ),
        );
    }

    /// The TLS handshake finished.
    pub fn tls_started(&mut self, info: TlsInfo) {
        self.link.tls = Some(info);
    }

    /// True if closing now loses nothing.
    pub fn is_idle(&self) -> bool {
        self.pending.is_none()
            && matches!(self.reading, Reading::Commands | Reading::Idle(_))
    }

    /// True while IDLE: changes are to be told at once.
    pub fn is_idling(&self) -> bool {
        matches!(self.reading, Reading::Idle(_))
    }

    /// True while a FETCH answer waits for room in the output.
    pub fn has_more_output(&self) -> bool {
        Selected::fetch_stalled(&self.pending)
    }

    /// True while a command waits for the loop (input waits too).
    pub fn is_waiting(&self) -> bool {
        self.pending.is_some()
    }

    /// The user logged in.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// The selected folder's name.
    pub fn selected_name(&self) -> Option<&str> {
        match &self.state {
            State::Selected(s) => Some(&s.name),
            _ => None,
        }
    }

    /// RFC 9051 5.4: the autologout.
    pub fn timed_out(&mut self, out: &mut Vec<u8>) -> ImapStep {
        line(out, "* BYE Autologout; idle for too long");
        self.state = State::Logout;
        ImapStep::Close
    }

    /// Too many failed logins from this address: say so and close.
    pub fn locked_out(&mut self, out: &mut Vec<u8>) -> ImapStep {
        line(out, "* BYE [UNAVAILABLE] Too many authentication failures");
        self.state = State::Logout;
        ImapStep::Close
    }

    /// The server is stopping.
    pub fn shutdown(&mut self, out: &mut Vec<u8>) -> ImapStep {
        line(out, "* BYE [UNAVAILABLE] Server shutting down");
        self.state = State::Logout;
        ImapStep::Close
    }

    /// The loop's password check: `Some(user)` if right.
    pub fn logged_in(&mut self, user: Option<String>, out: &mut Vec<u8>) {
        let Some(Pending::Login(tag)) = self.pending.take() else {
            return;
        };
        match user {
            Some(u) => {
                self.user = Some(u);
                self.state = State::Authenticated;
                let caps = self.capabilities();
                tagged(
                    out,
                    &tag,
                    "OK",
                    &format!("[CAPABILITY {caps}] Logged in"),
                );
            }
            None => tagged(
                out,
                &tag,
                "NO",
                "[AUTHENTICATIONFAILED] Authentication failed",
            ),
        }
    }

    /// The password was right but the mailbox cannot be served.
    pub fn login_unavailable(&mut self, why: &str, out: &mut Vec<u8>) {
        if let Some(Pending::Login(tag)) = self.pending.take() {
            tagged(out, &tag, "NO", &format!("[UNAVAILABLE] {why}"));
        }
    }

    /// Handles what it can of `input`; returns the octets used.
    pub fn feed(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        sink: &mut dyn AppendSink,
    ) -> (usize, ImapStep) {
        if Selected::fetch_stalled(&self.pending) {
            let enabled = self.enabled;
            if let (State::Selected(sel), Some(p)) =
                (&mut self.state, self.pending.take())
            {
                let (next, step) = sel.resume(p, enabled, out);
                self.pending = next;
                if !matches!(step, ImapStep::Continue) {
                    return (0, step);
                }
            }
        }
        let mut used = 0;
        loop {
            if self.pending.is_some()
                || matches!(self.state, State::Logout)
                || out.len() >= OUTPUT_CAP
            {
                return (used, ImapStep::Continue);
            }
            let rest = &input[used..];
            if rest.is_empty() {
                return (used, ImapStep::Continue);
            }
            let (n, step) = self.read(rest, out, sink);
            let step = if n > 0 {
                self.after_command(step, out)
            } else {
                step
            };
            used += n;
            match step {
                ImapStep::Continue if n == 0 => {
                    return (used, ImapStep::Continue);
                }
                ImapStep::Continue => {}
                other => return (used, other),
            }
        }
    }

    /// One step of reading, by what input means now.
    fn read(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        sink: &mut dyn AppendSink,
    ) -> (usize, ImapStep) {
        match &mut self.reading {
            Reading::Append {
                left,
                cr,
                raw,
                plan,
                ..
            } => {
                let take = (*left).min(input.len() as u64) as usize;
                let mut counted = Counted { sink, n: 0 };
                if *raw {
                    counted.write_append(&input[..take]);
                } else {
                    write_lf(&input[..take], cr, &mut counted);
                }
                *left -= take as u64;
                if *left == 0 && std::mem::take(cr) {
                    counted.write_append(b"\r");
                }
                plan.streamed(counted.n);
                if *left > 0 {
                    return (take, ImapStep::Continue);
                }
                // What follows the literal, up to the next one or the
                // command's end.
                let rest = &input[take..];
                let Some(lf) = memchr(b'\n', rest) else {
                    if rest.len() > MAX_COMMAND {
                        return (input.len(), self.bye(out, "line too long"));
                    }
                    return (take, ImapStep::Continue);
                };
                let Reading::Append { tag, plan, .. } =
                    std::mem::replace(&mut self.reading, Reading::Commands)
                else {
                    return (take, ImapStep::Continue);
                };
                let seg = frame::trim_eol(&rest[..=lf]);
                let used = take + lf + 1;
                (used, self.append_segment(tag, plan, seg, out, sink))
            }
            Reading::Skip { left } => {
                let take = (*left).min(input.len() as u64) as usize;
                *left -= take as u64;
                if *left == 0 {
                    // The rest of the command is read as usual and
                    // discarded as one line.
                    self.reading = Reading::LongLine;
                }
                (take, ImapStep::Continue)
            }
            Reading::LongLine => match memchr(b'\n', input) {
                None => (input.len(), ImapStep::Continue),
                Some(lf) => {
                    self.reading = Reading::Commands;
                    let line = frame::trim_eol(&input[..=lf]);
                    // A non-synchronizing literal follows even in what we
                    // discard; a synchronizing one waits for a `+` that
                    // never comes.
                    if let Some(l) = frame::literal_at_end(line)
                        && l.nonsync
                    {
                        self.reading = Reading::Skip { left: l.len };
                    }
                    (lf + 1, ImapStep::Continue)
                }
            },
            Reading::Idle(_) => {
                let Some(lf) = memchr(b'\n', input) else {
                    if input.len() > 1024 {
                        return (input.len(), self.bye(out, "line too long"));
                    }
                    return (0, ImapStep::Continue);
                };
                let text = frame::trim_eol(&input[..=lf]);
                let Reading::Idle(tag) =
                    std::mem::replace(&mut self.reading, Reading::Commands)
                else {
                    return (lf + 1, ImapStep::Continue);
                };
                if text.eq_ignore_ascii_case(b"DONE") {
                    tagged(out, &tag, "OK", "IDLE terminated");
                    return (lf + 1, ImapStep::Continue);
                }
                (lf + 1, self.bad(out, Some(&tag), "expected DONE"))
            }
            Reading::Sasl { .. } => {
                let Some(lf) = memchr(b'\n', input) else {
                    if input.len() > MAX_COMMAND {
                        return (input.len(), self.bye(out, "line too long"));
                    }
                    return (0, ImapStep::Continue);
                };
                let text = frame::trim_eol(&input[..=lf]).to_vec();
                (lf + 1, self.sasl_response(&text, out))
            }
            Reading::Commands => self.read_command(input, out, sink),
        }
    }

    fn read_command(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        sink: &mut dyn AppendSink,
    ) -> (usize, ImapStep) {
        // APPEND's messages stream: look at the first line alone.
        if let Some(lf) = memchr(b'\n', input) {
            let first = frame::trim_eol(&input[..=lf]);
            if let Some(step) = self.start_append(first, lf + 1, out, sink) {
                return step;
            }
        }
        match frame::frame(input) {
            Framed::Command { len } => {
                self.literals_accepted = 0;
                let step = self.command(&input[..len], out);
                (len, step)
            }
            Framed::Incomplete { literal, waits } => {
                if let Some((lit, _)) = literal {
                    if !self.logged_in_state()
                        && lit.nonsync
                        && lit.len > MAX_NONSYNC_BEFORE_LOGIN
                    {
                        self.literals_accepted = 0;
                        self.reading = Reading::Skip { left: lit.len };
                        let (_, line_end) = literal.unwrap_or((lit, 0));
                        let step = self.bad(
                            out,
                            tag_of(input),
                            "literal too large before login",
                        );
                        return (line_end, step);
                    }
                    if !lit.nonsync && self.literals_accepted <= waits {
                        self.literals_accepted = waits + 1;
                        line(out, "+ Ready for literal data");
                    }
                }
                (0, ImapStep::Continue)
            }
            Framed::TooLong => {
                self.literals_accepted = 0;
                let tag = tag_of(input).map(<[u8]>::to_vec);
                self.reading = Reading::LongLine;
                let step = self.bad(out, tag.as_deref(), "command too long");
                // Discarding starts at the first line end from here.
                (0, step)
            }
        }
    }

    /// `tag APPEND mailbox ...`: checks it and reads its first
    /// segment; None if the line is not such an APPEND.
    fn start_append(
        &mut self,
        first: &[u8],
        line_len: usize,
        out: &mut Vec<u8>,
        sink: &mut dyn AppendSink,
    ) -> Option<(usize, ImapStep)> {
        let mut a = Args::new(first);
        let tag = a.tag().ok()?.to_vec();
        a.sp().ok()?;
        if !a.name().eq_ignore_ascii_case(b"APPEND") {
            return None;
        }
        a.sp().ok()?;
        // A mailbox name sent as a literal goes the framed way.
        if a.peek() == Some(b'{') {
            return None;
        }
        let mailbox = a.astring().ok()?;
        let lit =
            frame::literal_at_end(first).filter(|l| l.at >= a.position());
        if !self.logged_in_state() {
            self.errors += 1;
            return Some((
                line_len,
                self.refuse_append(
                    &tag,
                    lit,
                    "BAD",
                    "APPEND needs a login",
                    out,
                ),
            ));
        }
        let folder = match names::decode(&mailbox, self.enabled.utf8) {
            Ok(f) => f,
            Err(why) => {
                return Some((
                    line_len,
                    self.refuse_append(&tag, lit, "NO", why, out),
                ));
            }
        };
        let seg = &first[a.position()..];
        let plan = Box::new(Plan::new(folder));
        sink.begin_append();
        Some((line_len, self.append_segment(tag, plan, seg, out, sink)))
    }

    /// Reads one segment of an APPEND (`seg`: up to a literal's
    /// announcement or the command's end) and goes on as it says.
    fn append_segment(
        &mut self,
        tag: Vec<u8>,
        mut plan: Box<Plan>,
        seg: &[u8],
        out: &mut Vec<u8>,
        sink: &mut dyn AppendSink,
    ) -> ImapStep {
        let lit = frame::literal_at_end(seg);
        let text = lit.map_or(seg, |l| &seg[..l.at]);
        let next = plan.read(text, lit).and_then(|n| {
            plan.check()?;
            Ok(n)
        });
        match next {
            Err(Bad(why)) => {
                sink.discard_append();
                self.errors += 1;
                self.refuse_append(&tag, lit, "BAD", why, out)
            }
            Ok(Next::Literal(_))
                if plan.announced > self.settings.append_limit =>
            {
                sink.discard_append();
                self.refuse_append(
                    &tag,
                    lit,
                    "NO",
                    "[TOOBIG] message too large",
                    out,
                )
            }
            Ok(Next::Literal(l)) => {
                if !l.nonsync {
                    line(out, "+ Ready for literal data");
                }
                self.reading = Reading::Append {
                    tag,
                    plan,
                    left: l.len,
                    cr: false,
                    raw: l.binary,
                };
                ImapStep::Continue
            }
            Ok(Next::Done) => {
                self.pending = Some(Pending::Append(tag));
                ImapStep::Io(Request::Append {
                    folder: plan.folder,
                    messages: plan.messages,
                })
            }
        }
    }

    /// Answers an APPEND it will not take; a literal the client sends
    /// anyway is skipped with the rest of the command.
    fn refuse_append(
        &mut self,
        tag: &[u8],
        lit: Option<frame::Literal>,
        status: &str,
        text: &str,
        out: &mut Vec<u8>,
    ) -> ImapStep {
        if let Some(l) = lit.filter(|l| l.nonsync) {
            self.reading = Reading::Skip { left: l.len };
        }
        tagged(out, tag, status, text);
        if self.errors >= MAX_ERRORS {
            return self.bye(out, "Too many errors");
        }
        ImapStep::Continue
    }

    fn bad(
        &mut self,
        out: &mut Vec<u8>,
        tag: Option<&[u8]>,
        text: &str,
    ) -> ImapStep {
        tagged(out, tag.unwrap_or(b"*"), "BAD", text);
        self.errors += 1;
        if self.errors >= MAX_ERRORS {
            return self.bye(out, "Too many errors");
        }
        ImapStep::Continue
    }

    fn bye(&mut self, out: &mut Vec<u8>, text: &str) -> ImapStep {
        line(out, &format!("* BYE {text}"));
        self.state = State::Logout;
        ImapStep::Close
    }

    fn command(&mut self, framed: &[u8], out: &mut Vec<u8>) -> ImapStep {
        let (tag, cmd) = match command::parse(framed) {
            Ok(x) => x,
            Err((tag, Bad(why))) => return self.bad(out, tag, why),
        };
        let tag = tag.to_vec();
        match cmd {
            Command::Capability => {
                line(out, &format!("* CAPABILITY {}", self.capabilities()));
                tagged(out, &tag, "OK", "CAPABILITY completed");
            }
            Command::Noop | Command::Check => {
                self.sync_selected(out, true);
                tagged(out, &tag, "OK", "NOOP completed");
            }
            Command::Logout => {
                line(out, "* BYE Logging out");
                tagged(out, &tag, "OK", "LOGOUT completed");
                self.state = State::Logout;
                return ImapStep::Close;
            }
            Command::Id(client) => {
                // Only a trusted front end's word counts, and only before
                // the login it names a client for.
                if self.link.front_end && !self.logged_in_state() {
                    self.forwarded = client.or(self.forwarded);
                }
                line(out, "* ID (\"name\" \"postling\")");
                tagged(out, &tag, "OK", "ID completed");
            }
            Command::StartTls => return self.starttls(&tag, out),
            Command::Login(user, password) => {
                return self.login(&tag, &user, &password, out);
            }
            Command::Authenticate(mech, initial) => {
                return self.authenticate(&tag, &mech, initial, out);
            }
            _ if !self.logged_in_state() => {
                return self.bad(out, Some(&tag), "command needs a login");
            }
            Command::Enable(caps) => self.enable(&tag, &caps, out),
            other => return self.logged_in_command(tag, other, out),
        }
        ImapStep::Continue
    }

    fn starttls(&mut self, tag: &[u8], out: &mut Vec<u8>) -> ImapStep {
        if self.logged_in_state()
            || self.link.tls.is_some()
            || !self.settings.starttls
        {
            return self.bad(out, Some(tag), "STARTTLS not available now");
        }
        tagged(out, tag, "OK", "Begin TLS negotiation now");
        ImapStep::StartTls
    }

    fn login(
        &mut self,
        tag: &[u8],
        user: &[u8],
        password: &[u8],
        out: &mut Vec<u8>,
    ) -> ImapStep {
        if self.logged_in_state() {
            return self.bad(out, Some(tag), "already logged in");
        }
        if !self.may_login() {
            tagged(
                out,
                tag,
                "NO",
                "[PRIVACYREQUIRED] LOGIN needs TLS (STARTTLS first)",
            );
            return ImapStep::Continue;
        }
        let Ok(user) = sasl::login_user(user) else {
            return self.bad(out, Some(tag), "bad user name");
        };
        self.pending = Some(Pending::Login(tag.to_vec()));
        ImapStep::Authenticate(Credentials {
            user,
            password: password.to_vec(),
        })
    }

    fn authenticate(
        &mut self,
        tag: &[u8],
        mech: &[u8],
        initial: Option<&[u8]>,
        out: &mut Vec<u8>,
    ) -> ImapStep {
        if self.logged_in_state() {
            return self.bad(out, Some(tag), "already logged in");
        }
        if !self.may_login() {
            tagged(out, tag, "NO", "[PRIVACYREQUIRED] AUTHENTICATE needs TLS");
            return ImapStep::Continue;
        }
        let plain = mech.eq_ignore_ascii_case(b"PLAIN");
        if !plain && !mech.eq_ignore_ascii_case(b"LOGIN") {
            tagged(out, tag, "NO", "unsupported mechanism");
            return ImapStep::Continue;
        }
        self.reading = Reading::Sasl {
            tag: tag.to_vec(),
            plain,
            login_user: None,
        };
        match (plain, initial) {
            (true, Some(ir)) => self.sasl_plain(ir, out),
            (true, None) => {
                line(out, "+ ");
                ImapStep::Continue
            }
            (false, Some(ir)) => self.sasl_response(ir, out),
            (false, None) => {
                line(out, &format!("+ {}", sasl::encode(b"Username:")));
                ImapStep::Continue
            }
        }
    }

    fn sasl_plain(&mut self, response: &[u8], out: &mut Vec<u8>) -> ImapStep {
        let Reading::Sasl { tag, .. } =
            std::mem::replace(&mut self.reading, Reading::Commands)
        else {
            return ImapStep::Continue;
        };
        let decoded = match response {
            b"=" => Ok(Vec::new()),
            r => sasl::decode(r),
        };
        match decoded.and_then(|d| sasl::plain(&d)) {
            Ok(c) => {
                self.pending = Some(Pending::Login(tag));
                ImapStep::Authenticate(c)
            }
            Err(e) => self.sasl_error(&tag, e, out),
        }
    }

    fn sasl_error(
        &mut self,
        tag: &[u8],
        e: SaslError,
        out: &mut Vec<u8>,
    ) -> ImapStep {
        let why = match e {
            SaslError::Base64 => "bad base64",
            SaslError::Malformed => "malformed response",
            SaslError::TooLong => "response too long",
        };
        self.bad(out, Some(tag), why)
    }

    /// A line during AUTHENTICATE.
    fn sasl_response(&mut self, text: &[u8], out: &mut Vec<u8>) -> ImapStep {
        if text == b"*" {
            let Reading::Sasl { tag, .. } =
                std::mem::replace(&mut self.reading, Reading::Commands)
            else {
                return ImapStep::Continue;
            };
            return self.bad(out, Some(&tag), "AUTHENTICATE cancelled");
        }
        let Reading::Sasl {
            tag,
            plain,
            login_user,
        } = &mut self.reading
        else {
            return ImapStep::Continue;
        };
        let tag = tag.clone();
        if *plain {
            return self.sasl_plain(text, out);
        }
        let decoded = match sasl::decode(text) {
            Ok(d) => d,
            Err(e) => {
                self.reading = Reading::Commands;
                return self.sasl_error(&tag, e, out);
            }
        };
        match login_user.take() {
            None => match sasl::login_user(&decoded) {
                Ok(u) => {
                    *login_user = Some(u);
                    line(out, &format!("+ {}", sasl::encode(b"Password:")));
                    ImapStep::Continue
                }
                Err(e) => {
                    self.reading = Reading::Commands;
                    self.sasl_error(&tag, e, out)
                }
            },
            Some(user) => {
                self.reading = Reading::Commands;
                self.pending = Some(Pending::Login(tag));
                ImapStep::Authenticate(Credentials {
                    user,
                    password: decoded,
                })
            }
        }
    }

    fn enable(&mut self, tag: &[u8], caps: &[&[u8]], out: &mut Vec<u8>) {
        let mut on = Vec::new();
        for cap in caps {
            let c = cap.to_ascii_uppercase();
            let newly = match c.as_slice() {
                b"IMAP4REV2" => {
                    !std::mem::replace(&mut self.enabled.rev2, true)
                }
                b"UTF8=ACCEPT" => {
                    !std::mem::replace(&mut self.enabled.utf8, true)
                }
                b"CONDSTORE" => {
                    !std::mem::replace(&mut self.enabled.condstore, true)
                }
                b"QRESYNC" => {
                    self.enabled.condstore = true;
                    !std::mem::replace(&mut self.enabled.qresync, true)
                }
                _ => false,
            };
            if newly {
                on.push(String::from_utf8_lossy(&c).into_owned());
            }
        }
        if self.enabled.rev2 {
            self.enabled.utf8 = true;
        }
        line(out, format!("* ENABLED {}", on.join(" ")).trim_end());
        tagged(out, tag, "OK", "ENABLE completed");
    }

    /// Commands for a logged-in session.
    fn logged_in_command(
        &mut self,
        tag: Vec<u8>,
        cmd: Command<'_>,
        out: &mut Vec<u8>,
    ) -> ImapStep {
        let utf8 = self.enabled.utf8;
        let name = |raw: &[u8]| names::decode(raw, utf8);
        macro_rules! named {
            ($raw:expr) => {
                match name(&$raw) {
                    Ok(n) => n,
                    Err(why) => {
                        tagged(out, &tag, "NO", why);
                        return ImapStep::Continue;
                    }
                }
            };
        }
        let (pending, request) = match cmd {
            Command::Namespace => {
                line(out, "* NAMESPACE ((\"\" \".\")) NIL NIL");
                tagged(out, &tag, "OK", "NAMESPACE completed");
                return ImapStep::Continue;
            }
            Command::Select(mailbox, readonly, params) => {
                let n = named!(mailbox);
                if params.condstore || params.qresync.is_some() {
                    self.enabled.condstore = true;
                }
                if params.qresync.is_some() && !self.enabled.qresync {
                    return self.bad(
                        out,
                        Some(&tag),
                        "QRESYNC is not enabled",
                    );
                }
                // RFC 9051 6.3.2: a failed SELECT leaves nothing selected.
                self.unselect(out);
                (
                    Pending::Select {
                        tag,
                        readonly,
                        name: n.clone(),
                        qresync: params.qresync,
                    },
                    Request::Select(n),
                )
            }
            Command::Create(mailbox, uses) => {
                return self.create_command(tag, &mailbox, &uses, out);
            }
            Command::Delete(mailbox) => {
                let n = named!(mailbox);
                if n == "INBOX" {
                    tagged(out, &tag, "NO", "INBOX cannot be deleted");
                    return ImapStep::Continue;
                }
                if self.selected_name() == Some(n.as_str()) {
                    self.unselect(out);
                }
                (Pending::Plain(tag), Request::Delete(n))
            }
            Command::Rename(from, to) => {
                let (from, to) = (named!(from), named!(to));
                if to == "INBOX" {
                    tagged(out, &tag, "NO", "[ALREADYEXISTS] INBOX exists");
                    return ImapStep::Continue;
                }
                (Pending::Plain(tag), Request::Rename(from, to))
            }
            Command::Subscribe(mailbox, on) => {
                let n = named!(mailbox);
                (Pending::Plain(tag), Request::Subscribe(n, on))
            }
            Command::List {
                reference,
                patterns,
                params,
                lsub,
            } => {
                return self.list_command(
                    tag, &reference, &patterns, params, lsub, out,
                );
            }
            Command::SetQuota
            | Command::GetQuota(_)
            | Command::GetQuotaRoot(_) => {
                return self.quota_command(tag, cmd, out);
            }
            Command::Status(mailbox, items) => {
                let n = named!(mailbox);
                (
                    Pending::Status {
                        tag,
                        name: n.clone(),
                        items: items.clone(),
                    },
                    Request::Status(n, items),
                )
            }
            Command::Notify(text) => {
                let text = text.to_vec();
                return self.notify_command(tag, &text, out);
            }
            Command::GenUrlAuth(urls) => {
                return self.genurlauth_command(tag, urls, out);
            }
            Command::UrlFetch(urls) => {
                let urls = urls
                    .into_iter()
                    .map(|(u, b, s)| {
                        (String::from_utf8_lossy(&u).into_owned(), b, s)
                    })
                    .collect();
                (Pending::UrlFetch(tag), Request::UrlFetch(urls))
            }
            Command::ResetKey(mailbox) => {
                let name = match mailbox {
                    Some(m) => Some(named!(m)),
                    None => None,
                };
                (Pending::Plain(tag), Request::ResetKey(name))
            }
            Command::Idle => {
                self.sync_selected(out, true);
                line(out, "+ idling");
                self.reading = Reading::Idle(tag);
                return ImapStep::Continue;
            }
            Command::Append { .. } => {
                return self.bad(out, Some(&tag), "APPEND needs a literal");
            }
            other => return self.selected_command(tag, other, out),
        };
        self.pending = Some(pending);
        ImapStep::Io(request)
    }

    /// GETQUOTA, GETQUOTAROOT (to the loop) and SETQUOTA (refused):
    /// RFC 9208 with the one root `""`.
    fn quota_command(
        &mut self,
        tag: Vec<u8>,
        cmd: Command<'_>,
        out: &mut Vec<u8>,
    ) -> ImapStep {
        let pending = match cmd {
            Command::GetQuota(root) if root.is_empty() => {
                Pending::Quota { tag, mailbox: None }
            }
            Command::GetQuota(_) => {
                let no =
                    No::code("NONEXISTENT", "the only quota root is \"\"");
                return no_then(out, &tag, &no);
            }
            Command::GetQuotaRoot(mailbox) => {
                match names::decode(&mailbox, self.enabled.utf8) {
                    Ok(n) => Pending::Quota {
                        tag,
                        mailbox: Some(n),
                    },
                    Err(why) => {
                        tagged(out, &tag, "NO", why);
                        return ImapStep::Continue;
                    }
                }
            }
            _ => {
                let no =
                    No::code("NOPERM", "quotas are set by the administrator");
                return no_then(out, &tag, &no);
            }
        };
        self.pending = Some(pending);
        ImapStep::Io(Request::Quota)
    }

    /// CREATE, with one special use at most (RFC 6154).
    fn create_command(
        &mut self,
        tag: Vec<u8>,
        mailbox: &[u8],
        uses: &[&[u8]],
        out: &mut Vec<u8>,
    ) -> ImapStep {
        // RFC 9051 6.3.4: a trailing separator only says children will
        // follow.
        let trimmed = mailbox
            .strip_suffix(b".")
            .filter(|t| !t.is_empty())
            .unwrap_or(mailbox);
        let n = match names::decode(trimmed, self.enabled.utf8) {
            Ok(n) => n,
            Err(why) => {
                tagged(out, &tag, "NO", why);
                return ImapStep::Continue;
            }
        };
        if n == "INBOX" {
            tagged(out, &tag, "NO", "[ALREADYEXISTS] INBOX exists");
            return ImapStep::Continue;
        }
        let special = match uses {
            [] => None,
            [one] => Some(String::from_utf8_lossy(one).into_owned()),
            _ => {
                tagged(out, &tag, "NO", "[USEATTR] one use at a time");
                return ImapStep::Continue;
            }
        };
        self.pending = Some(Pending::Plain(tag));
        ImapStep::Io(Request::Create(n, special))
    }

    /// LIST and LSUB: patterns made whole with the reference; `""` alone
    /// is answered here (the hierarchy's root).
    fn list_command(
        &mut self,
        tag: Vec<u8>,
        reference: &[u8],
        patterns: &[std::borrow::Cow<'_, [u8]>],
        params: ListParams,
        lsub: bool,
        out: &mut Vec<u8>,
    ) -> ImapStep {
        let utf8 = self.enabled.utf8;
        let reference = String::from_utf8_lossy(reference).into_owned();
        let mut full = Vec::new();
        let mut root_only = false;
        for p in patterns {
            let p = if utf8 {
                String::from_utf8_lossy(p).into_owned()
            } else {
                match super::utf7::decode(p) {
                    Some(p) => p,
                    None => continue,
                }
            };
            if p.is_empty() {
                root_only = true;
                continue;
            }
            full.push(format!("{reference}{p}"));
        }
        if root_only && full.is_empty() {
            let kind = if lsub { "LSUB" } else { "LIST" };
            line(out, &format!("* {kind} (\\Noselect) \".\" \"\""));
            tagged(out, &tag, "OK", &format!("{kind} completed"));
            return ImapStep::Continue;
        }
        let (pending, request) = (
            Pending::List {
                tag,
                lsub,
                params: params.clone(),
            },
            Request::List(full, params),
        );
        self.pending = Some(pending);
        ImapStep::Io(request)
    }

    /// GENURLAUTH: the URLs to sign, INTERNAL their only mechanism.
    fn genurlauth_command(
        &mut self,
        tag: Vec<u8>,
        urls: Vec<(Vec<u8>, Vec<u8>)>,
        out: &mut Vec<u8>,
    ) -> ImapStep {
        let mut rumps = Vec::with_capacity(urls.len());
        for (url, mech) in urls {
            if !mech.eq_ignore_ascii_case(b"INTERNAL") {
                tagged(out, &tag, "NO", "unknown URLAUTH mechanism");
                return ImapStep::Continue;
            }
            match String::from_utf8(url) {
                Ok(u) => rumps.push(u),
                Err(_) => return self.bad(out, Some(&tag), "bad URL"),
            }
        }
        let (pending, request) =
            (Pending::GenUrlAuth(tag), Request::GenUrlAuth(rumps));
        self.pending = Some(pending);
        ImapStep::Io(request)
    }

    /// Commands that need a selected mailbox.
    fn selected_command(
        &mut self,
        tag: Vec<u8>,
        cmd: Command<'_>,
        out: &mut Vec<u8>,
    ) -> ImapStep {
        let State::Selected(sel) = &mut self.state else {
            return self.bad(out, Some(&tag), "no mailbox selected");
        };
        // RFC 7162 3.1: the first command that uses a MODSEQ turns
        // CONDSTORE on, and says where the mailbox is.
        if !self.enabled.condstore && uses_modseq(&cmd) {
            self.enabled.condstore = true;
            let top = sel.highest_modseq();
            line(out, &format!("* OK [HIGHESTMODSEQ {top}] CONDSTORE on"));
        }
        let enabled = self.enabled;
        match sel.command(tag, cmd, enabled, out) {
            Ok((pending, step)) => {
                if matches!(pending, Some(Pending::Unselect)) {
                    self.state = State::Authenticated;
                    return ImapStep::Continue;
                }
                self.pending = pending;
                step
            }
            Err((tag, why)) => self.bad(out, Some(&tag), why),
        }
    }

    /// Leaves the selected mailbox (no expunge).
    fn unselect(&mut self, out: &mut Vec<u8>) {
        if let State::Selected(_) = self.state {
            self.state = State::Authenticated;
            if self.enabled.qresync {
                line(out, "* OK [CLOSED] Previous mailbox closed");
            }
        }
    }

    /// Tells the client of changes to the selected folder; expunges only
    /// when `expunges` (not during FETCH, STORE, SEARCH).
    pub fn sync_selected(&mut self, out: &mut Vec<u8>, expunges: bool) {
        let enabled = self.enabled;
        if let State::Selected(sel) = &mut self.state {
            sel.sync(out, expunges, enabled);
        }
    }

    /// The selected folder changed: tell at once if IDLE.
    pub fn folder_changed(&mut self, out: &mut Vec<u8>) {
        if self.is_idling() {
            self.sync_selected(out, true);
        } else if let Some((_, delayed)) =
            self.notify.as_ref().and_then(Spec::selected)
        {
            // NOTIFY (SELECTED): told at once, between commands.
            if self.between_commands() {
                self.sync_selected(out, !delayed);
            }
        }
    }

    /// No command is being read or answered: unsolicited lines may go.
    fn between_commands(&self) -> bool {
        self.pending.is_none()
            && matches!(self.reading, Reading::Commands | Reading::Idle(_))
    }

    /// NOTIFY: a watched folder changed; its STATUS if the change is an
    /// event the client asked for.
    pub fn folder_status(
        &mut self,
        name: &str,
        now: &Status,
        out: &mut Vec<u8>,
    ) {
        if self.selected_name() == Some(name) {
            return;
        }
        let Some(w) = self.watched.iter_mut().find(|w| w.0 == name) else {
            return;
        };
        if !w.1.wants(&w.2, now) {
            w.2 = *now;
            return;
        }
        w.2 = *now;
        let mut line = Vec::new();
        super::list::write_status(
            &mut line,
            name,
            now,
            &w.1.status_items(),
            self.enabled,
        );
        self.unsolicited(&line, out);
    }

    /// NOTIFY: a folder of this user was created, deleted, renamed or
    /// (un)subscribed by another session.
    pub fn folder_event(&mut self, event: &FolderEvent, out: &mut Vec<u8>) {
        let Some(wanted) = self.notify.as_ref().map(Spec::names) else {
            return;
        };
        let name = |n: &str| names::encode(n, self.enabled.utf8);
        let mut text = Vec::new();
        let mut list = |attrs: &str, n: &str, extra: &str| {
            text.extend_from_slice(
                format!("* LIST ({attrs}) \".\" ").as_bytes(),
            );
            super::response::mailbox(&mut text, &name(n));
            text.extend_from_slice(extra.as_bytes());
            text.extend_from_slice(b"\r\n");
        };
        match event {
            FolderEvent::Created(n) if wanted.names => list("", n, ""),
            FolderEvent::Deleted(n) if wanted.names => {
                list("\\NonExistent", n, "")
            }
            FolderEvent::Renamed(from, to) if wanted.names => {
                let mut old = Vec::new();
                super::response::mailbox(&mut old, &name(from));
                let extra = format!(
                    " (\"OLDNAME\" ({}))",
                    String::from_utf8_lossy(&old)
                );
                list("", to, &extra);
            }
            FolderEvent::Subscribed(n, on) if wanted.subscriptions => {
                list(if *on { "\\Subscribed" } else { "" }, n, "")
            }
            _ => return,
        }
        self.unsolicited(&text, out);
    }

    /// Writes NOTIFY lines now if no command is under way, else keeps
    /// them for when it is answered.
    fn unsolicited(&mut self, text: &[u8], out: &mut Vec<u8>) {
        if self.between_commands() {
            out.extend_from_slice(text);
        } else if self.queued.len() < OUTPUT_CAP {
            self.queued.extend_from_slice(text);
        }
    }

    /// NOTIFY SET or NONE.
    fn notify_command(
        &mut self,
        tag: Vec<u8>,
        text: &[u8],
        out: &mut Vec<u8>,
    ) -> ImapStep {
        let utf8 = self.enabled.utf8;
        let parsed = super::notify::parse(&mut Args::new(text), |raw| {
            names::decode(raw, utf8)
        });
        let spec = match parsed {
            Ok(spec) => spec,
            Err(Refused::Bad(why)) => return self.bad(out, Some(&tag), why),
            Err(Refused::BadEvent) => {
                let offered = super::notify::OFFERED;
                tagged(
                    out,
                    &tag,
                    "NO",
                    &format!("[BADEVENT {offered}] event not offered"),
                );
                return ImapStep::Continue;
            }
        };
        self.notify = spec.clone();
        self.pending = Some(Pending::Notify(tag));
        ImapStep::Io(Request::Notify(spec))
    }

    /// The loop's answer to the request made.
    pub fn done(&mut self, reply: Reply, out: &mut Vec<u8>) -> ImapStep {
        let step = self.done_inner(reply, out);
        self.after_command(step, out)
    }

    /// A command just finished: if a search kept up to date needs the
    /// helpers to read new messages, its tagged line waits for them, so
    /// ADDTO comes within the command as for flag changes.
    fn after_command(
        &mut self,
        step: ImapStep,
        out: &mut Vec<u8>,
    ) -> ImapStep {
        if !self.queued.is_empty() && self.between_commands() {
            out.append(&mut self.queued);
        }
        if !matches!(step, ImapStep::Continue)
            || self.pending.is_some()
            || !matches!(self.reading, Reading::Commands)
            || out.len() < 2
        {
            return step;
        }
        let State::Selected(sel) = &mut self.state else {
            return step;
        };
        let start = memchr::memmem::rfind(&out[..out.len() - 2], b"\r\n")
            .map_or(0, |i| i + 2);
        if matches!(out.get(start), Some(b'*') | Some(b'+')) {
            return step;
        }
        let Some((pending, request)) =
            sel.answers_needed(out[start..].to_vec())
        else {
            return step;
        };
        out.truncate(start);
        self.pending = Some(pending);
        ImapStep::Io(request)
    }

    fn done_inner(&mut self, reply: Reply, out: &mut Vec<u8>) -> ImapStep {
        let Some(pending) = self.pending.take() else {
            return ImapStep::Continue;
        };
        let enabled = self.enabled;
        if let Reply::Failed(no) = &reply {
            // The helper's job failed (an internal error, logged): the
            // command ends with NO, the session goes on.
            match pending.tag_or_held() {
                Ok(tag) => tagged_no(out, tag, no),
                Err(held) => out.extend_from_slice(held),
            }
            if matches!(pending, Pending::Select { .. }) {
                self.state = State::Authenticated;
            }
            return ImapStep::Continue;
        }
        match (pending, reply) {
            (
                Pending::Select {
                    tag,
                    readonly,
                    name,
                    qresync,
                },
                Reply::Selected(result),
            ) => match result {
                Ok(folder) => {
                    let sel = Selected::open(
                        folder, name, readonly, qresync, enabled, &tag, out,
                    );
                    self.state = State::Selected(Box::new(sel));
                }
                Err(no) => tagged_no(out, &tag, &no),
            },
            (Pending::Plain(tag), Reply::Done(result)) => match result {
                Ok(()) => tagged(out, &tag, "OK", "completed"),
                Err(no) => tagged_no(out, &tag, &no),
            },
            (Pending::List { tag, lsub, params }, Reply::Listed(result)) => {
                match result {
                    Ok(list) => {
                        super::list::write(out, &list, lsub, &params, enabled)
                    }
                    Err(no) => return no_then(out, &tag, &no),
                }
                let kind = if lsub { "LSUB" } else { "LIST" };
                tagged(out, &tag, "OK", &format!("{kind} completed"));
            }
            (Pending::Quota { tag, mailbox }, Reply::Quota(result)) => {
                quota_answer(out, &tag, mailbox.as_deref(), result, enabled)
            }
            (Pending::Status { tag, name, items }, Reply::Status(result)) => {
                match result {
                    Ok(st) => {
                        super::list::write_status(
                            out, &name, &st, &items, enabled,
                        );
                        tagged(out, &tag, "OK", "STATUS completed");
                    }
                    Err(no) => tagged_no(out, &tag, &no),
                }
            }
            (Pending::GenUrlAuth(tag), Reply::GenUrlAuth(result)) => {
                match result {
                    Ok(urls) => {
                        out.extend_from_slice(b"* GENURLAUTH");
                        for u in urls {
                            out.push(b' ');
                            super::response::string(out, u.as_bytes());
                        }
                        out.extend_from_slice(b"\r\n");
                        tagged(out, &tag, "OK", "GENURLAUTH completed");
                    }
                    Err(no) => tagged_no(out, &tag, &no),
                }
            }
            (Pending::UrlFetch(tag), Reply::UrlFetched(list)) => {
                out.extend_from_slice(b"* URLFETCH");
                for f in list {
                    out.push(b' ');
                    super::response::string(out, f.url.as_bytes());
                    out.push(b' ');
                    write_url_data(&f, out);
                }
                out.extend_from_slice(b"\r\n");
                tagged(out, &tag, "OK", "URLFETCH completed");
            }
            (Pending::Notify(tag), Reply::Notified(list)) => {
                let status = self.notify.as_ref().is_some_and(|s| s.status);
                if status {
                    for (name, events, st) in &list {
                        if self.selected_name() != Some(name.as_str()) {
                            super::list::write_status(
                                out,
                                name,
                                st,
                                &events.status_items(),
                                enabled,
                            );
                        }
                    }
                }
                self.watched = list;
                tagged(out, &tag, "OK", "NOTIFY completed");
            }
            (Pending::Append(tag), Reply::Appended(result)) => match result {
                Ok((validity, uids)) => {
                    self.sync_selected(out, true);
                    let mut set = Vec::new();
                    super::sequence::write_set(&uids, &mut set);
                    let set = String::from_utf8_lossy(&set);
                    tagged(
                        out,
                        &tag,
                        "OK",
                        &format!(
                            "[APPENDUID {validity} {set}] APPEND completed"
                        ),
                    );
                }
                Err(no) => tagged_no(out, &tag, &no),
            },
            (pending, reply) => {
                let State::Selected(sel) = &mut self.state else {
                    return ImapStep::Continue;
                };
                let (next, step) = sel.done(pending, reply, enabled, out);
                if matches!(next, Some(Pending::Unselect)) {
                    self.state = State::Authenticated;
                    return ImapStep::Continue;
                }
                self.pending = next;
                return step;
            }
        }
        ImapStep::Continue
    }
}

fn no_then(out: &mut Vec<u8>, tag: &[u8], no: &No) -> ImapStep {
    tagged_no(out, tag, no);
    ImapStep::Continue
}

/// True if a command uses MODSEQs (and so enables CONDSTORE).
fn uses_modseq(cmd: &Command<'_>) -> bool {
    use super::fetch::Item;
    match cmd {
        Command::Fetch(f) => {
            f.changed_since.is_some() || f.items.contains(&Item::ModSeq)
        }
        Command::Store(s) => s.unchanged_since.is_some(),
        Command::Search { keys, .. } => super::search::mentions_modseq(keys),
        _ => false,
    }
}

/// The tag at the start of a command, if it reads as one.
fn tag_of(input: &[u8]) -> Option<&[u8]> {
    let end = input.iter().position(|&b| b == b' ')?;
    let tag = &input[..end];
    (!tag.is_empty() && tag.iter().all(|&b| b > 32 && b < 127 && b != b'+'))
        .then_some(tag)
}

/// Writes `data` to the sink with CRLF as LF; a CR at the end is held
/// back in `cr` until the next octet tells.
/// Counts what passes to the sink.
struct Counted<'a> {
    sink: &'a mut dyn AppendSink,
    n: u64,
}

impl AppendSink for Counted<'_> {
    fn begin_append(&mut self) {
        self.sink.begin_append();
    }

    fn write_append(&mut self, bytes: &[u8]) {
        self.n += bytes.len() as u64;
        self.sink.write_append(bytes);
    }

    fn discard_append(&mut self) {
        self.sink.discard_append();
    }
}

fn write_lf(data: &[u8], cr: &mut bool, sink: &mut dyn AppendSink) {
    if data.is_empty() {
        return;
    }
    let mut start = 0;
    if std::mem::take(cr) && data[0] != b'\n' {
        sink.write_append(b"\r");
    }
    let mut i = 0;
    while i < data.len() {
        if data[i] == b'\r' {
            if i + 1 == data.len() {
                sink.write_append(&data[start..i]);
                *cr = true;
                return;
            }
            if data[i + 1] == b'\n' {
                sink.write_append(&data[start..i]);
                start = i + 1;
            }
        }
        i += 1;
    }
    sink.write_append(&data[start..]);
}

/// A change to a user's folders, for NOTIFY's MailboxName and
/// SubscriptionChange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FolderEvent {
    /// CREATE.
    Created(String),
    /// DELETE.
    Deleted(String),
    /// RENAME from, to.
    Renamed(String, String),
    /// SUBSCRIBE (true) or UNSUBSCRIBE.
    Subscribed(String, bool),
}

impl FolderEvent {
    /// The event a request makes if it succeeds.
    pub fn of(request: &Request) -> Option<FolderEvent> {
        Some(match request {
            Request::Create(n, _) => FolderEvent::Created(n.clone()),
            Request::Delete(n) => FolderEvent::Deleted(n.clone()),
            Request::Rename(a, b) => {
                FolderEvent::Renamed(a.clone(), b.clone())
            }
            Request::Subscribe(n, on) => {
                FolderEvent::Subscribed(n.clone(), *on)
            }
            _ => return None,
        })
    }
}

/// One URL's data in a URLFETCH answer: NIL, a literal, or (RFC 5524)
/// the parenthesised BODYPARTSTRUCTURE and BINARY items asked for.
fn write_url_data(f: &super::request::UrlFetched, out: &mut Vec<u8>) {
    let literal = |data: &Option<Vec<u8>>, out: &mut Vec<u8>| match data {
        None => out.extend_from_slice(b"NIL"),
        Some(d) => {
            if d.contains(&0) {
                out.push(b'~');
            }
            super::response::literal(out, d);
        }
    };
    if !f.binary && !f.asked_structure {
        return literal(&f.data, out);
    }
    if f.data.is_none() && f.structure.is_none() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    if f.asked_structure {
        out.extend_from_slice(b"BODYPARTSTRUCTURE ");
        match &f.structure {
            Some(s) => out.extend_from_slice(s),
            None => out.extend_from_slice(b"NIL"),
        }
    }
    if f.binary {
        if f.asked_structure {
            out.push(b' ');
        }
        out.extend_from_slice(b"BINARY ");
        literal(&f.data, out);
    }
    out.push(b')');
}

/// GETQUOTA's or GETQUOTAROOT's answer; GETQUOTA of a user without a
/// limit is NO (no root).
fn quota_answer(
    out: &mut Vec<u8>,
    tag: &[u8],
    mailbox: Option<&str>,
    result: Result<(u64, u64), No>,
    enabled: Enabled,
) {
    match result {
        Ok((_, 0)) if mailbox.is_none() => {
            tagged_no(out, tag, &No::code("NONEXISTENT", "no quota is set"))
        }
        Ok((used, limit)) => {
            super::list::write_quota(out, mailbox, used, limit, enabled);
            tagged(out, tag, "OK", "Quota completed");
        }
        Err(no) => tagged_no(out, tag, &no),
    }
}
