//! The message a script looks at, on a delivery helper: its header
//! fields (read once, through the content parsers' caps), its body
//! under the `body` transforms, and what the user's store knows.

use std::path::Path;

use crate::config::MailboxFormat;
use crate::proto::imap::mime;
use crate::proto::sieve::run::Env;
use crate::proto::sieve::script::Transform;

/// Octets of a message read for its header and body at most.
pub const MAX_READ: usize = 1024 * 1024;
/// Body values longer than this are cut (`body` tests).
const MAX_BODY_VALUE: usize = 256 * 1024;

/// One message for one recipient.
pub struct Mail<'a> {
    /// The message's first [`MAX_READ`] octets.
    pub msg: &'a [u8],
    pub fields: Vec<(String, Vec<u8>)>,
    pub size: u64,
    pub from: &'a str,
    pub to: &'a str,
    pub root: &'a Path,
    pub format: MailboxFormat,
    pub score: Option<f64>,
    pub now: i64,
}

impl<'a> Mail<'a> {
    pub fn new(
        msg: &'a [u8],
        size: u64,
        from: &'a str,
        to: &'a str,
        root: &'a Path,
        format: MailboxFormat,
    ) -> Self {
        let (header, _) = split(msg);
        Mail {
            msg,
            fields: mime::fields(header),
            size,
            from,
            to,
            root,
            format,
            score: None,
            now: crate::util::date::now_secs(),
        }
    }
}

/// Header (its blank line included) and body, LF or CRLF.
pub fn split(msg: &[u8]) -> (&[u8], &[u8]) {
    let lf = memchr::memmem::find(msg, b"\n\n").map(|i| i + 2);
    let crlf = memchr::memmem::find(msg, b"\r\n\r\n").map(|i| i + 4);
    match [lf, crlf].into_iter().flatten().min() {
        Some(at) => msg.split_at(at),
        None => (msg, &[]),
    }
}

impl Env for Mail<'_> {
    fn fields(&self) -> &[(String, Vec<u8>)] {
        &self.fields
    }

    fn size(&self) -> u64 {
        self.size
    }

    fn envelope_from(&self) -> &str {
        self.from
    }

    fn envelope_to(&self) -> &str {
        self.to
    }

    fn body(&self, transform: &Transform) -> Vec<String> {
        let cut = |b: &[u8]| {
            String::from_utf8_lossy(&b[..b.len().min(MAX_BODY_VALUE)])
                .into_owned()
        };
        if let Transform::Raw = transform {
            return vec![cut(split(self.msg).1)];
        }
        let root = mime::parse(self.msg);
        let mut leaves = Vec::new();
        collect_leaves(&root, &mut leaves);
        let mut out = Vec::new();
        for p in leaves {
            let (kind, sub) =
                (p.kind.0.to_ascii_lowercase(), p.kind.1.to_ascii_lowercase());
            let wanted = match transform {
                Transform::Text => kind == "text",
                Transform::Content(types) => types.iter().any(|t| {
                    let t = t.to_ascii_lowercase();
                    t.is_empty() || t == kind || t == format!("{kind}/{sub}")
                }),
                Transform::Raw => false,
            };
            if !wanted {
                continue;
            }
            let body = &self.msg[p.body.0..p.body.1];
            let decoded = mime::decode(body, p.encoding.as_deref())
                .unwrap_or_else(|| body.to_vec());
            let charset = p
                .params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("charset"))
                .map(|(_, v)| v.as_str());
            let text = mime::to_utf8(&decoded, charset);
            let text = match (transform, sub.as_str()) {
                (Transform::Text, "html") => {
                    crate::spam::html::strip(&text).text
                }
                _ => text,
            };
            out.push(cut(text.as_bytes()));
        }
        out
    }

    fn mailbox_exists(&self, name: &str) -> bool {
        let name = if name.eq_ignore_ascii_case("INBOX") {
            "INBOX"
        } else {
            name
        };
        crate::store::folders::exists(self.root, name, self.format)
    }

    fn seen(&self, id: &str) -> bool {
        super::memory::seen(
            self.root,
            super::memory::Kind::Duplicate,
            id,
            self.now,
        )
    }

    fn spam_score(&self) -> Option<f64> {
        self.score
    }

    fn now(&self) -> i64 {
        self.now
    }
}

/// A message's leaf parts (a message/rfc822 part is one leaf: its
/// text is not the message's own).
fn collect_leaves<'p>(p: &'p mime::Part, out: &mut Vec<&'p mime::Part>) {
    match p.is_multipart() {
        true => p.children.iter().for_each(|c| collect_leaves(c, out)),
        false => out.push(p),
    }
}
