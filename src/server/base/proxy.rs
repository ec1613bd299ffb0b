//! Connections on `proxy:` listeners until their PROXY protocol header
//! has arrived. Only hosts in `proxy_from` may connect there; the header
//! names the real client, and only then is the connection admitted, so
//! trust, limits, lockouts and logs all go by the real client.

use std::io::{self, Read};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use log::{info, warn};
use mio::net::TcpStream;
use mio::{Interest, Token};

use crate::proto::proxy::{self, Header};
use crate::server::base::services::Service;
use crate::server::base::timer::Timer;
use crate::server::{PROXY_BASE, Server};

/// Log lines keep the target they had before the file moved into its
/// folder: a log's format is an interface (filters, RUST_LOG).
const LOG_TARGET: &str = "postling::server::proxy";

/// Octets read at a time while a header is incomplete.
const SCRATCH_USE: usize = 4096;
/// How long a proxy may take to send the header (it sends it at once).
const HEADER_WAIT: Duration = Duration::from_secs(10);

/// A connection waiting for its header.
pub struct Waiting {
    stream: TcpStream,
    /// The proxy's address.
    proxy: IpAddr,
    service: Service,
    buf: Vec<u8>,
    pub(in crate::server) deadline: Instant,
}

impl Server {
    /// A connection on a `proxy:` listener, from `peer`.
    pub(in crate::server) fn accept_proxied(
        &mut self,
        mut stream: TcpStream,
        peer: IpAddr,
        service: Service,
    ) {
        let cfg = &self.services.config;
        if !cfg.proxy_from.iter().any(|c| c.contains(peer)) {
            warn!(target: LOG_TARGET, "refused ip={peer}: not in proxy_from");
            return;
        }
        if self.core.waiting.iter().flatten().count() >= cfg.max_connections {
            warn!(target: LOG_TARGET, "refused ip={peer}: too many connections");
            return;
        }
        let slot = match self.core.waiting.iter().position(Option::is_none) {
            Some(s) => s,
            None => {
                self.core.waiting.push(None);
                self.core.waiting.len() - 1
            }
        };
        let token = Token(PROXY_BASE + slot);
        if let Err(e) = self.core.poll.registry().register(
            &mut stream,
            token,
            Interest::READABLE,
        ) {
            warn!(target: LOG_TARGET, "register: {e}");
            return;
        }
        let deadline = Instant::now() + HEADER_WAIT;
        self.core.waiting[slot] = Some(Waiting {
            stream,
            proxy: peer,
            service,
            buf: Vec::new(),
            deadline,
        });
        self.core
            .timers
            .add(deadline, Timer::ProxyHeader, (slot, 0));
        self.on_waiting(slot);
    }

    /// Reads what the proxy sent; admits the client once the header is
    /// complete, drops the connection if it is not a header.
    pub(in crate::server) fn on_waiting(&mut self, slot: usize) {
        let Some(w) = self.core.waiting.get_mut(slot).and_then(Option::as_mut)
        else {
            return;
        };
        let header = loop {
            match proxy::parse(&w.buf) {
                Header::Incomplete => {}
                done => break done,
            }
            let room = proxy::MAX_V2.saturating_sub(w.buf.len()).max(1);
            let chunk = &mut self.core.scratch[..room.min(SCRATCH_USE)];
            match w.stream.read(chunk) {
                Ok(0) => break Header::Invalid("closed before the header"),
                Ok(n) => w.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break Header::Invalid("read failed"),
            }
        };
        let Some(mut w) = self.core.waiting[slot].take() else {
            return;
        };
        let _ = self.core.poll.registry().deregister(&mut w.stream);
        match header {
            Header::Done { len, source } => {
                let client = source.map_or(w.proxy, |s| s.ip());
                info!(target: LOG_TARGET,
                    "proxy ip={} speaks for ip={client} service={}",
                    w.proxy,
                    w.service.name()
                );
                self.admit(
                    crate::server::base::conn::Stream::Tcp(w.stream),
                    client,
                    w.service,
                    &w.buf[len..],
                );
            }
            Header::Invalid(why) => {
                warn!(target: LOG_TARGET, "refused ip={}: {why}", w.proxy);
            }
            Header::Incomplete => {}
        }
    }

    /// Drops the connection in `slot` if its header is overdue.
    pub(in crate::server) fn expire_waiting(
        &mut self,
        slot: usize,
        now: Instant,
    ) {
        let overdue = self
            .core
            .waiting
            .get(slot)
            .and_then(Option::as_ref)
            .is_some_and(|w| w.deadline <= now);
        if let Some(mut w) =
            overdue.then(|| self.core.waiting[slot].take()).flatten()
        {
            let _ = self.core.poll.registry().deregister(&mut w.stream);
            warn!(target: LOG_TARGET, "refused ip={}: no PROXY header in time", w.proxy);
        }
    }
}
