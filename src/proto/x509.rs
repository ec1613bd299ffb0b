//! The one thing we read from our own certificate: when it expires
//! (RFC 5280 4.1.2.5), for `status`, `/metrics` and the log.

use crate::proto::dkim::der::element;
use crate::util::date::days_from_civil;

const SEQUENCE: u8 = 0x30;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// A DER certificate's notAfter, in seconds since the epoch.
pub fn not_after(der: &[u8]) -> Option<i64> {
    let (tag, cert, _) = element(der)?;
    let (tbs_tag, tbs, _) = element(cert)?;
    if tag != SEQUENCE || tbs_tag != SEQUENCE {
        return None;
    }
    let mut rest = tbs;
    // [0] version (optional), serialNumber, signature, issuer.
    let (first, _, after) = element(rest)?;
    if first == 0xa0 {
        rest = after;
    }
    for _ in 0..3 {
        rest = element(rest)?.2;
    }
    let (validity_tag, validity, _) = element(rest)?;
    if validity_tag != SEQUENCE {
        return None;
    }
    let (_, _, after_before) = element(validity)?;
    let (time_tag, time, _) = element(after_before)?;
    time_value(time_tag, time)
}

/// A DER certificate's DNS names and IP addresses (subjectAltName,
/// RFC 5280 4.2.1.6), lower-cased; the subject's CN is not read, as
/// clients no longer do.
pub fn names(der: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let Some((_, cert, _)) = element(der) else {
        return out;
    };
    let Some((_, tbs, _)) = element(cert) else {
        return out;
    };
    // The extensions are the [3] element at the end of the TBS.
    let mut rest = tbs;
    let mut extensions = None;
    while let Some((tag, body, after)) = element(rest) {
        if tag == 0xa3 {
            extensions = Some(body);
        }
        rest = after;
    }
    let Some((_, mut list, _)) = extensions.and_then(element) else {
        return out;
    };
    while let Some((_, ext, after)) = element(list) {
        list = after;
        let Some((_, oid, mut fields)) = element(ext) else {
            continue;
        };
        // 2.5.29.17, subjectAltName.
        if oid != [0x55, 0x1d, 0x11] {
            continue;
        }
        // An optional critical flag, then the OCTET STRING.
        if let Some((0x01, _, after)) = element(fields) {
            fields = after;
        }
        let Some((0x04, value, _)) = element(fields) else {
            continue;
        };
        let Some((_, mut general, _)) = element(value) else {
            continue;
        };
        while let Some((tag, name, after)) = element(general) {
            general = after;
            match (tag, name.len()) {
                // dNSName [2] IA5String
                (0x82, _) => out
                    .push(String::from_utf8_lossy(name).to_ascii_lowercase()),
                // iPAddress [7]
                (0x87, 4) => out.push(
                    std::net::Ipv4Addr::new(
                        name[0], name[1], name[2], name[3],
                    )
                    .to_string(),
                ),
                (0x87, 16) => {
                    let mut b = [0u8; 16];
                    b.copy_from_slice(name);
                    out.push(std::net::Ipv6Addr::from(b).to_string());
                }
                _ => {}
            }
        }
    }
    out
}

/// True if `names` (from [`names`]) cover `host`: exactly, or by a
/// wildcard for its first label.
pub fn covers(names: &[String], host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    names.iter().any(|n| {
        *n == host
            || n.strip_prefix("*.").is_some_and(|rest| {
                host.split_once('.')
                    .is_some_and(|(_, parent)| parent == rest)
            })
    })
}

/// UTCTime `YYMMDDHHMMSSZ` (years 1950-2049) or GeneralizedTime
/// `YYYYMMDDHHMMSSZ`.
fn time_value(tag: u8, text: &[u8]) -> Option<i64> {
    let digits = text.strip_suffix(b"Z")?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let number = |s: &[u8]| -> i64 {
        s.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0'))
    };
    let (year, rest) = match (tag, digits.len()) {
        (UTC_TIME, 12) => {
            let yy = number(&digits[..2]);
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, &digits[2..])
        }
        (GENERALIZED_TIME, 14) => (number(&digits[..4]), &digits[4..]),
        _ => return None,
    };
    let part = |i: usize| number(&rest[i * 2..i * 2 + 2]);
    let (month, day) = (part(0), part(1));
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let days = days_from_civil(year, month as u32, day as u32);
    Some(days * 86_400 + part(2) * 3600 + part(3) * 60 + part(4))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(time_value(UTC_TIME, b"700101000000Z"), Some(0));
        assert_eq!(
            time_value(GENERALIZED_TIME, b"20261207120000Z"),
            Some(1_796_644_800)
        );
        assert_eq!(
            time_value(UTC_TIME, b"491231235959Z"),
            Some(2_524_607_999)
        );
        assert_eq!(time_value(UTC_TIME, b"7001010000Z"), None);
        assert_eq!(time_value(UTC_TIME, b"701301000000Z"), None);
        assert_eq!(not_after(b"\x30\x03\x02\x01\x00"), None);
    }

    #[test]
    fn wildcards_cover_one_label() {
        let names = vec!["*.example.test".to_string(), "mx.other.test".into()];
        assert!(covers(&names, "mta-sts.example.test"));
        assert!(covers(&names, "MX.other.test"));
        assert!(!covers(&names, "example.test"));
        assert!(!covers(&names, "a.b.example.test"));
        assert!(super::names(b"junk").is_empty());
    }
}
