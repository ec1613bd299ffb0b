//! A milter's bytes, as hostile as a broken or compromised milter can
//! make them: split into packets, each read as a response, and fed to a
//! conversation about a small message until it ends. No panic, no
//! packet past the cap, and the conversation always ends.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postling::proto::milter::conversation::{Conversation, Facts, Next};
use postling::proto::milter::wire::{MAX_PACKET, Reader, Response};

fuzz_target!(|data: &[u8]| {
    let facts = Facts {
        hostname: "mx.example".into(),
        client: ("192.0.2.1".parse().unwrap(), 25),
        client_name: None,
        helo: "h".into(),
        queue_id: "Q".into(),
        auth_user: None,
        tls: None,
        sender: "a@b".into(),
        rcpts: vec!["c@d".into()],
    };
    let fields = vec![("Subject".to_string(), " x".to_string())];
    let (mut c, mut next) = Conversation::start(facts, fields);
    let mut reader = Reader::default();
    // Fed in two pieces, to cross packet boundaries.
    let cut = data.len() / 2;
    reader.feed(&data[..cut]);
    let mut fed_rest = false;
    let mut body_sent = false;
    for _ in 0..10_000 {
        next = match next {
            Next::Ask(_) | Next::Wait => {
                let p = match reader.packet() {
                    Ok(Some(p)) => p,
                    Ok(None) if !fed_rest => {
                        reader.feed(&data[cut..]);
                        fed_rest = true;
                        continue;
                    }
                    _ => return,
                };
                assert!(p.data.len() < MAX_PACKET);
                match Response::parse(&p) {
                    Ok(r) => c.answer(r),
                    Err(_) => return,
                }
            }
            Next::Tell(_) => c.proceed(),
            Next::Body => {
                let piece: &[u8] = if body_sent { b"" } else { b"body\r\n" };
                body_sent = true;
                c.body(piece)
            }
            Next::Done(_) | Next::Broken(_) => return,
        };
    }
    panic!("the conversation did not end");
});
