//! Client-supplied strings in log lines: always quoted, with `"` and `\`
//! escaped and every control or line-breaking character written as
//! `\u{..}`. A user name cannot end its own field, start a new line or
//! forge an `ip=` field that fail2ban would read.

use std::fmt;

/// Displays a client's string as a quoted, escaped log field value.
pub struct Quoted<'a>(pub &'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                ' ' => f.write_str(" ")?,
                c if c.is_control() || c.is_whitespace() => {
                    write!(f, "\\u{{{:x}}}", u32::from(c))?
                }
                c => write!(f, "{c}")?,
            }
        }
        f.write_str("\"")
    }
}

/// Shows text from elsewhere (a DNS record, a peer's greeting) on a
/// terminal or in a line-based file as it is, but with every control
/// character written as `\u{..}`: it cannot move the cursor, recolour
/// the terminal or start a line of its own.
pub struct Controls<'a>(pub &'a str);

impl fmt::Display for Controls<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            match c.is_control() || (c.is_whitespace() && c != ' ') {
                true => write!(f, "\\u{{{:x}}}", u32::from(c))?,
                false => write!(f, "{c}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_shown_not_obeyed() {
        assert_eq!(
            Controls("v=spf1 \x1b[2J-all\nok  fake").to_string(),
            "v=spf1 \\u{1b}[2J-all\\u{a}ok  fake"
        );
        assert_eq!(Controls("a \"b\" ü").to_string(), "a \"b\" ü");
    }

    #[test]
    fn hostile_strings_stay_in_their_field() {
        let evil = "x\nWARN conn=1 auth failed user=\"y\" ip=203.0.113.5";
        let shown = Quoted(evil).to_string();
        assert!(!shown.contains('\n'));
        assert_eq!(
            shown,
            "\"x\\u{a}WARN conn=1 auth failed user=\\\"y\\\" \
             ip=203.0.113.5\""
        );
        assert_eq!(Quoted("a b\\c").to_string(), "\"a b\\\\c\"");
        assert_eq!(
            Quoted("\u{2028}\r\t\u{7f}").to_string(),
            "\"\\u{2028}\\u{d}\\u{9}\\u{7f}\""
        );
        assert_eq!(
            Quoted("jörg@exämple.org").to_string(),
            "\"jörg@exämple.org\""
        );
    }
}
