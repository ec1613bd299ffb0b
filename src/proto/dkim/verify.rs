//! Checking a DKIM signature (RFC 6376 §6, RFC 8463, RFC 8301): read
//! the `DKIM-Signature` field (or ARC's `ARC-Message-Signature`, which
//! differs only in its tags), rebuild the data it signs from the header
//! fields it names, and check it with the key from DNS. The body hash
//! is computed apart ([`super::canon::BodyHash`]), as the spool is read.

use base64ct::{Base64, Encoding};
use ring::signature::{
    ED25519, RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
    RsaPublicKeyComponents, UnparsedPublicKey,
};

use super::canon::{self, Canon};
use super::der;
use super::fields;
use super::tags::{self, Key, KeyType};

/// Names in `h=` at most: more is refused, so rebuilding the signed
/// data stays cheap whatever a stranger writes.
const MAX_SIGNED_FIELDS: usize = 100;
/// A signature's time may be this far ahead of ours (clock skew).
const FUTURE_SLACK: i64 = 3600;
/// RSA keys under this many bits never pass (RFC 8301 §3.2).
const MIN_RSA_BITS: usize = 1024;

/// `a=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    RsaSha256,
    Ed25519Sha256,
    /// Read, so that it can be named; never passes (RFC 8301 §3.1).
    RsaSha1,
}

/// Which field a signature came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `DKIM-Signature`: `v=1`, `i=` an identity.
    Dkim,
    /// `ARC-Message-Signature` (RFC 8617 §4.1.2): `i=` the instance.
    ArcMessage,
}

/// A signature, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub algorithm: Algorithm,
    /// `d=`, lower case.
    pub domain: String,
    /// `s=`.
    pub selector: String,
    pub header_canon: Canon,
    pub body_canon: Canon,
    /// `h=`, lower case.
    pub signed: Vec<String>,
    /// `bh=`, decoded.
    pub body_hash: Vec<u8>,
    /// `b=`, decoded.
    pub signature: Vec<u8>,
    /// `b=` as written, white space removed (for `header.b`).
    pub b_text: String,
    /// DKIM's `i=` (the agent or user identity); its domain.
    pub identity_domain: Option<String>,
    /// ARC's `i=`.
    pub instance: u32,
    /// `l=`: only this many body octets are signed.
    pub length: Option<u64>,
    pub timestamp: Option<i64>,
    pub expires: Option<i64>,
}

impl Signature {
    /// The DNS name of its key record.
    pub fn key_name(&self) -> String {
        format!("{}._domainkey.{}", self.selector, self.domain)
    }
}

/// Why a signature did not pass: the result RFC 8601 names, and a
/// reason for the comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    /// The data or the body do not match: tampered, or badly signed.
    Fail(&'static str),
    /// Valid in form, but not acceptable here (RFC 8301).
    Policy(&'static str),
    /// Cannot ever be checked: a broken field, a missing or revoked key.
    PermError(&'static str),
    /// A DNS failure: try later.
    TempError(&'static str),
}

impl Outcome {
    /// As Authentication-Results names it.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail(_) => "fail",
            Outcome::Policy(_) => "policy",
            Outcome::PermError(_) => "permerror",
            Outcome::TempError(_) => "temperror",
        }
    }

    /// The reason, for a comment (none for a pass).
    pub fn reason(self) -> Option<&'static str> {
        match self {
            Outcome::Pass => None,
            Outcome::Fail(r)
            | Outcome::Policy(r)
            | Outcome::PermError(r)
            | Outcome::TempError(r) => Some(r),
        }
    }
}

