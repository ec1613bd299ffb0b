//! APPEND on a mailbox helper when it is more than one plain literal:
//! MULTIAPPEND's messages (RFC 3502) and CATENATE's parts (RFC 4469),
//! built from the spool and from the messages URLs name, then stored
//! together, all or none.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::config::MailboxFormat;
use crate::proto::imap::append::{AppendMessage, Part};
use crate::proto::imap::folder::{Flags, Folder};
use crate::proto::imap::request::No;
use crate::proto::imap::{mime, render, url};
use crate::server::imap::folder_io::{
    Added, append, failed, flags_for, folder_exists, read_message, scan,
};
use crate::store::content::Content;
use crate::store::mailfolder::{self, Source};
use crate::store::{folders, mboxfolder};

/// An APPEND for a helper.
pub struct AppendJob {
    /// The destination folder.
    pub dir: PathBuf,
    /// The user's root, where URLs' folders are.
    pub root: PathBuf,
    /// Every text part, one after the other.
    pub content: Content,
    /// The messages.
    pub messages: Vec<AppendMessage>,
    /// The most one message, and all of them together, may hold.
    pub limit: u64,
    /// The user's storage limit (0: none).
    pub quota: u64,
}

/// Stores the job's messages: UIDVALIDITY and what was added.
pub fn run(
    fmt: MailboxFormat,
    job: &mut AppendJob,
) -> Result<(u32, Vec<Added>), No> {
    if !folder_exists(fmt, &job.dir) {
        return Err(No::code("TRYCREATE", "no such mailbox"));
    }
    let room = (job.quota > 0)
        .then(|| (job.root.clone(), job.quota, job.content.len));
    if let Some(no) = over_quota(fmt, room.as_ref()) {
        return Err(no);
    }
    if let [only] = job.messages.as_slice()
        && let [Part::Text { binary, .. }] = only.parts.as_slice()
    {
        let (flags, date) = (&only.flags, only.date);
        return append(fmt, &job.dir, &mut job.content, flags, date, *binary)
            .map(|(validity, added)| (validity, vec![added]));
    }
    let built =
        build(fmt, &mut job.content, &job.root, &job.messages, job.limit)?;
    store(fmt, &job.dir, built)
}

/// Each message's octets (LF line ends), in order.
fn build<'m>(
    fmt: MailboxFormat,
    content: &mut Content,
    root: &Path,
    messages: &'m [AppendMessage],
    limit: u64,
) -> Result<Vec<(Vec<u8>, &'m AppendMessage)>, No> {
    content.finish().map_err(|e| failed("append", e))?;
    let mut spool = content.reader().map_err(|e| failed("append", e))?;
    let too_big = || No::code("TOOBIG", "messages too large");
    let mut total = 0u64;
    let mut built = Vec::with_capacity(messages.len());
    for m in messages {
        let mut msg = Vec::new();
        let mut binary = false;
        for part in &m.parts {
            match part {
                Part::Text { len, binary: raw } => {
                    let mut text = Vec::new();
                    (&mut spool)
                        .take(*len)
                        .read_to_end(&mut text)
                        .map_err(|e| failed("append", e))?;
                    if *raw {
                        binary = true;
                        text = mailfolder::to_lf(&text);
                    }
                    msg.extend_from_slice(&text);
                }
                Part::Url(u) => {
                    msg.extend_from_slice(&resolve(fmt, root, u)?);
                }
            }
            if msg.len() as u64 > limit {
                return Err(too_big());
            }
        }
        if binary {
            let crlf = mailfolder::to_crlf(&msg);
            msg = mailfolder::to_lf(&mime::binary_to_base64(&crlf));
        }
        total += msg.len() as u64;
        if total > limit {
            return Err(too_big());
        }
        built.push((msg, m));
    }
    Ok(built)
}

