//! FETCH attributes (RFC 9051 6.4.5, RFC 3516 BINARY, RFC 7162 MODSEQ)
//! and body sections, as read from a command.

use std::borrow::Cow;

use super::args::{Args, Bad};

/// Which part of a message a section names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionText {
    /// The whole part (`BODY[]`, `BODY[1.2]`).
    All,
    /// `HEADER`.
    Header,
    /// `HEADER.FIELDS (...)`, or with `not`, `HEADER.FIELDS.NOT`.
    Fields {
        /// The field names, upper-cased.
        names: Vec<String>,
        /// `.NOT`.
        not: bool,
    },
    /// `TEXT`.
    Text,
    /// `MIME`: the part's own header.
    Mime,
}

/// `[1.2.HEADER]`: a part path and what of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// Part numbers, empty for the whole message.
    pub part: Vec<u32>,
    /// What of the part.
    pub text: SectionText,
}

/// One FETCH attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// FLAGS.
    Flags,
    /// UID.
    Uid,
    /// INTERNALDATE.
    InternalDate,
    /// RFC822.SIZE.
    Size,
    /// ENVELOPE.
    Envelope,
    /// BODY (no section): the structure without extensions.
    Body,
    /// BODYSTRUCTURE.
    BodyStructure,
    /// MODSEQ (CONDSTORE).
    ModSeq,
    /// BODY[...] / BODY.PEEK[...] / RFC822(.HEADER/.TEXT) / BINARY[...].
    Section {
        /// The section.
        section: Section,
        /// `<start.length>`.
        partial: Option<(u64, u64)>,
        /// Leaves \Seen alone.
        peek: bool,
        /// BINARY: transfer encoding undone.
        binary: bool,
        /// How the answer is named (`RFC822`, `RFC822.HEADER`,
        /// `RFC822.TEXT`), when it is not the section form.
        alias: Option<&'static str>,
    },
    /// BINARY.SIZE[part].
    BinarySize(Vec<u32>),
}

impl Item {
    /// True if fetching it sets \Seen (RFC 9051 6.4.5).
    pub fn sets_seen(&self) -> bool {
        match self {
            Item::Section { peek, alias, .. } => {
                !peek && *alias != Some("RFC822.HEADER")
            }
            _ => false,
        }
    }

    /// True if the answer needs the message file (not just the index).
    pub fn needs_file(&self) -> bool {
        !matches!(self, Item::Flags | Item::Uid | Item::ModSeq)
    }
}

/// Reads the attribute list of a FETCH: one item, a macro, or a list.
pub fn parse_items(a: &mut Args<'_>) -> Result<Vec<Item>, Bad> {
    if a.peek() == Some(b'(') {
        return a.list(item);
    }
    if a.keyword("ALL") {
        return Ok(vec![
            Item::Flags,
            Item::InternalDate,
            Item::Size,
            Item::Envelope,
        ]);
    }
    if a.keyword("FAST") {
        return Ok(vec![Item::Flags, Item::InternalDate, Item::Size]);
    }
    if a.keyword("FULL") {
        return Ok(vec![
            Item::Flags,
            Item::InternalDate,
            Item::Size,
            Item::Envelope,
            Item::Body,
        ]);
    }
    Ok(vec![item(a)?])
}

fn whole(alias: &'static str, text: SectionText, peek: bool) -> Item {
    Item::Section {
        section: Section {
            part: Vec::new(),
            text,
        },
        partial: None,
        peek,
        binary: false,
        alias: Some(alias),
    }
}

fn item(a: &mut Args<'_>) -> Result<Item, Bad> {
    let name = a.name();
    let upper = name.to_ascii_uppercase();
    let simple = match upper.as_slice() {
        b"FLAGS" => Some(Item::Flags),
        b"UID" => Some(Item::Uid),
        b"INTERNALDATE" => Some(Item::InternalDate),
        b"RFC822.SIZE" => Some(Item::Size),
        b"ENVELOPE" => Some(Item::Envelope),
        b"BODYSTRUCTURE" => Some(Item::BodyStructure),
        b"MODSEQ" => Some(Item::ModSeq),
        b"RFC822" => Some(whole("RFC822", SectionText::All, false)),
        b"RFC822.HEADER" => {
            Some(whole("RFC822.HEADER", SectionText::Header, true))
        }
        b"RFC822.TEXT" => Some(whole("RFC822.TEXT", SectionText::Text, false)),
        _ => None,
    };
    if let Some(item) = simple {
        return Ok(item);
    }
    let (peek, binary) = match upper.as_slice() {
        b"BODY" if a.peek() != Some(b'[') => return Ok(Item::Body),
        b"BODY" => (false, false),
        b"BODY.PEEK" => (true, false),
        b"BINARY" => (false, true),
        b"BINARY.PEEK" => (true, true),
        b"BINARY.SIZE" => {
            let section = section(a, true)?;
            return Ok(Item::BinarySize(section.part));
        }
        _ => return Err(Bad("unknown FETCH attribute")),
    };
    let section = section(a, binary)?;
    let partial = if a.byte(b'<') {
        let start = a.number()?;
        if !a.byte(b'.') {
            return Err(Bad("expected <start.length>"));
        }
        let len = a.nz_number()?;
        if !a.byte(b'>') {
            return Err(Bad("expected >"));
        }
        Some((start, u64::from(len)))
    } else {
        None
    };
    Ok(Item::Section {
        section,
        partial,
        peek,
        binary,
        alias: None,
    })
}

