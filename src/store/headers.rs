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

/// What is kept of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cached {
    /// The message's size as sent (CRLF).
    pub size: u64,
    /// Its INTERNALDATE (seconds since the epoch).
    pub internal: i64,
    /// The kept fields as a header, ending with the blank line.
    pub head: Vec<u8>,
    /// The values of [`READY`], in its order.
    ready: Vec<Value>,
}

impl Cached {
    /// What to keep of a message (as sent, CRLF) whose header is `head`.
    pub fn of(head: &[u8], size: u64, internal: i64) -> Cached {
        let mut out = Vec::new();
        for (name, value) in mime::fields(head) {
            if FIELDS.iter().any(|f| f.eq_ignore_ascii_case(&name)) {
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(b": ");
                out.extend_from_slice(&value);
                out.extend_from_slice(b"\r\n");
            }
        }
        out.extend_from_slice(b"\r\n");
        let keys = READY.map(|k| (k, false));
        Cached {
            size,
            internal,
            ready: sort::values(&keys, head, size, internal),
            head: out,
        }
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
                    .and_then(|i| self.ready.get(i).cloned())
                    .unwrap_or(Value::Number(0)),
            })
            .collect()
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + 2 * self.head.len());
        out.extend_from_slice(&self.size.to_le_bytes());
        out.extend_from_slice(&self.internal.to_le_bytes());
        out.extend_from_slice(&(self.head.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.head);
        for v in &self.ready {
            match v {
                Value::Number(n) => {
                    out.push(0);
                    out.extend_from_slice(&n.to_le_bytes());
                }
                Value::Text(t) => {
                    out.push(1);
                    out.extend_from_slice(&(t.len() as u32).to_le_bytes());
                    out.extend_from_slice(t.as_bytes());
                }
            }
        }
        out
    }

    fn decode(bytes: &[u8]) -> Option<Cached> {
        let u32_at = |at: usize| -> Option<usize> {
            Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?)
                as usize)
        };
        let size = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
        let internal = i64::from_le_bytes(bytes.get(8..16)?.try_into().ok()?);
        let head_len = u32_at(16)?;
        let head = bytes.get(20..20 + head_len)?.to_vec();
        let mut at = 20 + head_len;
        let mut ready = Vec::with_capacity(READY.len());
        while ready.len() < READY.len() {
            match bytes.get(at)? {
                0 => {
                    let n = i64::from_le_bytes(
                        bytes.get(at + 1..at + 9)?.try_into().ok()?,
                    );
                    ready.push(Value::Number(n));
                    at += 9;
                }
                _ => {
                    let n = u32_at(at + 1)?;
                    let t =
                        std::str::from_utf8(bytes.get(at + 5..at + 5 + n)?)
                            .ok()?;
                    ready.push(Value::Text(t.to_string()));
                    at += 5 + n;
                }
            }
        }
        Some(Cached {
            size,
            internal,
            head,
            ready,
        })
    }
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
    Cached::decode(&records::get(&file(fmt, dir), MAGIC, validity, uid)?)
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
        .map(|r| r.and_then(|b| Cached::decode(&b)))
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
    records::put(&file(fmt, dir), MAGIC, validity, uid, &cached.encode())
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
            c.head,
            b"From: A <a@x>\r\nSubject: Re: hi there\r\nReferences: <1@x> <2@x>\r\n\r\n"
        );
        assert_eq!(mime::fields(&c.head), {
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
