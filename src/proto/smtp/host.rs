//! What joins the SMTP session to the rest of the server: its settings,
//! the facts about its connection, the [`Host`] it asks, and the
//! [`Step`]s and [`Envelope`]s it hands back.

use std::net::IpAddr;

use super::body::Sink;
use super::{Path, ReversePath};
use crate::proto::sasl::Credentials;

/// Settings shared by every session of one listener.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Our name in the greeting and EHLO reply.
    pub hostname: String,
    /// Refuse messages larger than this (RFC 1870).
    pub max_message_size: u64,
    /// Recipients per transaction (RFC 5321 4.5.3.1.8 asks for 100).
    pub max_recipients: usize,
    /// A submission port: MAIL needs AUTH first (RFC 6409 4.3).
    pub submission: bool,
    /// STARTTLS may be offered (a certificate is configured).
    pub starttls: bool,
}

/// The negotiated TLS parameters, for Received (RFC 3848 comments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// `TLSv1.3` and so on.
    pub version: String,
    /// The cipher suite's name.
    pub cipher: String,
}

/// What the loop knows about the connection.
#[derive(Debug, Clone)]
pub struct Link {
    /// The client's address.
    pub peer: IpAddr,
    /// In `trusted_networks`: may relay without AUTH.
    pub trusted: bool,
    /// May send a password without TLS (loopback, or
    /// `require_tls_auth = no`).
    pub cleartext_auth: bool,
    /// Set once a TLS handshake has completed.
    pub tls: Option<TlsInfo>,
    /// On the local socket: the submitting account's uid (SO_PEERCRED).
    pub local_uid: Option<u32>,
    /// In `login_trusted_networks`: a front end (a webmail) that may
    /// name the client it logs in for (IMAP ID, XCLIENT).
    pub front_end: bool,
}

/// The `ADDR=` of an `XCLIENT attr=value ...` line (SMTP and POP3, as
/// Postfix and Dovecot spell it), the last if given twice.
pub fn xclient_addr(args: &[u8]) -> Option<IpAddr> {
    args.split(|&b| b == b' ')
        .filter_map(|attr| {
            let eq = attr.iter().position(|&b| b == b'=')?;
            attr[..eq]
                .eq_ignore_ascii_case(b"ADDR")
                .then(|| &attr[eq + 1..])
        })
        .next_back()
        .and_then(named_client)
}

/// The client address a front end names (`XCLIENT ADDR=`, IMAP ID's
/// `x-originating-ip`): an IP address, IPv6 with or without `IPV6:`.
pub fn named_client(value: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(value).ok()?.trim();
    let text = match text.get(..5) {
        Some(p) if p.eq_ignore_ascii_case("IPV6:") => &text[5..],
        _ => text,
    };
    text.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// Why a recipient was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RcptError {
    /// A local domain, but no such user or alias (550 5.1.1).
    UnknownUser,
    /// Not one of our domains (550 5.7.1 unless relaying is allowed).
    NotLocal,
    /// An SRS address we did not make, or made too long ago (550 5.7.1).
    InvalidSrs,
}

/// Local knowledge the session asks for.
pub trait Host {
    /// The mailboxes (user addresses) a recipient delivers to.
    fn resolve(&mut self, to: &Path) -> Result<Vec<String>, RcptError>;
    /// True if the logged-in `user` may use `from` as MAIL FROM: their
    /// own address, or an alias that delivers to them.
    fn may_send_as(&mut self, user: &str, from: &Path) -> bool;
    /// True if a message of `size` octets (the client's `SIZE=`, or 0)
    /// does not fit in one of these mailboxes' quotas (RCPT's 452).
    fn over_quota(&mut self, mailboxes: &[String], size: u64) -> bool {
        let _ = (mailboxes, size);
        false
    }
    /// True if the local account `uid` may use `from` as MAIL FROM.
    fn local_may_send_as(&mut self, uid: u32, from: &Path) -> bool {
        let _ = (uid, from);
        false
    }
    /// A fresh, unique queue id.
    fn queue_id(&mut self) -> String;
    /// False while the disk is too full to take a message
    /// (`min_free_space`): MAIL is refused with 452 4.3.1.
    fn has_room(&mut self) -> bool {
        true
    }
    /// Greylisting: seconds the stranger `peer` must wait before
    /// `from` may send to `to`, or None to go on.
    fn greylisted(
        &mut self,
        peer: IpAddr,
        from: &str,
        to: &Path,
    ) -> Option<u64> {
        let _ = (peer, from, to);
        None
    }
}

