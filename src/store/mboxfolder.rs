//! One mbox file as an IMAP folder. UIDs, flags and MODSEQs live in a
//! sidecar file beside it (`.NAME.imap`), not in headers of the mbox:
//! setting a flag then never rewrites the mailbox (no window in which a
//! crash could lose mail, and no rewrite of a large file per click),
//! while mutt and procmail may change the file as they like:
//!
//! - each message is known by its identity: the queue id in our own
//!   Received header, or a hash of the message without the status
//!   headers mail readers rewrite (Status, X-Status, X-Keywords, X-UID,
//!   Content-Length), with `-2`, `-3` for identical copies;
//! - mail appended by procmail has no entry: it gets the next UID;
//! - a message deleted by mutt has no block: its UID is gone for good;
//! - flags mutt wrote into `Status:`/`X-Status:` are compared with those
//!   headers as last seen: a change there wins, with a new MODSEQ.
//!
//! Sidecar, text: `postling-mbox 1 V<uidvalidity> N<next> M<modseq>
//! R<first recent>`, `K <keywords>`, then `<uid> <flags> <modseq>
//! <header flags> <identity>` a line (flags in hex).
//!
//! Runs on helper threads.

use crate::config::MailboxFormat;
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use super::lock;
use super::mbox::{self, Scan as _};
use super::uidlist::UidList;
use crate::proto::imap::folder::{Flags, Folder, MAX_KEYWORDS, Msg};
use crate::util::fs::sync_dir;

/// Sidecar changes are read-modify-write: one at a time in the process.
static SIDECAR: Mutex<()> = Mutex::new(());

fn sidecar_lock() -> std::sync::MutexGuard<'static, ()> {
    SIDECAR.lock().unwrap_or_else(|p| p.into_inner())
}

/// The sidecar of the mbox at `path`.
pub fn sidecar_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.imap"))
}

/// One message's record.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    uid: u32,
    flags: u32,
    modseq: u64,
    header_flags: u32,
    identity: String,
}

/// The sidecar.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Sidecar {
    validity: u32,
    next: u32,
    modseq: u64,
    recent_from: u32,
    /// The file's length and inode when it was last read whole: an
    /// APPEND of ours that finds them unchanged reads only its own tail.
    len: u64,
    inode: u64,
    keywords: Vec<String>,
    records: Vec<Record>,
}

impl Sidecar {
    fn parse(text: &str) -> Option<Sidecar> {
        let mut lines = text.lines();
        let mut head = lines.next()?.split(' ');
        if head.next()? != "postling-mbox" || head.next()? != "1" {
            return None;
        }
        let mut s = Sidecar::default();
        for f in head {
            let (k, v) = f.split_at_checked(1)?;
            match k {
                "V" => s.validity = v.parse().ok()?,
                "N" => s.next = v.parse().ok()?,
                "M" => s.modseq = v.parse().ok()?,
                "R" => s.recent_from = v.parse().ok()?,
                "L" => s.len = v.parse().ok()?,
                "I" => s.inode = v.parse().ok()?,
                _ => {}
            }
        }
        let kw = lines.next()?;
        s.keywords = kw
            .strip_prefix('K')?
            .split_whitespace()
            .map(str::to_string)
            .collect();
        for l in lines {
            let mut p = l.splitn(5, ' ');
            let r = Record {
                uid: p.next()?.parse().ok()?,
                flags: u32::from_str_radix(p.next()?, 16).ok()?,
                modseq: p.next()?.parse().ok()?,
                header_flags: u32::from_str_radix(p.next()?, 16).ok()?,
                identity: p.next()?.to_string(),
            };
            s.records.push(r);
        }
        (s.validity != 0).then_some(s)
    }

    fn render(&self) -> String {
        let mut out = format!(
            "postling-mbox 1 V{} N{} M{} R{} L{} I{}\nK",
            self.validity,
            self.next,
            self.modseq,
            self.recent_from,
            self.len,
            self.inode
        );
        for k in &self.keywords {
            out.push(' ');
            out.push_str(k);
        }
        out.push('\n');
        for r in &self.records {
            out.push_str(&format!(
                "{} {:x} {} {:x} {}\n",
                r.uid, r.flags, r.modseq, r.header_flags, r.identity
            ));
        }
        out
    }
}

