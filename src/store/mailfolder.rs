//! One Maildir folder as IMAP sees it: scanning it into a
//! [`Folder`] (UIDs from `dovecot-uidlist`, flags from the file names,
//! keywords from `dovecot-keywords`) without reading any message, and
//! the changes IMAP makes: flags (renames), expunges (unlinks), APPEND
//! and COPY (new files, new UIDs), and reading messages for FETCH.
//!
//! Runs on helper threads.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::config::MailboxFormat;
use std::time::{Duration, SystemTime};

use super::{index, maildir, uidlist};
use crate::proto::imap::folder::{Flags, Folder, MAX_KEYWORDS, Msg};
use crate::util::fs::sync_dir;
use crate::util::id;

const KEYWORDS: &str = "dovecot-keywords";

/// When `new/` and `cur/` last changed: a folder whose stamp is the same
/// has not changed since (no file added, removed or renamed).
pub type Stamp = (SystemTime, SystemTime);

/// The folder's stamp now.
pub fn stamp(dir: &Path) -> io::Result<Stamp> {
    let m = |sub: &str| fs::metadata(dir.join(sub)).and_then(|m| m.modified());
    Ok((m("new")?, m("cur")?))
}

/// Scans the folder in `dir`: every message with its UID and flags.
/// New files get UIDs (written to the list before anyone hears of
/// them); files gone lose theirs.
pub fn scan(dir: &Path) -> io::Result<Folder> {
    scan_full(dir).map(|(f, _)| f)
}

/// [`scan`], and whether Dovecot wrote the UID list (a Maildir moved
/// from Dovecot: POP3 keeps Dovecot's UIDLs).
pub fn scan_full(dir: &Path) -> io::Result<(Folder, bool)> {
    maildir::create(dir)?;
    let mut files: Vec<(String, String)> = Vec::new(); // (base, sub/name)
    // new/ before cur/: mail only ever moves from new/ to cur/, so a file
    // moving while we list is seen at least once (maybe twice: the cur/
    // name wins below), never missed.
    for sub in ["new", "cur"] {
        for entry in fs::read_dir(dir.join(sub))? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with('.') {
                continue;
            }
            let base = name.split(':').next().unwrap_or(name).to_string();
            files.push((base, format!("{sub}/{name}")));
        }
    }
    let _lock = uidlist::lock(dir)?;
    // A folder's UIDVALIDITY is fixed the first time it is looked at.
    let listed = dir.join(uidlist::FILE).exists();
    let mut list = uidlist::read(dir)?;
    let mut on_disk: HashMap<&str, &str> = HashMap::with_capacity(files.len());
    for (base, path) in &files {
        on_disk.insert(base.as_str(), path.as_str());
    }
    // Seen twice while moving: only its cur/ name (the last one) counts.
    let files: Vec<(&str, &str)> = files
        .iter()
        .filter(|(b, p)| on_disk.get(b.as_str()) == Some(&p.as_str()))
        .map(|(b, p)| (b.as_str(), p.as_str()))
        .collect();
    let mut msgs = Vec::with_capacity(files.len());
    let mut known: HashMap<&str, ()> =
        HashMap::with_capacity(list.entries.len());
    let before = list.entries.len();
    for (uid, base) in &list.entries {
        if let Some(path) = on_disk.get(base.as_str()) {
            known.insert(base.as_str(), ());
            msgs.push(msg(*uid, path));
        }
    }
    let mut fresh: Vec<(&str, &str)> = files
        .iter()
        .filter(|(b, _)| !known.contains_key(b))
        .copied()
        .collect();
    // Maildir names begin with the delivery time: arrival order.
    fresh.sort_by_cached_key(|&(base, path)| {
        (id::maildir_time(base), base, path)
    });
    let kept = msgs.len();
    let mut added = Vec::new();
    for (base, path) in fresh {
        let uid = list.next;
        list.next += 1;
        msgs.push(msg(uid, path));
        added.push((uid, base.to_string()));
    }
    if !added.is_empty() || kept != before || !listed {
        list.entries
            .retain(|(_, b)| on_disk.contains_key(b.as_str()));
        list.entries.extend(added);
        uidlist::write(dir, &list)?;
    }
    msgs.sort_unstable_by_key(|m| m.uid);
    // Maildir's new/ holds what no reader has seen: \Recent.
    let recent_from = msgs
        .iter()
        .find(|m| m.file.starts_with("new/"))
        .map_or(list.next, |m| m.uid);
    let highest_modseq = apply_index(dir, list.validity, &mut msgs);
    let folder = Folder {
        uidvalidity: list.validity,
        uidnext: list.next,
        highest_modseq,
        msgs,
        keywords: scan_keywords(dir),
        expunged: Vec::new(),
        recent_from,
    };
    Ok((folder, list.from_dovecot()))
}

