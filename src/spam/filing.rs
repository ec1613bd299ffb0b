//! The filter at delivery, on a helper thread: a stranger's message is
//! read once (capped), tokenized once, and scored against the words of
//! each recipient that has any; a recipient whose filter calls it spam
//! gets their copy filed into Junk with `X-Spam` header lines. The
//! sender's reputation with that user comes first: mail from an
//! address the user has written to, or from a domain that passed DMARC
//! and that the user has kept as ham, is not scored at all (mox's
//! idea). Also the lessons a user's own actions give, and the cache of
//! word files in use.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use super::score::{self, Verdict};
use super::tokens;
use super::words::{Lesson, Words};
use crate::deliver::Filed;
use crate::proto::imap::{mime, structure};
use crate::store::content::Content;

/// Octets of a message the filter reads at most.
pub const MAX_READ: u64 = 1024 * 1024;
/// Users whose words are kept in memory between messages at most.
const CACHED: usize = 8;

/// Word files in memory: (file, its mtime and size when read, words).
type Cache = Vec<(PathBuf, (SystemTime, u64), Arc<Words>)>;
static CACHE: Mutex<Cache> = Mutex::new(Vec::new());
/// One lesson at a time in this process: a lesson reads, changes and
/// writes a user's file whole.
static LESSONS: Mutex<()> = Mutex::new(());

/// Registered domains of a message's links asked of `uribl` at most.
pub const MAX_LINK_DOMAINS: usize = 10;

/// What delivery learns of a stranger's message on a helper.
#[derive(Debug, Default)]
pub struct Examined {
    /// Mailboxes whose filter filed it into Junk.
    pub filed: Vec<Filed>,
    /// For the log line.
    pub summary: String,
    /// The registered domains of its links, for `uribl`.
    pub links: Vec<String>,
    /// Each scored mailbox's probability, for Sieve's `spamtest`.
    pub scores: Vec<(PathBuf, f64)>,
}

/// The filter's verdict for each of `mailboxes` (with words), and if
/// `links` gives the Public Suffix List, the registered domains of the
/// message's links. The message is read (its first MiB) and tokenized
/// once, and not at all when neither is wanted.
pub fn examine(
    content: &Content,
    mailboxes: &[PathBuf],
    ours: &str,
    links: Option<&crate::proto::dmarc::psl::List>,
) -> io::Result<Examined> {
    let trained: Vec<(&PathBuf, Arc<Words>)> = mailboxes
        .iter()
        .filter_map(|m| Some((m, words_of(m)?)))
        .collect();
    if trained.is_empty() && links.is_none() {
        return Ok(Examined::default());
    }
    let mut msg = Vec::new();
    content.reader()?.take(MAX_READ).read_to_end(&mut msg)?;
    let tokens = tokens::of(&msg);
    let mut out = Examined::default();
    if let Some(psl) = links {
        for host in &tokens.hosts {
            // Names only: an address literal has no registered domain.
            if host.parse::<std::net::IpAddr>().is_ok() || !host.contains('.')
            {
                continue;
            }
            let domain = psl.organizational(host);
            if !out.links.contains(&domain)
                && out.links.len() < MAX_LINK_DOMAINS
            {
                out.links.push(domain);
            }
        }
    }
    if !trained.is_empty() {
        let (filed, summary, scores) =
            file_trained(&msg, &tokens.hashes, &trained, ours);
        out.filed = filed;
        out.summary = summary;
        out.scores = scores;
    }
    Ok(out)
}

