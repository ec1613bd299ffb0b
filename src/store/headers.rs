//! The header cache: for each message, the header fields SEARCH, SORT
//! and THREAD read (From, To, Cc, Bcc, Sender, Reply-To, Subject, Date,
//! Message-ID, References, In-Reply-To), each capped as the content
//! parsers cap it, with the message's size and INTERNALDATE. Kept in a
//! record file beside the folder (`postling-headers` in a Maildir
//! folder, `.NAME.headers` beside an mbox), written the first time a
//! helper reads the message and rebuilt from the files when missing, so
//! a search on those keys, a SORT or a THREAD over a warm folder opens
//! no message file. The cached fields are given back as a header
//! (`Name: value` lines), which the usual parsers read as they would the
//! message's own.

use std::path::{Path, PathBuf};

use super::records;
use crate::config::MailboxFormat;
use crate::proto::imap::mime;
use crate::proto::imap::sort::{self, SortKey, Value};

// PLHD2: with the sort keys kept ready.
const MAGIC: records::Magic = b"PLHD2";

/// The sort keys kept ready for SORT and THREAD (INTERNALDATE and size
/// are in the record anyway), so they parse nothing on a warm folder.
const READY: [SortKey; 10] = [
    SortKey::Date,
    SortKey::Subject,
    SortKey::Reply,
    SortKey::MessageId,
    SortKey::Parents,
    SortKey::From,
    SortKey::To,
    SortKey::Cc,
    SortKey::DisplayFrom,
    SortKey::DisplayTo,
];

/// The header fields kept, lower case.
pub const FIELDS: [&str; 11] = [
    "from",
    "to",
    "cc",
    "bcc",
    "sender",
    "reply-to",
    "subject",
    "date",
    "message-id",
    "references",
    "in-reply-to",
];

/// What is kept of one message: the record as stored, read in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cached {
    /// The message's size as sent (CRLF).
    pub size: u64,
    /// Its INTERNALDATE (seconds since the epoch).
    pub internal: i64,
    /// The record: size, INTERNALDATE, the header's length and octets,
    /// then the values of [`READY`] (a tag, then a number or a text).
    record: Vec<u8>,
    /// Where the header ends in it (it starts at 20).
    head_end: usize,
}

impl Cached {
    /// What to keep of a message (as sent, CRLF) whose header is `head`.
    pub fn of(head: &[u8], size: u64, internal: i64) -> Cached {
        let mut kept = Vec::new();
        for (name, value) in mime::fields(head) {
            if FIELDS.iter().any(|f| f.eq_ignore_ascii_case(&name)) {
                kept.extend_from_slice(name.as_bytes());
                kept.extend_from_slice(b": ");
                kept.extend_from_slice(&value);
                kept.extend_from_slice(b"\r\n");
            }
        }
        kept.extend_from_slice(b"\r\n");
        let mut record = Vec::with_capacity(64 + 2 * kept.len());
        record.extend_from_slice(&size.to_le_bytes());
        record.extend_from_slice(&internal.to_le_bytes());
        record.extend_from_slice(&(kept.len() as u32).to_le_bytes());
        record.extend_from_slice(&kept);
        for v in sort::values(&READY.map(|k| (k, false)), head, size, internal)
        {
            match v {
                Value::Number(n) => {
                    record.push(0);
                    record.extend_from_slice(&n.to_le_bytes());
                }
                Value::Text(t) => {
                    record.push(1);
                    record.extend_from_slice(&(t.len() as u32).to_le_bytes());
                    record.extend_from_slice(t.as_bytes());
                }
            }
        }
        Cached {
            size,
            internal,
            head_end: 20 + kept.len(),
            record,
        }
    }

    /// The kept fields as a header, ending with the blank line.
    pub fn head(&self) -> &[u8] {
        &self.record[20..self.head_end]
    }

    /// The values of SORT or THREAD `keys`, as `sort::values` gives them
    /// for the whole message.
    pub fn values(&self, keys: &[(SortKey, bool)]) -> Vec<Value> {
        keys.iter()
            .map(|(k, _)| match k {
                SortKey::Arrival => Value::Number(self.internal),
                SortKey::Size => Value::Number(self.size as i64),
                k => READY
                    .iter()
                    .position(|r| r == k)
                    .and_then(|i| self.ready(i))
                    .unwrap_or(Value::Number(0)),
            })
            .collect()
    }

