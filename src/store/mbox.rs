//! mbox delivery (mboxrd): each message starts with a `From sender date`
//! line, body lines matching `^>*From ` get one more `>`, and a blank line
//! ends it. The file is `{mailbox}/INBOX`, locked as mutt expects; a
//! failed append is cut back so the file never holds half a message.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::lock::{self, Locked};
use std::time::Duration;

use super::{Message, StageError, transient};
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
    /// Where the message's `From ` line begins.
    start: u64,
}

/// How long a delivery waits for a mailbox lock before it gives the
/// helper thread back (the loop tries again a little later, so a mailbox
/// that mutt holds open stalls only its own mail).
pub const BUSY_WAIT: Duration = Duration::from_millis(200);

/// A message being read by [`walk`].
pub trait Scan {
    /// One more line of the message (after its `From ` line).
    fn line(&mut self, line: &[u8]);
}

/// Reads an mbox from `pos` (where a message starts) to its end. Each
/// message is a `From ` line after a blank line (or at the start):
/// `new(at, text)` begins its scan (the `From ` line at `at`, its text
/// at `text`), its lines go to [`Scan::line`], and `done(scan, end)`
/// takes it when the next begins or the file ends. Returns the end.
pub fn walk<S: Scan, E>(
    reader: &mut impl BufRead,
    mut pos: u64,
    new: impl Fn(u64, u64) -> S,
    mut done: impl FnMut(S, u64) -> Result<(), E>,
    io_error: impl Fn(io::Error) -> E,
) -> Result<u64, E> {
    let mut line = Vec::new();
    let mut prev_blank = true;
    let mut current: Option<S> = None;
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).map_err(&io_error)?;
        if n == 0 {
            break;
        }
        if prev_blank && line.starts_with(b"From ") {
            if let Some(m) = current.take() {
                done(m, pos)?;
            }
            current = Some(new(pos, pos + n as u64));
        } else if let Some(m) = current.as_mut() {
            m.line(&line);
        }
        prev_blank = line == b"\n";
        pos += n as u64;
    }
    if let Some(m) = current.take() {
        done(m, pos)?;
    }
    Ok(pos)
}

/// Appends the message to `dir/INBOX` under lock.
pub fn stage(dir: &Path, msg: &Message<'_>) -> Result<Staged, StageError> {
    stage_at(&dir.join(INBOX), msg)
}

/// Appends the message to the mbox file `path` under lock.
pub fn stage_at(path: &Path, msg: &Message<'_>) -> Result<Staged, StageError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    create_dir_durable(dir).map_err(|e| transient("creating", dir, e))?;
    let path = path.to_path_buf();
    let created = !path.exists();
    let mut locked = match lock::lock_within(&path, BUSY_WAIT) {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
            return Err(StageError::Busy);
        }
        Err(e) => return Err(transient("locking", &path, e).into()),
    };
    if created {
        sync_dir(dir).map_err(|e| transient("syncing", dir, e))?;
    }
    let old_len = locked
        .file
        .seek(SeekFrom::End(0))
        .map_err(|e| transient("seeking", &path, e))?;
    let separator = needs_separator(&mut locked.file, old_len);
    let start = old_len + u64::from(separator);
    let written = render(msg, separator, &locked.file)
        .and_then(|()| locked.file.sync_data());
    if let Err(e) = written {
        cut_back(&locked.file, old_len);
        return Err(transient("appending", &path, e).into());
    }
    Ok(Staged {
        locked,
        path,
        old_len,
        start,
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

/// Writes the message as mboxrd text, streaming it from its content.
pub fn render(
    msg: &Message<'_>,
    separator: bool,
    out: impl Write,
) -> io::Result<()> {
    let mut out = BufWriter::with_capacity(64 * 1024, out);
    if separator {
        out.write_all(b"\n")?;
    }
    let sender = if msg.sender.is_empty() {
        "MAILER-DAEMON"
    } else {
        msg.sender
    };
    let received = date::asctime(msg.content.received);
    writeln!(out, "From {sender} {received}")?;
    // Our own header lines: no `From ` among them to quote.
    out.write_all(msg.prefix)?;
    let mut reader =
        BufReader::with_capacity(64 * 1024, msg.content.reader()?);
    let mut line = Vec::new();
    let mut ends_with_lf = true;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        // mboxrd quoting: `>*From ` at a line start gains one `>`.
        let unquoted =
            line.iter().position(|&b| b != b'>').unwrap_or(line.len());
        if line[unquoted..].starts_with(b"From ") {
            out.write_all(b">")?;
        }
        out.write_all(&line)?;
        ends_with_lf = line.ends_with(b"\n");
    }
    if !ends_with_lf {
        out.write_all(b"\n")?;
    }
    out.write_all(b"\n")?;
    out.flush()
}

fn cut_back(file: &File, len: u64) {
    if let Err(e) = file.set_len(len).and_then(|()| file.sync_data()) {
        log::error!("cannot cut mbox back to {len} octets: {e}");
    }
}

impl Staged {
    /// Where the appended message's `From ` line begins in the file.
    pub fn start(&self) -> u64 {
        self.start
    }

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
    use crate::store::content::Content;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn mboxrd_quoting() {
        let content = Content::in_memory(
            b"Return-Path: <a@b>\nSubject: x\n\nFrom here\n>From there\n\
              Fromage\nend"
                .to_vec(),
            UNIX_EPOCH + Duration::from_secs(0),
        );
        let msg = Message {
            content: &content,
            sender: "a@b",
            prefix: b"",
        };
        let mut text = Vec::new();
        render(&msg, true, &mut text).unwrap();
        assert_eq!(
            String::from_utf8(text).unwrap(),
            "\nFrom a@b Thu Jan  1 00:00:00 1970\nReturn-Path: <a@b>\n\
             Subject: x\n\n>From here\n>>From there\nFromage\nend\n\n"
        );
    }
}
