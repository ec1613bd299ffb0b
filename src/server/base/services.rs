//! [`Services`]: the local knowledge sessions ask for through
//! [`proto::smtp::Host`](crate::proto::smtp::Host), plus what the loop
//! shares between connections (TLS config, the login limiter). A separate
//! struct from the connections, so the loop can lend both at once.

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::auth::limiter::Limiter;
use crate::config::{Config, Directory};
use crate::outbound::srs;
use crate::proto::imap;
use crate::proto::smtp::{Host, Path, RcptError, Settings};
use crate::util::id;

use crate::server::base::tls;

/// Log lines keep the target they had before the file moved into its
/// folder: a log's format is an interface (filters, RUST_LOG).
const LOG_TARGET: &str = "postling::server::services";

/// Seconds an HTTP request may take to arrive, and a kept-alive
/// connection may wait for the next.
pub const HTTP_TIMEOUT: u64 = 10;

/// Seconds an IMAP connection may wait before it logs in.
pub const IMAP_LOGIN_TIMEOUT: u64 = 180;

/// Which protocol a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// SMTP from the world (25), STARTTLS offered when configured.
    Smtp,
    /// Submission with STARTTLS (587).
    Submission,
    /// Submission over implicit TLS (465).
    Submissions,
    /// POP3 (110), STLS offered when configured.
    Pop3,
    /// POP3 over implicit TLS (995).
    Pop3s,
    /// IMAP (143), STARTTLS offered when configured.
    Imap,
    /// IMAP over implicit TLS (993).
    Imaps,
    /// `postling sendmail` on the local socket: trusted, like a
    /// submission from the host itself.
    Local,
    /// ManageSieve (4190), STARTTLS offered when configured.
    ManageSieve,
    /// The small web listener: client settings, MTA-STS, metrics.
    Http,
    /// The same over TLS.
    Https,
}

impl Service {
    /// The name used in logs.
    pub fn name(self) -> &'static str {
        match self {
            Service::Smtp => "SMTP",
            Service::Submission => "submission",
            Service::Submissions => "submissions",
            Service::Pop3 => "POP3",
            Service::Pop3s => "POP3S",
            Service::Imap => "IMAP",
            Service::Imaps => "IMAPS",
            Service::Local => "local",
            Service::ManageSieve => "ManageSieve",
            Service::Http => "HTTP",
            Service::Https => "HTTPS",
        }
    }

    /// The line a refused connection gets, in the service's own words.
    pub fn refusal(self, hostname: &str, why: &str) -> String {
        if self == Service::ManageSieve {
            return format!(
                "BYE (TRYLATER) \"{hostname} {why}, try later\"\r\n"
            );
        }
        match self.group() {
            Group::Http => "HTTP/1.1 503 Service Unavailable\r\n\
                Content-Length: 0\r\nRetry-After: 60\r\n\
                Connection: close\r\n\r\n"
                .to_string(),
            Group::Pop3 => format!("-ERR [SYS/TEMP] {why}, try later\r\n"),
            Group::Imap => {
                format!("* BYE [UNAVAILABLE] {hostname} {why}, try later\r\n")
            }
            Group::Smtp | Group::Submission => {
                format!("421 4.7.0 {hostname} {why}, try later\r\n")
            }
        }
    }

    /// True if the connection starts with a TLS handshake.
    pub fn implicit_tls(self) -> bool {
        matches!(
            self,
            Service::Submissions
                | Service::Pop3s
                | Service::Imaps
                | Service::Https
        )
    }

    /// The pool of connection slots this service draws from: a flood on
    /// port 25 must not lock users out of submission or POP3.
    pub fn group(self) -> Group {
        match self {
            Service::Smtp => Group::Smtp,
            Service::Submission | Service::Submissions | Service::Local => {
                Group::Submission
            }
            Service::Pop3 | Service::Pop3s => Group::Pop3,
            // Mail clients' other connection: IMAP's slots.
            Service::Imap | Service::Imaps | Service::ManageSieve => {
                Group::Imap
            }
            Service::Http | Service::Https => Group::Http,
        }
    }
}

/// Services that share connection limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Group {
    /// Port 25.
    Smtp,
    /// Ports 587 and 465.
    Submission,
    /// Ports 110 and 995.
    Pop3,
    /// Ports 143 and 993.
    Imap,
    /// The web listener.
    Http,
}

impl Group {
    /// Every group, for per-group counters.
    pub const COUNT: usize = 5;

