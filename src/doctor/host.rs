//! The lines about this host: the certificate, port 25 outwards, the
//! open-relay self-test, the queue, free space, and file permissions.

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use super::Line;
use super::lookup::Lookup;
use crate::config::Config;
use crate::proto::dns::cache::Found;
use crate::proto::dns::wire::{Qtype, Rec};

/// Warn this long before the certificate expires.
const EXPIRY_WARNING: i64 = 14 * 86_400;
/// A queued message older than this is worth a look.
const OLD_IN_QUEUE: i64 = 86_400;

/// The certificate covers `hostname` (and the web names it serves) and
/// is not near its end.
pub fn certificate_lines(cfg: &Config, domains: &[String]) -> Vec<Line> {
    let Some((path, _)) = cfg.tls_pair() else {
        return vec![Line::warn(
            "certificate",
            "none: set tls_cert and tls_key (clients need TLS)",
        )];
    };
    let der = std::fs::read(&path).ok().and_then(|pem| {
        let mut reader = &pem[..];
        rustls_pemfile_first(&mut reader)
    });
    let Some(der) = der else {
        return vec![Line::fail(
            "certificate",
            format!("{}: no certificate in it", path.display()),
        )];
    };
    let names = crate::proto::x509::names(&der);
    let mut wanted = vec![cfg.hostname.clone()];
    if !cfg.listen_https.is_empty() {
        for d in domains {
            wanted.push(format!("mta-sts.{d}"));
            wanted.push(format!("autoconfig.{d}"));
        }
    }
    let mut lines = Vec::new();
    for name in wanted {
        let what = format!("certificate for {name}");
        lines.push(match crate::proto::x509::covers(&names, &name) {
            true => Line::ok(what, "covered"),
            false => Line::fail(
                what,
                format!(
                    "not covered (it names {}); get one that does",
                    names.join(", ")
                ),
            ),
        });
    }
    let now = crate::util::date::now_secs();
    lines.push(match crate::proto::x509::not_after(&der) {
        Some(t) if t < now => {
            Line::fail("certificate expiry", "expired: renew it")
        }
        Some(t) if t - now < EXPIRY_WARNING => Line::warn(
            "certificate expiry",
            format!("in {} days: renew it", (t - now) / 86_400),
        ),
        Some(t) => Line::ok(
            "certificate expiry",
            format!("in {} days", (t - now) / 86_400),
        ),
        None => Line::warn("certificate expiry", "unreadable"),
    });
    lines
}

/// What ACME last did, as its helper wrote it.
pub fn acme_line(cfg: &Config) -> Option<Line> {
    if !cfg.acme.on {
        return None;
    }
    let state = std::fs::read_to_string(cfg.data_dir.join("acme/state"))
        .unwrap_or_default();
    let state = state.trim();
    Some(match state {
        "" => Line::warn("acme", "no attempt yet (is the server running?)"),
        s if s.starts_with("ok") => Line::ok("acme", s),
        s => Line::fail("acme", s),
    })
}

/// The first certificate of a PEM file, as DER.
fn rustls_pemfile_first(reader: &mut &[u8]) -> Option<Vec<u8>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let first = CertificateDer::pem_slice_iter(reader).next()?.ok()?;
    Some(first.to_vec())
}

/// Port 25 outwards: connect to `target`'s MX (`DOMAIN[:PORT]`) and read
/// its greeting. Many providers block it; nothing can be sent then.
pub fn port25(target: &str, dns: &mut Lookup) -> Line {
    let (domain, port) = match target.rsplit_once(':') {
        Some((d, p)) if p.parse::<u16>().is_ok() => {
            (d, p.parse().unwrap_or(25))
        }
        _ => (target, 25),
    };
    let what = format!("outbound port {port} to {domain}");
    let mut hosts: Vec<(u16, String)> = match dns.ask(domain, Qtype::Mx) {
        Ok(Found::Records(r)) => r
            .into_iter()
            .filter_map(|r| match r {
                Rec::Mx(p, h) if !h.is_empty() => Some((p, h)),
                _ => None,
            })
            .collect(),
        _ => vec![(0, domain.to_string())],
    };
    hosts.sort();
    for (_, host) in hosts {
        let addrs: Vec<IpAddr> = [Qtype::A, Qtype::Aaaa]
            .into_iter()
            .flat_map(|q| match dns.ask(&host, q) {
                Ok(Found::Records(r)) => r,
                _ => Vec::new(),
            })
            .filter_map(|r| match r {
                Rec::A(a) => Some(IpAddr::V4(a)),
                Rec::Aaaa(a) => Some(IpAddr::V6(a)),
                _ => None,
            })
            .collect();
        for ip in addrs {
            if let Some(greeting) = greeting(SocketAddr::new(ip, port)) {
                return Line::ok(
                    what,
                    format!("{host} ({ip}) says {greeting}"),
                );
            }
        }
    }
    Line::fail(
        what,
        "no MX reachable: is outbound port 25 blocked by your provider? (ask them, or send through a smarthost)",
    )
}

/// The first line a server greets with, if it greets within 10 seconds.
fn greeting(addr: SocketAddr) -> Option<String> {
    let stream =
        TcpStream::connect_timeout(&addr, Duration::from_secs(10)).ok()?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).ok()?;
    line.starts_with("220")
        .then(|| line.trim_end().chars().take(80).collect())
}

