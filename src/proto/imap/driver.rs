//! A stand-in for the loop, for tests and fuzzing: it answers every
//! request an IMAP session makes from a small folder in memory, so a
//! session can be driven through all its states by bytes alone.

use std::cell::RefCell;
use std::rc::Rc;

use super::folder::{Flags, Folder, Msg};
use super::render;
use super::request::ImapStep;
use super::request::{Fetched, Reply, Request, Segment, Status};
use super::session::{Imap, Settings};
use crate::proto::smtp::Link;

/// The message every FETCH reads.
pub const MESSAGE: &[u8] = b"From: A <a@x.test>\r\nTo: b@y.test\r\n\
    Subject: hi\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
    --b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b--\r\n";

/// A session and the folder it sees.
pub struct Driver {
    /// The session.
    pub imap: Imap,
    /// The folder.
    pub folder: Rc<RefCell<Folder>>,
    /// Everything the session wrote.
    pub out: Vec<u8>,
    /// The session asked to close.
    pub closed: bool,
}

impl Default for Driver {
    fn default() -> Self {
        Self::new()
    }
}

impl Driver {
    /// A session on a plain connection where passwords are allowed.
    pub fn new() -> Driver {
        let settings = Rc::new(Settings {
            hostname: "mx.test".into(),
            starttls: true,
            append_limit: 1 << 20,
        });
        let link = Link {
            peer: "192.0.2.1".parse().expect("invariant: literal"),
            trusted: false,
            cleartext_auth: true,
            tls: None,
            local_uid: None,
            front_end: false,
        };
        let msgs = (1..=3)
            .map(|uid| Msg {
                uid,
                flags: Flags(if uid == 2 { 1 } else { 0 }),
                modseq: uid as u64,
                file: format!("cur/{uid}").into(),
            })
            .collect();
        let folder = Folder {
            uidvalidity: 7,
            uidnext: 4,
            highest_modseq: 3,
            msgs,
            recent_from: 3,
            ..Folder::default()
        };
        Driver {
            imap: Imap::new(settings, link),
            folder: Rc::new(RefCell::new(folder)),
            out: Vec::new(),
            closed: false,
        }
    }

    /// Feeds `input`, answering requests, until it is used up or the
    /// session stops taking it; returns the octets used.
    pub fn feed(&mut self, input: &[u8]) -> usize {
        let mut sink = Vec::new();
        let mut used = 0;
        // Each round uses input or finishes a request; bounded anyway.
        for _ in 0..=(input.len() * 4 + 64) {
            let (n, step) =
                self.imap.feed(&input[used..], &mut self.out, &mut sink);
            used += n;
            if !self.act(step) {
                return used;
            }
            if self.imap.has_more_output() {
                // The client reads what is waiting.
                self.out.clear();
                continue;
            }
            if n == 0 && !self.imap.is_waiting() {
                return used;
            }
        }
        used
    }

    /// Does what a step asks; false once the session is closed.
    fn act(&mut self, mut step: ImapStep) -> bool {
        loop {
            step = match step {
                ImapStep::Continue | ImapStep::StartTls => return true,
                ImapStep::Close => {
                    self.closed = true;
                    return false;
                }
                ImapStep::Authenticate(c) => {
                    self.imap.logged_in(Some(c.user), &mut self.out);
                    return true;
                }
                ImapStep::Io(request) => {
                    let reply = self.answer(request);
                    self.imap.done(reply, &mut self.out)
                }
            };
        }
    }

