//! Configuration: the main file ([`Config`]), the users and aliases files,
//! and the [`Directory`] that answers "who gets mail for this address?".
//!
//! Every problem is reported as `FILE:LINE: message`, all of them at
//! once. Depends on std::fs and `proto`.

pub mod acme;
pub mod aliases;
pub mod directory;
pub mod filtering;
pub mod inbound;
pub mod lexer;
pub mod local_senders;
pub mod milter;
pub mod net;
pub mod outbound;
pub mod spam;
pub mod users;
pub mod web;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub use directory::Directory;
pub use lexer::{Problem, Problems};
pub use net::Cidr;

/// Where `serve` and `check` look without `-c`.
pub const DEFAULT_PATH: &str = "/etc/postling/postling.conf";

/// How mailboxes are stored on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailboxFormat {
    /// One file per message in `tmp/`, `new/`, `cur/`.
    Maildir,
    /// One `INBOX` file, mboxrd.
    Mbox,
}

/// The resolved configuration, defaults applied, paths absolute.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this came from.
    pub path: PathBuf,
    /// Our name in greetings and Received.
    pub hostname: String,
    /// Local domains, lower case.
    pub domains: Vec<String>,
    /// Mail lives under `{data_dir}/mail/`.
    pub data_dir: PathBuf,
    /// Maildir or mbox.
    pub mailbox_format: MailboxFormat,
    /// Dovecot passwd-file.
    pub users_file: PathBuf,
    /// Aliases file, if any.
    pub aliases_file: Option<PathBuf>,
    /// What local accounts may send as besides `name@hostname`, if any.
    pub sendmail_senders: Option<PathBuf>,
    /// SMTP listeners (port 25).
    pub listen_smtp: Vec<SocketAddr>,
    /// Largest message accepted, in octets.
    pub max_message_size: u64,
    /// Recipients per message.
    pub max_recipients: usize,
    /// Connections at once per service group (SMTP, submission, POP3).
    pub max_connections: usize,
    /// Connections at once from one client (IPv6: its prefix) per group.
    pub max_connections_per_ip: usize,
    /// Idle seconds before an SMTP session is dropped.
    pub smtp_timeout: u64,
    /// Separator of address extensions (`user+tag@`), if any.
    pub recipient_delimiter: Option<char>,
    /// PEM certificate chain, for STARTTLS and implicit TLS.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (RSA, ECDSA or Ed25519).
    pub tls_key: Option<PathBuf>,
    /// Submission with STARTTLS (port 587).
    pub listen_submission: Vec<SocketAddr>,
    /// Submission over implicit TLS (port 465, RFC 8314).
    pub listen_submissions: Vec<SocketAddr>,
    /// Clients that may relay without AUTH.
    pub trusted_networks: Vec<Cidr>,
    /// Front ends (a webmail) that may name the client they log in for.
    pub login_trusted_networks: Vec<Cidr>,
    /// Failed logins from one address before it is refused.
    pub auth_failure_limit: usize,
    /// Seconds over which failures count, and how long a lockout lasts.
    pub auth_failure_window: u64,
    /// Seconds a verified login is remembered (0: not at all).
    pub auth_cache_ttl: u64,
    /// Refuse passwords over cleartext, except from loopback.
    pub require_tls_auth: bool,
    /// POP3 listeners (110), STLS offered when TLS is configured.
    /// ManageSieve listeners (4190).
    pub listen_managesieve: Vec<SocketAddr>,
    pub listen_pop3: Vec<SocketAddr>,
    /// POP3 over implicit TLS (995).
    pub listen_pop3s: Vec<SocketAddr>,
    /// Idle seconds before a POP3 session is dropped.
    pub pop3_timeout: u64,
    /// IMAP listeners (143), STARTTLS offered when TLS is configured.
    pub listen_imap: Vec<SocketAddr>,
    /// IMAP over implicit TLS (993).
    pub listen_imaps: Vec<SocketAddr>,
    /// Idle seconds before an IMAP session is logged out.
    pub imap_timeout: u64,
    /// `USER[:GROUP]` to switch to after binding, if any.
    pub run_as: Option<String>,
    /// Below this much free space in `data_dir`, MAIL gets 452 (0: off).
    pub min_free_space: u64,
    /// IPv6 clients are counted per prefix of this length.
    pub ipv6_prefix_len: u8,
    /// Who may send a PROXY protocol header to a `proxy:` listener.
    pub proxy_from: Vec<Cidr>,
    /// Listeners (by address) that expect a PROXY protocol header.
    pub proxy_listeners: Vec<SocketAddr>,
    /// The config line that set `users_file` (0 for the default).
    pub users_file_line: usize,
    /// Recursive resolvers to ask (None: `/etc/resolv.conf`'s).
    pub dns_servers: Option<Vec<SocketAddr>>,
    /// DKIM keys: domain, selector, PEM file.
    pub dkim_keys: Vec<(String, String, PathBuf)>,
    /// Sending mail out: ports, retries, limits, smarthost.
    pub outbound: outbound::Outbound,
    /// Checking mail in: SPF, DKIM, DMARC, ARC, iprev.
    pub inbound: inbound::Inbound,
    /// The spam defence: blocklists, greylisting, the filter, Junk.
    pub spam: spam::Spam,
    /// Milters (rspamd, SpamAssassin, ClamAV...).
    pub milters: milter::Milters,
    /// Users' own rules (Sieve) and quotas.
    pub filtering: filtering::Filtering,
    /// HTTP listeners (autoconfig, MTA-STS, metrics).
    pub listen_http: Vec<SocketAddr>,
    /// HTTPS listeners, with the same certificate.
    pub listen_https: Vec<SocketAddr>,
    /// What the HTTP listeners serve, and to whom.
    pub web: web::Web,
    /// Our addresses as the world sees them (for `doctor`), if not the
    /// listeners' own.
    pub public_ips: Vec<std::net::IpAddr>,
    /// Mail the postmaster a report once a day.
    pub daily_report: bool,
    /// Certificates from an ACME CA.
    pub acme: acme::Acme,
}

