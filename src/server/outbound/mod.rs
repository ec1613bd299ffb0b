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

pub(in crate::server) mod dns;
mod drive;
pub(in crate::server) mod notice;
pub(in crate::server) mod peer;
pub(in crate::server) mod queue_work;
mod results;
mod routing;
pub(in crate::server) mod tls_client;

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
use crate::server::LOCAL;
use crate::server::Server;
use crate::server::base::conn::WBUF_CAP;
use crate::server::base::readers::{ReadJob, Source};
use crate::server::base::timer::Timer;
use crate::server::base::tls_io::Input;
use crate::server::outbound::dns::Waiter;
use crate::server::outbound::peer::{Body, Peer};
use crate::server::outbound::queue_work::{
    Attempted, QueueDone, QueueHelper, QueueJob, Ready,
};
use crate::server::outbound::tls_client::ClientTls;
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
    /// Messages under way when a flush was asked (the scan passes them
    /// by): each is tried again once its attempt is recorded, if some
    /// recipient is still deferred, or an ETRN just after a deferral
    /// would wait for the next retry.
    flush_busy: std::collections::HashSet<String>,
    /// More messages were due than one scan hands over.
    more_due: bool,
    /// The run timer that is armed.
    armed: Option<Instant>,
    /// Notices that met a locked mailbox, to try again.
    pub parked_notices: Vec<crate::deliver::Job>,
    /// DNS lookups in flight.
    pub(in crate::server) dns: crate::server::outbound::dns::Dns,
    /// Requests for the figures, waiting for the queue's count.
    pub(in crate::server) figures_wanted: Vec<crate::server::figures::Wanted>,
}

impl Outbound {
    /// Outbound state for `policy`, its helper started.
    pub fn new(
        policy: Policy,
        login: Option<(String, String)>,
        helper: QueueHelper,
        dns: crate::server::outbound::dns::Dns,
    ) -> Outbound {
        Outbound {
            dns,
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
            flush_busy: Default::default(),
            more_due: false,
            figures_wanted: Vec::new(),
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
    crate::outbound::srs::forward(
        secret,
        from,
        ours,
        crate::server::base::services::today(),
    )
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
    pub(in crate::server) fn queue_run(&mut self) {
        if self.core.draining.is_some() {
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

    /// Messages just queued are due at once: the helper reads them
    /// alone, not the whole queue.
    pub(in crate::server) fn queue_fresh(&mut self, ids: Vec<String>) {
        if self.core.draining.is_some() || ids.is_empty() {
            return;
        }
        self.outbound.helper.send(QueueJob::Fresh {
            queue: self.services.config.queue_dir(),
            ids,
        });
    }

    /// Every message due now, whatever its schedule says.
    pub(in crate::server) fn queue_flush(&mut self) {
        info!("queue flush");
        self.outbound.flush = true;
        let busy = self.outbound.attempts.keys().cloned();
        self.outbound.flush_busy.extend(busy);
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
        self.core.timers.add(
            at,
            Timer::QueueRun,
            crate::server::base::timer::NOBODY,
        );
    }

    /// The run timer came.
    pub(in crate::server) fn queue_run_due(&mut self) {
        self.outbound.armed = None;
        self.queue_run();
        self.queue_run_at(Instant::now() + RUN_EVERY);
    }

    /// Stopping: idle connections say QUIT, and batches not yet on a
    /// connection end as deferred, so that each message under way is
    /// recorded; transactions under way finish (within the grace).
    pub(in crate::server) fn outbound_drain(&mut self) {
        let idle: Vec<usize> = (0..self.outbound.peers.len())
            .filter(|&i| {
                self.outbound.peers[i].as_ref().is_some_and(|p| p.idle)
            })
            .collect();
        for idx in idle {
            self.quit_idle(idx);
        }
        let on_connections: Vec<u64> = self
            .outbound
            .peers
            .iter()
            .flatten()
            .filter_map(|p| p.batch)
            .collect();
        let unsent: Vec<u64> = self
            .outbound
            .batches
            .keys()
            .copied()
            .filter(|k| !on_connections.contains(k))
            .collect();
        self.outbound.waiting.clear();
        for key in unsent {
            let r = local_reply(451, "4.3.2 the server is stopping");
            self.batch_over(key, Outcome::Deferred(r), None);
        }
    }

    /// True once nothing sent is waiting to be recorded.
    pub(in crate::server) fn outbound_settled(&self) -> bool {
        self.outbound.attempts.is_empty()
    }

    /// Jobs waiting for the queue helper.
    pub(in crate::server) fn queue_helper_depth(&self) -> usize {
        self.outbound.helper.depth()
    }

    /// Asks the queue helper to count the queue.
    pub(in crate::server) fn queue_count(&self) {
        let queue = self.services.config.queue_dir();
        self.outbound.helper.send(QueueJob::Count { queue });
    }

    /// When a message is next due (epoch seconds): wake then.
    fn queue_due_at(&mut self, next: i64) {
        let wait = (next - epoch_now()).max(0) as u64;
        self.queue_run_at(Instant::now() + Duration::from_secs(wait));
    }

    /// The queue helper's results.
    pub(in crate::server) fn finish_queue_work(&mut self) {
        let done: Vec<QueueDone> = self.outbound.helper.finished().collect();
        for d in done {
            match d {
                QueueDone::Due {
                    full,
                    ready,
                    more,
                    next,
                } => {
                    if full {
                        self.outbound.scanning = false;
                        self.outbound.more_due = more;
                    }
                    if let Some(next) = next {
                        self.queue_due_at(next);
                    }
                    // Nothing new starts while stopping.
                    if self.core.draining.is_none() {
                        for r in ready {
                            self.start_attempt(r);
                        }
                    }
                    if self.outbound.rescan {
                        self.queue_run();
                    }
                }
                QueueDone::Counted(counted) => self.queue_counted(counted),
                QueueDone::Recorded { id, notices, next } => {
                    self.outbound.attempts.remove(&id);
                    let flushed = self.outbound.flush_busy.remove(&id);
                    if let Some(next) = next {
                        match flushed {
                            true => self.queue_fresh(vec![id]),
                            false => self.queue_due_at(next),
                        }
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
        if groups.is_empty() {
            // No recipient left to try (a queue file without any): an
            // attempt would never end, and would hold up a stop.
            return;
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
                    .filter(|_| cfg.outbound.notify_double_bounce)
                    .map(|d| format!("postmaster@{d}"))
                    .unwrap_or_default(),
            })));
    }
}
