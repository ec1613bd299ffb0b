//! DNS messages through hickory-proto's wire format: a query for one
//! name and type, and an answer checked against the question asked.

use std::net::{Ipv4Addr, Ipv6Addr};

use hickory_proto::op::{
    Edns, Message, MessageType, OpCode, Query, ResponseCode,
};
use hickory_proto::rr::{Name, RData, RecordType};

/// The record types we ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Qtype {
    /// IPv4 addresses.
    A,
    /// IPv6 addresses.
    Aaaa,
    /// Mail exchangers.
    Mx,
    /// Reverse names.
    Ptr,
    /// Text (DKIM keys, SPF).
    Txt,
    /// Services (RFC 2782; mail clients' RFC 6186).
    Srv,
}

impl Qtype {
    fn record_type(self) -> RecordType {
        match self {
            Qtype::A => RecordType::A,
            Qtype::Aaaa => RecordType::AAAA,
            Qtype::Mx => RecordType::MX,
            Qtype::Ptr => RecordType::PTR,
            Qtype::Txt => RecordType::TXT,
            Qtype::Srv => RecordType::SRV,
        }
    }
}

/// One record of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rec {
    /// An IPv4 address.
    A(Ipv4Addr),
    /// An IPv6 address.
    Aaaa(Ipv6Addr),
    /// Preference and host (lower case, no final dot; `""` for the
    /// null MX of RFC 7505).
    Mx(u16, String),
    /// A name (lower case, no final dot).
    Ptr(String),
    /// A TXT record's strings joined.
    Txt(Vec<u8>),
    /// Priority, weight, port and target (lower case, no final dot).
    Srv(u16, u16, u16, String),
}

/// What a server said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Said {
    /// Records for the name asked (after any CNAMEs), with the lowest TTL.
    Records(Vec<Rec>, u32),
    /// The name is an alias; ask again for this one.
    Alias(String),
    /// The name exists but has no such records; how long to remember.
    NoData(u32),
    /// No such name; how long to remember.
    NxDomain(u32),
    /// SERVFAIL, REFUSED and the like: try another server.
    Failed(&'static str),
    /// Cut short: ask again over TCP.
    Truncated,
}

/// A name in the form we query and compare: ASCII, lower case, no final
/// dot. None if it is not a valid host name.
pub fn normalize(name: &str) -> Option<String> {
    let n = Name::from_utf8(name).ok()?;
    let mut text = n.to_lowercase().to_ascii();
    if text.ends_with('.') {
        text.pop();
    }
    (!text.is_empty() && text.len() <= 253).then_some(text)
}

/// The query message for `name` and `qtype` with this id (recursion
/// desired, EDNS0 with a 1232-octet UDP size, as DNS Flag Day 2020
/// suggests).
pub fn query(id: u16, name: &str, qtype: Qtype) -> Option<Vec<u8>> {
    let name = Name::from_ascii(format!("{name}.")).ok()?;
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(name, qtype.record_type()));
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    m.set_edns(edns);
    m.to_vec().ok()
}

