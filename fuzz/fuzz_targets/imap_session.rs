//! An IMAP session fed arbitrary bytes, in arbitrary pieces, with a
//! stand-in loop answering its requests: no panic, no hang, and the
//! input it leaves unread stays under the command limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postling::proto::imap::driver::Driver;
use postling::proto::imap::frame::MAX_COMMAND;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else { return };
    let mut d = Driver::new();
    let mut pending = Vec::new();
    for part in rest.chunks(usize::from(split).max(1)) {
        pending.extend_from_slice(part);
        let used = d.feed(&pending);
        pending.drain(..used);
        if d.closed {
            return;
        }
        d.out.clear();
        assert!(pending.len() <= MAX_COMMAND + 4096, "{}", pending.len());
    }
});
