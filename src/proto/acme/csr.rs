//! A certificate signing request (PKCS#10, RFC 2986) for a new P-256
//! key, naming the host names in subjectAltName (RFC 5280 4.2.1.6):
//! DER written here, the signature made by ring. Also the key's PEM, as
//! the TLS listeners load it.

use crate::proto::dkim::sign::to_pem;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};

/// A new certificate key and its request.
pub struct Request {
    /// The request, DER.
    pub der: Vec<u8>,
    /// The key, PKCS#8 PEM.
    pub key_pem: String,
}

/// OIDs, DER-encoded contents.
const EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const PRIME256V1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const ECDSA_WITH_SHA256: &[u8] =
    &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
const EXTENSION_REQUEST: &[u8] =
    &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x0e];
const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];

/// A request for `names` (the first is also the subject's CN).
pub fn request(names: &[String]) -> Result<Request, &'static str> {
    let first = names.first().ok_or("no names to certify")?;
    let rng = SystemRandom::new();
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .map_err(|_| "could not make a key")?;
    let pair = EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_ASN1_SIGNING,
        pkcs8.as_ref(),
        &rng,
    )
    .map_err(|_| "could not read the new key")?;
    let algorithm = seq(&cat(&[&oid(EC_PUBLIC_KEY), &oid(PRIME256V1)]));
    let public =
        seq(&[&algorithm[..], &bit_string(pair.public_key().as_ref())]
            .concat());
    let cn = seq(&cat(&[&oid(COMMON_NAME), &tlv(0x0c, first.as_bytes())]));
    let subject = seq(&tlv(0x31, &cn));
    let general: Vec<u8> =
        names.iter().flat_map(|n| tlv(0x82, n.as_bytes())).collect();
    let san = seq(&cat(&[&oid(SUBJECT_ALT_NAME), &tlv(0x04, &seq(&general))]));
    let extensions = seq(&san);
    let request_ext =
        seq(&cat(&[&oid(EXTENSION_REQUEST), &tlv(0x31, &extensions)]));
    let attributes = tlv(0xa0, &request_ext);
    let version = tlv(0x02, &[0]);
    let info = seq(&[&version[..], &subject, &public, &attributes].concat());
    let signature = pair.sign(&rng, &info).map_err(|_| "signing failed")?;
    let signed_with = seq(&oid(ECDSA_WITH_SHA256));
    let der =
        seq(&[&info[..], &signed_with, &bit_string(signature.as_ref())]
            .concat());
    Ok(Request {
        der,
        key_pem: to_pem("PRIVATE KEY", pkcs8.as_ref()),
    })
}

fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = contents.len();
    match n {
        0..=0x7f => out.push(n as u8),
        0x80..=0xff => out.extend_from_slice(&[0x81, n as u8]),
        _ => out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(contents);
    out
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn seq(contents: &[u8]) -> Vec<u8> {
    tlv(0x30, contents)
}

fn oid(encoded: &[u8]) -> Vec<u8> {
    tlv(0x06, encoded)
}

fn bit_string(bits: &[u8]) -> Vec<u8> {
    tlv(0x03, &[&[0u8][..], bits].concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_names_every_host() {
        let names =
            vec!["mx.example.test".to_string(), "mta-sts.example.test".into()];
        let r = request(&names).unwrap();
        assert_eq!(r.der[0], 0x30);
        let text = String::from_utf8_lossy(&r.der);
        assert!(
            text.contains("mx.example.test")
                && text.contains("mta-sts.example.test")
        );
        assert!(r.key_pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert!(request(&[]).is_err());
    }
}
