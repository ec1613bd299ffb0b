//! The loop's side of POP3: opening the maildrop at login (one session
//! per mailbox), streaming RETR and TOP from disk through a bounded
//! buffer as the socket drains, and handing UPDATE to the helpers.

use std::fs::File;
use std::io::Read;
use std::sync::Arc;

use log::{info, warn};

use crate::util::logsafe::Quoted;

use super::Server;
use super::conn::{Phase, WBUF_CAP};
use super::session::Session;
use super::writer::Task;
use crate::config::MailboxFormat;
use crate::proto::pop3::transfer::Encoder;
use crate::proto::pop3::{Listings, LoginError};
use crate::store::maildrop::{self, Snapshot};

/// Octets read from disk per step of a transfer.
const CHUNK: usize = 16 * 1024;

/// A message being sent.
pub struct Transfer {
    file: File,
    /// For mbox: the file, whose descriptor must be closed with care.
    mbox: Option<std::path::PathBuf>,
    left: u64,
    encoder: Encoder,
    /// Octets read but not yet encoded (a line start still undecided).
    carry: Vec<u8>,
}

impl Server {
    /// POP3: where the user's mailbox is, to snapshot after the check.
    pub(super) fn mailbox_to_open(
        &self,
        user: &str,
    ) -> (MailboxFormat, std::path::PathBuf) {
        let cfg = &self.services.config;
        (cfg.mailbox_format, cfg.mailbox_dir(user))
    }

    /// A POP3 login's password was right: lock the mailbox (or refuse
    /// with IN-USE) and hand the snapshot to the session.
    pub(super) fn pop3_logged_in(
        &mut self,
        slot: usize,
        user: String,
        snapshot: Option<Result<Snapshot, crate::proto::Failure>>,
    ) {
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut)
        else {
            return;
        };
        let Session::Pop3(session) = &mut conn.session else {
            return;
        };
        let result = if self.services.pop3_locks.contains(&user) {
            Err(LoginError::InUse)
        } else {
            match snapshot {
                Some(Ok(snap)) => {
                    self.services.pop3_locks.insert(user.clone());
                    conn.mailbox = Some(user.clone());
                    // One snapshot, shared by the session and the loop.
                    let snap = Arc::new(snap);
                    conn.maildrop = Some(Arc::clone(&snap));
                    Ok(snap as Arc<dyn Listings>)
                }
                Some(Err(f)) => Err(LoginError::Unavailable(f.to_string())),
                None => Err(LoginError::Unavailable("not opened".into())),
            }
        };
        if let Err(e) = &result {
            warn!(
                "conn={} pop3 login user={} ip={}: {e:?}",
                conn.id,
                Quoted(&user),
                conn.peer
            );
        }
        session.logged_in(result, &mut conn.wbuf);
        conn.phase = Phase::Open;
    }

    /// RETR or TOP: open the message and start streaming it.
    pub(super) fn start_send(
        &mut self,
        slot: usize,
        index: usize,
        top: Option<usize>,
    ) {
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut)
        else {
            return;
        };
        let Some(snap) = conn.maildrop.as_deref() else {
            return self.close(slot, "no maildrop");
        };
        let unquote = snap.format == MailboxFormat::Mbox;
        match maildrop::reader(snap, index) {
            Ok((file, left)) => {
                conn.transfer = Some(Transfer {
                    file,
                    left,
                    encoder: Encoder::new(top, unquote),
                    mbox: unquote
                        .then(|| snap.dir.join(crate::store::mbox::INBOX)),
                    carry: Vec::new(),
                });
                conn.phase = Phase::Sending;
            }
            Err(e) => {
                warn!(
                    "conn={} cannot read message {}: {e}",
                    conn.id,
                    index + 1
                );
                // The +OK is out: a partial answer must end the session.
                if let Session::Pop3(p) = &mut conn.session {
                    p.send_failed();
                }
                conn.phase = Phase::Closing;
            }
        }
    }

    /// Moves more of the message into the output while there is room;
    /// true when it is all out.
    pub(super) fn pump(&mut self, slot: usize) -> bool {
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut)
        else {
            return false;
        };
        let Some(t) = conn.transfer.as_mut() else {
            return false;
        };
        let mut buf = [0u8; CHUNK];
        while conn.wbuf.len() < WBUF_CAP / 2 {
            let want = CHUNK.min(usize::try_from(t.left).unwrap_or(CHUNK));
            let n = if want == 0 || t.encoder.is_done() {
                0
            } else {
                match t.file.read(&mut buf[..want]) {
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                        continue;
                    }
                    Err(e) => {
                        warn!("conn={} read failed: {e}", conn.id);
                        release(&self.writer, conn.transfer.take());
                        conn.phase = Phase::Closing;
                        return false;
                    }
                }
            };
            t.left -= n as u64;
            let eof = n == 0 || t.left == 0;
            t.carry.extend_from_slice(&buf[..n]);
            let used = t.encoder.push(&t.carry, eof, &mut conn.wbuf);
            t.carry.drain(..used);
            if eof || t.encoder.is_done() {
                t.encoder.finish(&mut conn.wbuf);
                release(&self.writer, conn.transfer.take());
                conn.phase = Phase::Open;
                if let Session::Pop3(p) = &mut conn.session {
                    p.sent();
                }
                return true;
            }
        }
        false
    }

    /// QUIT in TRANSACTION: apply the marks off the loop.
    pub(super) fn start_update(
        &mut self,
        slot: usize,
        deleted: Vec<usize>,
        seen: Vec<usize>,
    ) {
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut)
        else {
            return;
        };
        let Some(snapshot) = conn.maildrop.take() else {
            return self.close(slot, "no maildrop");
        };
        info!(
            "conn={} pop3 update user={} deleted={} seen={}",
            conn.id,
            Quoted(conn.mailbox.as_deref().unwrap_or("?")),
            deleted.len(),
            seen.len()
        );
        conn.phase = Phase::Delivering;
        self.writer.send((
            Task::Update {
                snapshot,
                deleted,
                seen,
            },
            (slot, conn.generation),
        ));
    }
}

/// Ends a transfer. An mbox reader's descriptor is closed by a helper
/// (closing it could drop a delivery's fcntl lock on the same file).
pub(super) fn release(
    writer: &super::writer::Writer,
    transfer: Option<Transfer>,
) {
    let Some(t) = transfer else { return };
    match t.mbox {
        // Release tasks report nothing back, so the key is never read.
        Some(path) => {
            writer.send((Task::Release(t.file, path), (usize::MAX, 0)))
        }
        None => drop(t.file),
    }
}