    /// Index into per-group counters.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Config, users and aliases, TLS, and the login limiter.
pub struct Services {
    /// The configuration as loaded at start.
    pub config: Rc<Config>,
    /// Users and aliases; replaced on SIGHUP.
    pub directory: Arc<Directory>,
    /// TLS, if a certificate is configured; replaced on SIGHUP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The same for HTTPS (ALPN `http/1.1`).
    pub https_tls: Option<Arc<rustls::ServerConfig>>,
    /// What the web listener's pages say of this server.
    pub site: Rc<crate::proto::http::pages::Site>,
    /// What the server has done, for `status` and `/metrics`.
    pub stats: crate::server::base::stats::Stats,
    /// When the certificate in use expires (epoch seconds).
    pub cert_expiry: Option<i64>,
    /// Failed logins by client address.
    pub limiter: Limiter,
    /// Logins verified lately (dropped on reload).
    pub auth_cache: crate::auth::cache::AuthCache,
    /// Mailboxes held by a POP3 session (RFC 1939 8: one at a time).
    pub pop3_locks: std::collections::HashSet<String>,
    /// DKIM signers for mail we queue, by domain.
    pub dkim: Arc<[crate::proto::dkim::sign::Signer]>,
    /// The SRS secret (made at first start, kept in data_dir).
    pub srs_secret: Vec<u8>,
    /// SRS addresses refused since the loop last looked: each counts
    /// against the client in the limiter, so hashes cannot be guessed.
    pub srs_refused: u32,
    room: Room,
    /// Greylisting, if on (loaded at start, written out by a helper).
    pub greylist: Option<crate::inbound::greylist::Greylist>,
    pub(in crate::server) smtp: Rc<Settings>,
    pub(in crate::server) submission: Rc<Settings>,
    pub(in crate::server) imap: Rc<imap::Settings>,
}

impl Services {
    /// Services for `config`: loads TLS if configured.
    pub fn new(
        config: Config,
        directory: Directory,
    ) -> Result<Services, String> {
        let tls = match config.tls_pair() {
            Some((cert, key)) => Some(tls::load(&cert, &key)?),
            None => None,
        };
        let dkim = Arc::from(config.dkim_signers()?);
        let settings = |submission| {
            Rc::new(Settings {
                hostname: config.hostname.clone(),
                max_message_size: config.max_message_size,
                max_recipients: config.max_recipients,
                submission,
                starttls: tls.is_some(),
            })
        };
        let (smtp, submission) = (settings(false), settings(true));
        let imap = Rc::new(imap::Settings {
            hostname: config.hostname.clone(),
            starttls: tls.is_some(),
            append_limit: config.max_message_size,
        });
        let limiter = Limiter::new(
            config.auth_failure_limit,
            Duration::from_secs(config.auth_failure_window),
        );
        let auth_cache = crate::auth::cache::AuthCache::new(
            Duration::from_secs(config.auth_cache_ttl),
        );
        let site = Rc::new(site(&config, tls.is_some(), &|_| None));
        Ok(Services {
            https_tls: tls.as_ref().map(tls::for_http),
            cert_expiry: config.tls_pair().and_then(|(c, _)| tls::expiry(&c)),
            site,
            stats: crate::server::base::stats::Stats::new(Instant::now()),
            auth_cache,
            room: Room::default(),
            config: Rc::new(config),
            directory: Arc::new(directory),
            tls,
            limiter,
            pop3_locks: Default::default(),
            dkim,
            srs_secret: Vec::new(),
            srs_refused: 0,
            greylist: None,
            smtp,
            submission,
            imap,
        })
    }

    /// Idle seconds allowed on a `service` connection.
    pub fn idle_timeout(&self, service: Service) -> std::time::Duration {
        let cfg = &self.config;
        let secs = match service.group() {
            Group::Pop3 => cfg.pop3_timeout,
            // RFC 9051 5.4's 30 minutes are for a logged-in session; a
            // connection that has not logged in holds a slot for less.
            Group::Imap => IMAP_LOGIN_TIMEOUT.min(cfg.imap_timeout),
            Group::Smtp | Group::Submission => cfg.smtp_timeout,
            // A request must arrive whole within this (see read_and_feed).
            Group::Http => HTTP_TIMEOUT,
        };
        std::time::Duration::from_secs(secs)
    }

