//! Any bytes as a Sieve script, as a user (or a stranger with a user's
//! password) can upload one through ManageSieve: the lexer and parser
//! answer with a script or an error with its line, never a panic, and
//! nesting stays within its cap.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postling::proto::sieve::parser::{self, Command, MAX_DEPTH};

fn depth(commands: &[Command]) -> usize {
    commands
        .iter()
        .map(|c| 1 + c.block.as_deref().map_or(0, depth))
        .max()
        .unwrap_or(0)
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match parser::parse(&text) {
        Ok(script) => assert!(depth(&script) <= MAX_DEPTH + 1),
        Err(e) => assert!(e.line >= 1 && e.line <= text.lines().count() + 1),
    }
});