impl Config {
    /// Reads and checks the config file.
    pub fn load(path: &Path) -> Result<Config, Problems> {
        let path = absolute(path);
        let text = lexer::read(&path).map_err(|p| Problems(vec![p]))?;
        let mut cfg = Config::defaults(&path);
        let mut problems = Vec::new();
        let mut seen = Vec::new();
        for (n, line) in lexer::lines(&text) {
            let Some((key, value)) = lexer::key_value(line) else {
                problems.push(Problem::new(&path, n, "expected key = value"));
                continue;
            };
            if seen.contains(&key) {
                let msg = format!("{key} is set twice");
                problems.push(Problem::new(&path, n, msg));
            }
            seen.push(key);
            if let Err(msg) = cfg.set(key, value) {
                problems.push(Problem::new(&path, n, msg));
            }
            if key == "users_file" {
                cfg.users_file_line = n;
            }
        }
        if cfg.domains.is_empty() {
            problems.push(Problem::new(&path, 0, "domains is not set"));
        }
        if let Err(msg) = cfg.check_tls() {
            problems.push(Problem::new(&path, 0, msg));
        }
        if !cfg.proxy_listeners.is_empty() && cfg.proxy_from.is_empty() {
            let msg = "a proxy: listener needs proxy_from (who may send \
                       the PROXY header)";
            problems.push(Problem::new(&path, 0, msg));
        }
        if problems.is_empty() {
            Ok(cfg)
        } else {
            Err(Problems(problems))
        }
    }

