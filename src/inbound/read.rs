//! Reading a spooled message for its checks, on a helper thread: its
//! own header (after our trace fields), capped; each DKIM signature and
//! the ARC chain, with the data each signs and the body hashes they
//! need, computed in one streaming pass over the spool; the From
//! domain; and any Authentication-Results field forged in our name.

use std::io::Read;

use crate::proto::arc;
use crate::proto::authres;
use crate::proto::dkim::canon::{BodyHash, Canon};
use crate::proto::dkim::fields::{self, Index};
use crate::proto::dkim::tags::Key;
use crate::proto::dkim::verify::{self, Kind, Outcome, Signature};
use crate::proto::imap::structure;
use crate::store::content::{Content, Stored};

/// Signatures checked at most; more are not looked at (a stranger's
/// message of a thousand signatures costs five).
pub const MAX_SIGNATURES: usize = 5;
/// A header read at most; past it the header is cut short.
pub const MAX_HEADER: usize = 256 * 1024;
/// The piece the body is read in.
const PIECE: usize = 64 * 1024;

/// A signature ready to be checked once its key is in.
#[derive(Debug)]
pub struct ToCheck {
    pub sig: Signature,
    /// What it signs.
    pub data: Vec<u8>,
    /// The body hash computed as it says (empty for a seal).
    pub body_hash: Vec<u8>,
    /// The canonical body's whole length, to report what `l=` leaves
    /// unsigned.
    pub body_length: u64,
    /// A result known without the key (expired, and so on).
    pub early: Option<Outcome>,
}

