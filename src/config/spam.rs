//! The keys of the spam defence: the checks before content
//! (`greet_delay`), DNS blocklists for clients (`dnsbl`) and senders'
//! domains (`rhsbl`), greylisting (`greylist`, `greylist_delay`), the
//! filter that learns (`spam_filter`) and how long Junk keeps mail
//! (`junk_expire`).

/// Spam settings, defaults applied.
#[derive(Debug, Clone)]
pub struct Spam {
    /// Seconds a client on port 25 not seen before waits for the end of
    /// the greeting (0: no checks before content).
    pub greet_delay: u64,
    /// Client IP lists: a listed client gets 554 at RCPT.
    pub dnsbl: Vec<String>,
    /// Sender domain lists: a listed MAIL FROM domain gets 554 at RCPT.
    pub rhsbl: Vec<String>,
    /// Domain lists for the links in a message: a listed one sends the
    /// message to Junk.
    pub uribl: Vec<String>,
    /// Greylisting strangers' first tries.
    pub greylist: bool,
    /// Seconds before a greylisted retry is accepted.
    pub greylist_delay: u64,
    /// Each user's learning filter, on strangers' mail.
    pub spam_filter: bool,
    /// Seconds mail stays in Junk before it is removed (0: kept).
    pub junk_expire: u64,
}

impl Default for Spam {
    fn default() -> Spam {
        Spam {
            // Postfix's postscreen_greet_wait.
            greet_delay: 6,
            dnsbl: Vec::new(),
            rhsbl: Vec::new(),
            uribl: Vec::new(),
            greylist: false,
            greylist_delay: 300,
            spam_filter: true,
            junk_expire: 30 * 86_400,
        }
    }
}

impl Spam {
    /// Applies one key; None if the key is not one of ours.
    pub fn set(
        &mut self,
        key: &str,
        value: &str,
    ) -> Option<Result<(), String>> {
        if key == "greet_delay" {
            let delay = super::outbound::duration(value).and_then(|d| match d {
                0..=60 => Ok(d),
                _ => Err("greet_delay is at most 60s (senders wait 5 minutes for a greeting)".into()),
            });
            return Some(delay.map(|d| self.greet_delay = d));
        }
        let switch = |value: &str| match value {
            "on" => Ok(true),
            "off" => Ok(false),
            _ => Err(format!("{key} must be on or off, not {value:?}")),
        };
        match key {
            "greylist" => {
                return Some(switch(value).map(|on| self.greylist = on));
            }
            "spam_filter" => {
                return Some(switch(value).map(|on| self.spam_filter = on));
            }
            "junk_expire" => {
                let d = super::outbound::duration(value);
                return Some(d.map(|d| self.junk_expire = d));
            }
            "greylist_delay" => {
                let delay =
                    super::outbound::duration(value).and_then(|d| match d {
                        1..=86_400 => Ok(d),
                        _ => Err("greylist_delay is 1s to 1d".into()),
                    });
                return Some(delay.map(|d| self.greylist_delay = d));
            }
            _ => {}
        }
        let list = match key {
            "dnsbl" => &mut self.dnsbl,
            "rhsbl" => &mut self.rhsbl,
            "uribl" => &mut self.uribl,
            _ => return None,
        };
        Some(zones(key, value).map(|z| *list = z))
    }

    /// True if any blocklist is set.
    pub fn any_list(&self) -> bool {
        !(self.dnsbl.is_empty()
            && self.rhsbl.is_empty()
            && self.uribl.is_empty())
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
    fn filter_and_junk_keys() {
        let mut s = Spam::default();
        assert!(s.spam_filter && s.junk_expire == 30 * 86_400);
        s.set("spam_filter", "off").unwrap().unwrap();
        assert!(!s.spam_filter);
        assert!(s.set("spam_filter", "yes").unwrap().is_err());
        s.set("junk_expire", "2w").unwrap().unwrap();
        assert_eq!(s.junk_expire, 14 * 86_400);
        s.set("junk_expire", "0").unwrap().unwrap();
        assert_eq!(s.junk_expire, 0);
        assert!(s.set("junk_expire", "soon").unwrap().is_err());
    }

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
        s.set("uribl", "multi.uribl.example").unwrap().unwrap();
        assert_eq!(s.uribl, ["multi.uribl.example"]);
        s.set("rhsbl", "").unwrap().unwrap();
        assert!(s.rhsbl.is_empty());
    }
}