fn read_sidecar(path: &Path) -> Option<Sidecar> {
    Sidecar::parse(&fs::read_to_string(sidecar_path(path)).ok()?)
}

/// Writes the sidecar durably: UIDs must outlive a crash before any
/// client hears of them.
fn write_sidecar(path: &Path, s: &Sidecar) -> io::Result<()> {
    crate::util::fs::atomic_write(&sidecar_path(path), s.render().as_bytes())
}

/// Where a message is in the file, as `Msg::file` carries it:
/// `start:body:body_end:end:identity` (its `From ` line, its first
/// octet, its last, the end of its block, and what it is, so a location
/// another program's rewrite made stale is noticed, never misread).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loc {
    start: u64,
    body: u64,
    body_end: u64,
    end: u64,
}

impl Loc {
    fn encode(self, identity: &str) -> String {
        format!(
            "{}:{}:{}:{}:{identity}",
            self.start, self.body, self.body_end, self.end
        )
    }

    /// The octets of the message's block (what its quota counts).
    pub fn block_len(s: &str) -> Option<u64> {
        Loc::decode(s).map(|(l, _)| l.end - l.start)
    }

    /// Reads a location back, with its identity.
    pub fn decode(s: &str) -> Option<(Loc, &str)> {
        let mut p = s.splitn(5, ':');
        let mut n = || p.next()?.parse::<u64>().ok();
        let loc = Loc {
            start: n()?,
            body: n()?,
            body_end: n()?,
            end: n()?,
        };
        Some((loc, p.next()?))
    }
}

/// An identity without its `-N` copy number.
fn base_identity(id: &str) -> &str {
    match id.rsplit_once('-') {
        Some((base, n)) if n.bytes().all(|b| b.is_ascii_digit()) => base,
        _ => id,
    }
}

/// One message found in the file.
#[derive(Debug)]
struct Block {
    loc: Loc,
    identity: String,
    header_flags: u32,
    keywords: Vec<String>,
    /// Status has `O`: a reader has seen it (not \Recent).
    old: bool,
}

/// The message blocks of an mbox file.
fn blocks(mut file: &File, from: u64) -> io::Result<Vec<Block>> {
    file.seek(SeekFrom::Start(from))?;
    let mut reader = BufReader::with_capacity(64 * 1024, file);
    let mut out: Vec<Block> = Vec::new();
    mbox::walk(
        &mut reader,
        from,
        Scanning::new,
        |c, end| {
            out.push(c.finish(end));
            Ok(())
        },
        |e| e,
    )?;
    // Identical copies: the later ones numbered.
    let mut seen: HashMap<String, u32> = HashMap::new();
    for b in &mut out {
        let n = seen.entry(b.identity.clone()).or_insert(0);
        *n += 1;
        if *n > 1 {
            b.identity = format!("{}-{n}", b.identity);
        }
    }
    Ok(out)
}

struct Scanning {
    start: u64,
    body: u64,
    in_header: bool,
    last_blank: bool,
    id: Option<String>,
    hash: u64,
    flags: u32,
    keywords: Vec<String>,
    old: bool,
}

impl Scanning {
    fn new(start: u64, body: u64) -> Scanning {
        Scanning {
            start,
            body,
            in_header: true,
            last_blank: false,
            id: None,
            hash: 0xcbf2_9ce4_8422_2325,
            flags: 0,
            keywords: Vec::new(),
            old: false,
        }
    }

    fn finish(self, end: u64) -> Block {
        // The blank line before the next `From ` is the separator.
        let body_end = if self.last_blank { end - 1 } else { end };
        Block {
            loc: Loc {
                start: self.start,
                body: self.body,
                body_end: body_end.max(self.body),
                end,
            },
            identity: self
                .id
                .unwrap_or_else(|| format!("H{:016x}", self.hash)),
            header_flags: self.flags,
            keywords: self.keywords,
            old: self.old,
        }
    }
}

