//! The protocol a connection speaks, behind one face for the loop: each
//! protocol's session with the loop's own state for it (SMTP: the spool
//! and the message being stored; POP3: the maildrop and the message
//! being sent), and the actions either can ask for. A connection itself
//! (`conn.rs`) is only transport: socket, TLS, buffers, deadline.

use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use crate::deliver::Job;
use crate::proto::http::{Http, HttpStep};
use crate::proto::imap::request::Request;
use crate::proto::imap::{Imap, ImapStep};
use crate::proto::managesieve::{ManageSieve, ScriptOp, SieveStep};
use crate::proto::pop3::{LoginError, Pop3, Pop3Step};
use crate::proto::sasl::Credentials;
use crate::proto::smtp::{self, Cx, Envelope, Host, Link, Step, TlsInfo};
use crate::server::base::conn::{Backpressure, Conn};
use crate::server::base::services::{Service, Services};
use crate::server::pop3::transfer::Transfer;
use crate::server::smtp::spool::Spool;
use crate::store::maildrop::Snapshot;

/// A connection's session.
pub enum Session {
    /// SMTP or submission.
    Smtp(Box<SmtpConn>),
    /// POP3.
    Pop3(Box<Pop3Conn>),
    /// IMAP.
    Imap(Box<ImapConn>),
    /// ManageSieve.
    Sieve(Box<ManageSieve>),
    /// The web listener.
    Http(Box<Http>),
}

/// An IMAP session and what the loop keeps for it.
pub struct ImapConn {
    /// The protocol session.
    pub imap: Imap,
    /// Where an APPENDed message streams.
    pub spool: Spool,
    /// The folder this session watches in the registry (selected).
    pub watching: Option<PathBuf>,
    /// NOTIFY: other folders it watches for STATUS, with their names.
    pub status_watching: Vec<(PathBuf, String)>,
    /// CREATE, DELETE, RENAME or (UN)SUBSCRIBE under way: what to tell
    /// the user's other sessions when it succeeds.
    pub folder_event: Option<crate::proto::imap::session::FolderEvent>,
    /// An APPEND whose last spool piece is still being written.
    pub appending: Option<Request>,
    /// A user whose password was right, while the default folders are
    /// made.
    pub pending_login: Option<String>,
    /// A large literal being streamed.
    pub stream: Option<crate::server::imap::imap_stream::ImapStream>,
}

/// An SMTP session and what the loop keeps for it.
pub struct SmtpConn {
    /// The protocol session.
    pub smtp: smtp::Server,
    /// The message arriving.
    pub spool: Spool,
    /// A message whose last spool piece is still being written; it goes
    /// to the durability helpers once that is done.
    pub spooling: Option<Box<Envelope>>,
    /// The message being stored, while the connection is Delivering.
    pub in_flight: Option<InFlight>,
    /// SPF, DKIM, DMARC, ARC and iprev for its mail.
    pub checks: crate::server::smtp::check_state::ConnChecks,
}

/// A POP3 session and what the loop keeps for it.
pub struct Pop3Conn {
    /// The protocol session.
    pub pop3: Pop3,
    /// The snapshot taken at login.
    pub maildrop: Option<Arc<Snapshot>>,
    /// The message being sent.
    pub transfer: Option<Transfer>,
    /// The mailbox this session holds.
    pub mailbox: Option<String>,
}