/// The octets a CATENATE URL names (LF line ends).
fn resolve(
    fmt: MailboxFormat,
    root: &Path,
    text: &str,
) -> Result<Vec<u8>, No> {
    let bad =
        |why: &str| No::text(format!("[BADURL {}] {why}", imap_quoted(text)));
    let u = url::parse(text).map_err(bad)?;
    let dir = folders::place(root, &u.mailbox, fmt);
    if !folder_exists(fmt, &dir) {
        return Err(bad("no such mailbox"));
    }
    let folder: Folder =
        scan(fmt, &dir).map_err(|_| bad("mailbox unreadable"))?;
    if u.uidvalidity.is_some_and(|v| v != folder.uidvalidity) {
        return Err(bad("UIDVALIDITY changed"));
    }
    let file = folder
        .get(u.uid)
        .ok_or_else(|| bad("no such message"))?
        .file
        .clone();
    let (raw, _) = read_message(fmt, &dir, &file)
        .map_err(|_| bad("message unreadable"))?;
    let msg = mailfolder::to_crlf(&raw);
    let mut data = match &u.section {
        Some(s) => render::section_octets(&msg, s),
        None => msg,
    };
    if let Some((start, len)) = u.partial {
        let s = (start as usize).min(data.len());
        let e = len.map_or(data.len(), |l| {
            s.saturating_add(l as usize).min(data.len())
        });
        data = data[s..e].to_vec();
    }
    Ok(mailfolder::to_lf(&data))
}

/// A URL as a quoted string in a response code.
fn imap_quoted(s: &str) -> String {
    let clean: String = s
        .chars()
        .filter(|c| !c.is_control())
        .flat_map(|c| match c {
            '"' | '\\' => vec!['\\', c],
            ']' => vec![],
            _ => vec![c],
        })
        .collect();
    format!("\"{clean}\"")
}

/// Stores built messages in one go.
fn store(
    fmt: MailboxFormat,
    dir: &Path,
    built: Vec<(Vec<u8>, &AppendMessage)>,
) -> Result<(u32, Vec<Added>), No> {
    let date = |m: &AppendMessage| m.date.map(mailfolder::from_unix);
    if fmt == MailboxFormat::Mbox {
        let mut system = Folder::default();
        let msgs: Vec<_> = built
            .into_iter()
            .map(|(raw, m)| {
                let mut bits = Flags(0);
                let mut keywords = Vec::new();
                for n in &m.flags {
                    match system.flag_bit(n.as_bytes(), false) {
                        Some(b) => bits.0 |= b.0,
                        None if !n.starts_with('\\') => {
                            keywords.push(n.clone())
                        }
                        None => {}
                    }
                }
                (raw, bits, keywords, date(m))
            })
            .collect();
        let (validity, added) =
            mboxfolder::add(dir, &msgs).map_err(|e| failed("append", e))?;
        let added = added
            .into_iter()
            .map(|(uid, loc, bits)| (uid, bits, loc.into()))
            .collect();
        return Ok((validity, added));
    }
    let sources: Vec<_> = built
        .iter()
        .map(|(raw, m)| {
            (Source::Bytes(raw), flags_for(dir, &m.flags), date(m))
        })
        .collect();
    let bits: Vec<Flags> = sources.iter().map(|s| s.1).collect();
    let (validity, added) =
        mailfolder::add(dir, &sources).map_err(|e| failed("append", e))?;
    let added = added
        .into_iter()
        .zip(bits)
        .map(|((uid, file), bits)| (uid, bits, file.into()))
        .collect();
    Ok((validity, added))
}

/// `NO [OVERQUOTA]` when `(root, limit, bytes)` more do not fit.
pub fn over_quota(
    fmt: MailboxFormat,
    room: Option<&(PathBuf, u64, u64)>,
) -> Option<No> {
    let (root, limit, bytes) = room?;
    let used = crate::store::usage::usage(root, fmt).ok()?;
    let full = used.bytes >= *limit || !used.fits(*bytes, *limit);
    full.then(|| No::code("OVERQUOTA", "quota exceeded"))
}
