//! The loop's side of sending mail out. The queue helper names the
//! messages due; each message's open recipients are grouped by
//! destination (their domain, or the smarthost) into batches; a batch
//! finds its MX hosts and their addresses through our resolver, then
//! gets a connection to the first address that answers (a new one, or
//! one to the same destination that just finished a message), and the
//! SMTP client sends it, in one transaction for all its recipients.
//! When every batch of a message is done, the helper records the
//! results durably and writes any notice the sender is owed.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use log::{info, warn};
use mio::net::TcpStream;
use mio::{Interest, Token};

use super::Server;
use super::dns::Waiter;
use super::peer::{Body, Peer};
use super::queue_work::{Attempted, QueueDone, QueueHelper, QueueJob, Ready};
use super::readers::{ReadJob, Source};
use super::timer::Timer;
use super::tls_client::ClientTls;
use super::tls_io::Input;
use crate::config::outbound::{Outbound as Policy, SmarthostTls};
use crate::proto::dns::cache::Found;
use crate::proto::dns::resolver::Failure;
use crate::proto::dns::route::{self, Route};
use crate::proto::dns::wire::{Qtype, Rec};
use crate::proto::pop3::transfer::Encoder;
use crate::proto::smtp::client::reply::Reply;
use crate::proto::smtp::client::session::{
    Action, Client, Message, Outcome, TlsPolicy, local_reply,
};
use crate::store::queue_state::Rcpt;
use crate::util::logsafe::Quoted;

/// Peer i has token OUT_BASE + i (up to the local socket's token).
pub const OUT_BASE: usize = 1 << 13;
/// Time to set up a TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a connection waits, idle, for another message to its
/// destination (Postfix's connection cache waits 2 s too).
const KEEP_IDLE: Duration = Duration::from_secs(2);
/// Time for the QUIT exchange.
const QUIT_TIMEOUT: Duration = Duration::from_secs(10);
/// The queue is looked at this often even when nothing says to.
const RUN_EVERY: Duration = Duration::from_secs(300);

/// A message being attempted.
struct Attempt {
    ready: Ready,
    /// Batches not yet done.
    left: usize,
    /// The server each recipient's reply came from.
    remotes: Vec<Option<String>>,
    /// Recipients refused for good in this attempt.
    refused: Vec<usize>,
}

/// One destination's recipients of one message.
struct Batch {
    /// The message's queue id.
    msg: String,
    /// Its destination: the domain, or `[smarthost]`.
    dest: String,
    /// The domain (for the implicit MX).
    domain: String,
    /// Indexes of its recipients in the message.
    rcpts: Vec<usize>,
    /// Hosts still to try, best first.
    hosts: VecDeque<String>,
    /// The host being tried.
    host: String,
    /// Its addresses still to try.
    addrs: VecDeque<SocketAddr>,
    /// Address lookups under way.
    lookups: u8,
    /// Addresses found so far (IPv6 first, then IPv4).
    found: Vec<IpAddr>,
    /// Why the last host or address failed.
    last: Option<(Reply, Option<String>)>,
    /// An address lookup failed (rather than finding none).
    lookup_failed: Option<String>,
}

/// Outbound state in the loop.
pub struct Outbound {
    policy: Arc<Policy>,
    helper: QueueHelper,
    tls: ClientTls,
    /// The smarthost's user name and password.
    login: Option<(String, String)>,
    attempts: HashMap<String, Attempt>,
    batches: HashMap<u64, Batch>,
    next_batch: u64,
    peers: Vec<Option<Peer>>,
    open: usize,
    per_dest: HashMap<String, usize>,
    /// Batches with addresses, waiting for a connection.
    waiting: VecDeque<u64>,
    /// A scan is with the helper.
    scanning: bool,
    /// Scan again when it is back (something was queued meanwhile).
    rescan: bool,
    /// The next scan treats every message as due.
    flush: bool,
    /// More messages were due than one scan hands over.
    more_due: bool,
    /// The run timer that is armed.
    armed: Option<Instant>,
    /// Notices that met a locked mailbox, to try again.
    pub parked_notices: Vec<crate::deliver::Job>,
}

