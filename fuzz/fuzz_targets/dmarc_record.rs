//! DMARC records and organizational domains: reading never panics, a
//! record read has pct within 0–100, and an organizational domain is
//! always a tail of the domain asked about, whole labels only.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postling::proto::dmarc::psl::List;
use postling::proto::dmarc::record::parse;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(r) = parse(text) {
        assert!(r.pct <= 100);
    }
    let list = List::parse("com\nuk\nco.uk\n*.ck\n!www.ck\n");
    let domain = text.trim_end_matches('.').to_ascii_lowercase();
    let org = list.organizational(text);
    assert!(domain.ends_with(&org));
    assert!(org.len() == domain.len() || domain[..domain.len() - org.len()].ends_with('.'));
});