/// A DKIM signature: ready, or broken in form.
#[derive(Debug)]
pub enum Dkim {
    Ready(Box<ToCheck>),
    /// Unreadable: why, and its `d=` if it had one.
    Broken(&'static str, Option<String>),
}

/// The ARC chain as read.
#[derive(Debug)]
pub enum Arc {
    /// No ARC field.
    None,
    /// It fails in form.
    Broken(&'static str),
    /// The newest message signature, then every seal, newest first.
    Chain {
        message: Box<ToCheck>,
        seals: Vec<ToCheck>,
    },
}

/// Which signatures are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    pub dkim: bool,
    pub arc: bool,
}

/// What the checks need of the message.
#[derive(Debug)]
pub struct Reading {
    /// The one From domain (lower case), or why there is none.
    pub from_domain: Result<String, &'static str>,
    pub dkim: Vec<Dkim>,
    pub arc: Arc,
    /// Octet ranges of Authentication-Results fields naming us.
    pub forged: Vec<(u64, u64)>,
}

/// Reads `content`, whose first `trace` octets are our own trace
/// fields; `ours` is our authserv-id, `now` the time in seconds.
pub fn read(
    content: &mut Content,
    trace: u64,
    ours: &str,
    wanted: Wanted,
    now: i64,
) -> std::io::Result<Reading> {
    content.finish()?;
    if let Stored::Memory(bytes) = &content.stored {
        // In memory: read where it lies, nothing copied.
        return Ok(read_bytes(bytes, trace, ours, wanted, now));
    }
    let mut reader = content.reader()?;
    let cap = (trace + MAX_HEADER as u64).min(content.len);
    let mut buf = Vec::with_capacity(cap as usize);
    (&mut reader)
        .take(trace + MAX_HEADER as u64)
        .read_to_end(&mut buf)?;
    let start = (trace as usize).min(buf.len());
    let end = header_end(&buf[start..]);
    let mut hashes = Hashes::default();
    let (mut reading, body_from) =
        read_header(&buf, start, ours, wanted, now, &mut hashes);
    let body_from = (start + end + body_from).min(buf.len());
    // The body: the rest of what was read, then the rest of the file.
    hashes.update(&buf[body_from..]);
    let mut piece = vec![0u8; PIECE];
    // Nothing asks for a body hash: the body is not read.
    while !hashes.asked.is_empty() {
        let n = reader.read(&mut piece)?;
        if n == 0 {
            break;
        }
        hashes.update(&piece[..n]);
    }
    fill_body_hashes(&mut reading, &hashes.finish());
    Ok(reading)
}

/// Reads a message held whole in memory.
fn read_bytes(
    bytes: &[u8],
    trace: u64,
    ours: &str,
    wanted: Wanted,
    now: i64,
) -> Reading {
    let start = (trace as usize).min(bytes.len());
    let cap = bytes.len().min(start + MAX_HEADER);
    let end = header_end(&bytes[start..cap]);
    let mut hashes = Hashes::default();
    let (mut reading, blank) =
        read_header(&bytes[..cap], start, ours, wanted, now, &mut hashes);
    hashes.update(&bytes[(start + end + blank).min(bytes.len())..]);
    fill_body_hashes(&mut reading, &hashes.finish());
    reading
}

/// Reads a spooled message whose body was hashed as it was written
/// ([`Prehash`]): its header was read when the hashing began; the last
/// octets (`tail`, not yet in the file) go into the hashes, and the
/// signatures' times are judged again at `now`. The file is not read
/// at all.
pub fn read_prehashed(prehash: Prehash, tail: &[u8], now: i64) -> Reading {
    let Prehash {
        mut hashes,
        mut reading,
    } = prehash;
    hashes.update(tail);
    let retime = |c: &mut ToCheck| c.early = verify::check_times(&c.sig, now);
    for d in &mut reading.dkim {
        if let Dkim::Ready(c) = d {
            retime(c);
        }
    }
    if let Arc::Chain { message, .. } = &mut reading.arc {
        retime(message);
    }
    fill_body_hashes(&mut reading, &hashes.finish());
    reading
}

/// The header's part of a reading (`buf[start..]` is the message's own
/// header): signatures (asking `hashes` for the body hashes they need),
/// From, forged fields. Also the length of the empty line after it.
fn read_header(
    buf: &[u8],
    start: usize,
    ours: &str,
    wanted: Wanted,
    now: i64,
    hashes: &mut Hashes,
) -> (Reading, usize) {
    let own = &buf[start..];
    let end = header_end(own);
    let index = Index::new(fields::split(&own[..end]));
    let offset =
        |f: &[u8]| (f.as_ptr() as usize - buf.as_ptr() as usize) as u64;
    let forged = index
        .all("authentication-results")
        .filter(|f| authres::is_ours(fields::value(f), ours))
        .map(|f| (offset(f), offset(f) + f.len() as u64))
        .collect();
    let dkim = match wanted.dkim {
        true => index
            .all("dkim-signature")
            .take(MAX_SIGNATURES)
            .map(|field| dkim_entry(field, &index, hashes, now))
            .collect(),
        false => Vec::new(),
    };
    let arc = match wanted.arc {
        true => arc_chain(&index, hashes, now),
        false => Arc::None,
    };
    let reading = Reading {
        from_domain: from_domain(&index),
        dkim,
        arc,
        forged,
    };
    (reading, blank_len(&own[end..]))
}

/// Body hashes computed as a spooled message is written (by the spool
/// helpers, a piece at a time), set up from its header, and the
/// header's reading: the checks then need neither read the file again
/// nor parse the header twice.
pub struct Prehash {
    hashes: Hashes,
    reading: Reading,
}

impl std::fmt::Debug for Prehash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Prehash")
    }
}

impl Prehash {
    /// Reads the header in `head` (`head[trace..]` is the message's
    /// header, to its empty line; `ours` our authserv-id, `now` the
    /// time) and sets up the hashes its signatures ask for; also where
    /// the body starts in `head`. None if the header does not end in it.
    pub fn start(
        head: &[u8],
        trace: usize,
        ours: &str,
        wanted: Wanted,
        now: i64,
    ) -> Option<(Prehash, usize)> {
        let own = head.get(trace..)?;
        let end = header_end(own);
        if end == own.len() {
            return None;
        }
        let mut hashes = Hashes::default();
        let (reading, blank) =
            read_header(head, trace, ours, wanted, now, &mut hashes);
        Some((Prehash { hashes, reading }, trace + end + blank))
    }

    /// More of the body.
    pub fn update(&mut self, data: &[u8]) {
        self.hashes.update(data);
    }