/// Log details of the message being stored.
pub struct InFlight {
    /// Queue id.
    pub id: String,
    /// Summary for the log line.
    pub summary: String,
    /// The checks' results, logged after the outcome.
    pub checks: String,
    /// A mailbox was locked by another program: tries go on until then.
    pub locked_until: Option<Instant>,
    /// The job waiting for its next try at a locked mailbox.
    pub parked: Option<Job>,
    /// The mailboxes it goes to, to tell IMAP sessions once stored.
    pub mailboxes: Vec<PathBuf>,
    /// The queue files it makes (recipients in other domains, a
    /// forwarded copy): sent as soon as it is stored.
    pub queued: Vec<String>,
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
    /// IMAP mailbox work.
    Io(Request),
    /// ManageSieve script work.
    Script(ScriptOp),
    /// Run the outbound queue now (ETRN).
    FlushQueue,
    /// Answer `/metrics`, then close if asked.
    Metrics { close: bool },
    /// Answer XSTATUS with the figures.
    Status { json: bool },
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
            Step::FlushQueue => Action::FlushQueue,
            Step::Status { json } => Action::Status { json },
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

impl From<SieveStep> for Action {
    fn from(step: SieveStep) -> Action {
        match step {
            SieveStep::Continue => Action::Continue,
            SieveStep::Close => Action::Close,
            SieveStep::StartTls => Action::StartTls,
            SieveStep::Authenticate(c) => Action::Authenticate(c),
            SieveStep::Io(op) => Action::Script(op),
        }
    }
}

impl From<HttpStep> for Action {
    fn from(step: HttpStep) -> Action {
        match step {
            HttpStep::Continue => Action::Continue,
            HttpStep::Close => Action::Close,
            HttpStep::Metrics { close } => Action::Metrics { close },
        }
    }
}

impl From<ImapStep> for Action {
    fn from(step: ImapStep) -> Action {
        match step {
            ImapStep::Continue => Action::Continue,
            ImapStep::Close => Action::Close,
            ImapStep::StartTls => Action::StartTls,
            ImapStep::Authenticate(c) => Action::Authenticate(c),
            ImapStep::Io(r) => Action::Io(r),
        }
    }
}

impl Session {
    /// A new session for a connection on a `service` listener; SMTP
    /// ones take `spool` for their messages.
    pub fn open(
        services: &Services,
        service: Service,
        link: Link,
        spool: Spool,
    ) -> Session {
        let settings = match service {
            Service::Smtp | Service::Local => &services.smtp,
            Service::Submission | Service::Submissions => &services.submission,
            Service::Pop3 | Service::Pop3s => {
                let host = services.config.hostname.clone();
                let pop3 = Pop3::new(host, services.tls.is_some(), link);
                return Session::pop3(pop3);
            }
            Service::Imap | Service::Imaps => {
                let session = Imap::new(Rc::clone(&services.imap), link);
                return Session::imap(session, spool);
            }
            Service::ManageSieve => {
                let tls = services.tls.is_some();
                return Session::Sieve(Box::new(ManageSieve::new(link, tls)));
            }
            Service::Http | Service::Https => {
                let site = Rc::clone(&services.site);
                let metrics = services.config.web.metrics_allowed(link.peer);
                let https = service == Service::Https;
                return Session::Http(Box::new(Http::new(
                    site, https, metrics,
                )));
            }
        };
        let smtp = smtp::Server::new(Rc::clone(settings), link);
        Session::smtp(smtp, spool)
    }

    /// An IMAP session on a new connection.
    pub fn imap(imap: Imap, spool: Spool) -> Session {
        Session::Imap(Box::new(ImapConn {
            imap,
            spool,
            watching: None,
            appending: None,
            status_watching: Vec::new(),
            folder_event: None,
            pending_login: None,
            stream: None,
        }))
    }

    /// An SMTP session on a new connection.
    pub fn smtp(smtp: smtp::Server, spool: Spool) -> Session {
        Session::Smtp(Box::new(SmtpConn {
            smtp,
            spool,
            spooling: None,
            in_flight: None,
            checks: Default::default(),
        }))
    }

    /// A POP3 session on a new connection.
    pub fn pop3(pop3: Pop3) -> Session {
        Session::Pop3(Box::new(Pop3Conn {
            pop3,
            maildrop: None,
            transfer: None,
            mailbox: None,
        }))
    }

    /// The client a trusted front end said it logs in for, if any.
    pub fn forwarded(&self) -> Option<std::net::IpAddr> {
        match self {
            Session::Smtp(s) => s.smtp.forwarded(),
            Session::Pop3(p) => p.pop3.forwarded(),
            Session::Imap(i) => i.imap.forwarded(),
            Session::Sieve(s) => s.forwarded(),
            Session::Http(_) => None,
        }
    }

    /// Writes the greeting.
    pub fn greet(&mut self, out: &mut Vec<u8>) {
        match self {
            Session::Smtp(s) => s.smtp.greet(out),
            Session::Pop3(p) => p.pop3.greet(out),
            Session::Imap(i) => i.imap.greet(out),
            Session::Sieve(s) => s.greet(out),
            // The client speaks first.
            Session::Http(_) => {}
        }
    }

    /// Feeds input; returns the octets used and what to do.
    pub fn feed(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        host: &mut dyn Host,
    ) -> (usize, Action) {
        match self {
            Session::Smtp(s) => {
                let mut cx = Cx {
                    out,
                    host,
                    sink: &mut s.spool,
                };
                let (n, step) = s.smtp.feed(input, &mut cx);
                (n, step.into())
            }
            Session::Pop3(p) => {
                let (n, step) = p.pop3.feed(input, out);
                (n, step.into())
            }
            Session::Imap(i) => {
                let (n, step) = i.imap.feed(input, out, &mut i.spool);
                (n, step.into())
            }
            Session::Sieve(s) => {
                let (n, step) = s.feed(input, out);
                (n, step.into())
            }
            Session::Http(h) => {
                h.set_date(http_date());
                let (n, step) = h.feed(input, out);
                (n, step.into())
            }
        }
    }

