//! The loop's side of DNS: a socket per query (UDP from a port the
//! kernel picks at random, connected to the server asked; TCP after a
//! truncated answer), the resolver's deadlines on the timer heap, and
//! who waits for each answer. Nothing here blocks.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Instant;

use log::{debug, info};
use mio::net::{TcpStream, UdpSocket};
use mio::{Interest, Token};

use crate::proto::dns::cache::Found;
use crate::proto::dns::resolver::{Event, Failure, Resolver};
use crate::proto::dns::wire::{Qtype, Rec};
use crate::server::Server;
use crate::server::base::timer::Timer;

/// Log lines keep the target they had before the file moved into its
/// folder: a log's format is an interface (filters, RUST_LOG).
const LOG_TARGET: &str = "postling::server::dns";

/// Socket i has token DNS_BASE + i.
pub const DNS_BASE: usize = 1 << 14;
/// Sockets at most: the tokens up to the PROXY ones (the resolver
/// limits lookups further).
const MAX_SOCKETS: usize = crate::server::PROXY_BASE - DNS_BASE;
/// The largest answer read (UDP with EDNS0, or TCP).
const MAX_ANSWER: usize = 65_535;

/// Who waits for a lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiter {
    /// An SMTP connection (slot, generation), for its client's name.
    PeerName(usize, u64),
    /// An outbound batch, for its domain's MX hosts.
    Mx(u64),
    /// An outbound batch, for its host's addresses.
    Addr(u64),
    /// An SMTP connection's checks (slot, generation, transaction).
    Check(usize, u64, u64, crate::server::smtp::check_state::Ask),
    /// A blocklist's health check (the list, which of its questions).
    Health(usize, usize),
}

enum Sock {
    Udp(UdpSocket),
    Tcp {
        stream: TcpStream,
        /// Query still to write (length-prefixed).
        out: Vec<u8>,
        /// Answer read so far.
        got: Vec<u8>,
    },
}

struct Open {
    key: u64,
    server: SocketAddr,
    sock: Sock,
}

/// Lookups in flight and their sockets.
pub struct Dns {
    resolver: Resolver,
    sockets: Vec<Option<Open>>,
    by_key: HashMap<u64, usize>,
    waiters: HashMap<u64, Waiter>,
    /// The resolver deadline the timer heap holds, if any.
    armed: Option<u64>,
    /// The resolver's clock starts here (it counts milliseconds).
    epoch: Instant,
}

impl Dns {
    /// A resolver asking `servers`.
    pub fn new(servers: Vec<SocketAddr>) -> Dns {
        Dns {
            resolver: Resolver::new(servers),
            sockets: Vec::new(),
            by_key: HashMap::new(),
            waiters: HashMap::new(),
            armed: None,
            epoch: Instant::now(),
        }
    }

    /// Milliseconds since the resolver started: its clock.
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }
}

impl Server {
    /// Starts a lookup for `waiter`; the answer comes to `dns_answer`.
    pub(in crate::server) fn dns_lookup(
        &mut self,
        name: &str,
        qtype: Qtype,
        waiter: Waiter,
    ) {
        let (key, events) = self.outbound.dns.resolver.lookup(
            name,
            qtype,
            self.outbound.dns.now(),
        );
        self.outbound.dns.waiters.insert(key, waiter);
        self.dns_events(events);
    }

    /// Carries out what the resolver said.
    fn dns_events(&mut self, events: Vec<Event>) {
        for ev in events {
            match ev {
                Event::Send {
                    key,
                    server,
                    bytes,
                    tcp,
                } => {
                    self.dns_close(key);
                    if let Err(e) = self.dns_send(key, server, &bytes, tcp) {
                        debug!(target: LOG_TARGET, "dns: send to {server}: {e}");
                        // The resolver tries again when this try's time is up.
                    }
                }
                Event::Done { key, result } => {
                    self.dns_close(key);
                    if let Some(w) = self.outbound.dns.waiters.remove(&key) {
                        self.dns_answer(w, result);
                    }
                }
            }
        }
        self.dns_arm();
    }

