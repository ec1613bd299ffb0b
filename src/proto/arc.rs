//! ARC (RFC 8617): the sets of `ARC-Authentication-Results`,
//! `ARC-Message-Signature` and `ARC-Seal` a message carries, read and
//! checked for form (§5.2 steps 1–3), and the data each seal signs. The
//! signatures themselves are checked as DKIM's are
//! ([`crate::proto::dkim::verify`]).

use base64ct::{Base64, Encoding};

use crate::proto::dkim::canon::{self, Canon};
use crate::proto::dkim::fields::{self, Index};
use crate::proto::dkim::tags;
use crate::proto::dkim::verify::{self, Algorithm, Signature};

/// Sets read at most: a longer chain is refused as failed. RFC 8617
/// allows 50; real chains have a handful.
pub const MAX_SETS: usize = 10;

/// An ARC-Seal's `cv=`: what the sealer found of the chain before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cv {
    None,
    Pass,
    Fail,
}

/// A seal, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seal {
    /// As a DKIM signature with no body hash and no signed fields.
    pub sig: Signature,
    pub cv: Cv,
}

/// Reads an `ARC-Seal` value (§4.1.3): `i`, `a`, `b`, `d`, `s`, `cv`;
/// `h=` is not allowed.
pub fn parse_seal(value: &str) -> Result<Seal, &'static str> {
    let list = tags::parse(value).map_err(|e| e.0)?;
    let get = |name| tags::get(&list, name);
    let need = |name| get(name).ok_or("a required seal tag is missing");
    if get("h").is_some() {
        return Err("h= in a seal");
    }
    let algorithm = match need("a")? {
        "rsa-sha256" => Algorithm::RsaSha256,
        "ed25519-sha256" => Algorithm::Ed25519Sha256,
        _ => return Err("unknown algorithm"),
    };
    let cv = match need("cv")?.to_ascii_lowercase().as_str() {
        "none" => Cv::None,
        "pass" => Cv::Pass,
        "fail" => Cv::Fail,
        _ => return Err("bad cv="),
    };
    let b_text: String = need("b")?
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let signature = Base64::decode_vec(&b_text).map_err(|_| "bad b=")?;
    let sig = Signature {
        algorithm,
        domain: need("d")?.to_ascii_lowercase(),
        selector: need("s")?.to_ascii_lowercase(),
        header_canon: Canon::Relaxed,
        body_canon: Canon::Relaxed,
        signed: Vec::new(),
        body_hash: Vec::new(),
        signature,
        b_text,
        identity_domain: None,
        instance: verify::instance(get("i"))?,
        length: None,
        timestamp: None,
        expires: None,
    };
    Ok(Seal { sig, cv })
}

/// One instance's three fields, as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Set<'a> {
    pub results: &'a [u8],
    pub message: &'a [u8],
    pub seal: &'a [u8],
}

/// The `i=` a field's value starts with (`i=N;` first in an
/// ARC-Authentication-Results, anywhere in the other two).
fn instance_of(field: &[u8], first: bool) -> Option<u32> {
    let value = std::str::from_utf8(fields::value(field)).ok()?;
    let list: Vec<&str> = value.split(';').collect();
    let tagged = |spec: &&str| {
        let (name, v) = spec.split_once('=')?;
        (name.trim() == "i").then(|| verify::instance(Some(v.trim())).ok())?
    };
    match first {
        true => list.first().and_then(tagged),
        false => list.iter().find_map(tagged),
    }
}

