//! The ACME keys: whether postling gets its own certificates, from
//! which CA, and where challenges go.

use std::path::{Path, PathBuf};

/// Let's Encrypt's production directory.
pub const LETS_ENCRYPT: &str =
    "https://acme-v02.api.letsencrypt.org/directory";

/// ACME settings, defaults applied.
#[derive(Debug, Clone)]
pub struct Acme {
    /// `acme = on`.
    pub on: bool,
    /// The account's contact.
    pub email: Option<String>,
    /// The CA's directory URL.
    pub directory: String,
    /// Trust this CA file alone for the directory (a test CA).
    pub ca_file: Option<PathBuf>,
    /// Write HTTP-01 challenges here (behind another web server).
    pub webroot: Option<PathBuf>,
}

impl Default for Acme {
    fn default() -> Acme {
        Acme {
            on: false,
            email: None,
            directory: LETS_ENCRYPT.to_string(),
            ca_file: None,
            webroot: None,
        }
    }
}

impl Acme {
    /// Applies one key; None if the key is not one of ours.
    pub fn set(
        &mut self,
        key: &str,
        value: &str,
        base: &Path,
    ) -> Option<Result<(), String>> {
        let path = |v: &str| (!v.is_empty()).then(|| base.join(v));
        match key {
            "acme" => Some(super::yes_no(value).map(|on| self.on = on)),
            "acme_email" => Some(match value {
                "" => {
                    self.email = None;
                    Ok(())
                }
                v if v.contains('@') && !v.contains(char::is_whitespace) => {
                    self.email = Some(v.to_string());
                    Ok(())
                }
                _ => Err("acme_email is an address".into()),
            }),
            "acme_directory" => Some(match value.starts_with("https://") {
                true => {
                    self.directory = value.to_string();
                    Ok(())
                }
                false => Err("acme_directory is an https:// URL".into()),
            }),
            "acme_ca_file" => {
                self.ca_file = path(value);
                Some(Ok(()))
            }
            "acme_webroot" => {
                self.webroot = path(value);
                Some(Ok(()))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        let mut a = Acme::default();
        let base = Path::new("/etc/postling");
        assert_eq!(a.directory, LETS_ENCRYPT);
        a.set("acme", "on", base).unwrap().unwrap();
        a.set("acme_email", "me@example.org", base)
            .unwrap()
            .unwrap();
        a.set("acme_directory", "https://127.0.0.1:14000/dir", base)
            .unwrap()
            .unwrap();
        a.set("acme_ca_file", "ca.pem", base).unwrap().unwrap();
        assert!(a.on && a.ca_file == Some(base.join("ca.pem")));
        assert!(a.set("acme_directory", "http://x/", base).unwrap().is_err());
        assert!(a.set("acme_email", "nobody", base).unwrap().is_err());
        assert!(a.set("hostname", "x", base).is_none());
    }
}