impl mbox::Scan for Scanning {
    fn line(&mut self, line: &[u8]) {
        self.last_blank = line == b"\n";
        if self.in_header {
            if self.last_blank {
                self.in_header = false;
            } else {
                let lower = line.to_ascii_lowercase();
                let value = |name: &[u8]| {
                    lower.starts_with(name).then(|| {
                        String::from_utf8_lossy(&line[name.len()..])
                            .trim()
                            .to_string()
                    })
                };
                if let Some(v) = value(b"status:") {
                    if v.contains('R') {
                        self.flags |= Flags::SEEN.0;
                    }
                    self.old |= v.contains('O');
                    return;
                }
                if let Some(v) = value(b"x-status:") {
                    for (c, bit) in [
                        ('A', 1u32 << 1),
                        ('F', 1 << 2),
                        ('D', 1 << 3),
                        ('T', 1 << 4),
                    ] {
                        if v.contains(c) {
                            self.flags |= bit;
                        }
                    }
                    return;
                }
                if let Some(v) = value(b"x-keywords:") {
                    self.keywords = v
                        .split([' ', ','])
                        .filter(|k| !k.is_empty())
                        .map(str::to_string)
                        .collect();
                    return;
                }
                if value(b"x-uid:").is_some()
                    || value(b"x-imap:").is_some()
                    || value(b"x-imapbase:").is_some()
                    || value(b"content-length:").is_some()
                {
                    return;
                }
                if self.id.is_none() {
                    self.id = super::maildrop::postling_id(line);
                }
            }
        }
        for &b in line {
            self.hash =
                (self.hash ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }
}

fn now_modseq() -> u64 {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(1);
    super::index::fresh_modseq(now)
}

/// Scans the mbox at `path` into a folder, under its lock (a message
/// half appended is never seen), giving UIDs to new mail and writing
/// the sidecar before anyone hears of them.
pub fn scan(path: &Path) -> io::Result<Folder> {
    let _side = sidecar_lock();
    scan_locked(path)
}

/// [`scan`], the sidecar lock already held.
fn scan_locked(path: &Path) -> io::Result<Folder> {
    let (found, len, inode) = if path.exists() {
        let locked = lock::lock(path)?;
        let meta = locked.file.metadata()?;
        (
            blocks(&locked.file, 0)?,
            meta.len(),
            std::os::unix::fs::MetadataExt::ino(&meta),
        )
    } else {
        (Vec::new(), 0, 0)
    };
    let old = read_sidecar(path);
    let fresh = old.is_none();
    let mut side = old.unwrap_or_else(|| {
        let l = UidList::fresh();
        Sidecar {
            validity: l.validity,
            next: 1,
            modseq: 0,
            recent_from: 1,
            ..Sidecar::default()
        }
    });
    // HIGHESTMODSEQ moves only when a message or an expunge is new
    // (RFC 7162 3.1.2.1), so a webmail's "nothing changed" holds.
    let top = side.modseq.saturating_add(1).max(now_modseq());
    let mut moved = fresh;
    let mut known: HashMap<String, Record> = side
        .records
        .drain(..)
        .map(|r| (r.identity.clone(), r))
        .collect();
    let mut changed = fresh;
    let mut records = Vec::with_capacity(found.len());
    let mut msgs = Vec::with_capacity(found.len());
    for b in &found {
        let mut kw_bits = 0;
        for k in &b.keywords {
            let i = match side
                .keywords
                .iter()
                .position(|x| x.eq_ignore_ascii_case(k))
            {
                Some(i) => i,
                None if side.keywords.len() < MAX_KEYWORDS => {
                    side.keywords.push(k.clone());
                    side.keywords.len() - 1
                }
                None => continue,
            };
            kw_bits |= Flags::keyword(i).0;
        }
        let header = b.header_flags | kw_bits;
        let r = match known.remove(&b.identity) {
            Some(mut r) => {
                if r.header_flags != header {
                    // Another program set these: its word wins.
                    r.flags = header;
                    r.header_flags = header;
                    r.modseq = top;
                    changed = true;
                    moved = true;
                }
                r
            }
            None => {
                changed = true;
                moved = true;
                let uid = side.next;
                side.next += 1;
                if fresh && b.old {
                    side.recent_from = side.recent_from.max(uid + 1);
                }
                Record {
                    uid,
                    flags: header,
                    modseq: top,
                    header_flags: header,
                    identity: b.identity.clone(),
                }
            }
        };
        msgs.push(Msg {
            uid: r.uid,
            flags: Flags(r.flags),
            modseq: r.modseq,
            file: b.loc.encode(&b.identity).into(),
        });
        records.push(r);
    }
    moved |= !known.is_empty();
    changed |= moved || side.len != len || side.inode != inode;
    let top = if moved { top } else { side.modseq };
    side.len = len;
    side.inode = inode;
    records.sort_by_key(|r| r.uid);
    msgs.sort_by_key(|m| m.uid);
    side.records = records;
    side.modseq = top;
    if changed {
        write_sidecar(path, &side)?;
    }
    Ok(Folder {
        uidvalidity: side.validity,
        uidnext: side.next,
        highest_modseq: top,
        msgs,
        keywords: side.keywords.clone(),
        expunged: Vec::new(),
        recent_from: side.recent_from.min(side.next),
    })
}

/// Records flags (and the keyword table, MODSEQs, the first recent
/// UID) from the loop's copy of the folder: no mbox rewrite.
pub fn save(
    path: &Path,
    validity: Option<u32>,
    highest: u64,
    recent_from: Option<u32>,
    keywords: Option<&[String]>,
    msgs: impl Iterator<Item = (u32, Flags, u64)>,
) -> io::Result<()> {
    let _side = sidecar_lock();
    let Some(mut side) = read_sidecar(path)
        .filter(|s| validity.is_none_or(|v| s.validity == v))
    else {
        return Ok(());
    };
    let by_uid: HashMap<u32, (Flags, u64)> =
        msgs.map(|(u, f, m)| (u, (f, m))).collect();
    for r in &mut side.records {
        if let Some((f, m)) = by_uid.get(&r.uid) {
            r.flags = f.0;
            // 0: the loop gives the MODSEQ when it records the change.
            if *m != 0 {
                r.modseq = *m;
            }
        }
    }
    side.modseq = side.modseq.max(highest);
    if let Some(r) = recent_from {
        side.recent_from = side.recent_from.max(r);
    }
    if let Some(k) = keywords
        && k.len() >= side.keywords.len()
    {
        side.keywords = k.to_vec();
    }
    write_sidecar(path, &side)
}

/// The message at `loc` as stored (LF line ends, mboxrd quoting undone).
/// A location a rewrite made stale is found again by identity; NotFound
/// if the message is not in the file any more.
pub fn read(path: &Path, loc: &str) -> io::Result<Vec<u8>> {
    read_dated(path, loc).map(|(data, _)| data)
}

/// [`read`], with the message's INTERNALDATE (its `From ` line's date).
pub fn read_dated(path: &Path, loc: &str) -> io::Result<(Vec<u8>, i64)> {
    let gone = || io::Error::new(io::ErrorKind::NotFound, "message gone");
    let (l, identity) = Loc::decode(loc).ok_or_else(gone)?;
    let mut f = File::open(path)?;
    if let Some(data) = read_block(&mut f, l, identity)? {
        return Ok(data);
    }
    let _side = sidecar_lock();
    let locked = lock::lock(path)?;
    let found = blocks(&locked.file, 0)?;
    let b = found
        .iter()
        .find(|b| b.identity == identity)
        .ok_or_else(gone)?;
    let mut f = File::open(path)?;
    read_block(&mut f, b.loc, identity)?.ok_or_else(gone)
}

/// The date on the `From ` line at `l`; None if there is no `From `
/// line there any more (the file changed).
fn from_line(f: &mut File, l: Loc) -> io::Result<Option<i64>> {
    let mut from = vec![0u8; (l.body - l.start) as usize];
    f.seek(SeekFrom::Start(l.start))?;
    if f.read_exact(&mut from).is_err() || !from.starts_with(b"From ") {
        return Ok(None);
    }
    Ok(Some(
        from_line_date(&String::from_utf8_lossy(&from)).unwrap_or(0),
    ))
}

/// The block at `l`, and its `From ` line's date, if it is still the
/// message `identity`.
fn read_block(
    f: &mut File,
    l: Loc,
    identity: &str,
) -> io::Result<Option<(Vec<u8>, i64)>> {
    let Some(date) = from_line(f, l)? else {
        return Ok(None);
    };
    // The whole block, separator included, as the scan saw it.
    f.seek(SeekFrom::Start(l.body))?;
    let mut data = vec![0; (l.end - l.body) as usize];
    if f.read_exact(&mut data).is_err() {
        return Ok(None);
    }
    let mut check = Scanning::new(0, 0);
    for line in data.split_inclusive(|&b| b == b'\n') {
        check.line(line);
    }
    let found = check.finish(data.len() as u64).identity;
    if base_identity(&found) != base_identity(identity) {
        return Ok(None);
    }
    data.truncate((l.body_end - l.body) as usize);
    Ok(Some((unquote(&data), date)))
}

/// What streaming a large mbox message needs, read without holding it.
#[derive(Debug)]
pub struct LargeMbox {
    /// The header as sent (CRLF, quoting undone), blank line included.
    pub head: Vec<u8>,
    /// Where the text starts, counted from the message's first octet.
    pub head_stored: u64,
    /// The message's first octet in the file.
    pub base: u64,
    /// File offsets of the `>` that quote `From ` lines.
    pub drops: Vec<u64>,
    /// The message's length as sent (CRLF, quoting undone).
    pub size: u64,
    /// INTERNALDATE: its `From ` line's date.
    pub date: i64,
}

/// Reads a message larger than `threshold` a piece at a time for
/// streaming; None if it is smaller, has moved, or quotes too many
/// lines to list (then it is read whole).
pub fn large(
    path: &Path,
    loc: &str,
    threshold: u64,
) -> io::Result<Option<LargeMbox>> {
    const MAX_DROPS: usize = 10_000;
    let Some((l, identity)) = Loc::decode(loc) else {
        return Ok(None);
    };
    if l.body_end - l.body <= threshold {
        return Ok(None);
    }
    let mut f = File::open(path)?;
    let Some(date) = from_line(&mut f, l)? else {
        return Ok(None);
    };
    f.seek(SeekFrom::Start(l.body))?;
    let mut reader = BufReader::with_capacity(
        64 * 1024,
        Read::by_ref(&mut f).take(l.end - l.body),
    );
    let mut check = Scanning::new(0, 0);
    let (mut head, mut head_done, mut head_stored) = (Vec::new(), false, 0u64);
    let (mut size, mut pos, mut drops) = (0u64, l.body, Vec::new());
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        check.line(&line);
        let in_body = pos < l.body_end;
        if in_body {
            let gt = line.iter().take_while(|&&b| b == b'>').count();
            let quoted = gt > 0 && line[gt..].starts_with(b"From ");
            if quoted {
                if drops.len() >= MAX_DROPS {
                    return Ok(None);
                }
                drops.push(pos);
            }
            let text = if quoted { &line[1..] } else { &line[..] };
            let text = &text[..text.len().min((l.body_end - pos) as usize)];
            let bare_lf = text.ends_with(b"\n") && !text.ends_with(b"\r\n");
            size += text.len() as u64 + u64::from(bare_lf);
            if !head_done {
                head.extend_from_slice(text);
                if text == b"\n" || text == b"\r\n" {
                    head_done = true;
                    head_stored = pos + n as u64 - l.body;
                }
            }
        }
        pos += n as u64;
    }
    let found = check.finish(l.end - l.body).identity;
    if base_identity(&found) != base_identity(identity) || !head_done {
        return Ok(None);
    }
    Ok(Some(LargeMbox {
        head: super::mailfolder::to_crlf(&head),
        head_stored,
        base: l.body,
        drops,
        size,
        date,
    }))
}

/// `From sender Fri Feb 22 17:06:23 2008 [+0200]`: the date.
pub fn from_line_date(line: &str) -> Option<i64> {
    let words: Vec<&str> = line.split_whitespace().collect();
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
        "Nov", "Dec",
    ];
    let at = words
        .iter()
        .position(|w| MONTHS.iter().any(|m| m.eq_ignore_ascii_case(w)))?;
    let month = MONTHS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(words[at]))?
        as u32
        + 1;
    let day: u32 = words.get(at + 1)?.parse().ok()?;
    let mut t = words.get(at + 2)?.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, s) = (t.next()??, t.next()??, t.next().flatten().unwrap_or(0));
    let year: i64 = words.get(at + 3)?.parse().ok()?;
    let offset = match words.get(at + 4) {
        Some(z)
            if z.len() == 5 && (z.starts_with('+') || z.starts_with('-')) =>
        {
            let n: i64 = z[1..].parse().ok()?;
            let secs = (n / 100) * 3600 + (n % 100) * 60;
            if z.starts_with('-') { -secs } else { secs }
        }
        _ => 0,
    };
    let days = crate::proto::imap::search::days_from_civil(year, month, day);
    Some(days * 86_400 + h * 3600 + m * 60 + s - offset)
}

