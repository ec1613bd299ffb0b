//! Comparators (RFC 4790: `i;octet`, `i;ascii-casemap`,
//! `i;ascii-numeric`) and match types (`:is`, `:contains`, `:matches`
//! with its match variables, relational `:value` and `:count`).

use std::cmp::Ordering;

use super::script::{Comparator, Match, MatchKind};

/// What a successful `:matches` captured: the whole value, then what
/// each wildcard took (RFC 5229 §3.2).
pub type Captures = Vec<String>;

/// True if any of `values` matches any of `keys`; the captures of the
/// first `:matches` that did are put in `captured`.
pub fn any(
    how: Match,
    values: &[String],
    keys: &[String],
    captured: &mut Option<Captures>,
    budget: &mut Budget,
) -> bool {
    if let MatchKind::Count(rel) = how.kind {
        let count = values.len().to_string();
        return keys
            .iter()
            .any(|k| rel.holds(compare(how.comparator, &count, k)));
    }
    for v in values {
        for k in keys {
            if one(how, v, k, captured, budget) {
                return true;
            }
        }
    }
    false
}

/// One value against one key.
pub fn one(
    how: Match,
    value: &str,
    key: &str,
    captured: &mut Option<Captures>,
    budget: &mut Budget,
) -> bool {
    let c = how.comparator;
    match how.kind {
        MatchKind::Is => compare(c, value, key) == Ordering::Equal,
        MatchKind::Value(rel) => rel.holds(compare(c, value, key)),
        MatchKind::Count(_) => false,
        MatchKind::Contains => match c {
            Comparator::Octet => value.contains(key),
            _ => contains_folded(value.as_bytes(), key.as_bytes()),
        },
        MatchKind::Matches => match glob(c, value, key, budget) {
            Some(caps) => {
                *captured = Some(caps);
                true
            }
            None => false,
        },
    }
}

/// Orders a value against a key as the comparator sees them.
pub fn compare(c: Comparator, value: &str, key: &str) -> Ordering {
    match c {
        Comparator::Octet => value.as_bytes().cmp(key.as_bytes()),
        Comparator::AsciiCasemap => {
            let a = value.bytes().map(|b| b.to_ascii_lowercase());
            a.cmp(key.bytes().map(|b| b.to_ascii_lowercase()))
        }
        Comparator::AsciiNumeric => numeric(value).cmp(&numeric(key)),
    }
}

/// i;ascii-numeric's value: the leading digits, or infinity (None
/// sorts after every number, so it is wrapped to sort last).
fn numeric(s: &str) -> (bool, usize, &str) {
    let digits =
        s.len() - s.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    if digits == 0 {
        return (true, 0, "");
    }
    let n = s[..digits].trim_start_matches('0');
    (false, n.len(), n)
}

/// Both folded, then a substring search linear in the value (a
/// window-by-window compare costs its length times the key's).
fn contains_folded(hay: &[u8], needle: &[u8]) -> bool {
    let (hay, needle) =
        (hay.to_ascii_lowercase(), needle.to_ascii_lowercase());
    memchr::memmem::find(&hay, &needle).is_some()
}

/// What `:matches` may spend in one delivery's scripts, in steps (a
/// step compares one character or moves a `*` on by one). A stranger's
/// header of 64 KiB against a user's pattern of `*` and 4,000 more
/// characters is 250 million steps; a real script's matching is a few
/// hundred thousand. Past it the run fails and the message is kept (RFC 5228
/// 2.10.6), rather than holding a delivery helper for seconds.
pub const MATCH_WORK: u64 = 50_000_000;

/// The steps `:matches` has left in this delivery.
pub struct Budget {
    left: u64,
}

impl Default for Budget {
    fn default() -> Budget {
        Budget { left: MATCH_WORK }
    }
}

impl Budget {
    /// The budget is gone: what matched since cannot be trusted.
    pub fn spent(&self) -> bool {
        self.left == 0
    }

    fn take(&mut self) -> bool {
        self.left = self.left.saturating_sub(1);
        self.left > 0
    }
}