impl Outbound {
    /// Outbound state for `policy`, its helper started.
    pub fn new(
        policy: Policy,
        login: Option<(String, String)>,
        helper: QueueHelper,
    ) -> Outbound {
        Outbound {
            policy: Arc::new(policy),
            helper,
            tls: ClientTls::load(),
            login,
            attempts: HashMap::new(),
            batches: HashMap::new(),
            next_batch: 0,
            peers: Vec::new(),
            open: 0,
            per_dest: HashMap::new(),
            waiting: VecDeque::new(),
            scanning: false,
            rescan: false,
            flush: false,
            more_due: false,
            armed: None,
            parked_notices: Vec::new(),
        }
    }

    /// Stops the helper.
    pub fn stop(self) {
        self.helper.stop();
    }

    /// True if `key` names one of our connections.
    pub fn owns(&self, (idx, generation): (usize, u64)) -> bool {
        self.peers
            .get(idx)
            .and_then(Option::as_ref)
            .is_some_and(|p| p.generation == generation)
    }
}

/// The smarthost's `username password`, from a file only we may read.
pub fn read_login(path: &std::path::Path) -> Result<(String, String), String> {
    use std::os::unix::fs::MetadataExt;
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("{shown}: {e}"))?;
    if meta.mode() & 0o077 != 0 {
        return Err(format!(
            "{shown}: readable by others (mode {:o}); chmod 600 it",
            meta.mode() & 0o777
        ));
    }
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("{shown}: {e}"))?;
    // The password is the rest of the line: it may hold spaces.
    let line = text.lines().next().unwrap_or("").trim();
    match line.split_once(char::is_whitespace) {
        Some((u, p)) if !p.trim().is_empty() => {
            Ok((u.to_string(), p.trim().to_string()))
        }
        _ => Err(format!("{shown}: expected 'username password'")),
    }
}

/// The envelope sender of a forwarded copy: `<>` and our own domains'
/// senders stay as they are (our SPF covers them); anyone else's is
/// rewritten with SRS at our first domain.
pub fn forward_sender(
    cfg: &crate::config::Config,
    secret: &[u8],
    from: &str,
) -> String {
    if from.is_empty() || cfg.is_local_address(from) {
        return from.to_string();
    }
    let ours = cfg.domains.first().map_or("", String::as_str);
    crate::outbound::srs::forward(secret, from, ours, super::services::today())
}

