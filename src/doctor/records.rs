//! The DNS lines of `doctor`: the host's own records (A/AAAA, PTR), each
//! domain's (MX, SPF, DKIM, DMARC, MTA-STS, TLS-RPT, SRV, autoconfig),
//! and the blocklists' verdict on our addresses.

use std::net::IpAddr;

use super::Line;
use super::lookup::Lookup;
use crate::config::Config;
use crate::proto::dns::cache::Found;
use crate::proto::dns::wire::{Qtype, Rec, reverse_name};
use crate::proto::dnsbl::{self, Listing};
use crate::proto::spf::check::{Check, SpfResult, Step};
use crate::proto::spf::resolved::{spf_answer, wire_type};

/// Records of a name, or why there are none ("no record", "lookup
/// failed: ...").
fn records(
    dns: &mut Lookup,
    name: &str,
    qtype: Qtype,
) -> Result<Vec<Rec>, String> {
    match dns.ask(name, qtype) {
        Ok(Found::Records(r)) => Ok(r),
        Ok(_) => Err("no record".into()),
        Err(e) => Err(format!("lookup failed ({e:?})")),
    }
}

/// A name's A and AAAA addresses.
fn addresses(dns: &mut Lookup, name: &str) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for qtype in [Qtype::A, Qtype::Aaaa] {
        for r in records(dns, name, qtype).unwrap_or_default() {
            match r {
                Rec::A(a) => out.push(IpAddr::V4(a)),
                Rec::Aaaa(a) => out.push(IpAddr::V6(a)),
                _ => {}
            }
        }
    }
    out
}

/// A name's TXT strings that start with `prefix` (case-insensitively).
fn texts(
    dns: &mut Lookup,
    name: &str,
    prefix: &str,
) -> Result<Vec<String>, String> {
    let all = records(dns, name, Qtype::Txt)?;
    let found: Vec<String> = all
        .into_iter()
        .filter_map(|r| match r {
            Rec::Txt(t) => Some(String::from_utf8_lossy(&t).into_owned()),
            _ => None,
        })
        .filter(|t| {
            t.to_ascii_lowercase()
                .starts_with(&prefix.to_ascii_lowercase())
        })
        .collect();
    match found.is_empty() {
        true => Err("no record".into()),
        false => Ok(found),
    }
}

fn record_kind(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() { "A" } else { "AAAA" }
}

/// The host's name and addresses: A/AAAA of `hostname`, and each
/// address's PTR, forward-confirmed.
pub fn host_lines(
    cfg: &Config,
    ours: &[IpAddr],
    dns: &mut Lookup,
) -> Vec<Line> {
    let host = &cfg.hostname;
    let mut lines = Vec::new();
    let published = addresses(dns, host);
    for ip in ours {
        let what = format!("{} {host}", record_kind(*ip));
        lines.push(match published.contains(ip) {
            true => Line::ok(what, ip.to_string()),
            false => Line::fail(
                what,
                format!("publish: {host}. {} {ip}", record_kind(*ip)),
            ),
        });
    }
    if ours.is_empty() {
        lines.push(Line::warn(
            format!("addresses of {host}"),
            "none known: set public_ips",
        ));
    }
    for ip in ours {
        lines.push(ptr_line(host, *ip, dns));
    }
    lines
}

fn ptr_line(host: &str, ip: IpAddr, dns: &mut Lookup) -> Line {
    let reverse = reverse_name(ip);
    let what = format!("PTR {ip}");
    let fix = format!("ask your provider for: {reverse}. PTR {host}.");
    let names: Vec<String> = match records(dns, &reverse, Qtype::Ptr) {
        Ok(r) => r
            .into_iter()
            .filter_map(|r| match r {
                Rec::Ptr(n) => Some(n),
                _ => None,
            })
            .collect(),
        Err(e) => return Line::fail(what, format!("{e}; {fix}")),
    };
    let confirmed: Vec<&String> = names
        .iter()
        .take(10)
        .filter(|n| addresses(dns, n).contains(&ip))
        .collect();
    match confirmed.first() {
        Some(n) if n.eq_ignore_ascii_case(host) => {
            Line::ok(what, format!("{n}, forward-confirmed"))
        }
        Some(n) => Line::warn(
            what,
            format!("{n} is forward-confirmed but is not {host}; {fix}"),
        ),
        None => Line::fail(
            what,
            format!(
                "{} does not resolve back to {ip}; {fix}",
                names.join(", ")
            ),
        ),
    }
}

