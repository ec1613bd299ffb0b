//! Taking connections: binding the listeners at start, accepting, and
//! admitting each client under the limits (per service group, per
//! client address or IPv6 prefix, login lockouts) before its session
//! greets it.

use std::io;
use std::net::IpAddr;
use std::time::Instant;

use log::{error, info, warn};
use mio::net::TcpListener;

use crate::server::base::conn::Stream;
use mio::{Interest, Token};

use crate::config::Config;
use crate::config::net::client_key;
use crate::proto::smtp::Link;
use crate::server::base::conn::{Conn, Phase};
use crate::server::base::services::{Group, Service};
use crate::server::base::timer::Timer;
use crate::server::session::Session;
use crate::server::{CONN_BASE, Server, base::listen, base::tls};

/// Log lines keep the target they had before the file moved into its
/// folder: a log's format is an interface (filters, RUST_LOG).
const LOG_TARGET: &str = "postling::server::accept";

/// Binds every configured listener.
pub(in crate::server) fn bind_all(cfg: &Config) -> io::Result<Vec<Listener>> {
    let wanted = [
        (Service::Smtp, &cfg.listen_smtp),
        (Service::Submission, &cfg.listen_submission),
        (Service::Submissions, &cfg.listen_submissions),
        (Service::Pop3, &cfg.listen_pop3),
        (Service::Pop3s, &cfg.listen_pop3s),
        (Service::Imap, &cfg.listen_imap),
        (Service::Imaps, &cfg.listen_imaps),
        (Service::ManageSieve, &cfg.listen_managesieve),
        (Service::Http, &cfg.listen_http),
        (Service::Https, &cfg.listen_https),
    ];
    let mut listeners = Vec::new();
    for (service, addrs) in wanted {
        for addr in addrs.iter() {
            let socket = listen::bind_listener(*addr).map_err(|e| {
                io::Error::new(e.kind(), format!("listen on {addr}: {e}"))
            })?;
            let proxy = cfg.proxy_listeners.contains(addr);
            info!(target: LOG_TARGET,
                "listening for {} on {}{}",
                service.name(),
                socket.local_addr()?,
                if proxy { " (PROXY protocol)" } else { "" }
            );
            listeners.push(Listener {
                socket,
                service,
                proxy,
            });
        }
    }
    Ok(listeners)
}

/// The local submission socket, `{data_dir}/public/sendmail`, that
/// `postling sendmail` speaks SMTP on: anyone on the host may use it
/// (0666, as anyone may run sendmail); `data_dir` becomes traversable
/// (0711) for it, and nothing else in it is readable.
pub(in crate::server) fn bind_local(
    cfg: &Config,
) -> io::Result<mio::net::UnixListener> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let public = cfg.sendmail_socket();
    let dir = public.parent().unwrap_or(&cfg.data_dir);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&cfg.data_dir)?;
    std::fs::set_permissions(
        &cfg.data_dir,
        std::fs::Permissions::from_mode(0o711),
    )?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    // A socket left by a previous run.
    let _ = std::fs::remove_file(&public);
    let listener = mio::net::UnixListener::bind(&public).map_err(|e| {
        io::Error::new(e.kind(), format!("{}: {e}", public.display()))
    })?;
    std::fs::set_permissions(&public, std::fs::Permissions::from_mode(0o666))?;
    info!(target: LOG_TARGET, "local submission socket at {}", public.display());
    Ok(listener)
}

/// A listening socket and what it serves.
pub(in crate::server) struct Listener {
    pub(in crate::server) socket: TcpListener,
    pub(in crate::server) service: Service,
    /// Connections start with a PROXY protocol header.
    pub(in crate::server) proxy: bool,
}

