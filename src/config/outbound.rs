//! The keys that govern sending mail out: where remote servers listen,
//! the retry schedule, connection limits and the smarthost.

use std::path::PathBuf;

/// How the smarthost is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmarthostTls {
    /// STARTTLS, required and verified (port 587).
    StartTls,
    /// TLS from the first octet, verified (port 465).
    Tls,
}

/// Outbound settings, defaults applied.
#[derive(Debug, Clone)]
pub struct Outbound {
    /// The port remote MX hosts are reached on.
    pub port: u16,
    /// Waits between attempts, in seconds; the last one repeats.
    pub retry: Vec<u64>,
    /// A message still undelivered this many seconds after it was
    /// queued bounces.
    pub max_age: u64,
    /// One delay notice this many seconds after queueing (0: none).
    pub warn_after: u64,
    /// Outbound connections at once, all destinations together.
    pub max_connections: usize,
    /// Outbound connections at once to one destination (domain or
    /// smarthost).
    pub max_per_destination: usize,
    /// Seconds a remote server may take to answer or take our data.
    pub timeout: u64,
    /// All remote mail goes to this host and port, if set.
    pub smarthost: Option<(String, u16)>,
    /// How TLS is used with the smarthost.
    pub smarthost_tls: SmarthostTls,
    /// `username password` for the smarthost.
    pub smarthost_auth_file: Option<PathBuf>,
    /// A notice that itself failed (a double bounce) is mailed to the
    /// postmaster; otherwise it is only logged, as Postfix does by
    /// default (on a server with forwards most are spam backscatter).
    pub notify_double_bounce: bool,
}

impl Default for Outbound {
    fn default() -> Outbound {
        Outbound {
            port: 25,
            retry: vec![60, 300, 900, 1800, 3600, 7200, 14_400],
            max_age: 5 * 86_400,
            warn_after: 4 * 3600,
            max_connections: 20,
            max_per_destination: 2,
            timeout: 300,
            smarthost: None,
            smarthost_tls: SmarthostTls::StartTls,
            smarthost_auth_file: None,
            notify_double_bounce: false,
        }
    }
}

impl Outbound {
    /// Applies one key; None if the key is not one of ours.
    pub fn set(
        &mut self,
        key: &str,
        value: &str,
        path: impl Fn(&str) -> Result<PathBuf, String>,
    ) -> Option<Result<(), String>> {
        let result = match key {
            "outbound_port" => port(value).map(|p| self.port = p),
            "queue_retry" => {
                let steps: Result<Vec<u64>, String> =
                    super::items(value).map(duration).collect();
                match steps {
                    Ok(s) if s.is_empty() || s.contains(&0) => Err(
                        "queue_retry needs waits above zero, e.g. 1m 5m 1h"
                            .into(),
                    ),
                    Ok(s) => {
                        self.retry = s;
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
            "queue_max_age" => duration(value).map(|d| self.max_age = d),
            "queue_warn_after" => duration(value).map(|d| self.warn_after = d),
            "notify_double_bounce" => match value {
                "yes" | "no" => {
                    self.notify_double_bounce = value == "yes";
                    Ok(())
                }
                _ => Err(format!(
                    "notify_double_bounce must be yes or no, not {value:?}"
                )),
            },
            "outbound_max_connections" => {
                positive(value).map(|n| self.max_connections = n)
            }
            "outbound_max_per_destination" => {
                positive(value).map(|n| self.max_per_destination = n)
            }
            "outbound_timeout" => duration(value).and_then(|d| {
                if d == 0 {
                    return Err("outbound_timeout must be above zero".into());
                }
                self.timeout = d;
                Ok(())
            }),
            "smarthost" if value.is_empty() => {
                self.smarthost = None;
                Ok(())
            }
            "smarthost" => smarthost(value).map(|s| self.smarthost = Some(s)),
            "smarthost_tls" => match value {
                "starttls" => {
                    self.smarthost_tls = SmarthostTls::StartTls;
                    Ok(())
                }
                "tls" => {
                    self.smarthost_tls = SmarthostTls::Tls;
                    Ok(())
                }
                _ => Err(format!(
                    "smarthost_tls must be starttls or tls, not {value:?}"
                )),
            },
            "smarthost_auth_file" if value.is_empty() => {
                self.smarthost_auth_file = None;
                Ok(())
            }
            "smarthost_auth_file" => {
                path(value).map(|p| self.smarthost_auth_file = Some(p))
            }
            _ => return None,
        };
        Some(result)
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

fn port(value: &str) -> Result<u16, String> {
    value
        .parse::<u16>()
        .ok()
        .filter(|&p| p > 0)
        .ok_or_else(|| format!("bad port {value:?}"))
}

fn positive(value: &str) -> Result<usize, String> {
    value
        .parse::<usize>()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("expected a number above zero, not {value:?}"))
}

/// `host[:port]`, IPv6 literals as `[::1]:587`; the port defaults to 587
/// for STARTTLS (465 users say so).
fn smarthost(value: &str) -> Result<(String, u16), String> {
    let bad = || format!("bad smarthost {value:?} (host[:port])");
    let (host, port_text) = if let Some(rest) = value.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or_else(bad)?;
        (h, after.strip_prefix(':'))
    } else {
        match value.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (value, None),
        }
    };
    let host = host.to_ascii_lowercase();
    let literal = host.parse::<std::net::IpAddr>().is_ok();
    if !literal && !super::is_domain(&host) {
        return Err(bad());
    }
    let port = match port_text {
        Some(p) => port(p)?,
        None => 587,
    };
    Ok((host, port))
}

/// `90`, `30s`, `5m`, `4h`, `5d`: seconds.
pub fn duration(value: &str) -> Result<u64, String> {
    let bad = || format!("bad duration {value:?} (e.g. 30s, 5m, 4h, 5d)");
    let (digits, unit) = match value.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => value.split_at(i),
        None => (value, ""),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(scale).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(o: &mut Outbound, k: &str, v: &str) -> Result<(), String> {
        o.set(k, v, |p| Ok(PathBuf::from(p)))
            .unwrap_or_else(|| Err(format!("{k} unknown")))
    }

    #[test]
    fn keys_and_their_values() {
        let mut o = Outbound::default();
        assert_eq!(duration("5d"), Ok(432_000));
        assert_eq!(duration("90"), Ok(90));
        assert!(duration("5x").is_err() && duration("").is_err());
        assert!(set(&mut o, "queue_retry", "1s 2s 1m").is_ok());
        assert_eq!(o.retry, vec![1, 2, 60]);
        assert!(set(&mut o, "queue_retry", "0s").is_err());
        assert!(set(&mut o, "smarthost", "mail.example.net").is_ok());
        assert_eq!(o.smarthost, Some(("mail.example.net".into(), 587)));
        assert!(set(&mut o, "smarthost", "[::1]:2525").is_ok());
        assert_eq!(o.smarthost, Some(("::1".into(), 2525)));
        assert!(set(&mut o, "smarthost", "bad host:1").is_err());
        assert!(set(&mut o, "smarthost_tls", "tls").is_ok());
        assert!(set(&mut o, "smarthost_tls", "none").is_err());
        assert!(set(&mut o, "outbound_port", "0").is_err());
        assert!(o.set("no_such_key", "", |p| Ok(p.into())).is_none());
    }
}
