//! The PROXY protocol header (HAProxy's spec, versions 1 and 2) that a
//! proxy in front of us sends before the client's first octet, naming the
//! client it accepted. Fed whatever has arrived; says it needs more, or
//! where the header ended and whom it names.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Version 1's longest header, CRLF included (the spec's own figure).
pub const MAX_V1: usize = 107;
/// Version 2: the 16-octet preamble and the longest address block we
/// take (addresses plus TLVs; HAProxy's own sends far less).
pub const MAX_V2: usize = 16 + 2048;

const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

/// What the input holds so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Header {
    /// Not a whole header yet.
    Incomplete,
    /// A header of `len` octets; `source` is the client, or `None` when
    /// the proxy speaks for itself (v2 LOCAL, v1 UNKNOWN: health checks).
    Done {
        /// Octets the header took.
        len: usize,
        /// The client's address.
        source: Option<SocketAddr>,
    },
    /// Not a PROXY header: the connection must be dropped.
    Invalid(&'static str),
}

/// Parses the start of `input`.
pub fn parse(input: &[u8]) -> Header {
    let v1 = b"PROXY ";
    let n = input.len().min(v1.len());
    if input[..n] == v1[..n] && n > 0 {
        return if n < v1.len() {
            Header::Incomplete
        } else {
            parse_v1(input)
        };
    }
    let n = input.len().min(V2_SIGNATURE.len());
    if n == 0 {
        return Header::Incomplete;
    }
    if input[..n] != V2_SIGNATURE[..n] {
        return Header::Invalid("no PROXY header");
    }
    if n < V2_SIGNATURE.len() {
        return Header::Incomplete;
    }
    parse_v2(input)
}

fn parse_v1(input: &[u8]) -> Header {
    let Some(end) =
        memchr::memmem::find(&input[..input.len().min(MAX_V1)], b"\r\n")
    else {
        return if input.len() >= MAX_V1 {
            Header::Invalid("PROXY v1 header too long")
        } else {
            Header::Incomplete
        };
    };
    let len = end + 2;
    let Ok(line) = std::str::from_utf8(&input[..end]) else {
        return Header::Invalid("PROXY v1 header is not text");
    };
    let fields: Vec<&str> = line.split(' ').collect();
    match fields.as_slice() {
        ["PROXY", "UNKNOWN", ..] => Header::Done { len, source: None },
        ["PROXY", family @ ("TCP4" | "TCP6"), src, dst, sport, dport] => {
            let v4 = *family == "TCP4";
            let ip = |s: &str| -> Option<IpAddr> {
                if v4 {
                    s.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
                } else {
                    s.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
                }
            };
            // Ports are decimal without leading zeros, 0 to 65535.
            let port = |s: &str| -> Option<u16> {
                let ok = !s.is_empty()
                    && s.bytes().all(|b| b.is_ascii_digit())
                    && (s == "0" || !s.starts_with('0'));
                ok.then(|| s.parse().ok()).flatten()
            };
            match (ip(src), ip(dst), port(sport), port(dport)) {
                (Some(ip), Some(_), Some(port), Some(_)) => Header::Done {
                    len,
                    source: Some(SocketAddr::new(ip, port)),
                },
                _ => Header::Invalid("bad PROXY v1 addresses"),
            }
        }
        _ => Header::Invalid("bad PROXY v1 header"),
    }
}