/// Reads an answer to the query (`id`, `name`, `qtype`); None if it is
/// not one (another id, a query, another question): such datagrams are
/// dropped, which is the spoofing defence with random ids and ports.
pub fn answer(
    bytes: &[u8],
    id: u16,
    name: &str,
    qtype: Qtype,
) -> Option<Said> {
    let m = Message::from_vec(bytes).ok()?;
    if m.metadata.id != id || m.metadata.message_type != MessageType::Response
    {
        return None;
    }
    let [q] = m.queries.as_slice() else {
        return None;
    };
    if q.query_type() != qtype.record_type() || text_of(q.name()) != name {
        return None;
    }
    if m.metadata.truncation {
        return Some(Said::Truncated);
    }
    let negative_ttl = || {
        m.authorities
            .iter()
            .find_map(|r| match &r.data {
                RData::SOA(soa) => Some(soa.minimum.min(r.ttl)),
                _ => None,
            })
            .unwrap_or(60)
    };
    match m.metadata.response_code {
        ResponseCode::NoError => {}
        ResponseCode::NXDomain => return Some(Said::NxDomain(negative_ttl())),
        ResponseCode::ServFail => return Some(Said::Failed("SERVFAIL")),
        ResponseCode::Refused => return Some(Said::Failed("REFUSED")),
        _ => return Some(Said::Failed("error")),
    }
    // Follow the CNAMEs the server gave along with the answer.
    let mut owner = name.to_string();
    for _ in 0..8 {
        let next = m.answers.iter().find_map(|r| match &r.data {
            RData::CNAME(c) if text_of(&r.name) == owner => {
                Some(text_of(&c.0))
            }
            _ => None,
        });
        match next {
            Some(n) => owner = n,
            None => break,
        }
    }
    let mut ttl = u32::MAX;
    let mut recs = Vec::new();
    let mut malformed = false;
    for r in &m.answers {
        if text_of(&r.name) != owner || r.record_type() != qtype.record_type()
        {
            continue;
        }
        let rec = match &r.data {
            RData::A(a) => Rec::A(a.0),
            RData::AAAA(a) => Rec::Aaaa(a.0),
            RData::MX(mx) => match host_of(&mx.exchange) {
                Some(h) => Rec::Mx(mx.preference, h),
                None => {
                    malformed = true;
                    continue;
                }
            },
            RData::PTR(p) => match host_of(&p.0) {
                Some(h) => Rec::Ptr(h),
                None => {
                    malformed = true;
                    continue;
                }
            },
            RData::TXT(t) => Rec::Txt(
                t.txt_data.iter().flat_map(|s| s.iter().copied()).collect(),
            ),
            RData::SRV(srv) => match host_of(&srv.target) {
                Some(h) => Rec::Srv(srv.priority, srv.weight, srv.port, h),
                None => {
                    malformed = true;
                    continue;
                }
            },
            _ => continue,
        };
        ttl = ttl.min(r.ttl);
        recs.push(rec);
    }
    if !recs.is_empty() {
        return Some(Said::Records(recs, ttl));
    }
    if malformed {
        // Records there, none usable: not "no MX" (that would mean the
        // domain's own address).
        return Some(Said::Failed("no usable host name in the answer"));
    }
    if owner != name {
        return Some(Said::Alias(owner));
    }
    Some(Said::NoData(negative_ttl()))
}

fn text_of(n: &Name) -> String {
    let mut t = n.to_lowercase().to_ascii();
    if t.ends_with('.') {
        t.pop();
    }
    t
}

/// A name that must be a host name (an MX exchange, a PTR target):
/// letters, digits, `-`, `_` and dots, or the root (`""`, the null MX).
/// Anything else is the domain owner's mischief, kept out of our logs,
/// our TLS server names and our connections.
fn host_of(n: &Name) -> Option<String> {
    let t = text_of(n);
    t.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        .then_some(t)
}

/// The name a PTR query for `ip` asks (`4.3.2.1.in-addr.arpa`).
pub fn reverse_name(ip: std::net::IpAddr) -> String {
    text_of(&Name::from(ip))
}

