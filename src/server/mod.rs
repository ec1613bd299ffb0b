//! The event loop: one `mio::Poll` on one thread owns every socket, timer
//! and signal. Sessions are fed bytes and say what to do; messages go to
//! the durability helpers ([`writer`]) and come back as a waker event.
//!
//! The only module that uses mio, sockets or `Instant::now()`.

mod base;
mod figures;
mod figures_text;
mod imap;
mod logins;
mod managesieve;
mod outbound;
mod pop3;
mod report;
mod session;
mod smtp;

pub use base::tls;

use base::writer;
use base::{accept, conn, privilege, proxy, readers, services, timer};
use logins::checkers;
use outbound::{dns, queue_work};

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, error, info, warn};
use mio::{Events, Interest, Poll, Token, Waker};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;

use crate::acme;
use crate::config::{Config, Directory};
use crate::proto::OUTPUT_CAP;
use crate::store::cleanup;
use crate::util::contain::guarded;
use accept::{Listener, bind_all};
use base::stats::Event;
use checkers::Logins;
use conn::{Conn, Input, Phase, WBUF_CAP};
use readers::Readers;
use services::{Group, Services};
use session::{Action, Client, Session};
use timer::{Timer, Timers};
use writer::Writer;

const WAKER: Token = Token(0);
const SIGNALS: Token = Token(1);
/// The local submission socket (below the DNS tokens).
const LOCAL: Token = Token(dns::DNS_BASE - 1);
/// Listener i has token LISTENER_BASE + i; a connection waiting for its
/// PROXY header PROXY_BASE + i; connection slot s has CONN_BASE + s.
const LISTENER_BASE: usize = 2;
const PROXY_BASE: usize = 1 << 15;
const CONN_BASE: usize = 1 << 16;
/// Octets read per read call; one buffer for all connections.
const SCRATCH: usize = 16 * 1024;
/// How often a delivery tries a mailbox locked by another program, and
/// for how long in all (then 452, and the sender tries later).
const LOCK_RETRY: Duration = Duration::from_millis(100);
const LOCK_WAIT: Duration = crate::store::lock::LOCK_WAIT;
/// How long transactions in flight may take to finish at SIGTERM.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// Durability helper threads: several fsyncs in flight at once let the
/// file system merge them into one journal commit.
const WRITERS: usize = 4;
/// Reader helper threads: message octets for POP3 come off the disk
/// here; two let one slow read leave the other sessions going.
const READERS: usize = 2;
/// How often open IMAP folders are checked for changes made by other
/// programs.
const FOLDER_CHECK: Duration = Duration::from_secs(2);
/// Password helper threads: two keep one slow hash from holding up
/// every other login, without letting a flood of logins take every core.
const LOGIN_CHECKERS: usize = 2;
/// A failed login is answered this long after it was sent, however long
/// the hash took, so timing tells nothing (Dovecot waits 2 s as well).
const AUTH_FAILURE_DELAY: Duration = Duration::from_secs(2);

/// Runs the server until SIGTERM or SIGINT. Binds the ports and reads
/// the key first, then drops to `run_as`, then starts the helpers.
pub fn serve(config: Config, directory: Directory) -> io::Result<()> {
    let invalid = |e: String| io::Error::new(io::ErrorKind::InvalidInput, e);
    let account =
        privilege::plan(config.run_as.as_deref()).map_err(invalid)?;
    // Before the "listening" lines: a SIGTERM from then on is handled.
    let signals = Signals::new([SIGTERM, SIGINT, SIGHUP])?;
    // Read as root, before any port is open: a bad file stops the start.
    let login = match &config.outbound.smarthost_auth_file {
        Some(path) => {
            Some(crate::config::outbound::read_login(path).map_err(invalid)?)
        }
        None => None,
    };
    let mut services = Services::new(config, directory).map_err(invalid)?;
    let cfg = &services.config;
    if let Some(account) = &account {
        privilege::prepare_data_dir(&cfg.data_dir, account)?;
    }
    // The local socket first: once the "listening" lines are out, every
    // way in is open (scripts and tests wait for those lines).
    let local = accept::bind_local(cfg)?;
    let listeners = bind_all(cfg)?;
    if let Some(account) = &account {
        privilege::become_user(account)?;
        info!("running as {} (uid {})", account.name, account.uid);
    }
    let removed =
        cleanup::prepare(&cfg.data_dir, &cfg.spool_dir()).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("{}: {e}", cfg.data_dir.display()),
            )
        })?;
    if removed > 0 {
        info!("removed {removed} stale temporary files");
    }
    services.srs_secret = outbound::srs_secret(&services.config.data_dir)?;
    services.greylist =
        smtp::greylist::open(&services.config, &services.srs_secret);
    let mut server = Server::new(services, listeners, signals, local, login)?;
    server.run();
    server.save_indexes();
    server.save_greylist_now();
    server.save_passed_now();
    server.outbound.stop();
    server.core.writer.stop();
    server.logins.stop();
    server.core.readers.stop();
    server.imap.stop();
    // The spool helpers end when the server (the last owner) is dropped.
    info!("stopped");
    Ok(())
}

