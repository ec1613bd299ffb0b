//! DKIM signatures (RFC 6376 rsa-sha256, RFC 8463 ed25519-sha256),
//! relaxed/relaxed, made with ring: the keys, the DNS record that
//! publishes each, and the `DKIM-Signature` field for a message.

use base64ct::{Base64, Encoding};
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};

use super::canon;

/// The fields signed when present, in this order; From once more than
/// it occurs, so none can be added later (over-signing).
const SIGNED: [&str; 12] = [
    "from",
    "reply-to",
    "subject",
    "date",
    "to",
    "cc",
    "message-id",
    "in-reply-to",
    "references",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
];

/// A private key.
pub enum Key {
    /// RSA, 2048 to 4096 bits.
    Rsa(RsaKeyPair),
    /// Ed25519.
    Ed25519(Ed25519KeyPair),
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Key::Rsa(_) => "Key::Rsa",
            Key::Ed25519(_) => "Key::Ed25519",
        })
    }
}

impl Key {
    /// A key from PEM text: PKCS#8 (`BEGIN PRIVATE KEY`, RSA or
    /// Ed25519) or PKCS#1 (`BEGIN RSA PRIVATE KEY`).
    pub fn from_pem(text: &str) -> Result<Key, String> {
        let (label, der) = pem(text).ok_or("no PEM private key")?;
        let key = match label.as_str() {
            "RSA PRIVATE KEY" => Key::Rsa(
                RsaKeyPair::from_der(&der)
                    .map_err(|e| format!("bad RSA key: {e}"))?,
            ),
            "PRIVATE KEY" => match RsaKeyPair::from_pkcs8(&der) {
                Ok(k) => Key::Rsa(k),
                Err(_) => Key::Ed25519(
                    Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).map_err(
                        |e| format!("not an RSA or Ed25519 key: {e}"),
                    )?,
                ),
            },
            other => return Err(format!("a {other} is not a private key")),
        };
        if let Key::Rsa(k) = &key {
            let bits = k.public().modulus_len() * 8;
            if !(2048..=4096).contains(&bits) {
                return Err(format!(
                    "RSA keys must have 2048 to 4096 bits, not {bits}"
                ));
            }
        }
        Ok(key)
    }

    fn algorithm(&self) -> &'static str {
        match self {
            Key::Rsa(_) => "rsa-sha256",
            Key::Ed25519(_) => "ed25519-sha256",
        }
    }

    /// The TXT record's value that publishes the public key.
    pub fn dns_record(&self) -> String {
        match self {
            Key::Rsa(k) => format!(
                "v=DKIM1; k=rsa; p={}",
                Base64::encode_string(&spki_rsa(k.public().as_ref()))
            ),
            Key::Ed25519(k) => format!(
                "v=DKIM1; k=ed25519; p={}",
                Base64::encode_string(k.public_key().as_ref())
            ),
        }
    }
}

/// An Ed25519 key, new, as PKCS#8 DER (`dkim keygen --ed25519`).
pub fn new_ed25519() -> Result<Vec<u8>, String> {
    Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
        .map(|d| d.as_ref().to_vec())
        .map_err(|_| "no random numbers".to_string())
}

