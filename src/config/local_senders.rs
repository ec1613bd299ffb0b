//! Who a local account may send as through `postling sendmail`: its
//! login name at `hostname`, plus what the `sendmail_senders` file
//! grants it (`unixname: addr, addr`, the aliases file's format). root
//! and the account the server runs as may use any sender. Accounts are
//! known by uid (the socket's SO_PEERCRED) through `/etc/passwd`.

use std::collections::HashMap;
use std::path::Path;

use super::lexer::{self, Problem};

/// Sender grants and the host's accounts.
#[derive(Debug, Clone, Default)]
pub struct LocalSenders {
    /// Addresses (lower case) each account name may use besides its own.
    grants: HashMap<String, Vec<String>>,
    /// Account names by uid.
    accounts: HashMap<u32, String>,
    /// Our host name: an account's own address is `name@hostname`.
    hostname: String,
}

impl LocalSenders {
    /// Reads the grants file (if any) and `/etc/passwd`.
    pub fn load(
        file: Option<&Path>,
        hostname: &str,
    ) -> Result<LocalSenders, Vec<Problem>> {
        let grants = match file {
            Some(f) => parse_grants(f, &lexer::read(f).map_err(|p| vec![p])?)?,
            None => HashMap::new(),
        };
        let passwd =
            std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        Ok(LocalSenders {
            grants,
            accounts: accounts(&passwd),
            hostname: hostname.to_ascii_lowercase(),
        })
    }

    /// The account name of `uid`, if `/etc/passwd` had it when loaded.
    pub fn name(&self, uid: u32) -> Option<&str> {
        self.accounts.get(&uid).map(String::as_str)
    }

    /// True if `uid` may use `address` as its sender. `server_uid` is
    /// the account the server runs as, which may use any, as root may.
    pub fn may_send_as(
        &self,
        uid: u32,
        server_uid: u32,
        address: &str,
    ) -> bool {
        // None: root or the server's own account, which may use any.
        self.owned(uid, server_uid).is_none_or(|own| {
            own.iter().any(|a| a.eq_ignore_ascii_case(address))
        })
    }

    /// The addresses `uid` owns; None for any (root, the server's own
    /// account).
    pub fn owned(&self, uid: u32, server_uid: u32) -> Option<Vec<String>> {
        if uid == 0 || uid == server_uid {
            return None;
        }
        let Some(name) = self.name(uid) else {
            return Some(Vec::new());
        };
        let mut own =
            vec![format!("{}@{}", name.to_ascii_lowercase(), self.hostname)];
        own.extend(self.grants.get(name).into_iter().flatten().cloned());
        Some(own)
    }
}

/// `name:x:uid:...` lines: names by uid (the first for a uid wins).
fn accounts(passwd: &str) -> HashMap<u32, String> {
    let mut out = HashMap::new();
    for line in passwd.lines() {
        let mut f = line.split(':');
        let (Some(name), Some(_), Some(uid)) = (f.next(), f.next(), f.next())
        else {
            continue;
        };
        if let Ok(uid) = uid.parse::<u32>() {
            out.entry(uid).or_insert_with(|| name.to_string());
        }
    }
    out
}

fn parse_grants(
    file: &Path,
    text: &str,
) -> Result<HashMap<String, Vec<String>>, Vec<Problem>> {
    let mut grants: HashMap<String, Vec<String>> = HashMap::new();
    let mut problems = Vec::new();
    for (n, line) in lexer::lines(text) {
        let Some((name, addrs)) = line.split_once(':') else {
            problems.push(Problem::new(
                file,
                n,
                "expected unixname: address, ...",
            ));
            continue;
        };
        let name = name.trim();
        if name.is_empty() || name.contains(char::is_whitespace) {
            problems.push(Problem::new(
                file,
                n,
                "expected a unix account name before ':'",
            ));
            continue;
        }
        for a in addrs.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            if a.matches('@').count() != 1
                || a.starts_with('@')
                || a.ends_with('@')
            {
                problems.push(Problem::new(
                    file,
                    n,
                    format!("{a}: not an address"),
                ));
                continue;
            }
            grants
                .entry(name.to_string())
                .or_default()
                .push(a.to_ascii_lowercase());
        }
    }
    match problems.is_empty() {
        true => Ok(grants),
        false => Err(problems),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn senders(grants: &str) -> LocalSenders {
        LocalSenders {
            grants: parse_grants(Path::new("s"), grants).unwrap(),
            accounts: accounts(
                "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/h:/bin/sh\n\
                                bob:x:1001:1001::/h:/bin/sh\npostling:x:110:110::/:/bin/false\n",
            ),
            hostname: "mx.example.org".into(),
        }
    }

    #[test]
    fn accounts_send_as_their_own_and_granted_addresses() {
        let s = senders(
            "# who may use what\nalice: Alice@example.org, sales@example.org\n",
        );
        assert!(s.may_send_as(1000, 110, "alice@mx.example.org"));
        assert!(s.may_send_as(1000, 110, "ALICE@example.org"));
        assert!(s.may_send_as(1000, 110, "sales@example.org"));
        assert!(!s.may_send_as(1000, 110, "bob@mx.example.org"));
        assert!(!s.may_send_as(1001, 110, "alice@example.org"));
        assert!(!s.may_send_as(4242, 110, "uid4242@mx.example.org"));
        assert!(s.may_send_as(0, 110, "anyone@anywhere.example"));
        assert!(s.may_send_as(110, 110, "anyone@anywhere.example"));
        assert_eq!(s.owned(0, 110), None);
        assert_eq!(
            s.owned(1001, 110),
            Some(vec!["bob@mx.example.org".into()])
        );
    }

    #[test]
    fn bad_grant_lines_are_reported_with_their_numbers() {
        let bad =
            parse_grants(Path::new("s"), "alice\nbob: @x, y@, ok@x\n: a@b\n")
                .unwrap_err();
        let lines: Vec<usize> = bad.iter().map(|p| p.line).collect();
        assert_eq!(lines, [1, 2, 2, 3]);
    }
}
