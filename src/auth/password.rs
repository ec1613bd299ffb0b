//! Password hashes as Dovecot's passwd-file stores them:
//! `{SCHEME}hash`. We write `{ARGON2ID}` and verify ARGON2ID,
//! SHA512-CRYPT, SHA256-CRYPT and BLF-CRYPT, all through RustCrypto and
//! the bcrypt crate: no cryptography of our own.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use sha_crypt::ShaCrypt;

/// The scheme `user add` and `user passwd` write.
pub const DEFAULT_SCHEME: &str = "ARGON2ID";

/// A hash to check unknown users against, so that a wrong user name costs
/// the same work as a wrong password (argon2 defaults, like real ones).
const DUMMY: &str = "{ARGON2ID}$argon2id$v=19$m=19456,t=2,p=1$\
                     c29tZXNhbHRzb21lc2FsdA$\
                     Yx9x5ThUQ0cgbdd/fsGpMAZrs5gqvjf5ZGpgMCQKC5s";

/// Why a stored hash cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashError {
    /// Not `{SCHEME}...`.
    NoScheme,
    /// A scheme we do not support.
    Unsupported(String),
}

impl std::fmt::Display for HashError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HashError::NoScheme => f.write_str("password is not {SCHEME}hash"),
            HashError::Unsupported(s) => write!(
                f,
                "unsupported password scheme {{{s}}} (use ARGON2ID, \
                 SHA512-CRYPT, SHA256-CRYPT or BLF-CRYPT)"
            ),
        }
    }
}

fn split(stored: &str) -> Result<(String, &str), HashError> {
    let rest = stored.strip_prefix('{').ok_or(HashError::NoScheme)?;
    let (scheme, hash) = rest.split_once('}').ok_or(HashError::NoScheme)?;
    Ok((scheme.to_ascii_uppercase(), hash))
}

/// Checks at load time that a stored password is one we can verify.
pub fn check_scheme(stored: &str) -> Result<(), HashError> {
    let (scheme, _) = split(stored)?;
    match scheme.as_str() {
        "ARGON2ID" | "SHA512-CRYPT" | "SHA256-CRYPT" | "BLF-CRYPT" => Ok(()),
        _ => Err(HashError::Unsupported(scheme)),
    }
}

/// True if `password` matches `stored`. `None` (no such user, or no
/// password) burns the same time as a real check and fails.
pub fn verify(stored: Option<&str>, password: &[u8]) -> bool {
    match stored {
        Some(s) if !s.is_empty() => verify_stored(s, password),
        _ => {
            let _ = verify_stored(DUMMY, password);
            false
        }
    }
}

fn verify_stored(stored: &str, password: &[u8]) -> bool {
    let Ok((scheme, hash)) = split(stored) else {
        return false;
    };
    match scheme.as_str() {
        "ARGON2ID" => PasswordHash::new(hash).is_ok_and(|h| {
            Argon2::default().verify_password(password, &h).is_ok()
        }),
        "SHA512-CRYPT" | "SHA256-CRYPT" => {
            ShaCrypt::default().verify_password(password, hash).is_ok()
        }
        "BLF-CRYPT" => bcrypt::verify(password, hash).unwrap_or(false),
        _ => false,
    }
}

/// Hashes a new password as `{ARGON2ID}$argon2id$...`.
pub fn hash(password: &[u8]) -> Result<String, String> {
    let h = Argon2::default()
        .hash_password(password)
        .map_err(|e| format!("hashing failed: {e}"))?;
    Ok(format!("{{{DEFAULT_SCHEME}}}{h}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2id_round_trip() {
        let stored = hash(b"correct horse").unwrap();
        assert!(stored.starts_with("{ARGON2ID}$argon2id$v=19$"));
        assert!(verify(Some(&stored), b"correct horse"));
        assert!(!verify(Some(&stored), b"wrong"));
    }

    #[test]
    fn crypt_schemes_from_other_tools() {
        // openssl passwd -6 -salt saltsalt secret
        let sha512 = "{SHA512-CRYPT}$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRst\
                      iNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91\
                      p5hVO1";
        assert!(verify(Some(sha512), b"secret"));
        assert!(!verify(Some(sha512), b"Secret"));
        // openssl passwd -5 -salt saltsalt secret
        let sha256 = "{SHA256-CRYPT}$5$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.\
                      FBvgkYA.lpPdS5sA";
        assert!(verify(Some(sha256), b"secret"));
        // doveadm pw -s BLF-CRYPT -p secret
        let blf = "{BLF-CRYPT}$2y$05$GfZ4433n78yfraxBaFee.O9ilConaCnxS6dqA\
                   kyyCzT3blKxDR8gq";
        assert!(verify(Some(blf), b"secret"));
        assert!(!verify(Some(blf), b"nope"));
        // doveadm pw -s ARGON2ID -p secret
        let argon = "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$FFD3/jUk2AuOI\
                     xn1rIV3EQ$0PrmAWu2mENgY1DaGM77+ZkG3milvstm2Dt3m4Cy4jE";
        assert!(verify(Some(argon), b"secret"));
        assert!(!verify(Some(argon), b"secreT"));
    }

    #[test]
    fn dummy_hash_does_real_work() {
        let (_, h) = split(DUMMY).unwrap();
        assert!(PasswordHash::new(h).is_ok());
    }

    #[test]
    fn unknown_users_and_bad_hashes_fail() {
        assert!(!verify(None, b"x"));
        assert!(!verify(Some(""), b""));
        assert!(!verify(Some("{PLAIN}x"), b"x"));
        assert!(!verify(Some("{SHA512-CRYPT}garbage"), b"x"));
        assert_eq!(check_scheme("nohash"), Err(HashError::NoScheme));
        assert!(check_scheme("{MD5}x").is_err());
        assert!(check_scheme("{sha512-crypt}$6$x").is_ok());
    }
}
