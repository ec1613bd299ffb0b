//! Whether a vacation reply goes out (RFC 5230 §4.5–4.6, as Pigeonhole
//! decides it), and the reply itself: never to `<>`, a list, a robot or
//! ourselves, once per sender and period, `Auto-Submitted:
//! auto-replied`, sent from `<>`.

use super::message::Mail;
use crate::proto::imap::{mime, structure};
use crate::proto::sieve::run::VacationReply;

/// The period when a script gives none, and the least and most one may
/// give (Pigeonhole's defaults).
pub const DEFAULT_PERIOD: u64 = 7 * 86_400;
pub const MIN_PERIOD: u64 = 86_400;
pub const MAX_PERIOD: u64 = 60 * 86_400;

/// Headers a mailing list's mail carries (RFC 2369, RFC 2919).
const LIST_FIELDS: [&str; 7] = [
    "list-id",
    "list-help",
    "list-subscribe",
    "list-unsubscribe",
    "list-post",
    "list-owner",
    "list-archive",
];

/// A reply to send: its envelope recipient and the message (LF).
#[derive(Debug)]
pub struct Reply {
    pub to: String,
    pub message: Vec<u8>,
    /// The memory key and period that stop a second reply.
    pub key: String,
    pub period: u64,
}

/// The key a reply to this sender is remembered by.
pub fn memory_key(v: &VacationReply, sender: &str) -> String {
    format!("{}\0{}", v.handle, sender.to_ascii_lowercase())
}

/// The reply to `mail` for `user`, or why none goes. `ours` says
/// whether an address reaches this user.
pub fn reply(
    v: &VacationReply,
    mail: &Mail,
    user: &str,
    ours: &dyn Fn(&str) -> bool,
    hostname: &str,
) -> Result<Reply, &'static str> {
    let sender = mail.from;
    if sender.is_empty() {
        return Err("sender is <>");
    }
    if system_address(sender) {
        return Err("sender is a robot's address");
    }
    let field = |name: &str| -> Vec<String> {
        mail.fields
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| mime::decode_words(v).trim().to_string())
            .collect()
    };
    if field("auto-submitted")
        .iter()
        .any(|a| !a.eq_ignore_ascii_case("no"))
    {
        return Err("message is Auto-Submitted");
    }
    if LIST_FIELDS.iter().any(|f| !field(f).is_empty()) {
        return Err("message is from a mailing list");
    }
    if field("precedence").iter().any(|p| {
        ["bulk", "list", "junk"]
            .iter()
            .any(|x| p.eq_ignore_ascii_case(x))
    }) {
        return Err("message has Precedence bulk, list or junk");
    }
    let mine = |a: &str| {
        a.eq_ignore_ascii_case(mail.to)
            || a.eq_ignore_ascii_case(user)
            || v.addresses.iter().any(|x| x.eq_ignore_ascii_case(a))
            || ours(a)
    };
    if mine(sender) {
        return Err("sender is the user");
    }
    let addressed =
        ["to", "cc", "bcc", "resent-to", "resent-cc", "resent-bcc"]
            .iter()
            .any(|name| {
                mail.fields
                    .iter()
                    .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                    .flat_map(|(_, val)| structure::addresses(val))
                    .filter_map(|a| {
                        Some(format!(
                            "{}@{}",
                            String::from_utf8_lossy(&a.mailbox?),
                            String::from_utf8_lossy(&a.host?)
                        ))
                    })
                    .any(|a| mine(&a))
            });
    if !addressed {
        return Err("user is not in To, Cc or Bcc");
    }
    let period = v
        .period
        .unwrap_or(DEFAULT_PERIOD)
        .clamp(MIN_PERIOD, MAX_PERIOD);
    let subject =
        v.subject
            .clone()
            .unwrap_or_else(|| match field("subject").first() {
                Some(s) if !s.is_empty() => format!("Auto: {s}"),
                _ => "Automated reply".to_string(),
            });
    let from = v.from.clone().unwrap_or_else(|| format!("<{user}>"));
    let mut m = String::new();
    m.push_str(&format!(
        "Date: {}\n",
        crate::util::date::rfc5322(std::time::SystemTime::now())
    ));
    m.push_str(&format!("From: {}\n", one_line(&from)));
    m.push_str(&format!("To: <{sender}>\n"));
    m.push_str(&format!("Subject: {}\n", encoded(&one_line(&subject))));
    m.push_str(&format!(
        "Message-ID: <{}.vacation@{hostname}>\n",
        crate::util::id::queue_id()
    ));
    if let Some(id) = field("message-id").first().filter(|i| !i.is_empty()) {
        m.push_str(&format!("In-Reply-To: {id}\n"));
        let refs = field("references").first().cloned().unwrap_or_default();
        m.push_str(&format!(
            "References: {}\n",
            format!("{refs} {id}").trim()
        ));
    }
    m.push_str("Auto-Submitted: auto-replied (vacation)\n");
    m.push_str("MIME-Version: 1.0\n");
    if v.mime {
        // The reason is a MIME entity: its own header, then its body.
        m.push_str(v.reason.trim_start_matches(['\r', '\n']));
    } else {
        m.push_str("Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n");
        m.push_str(&v.reason);
    }
    if !m.ends_with('\n') {
        m.push('\n');
    }
    Ok(Reply {
        to: sender.to_string(),
        message: m.replace("\r\n", "\n").into_bytes(),
        key: memory_key(v, sender),
        period,
    })
}

/// Addresses robots send from (Pigeonhole's list).
fn system_address(a: &str) -> bool {
    let local = a
        .rsplit_once('@')
        .map_or(a, |(l, _)| l)
        .to_ascii_lowercase();
    ["mailer-daemon", "listserv", "majordomo"].contains(&local.as_str())
        || local.starts_with("owner-")
        || local.ends_with("-request")
        || local.ends_with("-owner")
}

fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A header value in RFC 2047 words when it is not ASCII.
fn encoded(s: &str) -> String {
    if s.is_ascii() {
        return s.to_string();
    }
    use base64ct::Encoding;
    // Words of at most 45 octets of text (60 of base64), cut on
    // character boundaries.
    let mut words = Vec::new();
    let mut start = 0;
    while start < s.len() {
        let mut end = (start + 45).min(s.len());
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        words.push(format!(
            "=?utf-8?B?{}?=",
            base64ct::Base64::encode_string(&s.as_bytes()[start..end])
        ));
        start = end;
    }
    words.join("\n ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn robots_and_encoded_subjects() {
        assert!(system_address("MAILER-DAEMON@x.test"));
        assert!(system_address("owner-list@x.test"));
        assert!(system_address("list-request@x.test"));
        assert!(!system_address("alice@x.test"));
        assert_eq!(encoded("Auto: hi"), "Auto: hi");
        assert_eq!(
            mime::decode_words(encoded("Auto: grüße").as_bytes()),
            "Auto: grüße"
        );
    }
}
