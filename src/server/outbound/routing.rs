//! Where a batch goes: its MX hosts and their addresses, and a
//! connection to one (new, or an idle one to the same destination)
//! within the limits.

use super::*;

impl Server {
    /// The MX answer for a batch's domain.
    pub(in crate::server) fn mx_found(
        &mut self,
        key: u64,
        result: Result<Found, Failure>,
    ) {
        let Some(b) = self.outbound.batches.get_mut(&key) else {
            return;
        };
        match route::from_mx(&result, &mut random_below) {
            Route::Hosts(hosts) => b.hosts = hosts.into(),
            Route::Implicit => b.hosts = VecDeque::from([b.domain.clone()]),
            Route::NullMx => {
                let r = local_reply(
                    556,
                    "5.1.10 the domain accepts no mail (null MX)",
                );
                return self.batch_over(key, Outcome::Bounced(r), None);
            }
            Route::NoSuchDomain => {
                let r = local_reply(550, "5.1.2 no such domain");
                return self.batch_over(key, Outcome::Bounced(r), None);
            }
            Route::Defer(why) => {
                let r = local_reply(451, &format!("4.4.3 {why}"));
                return self.batch_over(key, Outcome::Deferred(r), None);
            }
        }
        self.next_host(key);
    }

    /// Moves a batch on to its next host: its addresses are looked up
    /// (or it is one), then connected to.
    pub(in crate::server) fn next_host(&mut self, key: u64) {
        let port = match &self.outbound.policy.smarthost {
            Some((_, p)) => *p,
            None => self.outbound.policy.port,
        };
        let Some(b) = self.outbound.batches.get_mut(&key) else {
            return;
        };
        let Some(host) = b.hosts.pop_front() else {
            let (reply, remote) = b.last.take().unwrap_or_else(|| {
                (
                    local_reply(451, "4.4.1 no mail host could be reached"),
                    None,
                )
            });
            return self.batch_over(key, Outcome::Deferred(reply), remote);
        };
        b.host = host.clone();
        b.found.clear();
        if let Ok(ip) = host.parse::<IpAddr>() {
            b.addrs = VecDeque::from([SocketAddr::new(ip, port)]);
            return self.try_connect(key);
        }
        b.lookups = 2;
        self.dns_lookup(&host, Qtype::Aaaa, Waiter::Addr(key));
        self.dns_lookup(&host, Qtype::A, Waiter::Addr(key));
    }

    /// An address lookup for a batch's host: once both are in, connect.
    pub(in crate::server) fn addr_found(
        &mut self,
        key: u64,
        result: Result<Found, Failure>,
    ) {
        let port = match &self.outbound.policy.smarthost {
            Some((_, p)) => *p,
            None => self.outbound.policy.port,
        };
        let Some(b) = self.outbound.batches.get_mut(&key) else {
            return;
        };
        match &result {
            Ok(Found::Records(recs)) => {
                for r in recs {
                    match r {
                        Rec::Aaaa(ip) => b.found.insert(0, IpAddr::V6(*ip)),
                        Rec::A(ip) => b.found.push(IpAddr::V4(*ip)),
                        _ => {}
                    }
                }
            }
            Ok(_) => {}
            Err(f) => b.lookup_failed = Some(format!("{f:?}")),
        }
        b.lookups = b.lookups.saturating_sub(1);
        if b.lookups > 0 {
            return;
        }
        // IPv6 first, as the records came.
        b.found.sort_by_key(|ip| ip.is_ipv4());
        b.addrs = b
            .found
            .drain(..)
            .map(|ip| SocketAddr::new(ip, port))
            .collect();
        if b.addrs.is_empty() {
            let r =
                local_reply(451, &format!("4.4.4 no address for {}", b.host));
            b.last = Some((r, None));
            return self.next_host(key);
        }
        self.try_connect(key);
    }

