//! The queue helper thread: the disk work of sending mail out. It finds
//! the messages due, reads what an attempt needs to know of each, and
//! after an attempt writes where every recipient stands (durably),
//! removes what is done and writes the notices senders are owed. One
//! thread, so two writes of one message's state never race.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mio::Waker;

use crate::config::outbound::Outbound;
use crate::outbound::dsn::{self, Entry, Kind, Report};
use crate::outbound::settle;
use crate::server::base::pool::Pool;
use crate::store::queue_state::{self, Queued};

/// Log lines keep the target they had before the file moved into its
/// folder: a log's format is an interface (filters, RUST_LOG).
const LOG_TARGET: &str = "postling::server::queue_work";

/// Messages handed to the loop per scan, at most.
const SCAN_LIMIT: usize = 500;

/// Work for the queue helper.
pub enum QueueJob {
    /// List the messages due now (all of them, with `everything`),
    /// leaving out those already being sent.
    Scan {
        /// The queue folder.
        queue: PathBuf,
        /// Being sent now.
        busy: HashSet<String>,
        /// A flush: every message is due.
        everything: bool,
    },
    /// Read these messages just queued (due at once), without listing
    /// the whole queue.
    Fresh {
        /// The queue folder.
        queue: PathBuf,
        /// Their ids.
        ids: Vec<String>,
    },
    /// Record an attempt.
    Record(Box<Attempted>),
    /// Count the queue, for `status` and `/metrics`.
    Count {
        /// The queue folder.
        queue: PathBuf,
    },
}

/// A message ready to send.
#[derive(Debug, Clone)]
pub struct Ready {
    /// Its envelope and state.
    pub queued: Queued,
    /// The queue file.
    pub path: PathBuf,
    /// Where the message starts in it (after the envelope).
    pub offset: u64,
    /// Its size on the wire (CRLF), for SIZE.
    pub size: u64,
    /// It has octets over 127.
    pub eight_bit: bool,
    /// Its header or envelope needs SMTPUTF8.
    pub utf8: bool,
}

/// An attempt's results, to record.
#[derive(Debug)]
pub struct Attempted {
    /// The queue folder.
    pub queue: PathBuf,
    /// The message, each recipient carrying its new state.
    pub queued: Queued,
    /// The queue file.
    pub path: PathBuf,
    /// Recipients (indexes) refused for good in this attempt.
    pub refused: Vec<usize>,
    /// The server each recipient's reply came from, if one did.
    pub remotes: Vec<Option<String>>,
    /// The policy.
    pub policy: Arc<Outbound>,
    /// Our host name, for notices.
    pub hostname: String,
    /// Who hears of a notice that could not be delivered.
    pub postmaster: String,
}

/// What the helper did.
pub enum QueueDone {
    /// Messages due, and when the next one not yet due is (epoch
    /// seconds).
    Due {
        /// A whole-queue scan (not just fresh messages).
        full: bool,
        /// Ready to send.
        ready: Vec<Ready>,
        /// More were due than handed over.
        more: bool,
        /// The next due time of those left.
        next: Option<i64>,
    },
    /// The queue's size and its oldest message's creation (epoch
    /// seconds); None if it could not be read.
    Counted(Option<(usize, Option<i64>)>),
    /// An attempt recorded.
    Recorded {
        /// The message.
        id: String,
        /// Notices to deliver (envelope sender `<>`), and to whom.
        notices: Vec<(String, Vec<u8>)>,
        /// When it is due again, if it is still queued.
        next: Option<i64>,
    },
}

/// The queue helper.
pub type QueueHelper = Pool<QueueJob, QueueDone>;

/// Starts it.
pub fn start(waker: Arc<Waker>) -> io::Result<QueueHelper> {
    Pool::start("queue", 1, BATCH, waker, run_batch)
}

/// Attempts recorded together share one flush of the file system (as
/// the durability helpers' deliveries do): on an SD card that is one
/// 10 ms flush for a batch instead of two a message.
const BATCH: usize = 64;

fn run_batch(jobs: Vec<QueueJob>) -> Vec<QueueDone> {
    let mut flush: Option<PathBuf> = None;
    let done: Vec<QueueDone> = jobs
        .into_iter()
        .map(|job| {
            if let QueueJob::Record(a) = &job {
                flush = Some(a.queue.clone());
            }
            guarded_run(job)
        })
        .collect();
    if let Some(queue) = flush
        && let Err(e) = crate::util::fs::sync_filesystem(&queue)
    {
        // What was recorded may be lost: sent again, at worst twice.
        log::error!(target: LOG_TARGET, "queue: flushing {}: {e}", queue.display());
    }
    done
}

