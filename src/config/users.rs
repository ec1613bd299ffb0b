//! The users file, in Dovecot's passwd-file format
//! (`address:{SCHEME}hash:uid:gid:gecos:home:shell:extra`), so an
//! existing Dovecot file works as it is. Only the address and password
//! fields mean anything to postling; the rest are kept but ignored.

use std::collections::HashMap;
use std::path::Path;

use super::lexer::{self, Problem};

/// One user: an address with a mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The address, lower case: the login name and the mailbox key.
    pub address: String,
    /// `{SCHEME}hash`, empty if the user has no password.
    pub password: String,
    /// Their storage limit in octets, from the extra field
    /// `userdb_quota_rule=*:storage=SIZE` (0: none); None: the default.
    pub quota: Option<u64>,
}

/// All users, by lower-case address.
#[derive(Debug, Clone, Default)]
pub struct Users {
    by_address: HashMap<String, User>,
}

impl Users {
    /// Parses the users file; `domains` are the local ones.
    pub fn load(
        file: &Path,
        domains: &[String],
    ) -> Result<Users, Vec<Problem>> {
        let text = lexer::read(file).map_err(|p| vec![p])?;
        let mut users = Users::default();
        let mut problems = Vec::new();
        for (n, line) in lexer::lines(&text) {
            match parse_line(line, domains) {
                Ok(user) if users.by_address.contains_key(&user.address) => {
                    let msg = format!("duplicate user {}", user.address);
                    problems.push(Problem::new(file, n, msg));
                }
                Ok(user) => {
                    users.by_address.insert(user.address.clone(), user);
                }
                Err(msg) => problems.push(Problem::new(file, n, msg)),
            }
        }
        if problems.is_empty() {
            Ok(users)
        } else {
            Err(problems)
        }
    }

    /// The user with this (lower-case) address.
    pub fn get(&self, address: &str) -> Option<&User> {
        self.by_address.get(address)
    }

    /// Every user's address.
    pub fn addresses(&self) -> impl Iterator<Item = &str> {
        self.by_address.keys().map(String::as_str)
    }

    /// How many users there are.
    pub fn len(&self) -> usize {
        self.by_address.len()
    }

    /// True if there are none.
    pub fn is_empty(&self) -> bool {
        self.by_address.is_empty()
    }
}

fn parse_line(line: &str, domains: &[String]) -> Result<User, String> {
    // The extra fields (the 8th on) may hold colons of their own.
    let mut fields = line.splitn(8, ':');
    // invariant: splitn yields at least one item.
    let address = fields.next().unwrap_or_default().trim().to_lowercase();
    let password = fields.next().unwrap_or_default().trim().to_string();
    check_address(&address, domains)?;
    if !password.is_empty() {
        crate::auth::password::check_scheme(&password)
            .map_err(|e| format!("{address}: {e}"))?;
    }
    let extra = fields.nth(5).unwrap_or_default();
    let quota = quota_rule(extra).map_err(|e| format!("{address}: {e}"))?;
    Ok(User {
        address,
        password,
        quota,
    })
}

/// Dovecot's `userdb_quota_rule=*:storage=SIZE` (or `quota_rule=`)
/// among the extra fields: the size in octets, `0` for none.
fn quota_rule(extra: &str) -> Result<Option<u64>, String> {
    let mut found = None;
    for field in extra.split_ascii_whitespace() {
        let Some(rule) = field
            .strip_prefix("userdb_quota_rule=")
            .or_else(|| field.strip_prefix("quota_rule="))
        else {
            continue;
        };
        let size = rule.strip_prefix("*:storage=").ok_or_else(|| {
            format!("quota rule {rule:?}: only *:storage=SIZE is known")
        })?;
        let size = size.trim_end_matches(['B', 'b']);
        found = Some(match size {
            "0" => 0,
            s => super::size(s)?,
        });
    }
    Ok(found)
}

/// A user address must be `local@domain` in a local domain, and its local
/// part must be safe as a folder name.
pub fn check_address(address: &str, domains: &[String]) -> Result<(), String> {
    let Some((local, domain)) = address.rsplit_once('@') else {
        return Err(format!("{address:?} is not local@domain"));
    };
    if !domains.iter().any(|d| d == domain) {
        return Err(format!("{address}: {domain} is not in domains"));
    }
    let unsafe_name = local.is_empty()
        || local.starts_with('.')
        || local.contains(['/', '\0', ':'])
        || local.chars().any(char::is_whitespace);
    if unsafe_name {
        return Err(format!(
            "{address}: local part unusable as a mailbox name"
        ));
    }
    if address.starts_with('#') {
        // The users file would read the line as a comment.
        return Err(format!(
            "{address}: a user name cannot start with '#' (the users \
             file reads such a line as a comment)"
        ));
    }
    if local.chars().any(char::is_control) {
        return Err(format!("{address}: control characters in the name"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domains() -> Vec<String> {
        vec!["example.org".into()]
    }

    #[test]
    fn dovecot_lines() {
        let u = parse_line(
            "Alice@Example.org:{SHA512-CRYPT}$6$x$y:1000:1000::/home/a::",
            &domains(),
        )
        .unwrap();
        assert_eq!(u.address, "alice@example.org");
        assert_eq!(u.password, "{SHA512-CRYPT}$6$x$y");
        assert!(parse_line("bob@example.org", &domains()).is_ok());
        let q = parse_line(
            "carol@example.org:::::::userdb_quota_rule=*:storage=512M other=1",
            &domains(),
        )
        .unwrap();
        assert_eq!(q.quota, Some(512 << 20));
        let q = parse_line(
            "d@example.org::::::: quota_rule=*:storage=0",
            &domains(),
        );
        assert_eq!(q.unwrap().quota, Some(0));
        assert!(
            parse_line(
                "e@example.org::::::: userdb_quota_rule=*:messages=10",
                &domains()
            )
            .is_err()
        );
    }

    #[test]
    fn bad_lines() {
        for bad in [
            "bob",
            "bob@other.org",
            "../x@example.org",
            "a/b@example.org",
            "bob@example.org:plaintext",
        ] {
            assert!(parse_line(bad, &domains()).is_err(), "{bad}");
        }
    }
}
