//! The loop's side of POP3: opening the maildrop at login (one session
//! per mailbox), streaming RETR and TOP from disk through a bounded
//! buffer as the socket drains, and handing UPDATE to the helpers.

pub mod transfer;

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use log::{info, warn};

use crate::util::logsafe::Quoted;

use crate::config::MailboxFormat;
use crate::proto::Failure;
use crate::proto::pop3::transfer::Encoder;
use crate::proto::pop3::{Listings, LoginError};
use crate::server::Server;
use crate::server::base::conn::Phase;
use crate::server::base::readers::{Chunk, ReadJob, Readers, Source};
use crate::server::base::writer::Task;
use crate::server::session::Session;
use crate::store::maildrop::Snapshot;
use transfer::Transfer;

/// POP3's state in the loop.
#[derive(Default)]
pub struct Pop3State {
    /// Mailboxes whose session left during UPDATE, by its key: their
    /// lock is freed when the update ends.
    pub(in crate::server::pop3) orphaned_locks:
        std::collections::HashMap<(usize, u64), String>,
}

impl Pop3State {
    /// The session `key` left during its UPDATE: `user`'s mailbox stays
    /// locked until the update is done.
    pub(in crate::server) fn hold_until_updated(
        &mut self,
        key: (usize, u64),
        user: String,
    ) {
        self.orphaned_locks.insert(key, user);
    }

    /// An update done: if its session had left, the mailbox it held.
    pub(in crate::server) fn updated_orphan(
        &mut self,
        key: (usize, u64),
    ) -> Option<String> {
        self.orphaned_locks.remove(&key)
    }
}

impl Server {
    /// POP3: where the user's mailbox is, to snapshot after the check.
    pub(in crate::server) fn mailbox_to_open(
        &self,
        user: &str,
    ) -> (MailboxFormat, std::path::PathBuf) {
        let cfg = &self.services.config;
        (cfg.mailbox_format, cfg.mailbox_dir(user))
    }

