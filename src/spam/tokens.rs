//! A message to the set of tokens the filter weighs: words of the
//! subject and of the decoded text parts (quoted-printable and base64
//! undone, charsets to UTF-8, HTML stripped), the sender's and links'
//! domains, the markup used, the kinds of attachments. Each token once
//! per message, as a 32-bit hash: the word database stores nothing a
//! user wrote, only counts.
//!
//! Everything is capped (text read, tokens kept) and each step is one
//! pass over its input: the message is a stranger's.

use std::collections::HashSet;

use crate::proto::imap::mime::{self, Part};

/// Decoded text read at most, over all parts.
pub const MAX_TEXT: usize = 256 * 1024;
/// Distinct tokens kept at most per message (the first ones found).
pub const MAX_TOKENS: usize = 3000;
/// Words longer than this are not words (base64 runs, hashes).
const MAX_WORD: usize = 32;
/// Parts looked at at most.
const MAX_PARTS: usize = 100;
/// Link hosts kept at most (for `uribl`), the first ones found.
pub const MAX_HOSTS: usize = 50;

/// A message's tokens, each once.
#[derive(Debug, Default)]
pub struct Tokens {
    /// The hashes, in the order found.
    pub hashes: Vec<u32>,
    /// The hosts of links, each once, in the order found (lower case).
    pub hosts: Vec<String>,
    seen: HashSet<u32>,
    text_left: usize,
}

impl Tokens {
    fn add(&mut self, kind: &str, word: &str) {
        if self.hashes.len() >= MAX_TOKENS {
            return;
        }
        let h = hash(kind, word);
        if self.seen.insert(h) {
            self.hashes.push(h);
        }
    }

    /// Words of `text`, with `kind` as their prefix.
    fn words(&mut self, kind: &str, text: &str) {
        let text = &text[..floor_boundary(text, self.text_left)];
        self.text_left -= text.len();
        for word in text.split(|c: char| !is_word_char(c)) {
            let word =
                word.trim_matches(|c: char| c == '-' || c == '\'' || c == '.');
            if word.len() < 2 || word.len() > MAX_WORD {
                continue;
            }
            if word.bytes().all(|b| b.is_ascii_digit()) && word.len() > 4 {
                continue; // dates, phone numbers, ids: noise
            }
            if word.is_ascii() {
                self.add(kind, &word.to_ascii_lowercase());
            } else {
                self.add(kind, &word.to_lowercase());
            }
        }
        self.urls(text);
    }

    /// The hosts of `http(s)://` links in plain text.
    fn urls(&mut self, text: &str) {
        let mut rest = text;
        while let Some(i) = rest.find("://") {
            let scheme_ok =
                rest[..i].ends_with("http") || rest[..i].ends_with("https");
            rest = &rest[i + 3..];
            if scheme_ok {
                self.link_host(rest);
            }
        }
    }

    /// `url:` tokens for the host a link starts with: the host, and its
    /// last two labels.
    fn link_host(&mut self, from: &str) {
        let host: String = from
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '.' || *c == '-')
            .take(253)
            .collect::<String>()
            .to_lowercase();
        let host = host.trim_matches('.');
        if host.is_empty() {
            return;
        }
        if self.hosts.len() < MAX_HOSTS
            && !self.hosts.iter().any(|h| h == host)
        {
            self.hosts.push(host.to_string());
        }
        self.add("url", host);
        let labels: Vec<&str> = host.rsplitn(3, '.').collect();
        if labels.len() >= 2 {
            self.add("url", &format!("{}.{}", labels[1], labels[0]));
        }
    }
}

/// Letters, digits and the marks words keep inside (`don't`, `e-mail`,
/// `$100`, `3.5`).
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '\'' | '-' | '$' | '.' | '!')
}

