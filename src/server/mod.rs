//! The event loop: one `mio::Poll` on one thread owns every socket, timer
//! and signal. Sessions are fed bytes and say what to do; messages go to
//! the durability helpers ([`writer`]) and come back as a waker event.
//!
//! The only module that uses mio, sockets or `Instant::now()`.

pub mod conn;
pub mod listen;
pub mod services;
pub mod timer;
pub mod writer;

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use log::{error, info, warn};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;

use crate::config::{Config, Directory};
use crate::deliver::{self, Job};
use crate::proto::smtp::{self, Envelope, server::Cx};
use conn::{Conn, InFlight, Input, Phase};
use services::Services;
use timer::Timers;
use writer::{Done, Writer};

const WAKER: Token = Token(0);
const SIGNALS: Token = Token(1);
/// Listener i has token LISTENER_BASE + i; connection slot s has
/// CONN_BASE + s.
const LISTENER_BASE: usize = 2;
const CONN_BASE: usize = 1 << 16;
/// Octets read per read call; one buffer for all connections.
const SCRATCH: usize = 16 * 1024;
/// How long transactions in flight may take to finish at SIGTERM.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// Durability helper threads: several fsyncs in flight at once let the
/// file system merge them into one journal commit.
const WRITERS: usize = 4;

/// Runs the server until SIGTERM or SIGINT.
pub fn serve(config: Config, directory: Directory) -> io::Result<()> {
    let mut server = Server::new(config, directory)?;
    server.run();
    server.writer.stop();
    info!("stopped");
    Ok(())
}

struct Server {
    poll: Poll,
    listeners: Vec<(TcpListener, SocketAddr)>,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    per_ip: HashMap<IpAddr, usize>,
    open: usize,
    timers: Timers,
    services: Services,
    writer: Writer,
    signals: Signals,
    scratch: Box<[u8]>,
    next_id: u64,
    draining: Option<Instant>,
}

