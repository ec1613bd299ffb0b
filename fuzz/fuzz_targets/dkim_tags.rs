//! DKIM tag lists and key records: reading never panics; a list read
//! has no name twice, and reads the same once more from its own pairs
//! joined back together.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postling::proto::dkim::tags::{key, parse};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(tags) = parse(text) {
        for (i, (n, _)) in tags.iter().enumerate() {
            assert!(tags[..i].iter().all(|(m, _)| m != n));
        }
        let again: Vec<String> = tags.iter().map(|(n, v)| format!("{n}={v}")).collect();
        let again = again.join(";");
        assert_eq!(parse(&again).expect("its own pairs read"), tags);
    }
    let _ = key(text);
});
