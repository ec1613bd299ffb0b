//! The outbound queue, until outbound delivery exists: each accepted
//! message for another domain is one file, `{data_dir}/queue/new/{id}`,
//! written like a Maildir message (tmp, rename, one flush for the batch). The file
//! is the envelope, a blank line, then the message:
//!
//! ```text
//! from <sender@example.org>
//! to <friend@elsewhere.example>
//!
//! Return-Path: ...
//! ```

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::maildir::Staged;
use super::{Message, transient};
use crate::proto::Failure;
use crate::util::fs::create_dir_durable;

/// Writes the queue file for `id`, durable but not yet in `new/`.
pub fn stage(
    dir: &Path,
    id: &str,
    recipients: &[String],
    msg: &Message<'_>,
) -> Result<Staged, Failure> {
    for sub in ["tmp", "new"] {
        create_dir_durable(&dir.join(sub))
            .map_err(|e| transient("creating queue", dir, e))?;
    }
    let tmp = dir.join("tmp").join(id);
    let new = dir.join("new").join(id);
    let mut envelope = format!("from <{}>\n", msg.sender);
    for r in recipients {
        envelope.push_str(&format!("to <{r}>\n"));
    }
    envelope.push('\n');
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(envelope.as_bytes())?;
            io::copy(&mut msg.content.reader()?, &mut f)?;
            // Durable with the rest of the batch, by the helper's flush.
            Ok(())
        });
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(transient("queueing", &tmp, e));
    }
    Ok(Staged::new(tmp, new))
}
