//! The Public Suffix List (publicsuffix.org's format, as Debian's
//! `publicsuffix` package installs it) and the organizational domain
//! DMARC needs (RFC 7489 §3.2): the public suffix and one label more.
//! Read from the file's text here; reading the file is the caller's.

use std::collections::HashSet;

/// The list's rules.
#[derive(Debug, Default, Clone)]
pub struct List {
    /// `com`, `co.uk`: a suffix as written.
    exact: HashSet<String>,
    /// `*.ck` kept as `ck`: every label under it is a suffix.
    wildcard: HashSet<String>,
    /// `!www.ck` kept as `www.ck`: not a suffix despite a wildcard.
    exception: HashSet<String>,
    /// The most labels any rule has: longer tails are never looked up,
    /// so a From domain of ten thousand labels costs no more than one.
    longest: usize,
}

impl List {
    /// Reads the list: a rule a line, `//` comments, blank lines; only
    /// each line's first word counts (the format's rule).
    pub fn parse(text: &str) -> List {
        let mut list = List::default();
        for line in text.lines() {
            let Some(rule) = line.split_whitespace().next() else {
                continue;
            };
            if rule.starts_with("//") {
                continue;
            }
            let rule = rule.to_ascii_lowercase();
            list.longest = list.longest.max(rule.split('.').count());
            if let Some(name) = rule.strip_prefix('!') {
                list.exception.insert(name.to_string());
            } else if let Some(name) = rule.strip_prefix("*.") {
                list.wildcard.insert(name.to_string());
            } else {
                list.exact.insert(rule);
            }
        }
        list
    }

    /// How many labels of `domain` (lower case, no trailing dot) are
    /// its public suffix (the list's algorithm: an exception rule wins,
    /// then the longest; no rule at all means the last label).
    fn suffix_labels(&self, labels: &[&str]) -> usize {
        let n = labels.len();
        let mut best = 1;
        for take in 1..=n.min(self.longest + 1) {
            let tail = labels[n - take..].join(".");
            if self.exception.contains(&tail) {
                return take - 1;
            }
            if self.exact.contains(&tail) {
                best = best.max(take);
            }
            // `*.ck` makes `x.ck` a suffix: the wildcard's parent is
            // the tail one label shorter.
            if take >= 2
                && self.wildcard.contains(&labels[n - take + 1..].join("."))
            {
                best = best.max(take);
            }
        }
        best
    }

    /// The organizational domain of `domain`: its public suffix and one
    /// label more; a domain that is itself a public suffix is its own.
    pub fn organizational(&self, domain: &str) -> String {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let labels: Vec<&str> = domain.split('.').collect();
        let suffix = self.suffix_labels(&labels);
        let keep = (suffix + 1).min(labels.len());
        labels[labels.len() - keep..].join(".")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "// comment\n\ncom\nuk\nco.uk\n*.ck\n!www.ck\njp\n*.kobe.jp\n!city.kobe.jp\n\
                          github.io   trailing words ignored\n";

    #[test]
    fn organizational_domains() {
        let list = List::parse(SAMPLE);
        for (domain, org) in [
            ("example.com", "example.com"),
            ("mail.example.com", "example.com"),
            ("a.b.example.co.uk", "example.co.uk"),
            ("example.co.uk", "example.co.uk"),
            ("co.uk", "co.uk"),
            ("news.bbc.uk", "bbc.uk"),
            ("a.b.example.ck", "b.example.ck"),
            ("www.ck", "www.ck"),
            ("mail.www.ck", "www.ck"),
            ("a.city.kobe.jp", "city.kobe.jp"),
            ("a.b.other.kobe.jp", "b.other.kobe.jp"),
            ("me.github.io", "me.github.io"),
            ("Mail.Example.COM.", "example.com"),
            // Not on the list: the last label is the suffix.
            ("host.example.invalidtld", "example.invalidtld"),
            (
                &format!("{}example.co.uk", "a.".repeat(10_000)),
                "example.co.uk",
            ),
        ] {
            assert_eq!(list.organizational(domain), org, "{domain}");
        }
    }
}
