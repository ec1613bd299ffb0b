//! The line lexer every postling file shares: blank lines and `#`
//! comments are skipped, and every problem carries `FILE:LINE`.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in one file, printed as `FILE:LINE: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file.
    pub file: PathBuf,
    /// 1-based line, or 0 when the problem is the whole file.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl Problem {
    /// A problem at `file:line`.
    pub fn new(file: &Path, line: usize, message: impl Into<String>) -> Self {
        Problem {
            file: file.to_path_buf(),
            line,
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(
                f,
                "{}:{}: {}",
                self.file.display(),
                self.line,
                self.message
            )
        }
    }
}

/// Every problem found, so `postling check` can list them all at once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

/// Reads a whole file, or says why not as a [`Problem`].
pub fn read(file: &Path) -> Result<String, Problem> {
    std::fs::read_to_string(file)
        .map_err(|e| Problem::new(file, 0, format!("cannot read: {e}")))
}

/// The meaningful lines of `text` with their 1-based numbers, trimmed.
pub fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
}

/// Splits `key = value`; the value may be empty.
pub fn key_value(line: &str) -> Option<(&str, &str)> {
    let (key, value) = line.split_once('=')?;
    let key = key.trim();
    if key.is_empty() || key.contains(char::is_whitespace) {
        return None;
    }
    Some((key, value.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_comments_and_blanks() {
        let got: Vec<_> = lines("# c\n\n  a = 1 \n\t# x\nb=").collect();
        assert_eq!(got, [(3, "a = 1"), (5, "b=")]);
    }

    #[test]
    fn key_value_forms() {
        assert_eq!(key_value("a = b c"), Some(("a", "b c")));
        assert_eq!(key_value("a ="), Some(("a", "")));
        assert_eq!(key_value("no equals"), None);
        assert_eq!(key_value("two words = x"), None);
    }
}
