//! Mailbox names: from the client's form to ours and back, and the
//! rules that keep a name inside the user's folder (no `/`, no empty
//! levels, no leading `.`, no control characters, bounded length).
//! The hierarchy separator is `.`, as in Maildir++ folder names.

use super::utf7;

/// The hierarchy separator.
pub const SEPARATOR: char = '.';
/// Longest name, in octets of UTF-8.
pub const MAX_NAME: usize = 200;
/// Levels a name may have.
pub const MAX_LEVELS: usize = 16;

/// Decodes a name as sent: UTF-8 when the client enabled it, modified
/// UTF-7 otherwise. `INBOX` in any case is `INBOX`.
pub fn decode(raw: &[u8], utf8: bool) -> Result<String, &'static str> {
    let name = if utf8 {
        String::from_utf8(raw.to_vec()).map_err(|_| "name is not UTF-8")?
    } else {
        utf7::decode(raw).ok_or("name is not valid modified UTF-7")?
    };
    check(&name)?;
    Ok(canonical(name))
}

/// `INBOX` (any case) and its children spelled `INBOX`.
pub fn canonical(name: String) -> String {
    let head = name.split(SEPARATOR).next().unwrap_or("");
    if head.eq_ignore_ascii_case("INBOX") && head != "INBOX" {
        return format!("INBOX{}", &name[head.len()..]);
    }
    name
}

/// The rules a folder name must follow.
pub fn check(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err("bad name length");
    }
    if name
        .chars()
        .any(|c| c.is_control() || c == '/' || c == '\\')
    {
        return Err("name has forbidden characters");
    }
    let levels: Vec<&str> = name.split(SEPARATOR).collect();
    if levels.len() > MAX_LEVELS {
        return Err("name has too many levels");
    }
    if levels.iter().any(|l| l.is_empty() || *l == "~") {
        return Err("name has an empty level");
    }
    Ok(())
}

/// Encodes a name for the client.
pub fn encode(name: &str, utf8: bool) -> String {
    if utf8 {
        name.to_string()
    } else {
        utf7::encode(name)
    }
}

/// True if `name` matches a LIST pattern (`*` anything, `%` anything
/// but the separator), INBOX matched in any case.
pub fn matches(pattern: &str, name: &str) -> bool {
    let pattern = canonical(pattern.to_string());
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // ok[j]: the pattern so far matches the first j characters of the
    // name; one row per pattern character, so time is |p| × |n|.
    let mut ok = vec![false; n.len() + 1];
    ok[0] = true;
    for &c in &p {
        let mut next = vec![false; n.len() + 1];
        match c {
            '*' | '%' => {
                let mut run = false;
                for j in 0..=n.len() {
                    if c == '%' && j > 0 && n[j - 1] == SEPARATOR {
                        run = false;
                    }
                    run |= ok[j];
                    next[j] = run;
                }
            }
            _ => {
                for j in 1..=n.len() {
                    next[j] = ok[j - 1] && n[j - 1] == c;
                }
            }
        }
        ok = next;
    }
    ok[n.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(decode(b"inbox", false).unwrap(), "INBOX");
        assert_eq!(decode(b"Inbox.x", false).unwrap(), "INBOX.x");
        assert_eq!(decode(b"Entw&APw-rfe", false).unwrap(), "Entw\u{fc}rfe");
        assert_eq!(decode("Entwürfe".as_bytes(), true).unwrap(), "Entwürfe");
        for bad in [
            &b""[..],
            b"..",
            b".hidden",
            b"a..b",
            b"a.",
            b"../x",
            b"a/b",
            b"a\x01",
            b"~",
            "Entwürfe".as_bytes(),
        ] {
            assert!(decode(bad, false).is_err(), "{bad:?}");
        }
        assert!(decode(&[b'a'; 300], false).is_err());
        assert!(decode(b"a\0b", true).is_err());
    }

    #[test]
    fn patterns() {
        assert!(matches("*", "Lists.rust"));
        assert!(matches("%", "Sent"));
        assert!(!matches("%", "Lists.rust"));
        assert!(matches("Lists.%", "Lists.rust"));
        assert!(matches("inbox", "INBOX"));
        assert!(!matches("S%t", "Sen.t"));
        let many = "*".repeat(40);
        assert!(!matches(&(many + "x"), &"a".repeat(30)));
    }
}
