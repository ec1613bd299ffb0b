//! The keys of the spam defence: DNS blocklists for clients (`dnsbl`)
//! and senders' domains (`rhsbl`).

/// Spam settings, defaults applied.
#[derive(Debug, Clone, Default)]
pub struct Spam {
    /// Client IP lists: a listed client gets 554 at RCPT.
    pub dnsbl: Vec<String>,
    /// Sender domain lists: a listed MAIL FROM domain gets 554 at RCPT.
    pub rhsbl: Vec<String>,
}

impl Spam {
    /// Applies one key; None if the key is not one of ours.
    pub fn set(
        &mut self,
        key: &str,
        value: &str,
    ) -> Option<Result<(), String>> {
        let list = match key {
            "dnsbl" => &mut self.dnsbl,
            "rhsbl" => &mut self.rhsbl,
            _ => return None,
        };
        Some(zones(key, value).map(|z| *list = z))
    }

    /// True if any blocklist is set.
    pub fn any_list(&self) -> bool {
        !(self.dnsbl.is_empty() && self.rhsbl.is_empty())
    }
}

/// A list of DNS zones, lower case, with no trailing dot.
fn zones(key: &str, value: &str) -> Result<Vec<String>, String> {
    let zones: Vec<String> = super::items(value)
        .map(|z| z.trim_end_matches('.').to_ascii_lowercase())
        .collect();
    match zones.iter().find(|z| !super::is_domain(z)) {
        Some(bad) => Err(format!("bad zone {bad:?} in {key}")),
        None => Ok(zones),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_of_zones() {
        let mut s = Spam::default();
        assert!(!s.any_list());
        s.set("dnsbl", "zen.spamhaus.org, bl.spamcop.net.")
            .unwrap()
            .unwrap();
        assert_eq!(s.dnsbl, ["zen.spamhaus.org", "bl.spamcop.net"]);
        assert!(s.any_list());
        assert!(s.set("rhsbl", "dbl.example,,bad zone!").unwrap().is_err());
        assert!(s.set("hostname", "x").is_none());
        s.set("rhsbl", "").unwrap().unwrap();
        assert!(s.rhsbl.is_empty());
    }
}