/// Everything published for one mail domain.
pub fn domain_lines(
    cfg: &Config,
    domain: &str,
    ours: &[IpAddr],
    dns: &mut Lookup,
) -> Vec<Line> {
    let mut lines = vec![mx_line(cfg, domain, dns)];
    lines.push(spf_line(cfg, domain, ours, dns));
    for (d, selector, _) in
        cfg.dkim_keys.iter().filter(|(d, _, _)| d == domain)
    {
        lines.push(dkim_line(cfg, d, selector, dns));
    }
    lines.push(dmarc_line(domain, dns));
    if !cfg.listen_https.is_empty() {
        lines.push(sts_line(domain, dns));
        lines.push(tls_rpt_line(domain, dns));
    }
    lines.extend(srv_lines(cfg, domain, dns));
    if !cfg.listen_http.is_empty() || !cfg.listen_https.is_empty() {
        for name in ["autoconfig", "autodiscover"] {
            let full = format!("{name}.{domain}");
            let found = addresses(dns, &full);
            let what = format!("{name} {domain}");
            lines.push(match found.iter().any(|ip| ours.contains(ip)) {
                true => Line::ok(what, format!("{full} reaches us")),
                false => Line::warn(
                    what,
                    format!("publish: {full}. CNAME {}.", cfg.hostname),
                ),
            });
        }
    }
    lines
}

fn mx_line(cfg: &Config, domain: &str, dns: &mut Lookup) -> Line {
    let what = format!("MX {domain}");
    let fix = format!("publish: {domain}. MX 10 {}.", cfg.hostname);
    let exchanges: Vec<String> = match records(dns, domain, Qtype::Mx) {
        Ok(r) => r
            .into_iter()
            .filter_map(|r| match r {
                Rec::Mx(_, h) => Some(h),
                _ => None,
            })
            .collect(),
        Err(e) => return Line::fail(what, format!("{e}; {fix}")),
    };
    match exchanges
        .iter()
        .any(|h| h.eq_ignore_ascii_case(&cfg.hostname))
    {
        true => Line::ok(what, cfg.hostname.clone()),
        false => Line::fail(
            what,
            format!("points at {}, not us; {fix}", exchanges.join(", ")),
        ),
    }
}

fn spf_line(
    cfg: &Config,
    domain: &str,
    ours: &[IpAddr],
    dns: &mut Lookup,
) -> Line {
    let what = format!("SPF {domain}");
    let fix = format!("publish: {domain}. TXT \"v=spf1 mx -all\"");
    let record = match texts(dns, domain, "v=spf1") {
        Ok(r) if r.len() == 1 => r[0].clone(),
        Ok(_) => {
            return Line::fail(
                what,
                "more than one v=spf1 record (RFC 7208 4.5: permerror)",
            );
        }
        Err(e) => return Line::fail(what, format!("{e}; {fix}")),
    };
    let now = crate::util::date::now_secs();
    for ip in ours {
        let sender = format!("postmaster@{domain}");
        let mut check =
            Check::new(*ip, &sender, &cfg.hostname, &cfg.hostname, now);
        let verdict = loop {
            match check.step() {
                Step::Lookup(q) => {
                    let answer = dns.ask(&q.name, wire_type(q.qtype));
                    check.answer(spf_answer(answer));
                }
                Step::Done(v) => break v,
            }
        };
        if verdict.result != SpfResult::Pass {
            let mechanism = if ip.is_ipv4() { "ip4" } else { "ip6" };
            return Line::fail(
                what,
                format!(
                    "{ip} gets {} from \"{record}\"; add {mechanism}:{ip} (or mx)",
                    verdict.result.name()
                ),
            );
        }
    }
    let last = record.split_whitespace().last().unwrap_or("");
    match last {
        "-all" | "~all" => Line::ok(what, record),
        _ => Line::warn(
            what,
            format!("\"{record}\" should end in -all or ~all"),
        ),
    }
}

fn dkim_line(
    cfg: &Config,
    domain: &str,
    selector: &str,
    dns: &mut Lookup,
) -> Line {
    let name = format!("{selector}._domainkey.{domain}");
    let what = format!("DKIM {name}");
    let ours = match cfg.dkim_signers() {
        Ok(signers) => signers
            .into_iter()
            .find(|s| s.domain == domain && s.selector == selector)
            .map(|s| s.key.dns_record()),
        Err(e) => {
            return Line::fail(what, format!("the key does not load: {e}"));
        }
    };
    let Some(record) = ours else {
        return Line::fail(what, "the key does not load");
    };
    let fix = format!("publish: {name}. TXT \"{record}\"");
    let public = |text: &str| {
        crate::proto::dkim::tags::key(text).ok().map(|k| k.public)
    };
    match records(dns, &name, Qtype::Txt) {
        Ok(found) => {
            let texts: Vec<String> = found
                .into_iter()
                .filter_map(|r| match r {
                    Rec::Txt(t) => {
                        Some(String::from_utf8_lossy(&t).into_owned())
                    }
                    _ => None,
                })
                .collect();
            let want = public(&record);
            match texts
                .iter()
                .any(|t| public(t).is_some() && public(t) == want)
            {
                true => Line::ok(what, "matches the configured key"),
                false => Line::fail(
                    what,
                    format!("the published key is not ours; {fix}"),
                ),
            }
        }
        Err(e) => Line::fail(what, format!("{e}; {fix}")),
    }
}

