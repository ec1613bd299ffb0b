//! [`Directory`]: users and aliases together, answering which mailboxes a
//! recipient address delivers to. Swapped whole on SIGHUP.

use super::Config;
use super::aliases::Aliases;
use super::lexer::Problems;
use super::local_senders::LocalSenders;
use super::users::Users;
use crate::proto::smtp::{Path, RcptError};

/// Who receives mail here.
#[derive(Debug, Clone)]
pub struct Directory {
    /// The users, with their passwords.
    pub users: Users,
    aliases: Aliases,
    domains: Vec<String>,
    delimiter: Option<char>,
    /// Who local accounts may send as (`postling sendmail`).
    pub senders: LocalSenders,
}

impl Directory {
    /// Loads the users and aliases files `cfg` names.
    pub fn load(cfg: &Config) -> Result<Directory, Problems> {
        let users = Users::load(&cfg.users_file, &cfg.domains).map_err(
            |mut problems| {
                // A file that cannot be read: say which config line
                // named it, so the fix is obvious.
                let named_by = match cfg.users_file_line {
                    0 => format!(
                        "the default users_file of {}",
                        cfg.path.display()
                    ),
                    n => format!("users_file at {}:{n}", cfg.path.display()),
                };
                for p in problems.iter_mut().filter(|p| p.line == 0) {
                    p.message = format!("{} (named by {named_by})", p.message);
                }
                Problems(problems)
            },
        )?;
        let aliases = match &cfg.aliases_file {
            Some(file) => {
                Aliases::load(file, &cfg.domains, &users).map_err(Problems)?
            }
            None => Aliases::default(),
        };
        let senders =
            LocalSenders::load(cfg.sendmail_senders.as_deref(), &cfg.hostname)
                .map_err(Problems)?;
        Ok(Directory {
            users,
            aliases,
            senders,
            domains: cfg.domains.clone(),
            delimiter: cfg.recipient_delimiter,
        })
    }

    /// The mailboxes (user addresses) mail to `to` goes to.
    pub fn resolve(&self, to: &Path) -> Result<Vec<String>, RcptError> {
        if to.is_bare_postmaster() {
            // RFC 5321 4.1.1.3: `<Postmaster>` means our postmaster.
            let first = self.domains.first().ok_or(RcptError::UnknownUser)?;
            return self.local(
                &format!("postmaster@{first}"),
                "postmaster",
                first,
            );
        }
        if !self.domains.iter().any(|d| d == to.domain()) {
            return Err(RcptError::NotLocal);
        }
        let local = to.local().to_lowercase();
        let address = format!("{local}@{}", to.domain());
        self.local(&address, &local, to.domain())
    }

    fn local(
        &self,
        address: &str,
        local: &str,
        domain: &str,
    ) -> Result<Vec<String>, RcptError> {
        if let Some(found) = self.exact(address) {
            return Ok(found);
        }
        if let Some(base) = self.delimiter.and_then(|d| local.split_once(d))
            && let Some(found) = self.exact(&format!("{}@{domain}", base.0))
        {
            return Ok(found);
        }
        match self.aliases.get(&format!("@{domain}")) {
            Some(boxes) => Ok(boxes.to_vec()),
            None => Err(RcptError::UnknownUser),
        }
    }

    /// True if `user` may send as `from`: the address is theirs, or an
    /// alias (not a catch-all) that delivers to them, `+tag` or not.
    pub fn may_send_as(&self, user: &str, from: &Path) -> bool {
        if !self.domains.iter().any(|d| d == from.domain()) {
            return false;
        }
        let local = from.local().to_lowercase();
        let mut candidates = vec![format!("{local}@{}", from.domain())];
        if let Some((base, _)) =
            self.delimiter.and_then(|d| local.split_once(d))
        {
            candidates.push(format!("{base}@{}", from.domain()));
        }
        candidates.iter().any(|a| {
            self.exact(a)
                .is_some_and(|boxes| boxes.iter().any(|b| b == user))
        })
    }

    /// A user's storage limit in octets (0: none): theirs from the users
    /// file, else `default` (the `quota` key).
    pub fn quota(&self, user: &str, default: u64) -> u64 {
        self.users
            .get(user)
            .and_then(|u| u.quota)
            .unwrap_or(default)
    }

    /// The stored `{SCHEME}hash` of a user, if they exist and have one.
    pub fn password(&self, user: &str) -> Option<&str> {
        let user = self.users.get(&user.to_lowercase())?;
        Some(user.password.as_str()).filter(|p| !p.is_empty())
    }

    fn exact(&self, address: &str) -> Option<Vec<String>> {
        if self.users.get(address).is_some() {
            return Some(vec![address.to_string()]);
        }
        self.aliases.get(address).map(<[String]>::to_vec)
    }
}
