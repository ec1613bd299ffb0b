//! `postling-envelopes`: each message's ENVELOPE as last computed, kept
//! beside a Maildir folder, so a client listing a folder (mutt, a
//! phone) is answered without opening a file per message: on an SD card
//! that is one sequential read instead of thousands of seeks. A record
//! file (see `records`).

use std::path::Path;

use super::records;

/// The file's name in a Maildir folder.
pub const FILE: &str = "postling-envelopes";
// PLEV2: repeated address fields merged, comment names spaced as
// phrases; an older file is started afresh.
const MAGIC: records::Magic = b"PLEV2";

/// The cached ENVELOPE of `uid`, if any.
pub fn get(dir: &Path, validity: u32, uid: u32) -> Option<Vec<u8>> {
    records::get(&dir.join(FILE), MAGIC, validity, uid)
}

/// Remembers the ENVELOPE of `uid`.
pub fn put(dir: &Path, validity: u32, uid: u32, envelope: &[u8]) {
    records::put(&dir.join(FILE), MAGIC, validity, uid, envelope)
}

/// Drops records of messages no longer in the folder, when they are
/// over half of the file.
pub fn compact(dir: &Path, validity: u32, live: &[u32]) {
    records::compact(&dir.join(FILE), MAGIC, validity, live)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn remembers_and_compacts() {
        let dir = std::env::temp_dir()
            .join(format!("postling-env-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        assert_eq!(get(&dir, 7, 1), None);
        put(&dir, 7, 1, b"(one)");
        put(&dir, 7, 2, b"(two)");
        put(&dir, 7, 3, b"(three)");
        assert_eq!(get(&dir, 7, 2).as_deref(), Some(&b"(two)"[..]));
        compact(&dir, 7, &[3]);
        assert_eq!(get(&dir, 7, 1), None);
        assert_eq!(get(&dir, 7, 3).as_deref(), Some(&b"(three)"[..]));
        // Read back from the file by a fresh load.
        records::forget(&dir.join(FILE));
        assert_eq!(get(&dir, 7, 3).as_deref(), Some(&b"(three)"[..]));
        // Another UIDVALIDITY starts afresh.
        assert_eq!(get(&dir, 8, 3), None);
        fs::remove_dir_all(&dir).unwrap();
    }
}
