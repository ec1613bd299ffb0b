//! The PROXY protocol header parser: never panics, a finished header
//! lies inside the input and within the spec's limits, and a header
//! found in a prefix is found the same in the whole.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postling::proto::proxy::{Header, MAX_V2, parse};

fuzz_target!(|data: &[u8]| {
    let whole = parse(data);
    if let Header::Done { len, .. } = whole {
        assert!(len <= data.len() && len <= MAX_V2);
        assert_eq!(parse(&data[..len]), whole);
    }
    for cut in [1, data.len() / 2] {
        if let Header::Done { len, source } = parse(&data[..cut.min(data.len())]) {
            assert_eq!(whole, Header::Done { len, source });
        }
    }
});
