//! A user's folders. Maildir++ layout: INBOX is the user's Maildir,
//! every other folder `NAME` is the Maildir `.NAME` beside it (children
//! as `.Parent.Child`). mbox layout: INBOX is the `INBOX` file delivery
//! appends to, every other folder the file `folders/NAME`. Either way
//! `subscriptions` lists subscribed names one a line (Dovecot's format),
//! and `postling-special-use` holds SPECIAL-USE attributes given at
//! CREATE. Names are checked by `proto::imap::names` before they get
//! here.
//!
//! Runs on helper threads.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use std::os::unix::fs::OpenOptionsExt;

use super::{maildir, mbox};
use crate::config::MailboxFormat;
use crate::proto::imap::names;
use crate::util::fs::{atomic_write, create_dir_durable, sync_dir};

/// The folder spam goes into (special-use `\\Junk`).
pub const JUNK: &str = "Junk";

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

/// Where folder `name` is: its Maildir, or its mbox file.
pub fn place(root: &Path, name: &str, format: MailboxFormat) -> PathBuf {
    match format {
        MailboxFormat::Maildir => dir(root, name),
        MailboxFormat::Mbox if name == "INBOX" => root.join(mbox::INBOX),
        MailboxFormat::Mbox => root.join(MBOX_FOLDERS).join(name),
    }
}

/// The folder mbox files other than INBOX live in.
const MBOX_FOLDERS: &str = "folders";

/// True if the folder exists.
pub fn exists(root: &Path, name: &str, format: MailboxFormat) -> bool {
    name == "INBOX"
        || match format {
            MailboxFormat::Maildir => dir(root, name).join("cur").is_dir(),
            MailboxFormat::Mbox => {
                storable(name, format) && place(root, name, format).is_file()
            }
        }
}

/// Whether a folder of this name can be stored without sharing a file
/// with another folder's bookkeeping. mbox: folder `X.lock` would be
/// the file `folders/X.lock`, folder X's dotlock (its mail deleted as
/// a stale lock). The sidecar `.X.imap` and rewrite files start with a
/// `.`, which no name can. Maildir++ needs no rule: every folder is a
/// `.NAME` directory, and nothing else in the root starts with one `.`
/// followed by a name.
pub fn storable(name: &str, format: MailboxFormat) -> bool {
    match format {
        MailboxFormat::Maildir => true,
        // A parent is made for each level, so no level past the first
        // may be `lock` (CREATE X.lock.y would make folders/X.lock).
        MailboxFormat::Mbox => !name
            .split(names::SEPARATOR)
            .skip(1)
            .any(|level| level.eq_ignore_ascii_case("lock")),
    }
}

fn refuse_unstorable(name: &str, format: MailboxFormat) -> io::Result<()> {
    match storable(name, format) {
        true => Ok(()),
        false => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "no level of a folder's name but the first may be \"lock\" in mbox storage",
        )),
    }
}

/// Every folder, INBOX first, the rest sorted.
pub fn all(root: &Path, format: MailboxFormat) -> io::Result<Vec<String>> {
    let mut found = vec!["INBOX".to_string()];
    let (dir, prefix) = match format {
        MailboxFormat::Maildir => (root.to_path_buf(), "."),
        MailboxFormat::Mbox => (root.join(MBOX_FOLDERS), ""),
    };
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(e),
    };
    let mut rest = Vec::new();
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(name) = file.to_str().and_then(|f| f.strip_prefix(prefix))
        else {
            continue;
        };
        let is_folder = match format {
            MailboxFormat::Maildir => entry.path().join("cur").is_dir(),
            MailboxFormat::Mbox => entry.path().is_file(),
        };
        if names::check(name).is_ok()
            && storable(name, format)
            && is_folder
            && name != "INBOX"
        {
            rest.push(name.to_string());
        }
    }
    rest.sort();
    found.extend(rest);
    Ok(found)
}

/// The files that go with an mbox folder's file: its sidecar, header
/// cache (fields and sort keys) and list of messages set aside.
fn beside_mbox(path: &Path) -> [PathBuf; 4] {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    [
        super::mboxfolder::sidecar_path(path),
        super::headers::file(MailboxFormat::Mbox, path),
        super::headers::keys_file(MailboxFormat::Mbox, path),
        path.with_file_name(format!(".{name}.set-aside")),
    ]
}

/// Makes an empty folder: a Maildir, or an empty mbox file.
fn make(root: &Path, name: &str, format: MailboxFormat) -> io::Result<()> {
    let path = place(root, name, format);
    match format {
        MailboxFormat::Maildir => maildir::create(&path),
        MailboxFormat::Mbox => {
            if let Some(parent) = path.parent() {
                create_dir_durable(parent)?;
            }
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
            {
                Ok(_) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
                Err(e) => Err(e),
            }?;
            sync_dir(path.parent().unwrap_or(root))
        }
    }
}