    /// What the loop looks up, from the reading already made: as
    /// [`preview`] finds it, without parsing the header again.
    pub fn preview(&self) -> Preview {
        let mut keys: Vec<String> = Vec::new();
        for c in self.reading.items() {
            let name =
                format!("{}._domainkey.{}", c.sig.selector, c.sig.domain);
            if !keys.contains(&name) {
                keys.push(name);
            }
        }
        Preview {
            keys,
            from: self.reading.from_domain.clone(),
        }
    }
}

/// Where the header's fields end (the empty line, or all of it).
fn header_end(own: &[u8]) -> usize {
    if own.first() == Some(&b'\n') {
        return 0;
    }
    memchr::memmem::find(own, b"\n\n").map_or(own.len(), |i| i + 1)
}

fn blank_len(rest: &[u8]) -> usize {
    usize::from(rest.first() == Some(&b'\n'))
}

/// How a body hash is computed: canonicalization and `l=`.
type HashKind = (Canon, Option<u64>);

/// The body hashes asked for, each kind once.
#[derive(Default)]
struct Hashes {
    asked: Vec<(HashKind, BodyHash)>,
}

impl Hashes {
    /// The index of the hash for `canon` and `limit`.
    fn ask(&mut self, canon: Canon, limit: Option<u64>) -> usize {
        match self.asked.iter().position(|(k, _)| *k == (canon, limit)) {
            Some(i) => i,
            None => {
                self.asked
                    .push(((canon, limit), BodyHash::new(canon, limit)));
                self.asked.len() - 1
            }
        }
    }

    fn update(&mut self, data: &[u8]) {
        for (_, h) in &mut self.asked {
            h.update(data);
        }
    }

    fn finish(self) -> Vec<(HashKind, ([u8; 32], u64))> {
        self.asked
            .into_iter()
            .map(|(k, h)| (k, h.finish_counted()))
            .collect()
    }
}

/// Each ready signature gets the hash computed as it asked.
fn fill_body_hashes(
    reading: &mut Reading,
    sums: &[(HashKind, ([u8; 32], u64))],
) {
    let fill = |c: &mut ToCheck| {
        let key = (c.sig.body_canon, c.sig.length);
        if let Some((_, (sum, length))) = sums.iter().find(|(k, _)| *k == key)
        {
            c.body_hash = sum.to_vec();
            c.body_length = *length;
        }
    };
    for d in &mut reading.dkim {
        if let Dkim::Ready(c) = d {
            fill(c);
        }
    }
    if let Arc::Chain { message, .. } = &mut reading.arc {
        fill(message);
    }
}

fn dkim_entry(
    field: &[u8],
    index: &Index<'_>,
    hashes: &mut Hashes,
    now: i64,
) -> Dkim {
    let Ok(value) = std::str::from_utf8(fields::value(field)) else {
        return Dkim::Broken("signature not ASCII", None);
    };
    let sig = match verify::parse(value, Kind::Dkim) {
        Ok(s) => s,
        Err(why) => {
            let d =
                crate::proto::dkim::tags::parse(value).ok().and_then(|t| {
                    crate::proto::dkim::tags::get(&t, "d").map(str::to_string)
                });
            return Dkim::Broken(why, d);
        }
    };
    hashes.ask(sig.body_canon, sig.length);
    let data = verify::signed_data(&sig, index, field);
    let early = verify::check_times(&sig, now);
    Dkim::Ready(Box::new(ToCheck {
        sig,
        data,
        body_hash: Vec::new(),
        body_length: 0,
        early,
    }))
}

