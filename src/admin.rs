//! `postling user add|passwd|del|list`: edits the users file in place,
//! keeping every other line and comment as it was, and replaces it
//! atomically (temporary file, fsync, rename).

use std::io::{BufRead, IsTerminal, Write};

use crate::auth::password;
use crate::config::Config;
use crate::config::users::check_address;
use crate::util::fs::atomic_write;

/// What to do to the users file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserAction {
    /// Add a user, asking for a password.
    Add(String),
    /// Change a user's password.
    Passwd(String),
    /// Remove a user.
    Del(String),
    /// Print every user.
    List,
}

/// Runs one user command against the users file `cfg` names.
pub fn user(cfg: &Config, action: &UserAction) -> Result<String, String> {
    let file = &cfg.users_file;
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("{}: {e}", file.display())),
    };
    let new_text = match action {
        UserAction::List => return Ok(list(&text).join("\n")),
        UserAction::Add(address) => {
            let address = address.to_lowercase();
            check_address(&address, &cfg.domains)?;
            if find(&text, &address).is_some() {
                return Err(format!("{address} already exists"));
            }
            let hash = password::hash(&read_password()?)?;
            add(&text, &address, &hash)
        }
        UserAction::Passwd(address) => {
            let address = address.to_lowercase();
            find(&text, &address).ok_or(format!("no user {address}"))?;
            let hash = password::hash(&read_password()?)?;
            set_password(&text, &address, &hash)
        }
        UserAction::Del(address) => {
            let address = address.to_lowercase();
            find(&text, &address).ok_or(format!("no user {address}"))?;
            remove(&text, &address)
        }
    };
    atomic_write(file, new_text.as_bytes())
        .map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(format!(
        "{} updated; send postling SIGHUP to use it",
        file.display()
    ))
}

/// Index of the line for `address`.
fn find(text: &str, address: &str) -> Option<usize> {
    text.lines()
        .position(|l| line_address(l).as_deref() == Some(address))
}

fn line_address(line: &str) -> Option<String> {
    let t = line.trim();
    if t.is_empty() || t.starts_with('#') {
        return None;
    }
    t.split(':').next().map(|a| a.trim().to_lowercase())
}

fn list(text: &str) -> Vec<String> {
    text.lines().filter_map(line_address).collect()
}

fn add(text: &str, address: &str, hash: &str) -> String {
    let mut out = text.to_string();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&format!("{address}:{hash}::::::\n"));
    out
}

/// Replaces the password field only; uid, home and the rest stay.
fn set_password(text: &str, address: &str, hash: &str) -> String {
    rewrite(text, address, |line| {
        let mut fields: Vec<&str> = line.split(':').collect();
        if fields.len() < 2 {
            fields.push("");
        }
        fields[1] = hash;
        Some(fields.join(":"))
    })
}

fn remove(text: &str, address: &str) -> String {
    rewrite(text, address, |_| None)
}

fn rewrite(
    text: &str,
    address: &str,
    change: impl Fn(&str) -> Option<String>,
) -> String {
    let mut out = String::with_capacity(text.len() + 128);
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches('\n');
        if line_address(body).as_deref() == Some(address) {
            if let Some(new) = change(body) {
                out.push_str(&new);
                out.push('\n');
            }
        } else {
            out.push_str(line);
        }
    }
    out
}

/// The new password: one line from standard input when it is not a
/// terminal (scripts), else asked twice with echo off.
fn read_password() -> Result<Vec<u8>, String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        let pw = line.trim_end_matches(['\n', '\r']).as_bytes().to_vec();
        return check_new_password(pw);
    }
    let first = prompt("New password: ")?;
    let second = prompt("Again: ")?;
    if first != second {
        return Err("the passwords differ".into());
    }
    check_new_password(first)
}

fn check_new_password(pw: Vec<u8>) -> Result<Vec<u8>, String> {
    if pw.is_empty() {
        return Err("empty password".into());
    }
    Ok(pw)
}

fn prompt(text: &str) -> Result<Vec<u8>, String> {
    use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|e| format!("/dev/tty: {e}"))?;
    let saved = tcgetattr(&tty).map_err(|e| e.to_string())?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    tcsetattr(&tty, OptionalActions::Flush, &quiet)
        .map_err(|e| e.to_string())?;
    let mut out = &tty;
    let _ = out.write_all(text.as_bytes());
    let mut line = String::new();
    let read = std::io::BufReader::new(&tty).read_line(&mut line);
    let _ = tcsetattr(&tty, OptionalActions::Flush, &saved);
    let _ = out.write_all(b"\n");
    read.map_err(|e| e.to_string())?;
    Ok(line.trim_end_matches(['\n', '\r']).as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# users\nalice@x.test:{SHA512-CRYPT}$6$a$b:1000:1000::/home/a::\n\
                        \n# bob below\nbob@x.test\n";

    #[test]
    fn edits_keep_everything_else() {
        let added = add(FILE, "carol@x.test", "{ARGON2ID}h");
        assert_eq!(added, format!("{FILE}carol@x.test:{{ARGON2ID}}h::::::\n"));
        let changed = set_password(FILE, "alice@x.test", "{ARGON2ID}new");
        assert_eq!(
            changed,
            FILE.replace("{SHA512-CRYPT}$6$a$b", "{ARGON2ID}new")
        );
        let bob = set_password(FILE, "bob@x.test", "{ARGON2ID}p");
        assert!(bob.ends_with("\nbob@x.test:{ARGON2ID}p\n"));
        let removed = remove(FILE, "alice@x.test");
        assert_eq!(removed, "# users\n\n# bob below\nbob@x.test\n");
        assert_eq!(list(FILE), ["alice@x.test", "bob@x.test"]);
        assert_eq!(
            add("x@x.test", "y@x.test", "{A}h"),
            "x@x.test\ny@x.test:{A}h::::::\n"
        );
    }
}