fn parse_v2(input: &[u8]) -> Header {
    if input.len() < 16 {
        return Header::Incomplete;
    }
    let version = input[12] >> 4;
    let command = input[12] & 0x0f;
    let family = input[13];
    let body = usize::from(u16::from_be_bytes([input[14], input[15]]));
    if version != 2 {
        return Header::Invalid("bad PROXY v2 version");
    }
    if 16 + body > MAX_V2 {
        return Header::Invalid("PROXY v2 header too long");
    }
    if input.len() < 16 + body {
        return Header::Incomplete;
    }
    let len = 16 + body;
    let block = &input[16..len];
    match command {
        // LOCAL: the proxy's own connection (a health check).
        0 => return Header::Done { len, source: None },
        1 => {}
        _ => return Header::Invalid("bad PROXY v2 command"),
    }
    let source = match family {
        // TCP or UDP over IPv4: src, dst, sport, dport.
        0x11 | 0x12 if block.len() >= 12 => {
            let ip = Ipv4Addr::new(block[0], block[1], block[2], block[3]);
            let port = u16::from_be_bytes([block[8], block[9]]);
            Some(SocketAddr::new(IpAddr::V4(ip), port))
        }
        0x21 | 0x22 if block.len() >= 36 => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&block[..16]);
            let port = u16::from_be_bytes([block[32], block[33]]);
            Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(octets)), port))
        }
        // UNSPEC (or a Unix socket): no address to go by.
        0x00 | 0x31 | 0x32 => None,
        _ => return Header::Invalid("bad PROXY v2 address block"),
    };
    Header::Done { len, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2(command: u8, family: u8, block: &[u8]) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        h.push(0x20 | command);
        h.push(family);
        h.extend_from_slice(&(block.len() as u16).to_be_bytes());
        h.extend_from_slice(block);
        h
    }

    /// Every prefix is Incomplete, the whole is `want`, and what
    /// follows the header is left alone.
    fn check(header: &[u8], want: Header) {
        for cut in 0..header.len() {
            assert_eq!(parse(&header[..cut]), Header::Incomplete, "cut {cut}");
        }
        assert_eq!(parse(header), want);
        let mut more = header.to_vec();
        more.extend_from_slice(b"EHLO x\r\n");
        assert_eq!(parse(&more), want);
    }

    #[test]
    fn version_1() {
        let h = b"PROXY TCP4 203.0.113.7 192.0.2.1 56324 25\r\n";
        check(
            h,
            Header::Done {
                len: h.len(),
                source: Some("203.0.113.7:56324".parse().unwrap()),
            },
        );
        let h = b"PROXY TCP6 2001:db8::7 2001:db8::1 4000 587\r\n";
        check(
            h,
            Header::Done {
                len: h.len(),
                source: Some("[2001:db8::7]:4000".parse().unwrap()),
            },
        );
        let h = b"PROXY UNKNOWN\r\n";
        check(
            h,
            Header::Done {
                len: h.len(),
                source: None,
            },
        );
    }

    #[test]
    fn version_2() {
        let mut block = vec![203, 0, 113, 7, 192, 0, 2, 1];
        block.extend_from_slice(&56324u16.to_be_bytes());
        block.extend_from_slice(&25u16.to_be_bytes());
        block.extend_from_slice(&[0x04, 0, 1, 0]); // a NOOP TLV
        let h = v2(1, 0x11, &block);
        check(
            &h,
            Header::Done {
                len: h.len(),
                source: Some("203.0.113.7:56324".parse().unwrap()),
            },
        );
        let mut block6 = vec![0x20, 0x01, 0x0d, 0xb8];
        block6.extend_from_slice(&[0; 11]);
        block6.push(7);
        block6.extend_from_slice(&[0; 16]);
        block6.extend_from_slice(&[0x0f, 0xa0, 0, 25]);
        let h = v2(1, 0x21, &block6);
        check(
            &h,
            Header::Done {
                len: h.len(),
                source: Some("[2001:db8::7]:4000".parse().unwrap()),
            },
        );
        let h = v2(0, 0x00, &[]);
        check(
            &h,
            Header::Done {
                len: 16,
                source: None,
            },
        );
    }

    #[test]
    fn nasty_headers() {
        for bad in [
            &b"EHLO x\r\n"[..],
            b"GET / HTTP/1.0\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 25\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 025 25\r\n",
            b"PROXY TCP4 ::1 5.6.7.8 1 25\r\n",
            b"PROXY TCP6 1.2.3.4 ::1 1 25\r\n",
            b"PROXY TCP4 1.2.3.4\r\n",
            b"PROXY \xff\xfe\r\n",
            b"\r\n\r\n\0\r\nQUIT\n\x31\x11\0\x0c",
            b"\r\n\r\n\0\r\nQUIT\n\x23\x11\0\x00",
            b"\r\n\r\n\0\r\nQUIT\n\x21\x11\0\x04abcd",
            b"\r\n\r\n\0\r\nQUIT\n\x21\x99\0\x00",
            b"\r\n\r\n\0\r\nQUIT\n\x21\x11\xff\xff",
        ] {
            assert!(matches!(parse(bad), Header::Invalid(_)), "{bad:?}");
        }
        let long = [&b"PROXY TCP4 "[..], &[b'1'; 200]].concat();
        assert!(matches!(parse(&long), Header::Invalid(_)));
    }
}
