//! Any line must parse to a command or a reply, never panic; a parsed
//! path must print back to something that parses to the same path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postling::proto::smtp::address::parse_path;
use postling::proto::smtp::command::{Command, parse};

fuzz_target!(|line: &[u8]| {
    if let Ok(Command::Rcpt { to }) = parse(line) {
        if !to.is_bare_postmaster() {
            let printed = format!("<{to}>");
            let (again, _) = parse_path(printed.as_bytes(), true)
                .expect("a printed path parses");
            assert_eq!(again, to);
        }
    }
});
