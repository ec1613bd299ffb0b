//! Arbitrary peer bytes through the outbound SMTP client, in chunks the
//! input chooses, with a message sent as soon as the client is ready:
//! no panic, every recipient gets one outcome, all input is used or the
//! connection closes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postling::proto::smtp::client::session::{Action, Client, Message, TlsPolicy};

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else { return };
    let step = usize::from(split % 64) + 1;
    let mut c = Client::new("me.example", TlsPolicy::Opportunistic);
    if split & 0x80 != 0 {
        // A smarthost login: AUTH's replies too.
        c = c.with_login("me@example.org", "secret pass");
    }
    let msg = Message {
        from: "a@example.org".into(),
        rcpts: vec!["b@x".into(), "c@x".into()],
        size: 100,
        eight_bit: true,
        utf8: false,
    };
    let mut sent = false;
    let mut pending: Vec<u8> = Vec::new();
    let mut closed = false;
    for chunk in rest.chunks(step) {
        pending.extend_from_slice(chunk);
        let (n, actions) = c.feed(&pending);
        pending.drain(..n);
        let mut more = Vec::new();
        for a in actions {
            match a {
                Action::Ready if !sent => {
                    sent = true;
                    more.extend(c.send(msg.clone()));
                }
                Action::StartTls => more.extend(c.tls_started()),
                Action::SendBody => c.body_sent(),
                Action::Close => closed = true,
                _ => {}
            }
        }
        for a in more {
            if let Action::Finished(o) = a {
                assert_eq!(o.len(), 2);
            }
        }
        if closed {
            return;
        }
        assert!(pending.len() <= 64 * 1024 + 1100);
    }
    for a in c.lost("end of input") {
        if let Action::Finished(o) = a {
            assert_eq!(o.len(), 2);
        }
    }
});
