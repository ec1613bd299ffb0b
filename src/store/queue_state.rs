//! What became of each recipient of a queued message: a small text file
//! `{queue}/state/{id}` beside the message in `{queue}/new/{id}`,
//! replaced atomically (and flushed) after each delivery attempt. A
//! message without one has had no attempt: every recipient is pending,
//! so queue files from before outbound delivery are sent like new ones.
//!
//! ```text
//! created 1764300000
//! attempts 2
//! next 1764300900
//! warned 0
//! deferred <bob@elsewhere.example> 451 4.7.1 greylisted, try again
//! delivered <carol@other.example> 250 2.0.0 queued as 4F2
//! ```

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// One recipient's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rcpt {
    /// Not tried yet.
    Pending,
    /// Tried; to be tried again.
    Deferred,
    /// Accepted by the receiving server.
    Delivered,
    /// Refused for good; the sender was told.
    Bounced,
}

impl Rcpt {
    fn word(self) -> &'static str {
        match self {
            Rcpt::Pending => "pending",
            Rcpt::Deferred => "deferred",
            Rcpt::Delivered => "delivered",
            Rcpt::Bounced => "bounced",
        }
    }

    fn from_word(w: &str) -> Option<Rcpt> {
        Some(match w {
            "pending" => Rcpt::Pending,
            "deferred" => Rcpt::Deferred,
            "delivered" => Rcpt::Delivered,
            "bounced" => Rcpt::Bounced,
            _ => return None,
        })
    }

    /// Still to be sent.
    pub fn open(self) -> bool {
        matches!(self, Rcpt::Pending | Rcpt::Deferred)
    }
}

/// A queued message: its envelope and where each recipient stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    /// The queue id (the file name).
    pub id: String,
    /// The envelope sender (empty for `<>`).
    pub from: String,
    /// Each recipient, its state and the last reply about it.
    pub rcpts: Vec<(String, Rcpt, String)>,
    /// When it was queued (seconds since the epoch).
    pub created: i64,
    /// Attempts made.
    pub attempts: u32,
    /// When the next attempt is due.
    pub next: i64,
    /// The sender was told of the delay.
    pub warned: bool,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The envelope at the head of a queue file: sender and recipients.
pub fn read_envelope(path: &Path) -> io::Result<(String, Vec<String>)> {
    use std::io::BufRead;
    let file = fs::File::open(path)?;
    let mut from = None;
    let mut rcpts = Vec::new();
    for line in io::BufReader::new(file).lines() {
        let line = line?;
        if line.is_empty() {
            break;
        }
        let addr = |rest: &str| {
            rest.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        };
        if let Some(rest) = line.strip_prefix("from ") {
            from = Some(addr(rest));
        } else if let Some(rest) = line.strip_prefix("to ") {
            rcpts.push(addr(rest));
        }
        if rcpts.len() > 10_000 {
            break;
        }
    }
    let from = from.ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidData, "no envelope")
    })?;
    Ok((from, rcpts))
}

fn state_path(queue: &Path, id: &str) -> PathBuf {
    queue.join("state").join(id)
}

/// The message `id` in `queue` as it stands.
pub fn read(queue: &Path, id: &str) -> io::Result<Queued> {
    let msg = queue.join("new").join(id);
    let (from, rcpts) = read_envelope(&msg)?;
    let created = fs::metadata(&msg)?
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64);
    let mut q = Queued {
        id: id.to_string(),
        from,
        rcpts: rcpts
            .into_iter()
            .map(|r| (r, Rcpt::Pending, String::new()))
            .collect(),
        created,
        attempts: 0,
        next: created,
        warned: false,
    };
    let text = match fs::read_to_string(state_path(queue, id)) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(q),
        Err(e) => return Err(e),
    };
    for line in text.lines() {
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        match word {
            "created" => q.created = rest.parse().unwrap_or(q.created),
            "attempts" => q.attempts = rest.parse().unwrap_or(0),
            "next" => q.next = rest.parse().unwrap_or(q.next),
            "warned" => q.warned = rest == "1",
            w => {
                let Some(state) = Rcpt::from_word(w) else {
                    continue;
                };
                let Some(open) = rest.strip_prefix('<') else {
                    continue;
                };
                let Some((addr, reply)) = open.split_once('>') else {
                    continue;
                };
                if let Some(r) = q.rcpts.iter_mut().find(|r| r.0 == addr) {
                    r.1 = state;
                    r.2 = reply.trim().to_string();
                }
            }
        }
    }
    Ok(q)
}

/// Writes `q`'s state, durably (atomic replace, flushed).
pub fn write(queue: &Path, q: &Queued) -> io::Result<()> {
    let (path, text) = state_text(queue, q)?;
    crate::util::fs::atomic_write(&path, text.as_bytes())
}