/// `[...]`: a section spec; BINARY allows part numbers only.
pub fn section(a: &mut Args<'_>, binary: bool) -> Result<Section, Bad> {
    if !a.byte(b'[') {
        return Err(Bad("expected ["));
    }
    let mut part = Vec::new();
    let mut text = SectionText::All;
    while a.peek().is_some_and(|b| b.is_ascii_digit()) {
        part.push(a.nz_number()?);
        if part.len() > 64 {
            return Err(Bad("section nested too deep"));
        }
        if !a.byte(b'.') {
            break;
        }
        if a.peek() == Some(b']') {
            return Err(Bad("bad section"));
        }
    }
    if a.peek() != Some(b']') {
        if binary {
            return Err(Bad("BINARY takes part numbers only"));
        }
        text = if a.keyword("HEADER.FIELDS.NOT") {
            SectionText::Fields {
                names: header_list(a)?,
                not: true,
            }
        } else if a.keyword("HEADER.FIELDS") {
            SectionText::Fields {
                names: header_list(a)?,
                not: false,
            }
        } else if a.keyword("HEADER") {
            SectionText::Header
        } else if a.keyword("TEXT") {
            SectionText::Text
        } else if a.keyword("MIME") && !part.is_empty() {
            SectionText::Mime
        } else {
            return Err(Bad("bad section"));
        };
    }
    if !a.byte(b']') {
        return Err(Bad("expected ]"));
    }
    Ok(Section { part, text })
}

fn header_list(a: &mut Args<'_>) -> Result<Vec<String>, Bad> {
    a.sp()?;
    let names = a.list(|a| {
        let n: Cow<'_, [u8]> = a.astring()?;
        let ok =
            !n.is_empty() && n.iter().all(|&b| b > 32 && b < 127 && b != b':');
        if !ok {
            return Err(Bad("bad header field name"));
        }
        Ok(String::from_utf8_lossy(&n).to_ascii_uppercase())
    })?;
    if names.is_empty() {
        return Err(Bad("empty header list"));
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(s: &[u8]) -> Result<Vec<Item>, Bad> {
        parse_items(&mut Args::new(s))
    }

    #[test]
    fn forms() {
        assert_eq!(items(b"FAST").unwrap().len(), 3);
        let l = items(
            b"(UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To)])",
        )
        .unwrap();
        assert_eq!(l.len(), 4);
        match &l[3] {
            Item::Section { section, peek, .. } => {
                assert!(*peek);
                assert_eq!(
                    section.text,
                    SectionText::Fields {
                        names: vec!["FROM".into(), "TO".into()],
                        not: false
                    }
                );
            }
            other => panic!("{other:?}"),
        }
        match &items(b"BODY[1.2.MIME]<10.20>").unwrap()[0] {
            Item::Section {
                section, partial, ..
            } => {
                assert_eq!(section.part, vec![1, 2]);
                assert_eq!(section.text, SectionText::Mime);
                assert_eq!(*partial, Some((10, 20)));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(items(b"BODY").unwrap(), vec![Item::Body]);
        assert!(items(b"RFC822").unwrap()[0].sets_seen());
        assert!(!items(b"RFC822.HEADER").unwrap()[0].sets_seen());
    }

    #[test]
    fn nasty_items() {
        for bad in [
            &b"BODY["[..],
            b"BODY[MIME]",
            b"BODY[HEADER.FIELDS ()]",
            b"BODY[1.]",
            b"BODY[]<1>",
            b"BODY[]<1.0>",
            b"BINARY[TEXT]",
            b"FOO",
            b"(FLAGS",
        ] {
            assert!(items(bad).is_err(), "{bad:?}");
        }
    }
}
