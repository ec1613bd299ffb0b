//! Arbitrary messages through the MIME parser and everything built on
//! it: BODYSTRUCTURE, ENVELOPE, sections, BINARY, SEARCH text, and the
//! base64 re-encoding of binary parts. No panic, and offsets stay inside
//! the message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postling::proto::imap::args::Args;
use postling::proto::imap::fetch::parse_items;
use postling::proto::imap::{mime, render, url, urlfetch};

fuzz_target!(|data: &[u8]| {
    // The Date: header SEARCH SENT* and SORT (DATE) read.
    let _ = postling::proto::imap::search::header_date(data);
    let tree = mime::parse(data);
    assert!(tree.header.0 <= tree.header.1 && tree.body.1 <= data.len());
    let items = parse_items(&mut Args::new(
        b"(ENVELOPE BODYSTRUCTURE BODY BODY[1.2.MIME] BODY[2.HEADER.FIELDS (TO)] \
          BINARY[1] BINARY.SIZE[1.1] BODY[TEXT]<3.9> RFC822.SIZE)",
    ))
    .unwrap();
    let mut out = Vec::new();
    render::items(data, 0, &items, &mut out);
    let again = mime::binary_to_base64(data);
    mime::parse(&again);
    // URLFETCH: decoded parts and the structure of what BINARY gives.
    for u in ["/INBOX/;UID=1", "/INBOX/;UID=1/;SECTION=1", "/INBOX/;UID=1/;SECTION=2.1/;PARTIAL=3.9"] {
        let u = url::parse(u).unwrap();
        for (binary, structure) in [(false, true), (true, true)] {
            urlfetch::answer(data, &u, binary, structure);
        }
    }
});