    /// The `i`th kept value, read from the record.
    fn ready(&self, i: usize) -> Option<Value> {
        let b = &self.record;
        let mut at = self.head_end;
        for _ in 0..i {
            at += match b.get(at)? {
                0 => 9,
                _ => 5 + u32_at(b, at + 1)?,
            };
        }
        match b.get(at)? {
            0 => Some(Value::Number(i64::from_le_bytes(
                b.get(at + 1..at + 9)?.try_into().ok()?,
            ))),
            _ => {
                let len = u32_at(b, at + 1)?;
                let text =
                    std::str::from_utf8(b.get(at + 5..at + 5 + len)?).ok()?;
                Some(Value::Text(text.to_string()))
            }
        }
    }

    fn decode(record: Vec<u8>) -> Option<Cached> {
        let size = u64::from_le_bytes(record.get(..8)?.try_into().ok()?);
        let internal = i64::from_le_bytes(record.get(8..16)?.try_into().ok()?);
        let len =
            u32::from_le_bytes(record.get(16..20)?.try_into().ok()?) as usize;
        let head_end =
            20usize.checked_add(len).filter(|&e| e <= record.len())?;
        Some(Cached {
            size,
            internal,
            record,
            head_end,
        })
    }
}

/// A little-endian u32 at `at`, as a length.
fn u32_at(b: &[u8], at: usize) -> Option<usize> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?) as usize)
}

/// The cache file of the folder at `dir`.
pub fn file(fmt: MailboxFormat, dir: &Path) -> PathBuf {
    match fmt {
        MailboxFormat::Maildir => dir.join("postling-headers"),
        MailboxFormat::Mbox => {
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            dir.with_file_name(format!(".{name}.headers"))
        }
    }
}

/// What is kept of `uid`, if anything.
pub fn get(
    fmt: MailboxFormat,
    dir: &Path,
    validity: u32,
    uid: u32,
) -> Option<Cached> {
    Cached::decode(records::get(&file(fmt, dir), MAGIC, validity, uid)?)
}

/// True if something is kept of `uid`.
pub fn has(fmt: MailboxFormat, dir: &Path, validity: u32, uid: u32) -> bool {
    records::has(&file(fmt, dir), MAGIC, validity, uid)
}

/// What is kept of each of `uids`, read together.
pub fn get_many(
    fmt: MailboxFormat,
    dir: &Path,
    validity: u32,
    uids: &[u32],
) -> Vec<Option<Cached>> {
    records::get_many(&file(fmt, dir), MAGIC, validity, uids)
        .into_iter()
        .map(|r| r.and_then(Cached::decode))
        .collect()
}

/// Keeps what is kept of `uid`.
pub fn put(
    fmt: MailboxFormat,
    dir: &Path,
    validity: u32,
    uid: u32,
    cached: &Cached,
) {
    records::put(&file(fmt, dir), MAGIC, validity, uid, &cached.record)
}

/// Drops records of messages no longer in the folder, when they are
/// over half of the file.
pub fn compact(fmt: MailboxFormat, dir: &Path, validity: u32, live: &[u32]) {
    records::compact(&file(fmt, dir), MAGIC, validity, live)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_fields_searches_read_and_gives_them_back() {
        let head =
            b"Received: x\r\nFrom: A <a@x>\r\nSubject: Re: hi\r\n there\r\n\
                     X-Spam: no\r\nReferences: <1@x>\r\n <2@x>\r\n\r\n";
        let c = Cached::of(head, 1234, 99);
        assert_eq!(
            c.head(),
            b"From: A <a@x>\r\nSubject: Re: hi there\r\nReferences: <1@x> <2@x>\r\n\r\n"
        );
        assert_eq!(mime::fields(c.head()), {
            let mut want = mime::fields(head);
            want.retain(|(n, _)| {
                FIELDS.iter().any(|f| f.eq_ignore_ascii_case(n))
            });
            want
        });
        let dir = std::env::temp_dir()
            .join(format!("postling-hd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fmt = MailboxFormat::Maildir;
        assert_eq!(get(fmt, &dir, 5, 1), None);
        put(fmt, &dir, 5, 1, &c);
        assert_eq!(get(fmt, &dir, 5, 1).as_ref(), Some(&c));
        // The kept sort keys are what the whole header gives.
        let keys: Vec<(SortKey, bool)> = [
            SortKey::Arrival,
            SortKey::Size,
            SortKey::Subject,
            SortKey::From,
            SortKey::Parents,
            SortKey::DisplayTo,
            SortKey::Date,
        ]
        .map(|k| (k, false))
        .to_vec();
        assert_eq!(c.values(&keys), sort::values(&keys, head, 1234, 99));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