/// [`run`], a panic inside failing only this job: an attempt stays as
/// it was on disk and is deferred (tried again after the first retry
/// wait), a scan finds nothing this time and runs again in a minute.
fn guarded_run(job: QueueJob) -> QueueDone {
    let later = now() + 60;
    let (what, failed) = match &job {
        QueueJob::Record(a) => (
            format!("queue: recording the attempt at id={}", a.queued.id),
            QueueDone::Recorded {
                id: a.queued.id.clone(),
                notices: Vec::new(),
                next: Some(
                    now()
                        + a.policy.retry.first().copied().unwrap_or(60) as i64,
                ),
            },
        ),
        QueueJob::Scan { .. } => (
            "queue: scan".to_string(),
            QueueDone::Due {
                full: true,
                ready: Vec::new(),
                more: false,
                next: Some(later),
            },
        ),
        QueueJob::Count { .. } => {
            ("queue: counting".to_string(), QueueDone::Counted(None))
        }
        QueueJob::Fresh { ids, .. } => (
            format!("queue: reading new messages {ids:?}"),
            QueueDone::Due {
                full: false,
                ready: Vec::new(),
                more: false,
                next: Some(later),
            },
        ),
    };
    crate::util::contain::guarded(|| what, || run(job)).unwrap_or(failed)
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn run(job: QueueJob) -> QueueDone {
    match job {
        QueueJob::Scan {
            queue,
            busy,
            everything,
        } => scan(&queue, &busy, everything),
        QueueJob::Fresh { queue, ids } => fresh(&queue, &ids),
        QueueJob::Count { queue } => count(&queue),
        QueueJob::Record(a) => record(*a),
    }
}

fn count(queue: &std::path::Path) -> QueueDone {
    let counted = queue_state::list(queue).map(|all| {
        let oldest = all.iter().map(|q| q.created).min();
        (all.len(), oldest)
    });
    if let Err(e) = &counted {
        log::error!(target: LOG_TARGET, "queue: listing {}: {e}", queue.display());
    }
    QueueDone::Counted(counted.ok())
}

fn fresh(queue: &std::path::Path, ids: &[String]) -> QueueDone {
    let ready = ids
        .iter()
        .filter_map(|id| match queue_state::read(queue, id) {
            Ok(q) => ready(queue, q),
            Err(e) => {
                log::error!(target: LOG_TARGET, "queue: reading {id}: {e}");
                None
            }
        })
        .collect();
    QueueDone::Due {
        full: false,
        ready,
        more: false,
        next: None,
    }
}

fn scan(
    queue: &std::path::Path,
    busy: &HashSet<String>,
    everything: bool,
) -> QueueDone {
    let now = now();
    let mut ready = Vec::new();
    let mut next: Option<i64> = None;
    let mut more = false;
    let all = queue_state::list(queue).unwrap_or_else(|e| {
        log::error!(target: LOG_TARGET, "queue: listing {}: {e}", queue.display());
        Vec::new()
    });
    for q in all {
        if busy.contains(&q.id) {
            continue;
        }
        if !q.rcpts.iter().any(|r| r.1.open()) {
            // Done with, but its removal was lost (a crash): remove it.
            let _ = queue_state::delete(queue, &q.id);
            continue;
        }
        if !everything && q.next > now {
            next = Some(next.map_or(q.next, |n| n.min(q.next)));
            continue;
        }
        if ready.len() >= SCAN_LIMIT {
            more = true;
            continue;
        }
        ready.extend(self::ready(queue, q));
    }
    QueueDone::Due {
        full: true,
        ready,
        more,
        next,
    }
}

/// What an attempt needs to know of a queued message.
fn ready(queue: &std::path::Path, q: Queued) -> Option<Ready> {
    let path = queue.join("new").join(&q.id);
    match inspect(&path) {
        Ok((offset, size, eight_bit)) => {
            // Only an address needs SMTPUTF8 for sure: 8-bit header
            // octets go as 8BITMIME, as Postfix sends them.
            let utf8 =
                !q.from.is_ascii() || q.rcpts.iter().any(|r| !r.0.is_ascii());
            Some(Ready {
                queued: q,
                path,
                offset,
                size,
                eight_bit,
                utf8,
            })
        }
        Err(e) => {
            log::error!(target: LOG_TARGET, "queue: reading {}: {e}", path.display());
            None
        }
    }
}

/// Where the message starts, its wire size, and whether it has 8-bit
/// octets. A `Return-Path` in front (queue files
/// from before it was left out) is skipped: relays do not send it.
fn inspect(path: &std::path::Path) -> io::Result<(u64, u64, bool)> {
    let mut r = BufReader::new(File::open(path)?);
    let mut offset = 0u64;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = r.read_until(b'\n', &mut line)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "no message",
            ));
        }
        offset += n as u64;
        if line == b"\n" {
            break;
        }
    }
    let (mut size, mut eight_bit) = (0u64, false);
    let mut first = true;
    loop {
        line.clear();
        let n = r.read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        if first
            && line.len() >= 12
            && line[..12].eq_ignore_ascii_case(b"Return-Path:")
        {
            offset += n as u64;
            first = false;
            continue;
        }
        first = false;
        eight_bit |= line.iter().any(|&b| b >= 0x80);
        // CRLF on the wire.
        size += n as u64 + u64::from(line.ends_with(b"\n"));
    }
    Ok((offset, size, eight_bit))
}

