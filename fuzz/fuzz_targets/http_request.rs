//! Any bytes from an HTTP client, in any chunks: the parser and the
//! session answer or refuse, never panic, and what waits unanswered
//! between feeds stays within the request limits.
#![no_main]

use std::rc::Rc;

use libfuzzer_sys::fuzz_target;
use postling::proto::http::pages::{Endpoint, Security, Site, StsMode};
use postling::proto::http::request::{self, MAX_BODY, MAX_HEAD, Parsed};
use postling::proto::http::{Http, HttpStep};

fuzz_target!(|data: &[u8]| {
    // The parser alone, over the whole input.
    if let Parsed::Done(r, used) = request::parse(data) {
        assert!(used <= data.len());
        assert!(r.body.len() <= MAX_BODY);
        let _ = request::query_value(r.query, "emailaddress");
    }
    let site = Site {
        hostname: "mx.example.test".into(),
        domains: vec!["example.test".into()],
        imap: Some(Endpoint { port: 993, security: Security::Implicit }),
        pop3: None,
        submission: Some(Endpoint { port: 587, security: Security::StartTls }),
        sts_mode: StsMode::Testing,
        sts_max_age: 86_400,
        challenges: None,
    };
    let mut s = Http::new(Rc::new(site), data.first().is_some_and(|b| b & 1 == 1), true);
    let mut out = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    let chunk = 1 + data.first().copied().unwrap_or(0) as usize % 97;
    for piece in data.chunks(chunk) {
        pending.extend_from_slice(piece);
        let (used, step) = s.feed(&pending, &mut out);
        assert!(used <= pending.len());
        pending.drain(..used);
        if step == HttpStep::Close {
            return;
        }
        // What waits is at most one request in the making.
        assert!(pending.len() <= MAX_HEAD + 4 + MAX_BODY + chunk);
        out.clear();
    }
});
