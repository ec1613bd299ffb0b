//! A POP3 maildrop: the snapshot of a mailbox taken at login (UIDLs,
//! sizes, where each message's octets are), and the UPDATE that applies
//! a session's deletions and seen marks, all or nothing as far as the
//! file system allows.
//!
//! Runs on helper threads (scanning an mbox reads the whole file).

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::{lock, mailfolder, mbox::INBOX, transient};
use crate::config::MailboxFormat;
use crate::proto::Failure;
use crate::proto::pop3::Listings;
use crate::proto::pop3::transfer::wire_size;
use crate::util::fs::sync_dir;
use crate::util::id;

/// The snapshot: per message a 16-octet entry plus its name in one
/// shared string (no allocation per message), about 80 octets a message
/// for Maildir names, so a 100,000-message mailbox costs 8 MB while its
/// session lasts and nothing after.
#[derive(Debug)]
pub struct Snapshot {
    /// How the mailbox is stored.
    pub format: MailboxFormat,
    /// The mailbox folder.
    pub dir: PathBuf,
    /// Maildir: every file name, one after another; mbox: every UIDL.
    names: String,
    entries: Vec<Entry>,
    /// mbox: where each message is, by the same index.
    ranges: Vec<Range>,
    /// The mbox length scanned; mail appended later is kept at UPDATE.
    pub mbox_len: u64,
}

/// One message: where its name and its UIDL are in `names` (the UIDL
/// is the start of the name, the Maildir base name before the `:2,`
/// flags, unless it had to be made unique), and its size as the client
/// sees it. Whether the file is in `cur/` or `new/` is the octet before
/// the name (`c` or `n`).
#[derive(Debug, Clone, Copy)]
struct Entry {
    size: u64,
    start: u32,
    uid_start: u32,
    name_len: u16,
    uid_len: u16,
}

/// Part of the mbox: the message (`body`, without its `From ` line and
/// separator) and its whole block (`block`, both included).
#[derive(Debug, Clone, Copy)]
struct Range {
    body: (u64, u64),
    block: (u64, u64),
}

impl Snapshot {
    fn new(format: MailboxFormat, dir: &Path) -> Snapshot {
        Snapshot {
            format,
            dir: dir.to_path_buf(),
            names: String::new(),
            entries: Vec::new(),
            ranges: Vec::new(),
            mbox_len: 0,
        }
    }

    /// Messages in the snapshot.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True for an empty maildrop.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn name(&self, i: usize) -> &str {
        let e = self.entries[i];
        let start = e.start as usize;
        &self.names[start..start + usize::from(e.name_len)]
    }

    /// Message `i`'s UIDL.
    pub fn uid(&self, i: usize) -> &str {
        let e = self.entries[i];
        let start = e.uid_start as usize;
        &self.names[start..start + usize::from(e.uid_len)]
    }

    /// Message `i`'s size as sent (CRLF line ends, before stuffing).
    pub fn size(&self, i: usize) -> u64 {
        self.entries[i].size
    }

    fn in_cur(&self, i: usize) -> bool {
        let start = self.entries[i].start as usize;
        self.names.as_bytes()[start - 1] == b'c'
    }

    /// Maildir: message `i`'s file.
    fn path(&self, i: usize) -> PathBuf {
        let sub = if self.in_cur(i) { "cur" } else { "new" };
        self.dir.join(sub).join(self.name(i))
    }

    fn push(
        &mut self,
        name: &str,
        uid_len: usize,
        cur: bool,
        size: u64,
    ) -> Result<(), Failure> {
        let too_big = || Failure::Transient("maildrop too large".into());
        self.names.push(if cur { 'c' } else { 'n' });
        let start = u32::try_from(self.names.len()).map_err(|_| too_big())?;
        self.names.push_str(name);
        let name_len = u16::try_from(name.len()).map_err(|_| too_big())?;
        let uid_len = u16::try_from(uid_len).map_err(|_| too_big())?;
        self.entries.push(Entry {
            size,
            start,
            uid_start: start,
            name_len,
            uid_len,
        });
        Ok(())
    }

    /// Like `push`, with a UIDL of its own rather than the name's start.
    fn push_with_uidl(
        &mut self,
        name: &str,
        uidl: &str,
        cur: bool,
        size: u64,
    ) -> Result<(), Failure> {
        self.push(name, 0, cur, size)?;
        let too_big = || Failure::Transient("maildrop too large".into());
        let uid_start =
            u32::try_from(self.names.len()).map_err(|_| too_big())?;
        self.names.push_str(uidl);
        let e = self.entries.last_mut().ok_or_else(too_big)?;
        e.uid_start = uid_start;
        e.uid_len = u16::try_from(uidl.len()).map_err(|_| too_big())?;
        Ok(())
    }

    /// Sorts the messages by name: Maildir names start with the
    /// delivery time, so name order is arrival order.
    fn sort_by_name(&mut self) {
        let names = &self.names;
        let name = |e: &Entry| {
            let start = e.start as usize;
            &names[start..start + usize::from(e.name_len)]
        };
        // Times parsed once per entry, not once per comparison.
        let mut keyed: Vec<((u64, u64), Entry)> = self
            .entries
            .iter()
            .map(|e| (id::maildir_time(name(e)), *e))
            .collect();
        keyed.sort_unstable_by(|(ka, a), (kb, b)| {
            ka.cmp(kb).then_with(|| name(a).cmp(name(b)))
        });
        self.entries = keyed.into_iter().map(|(_, e)| e).collect();
    }

    /// Gives back memory over-allocated while scanning.
    fn shrink(&mut self) {
        self.names.shrink_to_fit();
        self.entries.shrink_to_fit();
        self.ranges.shrink_to_fit();
    }
}