    fn dns_send(
        &mut self,
        key: u64,
        server: SocketAddr,
        bytes: &[u8],
        tcp: bool,
    ) -> io::Result<()> {
        let idx =
            match self.outbound.dns.sockets.iter().position(Option::is_none) {
                Some(i) => i,
                None if self.outbound.dns.sockets.len() < MAX_SOCKETS => {
                    self.outbound.dns.sockets.push(None);
                    self.outbound.dns.sockets.len() - 1
                }
                None => return Err(io::Error::other("too many DNS sockets")),
            };
        let token = Token(DNS_BASE + idx);
        let mut sock = if tcp {
            let mut stream = TcpStream::connect(server)?;
            self.core.poll.registry().register(
                &mut stream,
                token,
                Interest::READABLE | Interest::WRITABLE,
            )?;
            let mut out = (bytes.len() as u16).to_be_bytes().to_vec();
            out.extend_from_slice(bytes);
            Sock::Tcp {
                stream,
                out,
                got: Vec::new(),
            }
        } else {
            let any: SocketAddr = if server.is_ipv4() {
                ([0, 0, 0, 0], 0).into()
            } else {
                (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
            };
            let mut udp = UdpSocket::bind(any)?;
            // Connected: the kernel drops datagrams from anyone else.
            udp.connect(server)?;
            udp.send(bytes)?;
            self.core.poll.registry().register(
                &mut udp,
                token,
                Interest::READABLE,
            )?;
            Sock::Udp(udp)
        };
        if let Sock::Tcp { stream, out, .. } = &mut sock {
            // Connecting: the first write may have to wait for WRITABLE.
            if let Ok(n) = stream.write(out) {
                out.drain(..n);
            }
        }
        self.outbound.dns.sockets[idx] = Some(Open { key, server, sock });
        self.outbound.dns.by_key.insert(key, idx);
        Ok(())
    }

    fn dns_close(&mut self, key: u64) {
        let Some(idx) = self.outbound.dns.by_key.remove(&key) else {
            return;
        };
        if let Some(open) = self.outbound.dns.sockets[idx].take() {
            let _ = match open.sock {
                Sock::Udp(mut s) => {
                    self.core.poll.registry().deregister(&mut s)
                }
                Sock::Tcp { mut stream, .. } => {
                    self.core.poll.registry().deregister(&mut stream)
                }
            };
        }
    }

    /// A DNS socket is ready.
    pub(in crate::server) fn on_dns_event(&mut self, idx: usize) {
        let mut answers = Vec::new();
        let Some(Some(open)) = self.outbound.dns.sockets.get_mut(idx) else {
            return;
        };
        let (key, server) = (open.key, open.server);
        let mut refused = false;
        match &mut open.sock {
            Sock::Udp(udp) => {
                let mut buf = vec![0u8; MAX_ANSWER];
                loop {
                    match udp.recv(&mut buf) {
                        Ok(n) => answers.push(buf[..n].to_vec()),
                        Err(e) => {
                            refused =
                                e.kind() == io::ErrorKind::ConnectionRefused;
                            break;
                        }
                    }
                }
            }
            Sock::Tcp { stream, out, got } => {
                if !out.is_empty()
                    && let Ok(n) = stream.write(out)
                {
                    out.drain(..n);
                }
                let mut buf = [0u8; 4096];
                loop {
                    match stream.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) if got.len() + n <= MAX_ANSWER + 2 => {
                            got.extend_from_slice(&buf[..n])
                        }
                        Ok(_) => break,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            break;
                        }
                        Err(_) => break,
                    }
                }
                if got.len() >= 2 {
                    let len =
                        usize::from(u16::from_be_bytes([got[0], got[1]]));
                    if got.len() >= 2 + len {
                        answers.push(got[2..2 + len].to_vec());
                    }
                }
            }
        }
        let now = self.outbound.dns.now();
        let mut events = Vec::new();
        if refused && answers.is_empty() {
            let events = self.outbound.dns.resolver.refused(key, now);
            return self.dns_events(events);
        }
        for a in answers {
            events.extend(
                self.outbound.dns.resolver.received(key, server, &a, now),
            );
        }
        self.dns_events(events);
    }

    /// The resolver's next deadline on the timer heap (once).
    fn dns_arm(&mut self) {
        let Some(next) = self.outbound.dns.resolver.next_deadline() else {
            return;
        };
        if self.outbound.dns.armed.is_some_and(|a| a <= next) {
            return;
        }
        self.outbound.dns.armed = Some(next);
        let at =
            self.outbound.dns.epoch + std::time::Duration::from_millis(next);
        self.core.timers.add(
            at,
            Timer::Dns,
            crate::server::base::timer::NOBODY,
        );
    }

    /// The resolver's deadline came.
    pub(in crate::server) fn dns_due(&mut self) {
        self.outbound.dns.armed = None;
        let now = self.outbound.dns.now();
        let events = self.outbound.dns.resolver.expire(now);
        self.dns_events(events);
        self.dns_arm();
    }

    /// An SMTP connection's client name: its Received headers name it.
    fn peer_name(
        &mut self,
        slot: usize,
        generation: u64,
        name: Option<String>,
    ) {
        let Some(conn) = self.live_conn(slot, generation) else {
            return;
        };
        let Some(name) = name else { return };
        if let crate::server::session::Session::Smtp(s) = &mut conn.session {
            info!(target: LOG_TARGET,
                "conn={} ptr={}",
                conn.id,
                crate::util::logsafe::Quoted(&name)
            );
            s.smtp.set_peer_name(name);
        }
    }

    /// A lookup is over: to whoever waited.
    fn dns_answer(&mut self, waiter: Waiter, result: Result<Found, Failure>) {
        match waiter {
            Waiter::PeerName(slot, generation) => {
                self.iprev_names((slot, generation), &result);
                let name = match result {
                    Ok(Found::Records(recs)) => {
                        recs.into_iter().find_map(|r| match r {
                            Rec::Ptr(n) => Some(n),
                            _ => None,
                        })
                    }
                    _ => None,
                };
                self.peer_name(slot, generation, name);
            }
            Waiter::Mx(batch) => self.mx_found(batch, result),
            Waiter::Addr(batch) => self.addr_found(batch, result),
            Waiter::Check(slot, generation, serial, ask) => {
                self.check_answered((slot, generation, serial), ask, result)
            }
            Waiter::Health(list, which) => {
                self.blocklist_health(list, which, result)
            }
        }
    }
}