/// Each trained user's verdict on one message's tokens.
fn file_trained(
    msg: &[u8],
    hashes: &[u32],
    trained: &[(&PathBuf, Arc<Words>)],
    ours: &str,
) -> (Vec<Filed>, String, Vec<(PathBuf, f64)>) {
    let known = Reputation::of(msg, ours);
    let mut filed = Vec::new();
    let mut summary = Vec::new();
    let mut scores = Vec::new();
    for (mailbox, words) in trained {
        let user = mailbox
            .file_name()
            .map(|n| n.to_string_lossy().into_owned());
        let user = user.unwrap_or_default();
        if let Some(why) = known.vouched(words) {
            summary.push(format!("{user}:{why}"));
            continue;
        }
        let verdict = score::score(words, hashes);
        if let Verdict::Score(s) = verdict {
            scores.push(((*mailbox).clone(), s));
        }
        match verdict {
            Verdict::Abstain => summary.push(format!("{user}:untrained")),
            v @ Verdict::Score(s) if v.is_spam() => {
                summary.push(format!("{user}:spam={s:.3}"));
                filed.push(Filed {
                    mailbox: (*mailbox).clone(),
                    folder: crate::store::folders::JUNK,
                    header: crate::deliver::spam_header(&format!(
                        "score={s:.3} required={:.3} reason=filter",
                        score::SPAM_CUTOFF
                    )),
                });
            }
            Verdict::Score(s) => summary.push(format!("{user}:ham={s:.3}")),
        }
    }
    (filed, format!(" filter={}", summary.join(",")), scores)
}

/// A user's words, from the cache or the file; None if the user has
/// none (nothing learnt: the filter abstains, and nothing is read).
fn words_of(mailbox: &Path) -> Option<Arc<Words>> {
    let path = super::words_path(mailbox);
    let meta = std::fs::metadata(&path).ok()?;
    let stamp = (meta.modified().ok()?, meta.len());
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(i) = cache.iter().position(|(p, _, _)| *p == path) {
        let entry = cache.remove(i);
        if entry.1 == stamp {
            let words = Arc::clone(&entry.2);
            cache.push(entry);
            return Some(words);
        }
    }
    drop(cache);
    let words = match Words::load(&path) {
        Ok(w) => Arc::new(w),
        Err(e) => {
            log::warn!("{}: {e}", path.display());
            return None;
        }
    };
    remember(path, stamp, Arc::clone(&words));
    Some(words)
}

/// Keeps `words` as the newest in the cache, the oldest going out.
fn remember(path: PathBuf, stamp: (SystemTime, u64), words: Arc<Words>) {
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    cache.retain(|(p, _, _)| *p != path);
    if cache.len() >= CACHED {
        cache.remove(0);
    }
    cache.push((path, stamp, words));
}

/// What vouches for a message's sender, from its header: the From
/// address, and the From domain if our Authentication-Results says it
/// passed DMARC.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reputation {
    from: Option<String>,
    dmarc_domain: Option<String>,
}

/// Token kinds of the reputation entries in a user's words: addresses
/// the user wrote to, and DMARC-passing domains the user kept as ham.
const WROTE_TO: &str = "wrote-to";
const KEPT_DOMAIN: &str = "kept-domain";

impl Reputation {
    /// Reads `msg`'s header (`ours`: our authserv-id).
    pub fn of(msg: &[u8], ours: &str) -> Reputation {
        let head = &msg[..header_len(msg)];
        let mut rep = Reputation::default();
        let mut ours_seen = false;
        for (name, value) in mime::fields(head) {
            if name.eq_ignore_ascii_case("from") && rep.from.is_none() {
                rep.from = structure::addresses(&value)
                    .first()
                    .and_then(|a| {
                        Some((a.mailbox.as_ref()?, a.host.as_ref()?))
                    })
                    .map(|(l, h)| {
                        format!(
                            "{}@{}",
                            String::from_utf8_lossy(l),
                            String::from_utf8_lossy(h)
                        )
                        .to_lowercase()
                    });
            }
            // Ours is the first such field (the one we put on top); any
            // other naming us was forged and removed already.
            if name.eq_ignore_ascii_case("authentication-results")
                && !ours_seen
                && crate::proto::authres::is_ours(&value, ours)
            {
                ours_seen = true;
                rep.dmarc_domain =
                    dmarc_pass_domain(&String::from_utf8_lossy(&value));
            }
        }
        rep
    }