/// The reply a test server gives: `id`, the question, these records.
#[cfg(test)]
pub fn test_reply(
    id: u16,
    name: &str,
    qtype: Qtype,
    records: Vec<(String, RData)>,
    truncated: bool,
) -> Vec<u8> {
    use hickory_proto::rr::Record;
    use std::str::FromStr;
    let mut m = Message::new(id, MessageType::Response, OpCode::Query);
    m.metadata.truncation = truncated;
    m.add_query(Query::query(
        Name::from_ascii(format!("{name}.")).unwrap(),
        qtype.record_type(),
    ));
    for (owner, data) in records {
        m.add_answer(Record::from_rdata(
            Name::from_str(&format!("{owner}.")).unwrap(),
            300,
            data,
        ));
    }
    m.to_vec().unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::{A, CNAME, MX};

    #[test]
    fn queries_and_answers() {
        let q = query(7, "example.org", Qtype::Mx).unwrap_or_default();
        let m = Message::from_vec(&q).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.metadata.id, 7);
        assert!(m.metadata.recursion_desired);
        let mx = |p, h: &str| {
            RData::MX(MX::new(p, Name::from_ascii(format!("{h}.")).unwrap()))
        };
        let reply = test_reply(
            7,
            "example.org",
            Qtype::Mx,
            vec![
                ("Example.ORG".into(), mx(10, "MX1.example.org")),
                ("example.org".into(), mx(20, "mx2.example.org")),
            ],
            false,
        );
        assert_eq!(
            answer(&reply, 7, "example.org", Qtype::Mx),
            Some(Said::Records(
                vec![
                    Rec::Mx(10, "mx1.example.org".into()),
                    Rec::Mx(20, "mx2.example.org".into())
                ],
                300
            ))
        );
        // An exchange that is no host name is left out.
        let odd = Name::from_labels(vec![&b"mx 1\n"[..], b"example", b"org"])
            .unwrap_or_else(|e| panic!("{e}"));
        let reply = test_reply(
            7,
            "example.org",
            Qtype::Mx,
            vec![
                ("example.org".into(), RData::MX(MX::new(5, odd))),
                ("example.org".into(), mx(20, "mx2.example.org")),
            ],
            false,
        );
        assert_eq!(
            answer(&reply, 7, "example.org", Qtype::Mx),
            Some(Said::Records(
                vec![Rec::Mx(20, "mx2.example.org".into())],
                300
            ))
        );
        let only_odd = test_reply(
            7,
            "example.org",
            Qtype::Mx,
            vec![(
                "example.org".into(),
                RData::MX(MX::new(
                    5,
                    Name::from_labels(vec![&b"a b"[..], b"org"])
                        .unwrap_or_else(|e| panic!("{e}")),
                )),
            )],
            false,
        );
        assert!(matches!(
            answer(&only_odd, 7, "example.org", Qtype::Mx),
            Some(Said::Failed(_))
        ));
        // Another id, another name or another type: not an answer.
        assert_eq!(answer(&reply, 8, "example.org", Qtype::Mx), None);
        assert_eq!(answer(&reply, 7, "example.com", Qtype::Mx), None);
        assert_eq!(answer(&reply, 7, "example.org", Qtype::A), None);
        assert_eq!(answer(b"garbage", 7, "example.org", Qtype::Mx), None);
        let cut = test_reply(7, "example.org", Qtype::Mx, vec![], true);
        assert_eq!(
            answer(&cut, 7, "example.org", Qtype::Mx),
            Some(Said::Truncated)
        );
    }

    #[test]
    fn cnames() {
        let cname =
            RData::CNAME(CNAME(Name::from_ascii("b.example.").unwrap()));
        let a = RData::A(A(Ipv4Addr::new(192, 0, 2, 1)));
        let both = test_reply(
            1,
            "a.example",
            Qtype::A,
            vec![("a.example".into(), cname.clone()), ("b.example".into(), a)],
            false,
        );
        assert_eq!(
            answer(&both, 1, "a.example", Qtype::A),
            Some(Said::Records(
                vec![Rec::A(Ipv4Addr::new(192, 0, 2, 1))],
                300
            ))
        );
        let only = test_reply(
            1,
            "a.example",
            Qtype::A,
            vec![("a.example".into(), cname)],
            false,
        );
        assert_eq!(
            answer(&only, 1, "a.example", Qtype::A),
            Some(Said::Alias("b.example".into()))
        );
    }

    #[test]
    fn names() {
        assert_eq!(normalize("Example.ORG."), Some("example.org".into()));
        assert_eq!(normalize(""), None);
        assert_eq!(
            reverse_name("192.0.2.1".parse().unwrap()),
            "1.2.0.192.in-addr.arpa"
        );
    }
}
