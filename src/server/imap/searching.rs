//! SEARCH, SORT and THREAD on the mailbox helpers: the candidates read
//! a slice at a time (header cache first, files where it has nothing),
//! matched, and put in order off the loop.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::config::MailboxFormat;
use crate::proto::imap::matcher::{self, Content as Text, Facts};
use crate::proto::imap::mime;
use crate::proto::imap::request::Candidate;
use crate::proto::imap::search::Key;
use crate::proto::imap::{arrange, sort};
use crate::server::imap::fair_pool::Turn;
use crate::server::imap::folder_io::read_message;
use crate::store::{headers, mailfolder};

/// A long search's slice: after this long it hands back the rest, so
/// another user's command goes next.
pub(in crate::server) const SLICE: Duration = Duration::from_millis(5);

/// A search's candidates with their files' names, the names kept in
/// one string: the loop copies a folder's worth in one allocation, not
/// one a message.
#[derive(Default)]
pub struct Candidates {
    list: Vec<(Candidate, std::ops::Range<usize>)>,
    names: String,
}

impl Candidates {
    /// Room for `n` candidates whose names are about `name_len` long.
    pub fn with_capacity(n: usize, name_len: usize) -> Candidates {
        Candidates {
            list: Vec::with_capacity(n),
            names: String::with_capacity(n * name_len),
        }
    }

    pub fn push(&mut self, c: Candidate, file: &str) {
        let start = self.names.len();
        self.names.push_str(file);
        self.list.push((c, start..self.names.len()));
    }

    fn len(&self) -> usize {
        self.list.len()
    }

    /// The candidates from the `from`th on, with their files.
    fn from(&self, from: usize) -> impl Iterator<Item = (&Candidate, &str)> {
        self.list[from.min(self.list.len())..]
            .iter()
            .map(|(c, at)| (c, &self.names[at.clone()]))
    }

    /// The UIDs of the candidates `range` covers.
    fn uids(&self, range: std::ops::Range<usize>) -> Vec<u32> {
        self.list[range].iter().map(|(c, _)| c.uid).collect()
    }
}

/// A SEARCH whose keys look inside messages.
pub struct SearchJob {
    /// The folder's Maildir.
    pub dir: PathBuf,
    /// The keys.
    pub key: Key,
    /// Each candidate and its file.
    pub msgs: Candidates,
    /// Highest sequence number.
    pub max_seq: u32,
    /// Highest UID.
    pub max_uid: u32,
    /// The folder's keyword names.
    pub keywords: Vec<String>,
    /// SORT or THREAD: how the matches are put in order.
    pub sort: Option<crate::proto::imap::arrange::Arrange>,
    /// CONTEXT=SEARCH: each candidate's content answers instead.
    pub answers: bool,
    /// The keys look inside messages (else no file is read).
    pub read: bool,
    /// The folder's UIDVALIDITY (the header cache's key).
    pub validity: u32,
    /// Progress, kept between slices.
    pub progress: SearchProgress,
}

/// How far a search has gone, and what it found so far.
#[derive(Default)]
pub struct SearchProgress {
    /// The next candidate to read.
    next: usize,
    /// Matches (UID, sequence number) with their THREAD values.
    hits: Vec<(u32, u32, Vec<crate::proto::imap::sort::Value>)>,
    /// SORT's matches, their values encoded.
    keyed: crate::proto::imap::sort::Keyed,
    /// CONTEXT=SEARCH answers.
    answers: Vec<(u32, u64)>,
}