impl Listings for Snapshot {
    fn count(&self) -> usize {
        self.len()
    }

    fn size(&self, i: usize) -> u64 {
        Snapshot::size(self, i)
    }

    fn uid(&self, i: usize) -> &str {
        Snapshot::uid(self, i)
    }
}

/// Takes the snapshot of the mailbox in `dir`.
pub fn open(format: MailboxFormat, dir: &Path) -> Result<Snapshot, Failure> {
    let mut snap = Snapshot::new(format, dir);
    match format {
        MailboxFormat::Maildir => scan_maildir(&mut snap)?,
        MailboxFormat::Mbox => scan_mbox(&mut snap)?,
    }
    dedupe_uids(&mut snap)?;
    snap.shrink();
    Ok(snap)
}

/// The Maildir's messages. A Maildir Dovecot kept (its
/// `dovecot-uidlist` has Dovecot's GUID) is read through the UID list,
/// UIDLs in Dovecot's default `%08Xu%08Xv` (Dovecot writes it in lower
/// case), so clients moved over download nothing again; any other gets
/// the file's base name as UIDL and costs one directory listing.
fn scan_maildir(snap: &mut Snapshot) -> Result<(), Failure> {
    if super::uidlist::written_by_dovecot(&snap.dir) {
        return scan_with_uids(snap);
    }
    // new/ before cur/: mail only moves from new/ to cur/ (an IMAP
    // session, mutt), so one moving while we list is seen once or twice,
    // never missed; `dedupe_uids` keeps only its cur/ name.
    for (sub, cur) in [("new", false), ("cur", true)] {
        let dir = snap.dir.join(sub);
        // rustix's Dir lends each name without an allocation: on a
        // 100,000-message Maildir that is most of a login's time.
        let fd = match rustix::fs::open(
            &dir,
            rustix::fs::OFlags::RDONLY
                | rustix::fs::OFlags::DIRECTORY
                | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => continue,
            Err(e) => return Err(transient("listing", &dir, e.into())),
        };
        let entries = rustix::fs::Dir::read_from(&fd)
            .map_err(|e| transient("listing", &dir, e.into()))?;
        for entry in entries {
            let entry =
                entry.map_err(|e| transient("listing", &dir, e.into()))?;
            let name = entry.file_name().to_string_lossy();
            if name.starts_with('.') {
                continue;
            }
            let base = name.split(':').next().unwrap_or(&name);
            let size = match wire_size_from_name(base) {
                Some(w) => w,
                None => file_wire_size(&dir.join(&*name))?,
            };
            snap.push(&name, base.len(), cur, size)?;
        }
    }
    snap.sort_by_name();
    Ok(())
}

fn scan_with_uids(snap: &mut Snapshot) -> Result<(), Failure> {
    let (folder, _) = mailfolder::scan_full(&snap.dir)
        .map_err(|e| transient("listing", &snap.dir, e))?;
    let index = super::index::read(&snap.dir);
    for m in &folder.msgs {
        let (sub, name) = m.file.split_once('/').unwrap_or(("cur", &m.file));
        let size =
            mailfolder::known_size(&snap.dir, &m.file, index.as_ref(), m.uid)
                .map_err(|e| transient("reading", &snap.dir, e))?;
        let uidl = format!("{:08x}{:08x}", m.uid, folder.uidvalidity);
        snap.push_with_uidl(name, &uidl, sub == "cur", size)?;
    }
    Ok(())
}