fn dmarc_line(domain: &str, dns: &mut Lookup) -> Line {
    let name = format!("_dmarc.{domain}");
    let what = format!("DMARC {domain}");
    let fix = format!(
        "publish: {name}. TXT \"v=DMARC1; p=quarantine; rua=mailto:postmaster@{domain}\""
    );
    match texts(dns, &name, "v=DMARC1") {
        Ok(r) => match crate::proto::dmarc::record::parse(&r[0]) {
            Ok(rec) => Line::ok(what, format!("p={}", rec.policy.name())),
            Err(e) => Line::fail(
                what,
                format!("\"{}\" is not valid ({}); {fix}", r[0], e.0),
            ),
        },
        Err(e) => Line::fail(what, format!("{e}; {fix}")),
    }
}

fn sts_line(domain: &str, dns: &mut Lookup) -> Line {
    let name = format!("_mta-sts.{domain}");
    let what = format!("MTA-STS {domain}");
    match texts(dns, &name, "v=STSv1") {
        Ok(r) if r[0].contains("id=") => Line::ok(what, r[0].clone()),
        _ => Line::warn(
            what,
            format!(
                "publish: {name}. TXT \"v=STSv1; id={}\"",
                crate::util::date::now_secs()
            ),
        ),
    }
}

fn tls_rpt_line(domain: &str, dns: &mut Lookup) -> Line {
    let name = format!("_smtp._tls.{domain}");
    let what = format!("TLS-RPT {domain}");
    match texts(dns, &name, "v=TLSRPTv1") {
        Ok(r) => Line::ok(what, r[0].clone()),
        Err(_) => Line::warn(
            what,
            format!(
                "publish: {name}. TXT \"v=TLSRPTv1; rua=mailto:postmaster@{domain}\""
            ),
        ),
    }
}

/// RFC 6186 and 8314's SRV records for each client service we offer
/// over implicit TLS.
fn srv_lines(cfg: &Config, domain: &str, dns: &mut Lookup) -> Vec<Line> {
    let offered = [
        ("_submissions._tcp", &cfg.listen_submissions, 465),
        ("_imaps._tcp", &cfg.listen_imaps, 993),
        ("_pop3s._tcp", &cfg.listen_pop3s, 995),
    ];
    let mut lines = Vec::new();
    for (label, listeners, standard) in offered {
        let Some(listener) = listeners.first() else {
            continue;
        };
        let port = match listener.port() {
            0 => standard,
            p => p,
        };
        let name = format!("{label}.{domain}");
        let what = format!("SRV {name}");
        let fix = format!("publish: {name}. SRV 0 1 {port} {}.", cfg.hostname);
        let found: Vec<(u16, String)> = records(dns, &name, Qtype::Srv)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|r| match r {
                Rec::Srv(_, _, p, t) => Some((p, t)),
                _ => None,
            })
            .collect();
        lines.push(
            match found.iter().any(|(p, t)| {
                *p == port && t.eq_ignore_ascii_case(&cfg.hostname)
            }) {
                true => Line::ok(what, format!("{}:{port}", cfg.hostname)),
                false if found.is_empty() => Line::warn(what, fix),
                false => Line::warn(what, format!("points elsewhere; {fix}")),
            },
        );
    }
    lines
}

/// Each configured IP blocklist on each of our IPv4 addresses (and
/// IPv6 ones, for lists that carry them).
pub fn blocklist_lines(
    cfg: &Config,
    ours: &[IpAddr],
    dns: &mut Lookup,
) -> Vec<Line> {
    let mut lines = Vec::new();
    for zone in &cfg.spam.dnsbl {
        for ip in ours {
            let what = format!("blocklist {zone} {ip}");
            let name = dnsbl::ip_query(*ip, zone);
            let addrs: Vec<std::net::Ipv4Addr> = match dns.ask(&name, Qtype::A)
            {
                Ok(Found::Records(r)) => r
                    .into_iter()
                    .filter_map(|r| match r {
                        Rec::A(a) => Some(a),
                        _ => None,
                    })
                    .collect(),
                Ok(_) => Vec::new(),
                Err(e) => {
                    lines.push(Line::warn(
                        what,
                        format!("lookup failed ({e:?})"),
                    ));
                    continue;
                }
            };
            lines.push(match dnsbl::listing(&addrs) {
                Listing::NotListed => Line::ok(what, "not listed"),
                Listing::Listed(codes) => Line::fail(
                    what,
                    format!("listed ({codes:?}); ask the list to delist {ip}"),
                ),
                Listing::ListError(code) => Line::warn(
                    what,
                    format!("the list refused to answer ({code}): it does not serve public or shared resolvers; set dns_servers to your own"),
                ),
            });
        }
    }
    lines
}
