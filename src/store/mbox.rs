//! mbox delivery (mboxrd): each message starts with a `From sender date`
//! line, body lines matching `^>*From ` get one more `>`, and a blank line
//! ends it. The file is `{mailbox}/INBOX`, locked as mutt expects; a
//! failed append is cut back so the file never holds half a message.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::lock::{self, Locked};
use super::{Message, transient};
use crate::proto::Failure;
use crate::util::{date, fs::create_dir_durable, fs::sync_dir};

/// The mbox file inside a mailbox folder.
pub const INBOX: &str = "INBOX";

/// An append made and fsync'd, lock still held.
#[derive(Debug)]
pub struct Staged {
    locked: Locked,
    path: PathBuf,
    old_len: u64,
}

/// Appends the message to `dir/INBOX` under lock.
pub fn stage(dir: &Path, msg: &Message<'_>) -> Result<Staged, Failure> {
    create_dir_durable(dir).map_err(|e| transient("creating", dir, e))?;
    let path = dir.join(INBOX);
    let created = !path.exists();
    let mut locked =
        lock::lock(&path).map_err(|e| transient("locking", &path, e))?;
    if created {
        sync_dir(dir).map_err(|e| transient("syncing", dir, e))?;
    }
    let old_len = locked
        .file
        .seek(SeekFrom::End(0))
        .map_err(|e| transient("seeking", &path, e))?;
    let bytes = render(msg, needs_separator(&mut locked.file, old_len));
    let written = locked
        .file
        .write_all(&bytes)
        .and_then(|()| locked.file.sync_data());
    if let Err(e) = written {
        cut_back(&locked.file, old_len);
        return Err(transient("appending", &path, e));
    }
    Ok(Staged {
        locked,
        path,
        old_len,
    })
}

/// True if the file does not already end with a blank line, which the
/// next `From ` line needs before it.
fn needs_separator(file: &mut File, len: u64) -> bool {
    use std::io::Read;
    if len == 0 {
        return false;
    }
    let back = len.min(2);
    let mut tail = [0u8; 2];
    let ok = file.seek(SeekFrom::Start(len - back)).is_ok()
        && file.read_exact(&mut tail[..back as usize]).is_ok();
    let _ = file.seek(SeekFrom::End(0));
    !(ok && (tail == *b"\n\n" || (len == 1 && tail[0] == b'\n')))
}

/// The message as mboxrd text.
pub fn render(msg: &Message<'_>, separator: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len() + msg.len() / 50 + 100);
    if separator {
        out.push(b'\n');
    }
    let sender = if msg.sender.is_empty() {
        "MAILER-DAEMON"
    } else {
        msg.sender
    };
    out.extend_from_slice(
        format!("From {sender} {}\n", date::asctime(msg.received)).as_bytes(),
    );
    out.extend_from_slice(msg.head);
    quote_from_lines(msg.body, &mut out);
    if !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    out.push(b'\n');
    out
}

/// mboxrd quoting: `>*From ` at a line start gains one `>`.
fn quote_from_lines(body: &[u8], out: &mut Vec<u8>) {
    for line in body.split_inclusive(|&b| b == b'\n') {
        let unquoted =
            line.iter().position(|&b| b != b'>').unwrap_or(line.len());
        if line[unquoted..].starts_with(b"From ") {
            out.push(b'>');
        }
        out.extend_from_slice(line);
    }
}

fn cut_back(file: &File, len: u64) {
    if let Err(e) = file.set_len(len).and_then(|()| file.sync_data()) {
        log::error!("cannot cut mbox back to {len} octets: {e}");
    }
}

impl Staged {
    /// Releases the lock: the append is already durable.
    pub fn commit(self) -> Result<(), Failure> {
        drop(self.locked);
        Ok(())
    }

    /// Cuts the file back to where it was, then unlocks.
    pub fn abort(self) {
        log::warn!("taking back append to {}", self.path.display());
        cut_back(&self.locked.file, self.old_len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn mboxrd_quoting() {
        let msg = Message {
            head: b"Return-Path: <a@b>\n",
            body: b"Subject: x\n\nFrom here\n>From there\nFromage\nend",
            sender: "a@b",
            received: UNIX_EPOCH + Duration::from_secs(0),
        };
        let text = render(&msg, true);
        assert_eq!(
            String::from_utf8(text).unwrap(),
            "\nFrom a@b Thu Jan  1 00:00:00 1970\nReturn-Path: <a@b>\n\
             Subject: x\n\n>From here\n>>From there\nFromage\nend\n\n"
        );
    }
}