/// The size with CRLF line ends of a file without Dovecot's `W=`,
/// read in pieces (a file someone else delivered may be large).
fn file_wire_size(path: &Path) -> Result<u64, Failure> {
    let mut reader = BufReader::new(
        File::open(path).map_err(|e| transient("reading", path, e))?,
    );
    let mut size = 0;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| transient("reading", path, e))?;
        if n == 0 {
            return Ok(size);
        }
        size += wire_size(&line, false);
    }
}

/// Dovecot's `,W=` field: the size with CRLF line ends.
fn wire_size_from_name(base: &str) -> Option<u64> {
    base.split(',')
        .find_map(|f| f.strip_prefix("W=")?.parse().ok())
}

fn scan_mbox(snap: &mut Snapshot) -> Result<(), Failure> {
    let path = snap.dir.join(INBOX);
    if !path.exists() {
        return Ok(());
    }
    // Under the delivery lock: a half-appended message must not become
    // part of the snapshot (and then be cut in two at UPDATE).
    let locked =
        lock::lock(&path).map_err(|e| transient("locking", &path, e))?;
    let mut reader = BufReader::new(&locked.file);
    let pos = super::mbox::walk(
        &mut reader,
        0,
        MboxScan::new,
        |m, end| m.finish(end, snap),
        |e| transient("reading", &path, e),
    )?;
    snap.mbox_len = pos;
    Ok(())
}

/// One mbox message being scanned.
struct MboxScan {
    block_start: u64,
    body_start: u64,
    size: u64,
    last_blank: bool,
    in_header: bool,
    uid: Option<String>,
    hash: u64,
}

impl MboxScan {
    fn new(block_start: u64, body_start: u64) -> Self {
        MboxScan {
            block_start,
            body_start,
            size: 0,
            last_blank: false,
            in_header: true,
            uid: None,
            hash: 0xcbf2_9ce4_8422_2325,
        }
    }

    fn finish(self, end: u64, snap: &mut Snapshot) -> Result<(), Failure> {
        // The blank line before the next `From ` is the separator.
        let (size, body_end) = if self.last_blank {
            (self.size - 2, end - 1)
        } else {
            (self.size, end)
        };
        let uid = self.uid.unwrap_or_else(|| format!("H{:016x}", self.hash));
        snap.push(&uid, uid.len(), false, size)?;
        snap.ranges.push(Range {
            body: (self.body_start, body_end.saturating_sub(self.body_start)),
            block: (self.block_start, end),
        });
        Ok(())
    }
}

impl super::mbox::Scan for MboxScan {
    fn line(&mut self, line: &[u8]) {
        self.size += wire_size(line, true);
        self.last_blank = line == b"\n";
        if self.in_header {
            if self.last_blank {
                self.in_header = false;
            } else if self.uid.is_none() {
                self.uid = postling_id(line);
            }
        }
        // FNV-1a: the UIDL of a message we did not deliver ourselves.
        for &b in line {
            self.hash =
                (self.hash ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }
}

/// Our queue id from our own Received header's ` id X` line.
pub(crate) fn postling_id(line: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(line).ok()?;
    let after = text.split("(postling) with ").nth(1)?;
    let id = after.split(" id ").nth(1)?;
    let id: String =
        id.chars().take_while(char::is_ascii_alphanumeric).collect();
    (!id.is_empty()).then_some(id)
}

/// RFC 1939 7: UIDLs are unique within the maildrop. Two identical
/// mbox messages hash alike, and a Maildir base name can be in `new/`
/// and `cur/` at once: the later ones get `-2`, `-3` ... (the file names
/// stay as they are).
fn dedupe_uids(snap: &mut Snapshot) -> Result<(), Failure> {
    // Usually every UIDL is unique (Maildir names are): one pass with a
    // set proves it and there is nothing to do.
    let mut seen = std::collections::HashSet::with_capacity_and_hasher(
        snap.len(),
        std::hash::BuildHasherDefault::<Fnv>::default(),
    );
    if (0..snap.len()).all(|i| seen.insert(snap.uid(i))) {
        return Ok(());
    }
    drop(seen);
    if snap.format == MailboxFormat::Maildir {
        // A message seen in new/ and then in cur/ moved while we
        // listed it: it is the cur/ one.
        let in_cur: std::collections::HashSet<String> = (0..snap.len())
            .filter(|&i| snap.in_cur(i))
            .map(|i| snap.uid(i).to_string())
            .collect();
        let keep: Vec<bool> = (0..snap.len())
            .map(|i| snap.in_cur(i) || !in_cur.contains(snap.uid(i)))
            .collect();
        let mut k = keep.iter();
        snap.entries.retain(|_| *k.next().unwrap_or(&true));
    }
    let mut order: Vec<u32> = (0..snap.len() as u32).collect();
    order.sort_by(|&a, &b| {
        snap.uid(a as usize)
            .cmp(snap.uid(b as usize))
            .then(a.cmp(&b))
    });
    // Found first, renamed after: a renamed UIDL must not end its run.
    let mut renames = Vec::new();
    let mut run = 1;
    for w in 0..order.len().saturating_sub(1) {
        let (first, next) = (order[w] as usize, order[w + 1] as usize);
        if snap.uid(first) == snap.uid(next) {
            run += 1;
            renames.push((next, format!("{}-{run}", snap.uid(next))));
        } else {
            run = 1;
        }
    }
    for (i, unique) in renames {
        let start = u32::try_from(snap.names.len())
            .map_err(|_| Failure::Transient("maildrop too large".into()))?;
        snap.names.push_str(&unique);
        let e = &mut snap.entries[i];
        e.uid_start = start;
        e.uid_len = u16::try_from(unique.len())
            .map_err(|_| Failure::Transient("name too long".into()))?;
    }
    Ok(())
}

/// FNV-1a for the UIDL set: SipHash's defence against chosen keys is
/// not needed for file names the server made, and costs a login time.
#[derive(Default)]
struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
        self.0 = h;
    }
}