/// `:matches`: `*` any run of characters, `?` one character, `\`
/// quoting the next. Each wildcard takes as little as lets the rest
/// match, leftmost first; backtracking goes only to the last `*`, so
/// the work is at most the value's length times the pattern's, and
/// each step is taken from `budget` (no match once it is gone).
pub fn glob(
    c: Comparator,
    value: &str,
    pattern: &str,
    budget: &mut Budget,
) -> Option<Captures> {
    let v: Vec<char> = value.chars().collect();
    let p = pattern_items(pattern);
    let same = |a: char, b: char| match c {
        Comparator::Octet => a == b,
        _ => a.eq_ignore_ascii_case(&b),
    };
    // (pattern index, value index) and each wildcard's span so far.
    let (mut pi, mut vi) = (0, 0);
    let mut spans: Vec<(usize, usize)> = Vec::new();
    // The last star: its pattern index, spans before it, where it began.
    let mut back: Option<(usize, usize, usize, usize)> = None;
    loop {
        if !budget.take() {
            return None;
        }
        if pi < p.len() {
            match p[pi] {
                Item::Star => {
                    back = Some((pi, spans.len(), vi, vi));
                    spans.push((vi, vi));
                    pi += 1;
                    continue;
                }
                Item::One if vi < v.len() => {
                    spans.push((vi, vi + 1));
                    pi += 1;
                    vi += 1;
                    continue;
                }
                Item::Char(ch) if vi < v.len() && same(ch, v[vi]) => {
                    pi += 1;
                    vi += 1;
                    continue;
                }
                _ => {}
            }
        } else if vi == v.len() {
            break;
        }
        // Mismatch: the last star takes one more character.
        let (spi, nspans, start, taken) = back?;
        if taken >= v.len() {
            return None;
        }
        let taken = taken + 1;
        back = Some((spi, nspans, start, taken));
        spans.truncate(nspans);
        spans.push((start, taken));
        pi = spi + 1;
        vi = taken;
    }
    let text = |(a, b): (usize, usize)| v[a..b].iter().collect::<String>();
    let mut caps = Vec::with_capacity(spans.len() + 1);
    caps.push(value.to_string());
    caps.extend(spans.into_iter().map(text));
    Some(caps)
}

#[derive(Clone, Copy)]
enum Item {
    Star,
    One,
    Char(char),
}

fn pattern_items(p: &str) -> Vec<Item> {
    let mut out = Vec::with_capacity(p.len());
    let mut it = p.chars();
    while let Some(c) = it.next() {
        out.push(match c {
            '*' => Item::Star,
            '?' => Item::One,
            '\\' => match it.next() {
                Some(q) => Item::Char(q),
                None => Item::Char('\\'),
            },
            c => Item::Char(c),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::script::Relation;
    use super::*;

    fn caps(v: &str, p: &str) -> Option<Vec<String>> {
        glob(Comparator::AsciiCasemap, v, p, &mut Budget::default())
    }

    #[test]
    fn rfc5229_match_variables() {
        let c =
            caps("[acme-users] [fwd] version 1.0 is out", "[*] *").unwrap();
        assert_eq!(c[1], "acme-users");
        assert_eq!(c[2], "[fwd] version 1.0 is out");
        let c = caps("coyote@ACME.Example.COM", "*@*.example.com").unwrap();
        assert_eq!((c[1].as_str(), c[2].as_str()), ("coyote", "ACME"));
        let c = caps("abc", "?*?").unwrap();
        assert_eq!(c[1..], ["a", "b", "c"]);
        assert!(caps("abc", "a\\*c").is_none());
        assert!(caps("a*c", "a\\*c").is_some());
        assert!(caps("", "*").is_some());
        assert!(caps("x", "").is_none());
        let mut budget = Budget::default();
        assert!(glob(Comparator::Octet, "ABC", "abc", &mut budget).is_none());
    }

    #[test]
    fn glob_is_not_exponential() {
        let v = "a".repeat(3000);
        let p = "*a".repeat(50) + "b";
        assert!(caps(&v, &p).is_none());
    }

    #[test]
    fn glob_stops_when_its_budget_is_spent() {
        // Each of the star's 60,000 takes compares 4,000 characters.
        let v = "a".repeat(64 * 1024);
        let p = "*".to_string() + &"a".repeat(4000) + "b";
        let mut budget = Budget::default();
        assert!(glob(Comparator::Octet, &v, &p, &mut budget).is_none());
        assert!(budget.spent());
        // Once spent, nothing matches, not even what would.
        assert!(glob(Comparator::Octet, "x", "*", &mut budget).is_none());
        let mut fresh = Budget::default();
        assert!(glob(Comparator::Octet, "x", "*", &mut fresh).is_some());
        assert!(!fresh.spent());
    }

    #[test]
    fn comparators() {
        use Comparator::*;
        assert_eq!(compare(AsciiNumeric, "0010", "10"), Ordering::Equal);
        assert_eq!(compare(AsciiNumeric, "9", "10"), Ordering::Less);
        assert_eq!(
            compare(AsciiNumeric, "x", "99999999999999999999"),
            Ordering::Greater
        );
        assert_eq!(compare(AsciiNumeric, "x", "y"), Ordering::Equal);
        assert_eq!(compare(AsciiCasemap, "ABC", "abd"), Ordering::Less);
        let how = Match {
            comparator: AsciiNumeric,
            kind: MatchKind::Count(Relation::Ge),
        };
        let vals = vec!["a".to_string(), "b".to_string()];
        assert!(any(
            how,
            &vals,
            &["2".into()],
            &mut None,
            &mut Budget::default()
        ));
        assert!(!any(
            how,
            &vals,
            &["3".into()],
            &mut None,
            &mut Budget::default()
        ));
    }
}
