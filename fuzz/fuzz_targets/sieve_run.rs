//! A script and a message, both any bytes (split at the first NUL): a
//! script that compiles runs against the message to an outcome within
//! its caps (actions, redirects), never a panic; its `:matches` and
//! variables stay linear (run with -timeout).
#![no_main]

use libfuzzer_sys::fuzz_target;
use postling::config::MailboxFormat;
use postling::proto::sieve::{compile, run};
use postling::sieve::message::Mail;

fuzz_target!(|data: &[u8]| {
    let at = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let (script, msg) = data.split_at(at);
    let Ok(script) = compile::compile(&String::from_utf8_lossy(script)) else {
        return;
    };
    let root = std::path::Path::new("/nonexistent/postling-fuzz");
    let mail = Mail::new(msg, msg.len() as u64, "a@b.test", "c@d.test", root, MailboxFormat::Maildir);
    let out = run::run(&[&script], &mail);
    assert!(out.redirects.len() <= run::MAX_REDIRECTS);
    assert!(out.stores.len() <= run::MAX_ACTIONS + 1);
    let kept = !out.stores.is_empty() || !out.redirects.is_empty();
    assert!(kept || out.discarded || out.reject.is_some(), "{out:?}");
});