    /// Why the user's words vouch for this sender, if they do.
    fn vouched(&self, words: &Words) -> Option<&'static str> {
        let known = |kind: &str, v: &str| {
            words
                .get(tokens::hash(kind, v))
                .is_some_and(|e| e.ham > 0 && e.spam == 0)
        };
        if self.from.as_deref().is_some_and(|f| known(WROTE_TO, f)) {
            return Some("known-sender");
        }
        if self
            .dmarc_domain
            .as_deref()
            .is_some_and(|d| known(KEPT_DOMAIN, d))
        {
            return Some("known-domain");
        }
        None
    }

    /// The reputation tokens a lesson of ham from this message adds.
    fn ham_tokens(&self) -> Vec<u32> {
        self.dmarc_domain
            .iter()
            .map(|d| tokens::hash(KEPT_DOMAIN, d))
            .collect()
    }
}

/// `header.from` of a `dmarc=pass` result in one Authentication-Results
/// value.
pub fn dmarc_pass_domain(value: &str) -> Option<String> {
    let at = value.find("dmarc=pass")?;
    let rest = &value[at..];
    let end = rest.find(';').unwrap_or(rest.len());
    let from = rest[..end]
        .split_whitespace()
        .find_map(|w| w.strip_prefix("header.from="))?;
    Some(from.trim_end_matches(';').to_ascii_lowercase())
}

/// The header's length, blank line included (LF or CRLF).
fn header_len(msg: &[u8]) -> usize {
    let lf = memchr::memmem::find(msg, b"\n\n").map(|i| i + 2);
    let crlf = memchr::memmem::find(msg, b"\n\r\n").map(|i| i + 3);
    [lf, crlf].into_iter().flatten().min().unwrap_or(msg.len())
}

/// What a user did with a message, as a lesson for their filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taught {
    /// Moved or copied into Junk.
    IntoJunk,
    /// Moved or copied out of Junk.
    OutOfJunk,
    /// Given `$Junk`.
    MarkedJunk,
    /// Given `$NotJunk`; `was_junk` if it had been taught as spam (it
    /// carried `$Junk`, or sat in Junk).
    MarkedNotJunk { was_junk: bool },
}

impl Taught {
    /// For the log.
    pub fn name(self) -> &'static str {
        match self {
            Taught::IntoJunk => "moved into Junk",
            Taught::OutOfJunk => "moved out of Junk",
            Taught::MarkedJunk => "marked $Junk",
            Taught::MarkedNotJunk { .. } => "marked $NotJunk",
        }
    }

    /// The lessons, in order. A message taken out of Junk was taught as
    /// spam when the user put it there, unless we filed it there
    /// ourselves (it says `X-Spam: yes`): that lesson is taken back.
    fn lessons(self, msg: &[u8]) -> &'static [Lesson] {
        match self {
            Taught::IntoJunk | Taught::MarkedJunk => &[Lesson::Spam],
            Taught::OutOfJunk if !filed_by_us(msg) => {
                &[Lesson::UnSpam, Lesson::Ham]
            }
            Taught::MarkedNotJunk { was_junk: true } => {
                &[Lesson::UnSpam, Lesson::Ham]
            }
            Taught::OutOfJunk | Taught::MarkedNotJunk { .. } => &[Lesson::Ham],
        }
    }
}

/// True if the header says `X-Spam: yes` (a copy we put into Junk).
fn filed_by_us(msg: &[u8]) -> bool {
    let head = &msg[..header_len(msg)];
    mime::fields(head).iter().any(|(n, v)| {
        n.eq_ignore_ascii_case("x-spam")
            && v.trim_ascii().eq_ignore_ascii_case(b"yes")
    })
}