/// We are not an open relay: a stranger's mail for a domain not ours
/// is refused at RCPT.
pub fn open_relay(cfg: &Config) -> Line {
    let what = "open relay";
    let Some(listener) = cfg.listen_smtp.first() else {
        return Line::ok(what, "no listen_smtp");
    };
    let ip = match listener.ip() {
        IpAddr::V4(v) if v.is_unspecified() => IpAddr::from([127, 0, 0, 1]),
        IpAddr::V6(v) if v.is_unspecified() => {
            IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1])
        }
        other => other,
    };
    let addr = SocketAddr::new(ip, listener.port());
    let Ok(stream) =
        TcpStream::connect_timeout(&addr, Duration::from_secs(10))
    else {
        return Line::warn(
            what,
            format!("could not connect to {addr}: is the server running?"),
        );
    };
    let source = stream.local_addr().map(|a| a.ip()).ok();
    if source.is_some_and(|s| cfg.is_trusted(s)) {
        return Line::warn(
            what,
            format!(
                "not tested: from here ({}) trusted_networks may relay",
                source.map_or(String::new(), |s| s.to_string())
            ),
        );
    }
    match relay_attempt(stream, &cfg.hostname) {
        Some(code) if code.starts_with('2') => Line::fail(
            what,
            format!(
                "a stranger's mail to relay-test.invalid got {code}: check trusted_networks"
            ),
        ),
        Some(code) => {
            Line::ok(what, format!("mail for other domains refused ({code})"))
        }
        None => Line::warn(what, "the test dialog failed"),
    }
}

/// EHLO, MAIL, RCPT to a domain not ours: the RCPT reply's code.
fn relay_attempt(stream: TcpStream, hostname: &str) -> Option<String> {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut writer = stream.try_clone().ok()?;
    let mut reader = BufReader::new(stream);
    let mut reply = || -> Option<String> {
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).ok()? == 0 {
                return None;
            }
            if line.as_bytes().get(3) != Some(&b'-') {
                return Some(line.get(..3)?.to_string());
            }
        }
    };
    reply()?;
    for command in [
        format!("EHLO {hostname}\r\n"),
        "MAIL FROM:<doctor@relay-test.invalid>\r\n".to_string(),
    ] {
        writer.write_all(command.as_bytes()).ok()?;
        reply()?;
    }
    writer
        .write_all(b"RCPT TO:<relay-test@relay-test.invalid>\r\n")
        .ok()?;
    let code = reply();
    let _ = writer.write_all(b"QUIT\r\n");
    code
}

/// The queue, free space, and who may read what.
pub fn local_lines(cfg: &Config) -> Vec<Line> {
    let mut lines = vec![queue_line(cfg), space_line(cfg)];
    let secret = |label: &str, path: &Path| -> Option<Line> {
        let mode = std::fs::metadata(path).ok()?.permissions().mode();
        let what = format!("permissions {label}");
        Some(match mode & 0o077 {
            0 => Line::ok(
                what,
                format!("{} is {:o}", path.display(), mode & 0o777),
            ),
            _ if label == "users_file" && mode & 0o007 == 0 => Line::ok(
                what,
                format!("{} is {:o}", path.display(), mode & 0o777),
            ),
            _ => Line::fail(
                what,
                format!(
                    "{} is {:o}: chmod 600 it (it holds secrets)",
                    path.display(),
                    mode & 0o777
                ),
            ),
        })
    };
    lines.extend(secret("users_file", &cfg.users_file));
    if let Some(key) = &cfg.tls_key {
        lines.extend(secret("tls_key", key));
    }
    for (domain, selector, path) in &cfg.dkim_keys {
        lines.extend(secret(
            &format!("DKIM key {selector}._domainkey.{domain}"),
            path,
        ));
    }
    if let Ok(meta) = std::fs::metadata(&cfg.data_dir) {
        let mode = meta.permissions().mode();
        let what = "permissions data_dir";
        lines.push(match mode & 0o002 {
            0 => Line::ok(
                what,
                format!("{} is {:o}", cfg.data_dir.display(), mode & 0o777),
            ),
            _ => Line::fail(
                what,
                format!(
                    "{} is world-writable: chmod o-w it",
                    cfg.data_dir.display()
                ),
            ),
        });
    }
    lines
}

fn queue_line(cfg: &Config) -> Line {
    let dir = cfg.queue_dir();
    let all = match crate::store::queue_state::list(&dir) {
        Ok(all) => all,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            return Line::warn("queue", format!("{}: {e}", dir.display()));
        }
    };
    let now = crate::util::date::now_secs();
    match all.iter().map(|q| q.created).min() {
        None => Line::ok("queue", "empty"),
        Some(oldest) if now - oldest > OLD_IN_QUEUE => Line::warn(
            "queue",
            format!(
                "{} messages, the oldest {} hours old: see postling queue list",
                all.len(),
                (now - oldest) / 3600
            ),
        ),
        Some(oldest) => Line::ok(
            "queue",
            format!(
                "{} messages, the oldest {} minutes old",
                all.len(),
                (now - oldest) / 60
            ),
        ),
    }
}

fn space_line(cfg: &Config) -> Line {
    let what = "free space";
    let Ok(stat) = rustix::fs::statvfs(&cfg.data_dir) else {
        return Line::warn(
            what,
            format!("{}: cannot be read", cfg.data_dir.display()),
        );
    };
    let free = stat.f_bavail.saturating_mul(stat.f_frsize);
    let mib = free >> 20;
    match free {
        f if f < cfg.min_free_space => Line::fail(
            what,
            format!(
                "{mib} MiB in {}: mail is refused below min_free_space",
                cfg.data_dir.display()
            ),
        ),
        f if f < cfg.min_free_space.saturating_mul(4) => Line::warn(
            what,
            format!("{mib} MiB in {}: running low", cfg.data_dir.display()),
        ),
        _ => {
            Line::ok(what, format!("{mib} MiB in {}", cfg.data_dir.display()))
        }
    }
}