/// The message's sets, oldest first: none if it has no ARC field; an
/// error (the chain fails) if any instance is missing, repeated or past
/// [`MAX_SETS`].
pub fn sets<'a>(index: &Index<'a>) -> Result<Vec<Set<'a>>, &'static str> {
    let mut found: Vec<[Option<&'a [u8]>; 3]> = Vec::new();
    let names = [
        ("arc-authentication-results", true),
        ("arc-message-signature", false),
        ("arc-seal", false),
    ];
    for (k, (name, first)) in names.iter().enumerate() {
        for field in index.all(name) {
            let i = instance_of(field, *first).ok_or("ARC field without i=")?
                as usize;
            if i > MAX_SETS {
                return Err("too many ARC sets");
            }
            if found.len() < i {
                found.resize(i, [None; 3]);
            }
            if found[i - 1][k].replace(field).is_some() {
                return Err("an ARC instance given twice");
            }
        }
    }
    found
        .into_iter()
        .map(|set| match set {
            [Some(results), Some(message), Some(seal)] => Ok(Set {
                results,
                message,
                seal,
            }),
            _ => Err("an ARC set is incomplete"),
        })
        .collect()
}

/// What the seal of instance `upto` (1-based) signs (§5.1.1): every
/// set up to it, each as results, message signature, seal, relaxed;
/// that seal with `b=` emptied and no final CRLF.
pub fn seal_data(sets: &[Set<'_>], upto: usize) -> Vec<u8> {
    let mut data = Vec::new();
    for (n, set) in sets.iter().take(upto).enumerate() {
        data.extend(canon::header(set.results));
        data.extend(canon::header(set.message));
        if n + 1 == upto {
            let mut own = canon::header(&verify::without_b(set.seal));
            own.truncate(own.len().saturating_sub(2));
            data.extend(own);
        } else {
            data.extend(canon::header(set.seal));
        }
    }
    data
}

/// The chain's `cv=` values as they should be (§5.2 step 3): `none`
/// for the first seal, `pass` for the rest.
pub fn cv_in_order(seals: &[Seal]) -> bool {
    seals.iter().enumerate().all(|(n, s)| match n {
        0 => s.cv == Cv::None,
        _ => s.cv == Cv::Pass,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEAL: &str =
        "i=1; a=rsa-sha256; cv=none; d=lists.example; s=s1; b=AAAA";

    #[test]
    fn seals_and_sets() {
        let seal = parse_seal(SEAL).unwrap();
        assert_eq!((seal.cv, seal.sig.instance), (Cv::None, 1));
        assert_eq!(seal.sig.domain, "lists.example");
        for bad in [
            SEAL.replace("cv=none", "cv=maybe"),
            SEAL.replace("i=1", "i=0"),
            format!("{SEAL}; h=from"),
            SEAL.replace("a=rsa-sha256", "a=rsa-sha1"),
        ] {
            assert!(parse_seal(&bad).is_err(), "{bad}");
        }
        let head =
            b"ARC-Seal: i=2; cv=pass; b=x\nARC-Message-Signature: i=2; b=y\n\
ARC-Authentication-Results: i=2; mx.example; spf=pass\n\
ARC-Seal: i=1; cv=none; b=z\nARC-Message-Signature: i=1; b=w\n\
ARC-Authentication-Results: i=1; lists.example; dkim=pass\nFrom: a@b\n";
        let index = Index::new(fields::split(head));
        let sets = sets(&index).unwrap();
        assert_eq!(sets.len(), 2);
        assert!(sets[0].seal.starts_with(b"ARC-Seal: i=1"));
        let data = seal_data(&sets, 2);
        let text = String::from_utf8(data).unwrap();
        assert!(text.starts_with(
            "arc-authentication-results:i=1; lists.example; dkim=pass\r\n"
        ));
        assert!(text.ends_with("arc-seal:i=2; cv=pass; b="), "{text}");
        // A missing or repeated instance breaks the chain.
        let gap = Index::new(fields::split(&head[..head.len() - 100]));
        assert!(super::sets(&gap).is_err());
        let none = Index::new(fields::split(b"From: a@b\n"));
        assert_eq!(super::sets(&none), Ok(vec![]));
        let many = b"ARC-Seal: i=11; b=x\n";
        assert!(super::sets(&Index::new(fields::split(many))).is_err());
    }
}