    fn defaults(path: &Path) -> Config {
        let dir = path.parent().unwrap_or(Path::new("/"));
        Config {
            path: path.to_path_buf(),
            hostname: system_hostname(),
            domains: Vec::new(),
            data_dir: PathBuf::from("/var/lib/postling"),
            mailbox_format: MailboxFormat::Maildir,
            users_file: dir.join("users"),
            aliases_file: None,
            sendmail_senders: None,
            listen_smtp: vec![
                "0.0.0.0:25".parse().expect("invariant: literal"),
            ],
            max_message_size: 25 << 20,
            max_recipients: 100,
            max_connections: 100,
            max_connections_per_ip: 10,
            smtp_timeout: 300,
            recipient_delimiter: None,
            tls_cert: None,
            tls_key: None,
            listen_submission: Vec::new(),
            listen_submissions: Vec::new(),
            login_trusted_networks: Vec::new(),
            trusted_networks: ["127.0.0.0/8", "::1"]
                .iter()
                .map(|c| Cidr::parse(c).expect("invariant: literal"))
                .collect(),
            auth_failure_limit: 5,
            auth_failure_window: 600,
            auth_cache_ttl: 3600,
            require_tls_auth: true,
            listen_pop3: Vec::new(),
            listen_managesieve: Vec::new(),
            listen_pop3s: Vec::new(),
            pop3_timeout: 600,
            listen_imap: Vec::new(),
            listen_imaps: Vec::new(),
            imap_timeout: 1800,
            run_as: None,
            min_free_space: 100 << 20,
            ipv6_prefix_len: 64,
            proxy_from: Vec::new(),
            proxy_listeners: Vec::new(),
            users_file_line: 0,
            dns_servers: None,
            dkim_keys: Vec::new(),
            outbound: outbound::Outbound::default(),
            inbound: inbound::Inbound::default(),
            spam: spam::Spam::default(),
            milters: milter::Milters::default(),
            filtering: filtering::Filtering::default(),
            listen_http: Vec::new(),
            listen_https: Vec::new(),
            web: web::Web::default(),
            public_ips: Vec::new(),
            daily_report: false,
            acme: acme::Acme::default(),
        }
    }

