//! The header cache: for each message, the header fields SEARCH, SORT
//! and THREAD read (From, To, Cc, Bcc, Sender, Reply-To, Subject, Date,
//! Message-ID, References, In-Reply-To), each capped as the content
//! parsers cap it, with the message's size and INTERNALDATE. Kept in two
//! record files beside the folder: the fields (`postling-headers` in a
//! Maildir folder, `.NAME.headers` beside an mbox) and the sort keys
//! made from them (`postling-sortkeys`, `.NAME.sortkeys`), so a SORT or
//! THREAD over the whole folder reads a few dozen octets a message, not
//! its fields. Written the first time a helper reads the message and
//! rebuilt from the files when missing, so a search on those keys, a
//! SORT or a THREAD over a warm folder opens no message file. The
//! cached fields are given back as a header (`Name: value` lines),
//! which the usual parsers read as they would the message's own.

use std::borrow::Cow;
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::records;
use crate::config::MailboxFormat;
use crate::proto::imap::mime;
use crate::proto::imap::sort::{self, SortKey, Value, ValueRef};

// PLHD3: the fields alone (the sort keys moved to their own file).
const HEAD_MAGIC: records::Magic = b"PLHD3";
const KEYS_MAGIC: records::Magic = b"PLSK1";

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

/// Both records begin with the message's size and INTERNALDATE.
const NUMBERS: usize = 16;

/// What is kept of one message, read in place (records read together
/// share the buffers of a [`Batch`]). Either part may be missing when
/// only the other was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cached<'a> {
    /// The message's size as sent (CRLF).
    pub size: u64,
    /// Its INTERNALDATE (seconds since the epoch).
    pub internal: i64,
    /// The fields record: the numbers, then the fields as a header.
    head: Cow<'a, [u8]>,
    /// The sort keys record: the numbers, then the values of [`READY`]
    /// (a tag, then a number or a text).
    keys: Cow<'a, [u8]>,
}

impl Cached<'static> {
    /// What to keep of a message (as sent, CRLF) whose header is `head`.
    pub fn of(head: &[u8], size: u64, internal: i64) -> Cached<'static> {
        let numbers = |cap: usize| {
            let mut v = Vec::with_capacity(NUMBERS + cap);
            v.extend_from_slice(&size.to_le_bytes());
            v.extend_from_slice(&internal.to_le_bytes());
            v
        };
        let mut fields = numbers(head.len().min(4096));
        for (name, value) in mime::fields(head) {
            if FIELDS.iter().any(|f| f.eq_ignore_ascii_case(&name)) {
                fields.extend_from_slice(name.as_bytes());
                fields.extend_from_slice(b": ");
                fields.extend_from_slice(&value);
                fields.extend_from_slice(b"\r\n");
            }
        }
        fields.extend_from_slice(b"\r\n");
        let mut keys = numbers(128);
        for v in sort::values(&READY.map(|k| (k, false)), head, size, internal)
        {
            match v {
                Value::Number(n) => {
                    keys.push(0);
                    keys.extend_from_slice(&n.to_le_bytes());
                }
                Value::Text(t) => {
                    keys.push(1);
                    keys.extend_from_slice(&(t.len() as u32).to_le_bytes());
                    keys.extend_from_slice(t.as_bytes());
                }
            }
        }
        Cached {
            size,
            internal,
            head: Cow::Owned(fields),
            keys: Cow::Owned(keys),
        }
    }
}

impl<'a> Cached<'a> {
    /// Reads the records given (at least one); None if they are not
    /// both there and whole.
    fn decode(head: Option<&'a [u8]>, keys: Option<&'a [u8]>) -> Option<Self> {
        let first = head.or(keys)?;
        let size = u64::from_le_bytes(first.get(..8)?.try_into().ok()?);
        let internal = i64::from_le_bytes(first.get(8..16)?.try_into().ok()?);
        if head.or(keys)?.len() < NUMBERS
            || keys.is_some_and(|k| k.len() < NUMBERS)
        {
            return None;
        }
        Some(Cached {
            size,
            internal,
            head: Cow::Borrowed(head.unwrap_or_default()),
            keys: Cow::Borrowed(keys.unwrap_or_default()),
        })
    }

    /// The kept fields as a header, ending with the blank line (just
    /// the blank line when only the sort keys were read).
    pub fn head(&self) -> &[u8] {
        match self.head.get(NUMBERS..) {
            Some(h) if !h.is_empty() => h,
            _ => b"\r\n",
        }
    }

    /// The values of SORT or THREAD `keys`, as `sort::values` gives them
    /// for the whole message.
    pub fn values(&self, keys: &[(SortKey, bool)]) -> Vec<Value> {
        keys.iter()
            .map(|&(k, _)| match self.value(k) {
                ValueRef::Number(n) => Value::Number(n),
                ValueRef::Text(t) => {
                    Value::Text(String::from_utf8_lossy(t).into_owned())
                }
            })
            .collect()
    }

