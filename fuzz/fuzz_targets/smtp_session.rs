//! A whole session fed arbitrary bytes: it must never panic and must
//! always consume its input (or stop for a delivery or a close).
#![no_main]

use std::rc::Rc;

use libfuzzer_sys::fuzz_target;
use postling::proto::smtp::{
    Cx, Host, Link, Path, RcptError, Server, Settings, Step, TlsInfo,
};

struct AnyHost;

impl Host for AnyHost {
    fn resolve(&mut self, to: &Path) -> Result<Vec<String>, RcptError> {
        match to.domain() {
            "local.test" => Ok(vec![to.to_string()]),
            "" => Ok(vec!["postmaster@local.test".into()]),
            _ => Err(RcptError::NotLocal),
        }
    }

    fn may_send_as(&mut self, user: &str, from: &Path) -> bool {
        from.to_string() == user
    }

    fn queue_id(&mut self) -> String {
        "Q".into()
    }
}

fuzz_target!(|data: &[u8]| {
    let settings = Rc::new(Settings {
        hostname: "mx.local.test".into(),
        max_message_size: 4096,
        max_recipients: 5,
        submission: data.first().is_some_and(|b| b & 1 == 1),
        starttls: true,
    });
    let link = Link {
        peer: "192.0.2.1".parse().unwrap(),
        trusted: data.first().is_some_and(|b| b & 2 == 2),
        cleartext_auth: true,
        tls: None,
        local_uid: None,
        // A front end may say whom it speaks for (XCLIENT): let it.
        front_end: data.first().is_some_and(|b| b & 4 == 4),
    };
    let mut session = Server::new(settings, link);
    let mut host = AnyHost;
    let mut out = Vec::new();
    let mut sink = Vec::new();
    let mut input = data;
    for _ in 0..=data.len() {
        let mut cx = Cx { out: &mut out, host: &mut host, sink: &mut sink };
        let (used, step) = session.feed(input, &mut cx);
        input = &input[used..];
        match step {
            Step::Deliver(env) => {
                // The sink never holds more than the size limit.
                assert!(sink.len() <= 4096);
                session.delivered(&env.id, Ok(()), &mut out)
            }
            Step::StartTls => session.tls_started(TlsInfo {
                version: "TLSv1.3".into(),
                cipher: "X".into(),
            }),
            Step::Authenticate(c) => {
                let ok = c.password == b"pw";
                session.authenticated(ok.then_some(c.user), &mut out)
            }
            Step::Close => return,
            // ETRN: the loop runs the queue; the session goes on.
            // XSTATUS: the loop writes the figures; the same.
            Step::FlushQueue | Step::Status { .. } => {}
            Step::Continue if input.is_empty() => return,
            // A partial command line waits for its end.
            Step::Continue => return assert!(input.len() < 12288),
        }
    }
});
