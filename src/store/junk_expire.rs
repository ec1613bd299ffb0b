//! `junk_expire`: mail older than the limit leaves a user's Junk
//! folder, as Dovecot's autoexpunge does. Age is the time it arrived
//! (Maildir: the file's time; mbox: the `From ` line's date). On a
//! helper thread; an IMAP session with Junk open sees the removals at
//! its next look, as it would another program's.

use std::io;
use std::path::Path;
use std::time::SystemTime;

use super::{folders, mailfolder, mboxfolder};
use crate::config::MailboxFormat;

/// Removes what arrived in `root`'s Junk before `cutoff`; how many.
pub fn expire(
    root: &Path,
    format: MailboxFormat,
    cutoff: SystemTime,
) -> io::Result<usize> {
    if !folders::exists(root, folders::JUNK, format) {
        return Ok(0);
    }
    let place = folders::place(root, folders::JUNK, format);
    let limit = unix_seconds(cutoff);
    let folder = match format {
        MailboxFormat::Maildir => mailfolder::scan(&place)?,
        MailboxFormat::Mbox => mboxfolder::scan(&place)?,
    };
    let old: Vec<String> = folder
        .msgs
        .iter()
        .filter(|m| {
            arrived(&place, format, &m.file).is_some_and(|t| t < limit)
        })
        .map(|m| m.file.to_string())
        .collect();
    if old.is_empty() {
        return Ok(0);
    }
    match format {
        MailboxFormat::Maildir => mailfolder::expunge(&place, &old)?,
        MailboxFormat::Mbox => mboxfolder::expunge(&place, &old)?,
    }
    Ok(old.len())
}

/// When a message arrived, in seconds since 1970.
fn arrived(place: &Path, format: MailboxFormat, file: &str) -> Option<i64> {
    match format {
        MailboxFormat::Maildir => {
            let path = mailfolder::locate(place, file).ok()?;
            Some(unix_seconds(std::fs::metadata(path).ok()?.modified().ok()?))
        }
        MailboxFormat::Mbox => mboxfolder::read_dated(place, file)
            .ok()
            .map(|(_, date)| date),
    }
}

fn unix_seconds(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::content::Content;
    use std::time::{Duration, UNIX_EPOCH};

    fn put(
        root: &Path,
        format: MailboxFormat,
        subject: &str,
        arrived: SystemTime,
    ) {
        let content = Content::in_memory(
            format!("Subject: {subject}\n\nx\n").into_bytes(),
            arrived,
        );
        let msg = crate::store::Message {
            content: &content,
            sender: "a@b",
            prefix: b"",
        };
        let staged =
            crate::store::stage_in(format, root, folders::JUNK, &msg, None)
                .unwrap();
        let published = staged.commit().unwrap();
        if let (MailboxFormat::Maildir, Some(file)) = (format, published) {
            let f = std::fs::File::options().write(true).open(file).unwrap();
            f.set_modified(arrived).unwrap();
        }
    }

    #[test]
    fn old_junk_goes_new_junk_stays() {
        for format in [MailboxFormat::Maildir, MailboxFormat::Mbox] {
            let root = std::env::temp_dir().join(format!(
                "postling-junk-{}-{format:?}",
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&root);
            std::fs::create_dir_all(&root).unwrap();
            assert_eq!(
                expire(&root, format, SystemTime::now()).unwrap(),
                0,
                "no Junk yet"
            );
            let long_ago = UNIX_EPOCH + Duration::from_secs(1_600_000_000);
            put(&root, format, "old", long_ago);
            put(&root, format, "new", SystemTime::now());
            let cutoff = SystemTime::now() - Duration::from_secs(86_400);
            assert_eq!(expire(&root, format, cutoff).unwrap(), 1);
            let place = folders::place(&root, folders::JUNK, format);
            let left = match format {
                MailboxFormat::Maildir => mailfolder::scan(&place).unwrap(),
                MailboxFormat::Mbox => mboxfolder::scan(&place).unwrap(),
            };
            assert_eq!(left.msgs.len(), 1, "{format:?}");
            assert_eq!(expire(&root, format, cutoff).unwrap(), 0);
            let _ = std::fs::remove_dir_all(&root);
        }
    }
}
