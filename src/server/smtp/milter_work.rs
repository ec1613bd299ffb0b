//! The milters' helper threads: for one message, each milter in turn
//! (`milters`), over its socket, with `milter_timeout` for every reply;
//! its header and body changes written into a new copy of the message
//! for the next milter and for delivery. A milter that cannot be asked
//! (down, too slow, breaking the protocol) gets `milter_default_action`.
//! The loop hands the message over and goes on; nothing here touches it.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::config::milter::{DefaultAction, Endpoint, Milters};
use crate::proto::milter::conversation::{Conversation, Facts, Next, Verdict};
use crate::proto::milter::message::{self, Fields};
use crate::proto::milter::wire::{Reader, Response, packet};
use crate::store::content::{Content, Stored};

/// A message's header is read this far for the milters.
const MAX_HEADER: u64 = 1024 * 1024;
/// Body pieces, as libmilter takes them.
const PIECE: usize = 65_535;

/// What the milters said of a message, all of them together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Said {
    /// Deliver it (into Junk if a milter quarantined it, and why).
    Deliver { quarantine: Option<String> },
    /// Refuse it with this reply (`550 5.7.1 text`).
    Refuse(u16, String),
    /// A milter asked for it to be dropped.
    Discard(String),
}

/// One message for the milters.
pub struct Job {
    pub key: (usize, u64),
    pub facts: Facts,
    pub content: Content,
    pub settings: Arc<Milters>,
    /// Where a rewritten copy goes (`{data_dir}/tmp/...`).
    pub spool: PathBuf,
}

/// What came back.
pub struct Done {
    pub key: (usize, u64),
    /// The message, rewritten if a milter changed it.
    pub content: io::Result<Content>,
    pub said: Said,
    /// For the log line.
    pub summary: String,
}

/// The helpers' work: each job in turn, a failure inside one answered
/// as a temporary failure of that message alone.
pub fn work(jobs: Vec<Job>) -> Vec<Done> {
    jobs.into_iter()
        .map(|job| {
            let (key, id) = (job.key, job.facts.queue_id.clone());
            let said = crate::util::contain::guarded(
                || format!("milters id={id}"),
                || run(job),
            );
            let (content, said, summary) = said.unwrap_or_else(|| {
                let text =
                    "4.7.1 Service unavailable - try again later".to_string();
                (
                    Err(io::Error::other("internal error")),
                    Said::Refuse(451, text),
                    String::new(),
                )
            });
            Done {
                key,
                content,
                said,
                summary,
            }
        })
        .collect()
}

type Ran = (io::Result<Content>, Said, String);

/// Runs a job on a helper thread.
fn run(job: Job) -> Ran {
    let Job {
        key: _,
        facts,
        mut content,
        settings,
        spool,
    } = job;
    let mut summary = String::new();
    let mut quarantine = None;
    for (n, endpoint) in settings.milters.iter().enumerate() {
        let asked = content
            .finish()
            .and_then(|()| ask(endpoint, &facts, &content, settings.timeout));
        let outcome = match asked {
            Ok(o) => o,
            Err(e) => {
                log::warn!("id={} milter {endpoint}: {e}", facts.queue_id);
                summary.push_str(&format!(" milter={endpoint}:unavailable"));
                match settings.default_action {
                    DefaultAction::Accept => continue,
                    DefaultAction::Tempfail => {
                        let text =
                            "4.7.1 Service unavailable - try again later"
                                .to_string();
                        return done(
                            (),
                            Ok(content),
                            Said::Refuse(451, text),
                            summary,
                        );
                    }
                }
            }
        };
        summary.push_str(&format!(
            " milter={endpoint}:{}",
            verdict_name(&outcome.verdict)
        ));
        match outcome.verdict {
            Verdict::Continue => {}
            Verdict::Reject(reply) => {
                let (code, text) =
                    reply_of(reply.as_deref(), 550, "5.7.1 Command rejected");
                return done(
                    (),
                    Ok(content),
                    Said::Refuse(code, text),
                    summary,
                );
            }
            Verdict::Tempfail(reply) => {
                let (code, text) = reply_of(
                    reply.as_deref(),
                    451,
                    "4.7.1 Service unavailable - try again later",
                );
                return done(
                    (),
                    Ok(content),
                    Said::Refuse(code, text),
                    summary,
                );
            }
            Verdict::Discard => {
                return done(
                    (),
                    Ok(content),
                    Said::Discard(endpoint.to_string()),
                    summary,
                );
            }
        }
        if let Some(why) = outcome.quarantine {
            quarantine = Some(format!("{endpoint}: {why}"));
        }
        if !outcome.edits.is_empty() || outcome.body.is_some() {
            let path = spool.with_extension(format!("m{n}"));
            content = match rewrite(
                &content,
                &outcome.edits,
                outcome.body.as_deref(),
                path,
            ) {
                Ok(c) => c,
                Err(e) => {
                    return done(
                        (),
                        Err(e),
                        Said::Deliver { quarantine },
                        summary,
                    );
                }
            };
        }
    }
    done((), Ok(content), Said::Deliver { quarantine }, summary)
}