    fn answer(&mut self, request: Request) -> Reply {
        match request {
            Request::Select(_) => Reply::Selected(Ok(Rc::clone(&self.folder))),
            Request::List(..) => Reply::Listed(Ok(Vec::new())),
            Request::Status(..) => Reply::Status(Ok(Status::default())),
            Request::Quota => Reply::Quota(Ok((0, 0))),
            Request::Notify(_) => Reply::Notified(Vec::new()),
            Request::GenUrlAuth(urls) => Reply::GenUrlAuth(Ok(urls)),
            Request::UrlFetch(_) => Reply::UrlFetched(Vec::new()),
            Request::ResetKey(_) => Reply::Done(Ok(())),
            Request::Append { messages, .. } => {
                let mut f = self.folder.borrow_mut();
                let mut uids = Vec::new();
                for _ in &messages {
                    let uid = f.uidnext;
                    f.add(vec![(uid, Flags(0), "new/x".into())]);
                    uids.push(uid);
                }
                Reply::Appended(Ok((7, uids)))
            }
            Request::Store(changes) => {
                let mut f = self.folder.borrow_mut();
                for (uid, flags) in changes {
                    let modseq = f.bump();
                    if let Some(i) = f.find(uid) {
                        f.msgs[i].flags = flags;
                        f.msgs[i].modseq = modseq;
                    }
                }
                Reply::Done(Ok(()))
            }
            Request::Expunge(uids) => {
                self.folder.borrow_mut().remove(&uids);
                Reply::Done(Ok(()))
            }
            Request::Copy { uids, moving, .. } => {
                if moving {
                    self.folder.borrow_mut().remove(&uids);
                }
                Reply::Copied(Ok((7, uids.clone(), uids)))
            }
            Request::Fetch(uids, items) => Reply::Fetched(
                uids.into_iter()
                    .map(|uid| {
                        let mut out = Vec::new();
                        render::items(MESSAGE, 0, &items, &mut out);
                        Fetched {
                            uid,
                            data: Some(vec![Segment::Bytes(out)]),
                        }
                    })
                    .collect(),
            ),
            Request::Stream(_) => Reply::Streamed(Ok(())),
            Request::Search { candidates, .. } => {
                Reply::Searched(candidates.iter().map(|c| c.uid).collect())
            }
            Request::Create(..)
            | Request::Delete(_)
            | Request::Rename(..)
            | Request::Subscribe(..)
            | Request::Sync => Reply::Done(Ok(())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::testing::random_scripts;

    const SCRIPT: &[u8] = b"a LOGIN alice pw\r\nb ENABLE CONDSTORE\r\n\
        c SELECT INBOX\r\nd FETCH 1:* (FLAGS UID BODYSTRUCTURE ENVELOPE BODY.PEEK[1] BINARY[1])\r\n\
        e STORE 1 +FLAGS (\\Seen $x)\r\nf SEARCH UNSEEN\r\ng UID SEARCH RETURN (MIN MAX) TEXT hi\r\n\
        h APPEND INBOX {5+}\r\nhello\r\ni IDLE\r\nDONE\r\nj EXPUNGE\r\nk MOVE 1 Trash\r\n\
        l LOGOUT\r\n";

    fn run(script: &[u8], chunk: usize) -> Vec<u8> {
        let mut d = Driver::new();
        let mut pending = Vec::new();
        for part in script.chunks(chunk.max(1)) {
            pending.extend_from_slice(part);
            let used = d.feed(&pending);
            pending.drain(..used);
            if d.closed {
                break;
            }
        }
        d.out
    }

    #[test]
    fn a_whole_dialog_reads_the_same_in_any_chunks() {
        let whole = run(SCRIPT, SCRIPT.len());
        let text = String::from_utf8_lossy(&whole);
        for tag in [
            "a OK", "c OK", "d OK", "e OK", "f OK", "g OK", "h OK", "i OK",
            "j OK", "k OK", "l OK",
        ] {
            assert!(text.contains(tag), "{tag} missing in {text}");
        }
        assert!(
            text.contains("BODYSTRUCTURE ((\"text\" \"plain\""),
            "{text}"
        );
        for chunk in [1, 2, 3, 7, 64] {
            assert_eq!(run(SCRIPT, chunk), whole, "chunk {chunk}");
        }
    }

    /// Dialogs in the manner of the RFCs' examples (RFC 9051 8, RFC 4315,
    /// 4731, 5161, 2971, 2342, 7162): what each command must answer.
    #[test]
    fn rfc_example_dialogs() {
        let mut d = Driver::new();
        let steps: &[(&[u8], &[&str])] = &[
            (b"a001 login mrc secret\r\n", &["a001 OK"]),
            (b"t2 ENABLE CONDSTORE X-GOOD-IDEA\r\n", &["* ENABLED CONDSTORE", "t2 OK"]),
            (b"t3 ENABLE IMAP4rev2\r\n", &["* ENABLED IMAP4REV2", "t3 OK"]),
            (b"a023 ID (\"name\" \"sodr\" \"version\" \"19.34\")\r\n", &["* ID (", "a023 OK"]),
            (b"A001 NAMESPACE\r\n", &["* NAMESPACE ((\"\" \".\")) NIL NIL", "A001 OK"]),
            (
                b"a002 select inbox\r\n",
                &["* 3 EXISTS", "* LIST () \".\" \"INBOX\"", "* OK [UIDVALIDITY 7]", "* OK [UIDNEXT 4]", "* OK [HIGHESTMODSEQ", "a002 OK [READ-WRITE]"],
            ),
            (
                b"a003 fetch 1 full\r\n",
                &["* 1 FETCH (FLAGS (", "INTERNALDATE \"", "RFC822.SIZE ", "ENVELOPE (", "BODY ((", "a003 OK"],
            ),
            (b"a004 fetch 1 body[header]\r\n", &["BODY[HEADER] {", "a004 OK"]),
            (b"a005 store 1 +flags \\deleted\r\n", &["* 1 FETCH (FLAGS (\\Seen \\Deleted) MODSEQ (", "a005 OK"]),
            (b"A003 APPEND saved-messages (\\Seen) {5+}\r\nhello\r\n", &["A003 OK [APPENDUID 7 4]"]),
            (b"A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"\r\n", &["* ESEARCH (TAG \"A282\") MIN", "A282 OK"]),
            (b"A202 EXPUNGE\r\n", &["* 1 EXPUNGE", "A202 OK"]),
            (b"A004 UID EXPUNGE 3000:3002\r\n", &["A004 OK"]),
            (b"a006 logout\r\n", &["* BYE", "a006 OK"]),
        ];
        for (command, answers) in steps {
            d.out.clear();
            d.feed(command);
            let text = String::from_utf8_lossy(&d.out);
            for a in *answers {
                assert!(
                    text.contains(a),
                    "{}: {a} missing in {text}",
                    String::from_utf8_lossy(command)
                );
            }
        }
        assert!(d.closed);
    }

    #[test]
    fn passwords_need_tls_off_loopback() {
        let mut d = Driver::new();
        let link = Link {
            peer: "192.0.2.1".parse().unwrap(),
            trusted: false,
            cleartext_auth: false,
            tls: None,
            local_uid: None,
            front_end: false,
        };
        d.imap = Imap::new(
            Rc::new(Settings {
                hostname: "mx.test".into(),
                starttls: true,
                append_limit: 1,
            }),
            link,
        );
        d.imap.greet(&mut d.out);
        d.feed(b"a LOGIN alice pw\r\nb AUTHENTICATE PLAIN AGEAYg==\r\nc STARTTLS\r\n");
        let text = String::from_utf8_lossy(&d.out);
        assert!(text.contains("LOGINDISABLED"), "{text}");
        assert!(text.contains("STARTTLS"), "{text}");
        assert!(!text.contains("AUTH=PLAIN"), "{text}");
        assert!(text.contains("a NO [PRIVACYREQUIRED]"), "{text}");
        assert!(text.contains("b NO [PRIVACYREQUIRED]"), "{text}");
        assert!(text.contains("c OK Begin TLS"), "{text}");
    }

    #[test]
    fn random_input_never_panics_or_hangs() {
        let words: &[&[u8]] = &[
            b"a LOGIN x y\r\n",
            b"b SELECT INBOX\r\n",
            b"c FETCH 1:* ALL\r\n",
            b"{5}\r\n",
            b"{99999999+}\r\n",
            b"~{3}\r\n",
            b"(",
            b")",
            b"\"",
            b"\\",
            b"d APPEND INBOX {3}\r\n",
            b"e IDLE\r\n",
            b"DONE\r\n",
            b"* ",
            b"\r\n",
            b"f UID STORE 1:* FLAGS (\\Deleted)\r\n",
            b"g SEARCH OR NOT (",
            b"h AUTHENTICATE PLAIN\r\n",
        ];
        for (script, chunk) in random_scripts(words, 9, 400, 40) {
            run(&script, chunk);
        }
    }
}