    /// The SMTP side, if this is SMTP.
    pub fn as_smtp(&mut self) -> Option<&mut SmtpConn> {
        match self {
            Session::Smtp(s) => Some(s),
            _ => None,
        }
    }

    /// The IMAP side, if this is IMAP.
    pub fn as_imap(&mut self) -> Option<&mut ImapConn> {
        match self {
            Session::Imap(i) => Some(i),
            _ => None,
        }
    }

    /// The ManageSieve side, if this is ManageSieve.
    pub fn as_sieve(&mut self) -> Option<&mut ManageSieve> {
        match self {
            Session::Sieve(s) => Some(s),
            _ => None,
        }
    }

    /// The POP3 side, if this is POP3.
    pub fn as_pop3(&mut self) -> Option<&mut Pop3Conn> {
        match self {
            Session::Pop3(p) => Some(p),
            _ => None,
        }
    }

    /// The TLS handshake finished.
    pub fn tls_started(&mut self, info: TlsInfo, out: &mut Vec<u8>) {
        match self {
            Session::Smtp(s) => s.smtp.tls_started(info),
            Session::Pop3(p) => p.pop3.tls_started(info),
            Session::Imap(i) => i.imap.tls_started(info),
            Session::Sieve(s) => s.tls_started(info, out),
            Session::Http(_) => {}
        }
    }

    /// A login failed (answered after the delay).
    pub fn login_failed(&mut self, out: &mut Vec<u8>) {
        match self {
            Session::Smtp(s) => s.smtp.authenticated(None, out),
            Session::Pop3(p) => {
                p.pop3.logged_in(Err(LoginError::Credentials), out)
            }
            Session::Imap(i) => i.imap.logged_in(None, out),
            Session::Sieve(s) => s.logged_in(None, out),
            Session::Http(_) => {}
        }
    }

    /// Too many failures from this address: say so; the loop closes.
    pub fn locked_out(&mut self, out: &mut Vec<u8>) {
        match self {
            Session::Smtp(s) => {
                s.smtp.locked_out(out);
            }
            Session::Pop3(p) => {
                p.pop3.locked_out(out);
            }
            Session::Imap(i) => {
                i.imap.locked_out(out);
            }
            Session::Sieve(s) => s.locked_out(out),
            Session::Http(_) => {}
        }
    }

    /// True while the session has output to write once there is room.
    pub fn has_more_output(&self) -> bool {
        match self {
            Session::Smtp(_) => false,
            Session::Pop3(p) => p.pop3.has_more_output(),
            Session::Imap(i) => i.imap.has_more_output(),
            Session::Sieve(_) | Session::Http(_) => false,
        }
    }

    /// True if closing now loses nothing.
    pub fn is_idle(&self) -> bool {
        match self {
            Session::Smtp(s) => s.smtp.is_idle(),
            Session::Pop3(p) => p.pop3.is_idle(),
            Session::Imap(i) => i.imap.is_idle(),
            Session::Sieve(s) => s.is_idle(),
            Session::Http(h) => h.is_idle(),
        }
    }

    /// The idle timer ran out: say so; the loop closes.
    pub fn timed_out(&mut self, out: &mut Vec<u8>) {
        match self {
            Session::Smtp(s) => {
                s.smtp.timed_out(out);
            }
            Session::Pop3(p) => {
                p.pop3.timed_out(out);
            }
            Session::Imap(i) => {
                i.imap.timed_out(out);
            }
            Session::Sieve(s) => s.timed_out(out),
            Session::Http(h) => {
                h.set_date(http_date());
                h.timed_out(out)
            }
        }
    }

    /// The server is stopping: say so; the loop closes.
    pub fn shutdown(&mut self, out: &mut Vec<u8>) {
        match self {
            Session::Smtp(s) => {
                s.smtp.shutdown(out);
            }
            Session::Pop3(p) => {
                p.pop3.shutdown(out);
            }
            Session::Imap(i) => {
                i.imap.shutdown(out);
            }
            Session::Sieve(s) => s.shutdown(out),
            Session::Http(h) => {
                h.set_date(http_date());
                h.shutdown(out)
            }
        }
    }
}

/// Now, for an HTTP response's Date field.
fn http_date() -> String {
    crate::util::date::http(std::time::SystemTime::now())
}

impl Backpressure for Session {
    /// True while reading must wait for the disk (a full spool piece
    /// still being written).
    fn congested(&self) -> bool {
        match self {
            Session::Smtp(s) => s.spool.congested() || s.smtp.rcpt_waits(),
            Session::Pop3(_) => false,
            Session::Imap(i) => i.spool.congested(),
            // One command at a time: the next waits in the socket.
            Session::Sieve(s) => !s.is_idle(),
            Session::Http(_) => false,
        }
    }
}

/// A client connection as the loop holds it: the transport carrying its
/// session.
pub type Client = Conn<Session>;
