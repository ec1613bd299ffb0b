//! The keys that govern checking mail from strangers (SPF, DKIM,
//! DMARC, ARC, iprev) and what their results do.

use std::path::PathBuf;

/// Which checks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checks {
    pub spf: bool,
    pub dkim: bool,
    pub dmarc: bool,
    pub arc: bool,
    pub iprev: bool,
}

impl Checks {
    /// True if any check runs.
    pub fn any(&self) -> bool {
        self.spf || self.dkim || self.dmarc || self.arc || self.iprev
    }
}

/// What a DMARC `p=reject` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmarcReject {
    /// 550 5.7.1 at the end of DATA.
    Reject,
    /// Delivered into Junk.
    Junk,
}

/// What an SPF `fail` does when DMARC does not decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpfFail {
    /// Only recorded.
    Tag,
    Junk,
    Reject,
}

/// Inbound settings, defaults applied.
#[derive(Debug, Clone)]
pub struct Inbound {
    pub checks: Checks,
    /// The Public Suffix List, for organizational domains.
    pub public_suffix_list: PathBuf,
    pub dmarc_reject: DmarcReject,
    pub spf_fail: SpfFail,
    /// Sealers whose valid ARC chain lets a DMARC failure through.
    pub arc_trusted_sealers: Vec<String>,
}

/// Where Debian's `publicsuffix` package puts the list.
pub const DEBIAN_PSL: &str = "/usr/share/publicsuffix/public_suffix_list.dat";

impl Default for Inbound {
    fn default() -> Inbound {
        Inbound {
            checks: Checks {
                spf: true,
                dkim: true,
                dmarc: true,
                arc: true,
                iprev: true,
            },
            public_suffix_list: PathBuf::from(DEBIAN_PSL),
            dmarc_reject: DmarcReject::Reject,
            spf_fail: SpfFail::Tag,
            arc_trusted_sealers: Vec::new(),
        }
    }
}

impl Inbound {
    /// Applies one key; None if the key is not one of ours.
    pub fn set(
        &mut self,
        key: &str,
        value: &str,
        path: impl Fn(&str) -> Result<PathBuf, String>,
    ) -> Option<Result<(), String>> {
        let result = match key {
            "inbound_checks" => checks(value).map(|c| self.checks = c),
            "public_suffix_list" => {
                path(value).map(|p| self.public_suffix_list = p)
            }
            "dmarc_reject" => match value {
                "reject" => Ok(DmarcReject::Reject),
                "junk" => Ok(DmarcReject::Junk),
                _ => Err(format!(
                    "dmarc_reject must be reject or junk, not {value:?}"
                )),
            }
            .map(|d| self.dmarc_reject = d),
            "spf_fail" => match value {
                "tag" => Ok(SpfFail::Tag),
                "junk" => Ok(SpfFail::Junk),
                "reject" => Ok(SpfFail::Reject),
                _ => Err(format!(
                    "spf_fail must be tag, junk or reject, not {value:?}"
                )),
            }
            .map(|s| self.spf_fail = s),
            "arc_trusted_sealers" => {
                let list: Vec<String> =
                    super::items(value).map(str::to_ascii_lowercase).collect();
                match list.iter().find(|d| !super::is_domain(d)) {
                    Some(bad) => Err(format!(
                        "bad domain {bad:?} in arc_trusted_sealers"
                    )),
                    None => {
                        self.arc_trusted_sealers = list;
                        Ok(())
                    }
                }
            }
            _ => return None,
        };
        Some(result)
    }
}

/// `spf dkim dmarc arc iprev` in any order, or `none`.
fn checks(value: &str) -> Result<Checks, String> {
    let mut c = Checks {
        spf: false,
        dkim: false,
        dmarc: false,
        arc: false,
        iprev: false,
    };
    let items: Vec<&str> = super::items(value).collect();
    if items == ["none"] {
        return Ok(c);
    }
    for item in items {
        match item {
            "spf" => c.spf = true,
            "dkim" => c.dkim = true,
            "dmarc" => c.dmarc = true,
            "arc" => c.arc = true,
            "iprev" => c.iprev = true,
            _ => {
                return Err(format!(
                    "inbound_checks takes spf dkim dmarc arc iprev, or none; not {item:?}"
                ));
            }
        }
    }
    if c.dmarc && !(c.spf && c.dkim) {
        return Err("inbound_checks: dmarc needs spf and dkim".into());
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        let mut i = Inbound::default();
        let p = |v: &str| Ok(PathBuf::from(v));
        assert_eq!(i.set("inbound_checks", "spf,dkim iprev", p), Some(Ok(())));
        assert!(
            i.checks.spf && i.checks.dkim && i.checks.iprev && !i.checks.dmarc
        );
        assert_eq!(i.set("inbound_checks", "none", p), Some(Ok(())));
        assert!(!i.checks.any());
        assert!(matches!(
            i.set("inbound_checks", "spf dmarc", p),
            Some(Err(_))
        ));
        assert!(matches!(
            i.set("inbound_checks", "spf bogus", p),
            Some(Err(_))
        ));
        assert_eq!(
            i.set("arc_trusted_sealers", "lists.example, Google.com", p),
            Some(Ok(()))
        );
        assert_eq!(i.arc_trusted_sealers, ["lists.example", "google.com"]);
        assert_eq!(i.set("spf_fail", "junk", p), Some(Ok(())));
        assert_eq!(i.spf_fail, SpfFail::Junk);
        assert!(matches!(i.set("dmarc_reject", "drop", p), Some(Err(_))));
        assert_eq!(i.set("other", "x", p), None);
    }
}