    /// A POP3 login's password was right: lock the mailbox (or refuse
    /// with IN-USE) and hand the snapshot to the session.
    pub(in crate::server) fn pop3_logged_in(
        &mut self,
        slot: usize,
        user: String,
        snapshot: Option<Result<Snapshot, crate::proto::Failure>>,
    ) {
        let Some(conn) = self.core.conn_mut(slot) else {
            return;
        };
        let Session::Pop3(p) = &mut conn.session else {
            return;
        };
        let result = if self.services.pop3_locks.contains(&user) {
            Err(LoginError::InUse)
        } else {
            match snapshot {
                Some(Ok(snap)) => {
                    self.services.pop3_locks.insert(user.clone());
                    p.mailbox = Some(user.clone());
                    // One snapshot, shared by the session and the loop.
                    let snap = Arc::new(snap);
                    p.maildrop = Some(Arc::clone(&snap));
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
        p.pop3.logged_in(result, &mut conn.wbuf);
        conn.phase = Phase::Open;
    }

    /// RETR or TOP: a reader helper opens the message and reads its
    /// first chunk; the loop encodes it as it comes.
    pub(in crate::server) fn start_send(
        &mut self,
        slot: usize,
        index: usize,
        top: Option<usize>,
    ) {
        let Some(conn) =
            self.core.conns.get_mut(slot).and_then(Option::as_mut)
        else {
            return;
        };
        let Some(p) = conn.session.as_pop3() else {
            return;
        };
        let Some(snap) = p.maildrop.as_ref() else {
            return self.close(slot, "no maildrop");
        };
        let unquote = snap.format == MailboxFormat::Mbox;
        let mbox = unquote.then(|| snap.dir.join(crate::store::mbox::INBOX));
        let snapshot = Arc::clone(snap);
        p.transfer = Some(Transfer {
            file: None,
            mbox: mbox.clone(),
            left: u64::MAX,
            reading: true,
            encoder: Encoder::new(top, unquote),
            carry: Vec::new(),
        });
        conn.phase = Phase::Sending;
        self.core.readers.send(ReadJob {
            key: (slot, conn.generation),
            source: Source::Open { snapshot, index },
            mbox,
        });
    }

    /// Chunks the readers have finished: hand each to its transfer.
    pub(in crate::server) fn finish_reads(&mut self) {
        let chunks: Vec<Chunk> = self.core.readers.finished().collect();
        for Chunk {
            key: (slot, generation),
            result,
            mbox,
        } in chunks
        {
            if self.outbound.owns((slot, generation)) {
                self.peer_chunk(slot, result);
                continue;
            }
            let imap = self
                .live_conn(slot, generation)
                .and_then(|c| c.session.as_imap())
                .is_some_and(|i| i.stream.is_some());
            if imap {
                self.imap_chunk(slot, result);
                continue;
            }
            let waiting = self
                .live_conn(slot, generation)
                .and_then(|c| c.session.as_pop3())
                .is_some_and(|p| p.transfer.is_some());
            if !waiting {
                // The client left meanwhile.
                if let Ok((file, _, _)) = result {
                    close_reader(&self.core.readers, file, mbox);
                }
                continue;
            }
            let Some(conn) = self.core.conn_mut(slot) else {
                continue;
            };
            let Some(p) = conn.session.as_pop3() else {
                continue;
            };
            let Some(t) = p.transfer.as_mut() else {
                continue;
            };
            match result {
                Ok((file, left, data)) => {
                    t.file = Some(file);
                    t.left = left;
                    t.reading = false;
                    t.carry.extend_from_slice(&data);
                    self.flush(slot);
                    self.drive(slot);
                }
                Err(e) => {
                    warn!("conn={} cannot read message: {e}", conn.id);
                    p.transfer = None;
                    // The +OK is out: a partial answer must end the session.
                    p.pop3.send_failed();
                    conn.phase = Phase::Closing;
                    self.flush(slot);
                }
            }
        }
    }

    /// Encodes what has been read into the output, and asks for the next
    /// chunk once that is used up; true when the message is all out.
    pub(in crate::server) fn pump(&mut self, slot: usize) -> bool {
        let Some(conn) =
            self.core.conns.get_mut(slot).and_then(Option::as_mut)
        else {
            return false;
        };
        let Some(p) = conn.session.as_pop3() else {
            return false;
        };
        let Some(t) = p.transfer.as_mut() else {
            return false;
        };
        if t.reading {
            return false;
        }
        let last = t.left == 0;
        let used = t.encoder.push(&t.carry, last, &mut conn.wbuf);
        t.carry.drain(..used);
        if last || t.encoder.is_done() {
            t.encoder.finish(&mut conn.wbuf);
            release(&self.core.readers, p.transfer.take());
            p.pop3.sent();
            conn.phase = Phase::Open;
            return true;
        }
        // What is left in carry is a line start still undecided: read on.
        if let Some(file) = t.file.take() {
            t.reading = true;
            let left = t.left;
            self.core.readers.send(ReadJob {
                key: (slot, conn.generation),
                source: Source::Next { file, left },
                mbox: t.mbox.clone(),
            });
        }
        false
    }

    /// QUIT in TRANSACTION: apply the marks off the loop.
    pub(in crate::server) fn start_update(
        &mut self,
        slot: usize,
        deleted: Vec<usize>,
        seen: Vec<usize>,
    ) {
        let Some(conn) =
            self.core.conns.get_mut(slot).and_then(Option::as_mut)
        else {
            return;
        };
        let Some(p) = conn.session.as_pop3() else {
            return;
        };
        let Some(snapshot) = p.maildrop.take() else {
            return self.close(slot, "no maildrop");
        };
        info!(
            "conn={} pop3 update user={} deleted={} seen={}",
            conn.id,
            Quoted(p.mailbox.as_deref().unwrap_or("?")),
            deleted.len(),
            seen.len()
        );
        conn.phase = Phase::Delivering;
        self.core.writer.send((
            Task::Update {
                snapshot,
                deleted,
                seen,
            },
            (slot, conn.generation),
        ));
    }
}

/// Ends a transfer: its file is closed by a reader helper (for mbox,
/// closing it could drop a delivery's fcntl lock on the same file, so the
/// close may have to wait, never on the loop).
pub(in crate::server) fn release(
    readers: &Readers,
    transfer: Option<Transfer>,
) {
    if let Some(Transfer {
        file: Some(file),
        mbox,
        ..
    }) = transfer
    {
        close_reader(readers, file, mbox);
    }
}

/// Closes a message file read for a transfer.
fn close_reader(readers: &Readers, file: File, mbox: Option<PathBuf>) {
    match mbox {
        // Close jobs report nothing back, so the key is never read.
        Some(_) => readers.send(ReadJob {
            key: (usize::MAX, 0),
            source: Source::Close(file),
            mbox,
        }),
        None => drop(file),
    }
}

impl Server {
    /// A POP3 UPDATE is done: the last reply, then the session ends.
    pub(in crate::server) fn updated(
        &mut self,
        slot: usize,
        result: Result<(), Failure>,
    ) {
        let Some(conn) = self.core.conn_mut(slot) else {
            return;
        };
        let Session::Pop3(p) = &mut conn.session else {
            return;
        };
        if let Err(f) = &result {
            // The target it had in server/mod.rs: logs are an interface.
            warn!(target: "postling::server", "conn={} pop3 update failed: {f}", conn.id);
        }
        // IMAP sessions on this INBOX hear of the deletions at once.
        let inbox = p.mailbox.as_deref().map(|user| {
            let cfg = &self.services.config;
            crate::store::folders::place(
                &cfg.mailbox_dir(user),
                "INBOX",
                cfg.mailbox_format,
            )
        });
        p.pop3
            .updated(result.map_err(|f| f.to_string()), &mut conn.wbuf);
        conn.phase = Phase::Closing;
        if let Some(inbox) = inbox {
            self.rescan(&inbox);
        }
        self.resume(slot);
    }
}
