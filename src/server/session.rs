//! The protocol a connection speaks, behind one face for the loop: SMTP
//! or POP3 sessions, and the actions either can ask for.

use crate::proto::pop3::{LoginError, Pop3, Pop3Step};
use crate::proto::sasl::Credentials;
use crate::proto::smtp::{self, Cx, Envelope, Step, TlsInfo};

/// A connection's session.
pub enum Session {
    /// SMTP or submission.
    Smtp(Box<smtp::Server>),
    /// POP3.
    Pop3(Box<Pop3>),
}

/// What a session asks the loop to do.
pub enum Action {
    /// Keep reading.
    Continue,
    /// Flush and close.
    Close,
    /// Switch to TLS.
    StartTls,
    /// Check a password.
    Authenticate(Credentials),
    /// Store the message in the connection's spool (SMTP).
    Deliver(Box<Envelope>),
    /// Stream a message (POP3).
    Send {
        /// Which message.
        index: usize,
        /// TOP's line count.
        top: Option<usize>,
    },
    /// Apply a POP3 session's deletions and seen marks.
    Update {
        /// Indexes to delete.
        deleted: Vec<usize>,
        /// Indexes to mark seen.
        seen: Vec<usize>,
    },
}

impl From<Step> for Action {
    fn from(step: Step) -> Action {
        match step {
            Step::Continue => Action::Continue,
            Step::Close => Action::Close,
            Step::StartTls => Action::StartTls,
            Step::Authenticate(c) => Action::Authenticate(c),
            Step::Deliver(e) => Action::Deliver(e),
        }
    }
}

impl From<Pop3Step> for Action {
    fn from(step: Pop3Step) -> Action {
        match step {
            Pop3Step::Continue => Action::Continue,
            Pop3Step::Close => Action::Close,
            Pop3Step::StartTls => Action::StartTls,
            Pop3Step::Authenticate(c) => Action::Authenticate(c),
            Pop3Step::Send { index, top } => Action::Send { index, top },
            Pop3Step::Update { deleted, seen } => {
                Action::Update { deleted, seen }
            }
        }
    }
}

impl Session {
    /// Writes the greeting.
    pub fn greet(&mut self, out: &mut Vec<u8>) {
        match self {
            Session::Smtp(s) => s.greet(out),
            Session::Pop3(p) => p.greet(out),
        }
    }

    /// Feeds input; returns the octets used and what to do.
    pub fn feed(&mut self, input: &[u8], cx: &mut Cx<'_>) -> (usize, Action) {
        match self {
            Session::Smtp(s) => {
                let (n, step) = s.feed(input, cx);
                (n, step.into())
            }
            Session::Pop3(p) => {
                let (n, step) = p.feed(input, cx.out);
                (n, step.into())
            }
        }
    }

    /// The TLS handshake finished.
    pub fn tls_started(&mut self, info: TlsInfo) {
        match self {
            Session::Smtp(s) => s.tls_started(info),
            Session::Pop3(p) => p.tls_started(info),
        }
    }

    /// A login failed (answered after the delay).
    pub fn login_failed(&mut self, out: &mut Vec<u8>) {
        match self {
            Session::Smtp(s) => s.authenticated(None, out),
            Session::Pop3(p) => p.logged_in(Err(LoginError::Credentials), out),
        }
    }

    /// Too many failures from this address: say so; the loop closes.
    pub fn locked_out(&mut self, out: &mut Vec<u8>) {
        match self {
            Session::Smtp(s) => {
                s.locked_out(out);
            }
            Session::Pop3(p) => {
                p.locked_out(out);
            }
        }
    }

    /// True while the session has output to write once there is room.
    pub fn has_more_output(&self) -> bool {
        match self {
            Session::Smtp(_) => false,
            Session::Pop3(p) => p.has_more_output(),
        }
    }

    /// True if closing now loses nothing.
    pub fn is_idle(&self) -> bool {
        match self {
            Session::Smtp(s) => s.is_idle(),
            Session::Pop3(p) => p.is_idle(),
        }
    }

    /// The idle timer ran out: say so; the loop closes.
    pub fn timed_out(&mut self, out: &mut Vec<u8>) {
        match self {
            Session::Smtp(s) => {
                s.timed_out(out);
            }
            Session::Pop3(p) => {
                p.timed_out(out);
            }
        }
    }

    /// The server is stopping: say so; the loop closes.
    pub fn shutdown(&mut self, out: &mut Vec<u8>) {
        match self {
            Session::Smtp(s) => {
                s.shutdown(out);
            }
            Session::Pop3(p) => {
                p.shutdown(out);
            }
        }
    }
}
