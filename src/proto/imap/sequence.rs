//! Sequence sets (RFC 9051 9: `sequence-set`): `1:4,7,9:*`, and `$`
//! (RFC 5182 SEARCHRES, the saved result). Ranges are kept as given,
//! `*` as a marker, and resolved against a mailbox only when used.

use super::args::{Args, Bad};

/// One end of a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// A number.
    N(u32),
    /// `*`: the largest number in use.
    Star,
}

/// A sequence set as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeqSet {
    /// Ranges, each `a:b` (in either order) or a single number (`a:a`).
    Ranges(Vec<(Bound, Bound)>),
    /// `$`: the last SEARCH result saved.
    Saved,
}

/// More ranges than any sane client sends in one set.
const MAX_RANGES: usize = 10_000;

impl SeqSet {
    /// Reads a sequence set.
    pub fn parse(a: &mut Args<'_>) -> Result<SeqSet, Bad> {
        if a.byte(b'$') {
            return Ok(SeqSet::Saved);
        }
        let mut ranges = Vec::new();
        loop {
            let from = bound(a)?;
            let to = if a.byte(b':') { bound(a)? } else { from };
            ranges.push((from, to));
            if ranges.len() > MAX_RANGES {
                return Err(Bad("sequence set too long"));
            }
            if !a.byte(b',') {
                return Ok(SeqSet::Ranges(ranges));
            }
        }
    }

    /// The ranges with `*` as `max`, each low to high; `None` for `$`.
    pub fn resolve(&self, max: u32) -> Option<Vec<(u32, u32)>> {
        let SeqSet::Ranges(ranges) = self else {
            return None;
        };
        let n = |b: Bound| match b {
            Bound::N(n) => n,
            Bound::Star => max,
        };
        Some(
            ranges
                .iter()
                .map(|&(a, b)| {
                    let (a, b) = (n(a), n(b));
                    (a.min(b), a.max(b))
                })
                .collect(),
        )
    }

    /// True if `n` is in the set (with `*` as `max`).
    pub fn contains(&self, n: u32, max: u32) -> bool {
        self.resolve(max)
            .is_some_and(|r| r.iter().any(|&(a, b)| a <= n && n <= b))
    }
}

fn bound(a: &mut Args<'_>) -> Result<Bound, Bad> {
    if a.byte(b'*') {
        return Ok(Bound::Star);
    }
    a.nz_number().map(Bound::N)
}

/// Writes sorted numbers as a compact set: `1:3,7,9:10`.
pub fn write_set(numbers: &[u32], out: &mut Vec<u8>) {
    let mut i = 0;
    let mut first = true;
    while i < numbers.len() {
        let start = numbers[i];
        let mut end = start;
        while i + 1 < numbers.len() && numbers[i + 1] == end + 1 {
            i += 1;
            end = numbers[i];
        }
        if !first {
            out.push(b',');
        }
        first = false;
        if start == end {
            out.extend_from_slice(start.to_string().as_bytes());
        } else {
            out.extend_from_slice(format!("{start}:{end}").as_bytes());
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &[u8]) -> Result<SeqSet, Bad> {
        SeqSet::parse(&mut Args::new(s))
    }

    #[test]
    fn forms() {
        let s = parse(b"1:4,7,9:*").unwrap();
        assert_eq!(s.resolve(12).unwrap(), vec![(1, 4), (7, 7), (9, 12)]);
        assert!(s.contains(10, 12));
        assert!(!s.contains(5, 12));
        assert_eq!(parse(b"*:3").unwrap().resolve(2), Some(vec![(2, 3)]));
        assert_eq!(parse(b"$").unwrap(), SeqSet::Saved);
        for bad in [&b"0"[..], b"1:", b",", b"a", b"1:0"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        // A trailing comma ends the set early: the caller sees the rest.
        let mut a = Args::new(b"1, x");
        assert!(SeqSet::parse(&mut a).is_err());
    }

    #[test]
    fn compact() {
        let mut out = Vec::new();
        write_set(&[1, 2, 3, 7, 9, 10], &mut out);
        assert_eq!(out, b"1:3,7,9:10");
    }
}
