//! SASL mechanisms for AUTH: PLAIN (RFC 4616) and LOGIN (the
//! draft-murchison-sasl-login form every mail client speaks). Only
//! decoding lives here; checking a password is the host's job.

use base64ct::{Base64, Encoding};

/// RFC 4616 2: each of authzid, authcid and passwd is at most 255 octets.
pub const MAX_FIELD: usize = 255;
/// The longest base64 response we decode: three fields plus NULs.
pub const MAX_RESPONSE: usize = (3 * MAX_FIELD + 2).div_ceil(3) * 4;

/// A login attempt: who, and the password they gave.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The authentication identity (our user's address).
    pub user: String,
    /// The password, as given.
    pub password: Vec<u8>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never let a password reach a log line.
        write!(
            f,
            "Credentials {{ user: {:?}, password: <redacted> }}",
            self.user
        )
    }
}

/// Why a response was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslError {
    /// Not valid base64 (501 5.5.2).
    Base64,
    /// Decoded, but not the mechanism's form (501 5.5.2).
    Malformed,
    /// Longer than any valid response.
    TooLong,
}

/// Decodes one base64 client response.
pub fn decode(b64: &[u8]) -> Result<Vec<u8>, SaslError> {
    if b64.len() > MAX_RESPONSE {
        return Err(SaslError::TooLong);
    }
    let text = std::str::from_utf8(b64).map_err(|_| SaslError::Base64)?;
    Base64::decode_vec(text).map_err(|_| SaslError::Base64)
}

/// Parses a decoded PLAIN response: `[authzid] NUL authcid NUL passwd`.
/// An authzid other than the authcid asks to act as someone else, which
/// we do not allow.
pub fn plain(decoded: &[u8]) -> Result<Credentials, SaslError> {
    let mut parts = decoded.split(|&b| b == 0);
    let (Some(authzid), Some(authcid), Some(passwd), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SaslError::Malformed);
    };
    if authcid.is_empty()
        || [authzid, authcid, passwd]
            .iter()
            .any(|f| f.len() > MAX_FIELD)
    {
        return Err(SaslError::Malformed);
    }
    if !authzid.is_empty() && authzid != authcid {
        return Err(SaslError::Malformed);
    }
    let user = String::from_utf8(authcid.to_vec())
        .map_err(|_| SaslError::Malformed)?;
    Ok(Credentials {
        user,
        password: passwd.to_vec(),
    })
}

/// Checks a decoded LOGIN user name.
pub fn login_user(decoded: &[u8]) -> Result<String, SaslError> {
    if decoded.is_empty() || decoded.len() > MAX_FIELD || decoded.contains(&0)
    {
        return Err(SaslError::Malformed);
    }
    String::from_utf8(decoded.to_vec()).map_err(|_| SaslError::Malformed)
}

/// The base64 of `text`, for server challenges.
pub fn encode(text: &[u8]) -> String {
    Base64::encode_string(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_forms() {
        let c = plain(b"\0alice@x.test\0secret").unwrap();
        assert_eq!(c.user, "alice@x.test");
        assert_eq!(c.password, b"secret");
        assert!(plain(b"alice@x.test\0alice@x.test\0pw").is_ok());
        assert!(format!("{c:?}").contains("redacted"));
    }

    #[test]
    fn plain_nasty_cases() {
        for bad in [
            &b""[..],
            b"\0",
            b"\0\0",
            b"a\0b",
            b"bob\0alice\0pw",
            b"\0alice\0pw\0extra",
            b"\0\xff\0pw",
        ] {
            assert!(plain(bad).is_err(), "{bad:?}");
        }
        let long = [b"\0".as_slice(), &[b'a'; 256], b"\0pw"].concat();
        assert_eq!(plain(&long), Err(SaslError::Malformed));
    }

    #[test]
    fn base64() {
        assert_eq!(decode(b"AGFsaWNlAHB3").unwrap(), b"\0alice\0pw");
        assert_eq!(decode(b"not base64!"), Err(SaslError::Base64));
        assert_eq!(decode(b"AGFsaWNlAHB3="), Err(SaslError::Base64));
        assert_eq!(decode(&[b'A'; 2000]), Err(SaslError::TooLong));
        assert_eq!(encode(b"Username:"), "VXNlcm5hbWU6");
    }

    #[test]
    fn login_user_names() {
        assert_eq!(login_user(b"bob@x.test").unwrap(), "bob@x.test");
        assert!(login_user(b"").is_err());
        assert!(login_user(b"a\0b").is_err());
    }
}