/// Opens message `index` for reading: the file and how many octets.
pub fn reader(snap: &Snapshot, index: usize) -> std::io::Result<(File, u64)> {
    match snap.format {
        MailboxFormat::Maildir => {
            // An IMAP session or mutt may have moved it from new/ to cur/
            // or set its flags since the snapshot: find it by its name.
            let f = match File::open(snap.path(index)) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let found =
                        super::mailfolder::find(&snap.dir, snap.name(index))?;
                    File::open(found.ok_or(e)?)?
                }
                other => other?,
            };
            let len = f.metadata()?.len();
            Ok((f, len))
        }
        MailboxFormat::Mbox => {
            let (start, len) = snap.ranges[index].body;
            let mut f = File::open(snap.dir.join(INBOX))?;
            f.seek(SeekFrom::Start(start))?;
            Ok((f, len))
        }
    }
}

/// Applies UPDATE: deletes `deleted`, marks `seen` as read.
pub fn update(
    snap: &Snapshot,
    deleted: &[usize],
    seen: &[usize],
) -> Result<(), Failure> {
    match snap.format {
        MailboxFormat::Maildir => update_maildir(snap, deleted, seen),
        MailboxFormat::Mbox if deleted.is_empty() => Ok(()),
        MailboxFormat::Mbox => rewrite_mbox(snap, deleted),
    }
}

fn update_maildir(
    snap: &Snapshot,
    deleted: &[usize],
    seen: &[usize],
) -> Result<(), Failure> {
    let mut gone = (0i64, 0i64);
    let removed = remove_deleted(snap, deleted, &mut gone);
    if gone.1 > 0 {
        super::quota::add(&snap.dir, -gone.0, -gone.1);
    }
    removed?;
    mark_seen(snap, seen)
}

/// Deletes the messages, counting (octets, messages) it removed itself.
fn remove_deleted(
    snap: &Snapshot,
    deleted: &[usize],
    gone: &mut (i64, i64),
) -> Result<(), Failure> {
    for &i in deleted {
        let path = snap.path(i);
        let size =
            super::quota::size_in_name(snap.name(i)).unwrap_or(0) as i64;
        match fs::remove_file(&path) {
            Ok(()) => *gone = (gone.0 + size, gone.1 + 1),
            // Renamed since the snapshot (IMAP, mutt): delete it where it
            // is now; not there at all: gone already, what we wanted.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let moved = super::mailfolder::find(&snap.dir, snap.name(i))
                    .map_err(|e| transient("listing", &snap.dir, e))?;
                if let Some(now) = moved {
                    fs::remove_file(&now)
                        .map_err(|e| transient("deleting", &now, e))?;
                    *gone = (gone.0 + size, gone.1 + 1);
                }
            }
            Err(e) => return Err(transient("deleting", &path, e)),
        }
    }
    Ok(())
}

