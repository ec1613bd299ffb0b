//! Driving one outbound connection: connecting, reading the peer's
//! replies into the SMTP client, carrying out what it says, streaming
//! the body from the queue file, deadlines and closing.

use super::*;

impl Server {
    /// A connection of ours is ready.
    pub(in crate::server) fn on_peer_event(
        &mut self,
        idx: usize,
        event: &mio::event::Event,
    ) {
        let Some(Some(p)) = self.outbound.peers.get_mut(idx) else {
            return;
        };
        if !p.connected {
            if event.is_error() || event.is_write_closed() {
                let why = p.stream.take_error().ok().flatten().map_or_else(
                    || "connection failed".to_string(),
                    |e| e.to_string(),
                );
                return self.peer_lost(idx, &format!("connect: {why}"));
            }
            if !event.is_writable() {
                return;
            }
            match p.stream.peer_addr() {
                Ok(_) => {
                    p.connected = true;
                    p.deadline = Instant::now()
                        + Duration::from_secs(self.outbound.policy.timeout);
                    let (idx, generation) = (idx, p.generation);
                    let deadline = p.deadline;
                    self.core.timers.add(
                        deadline,
                        Timer::Peer,
                        (idx, generation),
                    );
                }
                Err(_) => {
                    let why =
                        p.stream.take_error().ok().flatten().map_or_else(
                            || "connection refused".to_string(),
                            |e| e.to_string(),
                        );
                    return self.peer_lost(idx, &format!("connect: {why}"));
                }
            }
        }
        self.peer_drive(idx);
    }

    /// Reads, feeds the client, carries out its actions and writes,
    /// until nothing moves.
    pub(in crate::server) fn peer_drive(&mut self, idx: usize) {
        loop {
            let Some(Some(p)) = self.outbound.peers.get_mut(idx) else {
                return;
            };
            if p.client.is_done() {
                // Nothing more is read (a peer may talk on and on): what
                // we still have to say goes out, then the connection ends.
                p.rbuf = Vec::new();
                self.peer_flush(idx);
                let Some(Some(p)) = self.outbound.peers.get(idx) else {
                    return;
                };
                if !p.has_output() {
                    self.peer_close(idx, "done");
                }
                return;
            }
            let got = p.read(&mut self.core.scratch);
            let actions = match &got {
                Input::Data(n) => {
                    p.deadline = Instant::now()
                        + Duration::from_secs(self.outbound.policy.timeout);
                    let mut input = std::mem::take(&mut p.rbuf);
                    input.extend_from_slice(&self.core.scratch[..*n]);
                    let (used, actions) = p.client.feed(&input);
                    p.rbuf = input.split_off(used);
                    actions
                }
                Input::Handshaked => {
                    info!(
                        "outbound tls relay={} verify={}",
                        p.relay(),
                        p.tls_word()
                    );
                    p.client.tls_started()
                }
                Input::Drained => {
                    self.peer_flush(idx);
                    return;
                }
                Input::Gone | Input::TlsFailed => {
                    if matches!(got, Input::TlsFailed) {
                        let now = std::time::Instant::now();
                        self.services.stats.add(
                            crate::server::base::stats::Event::TlsFailed,
                            1,
                            now,
                        );
                    }
                    let why = if p.closing {
                        "closed"
                    } else {
                        "lost connection"
                    };
                    let actions = p.client.lost(why);
                    self.peer_actions(idx, actions);
                    return self.peer_close(idx, why);
                }
            };
            self.peer_actions(idx, actions);
            self.peer_flush(idx);
        }
    }

