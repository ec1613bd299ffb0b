//! The keys of users' own rules: the global Sieve script run before
//! each user's (`sieve_before`), and the default quota (`quota`).

use std::path::PathBuf;

/// Sieve and quota settings, defaults applied.
#[derive(Debug, Clone, Default)]
pub struct Filtering {
    /// A script run before each user's active one (Pigeonhole's
    /// `sieve_before`).
    pub sieve_before: Option<PathBuf>,
    /// Each user's storage limit in octets, unless the users file gives
    /// theirs (0: none).
    pub quota: u64,
}

impl Filtering {
    /// Applies one key; None if the key is not one of ours.
    pub fn set(
        &mut self,
        key: &str,
        value: &str,
        base: &std::path::Path,
    ) -> Option<Result<(), String>> {
        match key {
            "sieve_before" => {
                self.sieve_before =
                    (!value.is_empty()).then(|| base.join(value));
                Some(Ok(()))
            }
            "quota" => Some(match value {
                "0" => {
                    self.quota = 0;
                    Ok(())
                }
                v => super::size(v).map(|q| self.quota = q),
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        let mut f = Filtering::default();
        let base = std::path::Path::new("/etc/postling");
        f.set("sieve_before", "before.sieve", base)
            .unwrap()
            .unwrap();
        assert_eq!(
            f.sieve_before.as_deref(),
            Some(base.join("before.sieve").as_path())
        );
        f.set("quota", "1G", base).unwrap().unwrap();
        assert_eq!(f.quota, 1 << 30);
        assert!(f.set("quota", "lots", base).unwrap().is_err());
        assert!(f.set("hostname", "x", base).is_none());
    }
}
