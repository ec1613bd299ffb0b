//! The figures written out: Prometheus's text format for `/metrics`,
//! and plain text or JSON for `postling status`.

use std::fmt::Write;

use crate::server::base::stats::Event;

/// Everything `status` and `/metrics` show.
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
    /// Jobs waiting for each kind of helper.
    pub helpers: Vec<(&'static str, usize)>,
    /// Seconds until the certificate expires (negative: expired).
    pub cert_expires_in: Option<i64>,
    /// What ACME last did, if it is on.
    pub acme: Option<String>,
}

/// An event's metric stem and the noun its help text uses.
fn stem(event: Event) -> (String, String) {
    match event {
        Event::LoginFailed => (event.name().into(), "Logins refused".into()),
        e => (
            format!("messages_{}", e.name()),
            format!("Messages {}", e.name()),
        ),
    }
}

/// The figures in Prometheus's text format (0.0.4).
pub fn prometheus(f: &Figures) -> String {
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
        let (stem, noun) = stem(*event);
        for (suffix, kind, when, n) in [
            ("total", "counter", "since the server started", total),
            ("last_hour", "gauge", "in the last hour", hour),
            ("last_day", "gauge", "in the last 24 hours", day),
        ] {
            family(
                &mut out,
                &format!("{stem}_{suffix}"),
                kind,
                &format!("{noun} {when}."),
            );
            let _ = writeln!(out, "postling_{stem}_{suffix} {n}");
        }
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
    family(
        &mut out,
        "helper_queue_depth",
        "gauge",
        "Jobs waiting for each kind of helper thread.",
    );
    for (helper, n) in &f.helpers {
        let _ = writeln!(
            out,
            "postling_helper_queue_depth{{helper=\"{helper}\"}} {n}"
        );
    }
    if let Some(secs) = f.cert_expires_in {
        family(
            &mut out,
            "certificate_expiry_seconds",
            "gauge",
            "Seconds until the TLS certificate expires.",
        );
        let _ = writeln!(out, "postling_certificate_expiry_seconds {secs}");
    }
    out
}

/// `postling status`: a line a figure.
pub fn text(f: &Figures) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "uptime: {}", duration(f.uptime));
    if let Some(m) = f.memory {
        let _ = writeln!(out, "memory: {} KiB resident", m / 1024);
    }
    let conns: Vec<String> = f
        .connections
        .iter()
        .map(|(s, n)| format!("{s} {n}"))
        .collect();
    let conns = if conns.is_empty() {
        "none".to_string()
    } else {
        conns.join(", ")
    };
    let _ = writeln!(out, "connections: {conns}");
    let _ = writeln!(
        out,
        "{:<16}{:>10}{:>10}{:>12}",
        "", "last hour", "last day", "since start"
    );
    for (event, (total, hour, day)) in &f.events {
        let name = event.name().replace('_', " ");
        let _ = writeln!(out, "{name:<16}{hour:>10}{day:>10}{total:>12}");
    }
    match f.queue {
        Some((0, _)) => out.push_str("queue: empty\n"),
        Some((n, oldest)) => {
            let age = oldest.map_or(String::new(), |a| {
                format!(", oldest {}", duration(a))
            });
            let _ = writeln!(out, "queue: {n} messages{age}");
        }
        None => out.push_str("queue: could not be read\n"),
    }
    let _ = writeln!(out, "login lockouts: {}", f.lockouts);
    let helpers: Vec<String> =
        f.helpers.iter().map(|(h, n)| format!("{h} {n}")).collect();
    let _ = writeln!(out, "helper queues: {}", helpers.join(", "));
    match f.cert_expires_in {
        Some(s) if s < 0 => out.push_str("certificate: EXPIRED\n"),
        Some(s) => {
            let _ = writeln!(
                out,
                "certificate: expires in {}",
                duration(s as u64)
            );
        }
        None => out.push_str("certificate: none\n"),
    }
    if let Some(a) = &f.acme {
        let _ = writeln!(out, "acme: {a}");
    }
    out
}

/// `postling status --json`: the same figures as one JSON object.
pub fn json(f: &Figures) -> String {
    let object = |pairs: &[(&str, usize)]| -> String {
        let items: Vec<String> =
            pairs.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
        format!("{{{}}}", items.join(", "))
    };
    let events: Vec<String> = f
        .events
        .iter()
        .map(|(e, (total, hour, day))| {
            format!(
                "\"{}\": {{\"last_hour\": {hour}, \"last_day\": {day}, \"total\": {total}}}",
                e.name()
            )
        })
        .collect();
    let or_null = |v: Option<String>| v.unwrap_or_else(|| "null".into());
    let queue = f.queue.map(|(size, oldest)| {
        format!(
            "{{\"messages\": {size}, \"oldest_seconds\": {}}}",
            or_null(oldest.map(|o| o.to_string()))
        )
    });
    format!(
        "{{\n\"uptime_seconds\": {},\n\"memory_bytes\": {},\n\"connections\": {},\n\
         \"events\": {{{}}},\n\"queue\": {},\n\"login_lockouts\": {},\n\
         \"helper_queues\": {},\n\"certificate_expires_in_seconds\": {},\n\
         \"acme\": {}\n}}\n",
        f.uptime,
        or_null(f.memory.map(|m| m.to_string())),
        object(&f.connections),
        events.join(", "),
        or_null(queue),
        f.lockouts,
        object(&f.helpers),
        or_null(f.cert_expires_in.map(|s| s.to_string())),
        or_null(f.acme.as_deref().map(crate::proto::json::quote)),
    )
}

/// `3d 4h`, `5h 2m`, `4m 10s`.
fn duration(secs: u64) -> String {
    let (d, h, m, s) =
        (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Figures {
        Figures {
            uptime: 90_061,
            memory: Some(4 << 20),
            connections: vec![("HTTP", 1), ("SMTP", 2)],
            events: Event::ALL.iter().map(|&e| (e, (3, 1, 2))).collect(),
            queue: Some((2, Some(600))),
            lockouts: 1,
            helpers: vec![("durable", 0), ("checks", 3)],
            cert_expires_in: Some(86_400 * 30),
            acme: Some("ok: certificate obtained".into()),
        }
    }

    #[test]
    fn forms() {
        let f = sample();
        let t = text(&f);
        assert!(t.starts_with("uptime: 1d 1h\n"), "{t}");
        assert!(t.contains("queue: 2 messages, oldest 10m 0s\n"));
        assert!(t.contains("certificate: expires in 30d 0h\n"));
        let p = prometheus(&f);
        assert!(p.contains("postling_messages_received_total 3\n"));
        assert!(
            p.contains("postling_helper_queue_depth{helper=\"checks\"} 3\n")
        );
        let j = json(&f);
        assert!(j.contains(
            "\"queue\": {\"messages\": 2, \"oldest_seconds\": 600}"
        ));
        assert!(j.contains(
            "\"received\": {\"last_hour\": 1, \"last_day\": 2, \"total\": 3}"
        ));
    }
}