fn done(
    _key: (),
    content: io::Result<Content>,
    said: Said,
    summary: String,
) -> Ran {
    (content, said, summary)
}

fn verdict_name(v: &Verdict) -> &'static str {
    match v {
        Verdict::Continue => "continue",
        Verdict::Reject(_) => "reject",
        Verdict::Tempfail(_) => "tempfail",
        Verdict::Discard => "discard",
    }
}

/// A milter's reply text as ours: its code if it is the right class,
/// its text cleaned of what could break our reply line.
fn reply_of(
    reply: Option<&str>,
    default_code: u16,
    default_text: &str,
) -> (u16, String) {
    let Some(reply) = reply else {
        return (default_code, default_text.to_string());
    };
    let code: u16 = reply
        .get(..3)
        .and_then(|c| c.parse().ok())
        .unwrap_or(default_code);
    let code = match code / 100 == default_code / 100 {
        true => code,
        false => default_code,
    };
    let text: String = reply
        .get(3..)
        .unwrap_or("")
        .trim_start_matches([' ', '-'])
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(400)
        .collect();
    match text.trim().is_empty() {
        true => (code, default_text.to_string()),
        false => (code, text.trim().to_string()),
    }
}

/// A connection to a milter, either kind.
enum Socket {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Socket {
    fn open(endpoint: &Endpoint, timeout: Duration) -> io::Result<Socket> {
        let s = match endpoint {
            Endpoint::Unix(path) => {
                let s = UnixStream::connect(path)?;
                s.set_read_timeout(Some(timeout))?;
                s.set_write_timeout(Some(timeout))?;
                Socket::Unix(s)
            }
            Endpoint::Inet(host, port) => {
                let addr = (host.as_str(), *port)
                    .to_socket_addrs()?
                    .next()
                    .ok_or_else(|| io::Error::other("no address"))?;
                let s = TcpStream::connect_timeout(&addr, timeout)?;
                s.set_read_timeout(Some(timeout))?;
                s.set_write_timeout(Some(timeout))?;
                Socket::Tcp(s)
            }
        };
        Ok(s)
    }

    fn write_all(&mut self, b: &[u8]) -> io::Result<()> {
        match self {
            Socket::Unix(s) => s.write_all(b),
            Socket::Tcp(s) => s.write_all(b),
        }
    }

    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        match self {
            Socket::Unix(s) => s.read(b),
            Socket::Tcp(s) => s.read(b),
        }
    }
}

/// One milter's conversation about `content`.
fn ask(
    endpoint: &Endpoint,
    facts: &Facts,
    content: &Content,
    timeout: u64,
) -> io::Result<crate::proto::milter::conversation::Outcome> {
    let mut sock = Socket::open(endpoint, Duration::from_secs(timeout))?;
    let mut reader = BufReader::with_capacity(PIECE, content.reader()?);
    let head = read_header(&mut reader)?;
    let fields = message::for_milter(&message::fields(&head));
    let (mut c, mut next) = Conversation::start(facts.clone(), fields);
    let mut packets = Reader::default();
    let mut buf = vec![0u8; 16 * 1024];
    let mut piece = Vec::with_capacity(PIECE + 1024);
    // Each reply has `timeout`; the whole conversation ten times that,
    // so a milter sending "still working" forever cannot hold a helper.
    let deadline =
        std::time::Instant::now() + Duration::from_secs(timeout * 10);
    loop {
        if std::time::Instant::now() > deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the conversation took too long",
            ));
        }
        next = match next {
            Next::Ask(bytes) => {
                sock.write_all(&bytes)?;
                c.answer(response(&mut sock, &mut packets, &mut buf)?)
            }
            Next::Tell(bytes) => {
                sock.write_all(&bytes)?;
                c.proceed()
            }
            Next::Wait => {
                c.answer(response(&mut sock, &mut packets, &mut buf)?)
            }
            Next::Body => {
                piece.clear();
                body_piece(&mut reader, &mut piece)?;
                c.body(&piece)
            }
            Next::Done(outcome) => {
                let _ = sock.write_all(&packet(b'Q', b""));
                return Ok(outcome);
            }
            Next::Broken(why) => {
                return Err(io::Error::other(format!("protocol: {why}")));
            }
        }
    }
}