/// mboxrd: a line `>+From ` loses one `>`.
pub fn unquote(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    for line in data.split_inclusive(|&b| b == b'\n') {
        let gt = line.iter().take_while(|&&b| b == b'>').count();
        if gt > 0 && line[gt..].starts_with(b"From ") {
            out.extend_from_slice(&line[1..]);
        } else {
            out.extend_from_slice(line);
        }
    }
    out
}

/// Removes messages (by their locations' identities): the file
/// rewritten without their blocks (new file, fsync, rename, under the
/// lock, mail appended meanwhile kept), then their sidecar records.
pub fn expunge(path: &Path, locs: &[String]) -> io::Result<()> {
    let wanted: Vec<&str> = locs
        .iter()
        .filter_map(|l| Loc::decode(l))
        .map(|(_, id)| id)
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let _side = sidecar_lock();
    let mut locked = lock::lock(path)?;
    let found = blocks(&locked.file, 0)?;
    let gone: Vec<&Block> = found
        .iter()
        .filter(|b| wanted.contains(&b.identity.as_str()))
        .collect();
    if gone.is_empty() {
        return Ok(());
    }
    let len = locked.file.metadata()?.len();
    let mode = locked.file.metadata()?.permissions();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.postling-rewrite"));
    let result = (|| -> io::Result<()> {
        let created = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        created.set_permissions(mode)?;
        let mut out = io::BufWriter::new(created);
        let mut pos = 0;
        for b in &gone {
            copy_range(&mut locked.file, pos, b.loc.start, &mut out)?;
            pos = b.loc.end;
        }
        copy_range(&mut locked.file, pos, len, &mut out)?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_dir(path.parent().unwrap_or(Path::new(".")))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        return result;
    }
    let freed: u64 = gone.iter().map(|b| b.loc.end - b.loc.start).sum();
    let root = super::quota::root_of(path, MailboxFormat::Mbox);
    super::quota::add(&root, -(freed as i64), -(gone.len() as i64));
    if let Some(mut side) = read_sidecar(path) {
        let ids: Vec<&str> =
            gone.iter().map(|b| b.identity.as_str()).collect();
        side.records.retain(|r| !ids.contains(&r.identity.as_str()));
        write_sidecar(path, &side)?;
    }
    Ok(())
}

fn copy_range(
    file: &mut File,
    start: u64,
    end: u64,
    out: &mut impl Write,
) -> io::Result<()> {
    if end <= start {
        return Ok(());
    }
    file.seek(SeekFrom::Start(start))?;
    let copied = io::copy(&mut Read::by_ref(file).take(end - start), out)?;
    if copied != end - start {
        return Err(io::Error::other("mbox changed while rewriting"));
    }
    Ok(())
}

/// A message to add: its octets (LF), system flags, keyword names, and
/// INTERNALDATE.
pub type NewMessage = (Vec<u8>, Flags, Vec<String>, Option<SystemTime>);

/// A message added: its UID, location and flags.
pub type Added = (u32, String, Flags);

/// Appends messages (LF octets) with their flags, then scans for their
/// UIDs: the UIDVALIDITY and each one's UID and location.
pub fn add(
    path: &Path,
    messages: &[NewMessage],
) -> io::Result<(u32, Vec<Added>)> {
    let _side = sidecar_lock();
    let current = |path: &Path| -> (u64, u64) {
        fs::metadata(path).map_or((0, 0), |m| {
            (m.len(), std::os::unix::fs::MetadataExt::ino(&m))
        })
    };
    // Read the file whole only if it changed since we last did.
    let known =
        read_sidecar(path).filter(|s| (s.len, s.inode) == current(path));
    let mut side = match known {
        Some(s) => s,
        None => {
            scan_locked(path)?;
            read_sidecar(path).ok_or_else(|| io::Error::other("no sidecar"))?
        }
    };
    let from = side.len;
    let mut ours = Vec::with_capacity(messages.len());
    for (bytes, _, _, date) in messages {
        let content = super::content::Content {
            len: bytes.len() as u64,
            lines: memchr::memchr_iter(b'\n', bytes).count() as u64,
            stored: super::content::Stored::Memory(bytes.clone()),
            received: date.unwrap_or_else(SystemTime::now),
        };
        let msg = super::Message {
            content: &content,
            sender: "",
            prefix: b"",
        };
        let staged =
            super::mbox::stage_at(path, &msg).map_err(|e| match e {
                super::StageError::Busy => {
                    io::Error::new(io::ErrorKind::WouldBlock, "mbox locked")
                }
                super::StageError::Failed(f) => {
                    io::Error::other(f.to_string())
                }
            })?;
        ours.push(staged.start());
        staged
            .commit()
            .map_err(|f| io::Error::other(f.to_string()))?;
    }
    // Only the tail: our messages (and any another program appended
    // meanwhile, which get UIDs too).
    let locked = lock::lock(path)?;
    let meta = locked.file.metadata()?;
    let mut new = blocks(&locked.file, from)?;
    drop(locked);
    let grown = meta.len().saturating_sub(from) as i64;
    let root = super::quota::root_of(path, MailboxFormat::Mbox);
    super::quota::add(&root, grown, messages.len() as i64);
    let mut copies: HashMap<String, u32> = HashMap::new();
    for r in &side.records {
        *copies
            .entry(base_identity(&r.identity).to_string())
            .or_insert(0) += 1;
    }
    let top = side.modseq.saturating_add(1).max(now_modseq());
    let mut table = Folder {
        keywords: side.keywords.clone(),
        ..Folder::default()
    };
    let mut out = Vec::new();
    for b in &mut new {
        // Identities continue the numbering of identical copies.
        let base = base_identity(&b.identity).to_string();
        let n = copies.entry(base.clone()).or_insert(0);
        *n += 1;
        b.identity = if *n > 1 { format!("{base}-{n}") } else { base };
        let uid = side.next;
        side.next += 1;
        let mut flags = Flags(b.header_flags);
        if let Some(i) = ours.iter().position(|&start| start == b.loc.start) {
            let (_, system, keywords, _) = &messages[i];
            flags = *system;
            for k in keywords {
                if let Some(bit) = table.flag_bit(k.as_bytes(), true) {
                    flags.0 |= bit.0;
                }
            }
            out.push((uid, b.loc.encode(&b.identity), flags));
        }
        side.records.push(Record {
            uid,
            flags: flags.0,
            modseq: top,
            header_flags: b.header_flags,
            identity: b.identity.clone(),
        });
    }
    side.keywords = table.keywords;
    side.modseq = top;
    side.len = meta.len();
    side.inode = std::os::unix::fs::MetadataExt::ino(&meta);
    write_sidecar(path, &side)?;
    Ok((side.validity, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sidecar_round_trip() {
        let s = Sidecar {
            validity: 5,
            next: 9,
            modseq: 77,
            recent_from: 3,
            len: 4096,
            inode: 12,
            keywords: vec!["$Junk".into()],
            records: vec![Record {
                uid: 2,
                flags: 0x41,
                modseq: 70,
                header_flags: 1,
                identity: "H00ff".into(),
            }],
        };
        assert_eq!(Sidecar::parse(&s.render()), Some(s));
        assert_eq!(Sidecar::parse("garbage"), None);
        assert_eq!(
            unquote(b">From a\n>>From b\nFrom c\n"),
            b"From a\n>From b\nFrom c\n"
        );
        let l = Loc {
            start: 1,
            body: 20,
            body_end: 30,
            end: 31,
        };
        assert_eq!(Loc::decode(&l.encode("H1-2")), Some((l, "H1-2")));
        assert_eq!(base_identity("H1-2"), "H1");
        assert_eq!(
            from_line_date("From a@b  Thu Jan  1 00:01:00 1970"),
            Some(60)
        );
        assert_eq!(
            from_line_date("From a@b Fri Jan  2 02:00:00 1970 +0200"),
            Some(86_400)
        );
        assert_eq!(from_line_date("From nothing"), None);
        assert_eq!(base_identity("6C3H-Q7"), "6C3H-Q7");
    }

    #[test]
    fn mutt_and_procmail_behind_our_back() {
        let dir = std::env::temp_dir()
            .join(format!("postling-mbox-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("INBOX");
        fs::write(&path, "From a Thu Jan  1 00:00:00 1970\nSubject: one\n\nbody\n\n\
                          From a Thu Jan  1 00:00:00 1970\nSubject: two\n\n>From x\n\n").unwrap();
        let f = scan(&path).unwrap();
        assert_eq!(
            f.msgs.iter().map(|m| m.uid).collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert_eq!(
            read(&path, &f.msgs[1].file).unwrap(),
            b"Subject: two\n\nFrom x\n"
        );
        // mutt marks "one" read and deletes nothing; procmail appends.
        let text = fs::read_to_string(&path)
            .unwrap()
            .replace("Subject: one\n", "Subject: one\nStatus: RO\n")
            + "From b Thu Jan  1 00:00:00 1970\nSubject: three\n\nnew\n\n";
        fs::write(&path, text).unwrap();
        let g = scan(&path).unwrap();
        assert_eq!(
            g.msgs
                .iter()
                .map(|m| (m.uid, m.flags.has(Flags::SEEN)))
                .collect::<Vec<_>>(),
            vec![(1, true), (2, false), (3, false)]
        );
        assert!(g.msgs[0].modseq > f.msgs[0].modseq);
        assert_eq!(g.uidvalidity, f.uidvalidity);
        // Our expunge of "two"; then mutt deletes "one": no UID reused.
        expunge(&path, &[g.msgs[1].file.to_string()]).unwrap();
        let h = scan(&path).unwrap();
        assert_eq!(
            h.msgs.iter().map(|m| m.uid).collect::<Vec<_>>(),
            vec![1, 3]
        );
        let text = fs::read_to_string(&path).unwrap();
        let cut = text.find("From b").unwrap();
        fs::write(&path, &text[cut..]).unwrap();
        let i = scan(&path).unwrap();
        assert_eq!(i.msgs.iter().map(|m| m.uid).collect::<Vec<_>>(), vec![3]);
        assert_eq!(i.uidnext, 4);
        let (v, added) = add(
            &path,
            &[(
                b"Subject: four\n\nx\n".to_vec(),
                Flags::SEEN,
                vec!["$Work".into()],
                None,
            )],
        )
        .unwrap();
        assert_eq!(v, f.uidvalidity);
        assert_eq!(added[0].0, 4);
        // A second APPEND reads only its own tail; procmail appended
        // meanwhile, so the file changed: read whole, no UID lost.
        fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(
                b"From c Thu Jan  1 00:00:00 1970\nSubject: five\n\nx\n\n",
            )
            .unwrap();
        let (_, more) = add(
            &path,
            &[(b"Subject: six\n\ny\n".to_vec(), Flags(0), vec![], None)],
        )
        .unwrap();
        assert_eq!(more[0].0, 6);
        let (_, more) = add(
            &path,
            &[(b"Subject: seven\n\nz\n".to_vec(), Flags(0), vec![], None)],
        )
        .unwrap();
        assert_eq!(more[0].0, 7);
        assert_eq!(read(&path, &more[0].1).unwrap(), b"Subject: seven\n\nz\n");
        let j = scan(&path).unwrap();
        assert_eq!(
            j.msgs.iter().map(|m| m.uid).collect::<Vec<_>>(),
            vec![3, 4, 5, 6, 7]
        );
        assert!(j.get(4).unwrap().flags.has(Flags::SEEN));
        assert!(j.get(4).unwrap().flags.has(Flags::keyword(0)));
        assert_eq!(j.keywords, vec!["$Work".to_string()]);
        // A stale location (from before the rewrite) is found again.
        assert_eq!(
            read(&path, &g.msgs[2].file).unwrap(),
            b"Subject: three\n\nnew\n"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