    /// Warnings that do not stop `serve` but that `check` prints.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        for c in &self.trusted_networks {
            if c.is_everything() {
                w.push(format!(
                    "{}: trusted_networks holds {c}: every host on the \
                     Internet may relay through this server",
                    self.path.display()
                ));
            }
        }
        if self.spam.any_list() {
            // Blocklists refuse public resolvers, or answer them with
            // their error code: every lookup would be wasted.
            for server in self.resolvers() {
                if crate::proto::dnsbl::is_public_resolver(server.ip()) {
                    w.push(format!(
                        "{}: {} is a public resolver: blocklists (dnsbl, \
                         rhsbl) refuse or misanswer queries through it; \
                         run a local resolver (unbound) for them",
                        self.path.display(),
                        server.ip()
                    ));
                }
            }
        }
        if let Some(path) = &self.filtering.sieve_before {
            // Delivery would log this for every message, and keep them.
            let read =
                std::fs::read_to_string(path).map_err(|e| e.to_string());
            let compiled = read.and_then(|t| {
                crate::proto::sieve::compile::compile(&t)
                    .map(|_| ())
                    .map_err(|e| format!("line {}: {}", e.line, e.what))
            });
            if let Err(e) = compiled {
                w.push(format!(
                    "sieve_before {}: {e}: it is skipped",
                    path.display()
                ));
            }
        }
        w
    }

    /// TLS keys come in pairs, and implicit TLS needs them.
    fn check_tls(&self) -> Result<(), String> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => {
                Err("tls_cert is set but tls_key is not".into())
            }
            (None, Some(_)) => {
                Err("tls_key is set but tls_cert is not".into())
            }
            (None, None) if !self.listen_submissions.is_empty() => {
                Err("listen_submissions needs tls_cert and tls_key".into())
            }
            (None, None) if !self.listen_pop3s.is_empty() => {
                Err("listen_pop3s needs tls_cert and tls_key".into())
            }
            (None, None) if !self.listen_imaps.is_empty() => {
                Err("listen_imaps needs tls_cert and tls_key".into())
            }
            _ => Ok(()),
        }
    }

    /// Applies one `key = value`.
    fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let dir = self.path.parent().unwrap_or(Path::new("/")).to_path_buf();
        let path = |v: &str| {
            if v.is_empty() {
                Err("a path is required".to_string())
            } else {
                Ok(dir.join(v))
            }
        };
        // Each section takes its own keys (at most one knows a key).
        let sections = [
            self.outbound.set(key, value, path),
            self.inbound.set(key, value, path),
            self.spam.set(key, value),
            self.milters.set(key, value),
            self.filtering.set(key, value, &dir),
            self.web.set(key, value),
            self.acme.set(key, value, &dir),
        ];
        if let Some(result) = sections.into_iter().flatten().next() {
            return result;
        }
        match key {
            "hostname" => self.hostname = hostname(value)?,
            "domains" => self.domains = domains(value)?,
            "data_dir" => self.data_dir = self.relative(value)?,
            "mailbox_format" => self.mailbox_format = format(value)?,
            "users_file" => self.users_file = self.relative(value)?,
            "aliases_file" if value.is_empty() => self.aliases_file = None,
            "aliases_file" => self.aliases_file = Some(self.relative(value)?),
            "sendmail_senders" if value.is_empty() => {
                self.sendmail_senders = None
            }
            "sendmail_senders" => {
                self.sendmail_senders = Some(self.relative(value)?)
            }
            "listen_smtp" => self.listen_smtp = self.listen(value)?,
            "max_message_size" => self.max_message_size = size(value)?,
            "max_recipients" => self.max_recipients = count(value)?,
            "max_connections" => self.max_connections = count(value)?,
            "max_connections_per_ip" => {
                self.max_connections_per_ip = count(value)?
            }
            "smtp_timeout" => self.smtp_timeout = count(value)? as u64,
            "recipient_delimiter" => self.recipient_delimiter = delim(value)?,
            "tls_cert" => self.tls_cert = self.optional_path(value)?,
            "tls_key" => self.tls_key = self.optional_path(value)?,
            "listen_submission" => {
                self.listen_submission = self.listen(value)?
            }
            "listen_submissions" => {
                self.listen_submissions = self.listen(value)?
            }
            "trusted_networks" => {
                self.trusted_networks =
                    items(value).map(Cidr::parse).collect::<Result<_, _>>()?
            }
            "auth_cache_ttl" => {
                self.auth_cache_ttl = outbound::duration(value)?
            }
            "login_trusted_networks" => {
                self.login_trusted_networks =
                    items(value).map(Cidr::parse).collect::<Result<_, _>>()?
            }
            "auth_failure_limit" => self.auth_failure_limit = count(value)?,
            "auth_failure_window" => {
                self.auth_failure_window = count(value)? as u64
            }
            "require_tls_auth" => self.require_tls_auth = yes_no(value)?,
            "listen_pop3" => self.listen_pop3 = self.listen(value)?,
            "listen_managesieve" => {
                self.listen_managesieve = self.listen(value)?
            }
            "listen_pop3s" => self.listen_pop3s = self.listen(value)?,
            "listen_http" => self.listen_http = self.listen(value)?,
            "daily_report" => self.daily_report = yes_no(value)?,
            "public_ips" => self.public_ips = ip_list(value)?,
            "listen_https" => self.listen_https = self.listen(value)?,
            "listen_imap" => self.listen_imap = self.listen(value)?,
            "dns_servers" => self.dns_servers = Some(dns_servers(value)?),
            "dkim_keys" => {
                let mut keys = Vec::new();
                for item in items(value) {
                    let mut parts = item.splitn(3, ':');
                    let (Some(d), Some(s), Some(f)) =
                        (parts.next(), parts.next(), parts.next())
                    else {
                        return Err(format!(
                            "bad DKIM key {item:?} (domain:selector:keyfile)"
                        ));
                    };
                    let domain = d.to_ascii_lowercase();
                    if !is_domain(&domain)
                        || s.is_empty()
                        || !s.bytes().all(|b| {
                            b.is_ascii_alphanumeric() || b == b'-' || b == b'.'
                        })
                    {
                        return Err(format!(
                            "bad DKIM key {item:?} (domain:selector:keyfile)"
                        ));
                    }
                    keys.push((domain, s.to_string(), self.relative(f)?));
                }
                self.dkim_keys = keys;
            }
            "listen_imaps" => self.listen_imaps = self.listen(value)?,
            "imap_timeout" => {
                // RFC 9051 5.4: the autologout timer is at least 30 minutes.
                self.imap_timeout = count(value)? as u64;
                if self.imap_timeout < 1800 {
                    return Err(
                        "imap_timeout must be at least 1800 (RFC 9051)".into(),
                    );
                }
            }
            "run_as" if value.is_empty() => self.run_as = None,
            "run_as" => self.run_as = Some(value.to_string()),
            "min_free_space" if value == "0" => self.min_free_space = 0,
            "min_free_space" => self.min_free_space = size(value)?,
            "ipv6_prefix_len" => {
                self.ipv6_prefix_len = value
                    .parse::<u8>()
                    .ok()
                    .filter(|b| (1..=128).contains(b))
                    .ok_or("ipv6_prefix_len must be 1 to 128")?
            }
            "proxy_from" => {
                self.proxy_from =
                    items(value).map(Cidr::parse).collect::<Result<_, _>>()?
            }
            "pop3_timeout" => {
                // RFC 1939 3: the autologout timer is at least 10 minutes.
                self.pop3_timeout = count(value)? as u64;
                if self.pop3_timeout < 600 {
                    return Err(
                        "pop3_timeout must be at least 600 (RFC 1939)".into(),
                    );
                }
            }
            _ => return Err(format!("unknown key {key}")),
        }
        Ok(())
    }

    /// The certificate and key the TLS listeners use: ACME's once it
    /// has one, else `tls_cert` and `tls_key`.
    pub fn tls_pair(&self) -> Option<(PathBuf, PathBuf)> {
        let dir = self.data_dir.join("acme");
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        if self.acme.on && cert.exists() && key.exists() {
            return Some((cert, key));
        }
        Some((self.tls_cert.clone()?, self.tls_key.clone()?))
    }

    /// The names ACME certifies: `hostname`, and with HTTPS the
    /// `mta-sts.` and `autoconfig.` names of each domain.
    pub fn acme_names(&self) -> Vec<String> {
        let mut names = vec![self.hostname.clone()];
        if !self.listen_https.is_empty() {
            for d in &self.domains {
                names.push(format!("mta-sts.{d}"));
                names.push(format!("autoconfig.{d}"));
            }
        }
        names
    }

    /// A path from the file, relative to the file's folder.
    fn relative(&self, value: &str) -> Result<PathBuf, String> {
        if value.is_empty() {
            return Err("a path is required".into());
        }
        let dir = self.path.parent().unwrap_or(Path::new("/"));
        Ok(dir.join(value))
    }

    fn optional_path(&self, value: &str) -> Result<Option<PathBuf>, String> {
        if value.is_empty() {
            Ok(None)
        } else {
            self.relative(value).map(Some)
        }
    }

    /// The socket `postling sendmail` hands messages over.
    pub fn sendmail_socket(&self) -> PathBuf {
        self.data_dir.join("public").join("sendmail")
    }

    /// Messages arriving, spooled: `{data_dir}/tmp` (emptied at start).
    pub fn spool_dir(&self) -> PathBuf {
        self.data_dir.join("tmp")
    }

    /// The outbound queue: `{data_dir}/queue`.
    pub fn queue_dir(&self) -> PathBuf {
        self.data_dir.join("queue")
    }

    /// True if `ip` is a front end that may name its clients.
    pub fn is_login_trusted(&self, ip: std::net::IpAddr) -> bool {
        self.login_trusted_networks.iter().any(|c| c.contains(ip))
    }

    /// True if `ip` may relay without AUTH.
    pub fn is_trusted(&self, ip: std::net::IpAddr) -> bool {
        self.trusted_networks.iter().any(|c| c.contains(ip))
    }

    /// True if `address` is in one of our domains.
    pub fn is_local_address(&self, address: &str) -> bool {
        address.rsplit_once('@').is_some_and(|(_, d)| {
            self.domains.iter().any(|x| x.eq_ignore_ascii_case(d))
        })
    }

    /// Where mail for these targets goes (user addresses, or addresses
    /// elsewhere that an alias forwards to): the local mailbox folders,
    /// and the addresses elsewhere.
    pub fn split_targets<'a>(
        &self,
        targets: impl IntoIterator<Item = &'a str>,
    ) -> (Vec<PathBuf>, Vec<String>) {
        let (local, elsewhere): (Vec<&str>, Vec<&str>) =
            targets.into_iter().partition(|t| self.is_local_address(t));
        (
            local.into_iter().map(|m| self.mailbox_dir(m)).collect(),
            elsewhere.into_iter().map(str::to_string).collect(),
        )
    }

    /// The folder of one local mailbox.
    pub fn mailbox_dir(&self, address: &str) -> PathBuf {
        let (local, domain) =
            address.rsplit_once('@').unwrap_or((address, ""));
        self.data_dir.join("mail").join(domain).join(local)
    }

    /// Loads users and aliases as this config names them.
    pub fn directory(&self) -> Result<Directory, Problems> {
        Directory::load(self)
    }
}

fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    std::env::current_dir()
        .map(|d| d.join(path))
        .unwrap_or(path.into())
}

/// The kernel's host name, the default for `hostname`.
fn system_hostname() -> String {
    let uname = rustix::system::uname();
    uname.nodename().to_string_lossy().into_owned()
}

fn hostname(value: &str) -> Result<String, String> {
    let ok = !value.is_empty()
        && value.len() <= 253
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b));
    if ok {
        Ok(value.to_lowercase())
    } else {
        Err(format!("bad hostname {value:?}"))
    }
}

fn domains(value: &str) -> Result<Vec<String>, String> {
    let list: Vec<String> = items(value).map(str::to_lowercase).collect();
    for d in &list {
        if !is_domain(d) {
            return Err(format!("bad domain {d:?}"));
        }
    }
    Ok(list)
}

/// A list's items: separated by white space, commas, or both, as
/// Postfix's lists are.
pub fn items(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|i| !i.is_empty())
}

/// A DNS name as RFC 1035 and 5321 allow it: dot-separated labels of
/// letters, digits and inner hyphens, 1 to 63 octets each, 253 in all,
/// and not all digits at the top (that would be an address).
pub fn is_domain(d: &str) -> bool {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    let top_ok = d
        .rsplit('.')
        .next()
        .is_some_and(|t| !t.bytes().all(|b| b.is_ascii_digit()));
    !d.is_empty() && d.len() <= 253 && d.split('.').all(label_ok) && top_ok
}

