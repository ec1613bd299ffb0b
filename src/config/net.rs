//! Address ranges for `trusted_networks`: `192.0.2.0/24`, `2001:db8::/32`
//! or a bare address.

use std::net::IpAddr;

/// One CIDR block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    bits: u8,
}

impl Cidr {
    /// Parses `addr/len` or `addr` (a single host).
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let bad = || format!("bad network {s:?} (addr/len)");
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr = addr.trim_start_matches('[').trim_end_matches(']');
        let net: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let bits = match len {
            Some(l) => {
                l.parse::<u8>().ok().filter(|&b| b <= max).ok_or_else(bad)?
            }
            None => max,
        };
        Ok(Cidr { net, bits })
    }

    /// True for `0.0.0.0/0` and `::/0`.
    pub fn is_everything(&self) -> bool {
        self.bits == 0
    }

    /// True if `ip` is inside the block.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(
                u128::from(u32::from(n)) << 96,
                u128::from(u32::from(a)) << 96,
                self.bits,
            ),
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                prefix_eq(u128::from(n), u128::from(a), self.bits)
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.net, self.bits)
    }
}

/// The key one client counts under for connection and login limits: its
/// IPv4 address, or its IPv6 address cut to `v6_bits` (one /64 is one
/// subscriber; counting each address would let it take every slot).
pub fn client_key(ip: IpAddr, v6_bits: u8) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u32::from(v6_bits.clamp(1, 128));
                let mask = u128::MAX << (128 - bits);
                IpAddr::V6((u128::from(v6) & mask).into())
            }
        },
    }
}

fn prefix_eq(a: u128, b: u128, bits: u8) -> bool {
    if bits == 0 {
        return true;
    }
    let mask = u128::MAX << (128 - u32::from(bits));
    a & mask == b & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn blocks() {
        let c = Cidr::parse("192.0.2.0/24").unwrap();
        assert!(c.contains(ip("192.0.2.77")));
        assert!(!c.contains(ip("192.0.3.1")));
        assert!(!c.contains(ip("::1")));
        let h = Cidr::parse("10.1.2.3").unwrap();
        assert!(h.contains(ip("10.1.2.3")) && !h.contains(ip("10.1.2.4")));
        let v6 = Cidr::parse("[2001:db8::]/32").unwrap();
        assert!(v6.contains(ip("2001:db8:ffff::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        for bad in ["x", "1.2.3.4/33", "::/129", "1.2.3.4/-1", ""] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ipv6_clients_count_by_prefix() {
        let a = client_key(ip("2001:db8:1:2:aaaa::1"), 64);
        let b = client_key(ip("2001:db8:1:2:bbbb::7"), 64);
        let c = client_key(ip("2001:db8:1:3::1"), 64);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a, ip("2001:db8:1:2::"));
        assert_eq!(client_key(ip("192.0.2.9"), 64), ip("192.0.2.9"));
        assert_eq!(client_key(ip("::ffff:192.0.2.9"), 64), ip("192.0.2.9"));
        assert_eq!(client_key(ip("2001:db8::5"), 128), ip("2001:db8::5"));
    }
}