fn arc_chain(index: &Index<'_>, hashes: &mut Hashes, now: i64) -> Arc {
    let sets = match arc::sets(index) {
        Ok(s) if s.is_empty() => return Arc::None,
        Ok(s) => s,
        Err(why) => return Arc::Broken(why),
    };
    let mut seals = Vec::with_capacity(sets.len());
    for set in &sets {
        let Ok(value) = std::str::from_utf8(fields::value(set.seal)) else {
            return Arc::Broken("seal not ASCII");
        };
        match arc::parse_seal(value) {
            Ok(s) => seals.push(s),
            Err(why) => return Arc::Broken(why),
        }
    }
    // §5.2 step 2: a chain a sealer already found failed is failed.
    if seals.last().is_some_and(|s| s.cv == arc::Cv::Fail) {
        return Arc::Broken("the newest seal says cv=fail");
    }
    if !arc::cv_in_order(&seals) {
        return Arc::Broken("cv= out of order");
    }
    let newest = sets[sets.len() - 1];
    let message = match std::str::from_utf8(fields::value(newest.message))
        .map_err(|_| "signature not ASCII")
        .and_then(|v| verify::parse(v, Kind::ArcMessage))
    {
        Ok(s) => s,
        Err(why) => return Arc::Broken(why),
    };
    hashes.ask(message.body_canon, message.length);
    let message = Box::new(ToCheck {
        data: verify::signed_data(&message, index, newest.message),
        early: verify::check_times(&message, now),
        sig: message,
        body_hash: Vec::new(),
        body_length: 0,
    });
    let seals = seals
        .into_iter()
        .enumerate()
        .rev()
        .map(|(n, seal)| ToCheck {
            data: arc::seal_data(&sets, n + 1),
            sig: seal.sig,
            body_hash: Vec::new(),
            body_length: 0,
            early: None,
        })
        .collect();
    Arc::Chain { message, seals }
}