    /// Carries out the client's actions.
    pub(in crate::server) fn peer_actions(
        &mut self,
        idx: usize,
        actions: Vec<Action>,
    ) {
        let mut queue: VecDeque<Action> = actions.into();
        while let Some(action) = queue.pop_front() {
            let Some(Some(p)) = self.outbound.peers.get_mut(idx) else {
                return;
            };
            match action {
                Action::Write(bytes) => p.wbuf.extend_from_slice(&bytes),
                Action::StartTls => {
                    // The 220 came: nothing of ours is pending in the clear.
                    let host = p.host.clone();
                    let required = self.outbound.policy.smarthost.is_some();
                    match self.outbound.tls.connect(&host, required) {
                        Ok((t, c)) => {
                            let Some(Some(p)) =
                                self.outbound.peers.get_mut(idx)
                            else {
                                return;
                            };
                            p.tls = Some(t);
                            p.checked = Some(c);
                            p.tls_announced = false;
                        }
                        Err(e) => {
                            let a = p.client.lost(&format!("TLS setup: {e}"));
                            queue.extend(a);
                        }
                    }
                }
                Action::Ready => {
                    let msg = self.batch_message(idx);
                    let Some(Some(p)) = self.outbound.peers.get_mut(idx)
                    else {
                        return;
                    };
                    match msg {
                        Some(msg) => queue.extend(p.client.send(msg)),
                        None if !p.closing => {
                            p.closing = true;
                            queue.extend(p.client.quit());
                        }
                        None => {}
                    }
                }
                Action::SendBody => self.start_body(idx),
                Action::Finished(outcomes) => {
                    queue.extend(self.batch_finished(idx, outcomes));
                }
                Action::Close => {
                    p.closing = true;
                }
            }
        }
    }

    /// The message the connection's batch sends, for `Client::send`.
    pub(in crate::server) fn batch_message(
        &self,
        idx: usize,
    ) -> Option<Message> {
        let p = self.outbound.peers.get(idx)?.as_ref()?;
        let b = self.outbound.batches.get(&p.batch?)?;
        let a = self.outbound.attempts.get(&b.msg)?;
        let q = &a.ready.queued;
        Some(Message {
            from: q.from.clone(),
            rcpts: b.rcpts.iter().map(|&i| q.rcpts[i].0.clone()).collect(),
            size: a.ready.size,
            eight_bit: a.ready.eight_bit,
            utf8: a.ready.utf8,
        })
    }

    /// The peer said 354: the body streams from the queue file.
    pub(in crate::server) fn start_body(&mut self, idx: usize) {
        let Some(Some(p)) = self.outbound.peers.get_mut(idx) else {
            return;
        };
        let source = p
            .batch
            .and_then(|k| self.outbound.batches.get(&k))
            .and_then(|b| self.outbound.attempts.get(&b.msg))
            .map(|a| (a.ready.path.clone(), a.ready.offset));
        let Some((path, offset)) = source else {
            return;
        };
        p.body = Some(Body {
            file: None,
            left: u64::MAX,
            reading: true,
            encoder: Encoder::new(None, false),
            carry: Vec::new(),
        });
        self.core.readers.send(ReadJob {
            key: (idx, p.generation),
            source: Source::Path { path, offset },
            mbox: None,
        });
    }

    /// A chunk of a body arrived from a reader helper.
    pub(in crate::server) fn peer_chunk(
        &mut self,
        idx: usize,
        result: std::io::Result<(std::fs::File, u64, Vec<u8>)>,
    ) {
        let Some(Some(p)) = self.outbound.peers.get_mut(idx) else {
            return;
        };
        let Some(body) = p.body.as_mut() else {
            return;
        };
        match result {
            Ok((file, left, data)) => {
                body.file = Some(file);
                body.left = left;
                body.reading = false;
                body.carry.extend_from_slice(&data);
                self.peer_pump(idx);
                self.peer_flush(idx);
            }
            Err(e) => {
                warn!("outbound: cannot read the queued message: {e}");
                p.body = None;
                let actions =
                    p.client.lost("the queued message could not be read");
                self.peer_actions(idx, actions);
                self.peer_flush(idx);
            }
        }
    }

    /// Encodes what has been read into the output, and asks for more
    /// while the output has room.
    pub(in crate::server) fn peer_pump(&mut self, idx: usize) {
        let Some(Some(p)) = self.outbound.peers.get_mut(idx) else {
            return;
        };
        let Some(body) = p.body.as_mut() else {
            return;
        };
        if body.reading || p.wbuf.len() >= WBUF_CAP {
            return;
        }
        let last = body.left == 0;
        let used = body.encoder.push(&body.carry, last, &mut p.wbuf);
        body.carry.drain(..used);
        if last {
            body.encoder.finish(&mut p.wbuf);
            p.body = None;
            p.client.body_sent();
            return;
        }
        if let Some(file) = body.file.take() {
            body.reading = true;
            let left = body.left;
            self.core.readers.send(ReadJob {
                key: (idx, p.generation),
                source: Source::Next { file, left },
                mbox: None,
            });
        }
    }

