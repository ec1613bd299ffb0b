//! Just enough DER to take an RSA public key out of a DKIM key record:
//! `p=` holds a SubjectPublicKeyInfo (RFC 6376 3.6.1), and some domains
//! publish the bare RSAPublicKey (RFC 8017 A.1.1) instead. Ring checks
//! the signature; this only finds the modulus and the exponent.

/// An RSA public key's parts, big-endian, without leading zeros.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsaParts<'a> {
    pub n: &'a [u8],
    pub e: &'a [u8],
}

impl RsaParts<'_> {
    /// The modulus' size in bits.
    pub fn bits(&self) -> usize {
        match self.n.first() {
            None => 0,
            Some(&top) => self.n.len() * 8 - top.leading_zeros() as usize,
        }
    }
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;

/// One element: its tag, contents, and what follows it.
pub fn element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = match first {
        0..=0x7f => (usize::from(first), rest),
        0x81..=0x83 => {
            let n = usize::from(first & 0x7f);
            let bytes = rest.get(..n)?;
            let len =
                bytes.iter().fold(0usize, |a, &b| a << 8 | usize::from(b));
            (len, &rest[n..])
        }
        _ => return None,
    };
    let contents = rest.get(..len)?;
    Some((tag, contents, &rest[len..]))
}

fn unsigned(int: &[u8]) -> &[u8] {
    let zeros = int.iter().take_while(|&&b| b == 0).count();
    &int[zeros..]
}

/// `SEQUENCE { INTEGER n, INTEGER e }`.
fn rsa_public_key(der: &[u8]) -> Option<RsaParts<'_>> {
    let (tag, body, _) = element(der)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tn, n, rest) = element(body)?;
    let (te, e, _) = element(rest)?;
    (tn == INTEGER && te == INTEGER).then(|| RsaParts {
        n: unsigned(n),
        e: unsigned(e),
    })
}

/// The key in `p=`: a SubjectPublicKeyInfo wrapping an RSAPublicKey, or
/// the RSAPublicKey alone.
pub fn rsa_parts(der: &[u8]) -> Option<RsaParts<'_>> {
    let (tag, body, _) = element(der)?;
    if tag != SEQUENCE {
        return None;
    }
    let (first, _, rest) = element(body)?;
    if first == INTEGER {
        return rsa_public_key(der);
    }
    // AlgorithmIdentifier, then the key as a BIT STRING.
    let (tb, bits, _) = element(rest)?;
    if first != SEQUENCE || tb != BIT_STRING {
        return None;
    }
    match bits.split_first() {
        Some((0, key)) => rsa_public_key(key),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64ct::{Base64, Encoding};

    #[test]
    fn finds_the_modulus() {
        // RFC 6376 Appendix C's 1024-bit key.
        let spki = Base64::decode_vec("MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDwIRP/UC3SBsEmGqZ9ZJW3/DkMoGeLnQg1fWn7/zYtIxN2SnFCjxOCKG9v3b4jYfcTNh5ijSsq631uBItLa7od+v/RtdC2UzJ1lWT947qR+Rcac2gbto/NMqJ0fzfVjH4OuKhitdY9tf6mcwGjaNBcWToIMmPSPDdQPNUYckcQ2QIDAQAB").unwrap();
        let parts = rsa_parts(&spki).unwrap();
        assert_eq!(parts.bits(), 1024);
        assert_eq!(parts.e, [1, 0, 1]);
        // The bare RSAPublicKey inside reads the same.
        let inner = &spki[spki.len() - 140..];
        assert_eq!(rsa_parts(inner), Some(parts));
        for bad in [
            &b""[..],
            b"\x30",
            b"\x30\x84\0\0\0\0",
            b"\x02\x01\x00",
            &spki[..50],
        ] {
            assert_eq!(rsa_parts(bad), None);
        }
    }
}
