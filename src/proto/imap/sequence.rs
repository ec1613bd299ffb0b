//! Sequence sets (RFC 9051 9: `sequence-set`): `1:4,7,9:*`, and `$`
//! (RFC 5182 SEARCHRES, the saved result). A set is normalised as it
//! is read: its ranges sorted and merged, and every range that names
//! `*` folded into one, so no set costs more than its distinct ranges
//! to resolve, and a test for one number is a binary search.

use super::args::{Args, Bad};

/// A sequence set, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeqSet {
    /// Ranges of numbers, sorted, merged and low to high; and the
    /// ranges that name `*`, folded into one (see [`StarRange`]).
    Ranges(Vec<(u32, u32)>, Option<StarRange>),
    /// `$`: the last SEARCH result saved.
    Saved,
}

/// Every `n:*` of a set at once: with `*` as `max`, `n:*` is
/// `min(n,max)..=max(n,max)`, and their union is
/// `min(low,max)..=max(high,max)` over the smallest and largest `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StarRange {
    /// The smallest number paired with `*` (`u32::MAX`: none).
    pub low: u32,
    /// The largest number paired with `*` (0: none).
    pub high: u32,
}

impl StarRange {
    fn at(self, max: u32) -> (u32, u32) {
        (self.low.min(max), self.high.max(max))
    }
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
        let mut star: Option<StarRange> = None;
        let mut count = 0;
        loop {
            let from = bound(a)?;
            let to = if a.byte(b':') { bound(a)? } else { from };
            match (from, to) {
                (Some(x), Some(y)) => ranges.push((x.min(y), x.max(y))),
                (Some(n), None) | (None, Some(n)) => {
                    let s = star.get_or_insert(StarRange {
                        low: u32::MAX,
                        high: 0,
                    });
                    s.low = s.low.min(n);
                    s.high = s.high.max(n);
                }
                (None, None) => {
                    star.get_or_insert(StarRange {
                        low: u32::MAX,
                        high: 0,
                    });
                }
            }
            count += 1;
            if count > MAX_RANGES {
                return Err(Bad("sequence set too long"));
            }
            if !a.byte(b',') {
                return Ok(SeqSet::Ranges(merge(ranges), star));
            }
        }
    }

    /// The ranges with `*` as `max`: sorted, merged, each low to high;
    /// `None` for `$`.
    pub fn resolve(&self, max: u32) -> Option<Vec<(u32, u32)>> {
        let SeqSet::Ranges(ranges, star) = self else {
            return None;
        };
        match star {
            None => Some(ranges.clone()),
            Some(s) => {
                let mut all = ranges.clone();
                let at = s.at(max);
                let i = all.partition_point(|r| r.0 < at.0);
                all.insert(i, at);
                Some(merge(all))
            }
        }
    }

    /// The resolved ranges cut to `1..=max` (what exists).
    pub fn within(&self, max: u32) -> Option<Vec<(u32, u32)>> {
        let mut ranges = self.resolve(max)?;
        let keep = ranges.partition_point(|r| r.0 <= max);
        ranges.truncate(keep);
        if let Some(last) = ranges.last_mut() {
            last.1 = last.1.min(max);
        }
        Some(ranges)
    }

    /// The largest number the set names (with `*` as `max`).
    pub fn highest(&self, max: u32) -> Option<u32> {
        let SeqSet::Ranges(ranges, star) = self else {
            return None;
        };
        let fixed = ranges.last().map(|r| r.1);
        let starred = star.map(|s| s.at(max).1);
        fixed.max(starred)
    }

    /// True if `n` is in the set (with `*` as `max`).
    pub fn contains(&self, n: u32, max: u32) -> bool {
        let SeqSet::Ranges(ranges, star) = self else {
            return false;
        };
        let i = ranges.partition_point(|r| r.1 < n);
        if ranges.get(i).is_some_and(|r| r.0 <= n) {
            return true;
        }
        star.is_some_and(|s| {
            let (a, b) = s.at(max);
            a <= n && n <= b
        })
    }
}

/// Sorts ranges and merges those that overlap or touch.
fn merge(mut ranges: Vec<(u32, u32)>) -> Vec<(u32, u32)> {
    ranges.sort_unstable();
    let mut out: Vec<(u32, u32)> = Vec::with_capacity(ranges.len());
    for (a, b) in ranges {
        match out.last_mut() {
            Some(last) if a <= last.1.saturating_add(1) => {
                last.1 = last.1.max(b);
            }
            _ => out.push((a, b)),
        }
    }
    out
}

/// A number, or None for `*`.
fn bound(a: &mut Args<'_>) -> Result<Option<u32>, Bad> {
    if a.byte(b'*') {
        return Ok(None);
    }
    a.nz_number().map(Some)
}

/// Writes sorted numbers as a compact set: `1:3,7,9:10`.
pub fn write_set(numbers: &[u32], out: &mut Vec<u8>) {
    let singles: Vec<(u32, u32)> = numbers.iter().map(|&n| (n, n)).collect();
    write_ranges(&singles, out);
}

/// Writes sorted, disjoint ranges as a compact set, joining those that
/// touch: `(1,2),(3,3),(7,7)` is `1:3,7`.
pub fn write_ranges(ranges: &[(u32, u32)], out: &mut Vec<u8>) {
    let mut i = 0;
    let mut first = true;
    while i < ranges.len() {
        let (start, mut end) = ranges[i];
        while i + 1 < ranges.len() && ranges[i + 1].0 == end.saturating_add(1)
        {
            i += 1;
            end = ranges[i].1;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        let text = match start == end {
            true => start.to_string(),
            false => format!("{start}:{end}"),
        };
        out.extend_from_slice(text.as_bytes());
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
        // Sorted, merged, `*` folded: 10,000 copies of 1:* are one range.
        let many = vec!["1:*"; 10_000].join(",");
        let s = parse(many.as_bytes()).unwrap();
        assert_eq!(s.resolve(7), Some(vec![(1, 7)]));
        let s = parse(b"9,3:4,5,20:*,2,30:*").unwrap();
        assert_eq!(s.resolve(25), Some(vec![(2, 5), (9, 9), (20, 30)]));
        assert_eq!(s.within(25), Some(vec![(2, 5), (9, 9), (20, 25)]));
        assert_eq!(s.resolve(8), Some(vec![(2, 5), (8, 30)]));
        assert_eq!(s.highest(40), Some(40));
        assert!(s.contains(27, 25) && !s.contains(6, 25));
        assert_eq!(parse(b"*").unwrap().resolve(6), Some(vec![(6, 6)]));
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
        out.clear();
        write_ranges(&[(1, 2), (3, 3), (7, 7), (9, 12), (13, 20)], &mut out);
        assert_eq!(out, b"1:3,7,9:20");
    }
}
