//! The server's figures, gathered for `/metrics` (and `status`): what
//! the loop knows at once, plus the queue's size, which the queue
//! helper counts (listing the queue is disk work, not the loop's). A
//! request waits for that count; requests arriving meanwhile share it.

use std::time::Instant;

use crate::proto::http::session::respond;
use crate::server::Server;
use crate::server::base::conn::Phase;
use crate::server::base::stats::Event;

/// Everything `/metrics` shows.
pub struct Figures {
    pub uptime: u64,
    /// Resident memory, octets.
    pub memory: Option<u64>,
    /// Open connections by service name.
    pub connections: Vec<(&'static str, usize)>,
    /// Each event: (since start, last hour, last day).
    pub events: Vec<(Event, (u64, u64, u64))>,
    /// The queue's size and its oldest message's age, seconds.
    pub queue: Option<(usize, Option<u64>)>,
    /// Clients locked out for their login failures.
    pub lockouts: usize,
}

/// A request for the figures, waiting for the queue's count.
pub struct Wanted {
    pub key: (usize, u64),
    pub close: bool,
}

impl Server {
    /// `/metrics` was asked on `slot`: count the queue, then answer.
    pub(in crate::server) fn answer_metrics(
        &mut self,
        slot: usize,
        close: bool,
    ) {
        let Some(conn) = self.core.conn_mut(slot) else {
            return;
        };
        // Nothing more is read until the answer is written.
        conn.phase = Phase::Delivering;
        let key = (slot, conn.generation);
        if self.outbound.figures_wanted.is_empty() {
            self.queue_count();
        }
        self.outbound.figures_wanted.push(Wanted { key, close });
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
        let text = prometheus(&figures);
        for Wanted {
            key: (slot, generation),
            close,
        } in wanted
        {
            let Some(conn) = self.live_conn(slot, generation) else {
                continue;
            };
            let kind = "text/plain; version=0.0.4; charset=utf-8";
            let date = crate::util::date::http(std::time::SystemTime::now());
            respond(
                &mut conn.wbuf,
                &date,
                200,
                kind,
                text.as_bytes(),
                close,
                &[],
            );
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
        }
    }
}

/// This process's resident memory, from /proc.
fn resident_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The figures in Prometheus's text format (0.0.4).
pub fn prometheus(f: &Figures) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    // Each family: its HELP and TYPE lines, then its samples.
    let family = |out: &mut String, name: &str, kind: &str, help: &str| {
        let _ = write!(
            out,
            "# HELP postling_{name} {help}\n# TYPE postling_{name} {kind}\n"
        );
    };
    family(
        &mut out,
        "uptime_seconds",
        "gauge",
        "Seconds since the server started.",
    );
    let _ = writeln!(out, "postling_uptime_seconds {}", f.uptime);
    if let Some(m) = f.memory {
        family(
            &mut out,
            "resident_memory_bytes",
            "gauge",
            "Resident memory of the process.",
        );
        let _ = writeln!(out, "postling_resident_memory_bytes {m}");
    }
    family(
        &mut out,
        "connections",
        "gauge",
        "Open connections by service.",
    );
    for (service, n) in &f.connections {
        let _ =
            writeln!(out, "postling_connections{{service=\"{service}\"}} {n}");
    }
    for (event, (total, hour, day)) in &f.events {
        let name = event.name();
        let noun = match event {
            Event::LoginFailed => "Logins refused".to_string(),
            e => format!("Messages {}", e.name()),
        };
        let stem = match event {
            Event::LoginFailed => name.to_string(),
            _ => format!("messages_{name}"),
        };
        family(
            &mut out,
            &format!("{stem}_total"),
            "counter",
            &format!("{noun} since the server started."),
        );
        let _ = writeln!(out, "postling_{stem}_total {total}");
        family(
            &mut out,
            &format!("{stem}_last_hour"),
            "gauge",
            &format!("{noun} in the last hour."),
        );
        let _ = writeln!(out, "postling_{stem}_last_hour {hour}");
        family(
            &mut out,
            &format!("{stem}_last_day"),
            "gauge",
            &format!("{noun} in the last 24 hours."),
        );
        let _ = writeln!(out, "postling_{stem}_last_day {day}");
    }
    if let Some((size, oldest)) = f.queue {
        family(
            &mut out,
            "queue_messages",
            "gauge",
            "Messages in the outbound queue.",
        );
        let _ = writeln!(out, "postling_queue_messages {size}");
        family(
            &mut out,
            "queue_oldest_seconds",
            "gauge",
            "Age of the oldest queued message (0 when empty).",
        );
        let _ = writeln!(
            out,
            "postling_queue_oldest_seconds {}",
            oldest.unwrap_or(0)
        );
    }
    family(
        &mut out,
        "login_lockouts",
        "gauge",
        "Clients locked out for failed logins.",
    );
    let _ = writeln!(out, "postling_login_lockouts {}", f.lockouts);
    out
}