fn record(a: Attempted) -> QueueDone {
    let Attempted {
        queue,
        mut queued,
        path,
        refused,
        remotes,
        policy,
        hostname,
        postmaster,
    } = a;
    if !path.exists() {
        // Deleted meanwhile (`postling queue delete`): nothing to record.
        return QueueDone::Recorded {
            id: queued.id,
            notices: Vec::new(),
            next: None,
        };
    }
    crate::util::fault::probe("queue", queued.from.as_bytes());
    let now = now();
    let settled = settle::settle(&mut queued, &refused, now, &policy);
    let id = queued.id.clone();
    // Read before a finished message is removed.
    let owed = !settled.failed.is_empty() || !settled.delayed.is_empty();
    let headers = if owed { read_header(&path) } else { Vec::new() };
    // Flushed with the batch, before the loop hears of it.
    let written = if settled.done {
        queue_state::delete_unflushed(&queue, &id).map(|_| ())
    } else {
        queue_state::write_unflushed(&queue, &queued)
    };
    if let Err(e) = written {
        // The message stays as it was: sent again, at worst twice.
        log::error!(target: LOG_TARGET, "queue: recording {id}: {e}");
    }
    let mut notices = Vec::new();
    if owed {
        let arrival =
            UNIX_EPOCH + Duration::from_secs(queued.created.max(0) as u64);
        for (kind, list) in [
            (Kind::Failed, &settled.failed),
            (Kind::Delayed, &settled.delayed),
        ] {
            if list.is_empty() {
                continue;
            }
            // A notice that failed (RFC 3464 2.2 calls it a double
            // bounce) never goes back to `<>`: to the postmaster with
            // notify_double_bounce, else only to the log.
            let to = if queued.from.is_empty() {
                postmaster.clone()
            } else {
                queued.from.clone()
            };
            if to.is_empty() {
                for &i in list.iter() {
                    log::warn!(target: LOG_TARGET,
                        "queue: {id}: double bounce, not mailed: to={} reply={}",
                        crate::util::logsafe::Quoted(&queued.rcpts[i].0),
                        crate::util::logsafe::Quoted(&queued.rcpts[i].2),
                    );
                }
                continue;
            }
            let entries: Vec<Entry> = list
                .iter()
                .map(|&i| Entry {
                    rcpt: queued.rcpts[i].0.clone(),
                    reply: queued.rcpts[i].2.clone(),
                    remote: remotes.get(i).cloned().flatten(),
                })
                .collect();
            let report = Report {
                kind,
                hostname: &hostname,
                queue_id: &id,
                to: &to,
                arrival,
                now: SystemTime::now(),
                retry_until: Some(
                    arrival + Duration::from_secs(policy.max_age),
                ),
                entries: &entries,
                headers: &headers,
            };
            notices.push((to.clone(), dsn::compose(&report)));
        }
    }
    QueueDone::Recorded {
        id,
        notices,
        next: (!settled.done).then_some(queued.next),
    }
}

/// The message's header block (after the envelope), at most 64 KiB.
fn read_header(path: &std::path::Path) -> Vec<u8> {
    let Ok(file) = File::open(path) else {
        return Vec::new();
    };
    let mut head = Vec::new();
    let _ = file.take(256 * 1024).read_to_end(&mut head);
    let start =
        memchr::memmem::find(&head, b"\n\n").map_or(head.len(), |i| i + 2);
    let body = &head[start..];
    let end =
        memchr::memmem::find(body, b"\n\n").map_or(body.len(), |i| i + 1);
    body[..end.min(64 * 1024)].to_vec()
}