/// The size a message has as sent: `W=` from its name, the index's
/// record, or counted from the file.
pub fn known_size(
    dir: &Path,
    file: &str,
    index: Option<&index::Index>,
    uid: u32,
) -> io::Result<u64> {
    let name = file.rsplit('/').next().unwrap_or(file);
    let base = name.split(':').next().unwrap_or(name);
    if let Some(w) = base
        .split(',')
        .find_map(|f| f.strip_prefix("W=")?.parse().ok())
    {
        return Ok(w);
    }
    if let Some(e) = index.and_then(|i| i.get(uid)).filter(|e| e.size > 0) {
        return Ok(e.size);
    }
    counted_size(&dir.join(file))
}

/// A file's size with CRLF line ends, read a piece at a time.
fn counted_size(path: &Path) -> io::Result<u64> {
    let mut f = File::open(path)?;
    let mut buf = vec![0; 64 * 1024];
    let (mut size, mut prev) = (0u64, 0u8);
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(size);
        }
        size += n as u64;
        for i in memchr::memchr_iter(b'\n', &buf[..n]) {
            let before = if i == 0 { prev } else { buf[i - 1] };
            if before != b'\r' {
                size += 1;
            }
        }
        prev = buf[n - 1];
    }
}

/// MODSEQs from the index for messages whose flags are as it last saw
/// them; a fresh, higher MODSEQ for the rest (new, or changed while we
/// were not looking). Rewrites the index when anything was new.
fn apply_index(dir: &Path, validity: u32, msgs: &mut [Msg]) -> u64 {
    let old = index::read(dir).filter(|i| i.uidvalidity == validity);
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(1);
    // HIGHESTMODSEQ moves only when a message or an expunge is new
    // (RFC 7162 3.1.2.1), so a webmail's "nothing changed" holds across
    // sessions and restarts.
    let known = old.as_ref().map_or(0, |i| i.highest_modseq);
    let fresh = known.saturating_add(1).max(index::fresh_modseq(now));
    let mut changed = old.is_none();
    let mut kept = 0;
    for m in msgs.iter_mut() {
        match old.as_ref().and_then(|i| i.get(m.uid)) {
            Some(e) if e.flags == m.flags.0 => {
                m.modseq = e.modseq;
                kept += 1;
            }
            found => {
                kept += usize::from(found.is_some());
                m.modseq = fresh;
                changed = true;
            }
        }
    }
    // Messages the index had that are gone: expunged meanwhile.
    changed |= old.as_ref().is_some_and(|i| i.entries.len() > kept);
    let highest = if changed { fresh } else { known };
    if changed {
        save_index(
            dir,
            validity,
            highest,
            msgs.iter().map(|m| (m.uid, m.flags, m.modseq)),
        );
    }
    highest
}