/// What the session borrows from the loop for one call.
pub struct Cx<'a> {
    /// Replies go here.
    pub out: &'a mut Vec<u8>,
    /// Users, aliases, ids.
    pub host: &'a mut dyn Host,
    /// Message octets go here (the connection's spool).
    pub sink: &'a mut dyn Sink,
}

/// Where one recipient's copy goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Local mailboxes (user addresses) after aliases.
    Local(Vec<String>),
    /// Another domain: into the outbound queue.
    Relay,
}

/// One accepted recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// As the client wrote it in RCPT TO.
    pub path: Path,
    /// Where it goes.
    pub route: Route,
}

/// Everything known about a message besides its octets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Queue id, shown to the client and in logs and Received.
    pub id: String,
    /// MAIL FROM.
    pub from: ReversePath,
    /// Accepted RCPT TOs.
    pub rcpts: Vec<Recipient>,
    /// The client's EHLO/HELO name.
    pub helo: String,
    /// The client's address.
    pub peer: IpAddr,
    /// The client's name from reverse DNS, if it came in time.
    pub peer_name: Option<String>,
    /// The Received `with` keyword: `ESMTPSA` and so on (RFC 3848, 6531).
    pub protocol: String,
    /// TLS in use, if any.
    pub tls: Option<TlsInfo>,
    /// The logged-in user, if any.
    pub user: Option<String>,
    /// The local account that submitted it (`postling sendmail`).
    pub local_uid: Option<u32>,
    /// The message size as sent.
    pub size: u64,
}

/// What the loop must do after a call.
#[derive(Debug)]
pub enum Step {
    /// Keep reading.
    Continue,
    /// Store this message, then call `Server::delivered`. Its octets
    /// went to the sink, after the sink's `begin`, with LF line ends.
    Deliver(Box<Envelope>),
    /// Flush the replies, drop any input already read, start a TLS
    /// handshake, and call `Server::tls_started` when it completes.
    StartTls,
    /// Check these credentials off the loop, then call
    /// `Server::authenticated`.
    Authenticate(Credentials),
    /// Flush the output and close.
    Close,
    /// Run the outbound queue now, every message (ETRN).
    FlushQueue,
    /// Write the server's figures as a 250 reply, then read on
    /// (XSTATUS, on the local socket).
    Status { json: bool },
}

/// The Received `with` keyword (RFC 3848 2, RFC 6531 3.7.3).
pub fn protocol_name(
    extended: bool,
    utf8: bool,
    tls: bool,
    auth: bool,
) -> String {
    if !extended {
        return "SMTP".into();
    }
    let mut name = String::from(if utf8 { "UTF8SMTP" } else { "ESMTP" });
    if tls {
        name.push('S');
    }
    if auth {
        name.push('A');
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xclient_names_one_address() {
        let ip = |s: &str| s.parse::<IpAddr>().ok();
        assert_eq!(xclient_addr(b"ADDR=192.0.2.7"), ip("192.0.2.7"));
        assert_eq!(
            xclient_addr(b"NAME=x addr=IPV6:2001:db8::1 PORT=25"),
            ip("2001:db8::1")
        );
        assert_eq!(xclient_addr(b"ADDR=1.1.1.1 ADDR=[::1]"), ip("::1"));
        for bad in [
            &b""[..],
            b"ADDR",
            b"ADDR=",
            b"ADDR=[UNAVAILABLE]",
            b"NAME=a",
        ] {
            assert_eq!(xclient_addr(bad), None, "{bad:?}");
        }
        assert_eq!(named_client(b" 203.0.113.9 "), ip("203.0.113.9"));
    }
}
