//! A POP3 session fed arbitrary bytes, and the RETR encoder fed
//! arbitrary messages: no panics, and every split of a message encodes
//! the same.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use postling::proto::pop3::transfer::Encoder;
use postling::proto::pop3::{Listing, Pop3, Pop3Step};
use postling::proto::smtp::Link;

fn encode(data: &[u8], chunk: usize, top: Option<usize>) -> Vec<u8> {
    let mut enc = Encoder::new(top, true);
    let mut out = Vec::new();
    let mut pending = Vec::new();
    for part in data.chunks(chunk.max(1)) {
        pending.extend_from_slice(part);
        let used = enc.push(&pending, false, &mut out);
        pending.drain(..used);
    }
    enc.push(&pending, true, &mut out);
    enc.finish(&mut out);
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else { return };
    let top = (split & 1 == 1).then_some(usize::from(split >> 4));
    assert_eq!(encode(rest, usize::from(split), top), encode(rest, rest.len(), top));

    let link = Link {
        peer: "192.0.2.1".parse().unwrap(),
        trusted: false,
        cleartext_auth: true,
        tls: None,
        local_uid: None,
        front_end: false,
    };
    let mut s = Pop3::new("mx.test".into(), true, link);
    let mut out = Vec::new();
    let mut input = rest;
    for _ in 0..=rest.len() {
        let (used, step) = s.feed(input, &mut out);
        input = &input[used..];
        match step {
            Pop3Step::Authenticate(_) => s.logged_in(
                Ok(Arc::new(vec![Listing { uid: "a".into(), size: 10 }; 3])),
                &mut out,
            ),
            Pop3Step::Send { .. } => s.sent(),
            Pop3Step::Update { .. } | Pop3Step::Close => return,
            Pop3Step::StartTls => {}
            // Output past the cap waits for the client: let it read.
            Pop3Step::Continue if s.has_more_output() => out.clear(),
            Pop3Step::Continue if input.is_empty() => return,
            Pop3Step::Continue => return assert!(input.len() < 2048),
        }
    }
});
