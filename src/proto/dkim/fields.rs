//! A header block's fields as written (continuation lines included),
//! and an index to find the fields of one name from the bottom up, as
//! signers and verifiers pick them (RFC 6376 §5.4.2).

use std::collections::HashMap;

/// Fields read at most: past this a header is cut short (signatures
/// naming what lies beyond fail), so a stranger's header of a million
/// tiny fields costs no more than this.
pub const MAX_FIELDS: usize = 2_000;

/// The fields of a header block, each with its continuation lines; it
/// ends at the first empty line. Linear in the block.
pub fn split(head: &[u8]) -> Vec<&[u8]> {
    let mut fields = Vec::new();
    let mut start = None;
    let mut i = 0;
    while i < head.len() && fields.len() < MAX_FIELDS {
        let end = memchr::memchr(b'\n', &head[i..])
            .map_or(head.len(), |e| i + e + 1);
        let line = &head[i..end];
        let continuation = matches!(line.first(), Some(b' ') | Some(b'\t'));
        if line == b"\n" || line == b"\r\n" {
            break;
        }
        if !continuation {
            if let Some(s) = start {
                fields.push(&head[s..i]);
            }
            start = Some(i);
        }
        i = end;
    }
    if let Some(s) = start
        && fields.len() < MAX_FIELDS
    {
        fields.push(&head[s..i]);
    }
    fields
}

/// A field's name, as written (white space before the colon dropped).
pub fn name(field: &[u8]) -> &[u8] {
    let colon = memchr::memchr(b':', field).unwrap_or(0);
    field[..colon].trim_ascii()
}

/// A field's value: after the colon, up to the end.
pub fn value(field: &[u8]) -> &[u8] {
    let colon = memchr::memchr(b':', field).map_or(field.len(), |c| c + 1);
    &field[colon..]
}

/// The fields, and where each name occurs.
pub struct Index<'a> {
    pub fields: Vec<&'a [u8]>,
    by_name: HashMap<Vec<u8>, Vec<usize>>,
}

impl<'a> Index<'a> {
    /// Indexes `fields` (top to bottom).
    pub fn new(fields: Vec<&'a [u8]>) -> Index<'a> {
        let mut by_name: HashMap<Vec<u8>, Vec<usize>> = HashMap::new();
        for (i, f) in fields.iter().enumerate() {
            by_name
                .entry(name(f).to_ascii_lowercase())
                .or_default()
                .push(i);
        }
        Index { fields, by_name }
    }

    /// The `n`th field named `name` (lower case), counted from the
    /// bottom (0: the last).
    pub fn nth_from_bottom(&self, name: &str, n: usize) -> Option<&'a [u8]> {
        let at = self.by_name.get(name.as_bytes())?;
        let i = at.len().checked_sub(n + 1)?;
        Some(self.fields[at[i]])
    }

    /// Every field named `name` (lower case), top to bottom.
    pub fn all(&self, name: &str) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.by_name
            .get(name.as_bytes())
            .into_iter()
            .flatten()
            .map(|&i| self.fields[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_index() {
        let head = b"A: 1\nb : 2\n 2b\nA: 3\n\nBody: no\n";
        let f = split(head);
        assert_eq!(f, vec![&b"A: 1\n"[..], b"b : 2\n 2b\n", b"A: 3\n"]);
        assert_eq!(name(f[1]), b"b");
        assert_eq!(value(f[1]), b" 2\n 2b\n");
        let idx = Index::new(f);
        assert_eq!(idx.nth_from_bottom("a", 0), Some(&b"A: 3\n"[..]));
        assert_eq!(idx.nth_from_bottom("a", 1), Some(&b"A: 1\n"[..]));
        assert_eq!(idx.nth_from_bottom("a", 2), None);
        assert_eq!(idx.all("a").count(), 2);
        // A header of endless fields stops at the cap.
        let many = b"X: y\n".repeat(MAX_FIELDS * 2);
        assert_eq!(split(&many).len(), MAX_FIELDS);
    }
}