/// Teaches the user of `mailbox` what each message's action taught (one
/// read and one write of the word file for all); `ours` is our
/// authserv-id. `next` gives the messages one at a time (None at the
/// end), so a MOVE of thousands holds one in memory, not all; returns
/// how many were learnt.
pub fn learn(
    mailbox: &Path,
    ours: &str,
    mut next: impl FnMut() -> Option<(Vec<u8>, Taught)>,
) -> io::Result<usize> {
    let mut n = 0;
    update(mailbox, |words| {
        while let Some((msg, taught)) = next() {
            let mut hashes = tokens::of(&msg).hashes;
            for lesson in taught.lessons(&msg) {
                if *lesson == Lesson::Ham {
                    hashes.extend(Reputation::of(&msg, ours).ham_tokens());
                }
                words.learn(&hashes, *lesson);
            }
            n += 1;
        }
    })?;
    Ok(n)
}

/// What the user sent teaches ham, and each recipient becomes someone
/// the user wrote to.
pub fn learn_sent(
    mailbox: &Path,
    msg: &[u8],
    rcpts: &[String],
) -> io::Result<()> {
    // Without the message (a big one, not read again), only whom.
    let mut hashes = match msg.is_empty() {
        true => Vec::new(),
        false => tokens::of(msg).hashes,
    };
    hashes.extend(
        rcpts
            .iter()
            .map(|r| tokens::hash(WROTE_TO, &r.to_lowercase())),
    );
    let whole = !msg.is_empty();
    update(mailbox, |words| {
        words.learn(&hashes, Lesson::Ham);
        if !whole {
            // Whom, not a message: it does not count towards the ham
            // the filter needs before it speaks.
            words.ham = words.ham.saturating_sub(1);
        }
    })
}

/// Reads the user's words, changes them, writes them back durably, and
/// keeps them in the cache.
fn update(mailbox: &Path, change: impl FnOnce(&mut Words)) -> io::Result<()> {
    let _one = LESSONS.lock().unwrap_or_else(|p| p.into_inner());
    let path = super::words_path(mailbox);
    let mut words = Words::load(&path)?;
    change(&mut words);
    words.save(&path)?;
    let meta = std::fs::metadata(&path)?;
    remember(path, (meta.modified()?, meta.len()), Arc::new(words));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reputation_from_our_results_only() {
        let msg = b"Authentication-Results: mx.test; dmarc=pass (p=none) header.from=Bank.Example; spf=pass\n\
            Authentication-Results: other.example; dmarc=pass header.from=forged.example\n\
            From: Bank <News@Bank.Example>\n\nbody\n";
        let rep = Reputation::of(msg, "mx.test");
        assert_eq!(rep.from.as_deref(), Some("news@bank.example"));
        assert_eq!(rep.dmarc_domain.as_deref(), Some("bank.example"));
        let theirs = Reputation::of(msg, "elsewhere.test");
        assert_eq!(theirs.dmarc_domain, None);
        let failed = b"Authentication-Results: mx.test; dmarc=fail header.from=x.example\n\n";
        assert_eq!(Reputation::of(failed, "mx.test").dmarc_domain, None);
    }

    #[test]
    fn vouched_by_what_the_user_did() {
        let rep = Reputation {
            from: Some("friend@example.org".into()),
            dmarc_domain: Some("shop.example".into()),
        };
        let mut words = Words::default();
        assert_eq!(rep.vouched(&words), None);
        words.learn(&rep.ham_tokens(), Lesson::Ham);
        assert_eq!(rep.vouched(&words), Some("known-domain"));
        words.learn(
            &[tokens::hash(WROTE_TO, "friend@example.org")],
            Lesson::Ham,
        );
        assert_eq!(rep.vouched(&words), Some("known-sender"));
        // A domain the user also called spam vouches for nothing.
        let shop = Reputation {
            from: None,
            dmarc_domain: Some("shop.example".into()),
        };
        words.learn(&shop.ham_tokens(), Lesson::Spam);
        assert_eq!(shop.vouched(&words), None);
    }
}
