//! The server's figures, gathered for `/metrics` and `postling status`:
//! what the loop knows at once, plus the queue's size, which the queue
//! helper counts (listing the queue is disk work, not the loop's). A
//! request waits for that count; requests arriving meanwhile share it.

use std::time::{Instant, SystemTime};

use crate::proto::http::session::respond;
use crate::server::Server;
use crate::server::base::conn::Phase;
use crate::server::base::stats::Event;

use super::figures_text::{Figures, json, prometheus, text};

/// A request for the figures, waiting for the queue's count.
pub struct Wanted {
    pub key: (usize, u64),
    pub how: How,
}

/// Who asked, and in what form.
#[derive(Clone, Copy)]
pub enum How {
    /// `/metrics`; close afterwards, or not.
    Metrics { close: bool },
    /// `XSTATUS` on the local socket.
    Status { json: bool },
}

impl Server {
    /// The figures were asked on `slot`: count the queue, then answer.
    pub(in crate::server) fn want_figures(&mut self, slot: usize, how: How) {
        let Some(conn) = self.core.conn_mut(slot) else {
            return;
        };
        // Nothing more is read until the answer is written.
        conn.phase = Phase::Delivering;
        let key = (slot, conn.generation);
        if self.outbound.figures_wanted.is_empty() {
            self.queue_count();
        }
        self.outbound.figures_wanted.push(Wanted { key, how });
    }

    /// The queue helper counted the queue: every waiting request gets
    /// its answer.
    pub(in crate::server) fn queue_counted(
        &mut self,
        counted: Option<(usize, Option<i64>)>,
    ) {
        let wanted = std::mem::take(&mut self.outbound.figures_wanted);
        if wanted.is_empty() {
            return;
        }
        let figures = self.figures(counted);
        for Wanted {
            key: (slot, generation),
            how,
        } in wanted
        {
            let Some(conn) = self.live_conn(slot, generation) else {
                continue;
            };
            let close = match how {
                How::Metrics { close } => {
                    let body = prometheus(&figures);
                    let kind = "text/plain; version=0.0.4; charset=utf-8";
                    let date = crate::util::date::http(SystemTime::now());
                    let out = &mut conn.wbuf;
                    respond(
                        out,
                        &date,
                        200,
                        kind,
                        body.as_bytes(),
                        close,
                        &[],
                    );
                    close
                }
                How::Status { json: as_json } => {
                    let body = if as_json {
                        json(&figures)
                    } else {
                        text(&figures)
                    };
                    smtp_lines(&mut conn.wbuf, &body);
                    false
                }
            };
            conn.phase = if close { Phase::Closing } else { Phase::Open };
            conn.deadline = Instant::now() + conn.idle;
            self.flush(slot);
            // Requests pipelined behind it waited in the buffer.
            if !close {
                self.feed(slot, 0);
                self.drive(slot);
            }
        }
    }

    /// The figures now, with the queue's count.
    fn figures(&mut self, counted: Option<(usize, Option<i64>)>) -> Figures {
        let now = Instant::now();
        let mut connections: Vec<(&'static str, usize)> = Vec::new();
        for conn in self.core.conns.iter().flatten() {
            let name = conn.service.name();
            match connections.iter_mut().find(|(n, _)| *n == name) {
                Some((_, count)) => *count += 1,
                None => connections.push((name, 1)),
            }
        }
        connections.sort();
        let helpers = self.helper_depths();
        let stats = &mut self.services.stats;
        let events = Event::ALL
            .iter()
            .map(|&e| (e, stats.figures(e, now)))
            .collect();
        let epoch = crate::util::date::now_secs();
        Figures {
            uptime: now.duration_since(stats.started).as_secs(),
            memory: resident_memory(),
            connections,
            events,
            queue: counted.map(|(size, oldest)| {
                (size, oldest.map(|c| (epoch - c).max(0) as u64))
            }),
            lockouts: self.services.limiter.locked_out(now),
            helpers,
            cert_expires_in: self.services.cert_expiry.map(|t| t - epoch),
            acme: self.acme.as_ref().map(|a| {
                a.state.lock().unwrap_or_else(|p| p.into_inner()).clone()
            }),
        }
    }

    /// Jobs waiting for each kind of helper.
    fn helper_depths(&self) -> Vec<(&'static str, usize)> {
        let mut depths = vec![
            ("durable", self.core.writer.depth()),
            ("reader", self.core.readers.depth()),
            ("login", self.logins.depth()),
            ("queue", self.queue_helper_depth()),
        ];
        depths.extend(self.smtp.helper_depths());
        depths
    }
}

/// `text` as one 250 reply, a line each.
fn smtp_lines(out: &mut Vec<u8>, text: &str) {
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let sep = if i + 1 == lines.len() { ' ' } else { '-' };
        out.extend_from_slice(format!("250{sep}{line}\r\n").as_bytes());
    }
    if lines.is_empty() {
        out.extend_from_slice(b"250 \r\n");
    }
}

/// This process's resident memory, from /proc.
fn resident_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
