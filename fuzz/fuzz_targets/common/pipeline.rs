//! The content pipeline a folder's messages meet, shared by the
//! whole-message targets: MIME, ENVELOPE, BODYSTRUCTURE, header and
//! text SEARCH, SORT on every key, and THREAD by both algorithms, over
//! a small folder of the messages given; and, as SMTP takes each one
//! in, the checks' reading (signatures, body hashes, From, ARC); and
//! the spam filter's tokens, each message learnt and scored.

use postling::proto::imap::args::Args;
use postling::proto::imap::fetch::parse_items;
use postling::proto::imap::folder::Flags;
use postling::proto::imap::matcher::{self, Content, Facts};
use postling::proto::imap::search::parse_keys;
use postling::proto::imap::arrange::{self, Arrange};
use postling::proto::imap::sort;
use postling::proto::imap::thread::{self, Algorithm};
use postling::proto::imap::{mime, render};

const FETCH: &[u8] = b"(ENVELOPE BODYSTRUCTURE BODY BODY[1.MIME] \
    BODY[HEADER.FIELDS (SUBJECT REFERENCES)] BINARY.SIZE[1] RFC822.SIZE)";
const SEARCHES: [&[u8]; 6] = [
    b"SUBJECT \"re: x\"",
    b"OR TO a@b FROM \"=?utf-8?q?x?=\"",
    b"TEXT \"filename=\"",
    b"BODY cafe SENTSINCE 1-Jan-2000",
    b"HEADER References \"<a@b>\"",
    b"NOT CC x",
];
const SORT: &[u8] = b"(ARRIVAL CC DATE FROM REVERSE SIZE SUBJECT TO \
    DISPLAYFROM DISPLAYTO)";

/// Runs every message through the pipeline, then the folder through
/// SORT and THREAD.
pub fn run(msgs: &[&[u8]]) {
    let items = parse_items(&mut Args::new(FETCH)).expect("items parse");
    let criteria =
        sort::parse_criteria(&mut Args::new(SORT)).expect("criteria parse");
    let keys: Vec<_> = SEARCHES
        .iter()
        .map(|k| parse_keys(&mut Args::new(k)).expect("keys parse"))
        .collect();
    let mut sorted = Vec::new();
    let mut threaded = Vec::new();
    let mut words = postling::spam::words::Words::default();
    for (i, msg) in msgs.iter().enumerate() {
        let tree = mime::parse(msg);
        assert!(tree.body.1 <= msg.len());
        let mut out = Vec::new();
        render::items(msg, 0, &items, &mut out);
        let n = i as u32 + 1;
        let facts = Facts {
            seq: n,
            max_seq: msgs.len() as u32,
            uid: n,
            max_uid: msgs.len() as u32,
            flags: Flags(0),
            recent: false,
            modseq: 1,
            keywords: &[],
        };
        let content = Content::whole(msg, 0);
        for k in &keys {
            matcher::matches(k, &facts, Some(content));
        }
        let mut stored = postling::store::content::Content::in_memory(
            msg.to_vec(),
            std::time::SystemTime::UNIX_EPOCH,
        );
        postling::inbound::read::read(&mut stored, 0, "mx.example", postling::inbound::read::Wanted { dkim: true, arc: true }, 0)
            .expect("in memory, reading cannot fail");
        let tokens = postling::spam::tokens::of(msg);
        assert!(tokens.hashes.len() <= postling::spam::tokens::MAX_TOKENS);
        words.learn(&tokens.hashes, postling::spam::words::Lesson::Spam);
        let _ = postling::spam::score::score(&words, &tokens.hashes);
        let head = mime::split(msg).0;
        let size = msg.len() as u64;
        sorted.push((n, n, sort::values(&criteria, head, size, 0)));
        threaded.push((n, n, sort::values(&thread::keys(), head, size, 0)));
    }
    let how = Arrange {
        criteria,
        thread: None,
        uid_mode: true,
    };
    arrange::arrange(&how, sorted);
    for algorithm in [Algorithm::References, Algorithm::OrderedSubject] {
        let how = Arrange {
            criteria: thread::keys(),
            thread: Some(algorithm),
            uid_mode: false,
        };
        let answer = arrange::arrange(&how, threaded.clone());
        assert!(matches!(answer, arrange::Arranged::Threaded(_)));
    }
}