/// PEM text for DER bytes.
pub fn to_pem(label: &str, der: &[u8]) -> String {
    let b64 = Base64::encode_string(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The first PEM block: its label and bytes.
fn pem(text: &str) -> Option<(String, Vec<u8>)> {
    let start = text.find("-----BEGIN ")?;
    let rest = &text[start + 11..];
    let label_end = rest.find("-----")?;
    let label = rest[..label_end].to_string();
    let body = &rest[label_end + 5..];
    let end = body.find(&format!("-----END {label}-----"))?;
    let b64: String =
        body[..end].chars().filter(|c| !c.is_whitespace()).collect();
    Some((label, Base64::decode_vec(&b64).ok()?))
}

/// An RSAPublicKey (PKCS#1) wrapped as SubjectPublicKeyInfo, the form
/// DKIM's `p=` holds.
fn spki_rsa(pkcs1: &[u8]) -> Vec<u8> {
    // AlgorithmIdentifier: rsaEncryption (1.2.840.113549.1.1.1), NULL.
    const ALG: [u8; 15] = [
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01,
        0x01, 0x01, 0x05, 0x00,
    ];
    let mut bits = vec![0x03];
    bits.extend(der_len(pkcs1.len() + 1));
    bits.push(0);
    bits.extend_from_slice(pkcs1);
    let mut inner = ALG.to_vec();
    inner.extend(bits);
    let mut out = vec![0x30];
    out.extend(der_len(inner.len()));
    out.extend(inner);
    out
}

fn der_len(n: usize) -> Vec<u8> {
    if n < 0x80 {
        return vec![n as u8];
    }
    let bytes: Vec<u8> = n
        .to_be_bytes()
        .iter()
        .copied()
        .skip_while(|&b| b == 0)
        .collect();
    let mut out = vec![0x80 | bytes.len() as u8];
    out.extend(bytes);
    out
}

/// One domain's signing key.
#[derive(Debug)]
pub struct Signer {
    /// `d=`.
    pub domain: String,
    /// `s=`.
    pub selector: String,
    /// The key.
    pub key: Key,
}

impl Signer {
    /// The `DKIM-Signature` field (LF line ends, folded) for a message
    /// whose header block is `head` (fields only, LF or CRLF) and whose
    /// canonical body hash is `body_hash`, signed at `now`.
    pub fn sign(
        &self,
        head: &[u8],
        body_hash: &[u8; 32],
        now: i64,
    ) -> Result<String, String> {
        let fields = super::fields::split(head);
        let mut names = Vec::new();
        let mut hashed = Vec::new();
        for name in SIGNED {
            let matching: Vec<&[u8]> = fields
                .iter()
                .filter(|f| {
                    super::fields::name(f)
                        .eq_ignore_ascii_case(name.as_bytes())
                })
                .copied()
                .collect();
            // Bottom-up, as verifiers pick them (RFC 6376 5.4.2).
            for f in matching.iter().rev() {
                names.push(name);
                hashed.extend(canon::header(f));
            }
            if name == "from" {
                names.push(name);
            }
        }
        let value = format!(
            "v=1; a={}; c=relaxed/relaxed; d={}; s={}; t={now};\n\th={};\n\tbh={};\n\tb=",
            self.key.algorithm(),
            self.domain,
            self.selector,
            names.join(":"),
            Base64::encode_string(body_hash)
        );
        let field = format!("DKIM-Signature: {value}");
        // The field itself is hashed without its final CRLF, b= empty.
        let mut own = canon::header(field.as_bytes());
        own.truncate(own.len() - 2);
        hashed.extend(own);
        let sig = match &self.key {
            Key::Rsa(k) => {
                let mut sig = vec![0u8; k.public().modulus_len()];
                k.sign(
                    &RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    &hashed,
                    &mut sig,
                )
                .map_err(|_| "RSA signing failed".to_string())?;
                sig
            }
            Key::Ed25519(k) => {
                // RFC 8463: Ed25519 over the SHA-256 of the data.
                let digest =
                    ring::digest::digest(&ring::digest::SHA256, &hashed);
                k.sign(digest.as_ref()).as_ref().to_vec()
            }
        };
        let b64 = Base64::encode_string(&sig);
        // Folded every 72 characters: white space inside b= is ignored.
        let folded: Vec<String> = b64
            .as_bytes()
            .chunks(72)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        Ok(format!("{field}{}\n", folded.join("\n\t ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{ED25519, UnparsedPublicKey};

    #[test]
    fn ed25519_signature_checks_out() {
        let der = new_ed25519().unwrap_or_default();
        let key = Key::from_pem(&to_pem("PRIVATE KEY", &der))
            .unwrap_or_else(|e| panic!("{e}"));
        let record = key.dns_record();
        assert!(record.starts_with("v=DKIM1; k=ed25519; p="));
        let signer = Signer {
            domain: "example.org".into(),
            selector: "s1".into(),
            key,
        };
        let head = b"From: Alice <a@example.org>\nTo: b@x\nSubject: hi\n there\nX-Other: no\n";
        let field = signer
            .sign(head, &[7u8; 32], 1_700_000_000)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(field.contains("h=from:from:subject:to;"), "{field}");
        // Verify as a verifier would: rebuild the data, check with the key.
        let b = field.split("b=").last().unwrap_or_default();
        let sig: String = b.chars().filter(|c| !c.is_whitespace()).collect();
        let sig = Base64::decode_vec(&sig).unwrap_or_default();
        let mut data = Vec::new();
        data.extend(canon::header(b"From: Alice <a@example.org>\n"));
        data.extend(canon::header(b"Subject: hi\n there\n"));
        data.extend(canon::header(b"To: b@x\n"));
        let empty_b = &field[..field.len() - b.len()];
        let mut own = canon::header(empty_b.as_bytes());
        own.truncate(own.len() - 2);
        data.extend(own);
        let digest = ring::digest::digest(&ring::digest::SHA256, &data);
        let public =
            Base64::decode_vec(record.rsplit("p=").next().unwrap_or_default())
                .unwrap_or_default();
        UnparsedPublicKey::new(&ED25519, public)
            .verify(digest.as_ref(), &sig)
            .unwrap_or_else(|_| panic!("bad signature"));
    }

    #[test]
    fn refused_keys() {
        assert!(Key::from_pem("nothing").is_err());
        assert!(Key::from_pem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").is_err());
        assert!(Key::from_pem(&to_pem("PRIVATE KEY", b"junk")).is_err());
    }

    #[test]
    fn der_lengths() {
        assert_eq!(der_len(5), vec![5]);
        assert_eq!(der_len(0x80), vec![0x81, 0x80]);
        assert_eq!(der_len(270), vec![0x82, 0x01, 0x0e]);
    }
}