impl Server {
    /// `postling sendmail` connections.
    pub(in crate::server) fn accept_local(&mut self) {
        loop {
            let Some(listener) = self.core.local.as_ref() else {
                return;
            };
            match listener.accept() {
                Ok((stream, _)) => {
                    // Who is on the other end: the kernel's word, not
                    // the client's.
                    let uid =
                        match rustix::net::sockopt::socket_peercred(&stream) {
                            Ok(cred) => cred.uid.as_raw(),
                            Err(e) => {
                                error!(target: LOG_TARGET,
                                    "local socket: no peer credentials: {e}"
                                );
                                continue;
                            }
                        };
                    self.admit_local(Stream::Unix(stream), uid)
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    error!(target: LOG_TARGET, "accept on the local socket: {e}");
                    return;
                }
            }
        }
    }

    pub(in crate::server) fn accept(&mut self, index: usize) {
        loop {
            let Some(listener) = self.core.listeners.get(index) else {
                return;
            };
            let (service, proxied) = (listener.service, listener.proxy);
            match listener.socket.accept() {
                Ok((stream, peer)) if proxied => {
                    self.accept_proxied(stream, peer.ip(), service)
                }
                Ok((stream, peer)) => {
                    self.admit(Stream::Tcp(stream), peer.ip(), service, &[])
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // EMFILE and friends: log, and let the next event retry.
                    error!(target: LOG_TARGET, "accept: {e}");
                    return;
                }
            }
        }
    }

    /// Takes a connection on the local socket from the account `uid`.
    fn admit_local(&mut self, stream: Stream, uid: u32) {
        let localhost = std::net::IpAddr::from([127, 0, 0, 1]);
        self.admit_from(stream, localhost, Service::Local, &[], Some(uid));
    }

    /// Takes a new connection from the client `peer` (from the socket,
    /// or from a PROXY header), unless a limit refuses it. `early` is
    /// input that came with the PROXY header.
    pub(in crate::server) fn admit(
        &mut self,
        stream: Stream,
        peer: IpAddr,
        service: Service,
        early: &[u8],
    ) {
        self.admit_from(stream, peer, service, early, None);
    }

