//! DKIM tag lists (RFC 6376 §3.2), as DKIM-Signature fields and key
//! records use them, and the key record itself (§3.6.1, RFC 8463).
//! Linear in the text; values borrowed from it.

use base64ct::{Base64, Encoding};

/// Why a tag list (or a key record) does not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadTags(pub &'static str);

/// More tags than any DKIM field or key record defines, and then some:
/// past this a list is refused, so checking for repeats stays cheap
/// however many a stranger writes.
const MAX_TAGS: usize = 64;

/// A tag list's pairs, in order; white space around names and values
/// (folding included) is dropped. A tag given twice is an error.
pub fn parse(text: &str) -> Result<Vec<(&str, &str)>, BadTags> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for spec in text.split(';') {
        if spec.trim_matches(is_fws).is_empty() {
            continue; // a trailing `;` (or an empty spec) is allowed
        }
        if out.len() >= MAX_TAGS {
            return Err(BadTags("too many tags"));
        }
        let (name, value) =
            spec.split_once('=').ok_or(BadTags("tag without ="))?;
        let name = name.trim_matches(is_fws);
        let named = name
            .bytes()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
            && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_');
        if !named {
            return Err(BadTags("bad tag name"));
        }
        if out.iter().any(|(n, _)| *n == name) {
            return Err(BadTags("tag given twice"));
        }
        let value = value.trim_matches(is_fws);
        // tval: visible characters but `;`, separated by white space.
        if !value.bytes().all(|c| {
            (0x21..=0x7e).contains(&c) && c != b';' || is_fws(c as char)
        }) {
            return Err(BadTags("bad tag value"));
        }
        out.push((name, value));
    }
    Ok(out)
}

fn is_fws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// The value of `name`, if the list has it.
pub fn get<'a>(tags: &[(&'a str, &'a str)], name: &str) -> Option<&'a str> {
    tags.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

/// A key's algorithm (`k=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Rsa,
    Ed25519,
}

/// A key record, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub kind: KeyType,
    /// `p=`, decoded; empty when the key is revoked (§3.6.1).
    pub public: Vec<u8>,
    /// `h=`: hash algorithms allowed (empty: any).
    pub hashes: Vec<String>,
    /// `t=y`: the domain is testing DKIM.
    pub testing: bool,
    /// `t=s`: the signature's `i=` must be in `d=` itself, not below.
    pub strict_subdomains: bool,
}

/// Reads a key record (§3.6.1): `v=DKIM1` first if present, `k=` rsa
/// (the default) or ed25519, `p=` in base64 with white space allowed,
/// `s=` covering email. Unknown tags and flags are ignored.
pub fn key(text: &str) -> Result<Key, BadTags> {
    let tags = parse(text)?;
    if let Some(i) = tags.iter().position(|(n, _)| *n == "v")
        && (i != 0 || tags[0].1 != "DKIM1")
    {
        return Err(BadTags("v= not DKIM1, or not first"));
    }
    let kind = match get(&tags, "k").unwrap_or("rsa") {
        "rsa" => KeyType::Rsa,
        "ed25519" => KeyType::Ed25519,
        _ => return Err(BadTags("unknown key type")),
    };
    let list = |v: &str| -> Vec<String> {
        v.split(':')
            .map(|s| s.trim_matches(is_fws).to_string())
            .filter(|s| !s.is_empty())
            .collect()
    };
    let services = get(&tags, "s").map(list).unwrap_or_default();
    if !services.is_empty()
        && !services.iter().any(|s| s == "*" || s == "email")
    {
        return Err(BadTags("key not for email"));
    }
    let p = get(&tags, "p").ok_or(BadTags("no p="))?;
    let compact: String = p.chars().filter(|c| !is_fws(*c)).collect();
    let public = match compact.is_empty() {
        true => Vec::new(),
        false => Base64::decode_vec(&compact)
            .map_err(|_| BadTags("p= is not base64"))?,
    };
    let flags = get(&tags, "t").map(list).unwrap_or_default();
    Ok(Key {
        kind,
        public,
        hashes: get(&tags, "h").map(list).unwrap_or_default(),
        testing: flags.iter().any(|f| f == "y"),
        strict_subdomains: flags.iter().any(|f| f == "s"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_lists() {
        let t = parse(
            " v=1; a=rsa-sha256 ;d = example.net;\r\n\tb=dzdV\r\n GyOv ; ",
        )
        .unwrap();
        assert_eq!(
            t,
            vec![
                ("v", "1"),
                ("a", "rsa-sha256"),
                ("d", "example.net"),
                ("b", "dzdV\r\n GyOv")
            ]
        );
        assert_eq!(get(&t, "d"), Some("example.net"));
        for bad in ["a", "a=1; a=2", "=x", "1a=x", "a=\u{7f}", "a-b=1"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse("").unwrap(), vec![]);
        let many: String = (0..10_000).map(|i| format!("t{i}=1;")).collect();
        assert!(parse(&many).is_err());
        let most: String =
            (0..MAX_TAGS).map(|i| format!("t{i}=1; ")).collect();
        assert_eq!(parse(&most).unwrap().len(), MAX_TAGS);
    }

    #[test]
    fn key_records() {
        // RFC 8463's example key, and an RSA one.
        let ed = key("v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=").unwrap();
        assert_eq!((ed.kind, ed.public.len()), (KeyType::Ed25519, 32));
        let rsa = key("p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDwIRP/UC3SBsEmGqZ9ZJW3/DkMoGeLnQg1fWn7/zYt\r\n IxN2SnFCjxOCKG9v3b4jYfcTNh5ijSsq631uBItLa7od+v/RtdC2UzJ1lWT947qR+Rcac2gb\r\n to/NMqJ0fzfVjH4OuKhitdY9tf6mcwGjaNBcWToIMmPSPDdQPNUYckcQ2QIDAQAB; t=y:s; h=sha256").unwrap();
        assert_eq!(rsa.kind, KeyType::Rsa);
        assert!(rsa.testing && rsa.strict_subdomains);
        assert_eq!(rsa.hashes, ["sha256"]);
        assert!(rsa.public.len() > 100);
        // An empty p= is a revoked key.
        assert!(key("v=DKIM1; p=").unwrap().public.is_empty());
        for bad in [
            "k=rsa",
            "p=AAAA; v=DKIM1",
            "v=DKIM2; p=",
            "k=dsa; p=",
            "p=!!!",
            "s=tlsrpt; p=",
        ] {
            assert!(key(bad).is_err(), "{bad:?}");
        }
    }
}
