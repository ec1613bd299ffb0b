//! The IMAP pieces read outside the command parser: IMAP URLs and
//! URLAUTH URLs, NOTIFY's event groups, APPEND's segments (MULTIAPPEND,
//! CATENATE), and THREAD over headers made of the same input. No panic,
//! and threads name every message once.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postling::proto::imap::append::{Next, Plan};
use postling::proto::imap::args::Args;
use postling::proto::imap::frame::literal_at_end;
use postling::proto::imap::{notify, sort, thread, url};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = url::parse(&text);
    if let Ok(u) = url::parse_auth(&text) {
        assert!(text.starts_with(&u.rump[..u.rump.len().min(3)]));
        let _ = u.owners();
    }
    let _ = notify::parse(&mut Args::new(data), |raw| {
        Ok(String::from_utf8_lossy(raw).into_owned())
    });
    let mut plan = Plan::new("INBOX".into());
    for seg in data.split(|&b| b == b'\n') {
        let lit = literal_at_end(seg);
        let head = lit.map_or(seg, |l| &seg[..l.at]);
        match plan.read(head, lit) {
            Ok(Next::Literal(l)) => plan.streamed(l.len.min(1 << 20)),
            Ok(Next::Done) | Err(_) => break,
        }
    }
    let _ = plan.check();
    // Every line a header of its own message.
    let found: Vec<_> = data
        .split(|&b| b == b'\n')
        .take(64)
        .enumerate()
        .map(|(i, line)| {
            let mut head = line.to_vec();
            head.extend_from_slice(b"\r\n\r\n");
            let n = i as u32 + 1;
            (n, n, sort::values(&thread::keys(), &head, 0, i as i64))
        })
        .collect();
    for alg in [thread::Algorithm::References, thread::Algorithm::OrderedSubject] {
        let answer = thread::thread(alg, &found);
        let mut numbers: Vec<u32> = answer
            .trim_start_matches("* THREAD")
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|n| n.parse().ok())
            .collect();
        numbers.sort_unstable();
        let want: Vec<u32> = (1..=found.len() as u32).collect();
        assert_eq!(numbers, want, "{answer}");
    }
});
