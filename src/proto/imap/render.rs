//! FETCH items that need the message's octets: sizes, dates and body
//! sections of the whole message (header, text, header fields, partial
//! ranges). Works on the message as sent (CRLF line ends).

use std::borrow::Cow;

use super::fetch::{Item, Section, SectionText};
use super::mime::{self, Part, split};
use super::response::literal;
use super::structure;
use super::types::{Segment, Stream};

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
    "Nov", "Dec",
];

/// True if an item is the message's octets (or facts about them) as
/// they are, nothing parsed from its content: what FETCH still gives of
/// a message set aside.
pub fn is_raw(item: &Item) -> bool {
    match item {
        Item::Flags
        | Item::Uid
        | Item::InternalDate
        | Item::Size
        | Item::ModSeq => true,
        Item::Section {
            section, binary, ..
        } => {
            section.part.is_empty()
                && !*binary
                && matches!(
                    section.text,
                    super::fetch::SectionText::All
                        | super::fetch::SectionText::Header
                        | super::fetch::SectionText::Text
                )
        }
        Item::Envelope
        | Item::Body
        | Item::BodyStructure
        | Item::BinarySize(_) => false,
    }
}

/// Writes the file items of `items` for one message, each with a
/// leading space.
pub fn items(msg: &[u8], internal: i64, items: &[Item], out: &mut Vec<u8>) {
    let needs_mime = items.iter().any(|i| {
        matches!(i, Item::Envelope | Item::Body | Item::BodyStructure | Item::BinarySize(_))
            || matches!(i, Item::Section { section, binary, .. } if !section.part.is_empty() || *binary)
    });
    let tree = needs_mime.then(|| mime::parse(msg));
    for item in items {
        match item {
            Item::InternalDate => {
                out.extend_from_slice(b" INTERNALDATE \"");
                out.extend_from_slice(date_time(internal).as_bytes());
                out.push(b'"');
            }
            Item::Size => {
                out.extend_from_slice(
                    format!(" RFC822.SIZE {}", msg.len()).as_bytes(),
                );
            }
            Item::Envelope => {
                out.extend_from_slice(b" ENVELOPE ");
                structure::envelope(split(msg).0, out);
            }
            Item::Body | Item::BodyStructure => {
                let ext = *item == Item::BodyStructure;
                out.extend_from_slice(if ext {
                    b" BODYSTRUCTURE "
                } else {
                    b" BODY "
                });
                if let Some(t) = &tree {
                    structure::body(msg, t, ext, out);
                }
            }
            Item::Section {
                section,
                partial,
                binary,
                alias,
                ..
            } => {
                write_name(*alias, *binary, section, *partial, out);
                out.push(b' ');
                let data = match (binary, &tree) {
                    (true, Some(t)) => binary_data(msg, t, &section.part),
                    _ => Some(section_data(msg, tree.as_ref(), section)),
                };
                let Some(data) = data else {
                    out.extend_from_slice(b"NIL");
                    continue;
                };
                let data = match partial {
                    Some((start, len)) => {
                        let s = (*start as usize).min(data.len());
                        let e =
                            s.saturating_add(*len as usize).min(data.len());
                        &data[s..e]
                    }
                    None => &data[..],
                };
                if *binary && data.contains(&0) {
                    out.push(b'~');
                }
                literal(out, data);
            }
            Item::BinarySize(part) => {
                let parts: Vec<String> =
                    part.iter().map(u32::to_string).collect();
                out.extend_from_slice(
                    format!(" BINARY.SIZE[{}] ", parts.join(".")).as_bytes(),
                );
                let size = tree
                    .as_ref()
                    .and_then(|t| binary_data(msg, t, part))
                    .map_or(0, |d| d.len());
                out.extend_from_slice(size.to_string().as_bytes());
            }
            _ => {}
        }
    }
}

/// ` BODY[1.TEXT]<10>`, ` BINARY[1]` or ` RFC822.TEXT`: how a section
/// item is named in the answer.
fn write_name(
    alias: Option<&str>,
    binary: bool,
    section: &Section,
    partial: Option<(u64, u64)>,
    out: &mut Vec<u8>,
) {
    out.push(b' ');
    if let Some(a) = alias {
        out.extend_from_slice(a.as_bytes());
        return;
    }
    out.extend_from_slice(if binary { b"BINARY[" } else { b"BODY[" });
    write_section(section, out);
    out.push(b']');
    if let Some((start, _)) = partial {
        out.extend_from_slice(format!("<{start}>").as_bytes());
    }
}

