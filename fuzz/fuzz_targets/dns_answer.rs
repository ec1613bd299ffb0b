//! Arbitrary datagrams as answers to our DNS queries: the wire parser
//! and the resolver that matches them to questions. No panic; an answer
//! is only taken for the id, name and type asked.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postling::proto::dns::resolver::{Event, Resolver};
use postling::proto::dns::wire::{self, Qtype};

fuzz_target!(|data: &[u8]| {
    for qtype in [Qtype::A, Qtype::Aaaa, Qtype::Mx, Qtype::Ptr, Qtype::Txt] {
        let id = data.get(..2).map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
        let _ = wire::answer(data, id, "example.org", qtype);
    }
    let server = "127.0.0.1:53".parse().unwrap();
    let mut r = Resolver::new(vec![server]);
    let now = 1_000u64;
    let (key, events) = r.lookup("example.org", Qtype::Mx, now);
    assert!(matches!(events.as_slice(), [Event::Send { .. }]));
    // A second asker of the same question waits for the first's answer.
    let (follower, events) = r.lookup("EXAMPLE.org.", Qtype::Mx, now);
    assert!(events.is_empty());
    let mut done = Vec::new();
    for e in r.received(key, server, data, now) {
        match e {
            Event::Send { bytes, .. } => assert!(bytes.len() < 512),
            Event::Done { key, .. } => done.push(key),
        }
    }
    // Both hear the end, or neither yet.
    assert!(done.is_empty() || (done.contains(&key) && done.contains(&follower)));
});