/// Reads a signature from its field's value (after the colon).
pub fn parse(value: &str, kind: Kind) -> Result<Signature, &'static str> {
    let list = tags::parse(value).map_err(|e| e.0)?;
    let get = |name| tags::get(&list, name);
    let need = |name| get(name).ok_or("a required tag is missing");
    if kind == Kind::Dkim && need("v")? != "1" {
        return Err("v= is not 1");
    }
    let algorithm = match need("a")? {
        "rsa-sha256" => Algorithm::RsaSha256,
        "ed25519-sha256" => Algorithm::Ed25519Sha256,
        "rsa-sha1" => Algorithm::RsaSha1,
        _ => return Err("unknown algorithm"),
    };
    let (header_canon, body_canon) = canonicalizations(get("c"))?;
    let domain = need("d")?.to_ascii_lowercase();
    let selector = need("s")?.to_ascii_lowercase();
    if domain.is_empty() || selector.is_empty() {
        return Err("empty d= or s=");
    }
    let signed: Vec<String> = need("h")?
        .split(':')
        .map(|n| n.trim_matches(is_fws).to_ascii_lowercase())
        .collect();
    if signed.len() > MAX_SIGNED_FIELDS {
        return Err("too many signed fields");
    }
    if !signed.iter().any(|n| n == "from") {
        return Err("From is not signed");
    }
    let b_text: String = need("b")?.chars().filter(|c| !is_fws(*c)).collect();
    let signature = Base64::decode_vec(&b_text).map_err(|_| "bad b=")?;
    let bh: String = need("bh")?.chars().filter(|c| !is_fws(*c)).collect();
    let body_hash = Base64::decode_vec(&bh).map_err(|_| "bad bh=")?;
    let number = |name| -> Result<Option<u64>, &'static str> {
        get(name)
            .map(|v| {
                let v = v.trim_matches(is_fws);
                match v.len() <= 76 && v.bytes().all(|b| b.is_ascii_digit()) {
                    true => v.parse::<u64>().map_err(|_| "number too large"),
                    false => Err("not a number"),
                }
            })
            .transpose()
    };
    let clamp = |n: Option<u64>| n.map(|n| n.min(i64::MAX as u64) as i64);
    let (timestamp, expires) = (clamp(number("t")?), clamp(number("x")?));
    if let (Some(t), Some(x)) = (timestamp, expires)
        && x < t
    {
        return Err("x= before t=");
    }
    let mut sig = Signature {
        algorithm,
        domain,
        selector,
        header_canon,
        body_canon,
        signed,
        body_hash,
        signature,
        b_text,
        identity_domain: None,
        instance: 0,
        length: number("l")?,
        timestamp,
        expires,
    };
    match kind {
        Kind::Dkim => {
            if let Some(i) = get("i") {
                let (_, d) = i.rsplit_once('@').ok_or("i= without @")?;
                let d = d.to_ascii_lowercase();
                if !(d == sig.domain
                    || d.ends_with(&format!(".{}", sig.domain)))
                {
                    return Err("i= is not in d=");
                }
                sig.identity_domain = Some(d);
            }
        }
        Kind::ArcMessage => sig.instance = instance(get("i"))?,
    }
    Ok(sig)
}

/// ARC's `i=`: 1 to 50 (RFC 8617 §4.2.1).
pub fn instance(value: Option<&str>) -> Result<u32, &'static str> {
    value
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|i| (1..=50).contains(i))
        .ok_or("bad instance i=")
}

fn canonicalizations(c: Option<&str>) -> Result<(Canon, Canon), &'static str> {
    let one = |s: &str| match s {
        "simple" => Ok(Canon::Simple),
        "relaxed" => Ok(Canon::Relaxed),
        _ => Err("unknown canonicalization"),
    };
    match c {
        None => Ok((Canon::Simple, Canon::Simple)),
        Some(c) => match c.split_once('/') {
            Some((h, b)) => Ok((one(h)?, one(b)?)),
            None => Ok((one(c)?, Canon::Simple)),
        },
    }
}

fn is_fws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Expired, or from too far ahead (§3.5).
pub fn check_times(sig: &Signature, now: i64) -> Option<Outcome> {
    if sig.expires.is_some_and(|x| x < now) {
        return Some(Outcome::PermError("signature expired"));
    }
    if sig
        .timestamp
        .is_some_and(|t| t > now.saturating_add(FUTURE_SLACK))
    {
        return Some(Outcome::PermError("signature from the future"));
    }
    None
}