    /// Writes what the connection has, keeps the body flowing, and
    /// closes once a finished connection has said all it had to.
    pub(in crate::server) fn peer_flush(&mut self, idx: usize) {
        loop {
            self.peer_pump(idx);
            let Some(Some(p)) = self.outbound.peers.get_mut(idx) else {
                return;
            };
            if !p.connected {
                return;
            }
            match p.flush() {
                Err(e) => {
                    let why = format!("write failed: {e}");
                    let actions = p.client.lost(&why);
                    self.peer_actions(idx, actions);
                    return self.peer_close(idx, &why);
                }
                Ok(n) if n > 0 => {
                    p.deadline = Instant::now()
                        + Duration::from_secs(self.outbound.policy.timeout);
                }
                Ok(_) => {}
            }
            let more_body = p.body.as_ref().is_some_and(|b| !b.reading)
                && p.wbuf.len() < WBUF_CAP;
            if !more_body || p.has_output() {
                break;
            }
        }
        let Some(Some(p)) = self.outbound.peers.get_mut(idx) else {
            return;
        };
        if p.closing && p.client.is_closed() && !p.has_output() {
            // QUIT is out; the peer's 221 is not worth waiting long for.
            p.deadline = p.deadline.min(Instant::now() + QUIT_TIMEOUT);
            let (g, d) = (p.generation, p.deadline);
            self.core.timers.add(d, Timer::Peer, (idx, g));
        }
        let want_write = p.has_output();
        if want_write != p.want_write {
            p.want_write = want_write;
            let interest = if want_write {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            let token = Token(OUT_BASE + idx);
            if self
                .core
                .poll
                .registry()
                .reregister(&mut p.stream, token, interest)
                .is_err()
            {
                self.peer_lost(idx, "reregister failed");
            }
        }
    }

    /// A connection's deadline came.
    pub(in crate::server) fn peer_due(
        &mut self,
        (idx, generation): (usize, u64),
    ) {
        let Some(Some(p)) = self.outbound.peers.get_mut(idx) else {
            return;
        };
        if p.generation != generation {
            return;
        }
        let now = Instant::now();
        if p.deadline > now {
            let d = p.deadline;
            self.core.timers.add(d, Timer::Peer, (idx, generation));
            return;
        }
        if p.closing && p.client.is_closed() {
            return self.peer_close(idx, "done");
        }
        if p.idle {
            return self.quit_idle(idx);
        }
        let why = if p.connected {
            format!("timeout after {} s", self.outbound.policy.timeout)
        } else {
            "connect: timeout".to_string()
        };
        self.peer_lost(idx, &why);
    }

    /// The connection failed: what it was sending is deferred, and its
    /// batch moves on to the next address.
    pub(in crate::server) fn peer_lost(&mut self, idx: usize, why: &str) {
        let Some(Some(p)) = self.outbound.peers.get_mut(idx) else {
            return;
        };
        let actions = p.client.lost(why);
        self.peer_actions(idx, actions);
        self.peer_close(idx, why);
    }

    /// Drops a connection; a batch still on it tries its next address.
    pub(in crate::server) fn peer_close(&mut self, idx: usize, why: &str) {
        let Some(mut p) =
            self.outbound.peers.get_mut(idx).and_then(Option::take)
        else {
            return;
        };
        let _ = self.core.poll.registry().deregister(&mut p.stream);
        if let Some(Body {
            file: Some(file), ..
        }) = p.body.take()
        {
            drop(file);
        }
        self.outbound.open -= 1;
        if let Some(n) = self.outbound.per_dest.get_mut(&p.dest) {
            *n -= 1;
            if *n == 0 {
                self.outbound.per_dest.remove(&p.dest);
            }
        }
        info!(
            "outbound disconnect relay={} messages={} ({why})",
            p.relay(),
            p.sent
        );
        if let Some(key) = p.batch {
            // Nothing came of it: the connection failed before or
            // during the transaction.
            let relay = p.relay();
            let r = local_reply(451, &format!("4.4.2 {relay}: {why}"));
            if let Some(b) = self.outbound.batches.get_mut(&key) {
                b.last = Some((r, Some(relay)));
            }
            self.try_connect(key);
        }
        self.start_waiting();
    }

    /// Batches waiting for a connection get one where the limits now
    /// allow.
    pub(in crate::server) fn start_waiting(&mut self) {
        let waiting: Vec<u64> = self.outbound.waiting.drain(..).collect();
        for key in waiting {
            self.try_connect(key);
        }
    }
}
