//! The Sender Rewriting Scheme for mail we forward: the envelope sender
//! `user@their.example` becomes `SRS0=HHHH=TT=their.example=user@ours`,
//! so the receiver's SPF check sees our domain, and a bounce to it comes
//! back to us, is checked (HHHH is an HMAC of the rest under our secret,
//! TT the day it was made) and goes on to the original sender. Only we
//! can make addresses that pass, and they expire, so the scheme cannot
//! be used to relay.

use ring::hmac;

/// Days an SRS address is honoured after it was made.
pub const MAX_AGE_DAYS: u64 = 21;
const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Why an SRS address was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// Not in the SRS0 form.
    Malformed,
    /// The hash does not match: not made by us.
    Forged,
    /// Older than [`MAX_AGE_DAYS`].
    Expired,
}

/// True if `local` looks like an SRS0 local part.
pub fn is_srs(local: &str) -> bool {
    // Octets, not characters: a UTF-8 local part (SMTPUTF8) may put a
    // character across the fifth octet.
    local.len() > 5 && local.as_bytes()[..5].eq_ignore_ascii_case(b"SRS0=")
}

/// The rewritten sender for `sender` (`local@domain`), at `our_domain`,
/// on day `day` (days since the epoch).
pub fn forward(
    secret: &[u8],
    sender: &str,
    our_domain: &str,
    day: u64,
) -> String {
    let Some((local, domain)) = sender.rsplit_once('@') else {
        return sender.to_string();
    };
    let stamp = timestamp(day);
    let hash = hash(secret, &stamp, domain, local);
    format!("SRS0={hash}={stamp}={domain}={local}@{our_domain}")
}

/// The original sender of an SRS0 local part, if it is ours and fresh.
pub fn reverse(
    secret: &[u8],
    local: &str,
    day: u64,
) -> Result<String, Invalid> {
    if !is_srs(local) {
        return Err(Invalid::Malformed);
    }
    let mut parts = local[5..].splitn(4, '=');
    let (Some(hash_got), Some(stamp), Some(domain), Some(orig)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Invalid::Malformed);
    };
    if stamp.len() != 2 || domain.is_empty() || orig.is_empty() {
        return Err(Invalid::Malformed);
    }
    let want = hash(secret, stamp, domain, orig);
    // Case-blind: some servers change the case of addresses.
    if !same_hash(&want, hash_got) {
        return Err(Invalid::Forged);
    }
    let made = decode_stamp(stamp).ok_or(Invalid::Malformed)?;
    let age = (day % 1024 + 1024 - made) % 1024;
    if age > MAX_AGE_DAYS {
        return Err(Invalid::Expired);
    }
    Ok(format!("{orig}@{domain}"))
}

fn timestamp(day: u64) -> String {
    let t = day % 1024;
    let a = BASE32[(t >> 5) as usize] as char;
    let b = BASE32[(t & 31) as usize] as char;
    format!("{a}{b}")
}

fn decode_stamp(s: &str) -> Option<u64> {
    let value = |c: u8| {
        BASE32
            .iter()
            .position(|&b| b == c.to_ascii_uppercase())
            .map(|p| p as u64)
    };
    let b = s.as_bytes();
    Some(value(b[0])? << 5 | value(b[1])?)
}

/// Base32 characters of the hash: 8 of them, 40 bits, so guessing one
/// takes about 2^39 tries (the per-client limiter ends that long before).
const HASH_CHARS: usize = 8;

/// The first 40 bits of HMAC-SHA256 over the lower-cased parts, in
/// base32.
fn hash(secret: &[u8], stamp: &str, domain: &str, local: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let text = format!("{stamp}{domain}{local}").to_ascii_lowercase();
    let tag = hmac::sign(&key, text.as_bytes());
    let bits = tag.as_ref()[..5]
        .iter()
        .fold(0u64, |acc, &b| acc << 8 | u64::from(b));
    (0..HASH_CHARS)
        .rev()
        .map(|i| BASE32[((bits >> (i * 5)) & 31) as usize] as char)
        .collect()
}

/// Compares a hash given with ours in time that does not depend on
/// where they differ, case-blind.
fn same_hash(want: &str, got: &str) -> bool {
    want.len() == got.len()
        && want
            .bytes()
            .zip(got.bytes())
            .fold(0u8, |d, (a, b)| d | (a ^ b.to_ascii_uppercase()))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn round_trip_forgery_and_expiry() {
        let day = 20_000;
        let a = forward(SECRET, "bob@their.example", "ours.example", day);
        assert!(
            a.starts_with("SRS0=")
                && a.ends_with("=their.example=bob@ours.example")
        );
        let local = a.rsplit_once('@').map(|x| x.0).unwrap_or_default();
        assert_eq!(
            reverse(SECRET, local, day).as_deref(),
            Ok("bob@their.example")
        );
        assert_eq!(
            reverse(SECRET, &local.to_ascii_lowercase(), day + 3).as_deref(),
            Ok("bob@their.example")
        );
        assert_eq!(reverse(SECRET, local, day + 22), Err(Invalid::Expired));
        assert_eq!(
            reverse(b"another secret", local, day),
            Err(Invalid::Forged)
        );
        let forged = local.replace("bob", "eve");
        assert_eq!(reverse(SECRET, &forged, day), Err(Invalid::Forged));
        assert_eq!(reverse(SECRET, "SRS0=x", day), Err(Invalid::Malformed));
        // 40 bits of hash: eight characters.
        let hash = local[5..].split('=').next().unwrap_or_default();
        assert_eq!(hash.len(), 8);
        let short = local.replacen(hash, &hash[..4], 1);
        assert_eq!(reverse(SECRET, &short, day), Err(Invalid::Forged));
        assert_eq!(reverse(SECRET, "plain", day), Err(Invalid::Malformed));
        // Non-ASCII anywhere, even across the prefix, is only malformed.
        assert_eq!(
            reverse(SECRET, "SRS0\u{e9}=x=y=z", day),
            Err(Invalid::Malformed)
        );
        assert_eq!(
            reverse(SECRET, "SRS0=\u{e9}\u{e9}=\u{e9}=d=l", day),
            Err(Invalid::Forged)
        );
        assert_eq!(
            reverse(SECRET, "SRS0=abcd=\u{e9}=d=l", day),
            Err(Invalid::Forged)
        );
        // The day counter wraps at 1024.
        let b = forward(SECRET, "a@b.example", "o.example", 1023);
        let lb = b.rsplit_once('@').map(|x| x.0).unwrap_or_default();
        assert!(reverse(SECRET, lb, 1025).is_ok());
        // A local part with = in it survives.
        let c = forward(SECRET, "x=y@b.example", "o.example", day);
        let lc = c.rsplit_once('@').map(|x| x.0).unwrap_or_default();
        assert_eq!(reverse(SECRET, lc, day).as_deref(), Ok("x=y@b.example"));
    }
}
