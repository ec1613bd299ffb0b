//! Any bytes from a ManageSieve client, in any chunks: the session
//! answers or asks the loop for work, never panics, and what it holds
//! between feeds stays within the reader's caps.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postling::proto::managesieve::{ManageSieve, SieveStep};
use postling::proto::smtp::Link;

fuzz_target!(|data: &[u8]| {
    let link = Link {
        peer: "127.0.0.1".parse().unwrap(),
        trusted: false,
        cleartext_auth: true,
        tls: None,
        local_uid: None,
        front_end: false,
    };
    let mut s = ManageSieve::new(link, true);
    let mut out = Vec::new();
    s.greet(&mut out);
    let mut pending: Vec<u8> = Vec::new();
    let chunk = 1 + data.first().copied().unwrap_or(0) as usize % 64;
    for piece in data.chunks(chunk) {
        pending.extend_from_slice(piece);
        let (used, step) = s.feed(&pending, &mut out);
        pending.drain(..used);
        match step {
            SieveStep::Authenticate(_) => s.logged_in(Some("u@x.test".into()), &mut out),
            SieveStep::Io(_) => s.done(b"OK\r\n", &mut out),
            SieveStep::Close => return,
            SieveStep::StartTls | SieveStep::Continue => {}
        }
        // Unread input is at most one line the reader waits to end.
        assert!(pending.len() <= postling::proto::managesieve::reader::MAX_LINE + 64);
        out.clear();
    }
});
