//! URLFETCH's answer for one URL (RFC 4467, RFC 5524 URLAUTH=BINARY):
//! the octets it names, decoded when asked, and the structure of the
//! part.

use super::fetch::SectionText;
use super::mime::{self, Part};
use super::render::section_octets;
use super::structure;
use super::url::ImapUrl;

/// What a URL gives: the octets (None: NIL) and, when asked, the
/// BODYPARTSTRUCTURE (None: NIL).
pub struct Answer {
    /// The data.
    pub data: Option<Vec<u8>>,
    /// BODYPARTSTRUCTURE, when asked for.
    pub structure: Option<Vec<u8>>,
}

/// The part of `msg` (CRLF) that `url` names.
pub fn answer(
    msg: &[u8],
    url: &ImapUrl,
    binary: bool,
    want_structure: bool,
) -> Answer {
    let tree = mime::parse(msg);
    let whole_part = url
        .section
        .as_ref()
        .is_none_or(|s| s.text == SectionText::All);
    let path: &[u32] = url.section.as_ref().map_or(&[], |s| &s.part);
    let part = if path.is_empty() {
        Some(&tree)
    } else {
        tree.find(path)
    };
    let structure = match (want_structure, part) {
        (true, Some(_)) if whole_part && binary => {
            decoded_structure(msg, &tree, path)
        }
        (true, Some(p)) if whole_part => {
            let mut out = Vec::new();
            structure::body(msg, p, true, &mut out);
            Some(out)
        }
        _ => None,
    };
    let data = match part {
        None => None,
        Some(_) if !binary => Some(match &url.section {
            Some(s) => section_octets(msg, s),
            None => msg.to_vec(),
        }),
        Some(p) if whole_part => decoded(msg, p, path.is_empty()),
        // BINARY of a header or text section is not defined.
        Some(_) => None,
    };
    let data = data.map(|d| match url.partial {
        Some((start, len)) => {
            let s = (start as usize).min(d.len());
            let e = len.map_or(d.len(), |l| {
                s.saturating_add(l as usize).min(d.len())
            });
            d[s..e].to_vec()
        }
        None => d,
    });
    Answer { data, structure }
}

/// With BINARY, BODYPARTSTRUCTURE describes the part as BINARY gives
/// it: sizes and lines of the decoded octets. The encodings named stay
/// those of the message as stored, as Dovecot answers.
fn decoded_structure(
    msg: &[u8],
    tree: &Part,
    path: &[u32],
) -> Option<Vec<u8>> {
    let mut whole = Vec::new();
    mime::decoded_whole(msg, tree, &mut whole)?;
    let mut decoded_tree = mime::parse(&whole);
    keep_encodings(tree, &mut decoded_tree);
    let p = if path.is_empty() {
        &decoded_tree
    } else {
        decoded_tree.find(path)?
    };
    let mut out = Vec::new();
    structure::body(&whole, p, true, &mut out);
    Some(out)
}

/// Copies each part's transfer encoding from `from` to the same part
/// of `to` (the same shape: decoding keeps the structure).
fn keep_encodings(from: &Part, to: &mut Part) {
    to.encoding.clone_from(&from.encoding);
    for (f, t) in from.children.iter().zip(to.children.iter_mut()) {
        keep_encodings(f, t);
    }
    if let (Some(f), Some(t)) = (&from.message, &mut to.message) {
        keep_encodings(f, t);
    }
}

/// A part's content with transfer encodings undone: a leaf's body, a
/// message/rfc822's message, a multipart's body, or the whole message.
fn decoded(msg: &[u8], p: &Part, whole: bool) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    if whole {
        mime::decoded_whole(msg, p, &mut out)?;
        return Some(out);
    }
    if let Some(m) = &p.message {
        mime::decoded_whole(msg, m, &mut out)?;
        return Some(out);
    }
    if p.is_multipart() {
        mime::decoded_whole(msg, p, &mut out)?;
        let head = p.header.1 - p.header.0;
        return Some(out.split_off(head.min(out.len())));
    }
    mime::decode(&msg[p.body.0..p.body.1], p.encoding.as_deref())
}