fn format(value: &str) -> Result<MailboxFormat, String> {
    match value {
        "maildir" => Ok(MailboxFormat::Maildir),
        "mbox" => Ok(MailboxFormat::Mbox),
        _ => Err(format!(
            "mailbox_format must be maildir or mbox, not {value:?}"
        )),
    }
}

impl Config {
    /// `addr:port` items; `proxy:addr:port` marks a listener that
    /// expects a PROXY protocol header from a `proxy_from` host.
    fn listen(&mut self, value: &str) -> Result<Vec<SocketAddr>, String> {
        let mut addrs = Vec::new();
        for item in items(value) {
            let (proxy, a) = match item.strip_prefix("proxy:") {
                Some(rest) => (true, rest),
                None => (false, item),
            };
            let addr: SocketAddr = a.parse().map_err(|_| {
                format!("bad address {item:?} ([proxy:]addr:port)")
            })?;
            if proxy {
                self.proxy_listeners.push(addr);
            }
            addrs.push(addr);
        }
        Ok(addrs)
    }
}

/// `ip[:port]` items (port 53 when left out; `[v6]:port` for IPv6).
pub fn dns_servers(value: &str) -> Result<Vec<SocketAddr>, String> {
    items(value)
        .map(|item| {
            item.parse::<SocketAddr>()
                .or_else(|_| {
                    item.parse::<std::net::IpAddr>()
                        .map(|ip| SocketAddr::new(ip, 53))
                })
                .map_err(|_| format!("bad DNS server {item:?} (ip[:port])"))
        })
        .collect()
}

