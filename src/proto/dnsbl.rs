//! DNS blocklists (RFC 5782): the names to ask, what an answer means,
//! and the health check that keeps a dead or hijacked list from
//! refusing everyone. Sans-I/O: the loop asks, this reads.
//!
//! An IP list is asked `4.3.2.1.zone` (IPv6: 32 reversed nibbles); a
//! domain list `example.org.zone`. An A record in 127.0.0.2–127.0.0.254
//! means listed. An answer in 127.255.255.0/24 is the list speaking of
//! itself (Spamhaus: "query through a public resolver", "over quota"):
//! never a listing, and said in the log.

use std::net::{IpAddr, Ipv4Addr};

/// What one list says of one name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listing {
    NotListed,
    /// Listed, with the A records' codes (127.0.0.x).
    Listed(Vec<Ipv4Addr>),
    /// The list's own error code (127.255.255.x): ignored.
    ListError(Ipv4Addr),
}

/// Reads a list's A records for one name: NXDOMAIN or no record is
/// `NotListed`; anything outside 127/8 is not a listing either (a
/// wildcarding resolver's advertisement page, say).
pub fn listing(addrs: &[Ipv4Addr]) -> Listing {
    if let Some(&code) = addrs.iter().find(|a| is_list_error(**a)) {
        return Listing::ListError(code);
    }
    let codes: Vec<Ipv4Addr> =
        addrs.iter().copied().filter(|a| is_listing(*a)).collect();
    match codes.is_empty() {
        true => Listing::NotListed,
        false => Listing::Listed(codes),
    }
}

/// 127.0.0.2 to 127.0.0.254 (RFC 5782 §2.3: 127.0.0.1 must never list).
fn is_listing(a: Ipv4Addr) -> bool {
    let [x, y, z, w] = a.octets();
    x == 127 && y == 0 && z == 0 && (2..=254).contains(&w)
}

fn is_list_error(a: Ipv4Addr) -> bool {
    let [x, y, z, _] = a.octets();
    (x, y, z) == (127, 255, 255)
}

/// The name to ask `zone` about the client `ip`.
pub fn ip_query(ip: IpAddr, zone: &str) -> String {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.{zone}")
        }
        IpAddr::V6(v6) => {
            let mut name = String::with_capacity(64 + zone.len() + 1);
            for byte in v6.octets().iter().rev() {
                for nibble in [byte & 0x0f, byte >> 4] {
                    name.push(
                        char::from_digit(u32::from(nibble), 16).unwrap_or('0'),
                    );
                    name.push('.');
                }
            }
            name.push_str(zone);
            name
        }
    }
}

/// The name to ask `zone` about `domain` (a sender's or a link's).
pub fn domain_query(domain: &str, zone: &str) -> Option<String> {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let name = format!("{domain}.{zone}");
    // A name past DNS's 253 octets cannot be listed (nor asked).
    (!domain.is_empty() && name.len() <= 253).then_some(name)
}

/// What a list holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Client addresses (`dnsbl`).
    Ip,
    /// Domains (`rhsbl`).
    Domain,
}

/// The health check's two questions for a list of `kind`: a name it
/// must list, and a name it must not (RFC 5782 §5: 127.0.0.2 and
/// 127.0.0.1 for IP lists; `test` and `invalid` for domain lists).
pub fn health_queries(kind: Kind, zone: &str) -> [String; 2] {
    match kind {
        Kind::Ip => [
            ip_query(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), zone),
            ip_query(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)), zone),
        ],
        Kind::Domain => [format!("test.{zone}"), format!("invalid.{zone}")],
    }
}

/// The health check's verdict from its two answers (None: no answer,
/// the list is unreachable).
pub fn healthy(
    must: Option<&Listing>,
    must_not: Option<&Listing>,
) -> Result<(), &'static str> {
    match (must, must_not) {
        (None, _) | (_, None) => Err("the list does not answer"),
        (_, Some(Listing::Listed(_))) => Err(
            "it lists the entry it must not (127.0.0.1 or invalid): it lists everything",
        ),
        (Some(Listing::ListError(_)), _)
        | (_, Some(Listing::ListError(_))) => Err(
            "it answers with its own error code (a public resolver, or over quota)",
        ),
        (Some(Listing::NotListed), _) => {
            Err("it does not list its test entry (127.0.0.2 or test)")
        }
        (Some(Listing::Listed(_)), Some(Listing::NotListed)) => Ok(()),
    }
}

/// Longest list reason kept for a reply.
const MAX_REASON: usize = 200;

