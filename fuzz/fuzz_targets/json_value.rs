//! Any bytes as a JSON document (what an ACME CA sends): parsed or
//! refused, never a panic, and depth and size stay capped.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postling::proto::json;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = json::parse(data) {
        let _ = v.get("status").and_then(json::Value::str);
        // What we write, we read back.
        if let Some(s) = v.str() {
            assert_eq!(json::parse(json::quote(s).as_bytes()).ok().as_ref(), Some(&v));
        }
    }
});
