//! A user's folders in Maildir++ layout: INBOX is the user's Maildir,
//! every other folder `NAME` is the Maildir `.NAME` beside it (children
//! as `.Parent.Child`), `subscriptions` lists subscribed names one a
//! line (Dovecot's format), and `postling-special-use` holds SPECIAL-USE
//! attributes given at CREATE. Names are checked by
//! `proto::imap::names` before they get here.
//!
//! Runs on helper threads.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::maildir;
use crate::proto::imap::names;
use crate::util::fs::atomic_write;

/// Folders every user has, with their SPECIAL-USE attribute.
pub const DEFAULT_FOLDERS: [(&str, &str); 5] = [
    ("Sent", "\\Sent"),
    ("Drafts", "\\Drafts"),
    ("Trash", "\\Trash"),
    ("Junk", "\\Junk"),
    ("Archive", "\\Archive"),
];
/// SPECIAL-USE attributes CREATE accepts.
pub const SPECIAL_USES: [&str; 7] = [
    "\\All",
    "\\Archive",
    "\\Drafts",
    "\\Flagged",
    "\\Junk",
    "\\Sent",
    "\\Trash",
];
const SUBSCRIPTIONS: &str = "subscriptions";
const SPECIAL_USE: &str = "postling-special-use";

/// The Maildir of folder `name` under the user's `root`.
pub fn dir(root: &Path, name: &str) -> PathBuf {
    if name == "INBOX" {
        root.to_path_buf()
    } else {
        root.join(format!(".{name}"))
    }
}

/// True if the folder exists.
pub fn exists(root: &Path, name: &str) -> bool {
    name == "INBOX" || dir(root, name).join("cur").is_dir()
}

/// Every folder, INBOX first, the rest sorted.
pub fn all(root: &Path) -> io::Result<Vec<String>> {
    let mut found = vec!["INBOX".to_string()];
    let entries = match fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(e),
    };
    let mut rest = Vec::new();
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(name) = file.to_str().and_then(|f| f.strip_prefix('.'))
        else {
            continue;
        };
        if names::check(name).is_ok() && entry.path().join("cur").is_dir() {
            rest.push(name.to_string());
        }
    }
    rest.sort();
    found.extend(rest);
    Ok(found)
}

/// Serializes changes to a user's `subscriptions` and special-use
/// files (read, change, write) between helper threads.
static ADMIN: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn admin() -> std::sync::MutexGuard<'static, ()> {
    ADMIN.lock().unwrap_or_else(|p| p.into_inner())
}

/// Creates the default folders that are missing, subscribed; at login.
pub fn ensure_defaults(root: &Path) -> io::Result<()> {
    let _admin = admin();
    maildir::create(root)?;
    let mut subs = subscriptions(root)?;
    let mut changed = false;
    for (name, _) in DEFAULT_FOLDERS {
        if !exists(root, name) {
            maildir::create(&dir(root, name))?;
            if !subs.iter().any(|s| s == name) {
                subs.push(name.to_string());
                changed = true;
            }
        }
    }
    if changed {
        write_subscriptions(root, &subs)?;
    }
    Ok(())
}

/// Creates a folder (and any missing parents), with a SPECIAL-USE.
pub fn create(
    root: &Path,
    name: &str,
    special: Option<&str>,
) -> io::Result<()> {
    if exists(root, name) {
        return Err(io::Error::new(io::ErrorKind::AlreadyExists, "exists"));
    }
    let levels: Vec<&str> = name.split(names::SEPARATOR).collect();
    for i in 1..levels.len() {
        let parent = levels[..i].join(".");
        if parent != "INBOX" && !exists(root, &parent) {
            maildir::create(&dir(root, &parent))?;
        }
    }
    maildir::create(&dir(root, name))?;
    if let Some(attr) = special {
        let _admin = admin();
        let mut uses = special_uses(root);
        uses.push((name.to_string(), attr.to_string()));
        write_special_uses(root, &uses)?;
    }
    Ok(())
}

