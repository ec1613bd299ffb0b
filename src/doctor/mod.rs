//! `postling doctor`: is the world around the server right? One line per
//! check, `ok`, `warn` or `fail`; a line that is not ok says what to
//! publish or change. DNS goes through our own resolver
//! ([`lookup::Lookup`]), to the servers the config names.

pub mod host;
pub mod lookup;
pub mod records;
pub mod report;

use std::net::IpAddr;

use crate::config::Config;
use crate::util::logsafe::Controls;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub status: Status,
    /// What was checked (`mx example.org`).
    pub what: String,
    /// What was found, or what to publish or change.
    pub detail: String,
}

impl Line {
    pub fn ok(what: impl Into<String>, detail: impl Into<String>) -> Line {
        Line {
            status: Status::Ok,
            what: what.into(),
            detail: detail.into(),
        }
    }
    pub fn warn(what: impl Into<String>, detail: impl Into<String>) -> Line {
        Line {
            status: Status::Warn,
            what: what.into(),
            detail: detail.into(),
        }
    }
    pub fn fail(what: impl Into<String>, detail: impl Into<String>) -> Line {
        Line {
            status: Status::Fail,
            what: what.into(),
            detail: detail.into(),
        }
    }

    /// `ok   mx example.org: mail.example.org (10)`. What and detail
    /// carry text from DNS and from peers: its control characters are
    /// shown escaped, so it stays on its line and cannot steer a
    /// terminal.
    pub fn render(&self) -> String {
        let word = match self.status {
            Status::Ok => "ok  ",
            Status::Warn => "warn",
            Status::Fail => "fail",
        };
        format!(
            "{word} {}: {}",
            Controls(&self.what),
            Controls(&self.detail)
        )
    }
}

/// What `doctor` was asked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// The mail domains to check (default: `domains`).
    pub domains: Vec<String>,
    /// A domain (optionally `:port`) whose MX we try to reach on port 25.
    pub port25_to: Option<String>,
}

/// Every check, in order.
pub fn run(cfg: &Config, options: &Options) -> Vec<Line> {
    let domains = match options.domains.is_empty() {
        true => cfg.domains.clone(),
        false => options
            .domains
            .iter()
            .map(|d| d.to_ascii_lowercase())
            .collect(),
    };
    let ours = our_addresses(cfg);
    let mut dns = lookup::Lookup::new(cfg.resolvers());
    let mut lines = records::host_lines(cfg, &ours, &mut dns);
    for domain in &domains {
        lines.extend(records::domain_lines(cfg, domain, &ours, &mut dns));
    }
    lines.extend(records::blocklist_lines(cfg, &ours, &mut dns));
    lines.extend(host::certificate_lines(cfg, &domains));
    lines.extend(host::acme_line(cfg));
    if let Some(target) = &options.port25_to {
        lines.push(host::port25(target, &mut dns));
    }
    lines.push(host::open_relay(cfg));
    lines.extend(host::local_lines(cfg));
    lines
}

/// Our public addresses: `public_ips`, else the listeners' own (not
/// wildcards), else the host's (the source address it would use to
/// reach the internet, found without sending anything).
pub fn our_addresses(cfg: &Config) -> Vec<IpAddr> {
    if !cfg.public_ips.is_empty() {
        return cfg.public_ips.clone();
    }
    let mut ours: Vec<IpAddr> = cfg
        .listen_smtp
        .iter()
        .map(|a| a.ip())
        .filter(|ip| !ip.is_unspecified() && !ip.is_loopback())
        .collect();
    ours.dedup();
    if ours.is_empty() {
        for probe in ["192.0.2.1:9", "[2001:db8::1]:9"] {
            let bind = if probe.starts_with('[') {
                "[::]:0"
            } else {
                "0.0.0.0:0"
            };
            let found = std::net::UdpSocket::bind(bind)
                .and_then(|s| s.connect(probe).map(|()| s))
                .and_then(|s| s.local_addr());
            if let Ok(a) = found {
                ours.push(a.ip());
            }
        }
    }
    ours
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hostile_record_stays_on_its_line() {
        let forged = Line::warn(
            "spf example.org",
            "v=spf1 ~all\nok   dkim: \x1b[32mfine",
        );
        assert_eq!(
            forged.render(),
            "warn spf example.org: v=spf1 ~all\\u{a}ok   dkim: \\u{1b}[32mfine"
        );
    }
}
