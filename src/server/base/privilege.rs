//! Least privilege: started as root, postling binds its ports and reads
//! its key, then becomes `run_as` for good (supplementary groups, group,
//! user, in that order). This runs before any helper thread exists: the
//! raw set*id system calls change only the calling thread, and at that
//! point it is the only one.
//!
//! Accounts come from `/etc/passwd` and `/etc/group` (system accounts
//! live there; NSS modules are not consulted).

use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use rustix::process::{Gid, Uid, geteuid};
use rustix::thread::{
    set_thread_groups, set_thread_res_gid, set_thread_res_uid,
};

/// A resolved `run_as`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// User name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary groups (`ssl-cert` for a certbot key, say).
    pub groups: Vec<u32>,
}

/// Decides what to become: `None` to stay as we are. Refuses to serve
/// as root unless `run_as = root` says so.
pub fn plan(run_as: Option<&str>) -> Result<Option<Account>, String> {
    let root = geteuid().is_root();
    match run_as {
        None if root => Err("refusing to serve as root: set run_as = \
             postling (the account to switch to after binding the ports), \
             or run_as = root to insist"
            .into()),
        None => Ok(None),
        Some("root") => Ok(None),
        Some(spec) => {
            let account =
                lookup(spec, &read("/etc/passwd"), &read("/etc/group"))?;
            if root {
                Ok(Some(account))
            } else if account.uid == geteuid().as_raw() {
                // Already that user (systemd's User=): nothing to do.
                Ok(None)
            } else {
                Err(format!(
                    "run_as = {spec} needs root to switch to; this process \
                     runs as uid {}",
                    geteuid().as_raw()
                ))
            }
        }
    }
}

fn read(path: &str) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

/// Resolves `USER[:GROUP]` against passwd and group file texts.
pub fn lookup(
    spec: &str,
    passwd: &str,
    group: &str,
) -> Result<Account, String> {
    let (user, group_name) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let fields = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 4 && f[0] == user)
        .ok_or_else(|| format!("run_as: no user {user:?} in /etc/passwd"))?;
    let number = |s: &str| {
        s.parse::<u32>()
            .map_err(|_| format!("run_as: bad id {s:?}"))
    };
    let uid = number(fields[2])?;
    let mut gid = number(fields[3])?;
    let mut groups = Vec::new();
    for line in group.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 4 {
            continue;
        }
        let Ok(id) = f[2].parse::<u32>() else {
            continue;
        };
        if Some(f[0]) == group_name {
            gid = id;
        }
        if f[3].split(',').any(|m| m == user) {
            groups.push(id);
        }
    }
    if let Some(g) = group_name
        && !group.lines().any(|l| l.split(':').next() == Some(g))
    {
        return Err(format!("run_as: no group {g:?} in /etc/group"));
    }
    if !groups.contains(&gid) {
        groups.push(gid);
    }
    Ok(Account {
        name: user.to_string(),
        uid,
        gid,
        groups,
    })
}

/// Creates `data_dir` (0700) for `account` if it is missing.
pub fn prepare_data_dir(dir: &Path, account: &Account) -> io::Result<()> {
    if dir.exists() {
        return Ok(());
    }
    // Traversable, not listable: `public/` inside holds the socket
    // `postling sendmail` uses; everything else in it is 0700.
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(dir)?;
    std::os::unix::fs::chown(dir, Some(account.uid), Some(account.gid))
}

/// Becomes `account` for good: real, effective and saved ids.
pub fn become_user(account: &Account) -> io::Result<()> {
    let groups: Vec<Gid> =
        account.groups.iter().map(|&g| Gid::from_raw(g)).collect();
    set_thread_groups(&groups)?;
    let gid = Gid::from_raw(account.gid);
    set_thread_res_gid(gid, gid, gid)?;
    let uid = Uid::from_raw(account.uid);
    set_thread_res_uid(uid, uid, uid)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
                          postling:x:998:997::/var/lib/postling:/usr/sbin/nologin\n";
    const GROUP: &str = "root:x:0:\nssl-cert:x:110:postling,other\n\
                         postling:x:997:\nmail:x:8:\n";

    #[test]
    fn accounts_and_groups() {
        let a = lookup("postling", PASSWD, GROUP).unwrap();
        assert_eq!((a.uid, a.gid), (998, 997));
        assert!(a.groups.contains(&110) && a.groups.contains(&997));
        let b = lookup("postling:mail", PASSWD, GROUP).unwrap();
        assert_eq!(b.gid, 8);
        assert!(lookup("nobody", PASSWD, GROUP).is_err());
        assert!(lookup("postling:nogroup", PASSWD, GROUP).is_err());
    }
}
