//! A message header as a stranger writes it, through what the checks
//! read of it: ARC sets and seals, DKIM signatures and the data they
//! sign, and our authserv-id in Authentication-Results. Nothing panics;
//! the sets found are complete and in order; the data a signature or a
//! seal signs grows no faster than the header does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postling::proto::arc;
use postling::proto::authres;
use postling::proto::dkim::fields::{self, Index};
use postling::proto::dkim::verify::{self, Kind};

fuzz_target!(|data: &[u8]| {
    let index = Index::new(fields::split(data));
    if let Ok(sets) = arc::sets(&index) {
        assert!(sets.len() <= arc::MAX_SETS);
        for n in 1..=sets.len() {
            // Every field at most once, canonicalization adds CRLFs.
            assert!(arc::seal_data(&sets, n).len() <= 2 * data.len() + 8);
        }
        for set in &sets {
            if let Ok(v) = std::str::from_utf8(fields::value(set.seal)) {
                let _ = arc::parse_seal(v);
            }
        }
    }
    for (name, kind) in [("dkim-signature", Kind::Dkim), ("arc-message-signature", Kind::ArcMessage)] {
        for field in index.all(name).take(5) {
            let Ok(v) = std::str::from_utf8(fields::value(field)) else { continue };
            if let Ok(sig) = verify::parse(v, kind) {
                // Each signed name picks a field at most once per naming.
                let signed = verify::signed_data(&sig, &index, field);
                assert!(signed.len() <= 2 * (sig.signed.len() + 1) * data.len() + 8);
            }
        }
    }
    for field in index.all("authentication-results") {
        let id = authres::authserv_id(fields::value(field));
        if let Some(id) = id {
            assert!(authres::is_ours(fields::value(field), &id.to_ascii_uppercase()));
        }
    }
    let _ = authres::authserv_id(data);
});