/// The domain of the one address in the one From field (RFC 7489
/// §6.6.1: with none, or several, there is no single author domain).
fn from_domain(index: &Index<'_>) -> Result<String, &'static str> {
    let mut froms = index.all("from");
    let (Some(field), None) = (froms.next(), froms.next()) else {
        return Err("not exactly one From field");
    };
    let addresses: Vec<_> = structure::addresses(fields::value(field))
        .into_iter()
        .filter(|a| a.host.is_some())
        .collect();
    let [address] = addresses.as_slice() else {
        return Err("not exactly one From address");
    };
    let host = address.host.as_deref().unwrap_or_default();
    // As written (header.from shows it so); compared without case.
    let host = String::from_utf8_lossy(host)
        .trim_end_matches('.')
        .to_string();
    match host.contains('.') && !host.starts_with('[') {
        true => Ok(host),
        false => Err("From domain is not a domain name"),
    }
}

/// Checks each signature with its key (or the reason it has none).
/// Runs on a helper: RSA up to 8192 bits is not for the loop.
pub fn check_all(items: Vec<(ToCheck, Result<Key, Outcome>)>) -> Vec<Outcome> {
    items.iter().map(|(c, key)| check_one(c, key)).collect()
}

/// Checks one signature with its key (or the reason it has none).
pub fn check_one(c: &ToCheck, key: &Result<Key, Outcome>) -> Outcome {
    match (c.early, key) {
        (Some(o), _) => o,
        (None, Err(o)) => *o,
        (None, Ok(key)) => verify::check(&c.sig, key, &c.body_hash, &c.data),
    }
}

impl Reading {
    /// The signatures to check, in the order the loop lists them: each
    /// DKIM signature read, then ARC's message signature and seals.
    pub fn items(&self) -> impl Iterator<Item = &ToCheck> {
        let dkim = self.dkim.iter().filter_map(|d| match d {
            Dkim::Ready(c) => Some(&**c),
            Dkim::Broken(..) => None,
        });
        let arc: Vec<&ToCheck> = match &self.arc {
            Arc::Chain { message, seals } => {
                std::iter::once(&**message).chain(seals).collect()
            }
            _ => Vec::new(),
        };
        dkim.chain(arc)
    }
}

/// What the loop looks up for a message, read from its header alone
/// (`head`: our trace fields, then the message's header to its empty
/// line): each key record name, and the From domain. None if `head`
/// has no empty line (the header went on past what was kept).
pub fn preview(head: &[u8], trace: usize, wanted: Wanted) -> Option<Preview> {
    let own = head.get(trace..)?;
    let end = header_end(own);
    if end == own.len() {
        return None;
    }
    let index = Index::new(fields::split(&own[..end]));
    let mut keys: Vec<String> = Vec::new();
    let mut add = |name: Option<String>| {
        if let Some(name) = name
            && !keys.contains(&name)
        {
            keys.push(name);
        }
    };
    // Only d= and s=: a name for every signature the full reading
    // may accept (and perhaps one it refuses: a lookup too many).
    let name = |f: &[u8]| -> Option<String> {
        let value = std::str::from_utf8(fields::value(f)).ok()?;
        let tags = crate::proto::dkim::tags::parse(value).ok()?;
        let get = |n| {
            crate::proto::dkim::tags::get(&tags, n)
                .map(str::to_ascii_lowercase)
        };
        Some(format!("{}._domainkey.{}", get("s")?, get("d")?))
    };
    if wanted.dkim {
        for field in index.all("dkim-signature").take(MAX_SIGNATURES) {
            add(name(field));
        }
    }
    if wanted.arc
        && let Ok(sets) = arc::sets(&index)
        && let Some(newest) = sets.last()
    {
        add(name(newest.message));
        for set in &sets {
            add(name(set.seal));
        }
    }
    Some(Preview {
        keys,
        from: from_domain(&index),
    })
}

/// What [`preview`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    pub keys: Vec<String>,
    pub from: Result<String, &'static str>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::dkim::sign::{
        Key as Private, Signer, new_ed25519, to_pem,
    };

    const WANTED: Wanted = Wanted {
        dkim: true,
        arc: true,
    };

    /// A signed message with our trace fields before it, and its key.
    fn signed(body: &[u8]) -> (Vec<u8>, u64, Key) {
        let key =
            Private::from_pem(&to_pem("PRIVATE KEY", &new_ed25519().unwrap()))
                .unwrap();
        let record = key.dns_record();
        let head = b"From: A <a@example.org>\nSubject: s\nAuthentication-Results: mx.test; spf=pass\n";
        let mut bh = BodyHash::default();
        bh.update(body);
        let signer = Signer {
            domain: "example.org".into(),
            selector: "s".into(),
            key,
        };
        let field = signer.sign(head, &bh.finish(), 1_800_000_000).unwrap();
        let trace = b"Return-Path: <a@example.org>\nReceived: from x by mx.test;\n\tdate\n";
        let msg = [&trace[..], field.as_bytes(), head, b"\n", body].concat();
        (
            msg,
            trace.len() as u64,
            crate::proto::dkim::tags::key(&record).unwrap(),
        )
    }

    #[test]
    fn hashed_as_written_reads_as_read_whole() {
        let body: Vec<u8> = b"A line  of\tthe report.\n".repeat(5000);
        let (msg, trace, key) = signed(&body);
        let mut whole = Content::in_memory(msg.clone(), std::time::UNIX_EPOCH);
        let read_whole =
            read(&mut whole, trace, "mx.test", WANTED, 1_800_000_000).unwrap();
        // As the spool does it: the first piece's header, then pieces,
        // the last one kept back.
        let head_end = memchr::memmem::find(&msg, b"\n\n").unwrap() + 2;
        let head = &msg[..head_end];
        // Begun long before the signature's t= (a time far off is
        // judged again when the message has ended).
        let (mut prehash, body_at) =
            Prehash::start(head, trace as usize, "mx.test", WANTED, 0)
                .unwrap();
        assert_eq!(body_at, head_end);
        let (written, tail) = msg.split_at(msg.len() - 1000);
        for piece in written[body_at..].chunks(32 * 1024) {
            prehash.update(piece);
        }
        let read_hashed = read_prehashed(prehash, tail, 1_800_000_000);
        for reading in [&read_whole, &read_hashed] {
            let items: Vec<&ToCheck> = reading.items().collect();
            assert_eq!(items.len(), 1);
            assert_eq!(check_one(items[0], &Ok(key.clone())), Outcome::Pass);
            assert_eq!(reading.forged.len(), 1);
            assert_eq!(reading.from_domain.as_deref(), Ok("example.org"));
        }
        // No empty line in what was kept: nothing to start from.
        assert!(
            Prehash::start(&msg[..200], trace as usize, "mx.test", WANTED, 0)
                .is_none()
        );
    }
}