fn write_section(s: &Section, out: &mut Vec<u8>) {
    let parts: Vec<String> = s.part.iter().map(u32::to_string).collect();
    out.extend_from_slice(parts.join(".").as_bytes());
    let text = match &s.text {
        SectionText::All => return,
        SectionText::Header => "HEADER".to_string(),
        SectionText::Text => "TEXT".to_string(),
        SectionText::Mime => "MIME".to_string(),
        SectionText::Fields { names, not } => format!(
            "HEADER.FIELDS{} ({})",
            if *not { ".NOT" } else { "" },
            names.join(" ")
        ),
    };
    if !s.part.is_empty() {
        out.push(b'.');
    }
    out.extend_from_slice(text.as_bytes());
}

/// The listing items of a message (INTERNALDATE, RFC822.SIZE, ENVELOPE
/// from the cache) written as `items` would, without its octets.
pub fn listing(
    items: &[Item],
    internal: i64,
    size: u64,
    envelope: Option<&[u8]>,
    out: &mut Vec<u8>,
) {
    for item in items {
        match item {
            Item::InternalDate => {
                out.extend_from_slice(b" INTERNALDATE \"");
                out.extend_from_slice(date_time(internal).as_bytes());
                out.push(b'"');
            }
            Item::Size => out
                .extend_from_slice(format!(" RFC822.SIZE {size}").as_bytes()),
            Item::Envelope => {
                if let Some(e) = envelope {
                    out.extend_from_slice(b" ENVELOPE ");
                    out.extend_from_slice(e);
                }
            }
            _ => {}
        }
    }
}

/// What the helper knows of a large message without reading it all.
#[derive(Debug, Clone, Copy)]
pub struct Large<'a> {
    /// The message's file in its folder.
    pub file: &'a str,
    /// The header as sent (CRLF), blank line included.
    pub head: &'a [u8],
    /// The header's length in the file (LF line ends).
    pub head_stored: u64,
    /// Where the message starts in the file (mbox; 0 for Maildir).
    pub base: u64,
    /// File offsets of octets to leave out when sending (mbox quoting).
    pub drops: &'a [u64],
    /// The whole message's length as sent (CRLF).
    pub size: u64,
    /// INTERNALDATE.
    pub internal: i64,
}

/// True if `items` can be answered for a large message from its header
/// and streamed file ranges (no MIME tree needed).
pub fn streamable(items: &[Item]) -> bool {
    items.iter().all(|i| match i {
        Item::Body | Item::BodyStructure => false,
        Item::BinarySize(part) => part.is_empty(),
        Item::Section {
            section, binary, ..
        } => {
            section.part.is_empty()
                && (!*binary || matches!(section.text, SectionText::All))
        }
        _ => true,
    })
}

/// The file items of a large message as pieces: header items written,
/// whole-message and TEXT literals left for the loop to stream.
pub fn large_items(m: Large<'_>, items: &[Item]) -> Vec<Segment> {
    let mut segs = Vec::new();
    let mut out = Vec::new();
    for item in items {
        match item {
            Item::InternalDate => {
                out.extend_from_slice(b" INTERNALDATE \"");
                out.extend_from_slice(date_time(m.internal).as_bytes());
                out.push(b'"');
            }
            Item::Size => out.extend_from_slice(
                format!(" RFC822.SIZE {}", m.size).as_bytes(),
            ),
            Item::BinarySize(_) => out.extend_from_slice(
                format!(" BINARY.SIZE[] {}", m.size).as_bytes(),
            ),
            Item::Envelope => {
                out.extend_from_slice(b" ENVELOPE ");
                structure::envelope(m.head, &mut out);
            }
            Item::Section {
                section,
                partial,
                binary,
                alias,
                ..
            } => {
                write_name(*alias, *binary, section, *partial, &mut out);
                out.push(b' ');
                let (from, region) = match &section.text {
                    SectionText::All => (0, m.size),
                    SectionText::Text => {
                        (m.head_stored, m.size - m.head.len() as u64)
                    }
                    SectionText::Header | SectionText::Mime => {
                        let head = cut(m.head, *partial);
                        literal(&mut out, head);
                        continue;
                    }
                    SectionText::Fields { names, not } => {
                        let fields = header_fields(m.head, names, *not);
                        literal(&mut out, cut(&fields, *partial));
                        continue;
                    }
                };
                let (skip, len) = match partial {
                    Some((start, len)) => {
                        let skip = (*start).min(region);
                        (skip, (*len).min(region - skip))
                    }
                    None => (0, region),
                };
                out.extend_from_slice(format!("{{{len}}}\r\n").as_bytes());
                segs.push(Segment::Bytes(std::mem::take(&mut out)));
                segs.push(Segment::File(Stream {
                    file: m.file.to_string(),
                    from: m.base + from,
                    skip,
                    len,
                    drops: m.drops.to_vec(),
                }));
            }
            _ => {}
        }
    }
    if !out.is_empty() {
        segs.push(Segment::Bytes(out));
    }
    segs
}