/// The octets a signature signs (§3.7): the fields `h=` names, each
/// taken from the bottom up, then the signature's own field with `b=`
/// emptied and no final CRLF. `head` is the header's fields in order;
/// `own` is the signature's field as written.
pub fn signed_data(
    sig: &Signature,
    head: &fields::Index<'_>,
    own: &[u8],
) -> Vec<u8> {
    let mut data = Vec::new();
    let mut used: Vec<(&str, usize)> = Vec::new();
    for name in &sig.signed {
        let n = match used.iter_mut().find(|(u, _)| *u == name) {
            Some((_, n)) => n,
            None => {
                used.push((name, 0));
                &mut used.last_mut().expect("just pushed").1
            }
        };
        // A name signed more often than it occurs signs nothing more
        // (over-signing: a field added later breaks the signature).
        if let Some(field) = head.nth_from_bottom(name, *n) {
            data.extend(canon::header_as(sig.header_canon, field));
        }
        *n += 1;
    }
    let mut own = canon::header_as(sig.header_canon, &without_b(own));
    own.truncate(own.len().saturating_sub(2));
    data.extend(own);
    data
}

/// The field with the value of its `b=` tag removed, white space and
/// all (§3.7); `bh=` and everything else as written.
pub fn without_b(field: &[u8]) -> Vec<u8> {
    let colon = memchr::memchr(b':', field).map_or(0, |c| c + 1);
    let mut out = field[..colon].to_vec();
    let mut first = true;
    for spec in field[colon..].split(|&b| b == b';') {
        if !first {
            out.push(b';');
        }
        first = false;
        let eq = memchr::memchr(b'=', spec);
        let is_b = eq.is_some_and(|e| spec[..e].trim_ascii() == b"b");
        match (is_b, eq) {
            (true, Some(e)) => out.extend_from_slice(&spec[..=e]),
            _ => out.extend_from_slice(spec),
        }
    }
    out
}

/// Checks a signature whose body hash is `body_hash` (computed as it
/// says) and whose signed data is `data`, with the key from DNS.
pub fn check(
    sig: &Signature,
    key: &Key,
    body_hash: &[u8],
    data: &[u8],
) -> Outcome {
    if sig.algorithm == Algorithm::RsaSha1 {
        return Outcome::Policy("rsa-sha1 is not accepted (RFC 8301)");
    }
    if key.public.is_empty() {
        return Outcome::PermError("key revoked");
    }
    let kind = match sig.algorithm {
        Algorithm::Ed25519Sha256 => KeyType::Ed25519,
        _ => KeyType::Rsa,
    };
    if key.kind != kind {
        return Outcome::PermError("key type does not match a=");
    }
    if !key.hashes.is_empty() && !key.hashes.iter().any(|h| h == "sha256") {
        return Outcome::PermError("key does not allow sha256");
    }
    if key.strict_subdomains
        && sig
            .identity_domain
            .as_ref()
            .is_some_and(|d| *d != sig.domain)
    {
        return Outcome::PermError("key allows no subdomain i=");
    }
    if body_hash != sig.body_hash.as_slice() {
        return Outcome::Fail("body hash did not verify");
    }
    let verified = match kind {
        KeyType::Rsa => {
            let Some(parts) = der::rsa_parts(&key.public) else {
                return Outcome::PermError("bad RSA key");
            };
            if parts.bits() < MIN_RSA_BITS {
                return Outcome::Policy("RSA key under 1024 bits (RFC 8301)");
            }
            RsaPublicKeyComponents {
                n: parts.n,
                e: parts.e,
            }
            .verify(
                &RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
                data,
                &sig.signature,
            )
            .is_ok()
        }
        KeyType::Ed25519 => {
            // RFC 8463 §3: Ed25519 over the SHA-256 of the data.
            let digest = ring::digest::digest(&ring::digest::SHA256, data);
            UnparsedPublicKey::new(&ED25519, &key.public)
                .verify(digest.as_ref(), &sig.signature)
                .is_ok()
        }
    };
    match verified {
        true => Outcome::Pass,
        false => Outcome::Fail("signature did not verify"),
    }
}

/// A key record's TXT strings, read as a key.
pub fn read_key(texts: &[Vec<u8>]) -> Result<Key, Outcome> {
    // One record (§3.6.2.2): several make the key unusable.
    let [text] = texts else {
        return Err(Outcome::PermError("not exactly one key record"));
    };
    let text = std::str::from_utf8(text)
        .map_err(|_| Outcome::PermError("key record not text"))?;
    tags::key(text).map_err(|_| Outcome::PermError("bad key record"))
}

#[cfg(test)]
mod tests;
