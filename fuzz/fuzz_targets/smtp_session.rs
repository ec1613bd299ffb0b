//! A whole session fed arbitrary bytes: it must never panic and must
//! always consume its input (or stop for a delivery or a close).
#![no_main]

use std::rc::Rc;

use libfuzzer_sys::fuzz_target;
use postling::proto::smtp::server::{Cx, Host, RcptError, Server, Settings, Step};
use postling::proto::smtp::Path;

struct AnyHost;

impl Host for AnyHost {
    fn resolve(&mut self, to: &Path) -> Result<Vec<String>, RcptError> {
        match to.domain() {
            "local.test" => Ok(vec![to.to_string()]),
            "" => Ok(vec!["postmaster@local.test".into()]),
            _ => Err(RcptError::RelayDenied),
        }
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
    });
    let mut session = Server::new(settings, "192.0.2.1".parse().unwrap());
    let mut host = AnyHost;
    let mut out = Vec::new();
    let mut input = data;
    for _ in 0..=data.len() {
        let mut cx = Cx { out: &mut out, host: &mut host };
        let (used, step) = session.feed(input, &mut cx);
        input = &input[used..];
        match step {
            Step::Deliver(env, _) => session.delivered(&env.id, Ok(()), &mut out),
            Step::Close => return,
            Step::Continue if input.is_empty() => return,
            // A partial command line waits for its end.
            Step::Continue => return assert!(input.len() < 512),
        }
    }
});