/// A list's TXT reason, made safe for an SMTP reply: printable ASCII
/// only, one line, capped.
pub fn reason(texts: &[Vec<u8>]) -> Option<String> {
    let text: String = texts
        .first()?
        .iter()
        .map(|&b| match b {
            0x20..=0x7e => b as char,
            _ => '?',
        })
        .take(MAX_REASON)
        .collect();
    let text = text.trim().to_string();
    (!text.is_empty()).then_some(text)
}

/// Resolvers that answer for everyone: blocklists refuse them (or
/// answer 127.255.255.254), so listing checks through them fail.
pub const PUBLIC_RESOLVERS: &[&str] = &[
    "8.8.8.8",
    "8.8.4.4",
    "1.1.1.1",
    "1.0.0.1",
    "9.9.9.9",
    "149.112.112.112",
    "208.67.222.222",
    "208.67.220.220",
    "94.140.14.14",
    "94.140.15.15",
    "2001:4860:4860::8888",
    "2001:4860:4860::8844",
    "2606:4700:4700::1111",
    "2606:4700:4700::1001",
    "2620:fe::fe",
];

/// True for a well-known public resolver.
pub fn is_public_resolver(ip: IpAddr) -> bool {
    PUBLIC_RESOLVERS
        .iter()
        .any(|r| r.parse::<IpAddr>().is_ok_and(|p| p == ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn query_names() {
        let ip = "192.0.2.99".parse().unwrap();
        assert_eq!(ip_query(ip, "bl.test"), "99.2.0.192.bl.test");
        // RFC 5782 §2.4: 32 nibbles, least significant first.
        let ip6 = "2001:db8:1:2:3:4:567:89ab".parse().unwrap();
        assert_eq!(
            ip_query(ip6, "bl.test"),
            "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.bl.test"
        );
        // A v4 client seen on a v6 socket is asked as v4.
        let mapped = "::ffff:192.0.2.99".parse().unwrap();
        assert_eq!(ip_query(mapped, "bl.test"), "99.2.0.192.bl.test");
        assert_eq!(
            domain_query("Spam.Example.", "dbl.test").as_deref(),
            Some("spam.example.dbl.test")
        );
        assert_eq!(domain_query("", "dbl.test"), None);
        assert_eq!(domain_query(&"a.".repeat(130), "dbl.test"), None);
    }

    #[test]
    fn answers() {
        assert_eq!(listing(&[]), Listing::NotListed);
        assert_eq!(
            listing(&[v4("127.0.0.2"), v4("127.0.0.11")]),
            Listing::Listed(vec![v4("127.0.0.2"), v4("127.0.0.11")])
        );
        // 127.0.0.1 and addresses outside 127/8 never list.
        assert_eq!(listing(&[v4("127.0.0.1")]), Listing::NotListed);
        assert_eq!(listing(&[v4("203.0.113.5")]), Listing::NotListed);
        // Spamhaus's "public resolver" answer is an error, not a listing,
        // even beside a listing code.
        assert_eq!(
            listing(&[v4("127.0.0.2"), v4("127.255.255.254")]),
            Listing::ListError(v4("127.255.255.254"))
        );
    }

    #[test]
    fn health() {
        let listed = Listing::Listed(vec![v4("127.0.0.2")]);
        let not = Listing::NotListed;
        let error = Listing::ListError(v4("127.255.255.254"));
        assert_eq!(healthy(Some(&listed), Some(&not)), Ok(()));
        assert!(healthy(Some(&listed), Some(&listed)).is_err());
        assert!(healthy(Some(&not), Some(&not)).is_err());
        assert!(healthy(Some(&error), Some(&error)).is_err());
        assert!(healthy(None, Some(&not)).is_err());
        assert_eq!(
            health_queries(Kind::Ip, "bl.test"),
            ["2.0.0.127.bl.test".to_string(), "1.0.0.127.bl.test".into()]
        );
        assert_eq!(
            health_queries(Kind::Domain, "dbl.test"),
            ["test.dbl.test".to_string(), "invalid.dbl.test".into()]
        );
    }

    #[test]
    fn reasons_are_tame() {
        let texts = vec![b"Listed\r\nInjected: 250 ok \x1b[31m".to_vec()];
        let r = reason(&texts).unwrap();
        assert!(r.bytes().all(|b| (0x20..=0x7e).contains(&b)), "{r}");
        assert_eq!(reason(&[vec![b'x'; 5000]]).unwrap().len(), MAX_REASON);
        assert_eq!(reason(&[]), None);
        assert_eq!(reason(&[b"   ".to_vec()]), None);
        assert!(is_public_resolver("8.8.8.8".parse().unwrap()));
        assert!(!is_public_resolver("127.0.0.1".parse().unwrap()));
    }
}
