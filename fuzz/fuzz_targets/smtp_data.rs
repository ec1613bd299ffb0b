//! The DATA scanner: any split of the input gives the same result as the
//! whole, and nothing ends DATA but CRLF.CRLF.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postling::proto::smtp::body::{Body, DotReader};

fn scan(input: &[u8], chunk: usize) -> (usize, bool, Vec<u8>) {
    let mut reader = DotReader::new();
    let mut body = Body::new(1 << 20);
    let mut data = Vec::new();
    let mut used = 0;
    for part in input.chunks(chunk.max(1)) {
        let (n, end) = reader.feed(part, &mut body, &mut data);
        used += n;
        if end {
            body.finish(&mut data);
            return (used, true, data);
        }
    }
    body.finish(&mut data);
    (used, false, data)
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, input)) = data.split_first() else { return };
    let whole = scan(input, input.len());
    assert_eq!(scan(input, split as usize), whole);
    let (used, end, _) = whole;
    if end {
        assert!(input[..used].ends_with(b"\r\n.\r\n") || used == 3);
    } else {
        assert_eq!(used, input.len());
    }
});