fn cut(data: &[u8], partial: Option<(u64, u64)>) -> &[u8] {
    match partial {
        Some((start, len)) => {
            let s = (start as usize).min(data.len());
            let e = s.saturating_add(len as usize).min(data.len());
            &data[s..e]
        }
        None => data,
    }
}

/// BINARY[part]: the part's body with its transfer encoding undone.
fn binary_data<'a>(
    msg: &'a [u8],
    tree: &Part,
    part: &[u32],
) -> Option<Cow<'a, [u8]>> {
    if part.is_empty() {
        return Some(Cow::Borrowed(msg));
    }
    let p = tree.find(part)?;
    let body = &msg[p.body.0..p.body.1];
    mime::decode(body, p.encoding.as_deref()).map(Cow::Owned)
}

/// The octets a section names (CRLF message), as CATENATE's URLs take
/// them; empty if the part does not exist.
pub fn section_octets(msg: &[u8], s: &Section) -> Vec<u8> {
    let tree = (!s.part.is_empty()).then(|| mime::parse(msg));
    section_data(msg, tree.as_ref(), s).into_owned()
}

/// The octets a section names; empty if the part does not exist.
fn section_data<'a>(
    msg: &'a [u8],
    tree: Option<&Part>,
    s: &Section,
) -> Cow<'a, [u8]> {
    let whole = Part {
        header: (0, split(msg).0.len()),
        body: (split(msg).0.len(), msg.len()),
        ..Part::default()
    };
    let part = if s.part.is_empty() {
        Some(&whole)
    } else {
        tree.and_then(|t| t.find(&s.part))
    };
    let Some(p) = part else {
        return Cow::Borrowed(&[]);
    };
    // HEADER and TEXT of a message/rfc822 part are its message's.
    let inner = if s.part.is_empty() {
        Some(p)
    } else {
        p.message.as_deref()
    };
    let range = |r: (usize, usize)| &msg[r.0..r.1];
    match &s.text {
        SectionText::All if s.part.is_empty() => Cow::Borrowed(msg),
        SectionText::All => Cow::Borrowed(range(p.body)),
        SectionText::Mime => Cow::Borrowed(range(p.header)),
        SectionText::Header => inner.map_or(Cow::Borrowed(&[][..]), |m| {
            Cow::Borrowed(range(m.header))
        }),
        SectionText::Text => inner
            .map_or(Cow::Borrowed(&[][..]), |m| Cow::Borrowed(range(m.body))),
        SectionText::Fields { names, not } => match inner {
            Some(m) => Cow::Owned(header_fields(range(m.header), names, *not)),
            None => Cow::Borrowed(&[]),
        },
    }
}

/// The fields of `head` named (or, with `not`, not named), then CRLF.
pub fn header_fields(head: &[u8], names: &[String], not: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut keep = false;
    for line in head.split_inclusive(|&b| b == b'\n') {
        if line == b"\r\n" {
            break;
        }
        let continuation = matches!(line.first(), Some(b' ') | Some(b'\t'));
        if !continuation {
            let name = line.split(|&b| b == b':').next().unwrap_or(b"");
            let name =
                String::from_utf8_lossy(name).trim().to_ascii_uppercase();
            keep = names.contains(&name) != not;
        }
        if keep {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// `dd-Mon-yyyy hh:mm:ss +0000`.
pub fn date_time(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{d:02}-{}-{y:04} {:02}:{:02}:{:02} +0000",
        MONTHS[(m - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Calendar date of a day count since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::imap::args::Args;
    use crate::proto::imap::fetch::parse_items;

    #[test]
    fn sections() {
        let msg =
            b"From: a@x\r\nSubject: hi\r\n there\r\nTo: b@y\r\n\r\nbody\r\n";
        let its = parse_items(&mut Args::new(
            b"(RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY[TEXT]<1.2>)",
        ))
        .unwrap();
        let mut out = Vec::new();
        items(msg, 0, &its, &mut out);
        let s = String::from_utf8(out).unwrap();
        assert_eq!(
            s,
            " RFC822.SIZE 49 BODY[HEADER.FIELDS (SUBJECT)] {23}\r\nSubject: hi\r\n there\r\n\r\n BODY[TEXT]<1> {2}\r\nod"
        );
        assert_eq!(date_time(0), "01-Jan-1970 00:00:00 +0000");
        assert_eq!(date_time(951_782_400), "29-Feb-2000 00:00:00 +0000");
    }
}
