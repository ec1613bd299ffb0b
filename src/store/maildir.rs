//! Maildir delivery (the Maildir spec, as Dovecot and mutt read it):
//! write `tmp/NAME`, rename into `new/NAME`; the durability helper then
//! flushes the whole batch at once (`util::fs::sync_filesystem`) before
//! any `250`. A crash before that flush can leave a file in `new/`
//! shorter than the `S=` its name promises (never acknowledged): start-up
//! removes those (`store::cleanup`). Maildir++ subfolders (`.Sent/` ...)
//! sit beside `tmp new cur` later.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::{Message, transient};
use crate::proto::Failure;
use crate::util::{fs::create_dir_durable, id};

/// A message written to `tmp/`, waiting to be renamed into `new/`.
#[derive(Debug)]
pub struct Staged {
    tmp: PathBuf,
    new: PathBuf,
}

/// Creates `tmp`, `new` and `cur` under `dir` if missing.
pub fn create(dir: &Path) -> std::io::Result<()> {
    for sub in ["tmp", "new", "cur"] {
        create_dir_durable(&dir.join(sub))?;
    }
    Ok(())
}

/// Writes (or hard-links from `link`) the message into `dir/tmp/`.
pub fn stage(
    dir: &Path,
    msg: &Message<'_>,
    link: Option<&Path>,
) -> Result<Staged, Failure> {
    create(dir).map_err(|e| transient("creating maildir", dir, e))?;
    let host = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    // S= is the file size, W= the size with CRLF line ends, as Dovecot
    // writes them; POP3 and IMAP can report sizes without reading.
    let content = msg.content;
    let (len, lines) = (
        content.len + msg.prefix.len() as u64,
        content.lines + memchr::memchr_iter(b'\n', msg.prefix).count() as u64,
    );
    let name =
        format!("{},S={len},W={}", id::maildir_name(&host), len + lines);
    let tmp = dir.join("tmp").join(&name);
    let new = dir.join("new").join(&name);
    // A spooled message is linked, not copied (its data was fsync'd by
    // the caller); a copy only when the link fails (another file system).
    let linkable = msg.prefix.is_empty();
    for src in link
        .into_iter()
        .chain(content.spool_path())
        .filter(|_| linkable)
    {
        if fs::hard_link(src, &tmp).is_ok() {
            return Ok(Staged { tmp, new });
        }
    }
    write_new(&tmp, msg).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        transient("writing", &tmp, e)
    })?;
    Ok(Staged { tmp, new })
}

fn write_new(path: &Path, msg: &Message<'_>) -> io::Result<()> {
    let mut f: File = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    io::Write::write_all(&mut f, msg.prefix)?;
    io::copy(&mut msg.content.reader()?, &mut f)?;
    // Durable with the rest of the batch, by the helper's one flush.
    Ok(())
}

impl Staged {
    /// A file staged at `tmp`, to be published as `new`.
    pub(crate) fn new(tmp: PathBuf, new: PathBuf) -> Staged {
        Staged { tmp, new }
    }

    /// Renames into `new/`; returns the new name (its folder is for the
    /// caller to fsync).
    pub fn commit(self) -> Result<PathBuf, Failure> {
        if let Err(e) = fs::rename(&self.tmp, &self.new) {
            let _ = fs::remove_file(&self.tmp);
            return Err(transient("publishing", &self.new, e));
        }
        Ok(self.new)
    }

    /// Published into `cur/` with these flag letters instead of `new/`
    /// (a Sieve script's flags at delivery).
    pub fn flagged(self, letters: &str) -> Staged {
        let Some((dir, name)) = self
            .new
            .parent()
            .and_then(Path::parent)
            .zip(self.new.file_name())
        else {
            return self;
        };
        let new = dir
            .join("cur")
            .join(format!("{}:2,{letters}", name.to_string_lossy()));
        Staged { new, ..self }
    }

    /// Removes the file from `tmp/`.
    pub fn abort(self) {
        let _ = fs::remove_file(&self.tmp);
    }

    /// The staged file.
    pub fn tmp_path(&self) -> &Path {
        &self.tmp
    }
}
