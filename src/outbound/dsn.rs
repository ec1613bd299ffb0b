//! Delivery status notifications (RFC 3464): the message a sender gets
//! when mail it sent could not be delivered, or is late. A
//! `multipart/report` of a part people read, a `message/delivery-status`
//! part with a block per recipient, and the original's header
//! (`text/rfc822-headers`). Written with LF line ends, as stored.

use std::fmt::Write as _;
use std::time::SystemTime;

use crate::util::date;

/// Which notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Delivery failed for good (`Action: failed`).
    Failed,
    /// Still being tried (`Action: delayed`).
    Delayed,
}

/// One recipient to report on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The address, without brackets.
    pub rcpt: String,
    /// The last reply about it, on one line (`550 5.1.1 no such user`,
    /// or our own words with a status code first).
    pub reply: String,
    /// The server that gave the reply, if one did.
    pub remote: Option<String>,
}

/// Everything a notice says.
#[derive(Debug)]
pub struct Report<'a> {
    /// Failed or delayed.
    pub kind: Kind,
    /// Our host name (Reporting-MTA, the From address).
    pub hostname: &'a str,
    /// The original's queue id.
    pub queue_id: &'a str,
    /// Who gets this: the original's envelope sender.
    pub to: &'a str,
    /// When the original arrived.
    pub arrival: SystemTime,
    /// Now.
    pub now: SystemTime,
    /// Until when a delayed message is retried.
    pub retry_until: Option<SystemTime>,
    /// The recipients.
    pub entries: &'a [Entry],
    /// The original's header block.
    pub headers: &'a [u8],
}

/// The notice, ready to deliver with envelope sender `<>`.
pub fn compose(r: &Report<'_>) -> Vec<u8> {
    let boundary = format!("{}.dsn/{}", r.queue_id, r.hostname);
    let subject = match r.kind {
        Kind::Failed => "Undelivered Mail Returned to Sender",
        Kind::Delayed => "Delayed Mail (still being retried)",
    };
    let mut m = String::with_capacity(2048 + r.headers.len());
    let _ = write!(
        m,
        "From: Mail Delivery System <MAILER-DAEMON@{host}>\n\
         To: <{to}>\n\
         Subject: {subject}\n\
         Date: {date}\n\
         Message-ID: <{id}.{kind}@{host}>\n\
         Auto-Submitted: auto-replied\n\
         MIME-Version: 1.0\n\
         Content-Type: multipart/report; report-type=delivery-status;\n\
         \tboundary=\"{boundary}\"\n\
         \n\
         This is a MIME-encapsulated message.\n\
         \n\
         --{boundary}\n\
         Content-Description: Notification\n\
         Content-Type: text/plain; charset=utf-8\n\
         \n",
        host = r.hostname,
        to = r.to,
        date = date::rfc5322(r.now),
        id = r.queue_id,
        kind = match r.kind {
            Kind::Failed => "failed",
            Kind::Delayed => "delayed",
        },
    );
    m.push_str(&human(r));
    let _ = write!(
        m,
        "\n--{boundary}\n\
         Content-Description: Delivery report\n\
         Content-Type: message/delivery-status\n\
         \n\
         Reporting-MTA: dns; {host}\n\
         X-Postling-Queue-ID: {id}\n\
         Arrival-Date: {arrival}\n",
        host = r.hostname,
        id = r.queue_id,
        arrival = date::rfc5322(r.arrival),
    );
    for e in r.entries {
        m.push('\n');
        m.push_str(&status_block(r, e));
    }
    let _ = write!(
        m,
        "\n--{boundary}\n\
         Content-Description: Undelivered Message Headers\n\
         Content-Type: text/rfc822-headers\n\
         \n"
    );
    let mut out = m.into_bytes();
    let head = header_block(r.headers);
    out.extend_from_slice(head);
    if !head.ends_with(b"\n") {
        out.push(b'\n');
    }
    out.extend_from_slice(format!("\n--{boundary}--\n").as_bytes());
    out
}

/// The part people read: what happened, and what to do about it.
fn human(r: &Report<'_>) -> String {
    let mut s = format!("This is the mail system at {}.\n\n", r.hostname);
    match r.kind {
        Kind::Failed => s.push_str(
            "Your message could not be delivered to one or more\n\
             recipients. It is attached below (its header). The reasons\n\
             follow; check the addresses for typing mistakes. If a\n\
             reason is not clear, forward this notice to your postmaster.\n",
        ),
        Kind::Delayed => {
            s.push_str(
                "Your message has not been delivered yet to one or more\n\
                 recipients. It is still being tried; you need do nothing\n\
                 now. You will hear again only if it cannot be delivered",
            );
            match r.retry_until {
                Some(t) => {
                    let _ = write!(s, "\nby {}.\n", date::rfc5322(t));
                }
                None => s.push_str(".\n"),
            }
        }
    }
    s.push('\n');
    for e in r.entries {
        let _ = write!(s, "<{}>: ", e.rcpt);
        if let Some(host) = &e.remote {
            let _ = write!(s, "{host} said: ");
        }
        let _ = writeln!(s, "{}", e.reply);
    }
    s
}