    /// Gives a batch a connection: a fresh one if the limits allow, or
    /// it waits for one to its destination to come free.
    pub(in crate::server) fn try_connect(&mut self, key: u64) {
        let policy = Arc::clone(&self.outbound.policy);
        let Some(b) = self.outbound.batches.get_mut(&key) else {
            return;
        };
        let dest = b.dest.clone();
        let idle = self.outbound.peers.iter().position(|p| {
            p.as_ref().is_some_and(|p| p.idle && p.dest == dest)
        });
        if let Some(idx) = idle {
            return self.reuse(idx, key);
        }
        let per = self.outbound.per_dest.get(&dest).copied().unwrap_or(0);
        if self.outbound.open >= policy.max_connections
            || per >= policy.max_per_destination
        {
            self.outbound.waiting.push_back(key);
            if self.outbound.open >= policy.max_connections {
                // An idle connection elsewhere makes room.
                self.quit_one_idle();
            }
            return;
        }
        let Some(b) = self.outbound.batches.get_mut(&key) else {
            return;
        };
        let Some(addr) = b.addrs.pop_front() else {
            return self.next_host(key);
        };
        let (dest, host) = (b.dest.clone(), b.host.clone());
        if let Err(e) = self.connect(key, &dest, &host, addr) {
            let relay = format!("{host}[{}]:{}", addr.ip(), addr.port());
            let r =
                local_reply(451, &format!("4.4.1 connect to {relay}: {e}"));
            if let Some(b) = self.outbound.batches.get_mut(&key) {
                b.last = Some((r, Some(relay)));
            }
            self.try_connect(key);
        }
    }

    /// Sends batch `key` over the idle connection `idx`.
    pub(in crate::server) fn reuse(&mut self, idx: usize, key: u64) {
        let Some(Some(p)) = self.outbound.peers.get_mut(idx) else {
            return;
        };
        p.idle = false;
        p.batch = Some(key);
        p.deadline =
            Instant::now() + Duration::from_secs(self.outbound.policy.timeout);
        self.peer_actions(idx, vec![Action::Ready]);
        self.peer_flush(idx);
    }

    /// Ends one idle connection, to make room under the total limit.
    pub(in crate::server) fn quit_one_idle(&mut self) {
        let idle = self
            .outbound
            .peers
            .iter()
            .position(|p| p.as_ref().is_some_and(|p| p.idle));
        if let Some(idx) = idle {
            self.quit_idle(idx);
        }
    }

    pub(in crate::server) fn quit_idle(&mut self, idx: usize) {
        let Some(Some(p)) = self.outbound.peers.get_mut(idx) else {
            return;
        };
        p.idle = false;
        p.closing = true;
        let actions = p.client.quit();
        self.peer_actions(idx, actions);
        self.peer_flush(idx);
    }

    /// Opens a connection for batch `key`.
    pub(in crate::server) fn connect(
        &mut self,
        key: u64,
        dest: &str,
        host: &str,
        addr: SocketAddr,
    ) -> std::io::Result<()> {
        let idx = match self.outbound.peers.iter().position(Option::is_none) {
            Some(i) => i,
            None if OUT_BASE + self.outbound.peers.len() < LOCAL.0 => {
                self.outbound.peers.push(None);
                self.outbound.peers.len() - 1
            }
            None => return Err(std::io::Error::other("no connection slot")),
        };
        let mut stream = TcpStream::connect(addr)?;
        self.core.poll.registry().register(
            &mut stream,
            Token(OUT_BASE + idx),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        let policy = &self.outbound.policy;
        let smarthost = policy.smarthost.is_some();
        let tls_policy = match (smarthost, policy.smarthost_tls) {
            (false, _) => TlsPolicy::Opportunistic,
            (true, SmarthostTls::StartTls) => TlsPolicy::Required,
            (true, SmarthostTls::Tls) => TlsPolicy::Off,
        };
        let mut client =
            Client::new(&self.services.config.hostname, tls_policy);
        if smarthost && let Some((user, password)) = &self.outbound.login {
            client = client.with_login(user, password);
        }
        let (tls, checked) =
            if smarthost && policy.smarthost_tls == SmarthostTls::Tls {
                let (t, c) = self
                    .outbound
                    .tls
                    .connect(host, true)
                    .map_err(std::io::Error::other)?;
                (Some(t), Some(c))
            } else {
                (None, None)
            };
        self.core.next_id += 1;
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        self.outbound.peers[idx] = Some(Peer {
            generation: self.core.next_id,
            stream,
            tls,
            // Implicit TLS: the client begins after the handshake, with
            // the greeting, and needs no news of it.
            tls_announced: true,
            checked,
            client,
            rbuf: Vec::new(),
            wbuf: Vec::new(),
            dest: dest.to_string(),
            host: host.to_string(),
            addr,
            batch: Some(key),
            connected: false,
            deadline,
            body: None,
            want_write: true,
            closing: false,
            sent: 0,
            idle: false,
        });
        self.core
            .timers
            .add(deadline, Timer::Peer, (idx, self.core.next_id));
        self.outbound.open += 1;
        *self.outbound.per_dest.entry(dest.to_string()).or_insert(0) += 1;
        Ok(())
    }
}