fn mark_seen(snap: &Snapshot, seen: &[usize]) -> Result<(), Failure> {
    let cur = snap.dir.join("cur");
    for &i in seen {
        let mut path = snap.path(i);
        let mut name = snap.name(i).to_string();
        if !path.exists()
            && let Ok(Some(now)) = super::mailfolder::find(&snap.dir, &name)
        {
            name = now
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or(name);
            path = now;
        }
        let target = cur.join(with_seen_flag(&name));
        if target != path
            && let Err(e) = fs::rename(&path, &target)
        {
            log::warn!("cannot mark {} seen: {e}", path.display());
        }
    }
    for sub in ["cur", "new"] {
        let dir = snap.dir.join(sub);
        if dir.is_dir() {
            sync_dir(&dir).map_err(|e| transient("syncing", &dir, e))?;
        }
    }
    Ok(())
}

/// `name` with the Maildir `S` (seen) flag, flags kept sorted.
fn with_seen_flag(name: &str) -> String {
    let (base, flags) = match name.split_once(":2,") {
        Some((b, f)) => (b, f.to_string()),
        None => (name.split(':').next().unwrap_or(name), String::new()),
    };
    let mut flags: Vec<char> = flags.chars().collect();
    if !flags.contains(&'S') {
        flags.push('S');
    }
    flags.sort_unstable();
    format!("{base}:2,{}", flags.into_iter().collect::<String>())
}

/// Rewrites the mbox without the deleted messages, under the same locks
/// delivery takes: a new file, fsync, rename over, fsync the folder. Mail
/// appended since the snapshot is kept.
fn rewrite_mbox(snap: &Snapshot, deleted: &[usize]) -> Result<(), Failure> {
    let path = snap.dir.join(INBOX);
    let mut locked =
        lock::lock(&path).map_err(|e| transient("locking", &path, e))?;
    let tmp = snap.dir.join(".INBOX.postling-rewrite");
    let result = (|| -> std::io::Result<()> {
        let current_len = locked.file.metadata()?.len();
        if current_len < snap.mbox_len {
            return Err(std::io::Error::other("mbox shrank since login"));
        }
        // The rewritten mailbox keeps the old one's permissions.
        let mode = locked.file.metadata()?.permissions();
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        created.set_permissions(mode)?;
        let mut out = std::io::BufWriter::new(created);
        let mut gone = vec![false; snap.len()];
        deleted.iter().for_each(|&i| gone[i] = true);
        for (range, _) in snap.ranges.iter().zip(gone).filter(|(_, g)| !g) {
            let (start, end) = range.block;
            copy_range(&mut locked.file, start, end, &mut out)?;
        }
        copy_range(&mut locked.file, snap.mbox_len, current_len, &mut out)?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        fs::rename(&tmp, &path)?;
        sync_dir(&snap.dir)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(transient("rewriting", &path, e));
    }
    let freed: u64 = deleted
        .iter()
        .map(|&i| snap.ranges[i].block)
        .map(|(start, end)| end - start)
        .sum();
    let n = deleted.len() as i64;
    super::quota::add(&snap.dir, -(freed as i64), -n);
    Ok(())
}

fn copy_range(
    file: &mut File,
    start: u64,
    end: u64,
    out: &mut impl Write,
) -> std::io::Result<()> {
    file.seek(SeekFrom::Start(start))?;
    let copied =
        std::io::copy(&mut Read::by_ref(file).take(end - start), out)?;
    if copied != end - start {
        return Err(std::io::Error::other("mbox changed while rewriting"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_flags() {
        assert_eq!(
            with_seen_flag("123.M1P2.h,S=5,W=6"),
            "123.M1P2.h,S=5,W=6:2,S"
        );
        assert_eq!(with_seen_flag("x:2,RF"), "x:2,FRS");
        assert_eq!(with_seen_flag("x:2,S"), "x:2,S");
    }

    #[test]
    fn names_and_ids() {
        assert_eq!(
            postling_id(b"\tby mx (postling) with ESMTP id 6C3HQ7CX9J000\n"),
            Some("6C3HQ7CX9J000".into())
        );
        let mut snap = Snapshot::new(MailboxFormat::Mbox, Path::new("/x"));
        for _ in 0..3 {
            snap.push("a", 1, false, 1).unwrap();
            snap.ranges.push(Range {
                body: (0, 0),
                block: (0, 0),
            });
        }
        dedupe_uids(&mut snap).unwrap();
        assert_eq!(
            (snap.uid(0), snap.uid(1), snap.uid(2)),
            ("a", "a-2", "a-3")
        );
    }
}
