//! Where a user's scripts live, as Pigeonhole keeps them (so a
//! Dovecot user's files carry over): `{mailbox}/sieve/NAME.sieve`, and
//! the active one named by the symlink `{mailbox}/.dovecot.sieve`.
//! Compiled scripts are cached by file identity, within a bound.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::proto::sieve::compile;
use crate::proto::sieve::script::Script;

/// The folder of a user's scripts, under their mailbox.
pub const DIR: &str = "sieve";
/// The symlink to the active script, beside it.
pub const ACTIVE: &str = ".dovecot.sieve";
/// A script's text at most (octets).
pub const MAX_SIZE: u64 =
    crate::proto::managesieve::reader::MAX_LITERAL as u64;
/// Scripts one user may keep at most.
pub const MAX_SCRIPTS: usize = 32;
/// Compiled scripts kept in memory at most, and their size in all.
const CACHED: usize = 64;
const CACHED_BYTES: usize = 4 * 1024 * 1024;

/// A script's name as ManageSieve takes it: printable, no `/`, not
/// starting with a dot, at most 128 octets.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && !name.contains('/')
        && !name.chars().any(char::is_control)
}

fn path_of(root: &Path, name: &str) -> PathBuf {
    root.join(DIR).join(format!("{name}.sieve"))
}

/// The active script's name, if one is.
pub fn active(root: &Path) -> Option<String> {
    let name = linked(root)?;
    path_of(root, &name).is_file().then_some(name)
}

/// The name the active link names, whether or not its file is there.
fn linked(root: &Path) -> Option<String> {
    let target = fs::read_link(root.join(ACTIVE)).ok()?;
    let file = target.file_name()?.to_str()?;
    file.strip_suffix(".sieve").map(str::to_string)
}

/// The active script's file, if a link names one (delivery finds out
/// whether it is there when it reads it: one system call the less).
pub fn active_path(root: &Path) -> Option<PathBuf> {
    linked(root).map(|n| path_of(root, &n))
}

/// Every script's name, sorted, and which is active.
pub fn list(root: &Path) -> io::Result<Vec<(String, bool)>> {
    let active = active(root);
    let mut out = Vec::new();
    let entries = match fs::read_dir(root.join(DIR)) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for e in entries {
        let name = e?.file_name();
        let Some(name) = name.to_str().and_then(|n| n.strip_suffix(".sieve"))
        else {
            continue;
        };
        if valid_name(name) {
            out.push((name.to_string(), active.as_deref() == Some(name)));
        }
    }
    out.sort();
    Ok(out)
}

pub fn get(root: &Path, name: &str) -> io::Result<String> {
    fs::read_to_string(path_of(root, name))
}

/// Stores a script (checked by the caller), durably.
pub fn put(root: &Path, name: &str, text: &str) -> io::Result<()> {
    crate::util::fs::create_dir_durable(&root.join(DIR))?;
    crate::util::fs::atomic_write(&path_of(root, name), text.as_bytes())
}

pub fn delete(root: &Path, name: &str) -> io::Result<()> {
    fs::remove_file(path_of(root, name))?;
    crate::util::fs::sync_dir(&root.join(DIR))
}

/// Renames a script; the active link follows it.
pub fn rename(root: &Path, from: &str, to: &str) -> io::Result<()> {
    let was_active = active(root).as_deref() == Some(from);
    if path_of(root, to).exists() {
        return Err(io::Error::new(io::ErrorKind::AlreadyExists, "exists"));
    }
    fs::rename(path_of(root, from), path_of(root, to))?;
    crate::util::fs::sync_dir(&root.join(DIR))?;
    match was_active {
        true => set_active(root, Some(to)),
        false => Ok(()),
    }
}

/// Makes `name` the active script, or none: the link is replaced by a
/// rename, so delivery sees the old script or the new, never neither.
pub fn set_active(root: &Path, name: Option<&str>) -> io::Result<()> {
    let link = root.join(ACTIVE);
    match name {
        None => match fs::remove_file(&link) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => crate::util::fs::sync_dir(root),
        },
        Some(n) => {
            let tmp = root.join(format!("{ACTIVE}.tmp"));
            let _ = fs::remove_file(&tmp);
            std::os::unix::fs::symlink(
                Path::new(DIR).join(format!("{n}.sieve")),
                &tmp,
            )?;
            fs::rename(&tmp, &link)?;
            crate::util::fs::sync_dir(root)
        }
    }
}

/// A file's identity: a change to it is a new script.
type Stamp = (u64, u64, i64, i64, u64);

fn stamp(m: &fs::Metadata) -> Stamp {
    (m.dev(), m.ino(), m.mtime(), m.mtime_nsec(), m.size())
}

type Cache = Vec<(PathBuf, Stamp, Arc<Script>)>;
static CACHE: Mutex<Cache> = Mutex::new(Vec::new());

/// The compiled script at `path`: from the cache while the file is the
/// same, else read and compiled. Errors say why it cannot run.
pub fn compiled(path: &Path) -> Result<Arc<Script>, String> {
    let meta =
        fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.len() > MAX_SIZE {
        return Err(format!(
            "{}: larger than {MAX_SIZE} octets",
            path.display()
        ));
    }
    let id = stamp(&meta);
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(i) = cache.iter().position(|(p, s, _)| p == path && *s == id) {
        let hit = cache.remove(i);
        let script = Arc::clone(&hit.2);
        cache.push(hit); // most recently used last
        return Ok(script);
    }
    let text = fs::read_to_string(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let script = compile::compile(&text).map_err(|e| {
        format!("{}: line {}: {}", path.display(), e.line, e.what)
    })?;
    let script = Arc::new(script);
    cache.retain(|(p, _, _)| p != path);
    cache.push((path.to_path_buf(), id, Arc::clone(&script)));
    while cache.len() > CACHED
        || cache.iter().map(|(_, _, s)| s.size).sum::<usize>() > CACHED_BYTES
    {
        cache.remove(0);
    }
    Ok(script)
}