    /// Why a connection of `group` from `client` is refused, if it is:
    /// the limits, or a lockout after failed logins.
    fn refusal(
        &mut self,
        group: Group,
        client: IpAddr,
    ) -> Option<&'static str> {
        let cfg = &self.services.config;
        let from_ip =
            self.core.per_ip.get(&(group, client)).copied().unwrap_or(0);
        if self.core.per_group[group.index()] >= cfg.max_connections
            || from_ip >= cfg.max_connections_per_ip
        {
            Some("too many connections")
        } else if self.services.limiter.blocked(client, Instant::now()) {
            Some("too many authentication failures")
        } else {
            None
        }
    }

    /// The TLS session an implicit-TLS listener starts with (None for
    /// the others); Err if it cannot be made (logged).
    fn implicit_tls(
        &self,
        service: Service,
    ) -> Result<Option<Box<rustls::ServerConnection>>, ()> {
        let config = match service {
            Service::Https => &self.services.https_tls,
            _ => &self.services.tls,
        };
        match (service.implicit_tls(), config) {
            (true, Some(config)) => {
                tls::session(config).map(Some).map_err(|e| {
                    error!(target: LOG_TARGET, "TLS setup: {e}");
                })
            }
            _ => Ok(None),
        }
    }

    fn admit_from(
        &mut self,
        mut stream: Stream,
        peer: IpAddr,
        service: Service,
        early: &[u8],
        local_uid: Option<u32>,
    ) {
        let client = client_key(peer, self.services.config.ipv6_prefix_len);
        let group = service.group();
        let refusal = self.refusal(group, client);
        let cfg = &self.services.config;
        if let Some(why) = refusal {
            warn!(target: LOG_TARGET, "refused ip={peer}: {why}");
            // Plaintext even on 465: a TLS client sees a failed handshake.
            let line = service.refusal(&cfg.hostname, why);
            let _ = io::Write::write(&mut stream, line.as_bytes());
            return;
        }
        let Ok(mut tls) = self.implicit_tls(service) else {
            return;
        };
        let mut early = early;
        let plain_early = if tls.is_none() {
            early.to_vec()
        } else {
            Vec::new()
        };
        if let Some(t) = tls.as_deref_mut() {
            // A ClientHello that arrived behind the PROXY header.
            while !early.is_empty() {
                if t.read_tls(&mut early).is_err()
                    || t.process_new_packets().is_err()
                {
                    warn!(target: LOG_TARGET, "ip={peer} bad TLS after PROXY header");
                    return;
                }
            }
        }
        let link = Link {
            peer,
            // The local socket's permissions decided who may submit.
            trusted: service == Service::Local || cfg.is_trusted(peer),
            cleartext_auth: peer.is_loopback() || !cfg.require_tls_auth,
            tls: None,
            local_uid,
            front_end: cfg.is_login_trusted(peer),
        };
        let slot = self.core.free.pop().unwrap_or_else(|| {
            self.core.conns.push(None);
            self.core.conns.len() - 1
        });
        // Replies are small and answer requests: Nagle's algorithm would
        // hold each behind the client's delayed ACK.
        if let Stream::Tcp(s) = &stream {
            let _ = s.set_nodelay(true);
        }
        let token = Token(CONN_BASE + slot);
        if let Err(e) = self.core.poll.registry().register(
            &mut stream,
            token,
            Interest::READABLE,
        ) {
            error!(target: LOG_TARGET, "register: {e}");
            self.core.free.push(slot);
            return;
        }
        self.core.next_id += 1;
        let idle = self.services.idle_timeout(service);
        let spool = self.smtp.spool_for((slot, self.core.next_id));
        let session = Session::open(&self.services, service, link, spool);
        let deadline = Instant::now() + idle;
        let mut conn = Conn {
            id: self.core.next_id,
            generation: self.core.next_id,
            stream,
            peer,
            client,
            service,
            login_key: None,
            tls,
            tls_announced: false,
            session,
            idle,
            rbuf: plain_early,
            wbuf: Vec::new(),
            deadline,
            phase: Phase::Open,
            read_pending: true,
            want_write: false,
            stalled: false,
        };
        match local_uid {
            Some(uid) => info!(target: LOG_TARGET,
                "conn={} connect ip={peer} service={} uid={uid}",
                conn.id,
                service.name()
            ),
            None => info!(target: LOG_TARGET,
                "conn={} connect ip={peer} service={}",
                conn.id,
                service.name()
            ),
        }
        let smtp =
            matches!(conn.session, crate::server::session::Session::Smtp(_))
                && service != Service::Local;
        let generation = conn.generation;
        // Port 25, a client neither trusted nor seen passing lately: the
        // checks before content (`server/smtp/screen.rs`).
        let screened = service == Service::Smtp
            && !cfg.is_trusted(peer)
            && self.screen_new(slot, generation, client);
        match (screened, conn.session.as_smtp()) {
            (true, Some(s)) => s.smtp.begin_greeting(&mut conn.wbuf),
            _ => conn.session.greet(&mut conn.wbuf),
        }
        self.core
            .timers
            .add(deadline, Timer::Idle, (slot, conn.generation));
        *self.core.per_ip.entry((group, client)).or_default() += 1;
        self.core.per_group[group.index()] += 1;
        self.core.open += 1;
        let pipelined = !conn.rbuf.is_empty();
        self.core.conns[slot] = Some(conn);
        // The client's name for Received, looked up while it talks.
        if smtp {
            let name = crate::proto::dns::wire::reverse_name(peer);
            let waiter = crate::server::outbound::dns::Waiter::PeerName(
                slot, generation,
            );
            self.dns_lookup(
                &name,
                crate::proto::dns::wire::Qtype::Ptr,
                waiter,
            );
            self.ask_client_lists(slot, generation);
        }
        if pipelined {
            self.feed(slot, 0);
        }
        self.drive(slot);
    }
}