/// Serializes changes to a user's `subscriptions` and special-use
/// files (read, change, write) between helper threads.
static ADMIN: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn admin() -> std::sync::MutexGuard<'static, ()> {
    ADMIN.lock().unwrap_or_else(|p| p.into_inner())
}

/// Creates the default folders that are missing, subscribed; at login.
pub fn ensure_defaults(root: &Path, format: MailboxFormat) -> io::Result<()> {
    let _admin = admin();
    match format {
        MailboxFormat::Maildir => maildir::create(root)?,
        MailboxFormat::Mbox => create_dir_durable(root)?,
    }
    let mut subs = subscriptions(root)?;
    let mut changed = false;
    for (name, _) in DEFAULT_FOLDERS {
        if !exists(root, name, format) {
            make(root, name, format)?;
            if !subs.iter().any(|s| s == name) {
                subs.push(name.to_string());
                changed = true;
            }
        }
    }
    // A new user's INBOX is subscribed with the rest (not on later
    // logins: a user may have unsubscribed it).
    if changed && !subs.iter().any(|s| s == "INBOX") {
        subs.insert(0, "INBOX".to_string());
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
    format: MailboxFormat,
) -> io::Result<()> {
    refuse_unstorable(name, format)?;
    if exists(root, name, format) {
        return Err(io::Error::new(io::ErrorKind::AlreadyExists, "exists"));
    }
    let levels: Vec<&str> = name.split(names::SEPARATOR).collect();
    for i in 1..levels.len() {
        let parent = levels[..i].join(".");
        if parent != "INBOX" && !exists(root, &parent, format) {
            make(root, &parent, format)?;
        }
    }
    make(root, name, format)?;
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
pub fn delete(
    root: &Path,
    name: &str,
    format: MailboxFormat,
) -> io::Result<()> {
    remove(root, name, format)?;
    // The quota file is rebuilt from what is left when next needed.
    let _ = fs::remove_file(root.join(super::quota::FILE));
    Ok(())
}

fn remove(root: &Path, name: &str, format: MailboxFormat) -> io::Result<()> {
    if !exists(root, name, format) {
        return Err(io::Error::new(io::ErrorKind::NotFound, "no such folder"));
    }
    let prefix = format!("{name}.");
    if all(root, format)?.iter().any(|n| n.starts_with(&prefix)) {
        return Err(io::Error::other("has children"));
    }
    let d = place(root, name, format);
    if format == MailboxFormat::Mbox {
        fs::remove_file(&d)?;
        for beside in beside_mbox(&d) {
            let _ = fs::remove_file(beside);
        }
    } else {
        // Renamed away first, so a crash never leaves half a folder.
        static NEXT: std::sync::atomic::AtomicU64 =
            std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let gone = root.join(format!("..deleted-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&gone);
        fs::rename(&d, &gone)?;
        fs::remove_dir_all(&gone)?;
    }
    let _admin = admin();
    let uses: Vec<_> = special_uses(root)
        .into_iter()
        .filter(|(n, _)| n != name)
        .collect();
    write_special_uses(root, &uses)
}

/// Renames a folder and its children.
pub fn rename(
    root: &Path,
    from: &str,
    to: &str,
    format: MailboxFormat,
) -> io::Result<()> {
    if !exists(root, from, format) {
        return Err(io::Error::new(io::ErrorKind::NotFound, "no such folder"));
    }
    refuse_unstorable(to, format)?;
    if exists(root, to, format) {
        return Err(io::Error::new(io::ErrorKind::AlreadyExists, "exists"));
    }
    if from == "INBOX" {
        return Err(io::Error::other("renaming INBOX is not supported"));
    }
    let prefix = format!("{from}.");
    let children: Vec<String> = all(root, format)?
        .into_iter()
        .filter(|n| n.starts_with(&prefix))
        .collect();
    let move_one = |a: &str, b: &str| -> io::Result<()> {
        let (pa, pb) = (place(root, a, format), place(root, b, format));
        fs::rename(&pa, &pb)?;
        if format == MailboxFormat::Mbox {
            for (a, b) in beside_mbox(&pa).into_iter().zip(beside_mbox(&pb)) {
                if a.exists() {
                    fs::rename(a, b)?;
                }
            }
        }
        Ok(())
    };
    move_one(from, to)?;
    for child in children {
        let new = format!("{to}.{}", &child[prefix.len()..]);
        move_one(&child, &new)?;
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