impl Server {
    fn new(config: Config, directory: Directory) -> io::Result<Server> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP])?;
        poll.registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)?;
        let mut listeners = Vec::new();
        for (i, addr) in config.listen_smtp.iter().enumerate() {
            let mut l = listen::bind_listener(*addr).map_err(|e| {
                io::Error::new(e.kind(), format!("listen on {addr}: {e}"))
            })?;
            let token = Token(LISTENER_BASE + i);
            poll.registry()
                .register(&mut l, token, Interest::READABLE)?;
            info!("listening for SMTP on {}", l.local_addr()?);
            listeners.push((l, *addr));
        }
        Ok(Server {
            poll,
            listeners,
            conns: Vec::new(),
            free: Vec::new(),
            per_ip: HashMap::new(),
            open: 0,
            timers: Timers::default(),
            writer: Writer::start(WRITERS, waker)?,
            services: Services::new(config, directory),
            signals,
            scratch: vec![0; SCRATCH].into_boxed_slice(),
            next_id: 0,
            draining: None,
        })
    }

    fn run(&mut self) {
        let mut events = Events::with_capacity(256);
        loop {
            let now = Instant::now();
            if let Some(until) = self.draining {
                if self.open == 0 || now >= until {
                    return;
                }
            }
            let mut timeout = self.timers.next_timeout(now);
            if let Some(until) = self.draining {
                let left = until.saturating_duration_since(now);
                timeout = Some(timeout.map_or(left, |t| t.min(left)));
            }
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    error!("poll: {e}");
                    return;
                }
            }
            for event in events.iter() {
                match event.token() {
                    WAKER => self.finish_deliveries(),
                    SIGNALS => self.on_signals(),
                    Token(t) if t >= CONN_BASE => {
                        self.on_conn_event(t - CONN_BASE, event)
                    }
                    Token(t) => self.accept(t - LISTENER_BASE),
                }
            }
            self.fire_timers();
        }
    }

    fn accept(&mut self, index: usize) {
        loop {
            let Some((listener, _)) = self.listeners.get(index) else {
                return;
            };
            match listener.accept() {
                Ok((stream, peer)) => self.admit(stream, peer.ip()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // EMFILE and friends: log, and let the next event retry.
                    error!("accept: {e}");
                    return;
                }
            }
        }
    }

    fn admit(&mut self, mut stream: TcpStream, peer: IpAddr) {
        let cfg = &self.services.config;
        let from_ip = self.per_ip.get(&peer).copied().unwrap_or(0);
        if self.open >= cfg.max_connections
            || from_ip >= cfg.max_connections_per_ip
        {
            warn!("refused ip={peer}: too many connections");
            let line = format!(
                "421 4.7.0 {} Too many connections, try later\r\n",
                cfg.hostname
            );
            let _ = io::Write::write(&mut stream, line.as_bytes());
            return;
        }
        let slot = self.free.pop().unwrap_or_else(|| {
            self.conns.push(None);
            self.conns.len() - 1
        });
        let token = Token(CONN_BASE + slot);
        if let Err(e) = self.poll.registry().register(
            &mut stream,
            token,
            Interest::READABLE,
        ) {
            error!("register: {e}");
            self.free.push(slot);
            return;
        }
        self.next_id += 1;
        let deadline = Instant::now() + self.idle_timeout();
        let mut conn = Conn {
            id: self.next_id,
            generation: self.next_id,
            stream,
            peer,
            session: smtp::Server::new(self.services.smtp.clone(), peer),
            rbuf: Vec::new(),
            wbuf: Vec::new(),
            deadline,
            phase: Phase::Open,
            read_pending: true,
            want_write: false,
            in_flight: None,
        };
        info!("conn={} connect ip={peer}", conn.id);
        conn.session.greet(&mut conn.wbuf);
        self.timers.add(deadline, (slot, conn.generation));
        *self.per_ip.entry(peer).or_default() += 1;
        self.open += 1;
        self.conns[slot] = Some(conn);
        self.drive(slot);
    }

    fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.services.config.smtp_timeout)
    }

    fn on_conn_event(&mut self, slot: usize, event: &mio::event::Event) {
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut)
        else {
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
        let timeout = self.idle_timeout();
        loop {
            let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut)
            else {
                return;
            };
            if !conn.can_read() {
                break;
            }
            match conn.read(&mut self.scratch) {
                Input::Data(n) => {
                    conn.deadline = Instant::now() + timeout;
                    self.feed(slot, n);
                }
                Input::Drained => break,
                Input::Gone => return self.close(slot, "client closed"),
            }
        }
        self.flush(slot);
    }

    /// Feeds the connection's saved input plus `n` new octets of scratch
    /// into its session and acts on the step it returns.
    fn feed(&mut self, slot: usize, n: usize) {
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut)
        else {
            return;
        };
        let joined;
        let input: &[u8] = if conn.rbuf.is_empty() {
            &self.scratch[..n]
        } else {
            conn.rbuf.extend_from_slice(&self.scratch[..n]);
            joined = std::mem::take(&mut conn.rbuf);
            &joined
        };
        let mut cx = Cx {
            out: &mut conn.wbuf,
            host: &mut self.services,
        };
        let (used, step) = conn.session.feed(input, &mut cx);
        conn.keep_input(&input[used..]);
        match step {
            smtp::Step::Continue => {}
            smtp::Step::Close => conn.phase = Phase::Closing,
            smtp::Step::Deliver(envelope, body) => {
                self.submit(slot, *envelope, body)
            }
        }
    }

    fn submit(&mut self, slot: usize, envelope: Envelope, body: Vec<u8>) {
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut)
        else {
            return;
        };
        let cfg = &self.services.config;
        let mut mailboxes: Vec<_> = envelope
            .rcpts
            .iter()
            .flat_map(|r| r.mailboxes.iter())
            .map(|m| cfg.mailbox_dir(m))
            .collect();
        mailboxes.sort();
        mailboxes.dedup();
        let now = SystemTime::now();
        let head = deliver::trace_headers(
            &envelope,
            &cfg.hostname,
            now,
            mailboxes.len(),
        );
        let rcpts: Vec<String> = envelope
            .rcpts
            .iter()
            .map(|r| format!("<{}>", r.path))
            .collect();
        conn.in_flight = Some(InFlight {
            id: envelope.id.clone(),
            summary: format!(
                "from=<{}> to={} size={} helo={} ip={}",
                envelope.from,
                rcpts.join(","),
                envelope.size,
                envelope.helo,
                conn.peer
            ),
        });
        conn.phase = Phase::Delivering;
        let job = Job {
            head,
            body,
            sender: deliver::sender(&envelope.from),
            received: now,
            mailboxes,
            format: cfg.mailbox_format,
        };
        self.writer.send(job, (slot, conn.generation));
    }

    fn finish_deliveries(&mut self) {
        let done: Vec<Done> = self.writer.finished().collect();
        for Done {
            key: (slot, generation),
            result,
        } in done
        {
            let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut)
            else {
                continue;
            };
            if conn.generation != generation {
                continue;
            }
            let Some(flight) = conn.in_flight.take() else {
                continue;
            };
            match &result {
                Ok(()) => info!(
                    "conn={} id={} {} result=delivered",
                    conn.id, flight.id, flight.summary
                ),
                Err(f) => warn!(
                    "conn={} id={} {} result=deferred ({f})",
                    conn.id, flight.id, flight.summary
                ),
            }
            conn.session.delivered(&flight.id, result, &mut conn.wbuf);
            conn.phase = Phase::Open;
            // Commands pipelined behind the message waited in rbuf.
            self.feed(slot, 0);
            self.drain_if_idle(slot);
            self.drive(slot);
        }
    }

    fn flush(&mut self, slot: usize) {
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut)
        else {
            return;
        };
        if conn.flush().is_err() {
            return self.close(slot, "write failed");
        }
        if conn.phase == Phase::Closing && conn.wbuf.is_empty() {
            return self.close(slot, "done");
        }
        let want_write = !conn.wbuf.is_empty();
        if want_write != conn.want_write {
            conn.want_write = want_write;
            let interest = if want_write {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            let token = Token(CONN_BASE + slot);
            let r = self.poll.registry().reregister(
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
        let Some(mut conn) = self.conns.get_mut(slot).and_then(Option::take)
        else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut conn.stream);
        if let Some(count) = self.per_ip.get_mut(&conn.peer) {
            *count -= 1;
            if *count == 0 {
                self.per_ip.remove(&conn.peer);
            }
        }
        self.open -= 1;
        self.free.push(slot);
        if let Some(flight) = conn.in_flight {
            warn!(
                "conn={} id={} client left while storing",
                conn.id, flight.id
            );
        }
        info!("conn={} disconnect ip={} ({why})", conn.id, conn.peer);
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        while let Some((slot, generation)) = self.timers.pop_due(now) {
            let timeout = self.idle_timeout();
            let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut)
            else {
                continue;
            };
            if conn.generation != generation {
                continue;
            }
            if conn.deadline > now {
                self.timers.add(conn.deadline, (slot, generation));
                continue;
            }
            match conn.phase {
                Phase::Delivering => {
                    conn.deadline = now + timeout;
                    self.timers.add(conn.deadline, (slot, generation));
                }
                Phase::Closing => self.close(slot, "timeout while closing"),
                Phase::Open => {
                    info!("conn={} timeout ip={}", conn.id, conn.peer);
                    conn.session.timed_out(&mut conn.wbuf);
                    conn.phase = Phase::Closing;
                    // One more period to deliver the 421, then drop.
                    conn.deadline = now + timeout;
                    self.timers.add(conn.deadline, (slot, generation));
                    self.flush(slot);
                }
            }
        }
    }

    fn on_signals(&mut self) {
        let pending: Vec<i32> = self.signals.pending().collect();
        for signal in pending {
            match signal {
                SIGHUP => self.services.reload(),
                _ => self.start_draining(),
            }
        }
    }

    fn start_draining(&mut self) {
        if self.draining.is_some() {
            return;
        }
        info!("stopping: no new connections, {} open", self.open);
        for (mut l, _) in self.listeners.drain(..) {
            let _ = self.poll.registry().deregister(&mut l);
        }
        self.draining = Some(Instant::now() + SHUTDOWN_GRACE);
        for slot in 0..self.conns.len() {
            self.drain_if_idle(slot);
        }
    }

    /// While stopping, a connection between transactions is told so and
    /// closed; one inside a transaction is left to finish it.
    fn drain_if_idle(&mut self, slot: usize) {
        if self.draining.is_none() {
            return;
        }
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut)
        else {
            return;
        };
        if conn.phase == Phase::Open && conn.session.is_idle() {
            conn.session.shutdown(&mut conn.wbuf);
            conn.phase = Phase::Closing;
            self.flush(slot);
        }
    }
}