    /// The values of SORT `keys` encoded for ordering (`sort::encode`),
    /// read in place.
    pub fn encode(&self, keys: &[(SortKey, bool)], out: &mut Vec<u8>) {
        for &(k, reverse) in keys {
            sort::encode(self.value(k), reverse, out);
        }
    }

    fn value(&self, k: SortKey) -> ValueRef<'_> {
        match k {
            SortKey::Arrival => ValueRef::Number(self.internal),
            SortKey::Size => ValueRef::Number(self.size as i64),
            k => READY
                .iter()
                .position(|&r| r == k)
                .and_then(|i| self.ready(i))
                .unwrap_or(ValueRef::Number(0)),
        }
    }

    /// The `i`th kept value, read from the record.
    fn ready(&self, i: usize) -> Option<ValueRef<'_>> {
        let b: &[u8] = &self.keys;
        let mut at = NUMBERS;
        for _ in 0..i {
            at += match b.get(at)? {
                0 => 9,
                _ => 5 + u32_at(b, at + 1)?,
            };
        }
        match b.get(at)? {
            0 => Some(ValueRef::Number(i64::from_le_bytes(
                b.get(at + 1..at + 9)?.try_into().ok()?,
            ))),
            _ => {
                let len = u32_at(b, at + 1)?;
                b.get(at + 5..at + 5 + len).map(ValueRef::Text)
            }
        }
    }
}

/// A little-endian u32 at `at`, as a length.
fn u32_at(b: &[u8], at: usize) -> Option<usize> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?) as usize)
}

/// The fields file of the folder at `dir`.
pub fn file(fmt: MailboxFormat, dir: &Path) -> PathBuf {
    beside(fmt, dir, "postling-headers", "headers")
}

/// The sort keys file of the folder at `dir`.
pub fn keys_file(fmt: MailboxFormat, dir: &Path) -> PathBuf {
    beside(fmt, dir, "postling-sortkeys", "sortkeys")
}

fn beside(
    fmt: MailboxFormat,
    dir: &Path,
    maildir: &str,
    mbox: &str,
) -> PathBuf {
    match fmt {
        MailboxFormat::Maildir => dir.join(maildir),
        MailboxFormat::Mbox => {
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            dir.with_file_name(format!(".{name}.{mbox}"))
        }
    }
}

/// Which parts of the records a batch reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parts {
    /// The fields (a search on header keys).
    Fields,
    /// The sort keys (a SORT or THREAD whose search reads no header).
    Keys,
    /// Both.
    Both,
}

type Place = Option<Range<usize>>;

/// Records of a run of messages read together into buffers kept from
/// one batch to the next, so a folder's worth costs a few reads and no
/// allocation per message.
#[derive(Default)]
pub struct Batch {
    fields: Vec<u8>,
    keys: Vec<u8>,
    /// Per UID read, where its fields and its sort keys lie.
    places: Vec<(Place, Place)>,
}

impl Batch {
    /// At most this much of each file is read at a time.
    const BUDGET: usize = 1 << 20;

    /// Reads what is kept of the first of `uids`, as many as the budget
    /// allows (at least one); returns how many.
    pub fn read(
        &mut self,
        fmt: MailboxFormat,
        dir: &Path,
        validity: u32,
        uids: &[u32],
        parts: Parts,
    ) -> usize {
        let read = |want: bool, path: PathBuf, magic, buf: &mut Vec<u8>| {
            if want {
                records::get_many(
                    &path,
                    magic,
                    validity,
                    uids,
                    Self::BUDGET,
                    buf,
                )
            } else {
                buf.clear();
                vec![None; uids.len()]
            }
        };
        let fields = read(
            parts != Parts::Keys,
            file(fmt, dir),
            HEAD_MAGIC,
            &mut self.fields,
        );
        let keys = read(
            parts != Parts::Fields,
            keys_file(fmt, dir),
            KEYS_MAGIC,
            &mut self.keys,
        );
        // zip stops at the shorter: what both reads covered.
        self.places = fields
            .into_iter()
            .zip(keys)
            .map(|(f, k)| match parts {
                Parts::Fields => (f, None),
                Parts::Keys => (None, k),
                // Both or nothing: a message with one part is read again.
                Parts::Both if f.is_some() && k.is_some() => (f, k),
                Parts::Both => (None, None),
            })
            .collect();
        self.places.len()
    }

    /// Gives back memory a large batch took, keeping the usual size.
    pub fn trim(&mut self) {
        for buf in [&mut self.fields, &mut self.keys] {
            if buf.capacity() > Self::BUDGET {
                *buf = Vec::new();
            }
        }
    }

