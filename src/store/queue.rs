//! The outbound queue: each accepted message for another domain is one
//! file, `{data_dir}/queue/new/{id}`, written like a Maildir message
//! (tmp, rename, one flush for the batch). The file is the envelope, a
//! blank line, then the message (DKIM-signed, without Return-Path):
//!
//! ```text
//! from <sender@example.org>
//! to <friend@elsewhere.example>
//!
//! DKIM-Signature: ...
//! Received: ...
//! ```

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::maildir::Staged;
use super::{Message, transient};
use crate::proto::Failure;
use crate::proto::dkim::canon::BodyHash;
use crate::proto::dkim::sign::Signer;
use crate::util::fs::create_dir_durable;

/// Writes the queue file for `id`, durable but not yet in `new/`. It is
/// signed only if `owns` every From: address (else the sender).
pub fn stage(
    dir: &Path,
    id: &str,
    recipients: &[String],
    msg: &Message<'_>,
    dkim: &[Signer],
    owns: &dyn Fn(&str) -> bool,
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
    // The signature goes before the message, over what the world gets.
    let signature = dkim_signature(msg, dkim, owns)
        .map_err(|e| transient("signing", dir, e))?;
    envelope.push_str(&signature);
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(envelope.as_bytes())?;
            // Header lines this copy alone gets (a Sieve redirect's).
            f.write_all(msg.prefix)?;
            let mut reader = io::BufReader::new(msg.content.reader()?);
            skip_return_path(&mut reader)?;
            io::copy(&mut reader, &mut f)?;
            // Durable with the rest of the batch, by the helper's flush.
            Ok(())
        });
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(transient("queueing", &tmp, e));
    }
    Ok(Staged::new(tmp, new))
}

/// Leaves out the `Return-Path` our trace headers begin with: it is
/// for the final delivery to add (RFC 5321 4.4), not for a relay to send.
fn skip_return_path(reader: &mut impl io::BufRead) -> io::Result<()> {
    let head = reader.fill_buf()?;
    if head.len() >= 12 && head[..12].eq_ignore_ascii_case(b"Return-Path:") {
        let end = memchr::memchr(b'\n', head).map_or(head.len(), |i| i + 1);
        reader.consume(end);
    }
    Ok(())
}

/// The `DKIM-Signature` field for `msg` if its From domain (or else its
/// sender's) has a key; empty otherwise. Reads the message once.
fn dkim_signature(
    msg: &Message<'_>,
    dkim: &[Signer],
    owns: &dyn Fn(&str) -> bool,
) -> io::Result<String> {
    use std::io::Read;
    if dkim.is_empty() {
        return Ok(String::new());
    }
    let mut reader = msg.content.reader()?;
    let mut head = Vec::new();
    let mut body = BodyHash::default();
    let mut in_body = false;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        let mut piece = &buf[..n];
        if !in_body {
            head.extend_from_slice(piece);
            match memchr::memmem::find(&head, b"\n\n") {
                Some(end) => {
                    in_body = true;
                    let rest = head.split_off(end + 2);
                    head.truncate(end + 1);
                    body.update(&rest);
                }
                None if head.len() > 1 << 20 => return Ok(String::new()),
                None => {}
            }
            piece = &[];
        }
        body.update(piece);
    }
    let from = from_addresses(&head);
    if from.iter().any(|a| !owns(a))
        || (from.is_empty() && !msg.sender.is_empty() && !owns(msg.sender))
    {
        // Our signature would vouch for an address not the submitter's.
        return Ok(String::new());
    }
    let from_domain = from
        .first()
        .and_then(|a| a.rsplit_once('@'))
        .map(|(_, d)| d.to_string())
        .or_else(|| {
            msg.sender
                .rsplit_once('@')
                .map(|(_, d)| d.to_ascii_lowercase())
        });
    let Some(domain) = from_domain else {
        return Ok(String::new());
    };
    // The domain's own key, else a parent domain's: our bounces come
    // from MAILER-DAEMON@ the host name, under one of our domains
    // (DMARC's relaxed alignment accepts that).
    let signer = dkim.iter().find(|s| s.domain == domain).or_else(|| {
        dkim.iter()
            .find(|s| domain.ends_with(&format!(".{}", s.domain)))
    });
    let Some(signer) = signer else {
        return Ok(String::new());
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    signer
        .sign(&head, &body.finish(), now)
        .map_err(io::Error::other)
}

/// Every address of every From field, the domain lower case.
fn from_addresses(head: &[u8]) -> Vec<String> {
    crate::proto::imap::mime::fields(head)
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("from"))
        .flat_map(|(_, v)| crate::proto::imap::structure::addresses(v))
        .filter_map(|a| {
            let (local, host) = (a.mailbox?, a.host?);
            Some(format!(
                "{}@{}",
                String::from_utf8_lossy(&local),
                String::from_utf8_lossy(&host).to_ascii_lowercase()
            ))
        })
        .collect()
}