/// The SRS secret: made (32 random octets) at first start, then kept in
/// `{data_dir}/postling-srs-secret` so addresses stay valid across
/// restarts.
pub fn srs_secret(data_dir: &std::path::Path) -> std::io::Result<Vec<u8>> {
    let path = data_dir.join("postling-srs-secret");
    match std::fs::read(&path) {
        Ok(s) if s.len() >= 16 => return Ok(s),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut secret = vec![0u8; 32];
    ring::rand::SecureRandom::fill(
        &ring::rand::SystemRandom::new(),
        &mut secret,
    )
    .map_err(|_| std::io::Error::other("no random numbers"))?;
    crate::util::fs::atomic_write(&path, &secret)?;
    Ok(secret)
}

fn epoch_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A number below `n`, for the order among MX hosts of equal preference.
fn random_below(n: usize) -> usize {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_usize(n);
    (h.finish() % n.max(1) as u64) as usize
}

impl Server {
    /// Looks at the queue now: at start, after a message was queued,
    /// when a timer says so, and on `postling queue flush`.
    pub(super) fn queue_run(&mut self) {
        if self.draining.is_some() {
            return;
        }
        let out = &mut self.outbound;
        if out.scanning {
            out.rescan = true;
            return;
        }
        out.scanning = true;
        out.rescan = false;
        let busy = out.attempts.keys().cloned().collect();
        out.helper.send(QueueJob::Scan {
            queue: self.services.config.queue_dir(),
            busy,
            everything: std::mem::take(&mut out.flush),
        });
    }

    /// Every message due now, whatever its schedule says.
    pub(super) fn queue_flush(&mut self) {
        info!("queue flush");
        self.outbound.flush = true;
        self.queue_run();
    }

    /// Arms the run timer for `at`, unless an earlier one is armed.
    fn queue_run_at(&mut self, at: Instant) {
        let now = Instant::now();
        let armed = self.outbound.armed.filter(|a| *a > now);
        if armed.is_some_and(|a| a <= at) {
            return;
        }
        self.outbound.armed = Some(at);
        self.timers.add(at, Timer::QueueRun, super::imap::NOBODY);
    }

    /// The run timer came.
    pub(super) fn queue_run_due(&mut self) {
        self.outbound.armed = None;
        self.queue_run();
        self.queue_run_at(Instant::now() + RUN_EVERY);
    }

    /// When a message is next due (epoch seconds): wake then.
    fn queue_due_at(&mut self, next: i64) {
        let wait = (next - epoch_now()).max(0) as u64;
        self.queue_run_at(Instant::now() + Duration::from_secs(wait));
    }

    /// The queue helper's results.
    pub(super) fn finish_queue_work(&mut self) {
        let done: Vec<QueueDone> = self.outbound.helper.finished().collect();
        for d in done {
            match d {
                QueueDone::Due { ready, more, next } => {
                    self.outbound.scanning = false;
                    self.outbound.more_due = more;
                    if let Some(next) = next {
                        self.queue_due_at(next);
                    }
                    for r in ready {
                        self.start_attempt(r);
                    }
                    if self.outbound.rescan {
                        self.queue_run();
                    }
                }
                QueueDone::Recorded { id, notices, next } => {
                    self.outbound.attempts.remove(&id);
                    if let Some(next) = next {
                        self.queue_due_at(next);
                    }
                    for (to, text) in notices {
                        self.send_notice(&to, text);
                    }
                    if self.outbound.more_due
                        && self.outbound.attempts.len() < 100
                    {
                        self.outbound.more_due = false;
                        self.queue_run();
                    }
                }
            }
        }
    }

    /// Groups a message's open recipients by destination and starts a
    /// batch for each.
    fn start_attempt(&mut self, ready: Ready) {
        let id = ready.queued.id.clone();
        if self.outbound.attempts.contains_key(&id) {
            return;
        }
        let smarthost = self.outbound.policy.smarthost.clone();
        let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
        for (i, (addr, state, _)) in ready.queued.rcpts.iter().enumerate() {
            if !state.open() {
                continue;
            }
            let domain = addr
                .rsplit_once('@')
                .map_or(String::new(), |(_, d)| d.to_ascii_lowercase());
            match groups.iter_mut().find(|g| g.0 == domain) {
                Some(g) => g.1.push(i),
                None => groups.push((domain, vec![i])),
            }
        }
        if smarthost.is_some() && groups.len() > 1 {
            // One transaction carries them all to the smarthost.
            let all = groups.iter().flat_map(|g| g.1.clone()).collect();
            groups = vec![(String::new(), all)];
        }
        let n = ready.queued.rcpts.len();
        self.outbound.attempts.insert(
            id.clone(),
            Attempt {
                ready,
                left: groups.len(),
                remotes: vec![None; n],
                refused: Vec::new(),
            },
        );
        for (domain, rcpts) in groups {
            let key = self.outbound.next_batch;
            self.outbound.next_batch += 1;
            let dest = match &smarthost {
                Some((h, p)) => format!("[{h}]:{p}"),
                None => domain.clone(),
            };
            self.outbound.batches.insert(
                key,
                Batch {
                    msg: id.clone(),
                    dest,
                    domain: domain.clone(),
                    rcpts,
                    hosts: VecDeque::new(),
                    host: String::new(),
                    addrs: VecDeque::new(),
                    lookups: 0,
                    found: Vec::new(),
                    last: None,
                    lookup_failed: None,
                },
            );
            match &smarthost {
                Some((host, _)) => {
                    if let Some(b) = self.outbound.batches.get_mut(&key) {
                        b.hosts.push_back(host.clone());
                    }
                    self.next_host(key);
                }
                None if domain.is_empty() => self.batch_over(
                    key,
                    Outcome::Bounced(local_reply(
                        550,
                        "5.1.3 no domain in the address",
                    )),
                    None,
                ),
                None => self.dns_lookup(&domain, Qtype::Mx, Waiter::Mx(key)),
            }
        }
    }

    /// The MX answer for a batch's domain.
    pub(super) fn mx_found(
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
    fn next_host(&mut self, key: u64) {
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
    pub(super) fn addr_found(
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
    fn try_connect(&mut self, key: u64) {
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
    fn reuse(&mut self, idx: usize, key: u64) {
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
    fn quit_one_idle(&mut self) {
        let idle = self
            .outbound
            .peers
            .iter()
            .position(|p| p.as_ref().is_some_and(|p| p.idle));
        if let Some(idx) = idle {
            self.quit_idle(idx);
        }
    }

    fn quit_idle(&mut self, idx: usize) {
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
    fn connect(
        &mut self,
        key: u64,
        dest: &str,
        host: &str,
        addr: SocketAddr,
    ) -> std::io::Result<()> {
        let idx = match self.outbound.peers.iter().position(Option::is_none) {
            Some(i) => i,
            None if OUT_BASE + self.outbound.peers.len() < super::LOCAL.0 => {
                self.outbound.peers.push(None);
                self.outbound.peers.len() - 1
            }
            None => return Err(std::io::Error::other("no connection slot")),
        };
        let mut stream = TcpStream::connect(addr)?;
        self.poll.registry().register(
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
        self.next_id += 1;
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        self.outbound.peers[idx] = Some(Peer {
            generation: self.next_id,
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
        self.timers.add(deadline, Timer::Peer, (idx, self.next_id));
        self.outbound.open += 1;
        *self.outbound.per_dest.entry(dest.to_string()).or_insert(0) += 1;
        Ok(())
    }

    /// A connection of ours is ready.
    pub(super) fn on_peer_event(
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
                    self.timers.add(deadline, Timer::Peer, (idx, generation));
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
    fn peer_drive(&mut self, idx: usize) {
        loop {
            let Some(Some(p)) = self.outbound.peers.get_mut(idx) else {
                return;
            };
            let got = p.read(&mut self.scratch);
            let actions = match got {
                Input::Data(n) => {
                    p.deadline = Instant::now()
                        + Duration::from_secs(self.outbound.policy.timeout);
                    let mut input = std::mem::take(&mut p.rbuf);
                    input.extend_from_slice(&self.scratch[..n]);
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
                Input::Gone => {
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
    fn peer_actions(&mut self, idx: usize, actions: Vec<Action>) {
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
    fn batch_message(&self, idx: usize) -> Option<Message> {
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
    fn start_body(&mut self, idx: usize) {
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
        self.readers.send(ReadJob {
            key: (idx, p.generation),
            source: Source::Path { path, offset },
            mbox: None,
        });
    }

    /// A chunk of a body arrived from a reader helper.
    pub(super) fn peer_chunk(
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
    fn peer_pump(&mut self, idx: usize) {
        let Some(Some(p)) = self.outbound.peers.get_mut(idx) else {
            return;
        };
        let Some(body) = p.body.as_mut() else {
            return;
        };
        if body.reading || p.wbuf.len() >= super::conn::WBUF_CAP {
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
            self.readers.send(ReadJob {
                key: (idx, p.generation),
                source: Source::Next { file, left },
                mbox: None,
            });
        }
    }

    /// Writes what the connection has, keeps the body flowing, and
    /// closes once a finished connection has said all it had to.
    fn peer_flush(&mut self, idx: usize) {
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
                && p.wbuf.len() < super::conn::WBUF_CAP;
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
            self.timers.add(d, Timer::Peer, (idx, g));
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
    pub(super) fn peer_due(&mut self, (idx, generation): (usize, u64)) {
        let Some(Some(p)) = self.outbound.peers.get_mut(idx) else {
            return;
        };
        if p.generation != generation {
            return;
        }
        let now = Instant::now();
        if p.deadline > now {
            let d = p.deadline;
            self.timers.add(d, Timer::Peer, (idx, generation));
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
    fn peer_lost(&mut self, idx: usize, why: &str) {
        let Some(Some(p)) = self.outbound.peers.get_mut(idx) else {
            return;
        };
        let actions = p.client.lost(why);
        self.peer_actions(idx, actions);
        self.peer_close(idx, why);
    }

    /// Drops a connection; a batch still on it tries its next address.
    fn peer_close(&mut self, idx: usize, why: &str) {
        let Some(mut p) =
            self.outbound.peers.get_mut(idx).and_then(Option::take)
        else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut p.stream);
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
    fn start_waiting(&mut self) {
        let waiting: Vec<u64> = self.outbound.waiting.drain(..).collect();
        for key in waiting {
            self.try_connect(key);
        }
    }

    /// A transaction ended. Its outcomes are the batch's, unless the
    /// connection failed (then the next address is tried). The
    /// connection goes on with a batch waiting for the same destination,
    /// or says QUIT.
    fn batch_finished(
        &mut self,
        idx: usize,
        outcomes: Vec<Outcome>,
    ) -> Vec<Action> {
        let Some(Some(p)) = self.outbound.peers.get_mut(idx) else {
            return Vec::new();
        };
        let failed = p.client.is_closed()
            && outcomes.iter().all(|o| matches!(o, Outcome::Deferred(_)));
        if failed {
            // peer_close moves the batch on.
            return Vec::new();
        }
        let Some(key) = p.batch.take() else {
            return Vec::new();
        };
        p.sent += 1;
        let relay = p.relay();
        let tls = p.tls_word();
        self.batch_results(key, &outcomes, &relay, tls);
        // Reuse: the next batch for this destination.
        let dest = match self.outbound.peers.get(idx) {
            Some(Some(p)) => p.dest.clone(),
            _ => return Vec::new(),
        };
        let next = self.outbound.waiting.iter().position(|k| {
            self.outbound.batches.get(k).is_some_and(|b| b.dest == dest)
        });
        let Some(Some(p)) = self.outbound.peers.get_mut(idx) else {
            return Vec::new();
        };
        if let Some(pos) = next
            && let Some(k) = self.outbound.waiting.remove(pos)
        {
            p.batch = Some(k);
            return vec![Action::Ready];
        }
        // Kept a moment for the next message to this destination.
        p.idle = true;
        p.deadline = Instant::now() + KEEP_IDLE;
        let (g, d) = (p.generation, p.deadline);
        self.timers.add(d, Timer::Peer, (idx, g));
        Vec::new()
    }

    /// Records each recipient's outcome in its message, and logs it.
    fn batch_results(
        &mut self,
        key: u64,
        outcomes: &[Outcome],
        relay: &str,
        tls: &str,
    ) {
        let Some(b) = self.outbound.batches.remove(&key) else {
            return;
        };
        let Some(a) = self.outbound.attempts.get_mut(&b.msg) else {
            return;
        };
        let delay = (epoch_now() - a.ready.queued.created).max(0);
        for (n, &i) in b.rcpts.iter().enumerate() {
            let Some(outcome) = outcomes.get(n) else {
                continue;
            };
            let (state, reply, word) = match outcome {
                Outcome::Sent(r) => (Rcpt::Delivered, r, "sent"),
                Outcome::Deferred(r) => (Rcpt::Deferred, r, "deferred"),
                Outcome::Bounced(r) => (Rcpt::Bounced, r, "bounced"),
            };
            let line = reply.one_line();
            info!(
                "outbound id={} to={} relay={relay} delay={delay}s tls={tls} result={word} reply={}",
                b.msg,
                Quoted(&format!("<{}>", a.ready.queued.rcpts[i].0)),
                Quoted(&line)
            );
            let r = &mut a.ready.queued.rcpts[i];
            r.1 = state;
            r.2 = line;
            if !relay.is_empty() {
                a.remotes[i] = Some(relay.to_string());
            }
            if state == Rcpt::Bounced {
                a.refused.push(i);
            }
        }
        self.attempt_step(&b.msg);
    }

    /// A batch ended without a transaction: every recipient gets
    /// `outcome`.
    fn batch_over(
        &mut self,
        key: u64,
        outcome: Outcome,
        remote: Option<String>,
    ) {
        let n = self.outbound.batches.get(&key).map_or(0, |b| b.rcpts.len());
        let outcomes = vec![outcome; n];
        let relay = remote.unwrap_or_default();
        self.batch_results(key, &outcomes, &relay, "none");
    }

    /// One batch of a message is done: when all are, record it.
    fn attempt_step(&mut self, id: &str) {
        let Some(a) = self.outbound.attempts.get_mut(id) else {
            return;
        };
        a.left = a.left.saturating_sub(1);
        if a.left > 0 {
            return;
        }
        let cfg = &self.services.config;
        self.outbound
            .helper
            .send(QueueJob::Record(Box::new(Attempted {
                queue: cfg.queue_dir(),
                queued: a.ready.queued.clone(),
                path: a.ready.path.clone(),
                refused: std::mem::take(&mut a.refused),
                remotes: a.remotes.clone(),
                policy: Arc::clone(&self.outbound.policy),
                hostname: cfg.hostname.clone(),
                postmaster: cfg
                    .domains
                    .first()
                    .map(|d| format!("postmaster@{d}"))
                    .unwrap_or_default(),
            })));
    }
}