    /// What is kept of the `i`th UID read.
    pub fn get(&self, i: usize) -> Option<Cached<'_>> {
        let (f, k) = self.places.get(i)?;
        if f.is_none() && k.is_none() {
            return None;
        }
        Cached::decode(
            f.clone().and_then(|r| self.fields.get(r)),
            k.clone().and_then(|r| self.keys.get(r)),
        )
    }
}

/// What is kept of `uid`, if anything (both parts).
pub fn get(
    fmt: MailboxFormat,
    dir: &Path,
    validity: u32,
    uid: u32,
) -> Option<Cached<'static>> {
    let head = records::get(&file(fmt, dir), HEAD_MAGIC, validity, uid)?;
    let keys = records::get(&keys_file(fmt, dir), KEYS_MAGIC, validity, uid)?;
    let c = Cached::decode(Some(&head), Some(&keys))?;
    Some(Cached {
        size: c.size,
        internal: c.internal,
        head: Cow::Owned(head.clone()),
        keys: Cow::Owned(keys.clone()),
    })
}

/// True if both parts are kept of `uid` (nothing is read but offsets).
pub fn has(fmt: MailboxFormat, dir: &Path, validity: u32, uid: u32) -> bool {
    records::has(&file(fmt, dir), HEAD_MAGIC, validity, uid)
        && records::has(&keys_file(fmt, dir), KEYS_MAGIC, validity, uid)
}

/// Keeps what is kept of `uid` (each part unless it is there already).
pub fn put(
    fmt: MailboxFormat,
    dir: &Path,
    validity: u32,
    uid: u32,
    cached: &Cached<'_>,
) {
    records::put(&file(fmt, dir), HEAD_MAGIC, validity, uid, &cached.head);
    records::put(
        &keys_file(fmt, dir),
        KEYS_MAGIC,
        validity,
        uid,
        &cached.keys,
    );
}

/// Drops records of messages no longer in the folder, when they are
/// over half of the file.
pub fn compact(fmt: MailboxFormat, dir: &Path, validity: u32, live: &[u32]) {
    records::compact(&file(fmt, dir), HEAD_MAGIC, validity, live);
    records::compact(&keys_file(fmt, dir), KEYS_MAGIC, validity, live);
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

    #[test]
    fn a_batch_reads_the_parts_asked_for_and_both_or_nothing() {
        let dir = std::env::temp_dir()
            .join(format!("postling-hb-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fmt = MailboxFormat::Maildir;
        let one = Cached::of(b"From: a@x\r\nSubject: one\r\n\r\n", 10, 1);
        let two = Cached::of(b"Subject: Re: two\r\n\r\n", 20, 2);
        put(fmt, &dir, 7, 1, &one);
        put(fmt, &dir, 7, 2, &two);
        // Uid 3 has sort keys but lost its fields (a crash between).
        let three = Cached::of(b"Subject: three\r\n\r\n", 30, 3);
        records::put(&keys_file(fmt, &dir), KEYS_MAGIC, 7, 3, &three.keys);
        let subject = [(SortKey::Subject, false), (SortKey::Size, false)];
        let mut b = Batch::default();
        b.read(fmt, &dir, 7, &[2, 9, 1, 3], Parts::Keys);
        assert_eq!(b.get(0).unwrap().values(&subject), two.values(&subject));
        assert_eq!(b.get(0).unwrap().head(), b"\r\n");
        assert!(b.get(1).is_none());
        assert_eq!(b.get(3).unwrap().values(&subject), three.values(&subject));
        b.read(fmt, &dir, 7, &[2, 9, 1, 3], Parts::Fields);
        assert_eq!(b.get(2).unwrap().head(), one.head());
        assert!(b.get(3).is_none());
        b.read(fmt, &dir, 7, &[2, 9, 1, 3], Parts::Both);
        assert_eq!(b.get(2).as_ref(), Some(&one));
        assert!(b.get(3).is_none(), "one part alone is read again");
        assert!(has(fmt, &dir, 7, 1) && !has(fmt, &dir, 7, 3));
        // Headers a stranger made huge are read a few at a time.
        // (Each field is capped at 64 KiB; all of them near that.)
        let big: String = FIELDS
            .iter()
            .map(|f| format!("{f}: {}\r\n", "x".repeat(60 * 1024)))
            .chain(["\r\n".to_string()])
            .collect();
        for uid in 10..14 {
            put(fmt, &dir, 7, uid, &Cached::of(big.as_bytes(), 1, 1));
        }
        assert_eq!(b.read(fmt, &dir, 7, &[10, 11, 12, 13], Parts::Fields), 1);
        assert_eq!(b.read(fmt, &dir, 7, &[1, 2, 10, 11], Parts::Keys), 4);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