/// Writes the index for these messages, keeping the sizes it knew.
pub fn save_index(
    dir: &Path,
    validity: u32,
    highest_modseq: u64,
    msgs: impl Iterator<Item = (u32, Flags, u64)>,
) {
    let old = index::read(dir).filter(|i| i.uidvalidity == validity);
    let entries = msgs
        .map(|(uid, flags, modseq)| index::Entry {
            uid,
            flags: flags.0,
            modseq,
            size: old.as_ref().and_then(|i| i.get(uid)).map_or(0, |e| e.size),
        })
        .collect();
    let new = index::Index {
        uidvalidity: validity,
        highest_modseq,
        entries,
    };
    if let Err(e) = index::write(dir, &new) {
        log::warn!("{}: writing {}: {e}", dir.display(), index::FILE);
    }
}

fn msg(uid: u32, path: &str) -> Msg {
    let flags = path
        .split_once(":2,")
        .map_or(Flags(0), |(_, info)| Flags::from_maildir(info));
    Msg {
        uid,
        flags,
        modseq: 1,
        file: path.into(),
    }
}

/// `dovecot-keywords`: `N name` lines, N the letter's number.
pub fn scan_keywords(dir: &Path) -> Vec<String> {
    let text = fs::read_to_string(dir.join(KEYWORDS)).unwrap_or_default();
    let mut keywords: Vec<String> = Vec::new();
    for l in text.lines() {
        let Some((n, name)) = l.split_once(' ') else {
            continue;
        };
        let Ok(n) = n.parse::<usize>() else { continue };
        if n >= MAX_KEYWORDS || name.is_empty() {
            continue;
        }
        if keywords.len() <= n {
            keywords.resize(n + 1, String::new());
        }
        keywords[n] = name.to_string();
    }
    keywords
}

/// Writes the keyword table if it is not what is on disk.
pub fn write_keywords(dir: &Path, keywords: &[String]) -> io::Result<()> {
    if scan_keywords(dir) == keywords {
        return Ok(());
    }
    let text: String = keywords
        .iter()
        .enumerate()
        .filter(|(_, k)| !k.is_empty())
        .map(|(i, k)| format!("{i} {k}\n"))
        .collect();
    crate::util::fs::atomic_write(&dir.join(KEYWORDS), text.as_bytes())
}

/// The flag bits of `names` in the folder at `dir`, keywords it lacks
/// given letters (and the table written).
pub fn flags_for(dir: &Path, names: &[String]) -> Flags {
    let mut f = crate::proto::imap::folder::Folder {
        keywords: scan_keywords(dir),
        ..Folder::default()
    };
    let mut bits = Flags(0);
    for n in names {
        if let Some(b) = f.flag_bit(n.as_bytes(), true) {
            bits.0 |= b.0;
        }
    }
    let _ = write_keywords(dir, &f.keywords);
    bits
}

/// The name a file gets with these flags, in `cur/`.
fn renamed(file: &str, flags: Flags) -> String {
    let name = file.rsplit('/').next().unwrap_or(file);
    let base = name.split(':').next().unwrap_or(name);
    format!("cur/{base}:2,{}", flags.to_maildir())
}

/// Sets flags by renaming: returns each message's new file (None if the
/// file is gone: someone expunged it).
pub fn set_flags(
    dir: &Path,
    changes: &[(String, Flags)],
) -> io::Result<Vec<Option<String>>> {
    let mut done = Vec::with_capacity(changes.len());
    for (file, flags) in changes {
        let new = renamed(file, *flags);
        if *file == new {
            done.push(Some(new));
            continue;
        }
        match fs::rename(dir.join(file), dir.join(&new)) {
            Ok(()) => done.push(Some(new)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // Renamed by another program: find it by its base name.
                done.push(find_and_rename(dir, file, &new)?);
            }
            Err(e) => return Err(e),
        }
    }
    sync_dir(&dir.join("cur"))?;
    Ok(done)
}

