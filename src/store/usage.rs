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
fn count_from_lines(path: &Path) -> u64 {
    fs::read(path).map_or(0, |b| {
        let starts = memchr::memmem::find_iter(&b, b"\nFrom ").count();
        (starts + usize::from(b.starts_with(b"From "))) as u64
    })
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