/// Writes `q`'s state atomically but unflushed: the caller flushes the
/// file system once for a batch of them.
pub fn write_unflushed(queue: &Path, q: &Queued) -> io::Result<()> {
    let (path, text) = state_text(queue, q)?;
    crate::util::fs::atomic_write_unflushed(&path, text.as_bytes())
}

fn state_text(queue: &Path, q: &Queued) -> io::Result<(PathBuf, String)> {
    crate::util::fs::create_dir_durable(&queue.join("state"))?;
    let mut text = format!(
        "created {}\nattempts {}\nnext {}\nwarned {}\n",
        q.created,
        q.attempts,
        q.next,
        u8::from(q.warned)
    );
    for (addr, state, reply) in &q.rcpts {
        // One line each: a reply's line ends would end it early.
        let reply: String = reply
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        text.push_str(&format!("{} <{addr}> {reply}\n", state.word()));
    }
    Ok((state_path(queue, &q.id), text))
}

/// Every queued message, oldest first (unreadable ones left out).
pub fn list(queue: &Path) -> io::Result<Vec<Queued>> {
    let dir = match fs::read_dir(queue.join("new")) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out: Vec<Queued> = dir
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| !name.starts_with('.'))
        .filter_map(|id| read(queue, &id).ok())
        .collect();
    out.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
    Ok(out)
}

/// Removes a queued message and its state; false if there was none.
pub fn delete(queue: &Path, id: &str) -> io::Result<bool> {
    let found = delete_unflushed(queue, id)?;
    if found {
        crate::util::fs::sync_dir(&queue.join("new"))?;
    }
    Ok(found)
}

/// [`delete`] without the flush (a lost removal only sends it again).
pub fn delete_unflushed(queue: &Path, id: &str) -> io::Result<bool> {
    if id.is_empty() || id.contains(['/', '\0']) || id.starts_with('.') {
        return Ok(false);
    }
    let msg = queue.join("new").join(id);
    match fs::remove_file(&msg) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    }
    let _ = fs::remove_file(state_path(queue, id));
    Ok(true)
}

/// `postling queue list`: a block per message.
pub fn describe(q: &Queued) -> String {
    let age = (now() - q.created).max(0);
    let from = if q.from.is_empty() {
        "<>".to_string()
    } else {
        format!("<{}>", q.from)
    };
    let mut s = format!(
        "{}  age {}  from {}  attempts {}  next {}\n",
        q.id,
        span(age),
        from,
        q.attempts,
        if q.rcpts.iter().any(|r| r.1.open()) {
            let wait = (q.next - now()).max(0);
            if wait == 0 {
                "now".to_string()
            } else {
                format!("in {}", span(wait))
            }
        } else {
            "-".to_string()
        }
    );
    for (addr, state, reply) in &q.rcpts {
        s.push_str(&format!("  <{addr}> {}", state.word()));
        if !reply.is_empty() {
            s.push_str(&format!(": {reply}"));
        }
        s.push('\n');
    }
    s
}

/// `1d2h`, `5m`, `40s`.
fn span(secs: i64) -> String {
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{secs}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h{m}m"),
        (d, h, _) => format!("{d}d{h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trip_and_old_files() {
        let q = std::env::temp_dir()
            .join(format!("postling-queue-{}", std::process::id()));
        fs::create_dir_all(q.join("new")).unwrap_or_else(|e| panic!("{e}"));
        fs::write(q.join("new/ID1"), "from <a@example.org>\nto <b@x.example>\nto <c@y.example>\n\nSubject: hi\n\nbody\n")
            .unwrap_or_else(|e| panic!("{e}"));
        // No state file: everyone pending, due now.
        let mut got = read(&q, "ID1").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got.from, "a@example.org");
        assert!(got.rcpts.iter().all(|r| r.1 == Rcpt::Pending));
        got.attempts = 2;
        got.next = 1_800_000_000;
        got.rcpts[0].1 = Rcpt::Deferred;
        got.rcpts[0].2 = "451 4.7.1 greylisted\r\nsecond line".into();
        got.rcpts[1].1 = Rcpt::Delivered;
        write(&q, &got).unwrap_or_else(|e| panic!("{e}"));
        let again = read(&q, "ID1").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again.attempts, 2);
        assert_eq!(again.next, 1_800_000_000);
        assert_eq!(again.rcpts[0].1, Rcpt::Deferred);
        assert_eq!(again.rcpts[0].2, "451 4.7.1 greylisted  second line");
        assert_eq!(again.rcpts[1].1, Rcpt::Delivered);
        assert_eq!(list(&q).unwrap_or_default().len(), 1);
        assert!(describe(&again).contains("<b@x.example> deferred: 451"));
        assert!(!delete(&q, "../x").unwrap_or(true));
        assert!(delete(&q, "ID1").unwrap_or(false));
        assert!(list(&q).unwrap_or_default().is_empty());
        let _ = fs::remove_dir_all(&q);
    }
}