fn find_and_rename(
    dir: &Path,
    file: &str,
    new: &str,
) -> io::Result<Option<String>> {
    let name = file.rsplit('/').next().unwrap_or(file);
    let base = name.split(':').next().unwrap_or(name);
    for sub in ["cur", "new"] {
        for entry in fs::read_dir(dir.join(sub))?.flatten() {
            let n = entry.file_name();
            let n = n.to_string_lossy();
            if n.split(':').next() == Some(base) {
                fs::rename(entry.path(), dir.join(new))?;
                return Ok(Some(new.to_string()));
            }
        }
    }
    Ok(None)
}

/// Finds a message by its base name, in `cur/` or `new/` (another
/// program may have renamed it since it was listed).
pub fn find(dir: &Path, file: &str) -> io::Result<Option<std::path::PathBuf>> {
    let name = file.rsplit('/').next().unwrap_or(file);
    let base = name.split(':').next().unwrap_or(name);
    for sub in ["cur", "new"] {
        for entry in fs::read_dir(dir.join(sub))?.flatten() {
            if entry.file_name().to_string_lossy().split(':').next()
                == Some(base)
            {
                return Ok(Some(entry.path()));
            }
        }
    }
    Ok(None)
}

/// The path of a message listed as `file`, wherever it is now.
pub fn locate(dir: &Path, file: &str) -> io::Result<std::path::PathBuf> {
    let path = dir.join(file);
    if path.exists() {
        return Ok(path);
    }
    find(dir, file)?
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "message gone"))
}

/// Opens a message, wherever it is now: a helper moving it from `new/`
/// to `cur/` (or a flag change renaming it) between finding its name
/// and opening it is met by looking again. The open file stays the
/// message whatever is renamed after.
pub fn open(
    dir: &Path,
    file: &str,
) -> io::Result<(std::path::PathBuf, fs::File)> {
    let mut tries = 0;
    loop {
        let path = locate(dir, file)?;
        match fs::File::open(&path) {
            Ok(f) => return Ok((path, f)),
            Err(e) if e.kind() == io::ErrorKind::NotFound && tries < 3 => {
                tries += 1
            }
            Err(e) => return Err(e),
        }
    }
}

/// Moves messages a session has seen from `new/` to `cur/`, flags
/// unchanged: they are no longer \Recent for anyone. A file another
/// program moved meanwhile stays where it is now, flags and all.
pub fn settle(
    dir: &Path,
    msgs: &[(String, Flags)],
) -> io::Result<Vec<Option<String>>> {
    let mut done = Vec::with_capacity(msgs.len());
    for (file, flags) in msgs {
        let new = renamed(file, *flags);
        match fs::rename(dir.join(file), dir.join(&new)) {
            Ok(()) => done.push(Some(new)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let now = find(dir, file)?.and_then(|p| {
                    Some(
                        p.strip_prefix(dir)
                            .ok()?
                            .to_string_lossy()
                            .into_owned(),
                    )
                });
                done.push(now);
            }
            Err(e) => return Err(e),
        }
    }
    sync_dir(&dir.join("cur"))?;
    Ok(done)
}

/// Removes messages; a file already gone is not an error.
pub fn expunge(dir: &Path, files: &[String]) -> io::Result<()> {
    let (mut bytes, mut count) = (0i64, 0i64);
    let result = remove_files(dir, files, &mut bytes, &mut count);
    if count > 0 {
        let root = super::quota::root_of(dir, MailboxFormat::Maildir);
        super::quota::add(&root, -bytes, -count);
    }
    result
}

/// [`expunge`]'s removals, counting what left (the `S=` sizes).
fn remove_files(
    dir: &Path,
    files: &[String],
    bytes: &mut i64,
    count: &mut i64,
) -> io::Result<()> {
    for file in files {
        let name = file.rsplit('/').next().unwrap_or(file);
        let size = super::quota::size_in_name(name).unwrap_or(0) as i64;
        match fs::remove_file(dir.join(file)) {
            Ok(()) => {
                *bytes += size;
                *count += 1;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let name = file.rsplit('/').next().unwrap_or(file);
                let base = name.split(':').next().unwrap_or(name);
                for sub in ["cur", "new"] {
                    for entry in fs::read_dir(dir.join(sub))?.flatten() {
                        if entry
                            .file_name()
                            .to_string_lossy()
                            .split(':')
                            .next()
                            == Some(base)
                        {
                            fs::remove_file(entry.path())?;
                            *bytes += size;
                            *count += 1;
                        }
                    }
                }
            }
            Err(e) => return Err(e),
        }
    }
    sync_dir(&dir.join("cur"))?;
    sync_dir(&dir.join("new"))
}

