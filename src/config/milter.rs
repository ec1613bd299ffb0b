//! The milter keys (the Sendmail milter protocol, as Postfix uses it):
//! `milters`, `milter_timeout`, `milter_default_action`.

use std::path::PathBuf;

/// Where a milter listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `unix:PATH`.
    Unix(PathBuf),
    /// `inet:HOST:PORT` (`inet:[v6]:PORT` for an IPv6 address).
    Inet(String, u16),
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "unix:{}", p.display()),
            Endpoint::Inet(h, p) if h.contains(':') => {
                write!(f, "inet:[{h}]:{p}")
            }
            Endpoint::Inet(h, p) => write!(f, "inet:{h}:{p}"),
        }
    }
}

/// What a message gets when a milter cannot be asked (down, too slow,
/// speaking nonsense).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultAction {
    /// `451 4.7.1`: the sender tries again later (Postfix's default).
    Tempfail,
    /// As if that milter were not there.
    Accept,
}

/// Milter settings, defaults applied.
#[derive(Debug, Clone)]
pub struct Milters {
    pub milters: Vec<Endpoint>,
    /// Seconds a milter has for each reply (and to connect).
    pub timeout: u64,
    pub default_action: DefaultAction,
}

impl Default for Milters {
    fn default() -> Milters {
        Milters {
            milters: Vec::new(),
            timeout: 30,
            default_action: DefaultAction::Tempfail,
        }
    }
}

impl Milters {
    /// Applies one key; None if the key is not one of ours.
    pub fn set(
        &mut self,
        key: &str,
        value: &str,
    ) -> Option<Result<(), String>> {
        Some(match key {
            "milters" => super::items(value)
                .map(endpoint)
                .collect::<Result<Vec<_>, _>>()
                .map(|m| self.milters = m),
            "milter_timeout" => {
                super::outbound::duration(value).and_then(|d| match d {
                    1..=3600 => {
                        self.timeout = d;
                        Ok(())
                    }
                    _ => Err("milter_timeout is 1s to 1h".into()),
                })
            }
            "milter_default_action" => {
                let action = match value {
                    "tempfail" => DefaultAction::Tempfail,
                    "accept" => DefaultAction::Accept,
                    _ => {
                        return Some(Err(format!(
                            "milter_default_action must be tempfail or accept, not {value:?}"
                        )));
                    }
                };
                self.default_action = action;
                Ok(())
            }
            _ => return None,
        })
    }
}

/// `unix:PATH` or `inet:HOST:PORT`.
fn endpoint(item: &str) -> Result<Endpoint, String> {
    let bad = || format!("bad milter {item:?} (unix:/path or inet:host:port)");
    if let Some(path) = item.strip_prefix("unix:") {
        return match path.starts_with('/') {
            true => Ok(Endpoint::Unix(PathBuf::from(path))),
            false => Err(bad()),
        };
    }
    let rest = item.strip_prefix("inet:").ok_or_else(bad)?;
    let (host, port) = match rest.strip_prefix('[') {
        Some(v6) => {
            let (h, p) = v6.split_once("]:").ok_or_else(bad)?;
            (h, p)
        }
        None => rest.rsplit_once(':').ok_or_else(bad)?,
    };
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host.is_empty() || port == 0 {
        return Err(bad());
    }
    Ok(Endpoint::Inet(host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        let mut m = Milters::default();
        assert!(m.milters.is_empty() && m.timeout == 30);
        assert_eq!(m.default_action, DefaultAction::Tempfail);
        m.set("milters", "unix:/run/rspamd/milter.sock, inet:127.0.0.1:11332 inet:[::1]:8891")
            .unwrap()
            .unwrap();
        assert_eq!(
            m.milters,
            [
                Endpoint::Unix("/run/rspamd/milter.sock".into()),
                Endpoint::Inet("127.0.0.1".into(), 11332),
                Endpoint::Inet("::1".into(), 8891),
            ]
        );
        assert_eq!(m.milters[2].to_string(), "inet:[::1]:8891");
        for bad in [
            "tcp:1.2.3.4:5",
            "unix:relative",
            "inet:host",
            "inet:host:0",
            "inet::25",
        ] {
            assert!(m.set("milters", bad).unwrap().is_err(), "{bad}");
        }
        m.set("milter_timeout", "2m").unwrap().unwrap();
        assert_eq!(m.timeout, 120);
        assert!(m.set("milter_timeout", "0").unwrap().is_err());
        m.set("milter_default_action", "accept").unwrap().unwrap();
        assert_eq!(m.default_action, DefaultAction::Accept);
        assert!(m.set("milter_default_action", "reject").unwrap().is_err());
        assert!(m.set("hostname", "x").is_none());
    }
}