/// The loop and its state, one field per service beside the core: a
/// new service adds a field and a folder. A service's methods (`impl
/// Server` in its folder) reach another's state only by naming it.
struct Server {
    /// Sockets, connections, timers and the helpers every service uses.
    core: Core,
    /// What sessions ask of the host (configuration, TLS, the limiter).
    services: Services,
    /// The password checkers, for every service's logins.
    logins: Logins,
    smtp: smtp::SmtpState,
    pop3: pop3::Pop3State,
    imap: imap::ImapState,
    /// Mail being sent out, and the resolver it waits on.
    outbound: outbound::Outbound,
    /// Daily reports under way.
    reports: report::Reports,
    /// Certificates from an ACME CA, if `acme = on`.
    acme: Option<crate::acme::Acme>,
}

impl Core {
    /// The connection in `slot`, if one is there.
    fn conn(&self, slot: usize) -> Option<&Client> {
        self.conns.get(slot)?.as_ref()
    }

    /// The connection in `slot`, if one is there, to change. (It borrows
    /// all of `core`: where the readers or writers are used while the
    /// connection is held, `conns` is indexed directly.)
    fn conn_mut(&mut self, slot: usize) -> Option<&mut Client> {
        self.conns.get_mut(slot)?.as_mut()
    }
}

/// The loop's own state: what every service's connections share.
struct Core {
    poll: Poll,
    listeners: Vec<Listener>,
    conns: Vec<Option<Client>>,
    free: Vec<usize>,
    /// Connections by service group and client (IPv6: its prefix).
    per_ip: HashMap<(Group, IpAddr), usize>,
    /// Connections by service group.
    per_group: [usize; Group::COUNT],
    /// Connections, all groups together.
    open: usize,
    timers: Timers,
    /// Connections on proxy: listeners before their PROXY header.
    waiting: Vec<Option<proxy::Waiting>>,
    signals: Signals,
    /// One read buffer for all connections.
    scratch: Box<[u8]>,
    next_id: u64,
    /// Stopping since then: no new connections or messages.
    draining: Option<Instant>,
    /// The local submission socket.
    local: Option<mio::net::UnixListener>,
    /// Reader helpers: message octets off the disk (POP3, IMAP, outbound).
    readers: Readers,
    /// Durability helpers: mail written into mailboxes and flushed.
    writer: Writer,
}

/// What the ACME helper needs of the config.
fn acme_settings(cfg: &Config) -> acme::Settings {
    acme::Settings {
        directory: cfg.acme.directory.clone(),
        email: cfg.acme.email.clone(),
        ca_file: cfg.acme.ca_file.clone(),
        names: cfg.acme_names(),
        dir: cfg.data_dir.join("acme"),
        webroot: cfg.acme.webroot.clone(),
    }
}