/// A recipient's block of the delivery-status part.
fn status_block(r: &Report<'_>, e: &Entry) -> String {
    let (code, status) = codes(&e.reply, r.kind);
    let mut s = format!(
        "Final-Recipient: rfc822; {}\nAction: {}\nStatus: {status}\n",
        e.rcpt,
        match r.kind {
            Kind::Failed => "failed",
            Kind::Delayed => "delayed",
        }
    );
    if let Some(host) = &e.remote {
        // The host part without the [address].
        let name = host.split('[').next().unwrap_or(host);
        let _ = writeln!(s, "Remote-MTA: dns; {name}");
    }
    let text: String = e.reply.chars().filter(|c| !c.is_control()).collect();
    if code.is_some() {
        let _ = writeln!(s, "Diagnostic-Code: smtp; {text}");
    } else {
        let _ = writeln!(s, "Diagnostic-Code: X-Postling; {text}");
    }
    let _ = writeln!(s, "Last-Attempt-Date: {}", date::rfc5322(r.now));
    if let (Kind::Delayed, Some(t)) = (r.kind, r.retry_until) {
        let _ = writeln!(s, "Will-Retry-Until: {}", date::rfc5322(t));
    }
    s
}

/// The reply's SMTP code (if it starts with one) and the status: its
/// enhanced code, else one made from its class.
fn codes(reply: &str, kind: Kind) -> (Option<u16>, String) {
    let mut words = reply.split_whitespace();
    let first = words.next().unwrap_or("");
    let code = (first.len() == 3)
        .then(|| first.parse::<u16>().ok())
        .flatten()
        .filter(|c| (200..600).contains(c));
    let enhanced = |w: &str| {
        let parts: Vec<&str> = w.split('.').collect();
        parts.len() == 3
            && matches!(parts[0], "2" | "4" | "5")
            && parts[1..].iter().all(|p| {
                !p.is_empty()
                    && p.len() <= 3
                    && p.bytes().all(|b| b.is_ascii_digit())
            })
    };
    let candidate = if code.is_some() {
        words.next()
    } else {
        Some(first)
    };
    let status = match candidate.filter(|w| enhanced(w)) {
        Some(w) => w.to_string(),
        None => match (code.map(|c| c / 100), kind) {
            (Some(5), _) => "5.0.0".to_string(),
            (_, Kind::Delayed) | (Some(4), _) => "4.0.0".to_string(),
            _ => "5.0.0".to_string(),
        },
    };
    (code, status)
}

/// The original's header block (to the blank line), at most 64 KiB.
fn header_block(msg: &[u8]) -> &[u8] {
    let end = memchr::memmem::find(msg, b"\n\n").map_or(msg.len(), |i| i + 1);
    &msg[..end.min(64 * 1024)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_notice_has_the_three_parts() {
        let entries = vec![
            Entry {
                rcpt: "bob@far.example".into(),
                reply: "550 5.1.1 no such user".into(),
                remote: Some("mx.far.example[192.0.2.1]".into()),
            },
            Entry {
                rcpt: "eve@gone.example".into(),
                reply: "5.1.2 no such domain".into(),
                remote: None,
            },
        ];
        let r = Report {
            kind: Kind::Failed,
            hostname: "mail.example.org",
            queue_id: "ABC",
            to: "alice@example.org",
            arrival: SystemTime::UNIX_EPOCH,
            now: SystemTime::UNIX_EPOCH,
            retry_until: None,
            entries: &entries,
            headers: b"Subject: hi\nFrom: alice@example.org\n\nbody\n",
        };
        let text = String::from_utf8(compose(&r)).unwrap_or_default();
        assert!(text.contains("report-type=delivery-status"));
        assert!(text.contains("Final-Recipient: rfc822; bob@far.example\nAction: failed\nStatus: 5.1.1\nRemote-MTA: dns; mx.far.example\nDiagnostic-Code: smtp; 550 5.1.1 no such user"));
        assert!(
            text.contains("Status: 5.1.2\nDiagnostic-Code: X-Postling; 5.1.2")
        );
        assert!(text.contains("text/rfc822-headers\n\nSubject: hi\nFrom: alice@example.org\n\n--ABC"));
        assert!(!text.contains("body"));
        assert!(text.ends_with("--ABC.dsn/mail.example.org--\n"));
    }

    #[test]
    fn status_codes() {
        assert_eq!(codes("451 4.7.1 later", Kind::Delayed).1, "4.7.1");
        assert_eq!(codes("451 later", Kind::Delayed).1, "4.0.0");
        assert_eq!(codes("554 no", Kind::Failed).1, "5.0.0");
        assert_eq!(
            codes("connection refused", Kind::Delayed),
            (None, "4.0.0".into())
        );
        assert_eq!(
            codes("4.4.7 expired", Kind::Failed),
            (None, "4.4.7".into())
        );
    }
}