/// Adds messages to the folder: each source (a file to hard-link or
/// copy, or octets) becomes `cur/NAME:2,FLAGS`, durable, with a UID in
/// the list before this returns. Returns the UIDVALIDITY and, for each,
/// its UID and file.
pub fn add(
    dir: &Path,
    sources: &[(Source<'_>, Flags, Option<SystemTime>)],
) -> io::Result<(u32, Vec<(u32, String)>)> {
    maildir::create(dir)?;
    let host = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    let mut placed = Vec::with_capacity(sources.len());
    let mut added = 0u64;
    for (source, flags, date) in sources {
        let (len, lines) = source.measure()?;
        added += len;
        let base =
            format!("{},S={len},W={}", id::maildir_name(&host), len + lines);
        let tmp = dir.join("tmp").join(&base);
        source.write_to(&tmp)?;
        if let Some(t) = date {
            let f = File::options().write(true).open(&tmp)?;
            f.set_modified(*t)?;
        }
        // Without flags a message is new (\Recent for the next reader),
        // as Dovecot and mutt file it.
        let name = if flags.0 == 0 {
            format!("new/{base}")
        } else {
            format!("cur/{base}:2,{}", flags.to_maildir())
        };
        placed.push((base, tmp, name));
    }
    for (_, tmp, name) in &placed {
        fs::rename(tmp, dir.join(name))?;
    }
    sync_dir(&dir.join("cur"))?;
    sync_dir(&dir.join("new"))?;
    let root = super::quota::root_of(dir, MailboxFormat::Maildir);
    super::quota::add(&root, added as i64, placed.len() as i64);
    let _lock = uidlist::lock(dir)?;
    let mut list = uidlist::read(dir)?;
    let mut uids = Vec::with_capacity(placed.len());
    for (base, _, name) in placed {
        uids.push((list.next, name));
        list.entries.push((list.next, base));
        list.next += 1;
    }
    uidlist::write(dir, &list)?;
    Ok((list.validity, uids))
}

/// Where a message being added comes from.
#[derive(Debug)]
pub enum Source<'a> {
    /// Octets in memory (LF line ends).
    Bytes(&'a [u8]),
    /// A file (another folder's message, or a spool file).
    File(&'a Path),
}

impl Source<'_> {
    /// Octets and line ends.
    fn measure(&self) -> io::Result<(u64, u64)> {
        let count = |b: &[u8]| memchr::memchr_iter(b'\n', b).count() as u64;
        match self {
            Source::Bytes(b) => Ok((b.len() as u64, count(b))),
            Source::File(p) => {
                let mut f = File::open(p)?;
                let mut buf = vec![0; 64 * 1024];
                let (mut len, mut lines) = (0, 0);
                loop {
                    let n = f.read(&mut buf)?;
                    if n == 0 {
                        return Ok((len, lines));
                    }
                    len += n as u64;
                    lines += count(&buf[..n]);
                }
            }
        }
    }

    /// Writes (or links) to `tmp`, fsync'd.
    fn write_to(&self, tmp: &Path) -> io::Result<()> {
        if let Source::File(p) = self
            && fs::hard_link(p, tmp).is_ok()
        {
            return Ok(());
        }
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(tmp)?;
        match self {
            Source::Bytes(b) => f.write_all(b)?,
            Source::File(p) => {
                io::copy(&mut File::open(p)?, &mut f)?;
            }
        }
        f.sync_all()
    }
}

/// A message's arrival time (its file's mtime, as Dovecot uses).
pub fn internal_date(dir: &Path, file: &str) -> io::Result<SystemTime> {
    fs::metadata(locate(dir, file)?)?.modified()
}

/// Length of `data` with every bare LF made CRLF.
pub fn crlf_len(data: &[u8]) -> u64 {
    let mut n = data.len() as u64;
    for i in memchr::memchr_iter(b'\n', data) {
        if i == 0 || data[i - 1] != b'\r' {
            n += 1;
        }
    }
    n
}

/// `data` with every bare LF made CRLF.
pub fn to_crlf(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(crlf_len(data) as usize);
    let mut start = 0;
    for i in memchr::memchr_iter(b'\n', data) {
        if i == 0 || data[i - 1] != b'\r' {
            out.extend_from_slice(&data[start..i]);
            out.extend_from_slice(b"\r\n");
            start = i + 1;
        }
    }
    out.extend_from_slice(&data[start..]);
    out
}

/// A large message's header (as sent), where its body starts in the
/// file, and its size as sent: read without holding the message.
#[derive(Debug)]
pub struct LargeMessage {
    /// The header with CRLF line ends, blank line included.
    pub head: Vec<u8>,
    /// The header's length in the file.
    pub head_stored: u64,
    /// The whole message's length with CRLF line ends.
    pub size: u64,
}

/// Reads a large message's header and counts its lines; None if the
/// header does not end within 1 MiB (then it is read whole).
pub fn large(path: &Path) -> io::Result<Option<LargeMessage>> {
    let mut f = File::open(path)?;
    let mut buf = vec![0; 64 * 1024];
    let mut head: Vec<u8> = Vec::new();
    let mut head_stored = None;
    let (mut size, mut prev) = (0u64, 0u8);
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        if head_stored.is_none() {
            head.extend_from_slice(chunk);
            let end =
                memchr::memmem::find(&head, b"\n\n").map(|i| i + 2).or_else(
                    || memchr::memmem::find(&head, b"\r\n\r\n").map(|i| i + 4),
                );
            match end {
                Some(e) => {
                    head.truncate(e);
                    head_stored = Some(e as u64);
                }
                None if head.len() > 1 << 20 => return Ok(None),
                None => {}
            }
        }
        size += n as u64;
        for i in memchr::memchr_iter(b'\n', chunk) {
            let before = if i == 0 { prev } else { chunk[i - 1] };
            if before != b'\r' {
                size += 1;
            }
        }
        prev = chunk[n - 1];
    }
    let Some(head_stored) = head_stored else {
        return Ok(None);
    };
    Ok(Some(LargeMessage {
        head: to_crlf(&head),
        head_stored,
        size,
    }))
}

/// `data` with CRLF made LF (the form messages are stored in).
pub fn to_lf(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        if data[i] == b'\r' && data.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(data[i]);
        i += 1;
    }
    out
}

/// Seconds east of UTC are not kept; dates are shown in UTC.
pub fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// The time `secs` after the epoch.
pub fn from_unix(secs: i64) -> SystemTime {
    if secs >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs as u64)
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_from_names() {
        let dir = Path::new("/nonexistent");
        assert_eq!(
            known_size(dir, "cur/1.M2P3.h,S=10,W=12:2,S", None, 1).unwrap(),
            12
        );
        assert!(known_size(dir, "cur/1.M2P3.h", None, 1).is_err());
    }

    #[test]
    fn crlf() {
        assert_eq!(to_crlf(b"a\nb\r\nc\n"), b"a\r\nb\r\nc\r\n");
        assert_eq!(crlf_len(b"a\nb\r\nc\n"), 9);
        assert_eq!(renamed("new/123.x,S=5", Flags::SEEN), "cur/123.x,S=5:2,S");
        assert_eq!(renamed("cur/123.x:2,S", Flags(0)), "cur/123.x:2,");
    }
}