impl Server {
    fn new(
        mut services: Services,
        mut listeners: Vec<Listener>,
        mut signals: Signals,
        mut local: mio::net::UnixListener,
        login: Option<(String, String)>,
    ) -> io::Result<Server> {
        let poll = Poll::new()?;
        let services_resolvers = services.config.resolvers();
        let policy = services.config.outbound.clone();
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let bound = |service| {
            let l = listeners.iter().find(|l| l.service == service)?;
            l.socket.local_addr().ok().map(|a| a.port())
        };
        let tls = services.tls.is_some();
        let acme_helper = match services.config.acme.on {
            true => Some(acme::start(
                acme_settings(&services.config),
                Arc::clone(&waker),
            )?),
            false => None,
        };
        let mut site = services::site(&services.config, tls, &bound);
        site.challenges =
            acme_helper.as_ref().map(|a| Arc::clone(&a.challenges));
        services.site = Rc::new(site);
        poll.registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)?;
        poll.registry()
            .register(&mut local, LOCAL, Interest::READABLE)?;
        for (i, l) in listeners.iter_mut().enumerate() {
            poll.registry().register(
                &mut l.socket,
                Token(LISTENER_BASE + i),
                Interest::READABLE,
            )?;
        }
        Ok(Server {
            core: Core {
                poll,
                listeners,
                conns: Vec::new(),
                free: Vec::new(),
                per_ip: HashMap::new(),
                per_group: [0; Group::COUNT],
                open: 0,
                timers: Timers::default(),
                waiting: Vec::new(),
                signals,
                scratch: vec![0; SCRATCH].into_boxed_slice(),
                next_id: 0,
                draining: None,
                local: Some(local),
                readers: readers::start(READERS, Arc::clone(&waker))?,
                writer: writer::start(WRITERS, Arc::clone(&waker))?,
            },
            logins: checkers::start(LOGIN_CHECKERS, Arc::clone(&waker))?,
            smtp: smtp::SmtpState::start(
                &services.config,
                Arc::clone(&waker),
            )?,
            pop3: pop3::Pop3State::default(),
            imap: imap::ImapState::start(Arc::clone(&waker))?,
            outbound: outbound::Outbound::new(
                policy,
                login,
                queue_work::start(Arc::clone(&waker))?,
                dns::Dns::new(services_resolvers),
            ),
            reports: report::Reports::new(Arc::clone(&waker)),
            acme: acme_helper,
            services,
        })
    }

    fn run(&mut self) {
        let mut events = Events::with_capacity(256);
        self.core.timers.add(
            Instant::now() + FOLDER_CHECK,
            Timer::FolderCheck,
            base::timer::NOBODY,
        );
        self.queue_run_due();
        self.check_blocklists();
        self.expire_junk();
        self.schedule_report();
        loop {
            let now = Instant::now();
            if let Some(until) = self.core.draining
                && ((self.core.open == 0 && self.outbound_settled())
                    || now >= until)
            {
                return;
            }
            let mut timeout = self.core.timers.next_timeout(now);
            if let Some(until) = self.core.draining {
                let left = until.saturating_duration_since(now);
                timeout = Some(timeout.map_or(left, |t| t.min(left)));
            }
            if let Err(e) = self.core.poll.poll(&mut events, timeout)
                && e.kind() != io::ErrorKind::Interrupted
            {
                error!("poll: {e}");
                return;
            }
            for event in events.iter() {
                match event.token() {
                    WAKER => {
                        self.finish_spool_writes();
                        self.finish_deliveries();
                        self.finish_checks();
                        self.finish_milters();
                        self.finish_logins();
                        self.finish_reads();
                        self.finish_mailbox_work();
                        self.finish_queue_work();
                        self.finish_reports();
                        self.finish_acme();
                    }
                    SIGNALS => self.on_signals(),
                    LOCAL => self.accept_local(),
                    Token(t) if t >= CONN_BASE => {
                        self.on_conn_event(t - CONN_BASE, event)
                    }
                    Token(t) if t >= PROXY_BASE => {
                        self.on_waiting(t - PROXY_BASE)
                    }
                    Token(t) if t >= dns::DNS_BASE => {
                        self.on_dns_event(t - dns::DNS_BASE)
                    }
                    Token(t) if t >= outbound::OUT_BASE => {
                        self.on_peer_event(t - outbound::OUT_BASE, event)
                    }
                    Token(t) => self.accept(t - LISTENER_BASE),
                }
            }
            self.fire_timers();
        }
    }

    /// ACME put a new certificate in place: every TLS listener takes it
    /// for new connections; open ones keep theirs.
    fn finish_acme(&mut self) {
        let renewed = self
            .acme
            .as_ref()
            .is_some_and(|a| a.renewed.try_iter().count() > 0);
        if renewed {
            self.services.reload_tls();
        }
    }

    fn on_conn_event(&mut self, slot: usize, event: &mio::event::Event) {
        let Some(conn) = self.core.conn_mut(slot) else {
            return;
        };
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            conn.read_pending = true;
        }
        self.drive(slot);
        self.drain_if_idle(slot);
    }

    /// Reads, feeds and writes until the connection has nothing to do.
    fn drive(&mut self, slot: usize) {
        loop {
            self.read_and_feed(slot);
            self.flush(slot);
            let Some(conn) = self.core.conn_mut(slot) else {
                return;
            };
            // A session that stopped at the output cap goes on with the
            // input it kept once the client has taken some output.
            if conn.stalled && conn.phase == Phase::Open && !conn.has_output()
            {
                self.feed(slot, 0);
                continue;
            }
            // Finishing a RETR in flush reopens reading; input that was
            // already waiting brings no new edge, so go round again.
            if !conn.can_read() {
                return;
            }
        }
    }

    fn read_and_feed(&mut self, slot: usize) {
        loop {
            let Some(conn) =
                self.core.conns.get_mut(slot).and_then(Option::as_mut)
            else {
                return;
            };
            if !conn.can_read() {
                return;
            }
            match conn.read(&mut self.core.scratch) {
                Input::Data(n) => {
                    // An HTTP request has its time from its first octet
                    // on: a trickle does not keep it open.
                    if conn.service.group() != Group::Http
                        || conn.session.is_idle()
                    {
                        conn.deadline = Instant::now() + conn.idle;
                    }
                    self.feed(slot, n);
                }
                Input::Handshaked => {
                    if let Some(t) = conn.tls.as_deref() {
                        let info = tls::describe(t);
                        if t.server_name().is_none() {
                            debug!(
                                "conn={} tls ip={} no host name in the \
                                 client's SNI (none, or an IP address)",
                                conn.id, conn.peer
                            );
                        }
                        info!(
                            "conn={} tls ip={} version={} cipher={}",
                            conn.id, conn.peer, info.version, info.cipher
                        );
                        conn.session.tls_started(info, &mut conn.wbuf);
                    }
                }
                Input::Drained => return,
                Input::Gone => return self.close(slot, "client closed"),
                Input::TlsFailed => {
                    let now = Instant::now();
                    self.services.stats.add(Event::TlsFailed, 1, now);
                    return self.close(slot, "TLS failed");
                }
            }
        }
    }

    /// Feeds the connection's saved input plus `n` new octets of scratch
    /// into its session and acts on the step it returns.
    fn feed(&mut self, slot: usize, n: usize) {
        let Some(conn) =
            self.core.conns.get_mut(slot).and_then(Option::as_mut)
        else {
            return;
        };
        let joined;
        let input: &[u8] = if conn.rbuf.is_empty() {
            &self.core.scratch[..n]
        } else {
            conn.rbuf.extend_from_slice(&self.core.scratch[..n]);
            joined = std::mem::take(&mut conn.rbuf);
            &joined
        };
        // Refused SRS addresses are counted for this feed alone (a
        // notice routed meanwhile must not charge the next client).
        self.services.srs_refused = 0;
        let what = SessionName::of(conn);
        let fed = guarded(
            || what.to_string(),
            || conn.session.feed(input, &mut conn.wbuf, &mut self.services),
        );
        let Some((used, step)) = fed else {
            return self.session_failed(slot);
        };
        conn.keep_input(&input[used..]);
        conn.stalled = conn.wbuf.len() >= OUTPUT_CAP
            && (used < input.len() || conn.session.has_more_output());
        if self.services.srs_refused > 0 && self.srs_guessing(slot) {
            return;
        }
        let Some(conn) = self.core.conn_mut(slot) else {
            return;
        };
        // A NOOP or IDLE may have claimed new messages as \Recent.
        let watching = conn.session.as_imap().and_then(|i| i.watching.clone());
        self.watch_transaction(slot);
        self.ask_sender_lists(slot);
        self.watch_screen(slot);
        self.act(slot, step);
        if let Some(dir) = watching {
            self.settle_recent(&dir);
        }
    }

    /// A session's own code panicked (contained and logged): its
    /// connection alone ends, with a last word in its protocol, through
    /// the usual close, so every count and registry entry it had is
    /// undone as for any close. What the session held is dropped.
    fn session_failed(&mut self, slot: usize) {
        let Some(conn) = self.core.conn_mut(slot) else {
            return;
        };
        conn.wbuf.clear();
        let host = &self.services.config.hostname;
        let last = match conn.service.group() {
            Group::Imap => {
                "* BYE [SERVERBUG] internal error, closing\r\n".to_string()
            }
            Group::Pop3 => "-ERR [SYS/TEMP] internal error\r\n".into(),
            _ => format!("421 4.3.0 {host} internal error, closing\r\n"),
        };
        conn.wbuf.extend_from_slice(last.as_bytes());
        conn.phase = Phase::Closing;
        self.flush(slot);
        if let Some(conn) = self.core.conn(slot)
            && conn.phase == Phase::Closing
        {
            self.close(slot, "internal error");
        }
    }

    /// Does what a session asked.
    fn act(&mut self, slot: usize, step: Action) {
        let Some(conn) = self.core.conn_mut(slot) else {
            return;
        };
        match step {
            Action::Continue => {}
            Action::Close => conn.phase = Phase::Closing,
            Action::Deliver(envelope) => self.submit(slot, *envelope),
            Action::StartTls => self.start_tls(slot),
            Action::Authenticate(credentials) => {
                self.check_login(slot, credentials)
            }
            Action::Send { index, top } => self.start_send(slot, index, top),
            Action::Update { deleted, seen } => {
                self.start_update(slot, deleted, seen)
            }
            Action::Io(request) => self.imap_request(slot, request),
            Action::Script(op) => self.script_work(slot, op),
            Action::Metrics { close } => {
                self.want_figures(slot, figures::How::Metrics { close })
            }
            Action::Status { json } => {
                self.want_figures(slot, figures::How::Status { json })
            }
            Action::FlushQueue => {
                // Commands pipelined behind ETRN wait in rbuf.
                let pipelined = !conn.rbuf.is_empty();
                self.queue_flush();
                if pipelined {
                    self.feed(slot, 0);
                }
            }
        }
    }

    /// STARTTLS was accepted: send the 220 in the clear, drop anything
    /// the client pipelined behind the command (CVE-2011-0411), and
    /// speak TLS from the next octet on.
    fn start_tls(&mut self, slot: usize) {
        let Some(conn) = self.core.conn_mut(slot) else {
            return;
        };
        if !conn.rbuf.is_empty() {
            warn!(
                "conn={} ip={} discarded {} octets pipelined after STARTTLS",
                conn.id,
                conn.peer,
                conn.rbuf.len()
            );
        }
        conn.keep_input(&[]);
        let Some(config) = self.services.tls.clone() else {
            return self.close(slot, "STARTTLS without TLS config");
        };
        if conn.flush().is_err() || !conn.wbuf.is_empty() {
            return self.close(slot, "could not send 220 before TLS");
        }
        match tls::session(&config) {
            Ok(t) => {
                conn.tls = Some(t);
                conn.tls_announced = false;
            }
            Err(e) => {
                error!("TLS setup: {e}");
                self.close(slot, "TLS setup failed");
            }
        }
    }

    /// The connection in `slot`, if it is still the one `generation`
    /// named (slots are reused).
    fn live_conn(
        &mut self,
        slot: usize,
        generation: u64,
    ) -> Option<&mut Client> {
        self.core
            .conn_mut(slot)
            .filter(|c| c.generation == generation)
    }

    /// Goes on after work of ours: commands pipelined behind it waited
    /// in rbuf.
    fn resume(&mut self, slot: usize) {
        self.feed(slot, 0);
        self.drain_if_idle(slot);
        self.drive(slot);
    }

    fn flush(&mut self, slot: usize) {
        loop {
            let Some(conn) = self.core.conn_mut(slot) else {
                return;
            };
            // A POP3 message streams in as the socket takes it; filling
            // before writing puts the +OK line in the same segment.
            let room = conn.wbuf.len() < WBUF_CAP / 2;
            let sending =
                conn.session.as_pop3().is_some_and(|p| p.transfer.is_some());
            if sending && room && self.pump(slot) {
                // Commands pipelined behind RETR waited in rbuf.
                self.feed(slot, 0);
            }
            self.pump_stream(slot);
            let Some(conn) = self.core.conn_mut(slot) else {
                return;
            };
            match conn.flush() {
                Err(_) => return self.close(slot, "write failed"),
                // A client taking our output is not idle (a long RETR).
                Ok(n) if n > 0 => conn.deadline = Instant::now() + conn.idle,
                Ok(_) => {}
            }
            let streaming = conn
                .session
                .as_imap()
                .and_then(|i| i.stream.as_ref())
                .map(|s| s.is_reading());
            let waiting = match streaming {
                Some(reading) => reading,
                None => conn
                    .session
                    .as_pop3()
                    .and_then(|p| p.transfer.as_ref())
                    .is_none_or(|t| t.is_reading()),
            };
            if waiting || conn.has_output() {
                break;
            }
        }
        let Some(conn) =
            self.core.conns.get_mut(slot).and_then(Option::as_mut)
        else {
            return;
        };
        // Closing waits for TLS records too (the last reply, close_notify).
        if conn.phase == Phase::Closing && !conn.has_output() {
            return self.close(slot, "done");
        }
        let want_write = conn.has_output();
        if want_write != conn.want_write {
            conn.want_write = want_write;
            let interest = if want_write {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            let token = Token(CONN_BASE + slot);
            let r = self.core.poll.registry().reregister(
                &mut conn.stream,
                token,
                interest,
            );
            if r.is_err() {
                self.close(slot, "reregister failed");
            }
        }
    }

    fn close(&mut self, slot: usize, why: &str) {
        let Some(mut conn) =
            self.core.conns.get_mut(slot).and_then(Option::take)
        else {
            return;
        };
        let _ = self.core.poll.registry().deregister(&mut conn.stream);
        let key = (conn.service.group(), conn.client);
        if let Some(count) = self.core.per_ip.get_mut(&key) {
            *count -= 1;
            if *count == 0 {
                self.core.per_ip.remove(&key);
            }
        }
        self.core.per_group[key.0.index()] -= 1;
        self.core.open -= 1;
        self.core.free.push(slot);
        match &mut conn.session {
            Session::Pop3(p) => {
                pop3::release(&self.core.readers, p.transfer.take());
                if let Some(user) = p.mailbox.take() {
                    if conn.phase == Phase::Delivering {
                        // Its UPDATE is still running: hold the mailbox
                        // until it is done.
                        let key = (slot, conn.generation);
                        self.pop3.hold_until_updated(key, user);
                    } else {
                        self.services.pop3_locks.remove(&user);
                    }
                }
            }
            Session::Imap(i) => {
                let key = (slot, conn.generation);
                let watching = i.watching.take();
                let notified = std::mem::take(&mut i.status_watching);
                self.imap_closed(key, watching, notified);
            }
            Session::Smtp(s) => {
                if let Some(flight) = &s.in_flight {
                    warn!(
                        "conn={} id={} client left while storing",
                        conn.id, flight.id
                    );
                }
            }
            Session::Sieve(_) | Session::Http(_) => {}
        }
        info!("conn={} disconnect ip={} ({why})", conn.id, conn.peer);
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        while let Some((kind, key)) = self.core.timers.pop_due(now) {
            match kind {
                Timer::Idle => self.idle_due(key, now),
                Timer::LoginFailure => self.answer_failure(key, now),
                Timer::LockRetry => self.retry_locked(key),
                Timer::ProxyHeader => self.expire_waiting(key.0, now),
                Timer::Dns => self.dns_due(),
                Timer::QueueRun => self.queue_run_due(),
                Timer::Peer => self.peer_due(key),
                Timer::Checks => self.checks_due(key),
                Timer::Blocklists => self.check_blocklists(),
                Timer::Greeting => self.greeting_due(key),
                Timer::JunkExpire => self.expire_junk(),
                Timer::DailyReport => self.report_due(),
                Timer::FolderCheck => {
                    self.retry_notices();
                    self.check_folders();
                    self.save_indexes();
                    self.save_greylist();
                    self.save_passed();
                    self.core.timers.add(
                        now + FOLDER_CHECK,
                        Timer::FolderCheck,
                        key,
                    );
                }
            }
        }
    }

    /// A connection's idle deadline came: if it really has been idle,
    /// say so and close (or wait on, for work of ours under way).
    fn idle_due(&mut self, (slot, generation): (usize, u64), now: Instant) {
        let Some(conn) =
            self.core.conns.get_mut(slot).and_then(Option::as_mut)
        else {
            return;
        };
        if conn.generation != generation {
            return;
        }
        let key = (slot, generation);
        let timeout = conn.idle;
        if conn.deadline > now {
            self.core.timers.add(conn.deadline, Timer::Idle, key);
            return;
        }
        match conn.phase {
            Phase::Sending => self.close(slot, "client stopped reading"),
            Phase::Delivering | Phase::Authenticating => {
                conn.deadline = now + timeout;
                self.core.timers.add(conn.deadline, Timer::Idle, key);
            }
            Phase::Closing => self.close(slot, "timeout while closing"),
            // An IMAP client in IDLE is waiting for us, not idle (RFC
            // 9051 5.4): a line now and then keeps it and its NAT alive,
            // and a dead peer shows up as a failed write.
            Phase::Open if matches!(&conn.session, Session::Imap(i) if i.imap.is_idling()) =>
            {
                conn.wbuf.extend_from_slice(b"* OK Still here\r\n");
                conn.deadline = now + timeout;
                self.core.timers.add(conn.deadline, Timer::Idle, key);
                self.flush(slot);
            }
            Phase::Open => {
                info!("conn={} timeout ip={}", conn.id, conn.peer);
                conn.session.timed_out(&mut conn.wbuf);
                conn.phase = Phase::Closing;
                // One more period to deliver the 421, then drop.
                conn.deadline = now + timeout;
                self.core.timers.add(conn.deadline, Timer::Idle, key);
                self.flush(slot);
            }
        }
    }

    fn on_signals(&mut self) {
        let pending: Vec<i32> = self.core.signals.pending().collect();
        for signal in pending {
            match signal {
                SIGHUP => self.services.reload(),
                _ => self.start_draining(),
            }
        }
    }

    fn start_draining(&mut self) {
        if self.core.draining.is_some() {
            return;
        }
        info!("stopping: no new connections, {} open", self.core.open);
        for mut l in self.core.listeners.drain(..) {
            let _ = self.core.poll.registry().deregister(&mut l.socket);
        }
        self.core.draining = Some(Instant::now() + SHUTDOWN_GRACE);
        for slot in 0..self.core.conns.len() {
            self.drain_if_idle(slot);
        }
        self.outbound_drain();
    }

    /// While stopping, a connection between transactions is told so and
    /// closed; one inside a transaction is left to finish it.
    fn drain_if_idle(&mut self, slot: usize) {
        if self.core.draining.is_none() {
            return;
        }
        let Some(conn) = self.core.conn_mut(slot) else {
            return;
        };
        if conn.phase == Phase::Open && conn.session.is_idle() {
            conn.session.shutdown(&mut conn.wbuf);
            conn.phase = Phase::Closing;
            self.flush(slot);
        }
    }
}

/// A connection's session as an error line names it; copied out cheaply
/// on every feed, formatted only if the session fails.
#[derive(Clone, Copy)]
pub(crate) struct SessionName {
    id: u64,
    peer: IpAddr,
    service: services::Service,
}

impl SessionName {
    pub(crate) fn of<S>(conn: &Conn<S>) -> SessionName {
        SessionName {
            id: conn.id,
            peer: conn.peer,
            service: conn.service,
        }
    }
}

impl std::fmt::Display for SessionName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (id, peer, service) = (self.id, self.peer, self.service.name());
        write!(f, "conn={id} ip={peer} service={service}: session")
    }
}
