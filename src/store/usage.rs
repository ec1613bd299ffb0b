//! A user's usage as quotas read it: the quota file's sum, or the file
//! rebuilt by walking every folder when it is missing (Maildir: the
//! `S=` sizes in the file names; mbox: the files' lengths). On helper
//! threads only.

use std::fs;
use std::io;
use std::path::Path;

use super::folders;
use super::quota::{Lock, Usage, read, size_in_name, write_whole};
use crate::config::MailboxFormat;

/// The user's usage: the file's, or rebuilt from the folders when it
/// is missing. On a helper thread.
pub fn usage(root: &Path, format: MailboxFormat) -> io::Result<Usage> {
    if let Some(u) = read(root) {
        return Ok(u);
    }
    rebuild(root, format)
}

/// Walks every folder and writes the file anew.
pub fn rebuild(root: &Path, format: MailboxFormat) -> io::Result<Usage> {
    let mut u = Usage::default();
    if !root.exists() {
        return Ok(u);
    }
    for name in folders::all(root, format)? {
        let place = folders::place(root, &name, format);
        match format {
            MailboxFormat::Maildir => {
                for sub in ["cur", "new"] {
                    let Ok(entries) = fs::read_dir(place.join(sub)) else {
                        continue;
                    };
                    for e in entries.flatten() {
                        let name =
                            e.file_name().to_string_lossy().into_owned();
                        let size = size_in_name(&name)
                            .or_else(|| e.metadata().ok().map(|m| m.len()));
                        u.bytes += size.unwrap_or(0);
                        u.messages += 1;
                    }
                }
            }
            MailboxFormat::Mbox => {
                if let Ok(m) = fs::metadata(&place) {
                    u.bytes += m.len();
                    u.messages += count_from_lines(&place);
                }
            }
        }
    }
    let _lock = Lock::take(root)?;
    write_whole(root, u)?;
    Ok(u)
}

/// Messages in an mbox file: its `From ` lines.
/// Read a piece at a time: an mbox may be far bigger than memory.
fn count_from_lines(path: &Path) -> u64 {
    use std::io::Read;
    let Ok(mut f) = fs::File::open(path) else {
        return 0;
    };
    let mut buf = vec![0u8; 64 * 1024];
    // The last octets of the previous piece, so a line start cut
    // between pieces is still seen; a leading "\n" counts the first.
    let mut carry = b"\n".to_vec();
    let mut count = 0u64;
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) | Err(_) => return count,
            Ok(n) => n,
        };
        carry.extend_from_slice(&buf[..n]);
        count += memchr::memmem::find_iter(&carry, b"\nFrom ").count() as u64;
        let keep = carry.len().min(5);
        carry.drain(..carry.len() - keep);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::quota::{FILE, add, root_of};

    #[test]
    fn tracked_folded_and_rebuilt() {
        let root = std::env::temp_dir()
            .join(format!("postling-quota-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        for sub in ["cur", "new", "tmp", ".Junk/cur", ".Junk/new"] {
            fs::create_dir_all(root.join(sub)).unwrap();
        }
        fs::write(root.join("new/1.x,S=100,W=104"), "").unwrap();
        fs::write(root.join(".Junk/cur/2.x,S=50:2,S"), "").unwrap();
        let fmt = MailboxFormat::Maildir;
        assert_eq!(
            usage(&root, fmt).unwrap(),
            Usage {
                bytes: 150,
                messages: 2
            }
        );
        add(&root, 1000, 1);
        add(&root, -100, -1);
        assert_eq!(
            usage(&root, fmt).unwrap(),
            Usage {
                bytes: 1050,
                messages: 2
            }
        );
        for _ in 0..1000 {
            add(&root, 1, 1);
        }
        assert!(fs::metadata(root.join(FILE)).unwrap().len() <= 5120 + 32);
        assert_eq!(
            usage(&root, fmt).unwrap(),
            Usage {
                bytes: 2050,
                messages: 1002
            }
        );
        assert_eq!(root_of(&root.join(".Junk"), fmt), root);
        assert_eq!(root_of(&root, fmt), root);
        assert_eq!(
            root_of(&root.join("folders/a.b"), MailboxFormat::Mbox),
            root
        );
        assert_eq!(root_of(&root.join("INBOX"), MailboxFormat::Mbox), root);
        assert!(
            Usage {
                bytes: 90,
                messages: 1
            }
            .fits(10, 100)
        );
        assert!(
            !Usage {
                bytes: 91,
                messages: 1
            }
            .fits(10, 100)
        );
        fs::remove_dir_all(&root).unwrap();
    }
}

#[cfg(test)]
mod mbox_tests {
    use super::*;

    #[test]
    fn from_lines_counted_across_pieces() {
        let path = std::env::temp_dir()
            .join(format!("postling-usage-mbox-{}", std::process::id()));
        // Messages of 70,000 octets: line starts fall on every side of
        // the 64 KiB pieces.
        let one = format!(
            "From a@b Thu Jan  1 00:00:00 1970\n{}\n\n",
            "x".repeat(70_000)
        );
        fs::write(&path, one.repeat(7)).unwrap();
        assert_eq!(count_from_lines(&path), 7);
        fs::remove_file(&path).unwrap();
    }
}
