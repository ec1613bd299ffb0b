//! The spam filter's reading of a message: MIME, transfer encodings,
//! charsets, HTML stripped, words and links; and the HTML stripper on
//! its own. No panic, the caps hold. Run with a low -timeout: every
//! step is meant to be one pass.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postling::spam::{html, tokens};

fuzz_target!(|data: &[u8]| {
    let t = tokens::of(data);
    assert!(t.hashes.len() <= tokens::MAX_TOKENS);
    let text = String::from_utf8_lossy(data);
    let s = html::strip(&text);
    // Tags become one space each; references decode shorter.
    assert!(s.text.len() <= text.len() + text.matches('<').count());
});
