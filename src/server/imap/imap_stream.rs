//! Large FETCH literals, streamed: the loop sends a message file's
//! octets as the socket takes them, a chunk at a time from the reader
//! helpers, LF made CRLF on the way, so a 50 MiB BODY[] costs a
//! connection two chunks of memory, not the message.

use std::fs::File;
use std::path::PathBuf;

use log::warn;

use crate::proto::imap::request::{No, Reply, Stream};
use crate::server::Server;
use crate::server::base::conn::{Phase, WBUF_CAP};
use crate::server::base::readers::{ReadJob, Source};

/// Log lines keep the target they had before the file moved into its
/// folder: a log's format is an interface (filters, RUST_LOG).
const LOG_TARGET: &str = "postling::server::imap_stream";

/// A literal being streamed.
pub struct ImapStream {
    /// The open file, while no read is in flight.
    file: Option<File>,
    /// File octets not yet read.
    left_in_file: u64,
    /// A chunk is being read.
    reading: bool,
    /// Converted octets still to drop (a partial FETCH's start).
    skip: u64,
    /// Converted octets still to send.
    left: u64,
    /// The last file octet was a CR (a CRLF split across chunks).
    prev_cr: bool,
    /// The file offset of the next octet read.
    pos: u64,
    /// File offsets of octets to leave out, ascending (mbox quoting).
    drops: std::collections::VecDeque<u64>,
}

impl ImapStream {
    /// True while waiting for a reader.
    pub fn is_reading(&self) -> bool {
        self.reading
    }
}

impl Server {
    /// Starts streaming `stream` from the session's selected folder.
    pub(in crate::server) fn start_stream(
        &mut self,
        slot: usize,
        dir: PathBuf,
        s: Stream,
    ) {
        let Some(conn) =
            self.core.conns.get_mut(slot).and_then(Option::as_mut)
        else {
            return;
        };
        let Some(i) = conn.session.as_imap() else {
            return;
        };
        i.stream = Some(ImapStream {
            file: None,
            left_in_file: 0,
            reading: true,
            skip: s.skip,
            left: s.len,
            prev_cr: false,
            pos: s.from,
            drops: s.drops.iter().copied().filter(|&d| d >= s.from).collect(),
        });
        // An mbox folder is itself the file.
        let path = if s.file.is_empty() {
            dir
        } else {
            dir.join(&s.file)
        };
        conn.phase = Phase::Sending;
        self.core.readers.send(ReadJob {
            key: (slot, conn.generation),
            source: Source::Path {
                path,
                offset: s.from,
            },
            mbox: None,
        });
    }

    /// A chunk for an IMAP stream: converted into the output.
    pub(in crate::server) fn imap_chunk(
        &mut self,
        slot: usize,
        result: std::io::Result<(File, u64, Vec<u8>)>,
    ) {
        let Some(conn) = self.core.conn_mut(slot) else {
            return;
        };
        let Some(i) = conn.session.as_imap() else {
            return;
        };
        let Some(st) = i.stream.as_mut() else { return };
        let (file, left, data) = match result {
            Ok(x) => x,
            Err(e) => {
                warn!(target: LOG_TARGET, "conn={} cannot read message: {e}", conn.id);
                i.stream = None;
                return self
                    .stream_done(slot, Err(No::text("message unreadable")));
            }
        };
        st.reading = false;
        st.left_in_file = left;
        st.file = Some(file);
        let start = st.pos;
        st.pos += data.len() as u64;
        let end = st.pos;
        if st.drops.front().is_some_and(|&d| d < end) {
            // Rare (mbox `>From ` lines): copy the chunk without them.
            let mut kept = Vec::with_capacity(data.len());
            for (i, &b) in data.iter().enumerate() {
                if st.drops.front() == Some(&(start + i as u64)) {
                    st.drops.pop_front();
                    continue;
                }
                kept.push(b);
            }
            convert(st, &kept, &mut conn.wbuf);
        } else {
            convert(st, &data, &mut conn.wbuf);
        }
        if st.left == 0 {
            i.stream = None;
            return self.stream_done(slot, Ok(()));
        }
        if data.is_empty() || left == 0 {
            // The file is shorter than announced: the literal cannot be
            // finished honestly.
            i.stream = None;
            return self.stream_done(
                slot,
                Err(No::text("message changed while sent")),
            );
        }
        self.flush(slot);
    }

    /// Asks for the next chunk once the output has room; true if the
    /// connection has a stream.
    pub(in crate::server) fn pump_stream(&mut self, slot: usize) {
        let Some(conn) = self.core.conn_mut(slot) else {
            return;
        };
        let key = (slot, conn.generation);
        let room = conn.wbuf.len() < WBUF_CAP / 2;
        let Some(i) = conn.session.as_imap() else {
            return;
        };
        let Some(st) = i.stream.as_mut() else { return };
        if st.reading || !room {
            return;
        }
        let Some(file) = st.file.take() else { return };
        st.reading = true;
        let left = st.left_in_file;
        self.core.readers.send(ReadJob {
            key,
            source: Source::Next { file, left },
            mbox: None,
        });
    }

    fn stream_done(&mut self, slot: usize, result: Result<(), No>) {
        if let Some(conn) = self.core.conn_mut(slot) {
            conn.phase = Phase::Delivering;
        }
        self.imap_reply(slot, Reply::Streamed(result));
    }
}

/// Appends `data` with bare LF made CRLF, dropping `skip` converted
/// octets first and stopping after `left`.
fn convert(st: &mut ImapStream, data: &[u8], out: &mut Vec<u8>) {
    let mut emit = |bytes: &[u8], st: &mut ImapStream| {
        let mut b = bytes;
        if st.skip > 0 {
            let s = (st.skip as usize).min(b.len());
            st.skip -= s as u64;
            b = &b[s..];
        }
        let n = (st.left as usize).min(b.len());
        out.extend_from_slice(&b[..n]);
        st.left -= n as u64;
    };
    let mut start = 0;
    for i in memchr::memchr_iter(b'\n', data) {
        let before = if i == 0 {
            st.prev_cr
        } else {
            data[i - 1] == b'\r'
        };
        if !before {
            emit(&data[start..i], st);
            emit(b"\r\n", st);
            start = i + 1;
        }
    }
    emit(&data[start..], st);
    if let Some(&last) = data.last() {
        st.prev_cr = last == b'\r';
    }
}