    /// Re-reads users, aliases and the TLS certificate; whatever has a
    /// problem keeps its old version, and the log says why.
    pub fn reload(&mut self) {
        match self.config.directory() {
            Ok(d) => {
                log::info!(target: LOG_TARGET, "reloaded: {} users", d.users.len());
                self.directory = Arc::new(d);
                self.auth_cache.clear();
            }
            Err(problems) => {
                log::error!(target: LOG_TARGET, "reload failed, keeping old users and aliases:");
                for p in problems.0 {
                    log::error!(target: LOG_TARGET, "{p}");
                }
            }
        }
        self.reload_tls();
    }
}

/// What the web pages say: our name, domains, and for each kind of
/// client service the port to use (implicit TLS first, as RFC 8314
/// prefers; STARTTLS else; plain only with no certificate). `bound`
/// gives a listener's actual port (a configured port 0 is chosen at
/// bind time).
pub fn site(
    cfg: &Config,
    tls: bool,
    bound: &dyn Fn(Service) -> Option<u16>,
) -> crate::proto::http::pages::Site {
    use crate::proto::http::pages::{Endpoint, Security, Site};
    let port = |service: Service, addrs: &[std::net::SocketAddr]| {
        bound(service).or(addrs.first().map(|a| a.port()))
    };
    let pick = |implicit: Option<u16>, starttls: Option<u16>| {
        let secure = if tls {
            Security::StartTls
        } else {
            Security::Plain
        };
        match (implicit, starttls) {
            (Some(port), _) if tls => Some(Endpoint {
                port,
                security: Security::Implicit,
            }),
            (_, Some(port)) => Some(Endpoint {
                port,
                security: secure,
            }),
            _ => None,
        }
    };
    Site {
        hostname: cfg.hostname.clone(),
        domains: cfg.domains.clone(),
        imap: pick(
            port(Service::Imaps, &cfg.listen_imaps),
            port(Service::Imap, &cfg.listen_imap),
        ),
        pop3: pick(
            port(Service::Pop3s, &cfg.listen_pop3s),
            port(Service::Pop3, &cfg.listen_pop3),
        ),
        submission: pick(
            port(Service::Submissions, &cfg.listen_submissions),
            port(Service::Submission, &cfg.listen_submission),
        ),
        sts_mode: cfg.web.mta_sts_mode,
        sts_max_age: cfg.web.mta_sts_max_age,
        challenges: None,
    }
}

impl Services {
    /// Loads the certificate again (after SIGHUP, or ACME's renewal):
    /// new connections get it, open ones keep theirs; a bad pair keeps
    /// the old one, and the log says why.
    pub fn reload_tls(&mut self) {
        let Some((cert, key)) = self.config.tls_pair() else {
            return;
        };
        match tls::load(&cert, &key) {
            Ok(t) => {
                log::info!(target: LOG_TARGET, "reloaded TLS certificate {}", cert.display());
                self.https_tls = Some(tls::for_http(&t));
                self.tls = Some(t);
                self.cert_expiry = tls::expiry(&cert);
            }
            Err(e) => log::error!(target: LOG_TARGET,
                "TLS reload failed, keeping the old certificate: {e}"
            ),
        }
    }
}

impl Host for Services {
    fn resolve(&mut self, to: &Path) -> Result<Vec<String>, RcptError> {
        let ours = self.config.domains.iter().any(|d| d == to.domain());
        if ours && srs::is_srs(to.local()) {
            // A bounce to mail we forwarded: back to its sender.
            return srs::reverse(&self.srs_secret, to.local(), today())
                .map(|original| vec![original])
                .map_err(|_| {
                    self.srs_refused += 1;
                    RcptError::InvalidSrs
                });
        }
        self.directory.resolve(to)
    }

    fn may_send_as(&mut self, user: &str, from: &Path) -> bool {
        self.directory.may_send_as(user, from)
    }

    /// From the quota file alone (a small read; a mailbox without one
    /// yet is not refused here, and delivery checks again).
    fn over_quota(&mut self, mailboxes: &[String], size: u64) -> bool {
        mailboxes.iter().any(|user| {
            let limit =
                self.directory.quota(user, self.config.filtering.quota);
            limit > 0
                && crate::store::quota::known(&self.config.mailbox_dir(user))
                    .is_some_and(|u| u.bytes >= limit || !u.fits(size, limit))
        })
    }

    fn local_may_send_as(&mut self, uid: u32, from: &Path) -> bool {
        let server = rustix::process::getuid().as_raw();
        self.directory
            .senders
            .may_send_as(uid, server, &from.to_string())
    }

    fn queue_id(&mut self) -> String {
        id::queue_id()
    }

    fn has_room(&mut self) -> bool {
        self.room
            .check(&self.config.data_dir, self.config.min_free_space)
    }

    fn greylisted(
        &mut self,
        peer: std::net::IpAddr,
        from: &str,
        to: &Path,
    ) -> Option<u64> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        match self
            .greylist
            .as_mut()?
            .check(peer, from, &to.to_string(), now)
        {
            crate::inbound::greylist::Decision::Pass => None,
            crate::inbound::greylist::Decision::Defer(wait) => Some(wait),
        }
    }
}

/// Days since the epoch, the clock of SRS addresses.
pub fn today() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400)
}

/// The free-space check behind `min_free_space`, asked at every MAIL but
/// made at most once a second (one statvfs).
#[derive(Debug, Default)]
pub struct Room {
    checked: Option<(Instant, bool)>,
}

impl Room {
    fn check(&mut self, dir: &std::path::Path, min: u64) -> bool {
        if min == 0 {
            return true;
        }
        let now = Instant::now();
        if let Some((at, ok)) = self.checked
            && now.duration_since(at) < Duration::from_secs(1)
        {
            return ok;
        }
        let ok = match rustix::fs::statvfs(dir) {
            Ok(v) => v.f_bavail.saturating_mul(v.f_frsize) >= min,
            // Cannot tell: let delivery find out and say so.
            Err(_) => true,
        };
        if !ok {
            log::warn!(target: LOG_TARGET,
                "less than min_free_space free in {}: refusing mail",
                dir.display()
            );
        }
        self.checked = Some((now, ok));
        ok
    }
}