/// The next response packet.
fn response(
    sock: &mut Socket,
    packets: &mut Reader,
    buf: &mut [u8],
) -> io::Result<Response> {
    loop {
        match packets.packet() {
            Ok(Some(p)) => {
                return Response::parse(&p).map_err(|b| {
                    io::Error::other(format!("protocol: {}", b.0))
                });
            }
            Ok(None) => {}
            Err(b) => {
                return Err(io::Error::other(format!("protocol: {}", b.0)));
            }
        }
        let n = sock.read(buf)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the milter closed",
            ));
        }
        packets.feed(&buf[..n]);
    }
}

/// The header, to its empty line (LF line ends), capped.
fn read_header(reader: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut head = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader
            .by_ref()
            .take(MAX_HEADER)
            .read_until(b'\n', &mut line)?
            == 0
        {
            return Ok(head);
        }
        head.extend_from_slice(&line);
        if line == b"\n" || head.len() as u64 >= MAX_HEADER {
            return Ok(head);
        }
    }
}

/// The next piece of the body, CRLF line ends; empty at its end.
fn body_piece(reader: &mut impl BufRead, out: &mut Vec<u8>) -> io::Result<()> {
    while out.len() < PIECE {
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            break;
        }
        let take = chunk.len().min(PIECE - out.len()).min(PIECE / 2);
        out.extend_from_slice(&crate::store::mailfolder::to_crlf(
            &chunk[..take],
        ));
        reader.consume(take);
    }
    Ok(())
}

/// A copy of `content` with the header changed and the body replaced
/// (or kept): in memory if small, else a new spool file at `path`.
fn rewrite(
    content: &Content,
    edits: &[crate::proto::milter::conversation::Edit],
    body: Option<&[u8]>,
    path: PathBuf,
) -> io::Result<Content> {
    let mut reader = BufReader::new(content.reader()?);
    let head = read_header(&mut reader)?;
    let mut fields: Fields = message::fields(&head);
    message::apply(&mut fields, edits);
    let new_head = message::header(&fields);
    let new_body = body.map(crate::store::mailfolder::to_lf);
    let small = content.len <= super::spool::IN_MEMORY as u64
        && new_body
            .as_ref()
            .is_none_or(|b| b.len() <= super::spool::IN_MEMORY);
    let received = content.received;
    if small {
        let mut bytes = new_head;
        match new_body {
            Some(b) => bytes.extend_from_slice(&b),
            None => {
                reader.read_to_end(&mut bytes)?;
            }
        }
        return Ok(Content::in_memory(bytes, received));
    }
    // Mail is the user's alone, as the spool's and the mailboxes' files.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .read(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    // The copy is removed with its Content, whatever happens next.
    let mut written = Content {
        len: 0,
        lines: 0,
        received,
        stored: Stored::File {
            file: file.try_clone()?,
            path,
            tail: Vec::new(),
        },
    };
    let count = |bytes: &[u8], w: &mut Content| {
        w.len += bytes.len() as u64;
        w.lines += memchr::memchr_iter(b'\n', bytes).count() as u64;
    };
    file.write_all(&new_head)?;
    count(&new_head, &mut written);
    match new_body {
        Some(b) => {
            file.write_all(&b)?;
            count(&b, &mut written);
        }
        None => {
            let mut buf = vec![0u8; PIECE];
            loop {
                let n = reader.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                file.write_all(&buf[..n])?;
                count(&buf[..n], &mut written);
            }
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_ours_to_send() {
        assert_eq!(
            reply_of(Some("554 5.7.1 Gtube pattern"), 550, "x"),
            (554, "5.7.1 Gtube pattern".into())
        );
        assert_eq!(
            reply_of(Some("550\r\n5.7.1 two\nlines"), 550, "x"),
            (550, "5.7.1 two lines".into())
        );
        assert_eq!(
            reply_of(None, 451, "4.7.1 later"),
            (451, "4.7.1 later".into())
        );
    }
}