/// A token's hash: FNV-1a over the kind, a separator and the word.
pub fn hash(kind: &str, word: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in kind.bytes().chain([0u8]).chain(word.bytes()) {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// The largest char boundary of `s` at or below `at`.
fn floor_boundary(s: &str, at: usize) -> usize {
    let mut at = at.min(s.len());
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// Header fields whose words count, and the prefix each gets: what a
/// sender chooses, not what servers on the way add.
const FIELDS: [(&str, &str); 7] = [
    ("subject", "s"),
    ("from", "f"),
    ("reply-to", "r"),
    ("to", "t"),
    ("x-mailer", "m"),
    ("user-agent", "m"),
    ("content-type", "c"),
];

/// The tokens of `msg` (LF or CRLF line ends).
pub fn of(msg: &[u8]) -> Tokens {
    let mut t = Tokens {
        text_left: MAX_TEXT,
        ..Tokens::default()
    };
    let (head, _) = split_header(msg);
    for (name, value) in mime::fields(head) {
        let lower = name.to_ascii_lowercase();
        if let Some((_, kind)) = FIELDS.iter().find(|(n, _)| *n == lower) {
            let value = mime::decode_words(&value);
            t.words(kind, &value);
            if matches!(*kind, "f" | "r") {
                sender_domain(&mut t, kind, &value);
            }
        }
    }
    let tree = mime::parse(msg);
    let mut parts = 0;
    tree.visit(&mut |p: &Part| {
        parts += 1;
        if parts > MAX_PARTS || p.is_multipart() || t.text_left == 0 {
            return;
        }
        part_tokens(msg, p, &mut t);
    });
    t
}

/// The header and the rest, by the first empty line (LF or CRLF).
fn split_header(msg: &[u8]) -> (&[u8], &[u8]) {
    let lf = memchr::memmem::find(msg, b"\n\n").map(|i| i + 2);
    let crlf = memchr::memmem::find(msg, b"\n\r\n").map(|i| i + 3);
    let end = [lf, crlf].into_iter().flatten().min().unwrap_or(msg.len());
    msg.split_at(end)
}

/// `f:@domain` for the address in a From or Reply-To value.
fn sender_domain(t: &mut Tokens, kind: &str, value: &str) {
    if let Some(at) = value.rfind('@') {
        let domain: String = value[at + 1..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '.' || *c == '-')
            .take(253)
            .collect();
        t.add(kind, &format!("@{}", domain.to_lowercase()));
    }
}

/// One leaf part: its kind, and if it is text, its words.
fn part_tokens(msg: &[u8], p: &Part, t: &mut Tokens) {
    let kind = format!("{}/{}", p.kind.0, p.kind.1).to_ascii_lowercase();
    t.add("part", &kind);
    if let Some(enc) = &p.encoding {
        t.add("cte", &enc.to_ascii_lowercase());
    }
    let is_text = p.kind.0.is_empty() || p.kind.0.eq_ignore_ascii_case("text");
    if !is_text {
        if let Some(name) = p.param("name") {
            let ext = name.rsplit('.').next().unwrap_or("");
            t.add("file", &ext.to_ascii_lowercase());
        }
        return;
    }
    // Encoded text is at most 4/3 of what it decodes to: read no more
    // than the text still wanted needs.
    let budget = t.text_left.saturating_mul(2).saturating_add(1024);
    let (start, end) = p.body;
    let body = &msg[start..end.min(start.saturating_add(budget))];
    let raw = mime::decode(body, p.encoding.as_deref())
        .unwrap_or_else(|| body.to_vec());
    let text = mime::to_utf8(&raw, p.param("charset"));
    if p.kind.1.eq_ignore_ascii_case("html") {
        let s = super::html::strip(&text);
        for tag in &s.tags {
            t.add("tag", tag);
        }
        for link in &s.links {
            if let Some(i) = link.find("://") {
                t.link_host(&link[i + 3..]);
            }
        }
        t.words("", &s.text);
    } else {
        t.words("", &text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has(t: &Tokens, kind: &str, word: &str) -> bool {
        t.seen.contains(&hash(kind, word))
    }

    #[test]
    fn header_words_text_words_and_domains() {
        let t = of(b"From: \"Big Sale\" <deals@Shop.Example>\nSubject: =?utf-8?q?Caf=C3=A9_offer?=\n\
            Received: from relay.example\n\nBuy cheap WATCHES at https://www.Cheap.example/x now!\n");
        assert!(has(&t, "s", "café") && has(&t, "s", "offer"));
        assert!(has(&t, "f", "@shop.example") && has(&t, "f", "sale"));
        assert!(has(&t, "", "watches") && has(&t, "", "now!"));
        assert!(
            has(&t, "url", "www.cheap.example")
                && has(&t, "url", "cheap.example")
        );
        assert_eq!(t.hosts, ["www.cheap.example"]);
        assert!(
            !has(&t, "", "relay.example"),
            "Received is not the sender's"
        );
        assert!(
            has(&t, "part", "text/plain"),
            "a message without Content-Type is one text part"
        );
    }

    #[test]
    fn decoded_parts_html_and_attachments() {
        let msg = b"Content-Type: multipart/mixed; boundary=b\n\n--b\n\
            Content-Type: text/html; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\n\
            <p>Gr=FC=DFe <a href=3D\"http://link.example/\">klick</a></p>\n--b\n\
            Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\naGlkZGVuIHdvcmRz\n--b\n\
            Content-Type: application/octet-stream; name=\"invoice.exe\"\n\nMZ\n--b--\n";
        let t = of(msg);
        assert!(has(&t, "", "grüße") && has(&t, "", "klick"));
        assert!(has(&t, "tag", "a") && has(&t, "url", "link.example"));
        assert_eq!(t.hosts, ["link.example"], "from quoted-printable HTML");
        assert!(has(&t, "", "hidden") && has(&t, "", "words"));
        assert!(
            has(&t, "file", "exe")
                && has(&t, "part", "application/octet-stream")
        );
        assert!(has(&t, "cte", "quoted-printable"));
    }

    #[test]
    fn each_token_once_and_the_caps_hold() {
        let t = of(b"Subject: a\n\nspam spam spam spam\n");
        assert_eq!(
            t.hashes.iter().filter(|h| **h == hash("", "spam")).count(),
            1
        );
        let mut big = b"Subject: x\n\n".to_vec();
        for i in 0..20_000 {
            big.extend_from_slice(format!("word{i} ").as_bytes());
        }
        assert_eq!(of(&big).hashes.len(), MAX_TOKENS);
    }

    #[test]
    fn nasty_messages() {
        let deep =
            "Content-Type: multipart/mixed; boundary=b\n\n--b\n".repeat(500);
        let parts = format!(
            "Content-Type: multipart/mixed; boundary=b\n\n{}--b--\n",
            "--b\nContent-Type: text/plain\n\nx\n".repeat(10_000)
        );
        let long_word = format!(
            "Subject: {}\n\n{}\n",
            "a".repeat(1 << 20),
            "b".repeat(1 << 20)
        );
        let links = format!("Subject: x\n\n{}", "https://://".repeat(100_000));
        for msg in [
            &b""[..], b"\n", b"Subject", b"Subject: =?x?q?", b"\n\n\n",
            b"Content-Type: text/html\n\n<a href=\"http://", deep.as_bytes(),
            parts.as_bytes(), long_word.as_bytes(), links.as_bytes(),
            b"Content-Type: text/plain; charset=nonsense\nContent-Transfer-Encoding: base64\n\n!!!!",
            &[0xff, 0xfe, b'\n', b'\n', 0xc3],
        ] {
            let t = of(msg);
            assert!(t.hashes.len() <= MAX_TOKENS);
        }
    }
}
