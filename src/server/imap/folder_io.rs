//! The folder work the mailbox helpers' jobs share (scanning, reading a
//! message, adding one, telling whether a folder is there, how a
//! failure is answered): a leaf the jobs import, importing none of them.

use std::path::Path;

use crate::config::MailboxFormat;
use crate::proto::imap::folder::{Flags, Folder};
use crate::proto::imap::mime;
use crate::proto::imap::request::No;
use crate::store::content::Content;
use crate::store::mailfolder::{self, Source};
use crate::store::mboxfolder;

/// Log lines keep the target they had before the file moved into its
/// folder: a log's format is an interface (filters, RUST_LOG).
const LOG_TARGET: &str = "postling::server::mailboxes";

/// A message added to a folder: UID, flags, file.
pub type Added = (u32, Flags, Box<str>);

pub(in crate::server) fn failed(what: &str, e: std::io::Error) -> No {
    log::error!(target: LOG_TARGET, "{what}: {e}");
    match e.kind() {
        std::io::ErrorKind::NotFound => {
            No::code("NONEXISTENT", "no such mailbox")
        }
        std::io::ErrorKind::AlreadyExists => {
            No::code("ALREADYEXISTS", "mailbox exists")
        }
        std::io::ErrorKind::InvalidInput => No::code("CANNOT", e.to_string()),
        _ => No::code("SERVERBUG", format!("{what} failed: {}", e.kind())),
    }
}

/// Scans a folder in either format.
pub(in crate::server) fn scan(
    fmt: MailboxFormat,
    dir: &Path,
) -> std::io::Result<Folder> {
    match fmt {
        MailboxFormat::Maildir => mailfolder::scan(dir),
        MailboxFormat::Mbox => mboxfolder::scan(dir),
    }
}

/// A message's stored octets (LF) and INTERNALDATE.
pub(in crate::server) fn read_message(
    fmt: MailboxFormat,
    dir: &Path,
    file: &str,
) -> std::io::Result<(Vec<u8>, i64)> {
    match fmt {
        MailboxFormat::Maildir => {
            let (_, mut f) = mailfolder::open(dir, file)?;
            let meta = f.metadata()?;
            let date =
                meta.modified().map(mailfolder::unix_seconds).unwrap_or(0);
            let mut raw = Vec::with_capacity(meta.len() as usize);
            std::io::Read::read_to_end(&mut f, &mut raw)?;
            Ok((raw, date))
        }
        MailboxFormat::Mbox => mboxfolder::read_dated(dir, file),
    }
}

/// The folder's stamp: when its files last changed.
pub(in crate::server) fn stamp(
    fmt: MailboxFormat,
    dir: &Path,
) -> Option<mailfolder::Stamp> {
    match fmt {
        MailboxFormat::Maildir => mailfolder::stamp(dir).ok(),
        MailboxFormat::Mbox => {
            let m = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified());
            let side = m(&mboxfolder::sidecar_path(dir))
                .unwrap_or(std::time::UNIX_EPOCH);
            Some((m(dir).unwrap_or(std::time::UNIX_EPOCH), side))
        }
    }
}

pub(in crate::server) use crate::store::mailfolder::flags_for;

/// True if the folder at `dir` is there to take mail.
pub(in crate::server) fn folder_exists(
    fmt: MailboxFormat,
    dir: &Path,
) -> bool {
    match fmt {
        MailboxFormat::Maildir => dir.join("cur").is_dir(),
        // INBOX's file appears with its first message.
        MailboxFormat::Mbox => {
            dir.is_file() || dir.file_name().is_some_and(|n| n == "INBOX")
        }
    }
}

/// System flags only: an mbox folder keeps keywords set by STORE, not
/// those given with APPEND or COPY (its table lives in the sidecar).
pub(in crate::server) fn system_flags(bits: Flags) -> Flags {
    Flags(bits.0 & 0x3f)
}

pub(in crate::server) fn append(
    fmt: MailboxFormat,
    dir: &std::path::Path,
    content: &mut Content,
    flags: &[String],
    date: Option<i64>,
    binary: bool,
) -> Result<(u32, Added), No> {
    if !folder_exists(fmt, dir) {
        return Err(No::code("TRYCREATE", "no such mailbox"));
    }
    content.finish().map_err(|e| failed("append", e))?;
    if fmt == MailboxFormat::Mbox {
        let mut raw = Vec::new();
        std::io::Read::read_to_end(
            &mut content.reader().map_err(|e| failed("append", e))?,
            &mut raw,
        )
        .map_err(|e| failed("append", e))?;
        if binary {
            raw = mailfolder::to_lf(&mime::binary_to_base64(&raw));
        }
        let mut system = Folder::default();
        let mut bits = Flags(0);
        let mut keywords = Vec::new();
        for n in flags {
            match system.flag_bit(n.as_bytes(), false) {
                Some(b) => bits.0 |= b.0,
                None if !n.starts_with('\\') => keywords.push(n.clone()),
                None => {}
            }
        }
        let date = date.map(mailfolder::from_unix);
        let (validity, mut added) =
            mboxfolder::add(dir, &[(raw, bits, keywords, date)])
                .map_err(|e| failed("append", e))?;
        let (uid, loc, bits) =
            added.pop().ok_or_else(|| No::text("nothing stored"))?;
        return Ok((validity, (uid, bits, loc.into())));
    }
    let bits = flags_for(dir, flags);
    let date = date.map(mailfolder::from_unix);
    let bytes;
    let source = match content.spool_path() {
        // RFC 3516 4.4: binary parts are stored base64, so every reader
        // gets a valid message; BINARY[] still gives the octets sent.
        _ if binary => {
            let mut raw = Vec::new();
            std::io::Read::read_to_end(
                &mut content.reader().map_err(|e| failed("append", e))?,
                &mut raw,
            )
            .map_err(|e| failed("append", e))?;
            // Binary octets are encoded as they came: no line-end change.
            bytes = mailfolder::to_lf(&mime::binary_to_base64(&raw));
            Source::Bytes(&bytes)
        }
        Some(p) => Source::File(p),
        None => {
            bytes = match &content.stored {
                crate::store::content::Stored::Memory(b) => b.clone(),
                _ => Vec::new(),
            };
            Source::Bytes(&bytes)
        }
    };
    let (validity, mut added) = mailfolder::add(dir, &[(source, bits, date)])
        .map_err(|e| failed("append", e))?;
    let (uid, file) = added.pop().ok_or_else(|| No::text("nothing stored"))?;
    Ok((validity, (uid, bits, file.into())))
}
