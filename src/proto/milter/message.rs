//! A stored message's header (LF line ends) as milters see it, and
//! their changes applied to it: fields with their values as written,
//! and a new header from the fields once changed.

use super::conversation::Edit;

/// A header's fields: name, and the value as written after the colon
/// (its leading space, folds as LF followed by white space).
pub type Fields = Vec<(String, String)>;

/// The fields of a header (LF line ends, up to its empty line).
pub fn fields(header: &[u8]) -> Fields {
    let mut out: Fields = Vec::new();
    for line in header.split(|&b| b == b'\n') {
        if line.is_empty() {
            break;
        }
        let text = String::from_utf8_lossy(line);
        if line[0] == b' ' || line[0] == b'\t' {
            if let Some((_, value)) = out.last_mut() {
                value.push('\n');
                value.push_str(&text);
            }
            continue;
        }
        match text.split_once(':') {
            Some((name, value)) => {
                out.push((name.trim_end().to_string(), value.to_string()))
            }
            // Not a field: kept as a field of its own, nameless, so that
            // nothing of the header is lost.
            None => out.push((String::new(), text.into_owned())),
        }
    }
    out
}

/// The fields as a milter is sent them: named ones, folds as CRLF.
pub fn for_milter(fields: &Fields) -> Vec<(String, String)> {
    fields
        .iter()
        .filter(|(n, _)| !n.is_empty())
        .map(|(n, v)| (n.clone(), v.replace('\n', "\r\n")))
        .collect()
}

/// A milter's value to store: CRLF to LF, other line breaks and NULs
/// out, a space after the colon.
fn stored_value(value: &str) -> String {
    let v: String = value
        .replace("\r\n", "\n")
        .chars()
        .filter(|&c| c != '\r' && c != '\0')
        .collect();
    // A fold must go on with white space, or it would start a field.
    let v = v
        .replace("\n", "\n\t")
        .replace("\n\t\t", "\n\t")
        .replace("\n\t ", "\n ");
    match v.starts_with([' ', '\t']) {
        true => v,
        false => format!(" {v}"),
    }
}

/// Applies a milter's header changes, in the order given.
pub fn apply(fields: &mut Fields, edits: &[Edit]) {
    for e in edits {
        match e {
            Edit::Add { name, value } => {
                fields.push((name.clone(), stored_value(value)))
            }
            Edit::Insert { index, name, value } => {
                let at = (*index as usize).min(fields.len());
                fields.insert(at, (name.clone(), stored_value(value)));
            }
            Edit::Change { index, name, value } => {
                let nth = fields
                    .iter()
                    .enumerate()
                    .filter(|(_, (n, _))| n.eq_ignore_ascii_case(name))
                    .nth((*index as usize).saturating_sub(1))
                    .map(|(i, _)| i);
                match (nth, value.is_empty()) {
                    (Some(i), true) => {
                        fields.remove(i);
                    }
                    (Some(i), false) => fields[i].1 = stored_value(value),
                    // No such field: Sendmail adds it.
                    (None, false) => {
                        fields.push((name.clone(), stored_value(value)))
                    }
                    (None, true) => {}
                }
            }
        }
    }
}

/// The header from its fields, with its empty line.
pub fn header(fields: &Fields) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        if !name.is_empty() {
            out.extend_from_slice(name.as_bytes());
            out.push(b':');
        }
        out.extend_from_slice(value.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &[u8] =
        b"Received: from a\n\tby b\nSubject: hi\nX-A: 1\nx-a: 2\n\nbody\n";

    #[test]
    fn fields_round_trip_and_go_to_milters_with_crlf() {
        let f = fields(HEAD);
        assert_eq!(f.len(), 4);
        assert_eq!(f[0], ("Received".into(), " from a\n\tby b".into()));
        assert_eq!(header(&f), &HEAD[..HEAD.len() - 5]);
        assert_eq!(for_milter(&f)[0].1, " from a\r\n\tby b");
    }

    #[test]
    fn edits() {
        let mut f = fields(HEAD);
        apply(
            &mut f,
            &[
                Edit::Add {
                    name: "X-Spam".into(),
                    value: "Yes".into(),
                },
                Edit::Insert {
                    index: 0,
                    name: "X-First".into(),
                    value: "1\r\n\tmore".into(),
                },
                Edit::Change {
                    index: 2,
                    name: "X-A".into(),
                    value: "".into(),
                },
                Edit::Change {
                    index: 1,
                    name: "subject".into(),
                    value: "[SPAM] hi".into(),
                },
                Edit::Change {
                    index: 1,
                    name: "X-New".into(),
                    value: "n".into(),
                },
                Edit::Insert {
                    index: 99,
                    name: "X-Last".into(),
                    value: "z".into(),
                },
            ],
        );
        let text = String::from_utf8(header(&f)).unwrap();
        assert_eq!(
            text,
            "X-First: 1\n\tmore\nReceived: from a\n\tby b\nSubject: [SPAM] hi\nX-A: 1\n\
             X-Spam: Yes\nX-New: n\nX-Last: z\n\n"
        );
    }

    #[test]
    fn values_from_milters_are_folded_as_stored() {
        assert_eq!(stored_value("a\r\nb"), " a\n\tb");
        assert_eq!(stored_value(" a\r\n b"), " a\n b");
    }
}