/// Deletes a folder and its messages; its children stay (RFC 9051
/// 6.3.4), and a folder with children cannot be deleted.
pub fn delete(root: &Path, name: &str) -> io::Result<()> {
    if !exists(root, name) {
        return Err(io::Error::new(io::ErrorKind::NotFound, "no such folder"));
    }
    let prefix = format!("{name}.");
    if all(root)?.iter().any(|n| n.starts_with(&prefix)) {
        return Err(io::Error::other("has children"));
    }
    // Renamed away first, so a crash never leaves half a folder visible.
    let d = dir(root, name);
    static NEXT: std::sync::atomic::AtomicU64 =
        std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let gone = root.join(format!("..deleted-{}-{n}", std::process::id()));
    let _ = fs::remove_dir_all(&gone);
    fs::rename(&d, &gone)?;
    fs::remove_dir_all(&gone)?;
    let _admin = admin();
    let uses: Vec<_> = special_uses(root)
        .into_iter()
        .filter(|(n, _)| n != name)
        .collect();
    write_special_uses(root, &uses)
}

/// Renames a folder and its children.
pub fn rename(root: &Path, from: &str, to: &str) -> io::Result<()> {
    if !exists(root, from) {
        return Err(io::Error::new(io::ErrorKind::NotFound, "no such folder"));
    }
    if exists(root, to) {
        return Err(io::Error::new(io::ErrorKind::AlreadyExists, "exists"));
    }
    if from == "INBOX" {
        return Err(io::Error::other("renaming INBOX is not supported"));
    }
    let prefix = format!("{from}.");
    let children: Vec<String> = all(root)?
        .into_iter()
        .filter(|n| n.starts_with(&prefix))
        .collect();
    fs::rename(dir(root, from), dir(root, to))?;
    for child in children {
        let new = format!("{to}.{}", &child[prefix.len()..]);
        fs::rename(dir(root, &child), dir(root, &new))?;
    }
    Ok(())
}

/// Subscribed names.
pub fn subscriptions(root: &Path) -> io::Result<Vec<String>> {
    match fs::read_to_string(root.join(SUBSCRIPTIONS)) {
        // Dovecot 2.3 may start with a "V\t2" header line.
        Ok(t) => Ok(t
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with("V\t"))
            .map(|l| l.replace('\t', "."))
            .collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Subscribes or unsubscribes `name`.
pub fn subscribe(root: &Path, name: &str, on: bool) -> io::Result<()> {
    let _admin = admin();
    let mut subs = subscriptions(root)?;
    subs.retain(|s| s != name);
    if on {
        subs.push(name.to_string());
    }
    write_subscriptions(root, &subs)
}

fn write_subscriptions(root: &Path, subs: &[String]) -> io::Result<()> {
    let mut text = subs.join("\n");
    text.push('\n');
    atomic_write(&root.join(SUBSCRIPTIONS), text.as_bytes())
}

/// The SPECIAL-USE attribute of a folder: given at CREATE, else by its
/// name for the default folders.
pub fn special_use(root: &Path, name: &str) -> Option<String> {
    if let Some((_, a)) =
        special_uses(root).into_iter().find(|(n, _)| n == name)
    {
        return Some(a);
    }
    DEFAULT_FOLDERS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, a)| a.to_string())
}

fn special_uses(root: &Path) -> Vec<(String, String)> {
    fs::read_to_string(root.join(SPECIAL_USE))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(n, a)| (n.to_string(), a.to_string()))
        .collect()
}

fn write_special_uses(
    root: &Path,
    uses: &[(String, String)],
) -> io::Result<()> {
    let text: String =
        uses.iter().map(|(n, a)| format!("{n}\t{a}\n")).collect();
    atomic_write(&root.join(SPECIAL_USE), text.as_bytes())
}