impl Config {
    /// The DKIM signers `dkim_keys` names, keys read and checked.
    pub fn dkim_signers(
        &self,
    ) -> Result<Vec<crate::proto::dkim::sign::Signer>, String> {
        self.dkim_keys
            .iter()
            .map(|(domain, selector, path)| {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    format!("dkim_keys: {}: {e}", path.display())
                })?;
                let key = crate::proto::dkim::sign::Key::from_pem(&text)
                    .map_err(|e| {
                        format!("dkim_keys: {}: {e}", path.display())
                    })?;
                Ok(crate::proto::dkim::sign::Signer {
                    domain: domain.clone(),
                    selector: selector.clone(),
                    key,
                })
            })
            .collect()
    }

    /// The resolvers to ask: `dns_servers`, else the `nameserver` lines
    /// of `/etc/resolv.conf`, else 127.0.0.1.
    pub fn resolvers(&self) -> Vec<SocketAddr> {
        if let Some(s) = &self.dns_servers {
            return s.clone();
        }
        let text =
            std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let found: Vec<SocketAddr> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("nameserver"))
            .filter_map(|ip| {
                // A zone suffix (fe80::1%eth0) cannot be a SocketAddr.
                ip.trim().parse::<std::net::IpAddr>().ok()
            })
            .map(|ip| SocketAddr::new(ip, 53))
            .collect();
        if found.is_empty() {
            vec![SocketAddr::from(([127, 0, 0, 1], 53))]
        } else {
            found
        }
    }
}

/// A size in octets, with an optional K, M or G suffix (powers of 1024).
pub fn size(value: &str) -> Result<u64, String> {
    let bad = || format!("bad size {value:?} (a number, K, M or G)");
    let (digits, shift) = match value.as_bytes().last() {
        Some(b'K' | b'k') => (&value[..value.len() - 1], 10),
        Some(b'M' | b'm') => (&value[..value.len() - 1], 20),
        Some(b'G' | b'g') => (&value[..value.len() - 1], 30),
        _ => (value, 0),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    n.checked_mul(1 << shift).filter(|&n| n > 0).ok_or_else(bad)
}

fn count(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("expected a positive number, not {value:?}")),
    }
}

/// Addresses, as `public_ips` lists them.
fn ip_list(value: &str) -> Result<Vec<std::net::IpAddr>, String> {
    items(value)
        .map(|i| i.parse().map_err(|_| format!("bad address {i:?}")))
        .collect()
}

pub(crate) fn yes_no(value: &str) -> Result<bool, String> {
    match value {
        "yes" | "true" | "on" => Ok(true),
        "no" | "false" | "off" => Ok(false),
        _ => Err(format!("expected yes or no, not {value:?}")),
    }
}

fn delim(value: &str) -> Result<Option<char>, String> {
    let mut chars = value.chars();
    match (chars.next(), chars.next()) {
        (None, _) => Ok(None),
        (Some(c), None) if !c.is_alphanumeric() && c != '@' => Ok(Some(c)),
        _ => Err(format!(
            "recipient_delimiter must be one symbol, not {value:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_names() {
        for good in [
            "example.org",
            "a.b-c.example",
            "localhost",
            "xn--bcher-kva.example",
        ] {
            assert!(is_domain(good), "{good}");
        }
        for bad in [
            "..",
            ".",
            "a..b",
            ".example.org",
            "example.org.",
            "-a.org",
            "a-.org",
            "1.2.3.4",
            "a_b.org",
            "",
            &"a".repeat(64),
        ] {
            assert!(!is_domain(bad), "{bad}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(size("10M"), Ok(10 << 20));
        assert_eq!(size("512k"), Ok(512 << 10));
        assert_eq!(size("1000"), Ok(1000));
        assert!(size("0").is_err() && size("x").is_err() && size("").is_err());
        assert!(size("99999999999G").is_err());
    }

    #[test]
    fn every_problem_is_reported_with_its_line() {
        let dir = std::env::temp_dir()
            .join(format!("postling-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("p.conf");
        std::fs::write(
            &file,
            "# c\nhostname = mx.example.org\nbogus = 1\nmax_recipients = -1\n\
             listen_smtp = 127.0.0.1:25 nope\nmailbox_format = mh\n",
        )
        .unwrap();
        let e = Config::load(&file).unwrap_err().to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        let f = file.display();
        assert!(e.contains(&format!("{f}:3: unknown key bogus")), "{e}");
        assert!(e.contains(&format!("{f}:4: expected a positive")), "{e}");
        assert!(e.contains(&format!("{f}:5: bad address \"nope\"")), "{e}");
        assert!(e.contains(&format!("{f}:6: mailbox_format")), "{e}");
        assert!(e.contains(&format!("{f}: domains is not set")), "{e}");
    }
}