/// Reads candidates from `from` on (one message in memory at a time),
/// handing each to `each` with what the keys see of it, until they are
/// all read or `until` has passed; returns where it stopped. When the
/// keys (and SORT or THREAD) read no more than the header cache keeps,
/// a cached message is handed over as its cached fields and its file is
/// not opened; a message read is cached for next time. A message set
/// aside (see `set_aside`) is handed over as an empty one.
fn each_candidate(
    fmt: MailboxFormat,
    job: &SearchJob,
    from: usize,
    until: Instant,
    mut each: impl FnMut(u32, &Facts<'_>, Text<'_>, Option<&headers::Cached<'_>>),
) -> usize {
    let aside = crate::server::imap::set_aside::load(fmt, &job.dir);
    let cached_enough = matcher::header_only(&job.key, &headers::FIELDS);
    // A SORT or THREAD whose search reads no header needs only the sort
    // keys: a few dozen octets a message.
    let parts = match (matcher::needs_content(&job.key), &job.sort) {
        (false, _) => headers::Parts::Keys,
        (true, Some(_)) => headers::Parts::Both,
        (true, None) => headers::Parts::Fields,
    };
    // The cache is read a batch of candidates at a time, into buffers
    // each helper keeps from one search to the next.
    const BATCH: usize = 256;
    thread_local! {
        static BATCH_BUFFERS: std::cell::RefCell<headers::Batch> = Default::default();
    }
    let mut batch = BATCH_BUFFERS.take();
    let (mut in_batch, mut batch_len) = (0, 0);
    let mut next = from;
    for (c, file) in job.msgs.from(from) {
        // The clock is read every few candidates: each is quick.
        if next > from
            && (next - from).is_multiple_of(16)
            && Instant::now() >= until
        {
            break;
        }
        if cached_enough && job.read && in_batch == batch_len {
            let end = (next + BATCH).min(job.msgs.len());
            let uids = job.msgs.uids(next..end);
            let read = batch.read(fmt, &job.dir, job.validity, &uids, parts);
            (in_batch, batch_len) = (0, read);
        }
        next += 1;
        let known = (in_batch < batch_len)
            .then(|| batch.get(in_batch))
            .flatten();
        in_batch += 1;
        let facts = Facts {
            seq: c.seq,
            max_seq: job.max_seq,
            uid: c.uid,
            max_uid: job.max_uid,
            flags: c.flags,
            recent: c.recent,
            modseq: c.modseq,
            keywords: &job.keywords,
        };
        if !job.read {
            // Flags and numbers only: nothing to read or guard.
            each(c.uid, &facts, Text::whole(b"\r\n", 0), None);
            continue;
        }
        let read;
        let (text, empty) = match &known {
            Some(k) => (
                Text {
                    msg: k.head(),
                    internal: k.internal,
                    size: k.size,
                },
                Text::whole(b"\r\n", k.internal),
            ),
            None => {
                let Ok((raw, internal)) = read_message(fmt, &job.dir, file)
                else {
                    continue;
                };
                read = mailfolder::to_crlf(&raw);
                (Text::whole(&read, internal), Text::whole(b"\r\n", internal))
            }
        };
        if aside.contains(&c.uid) {
            each(c.uid, &facts, empty, None);
            continue;
        }
        // A search that reads the files fills the cache for the next one,
        // once per message (the record is made under the guard: a header
        // that makes a parser panic counts against its message).
        let fill = known.is_none()
            && (cached_enough
                || !headers::has(fmt, &job.dir, job.validity, c.uid));
        let done = crate::server::imap::set_aside::guard(
            fmt,
            &job.dir,
            c.uid,
            || {
                let made = fill.then(|| {
                    let head = mime::split(text.msg).0;
                    let kept =
                        headers::Cached::of(head, text.size, text.internal);
                    headers::put(fmt, &job.dir, job.validity, c.uid, &kept);
                    kept
                });
                each(c.uid, &facts, text, known.as_ref().or(made.as_ref()))
            },
        );
        if done.is_none() {
            each(c.uid, &facts, empty, None);
        }
    }
    batch.trim();
    BATCH_BUFFERS.set(batch);
    next
}

/// A slice of a SEARCH (SORT, THREAD, CONTEXT=SEARCH answers): the
/// candidates a [`SLICE`] allows, then the rest handed back, or the
/// answer once all are read. Ordering for SORT and THREAD is done here
/// too, off the loop.
pub(in crate::server) fn search_slice(
    fmt: MailboxFormat,
    mut job: Box<SearchJob>,
) -> Turn<Box<SearchJob>, Found> {
    let until = Instant::now() + SLICE;
    let from = job.progress.next;
    // SORT and THREAD usually match all: room for them in one go.
    let (room, sorting) = match &job.sort {
        Some(how) if how.thread.is_none() => {
            (job.msgs.len().saturating_sub(from), true)
        }
        Some(_) => (job.msgs.len().saturating_sub(from), false),
        None => (0, false),
    };
    let mut hits = Vec::with_capacity(if sorting { 0 } else { room });
    let mut keyed = sort::Keyed::with_capacity(if sorting { room } else { 0 });
    let mut answers = Vec::new();
    let next =
        each_candidate(fmt, &job, from, until, |uid, facts, content, kept| {
            if job.answers {
                answers.push((
                    uid,
                    matcher::content_answers(&job.key, facts, content),
                ));
                return;
            }
            if !matcher::matches(&job.key, facts, Some(content)) {
                return;
            }
            let Some(how) = &job.sort else {
                hits.push((uid, facts.seq, Vec::new()));
                return;
            };
            // Kept ready in the header cache, else parsed now.
            let parsed = || {
                sort::values(
                    &how.criteria,
                    mime::split(content.msg).0,
                    content.size,
                    content.internal,
                )
            };
            match (sorting, kept) {
                (true, Some(kept)) => keyed.push(uid, facts.seq, |out| {
                    kept.encode(&how.criteria, out)
                }),
                (true, None) => {
                    keyed.push_values(uid, facts.seq, &how.criteria, &parsed())
                }
                (false, Some(kept)) => {
                    hits.push((uid, facts.seq, kept.values(&how.criteria)))
                }
                (false, None) => hits.push((uid, facts.seq, parsed())),
            }
        });
    job.progress.next = next;
    if job.progress.hits.is_empty() {
        job.progress.hits = hits;
    } else {
        job.progress.hits.append(&mut hits);
    }
    job.progress.keyed.append(keyed);
    job.progress.answers.append(&mut answers);
    if next < job.msgs.len() {
        return Turn::Again(job);
    }
    let progress = std::mem::take(&mut job.progress);
    Turn::Done(match (&job.sort, job.answers) {
        (_, true) => Found::Answers(progress.answers),
        (None, false) => {
            Found::Uids(progress.hits.into_iter().map(|(u, ..)| u).collect())
        }
        (Some(_), false) if sorting => {
            Found::Sorted(arrange::Arranged::Sorted(progress.keyed.order()))
        }
        (Some(how), false) => {
            Found::Sorted(arrange::arrange(how, progress.hits))
        }
    })
}

/// What a whole search found.
pub enum Found {
    /// SEARCH: the matches' UIDs.
    Uids(Vec<u32>),
    /// CONTEXT=SEARCH: each candidate's content answers.
    Answers(Vec<(u32, u64)>),
    /// SORT or THREAD: the matches in order.
    Sorted(arrange::Arranged),
}
