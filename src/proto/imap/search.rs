//! SEARCH keys (RFC 9051 6.4.4, RFC 3501 6.4.4, RFC 7162 MODSEQ) as a
//! tree, read from a command. Evaluating them is the mailbox's job.

use super::args::{Args, Bad};
use super::sequence::SeqSet;

/// Which date a date key compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateField {
    /// The INTERNALDATE.
    Internal,
    /// The Date: header.
    Sent,
}

/// How a date key compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateCmp {
    /// Strictly before the day.
    Before,
    /// On the day.
    On,
    /// On or after the day.
    Since,
}

/// One search key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// Every message.
    All,
    /// A flag (`\Seen`, or a keyword) set, or with `false` unset.
    Flag(String, bool),
    /// Message sequence numbers.
    Seq(SeqSet),
    /// UIDs.
    Uid(SeqSet),
    /// Not this one.
    Not(Box<Key>),
    /// Either.
    Or(Box<Key>, Box<Key>),
    /// All of these (a parenthesised list, or the top level).
    And(Vec<Key>),
    /// A header field containing a string (an empty string: present).
    Header(String, Vec<u8>),
    /// The body containing a string.
    Body(Vec<u8>),
    /// Header or body containing a string.
    Text(Vec<u8>),
    /// A date comparison, in days since 1970-01-01.
    Date(DateField, DateCmp, i64),
    /// RFC822.SIZE larger than `n` (or, with `false`, smaller).
    Size(bool, u64),
    /// \Recent and not \Seen.
    New,
    /// Not \Recent.
    Old,
    /// \Recent.
    Recent,
    /// MODSEQ at least `n`.
    ModSeq(u64),
}

/// True if any key is MODSEQ.
pub fn mentions_modseq(key: &Key) -> bool {
    match key {
        Key::ModSeq(_) => true,
        Key::Not(k) => mentions_modseq(k),
        Key::Or(a, b) => mentions_modseq(a) || mentions_modseq(b),
        Key::And(keys) => keys.iter().any(mentions_modseq),
        _ => false,
    }
}

/// Reads the keys of a SEARCH up to the end of the command.
pub fn parse_keys(a: &mut Args<'_>) -> Result<Key, Bad> {
    let mut keys = vec![key(a)?];
    while !a.at_end() {
        a.sp()?;
        keys.push(key(a)?);
    }
    Ok(if keys.len() == 1 {
        keys.pop().unwrap_or(Key::All)
    } else {
        Key::And(keys)
    })
}

fn string(a: &mut Args<'_>) -> Result<Vec<u8>, Bad> {
    a.sp()?;
    Ok(a.astring()?.into_owned())
}

fn flag_key(name: &str, set: bool) -> Key {
    Key::Flag(name.to_string(), set)
}

fn key(a: &mut Args<'_>) -> Result<Key, Bad> {
    match a.peek() {
        Some(b'(') => {
            a.enter()?;
            let keys = a.list(key)?;
            a.leave();
            if keys.is_empty() {
                return Err(Bad("empty search list"));
            }
            return Ok(Key::And(keys));
        }
        Some(b'0'..=b'9') | Some(b'*') | Some(b'$') => {
            return SeqSet::parse(a).map(Key::Seq);
        }
        _ => {}
    }
    let name = a.name().to_ascii_uppercase();
    let header = |a: &mut Args<'_>, field: &str| -> Result<Key, Bad> {
        Ok(Key::Header(field.into(), string(a)?))
    };
    let date = |a: &mut Args<'_>, f, c| -> Result<Key, Bad> {
        a.sp()?;
        Ok(Key::Date(f, c, date(a)?))
    };
    use DateCmp::*;
    use DateField::*;
    Ok(match name.as_slice() {
        b"ALL" => Key::All,
        b"ANSWERED" => flag_key("\\Answered", true),
        b"DELETED" => flag_key("\\Deleted", true),
        b"DRAFT" => flag_key("\\Draft", true),
        b"FLAGGED" => flag_key("\\Flagged", true),
        b"SEEN" => flag_key("\\Seen", true),
        b"UNANSWERED" => flag_key("\\Answered", false),
        b"UNDELETED" => flag_key("\\Deleted", false),
        b"UNDRAFT" => flag_key("\\Draft", false),
        b"UNFLAGGED" => flag_key("\\Flagged", false),
        b"UNSEEN" => flag_key("\\Seen", false),
        b"NEW" => Key::New,
        b"OLD" => Key::Old,
        b"RECENT" => Key::Recent,
        b"KEYWORD" | b"UNKEYWORD" => {
            a.sp()?;
            let k = String::from_utf8_lossy(a.atom()?).into_owned();
            Key::Flag(k, name.as_slice() == b"KEYWORD")
        }
        b"BCC" => header(a, "BCC")?,
        b"CC" => header(a, "CC")?,
        b"FROM" => header(a, "FROM")?,
        b"TO" => header(a, "TO")?,
        b"SUBJECT" => header(a, "SUBJECT")?,
        b"HEADER" => {
            a.sp()?;
            let field = a.astring()?;
            let field = String::from_utf8_lossy(&field).to_ascii_uppercase();
            Key::Header(field, string(a)?)
        }
        b"BODY" => Key::Body(string(a)?),
        b"TEXT" => Key::Text(string(a)?),
        b"BEFORE" => date(a, Internal, Before)?,
        b"ON" => date(a, Internal, On)?,
        b"SINCE" => date(a, Internal, Since)?,
        b"SENTBEFORE" => date(a, Sent, Before)?,
        b"SENTON" => date(a, Sent, On)?,
        b"SENTSINCE" => date(a, Sent, Since)?,
        b"LARGER" | b"SMALLER" => {
            a.sp()?;
            Key::Size(name.as_slice() == b"LARGER", a.number()?)
        }
        b"UID" => {
            a.sp()?;
            Key::Uid(SeqSet::parse(a)?)
        }
        b"NOT" => {
            a.sp()?;
            a.enter()?;
            let k = key(a)?;
            a.leave();
            Key::Not(Box::new(k))
        }
        b"OR" => {
            a.enter()?;
            a.sp()?;
            let x = key(a)?;
            a.sp()?;
            let y = key(a)?;
            a.leave();
            Key::Or(Box::new(x), Box::new(y))
        }
        b"MODSEQ" => {
            a.sp()?;
            // RFC 7162: an optional entry name and type come first.
            if a.peek() == Some(b'"') {
                a.string()?;
                a.sp()?;
                let t = a.atom()?.to_ascii_lowercase();
                if !matches!(t.as_slice(), b"all" | b"shared" | b"priv") {
                    return Err(Bad("bad MODSEQ entry type"));
                }
                a.sp()?;
            }
            Key::ModSeq(a.number()?)
        }
        _ => return Err(Bad("unknown search key")),
    })
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT",
    "NOV", "DEC",
];

/// `d-Mon-yyyy`, quoted or not, as days since 1970-01-01.
pub fn date(a: &mut Args<'_>) -> Result<i64, Bad> {
    let quoted = a.byte(b'"');
    let day = a.number()?;
    if !a.byte(b'-') {
        return Err(Bad("bad date"));
    }
    let month = a.atom_until_dash()?;
    let month = MONTHS
        .iter()
        .position(|m| m.as_bytes().eq_ignore_ascii_case(month))
        .ok_or(Bad("bad month"))?;
    if !a.byte(b'-') {
        return Err(Bad("bad date"));
    }
    let year = a.number()?;
    if quoted && !a.byte(b'"') {
        return Err(Bad("bad date"));
    }
    if !(1..=31).contains(&day) || !(1..=9999).contains(&year) {
        return Err(Bad("bad date"));
    }
    Ok(days_from_civil(year as i64, month as u32 + 1, day as u32))
}

/// A Date: header as written (RFC 5322 3.3 and its obsolete forms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderDate {
    /// The day since 1970, as written (its own zone).
    pub day: i64,
    /// Seconds since that day's midnight, if the time reads.
    pub time: Option<i64>,
    /// The zone's offset from UTC in seconds, if it reads.
    pub offset: Option<i64>,
}

impl HeaderDate {
    /// The moment, in seconds since the epoch (UTC).
    pub fn seconds(&self) -> Option<i64> {
        Some(self.day * 86_400 + self.time? - self.offset?)
    }
}

/// Reads a Date: header's value: `[Day, ] DD Mon YYYY [HH:MM[:SS] [zone]]`.
/// Compares octets, not characters, so any header is safe to give it.
pub fn header_date(v: &[u8]) -> Option<HeaderDate> {
    let text = String::from_utf8_lossy(v);
    let text = text.split_once(',').map_or(&*text, |(_, r)| r);
    let mut w = text.split_whitespace();
    let day: u32 = w.next()?.parse().ok().filter(|d| (1..=31).contains(d))?;
    let month = w.next()?.as_bytes();
    let month = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
        "nov", "dec",
    ]
    .iter()
    .position(|m| {
        month
            .get(..3)
            .is_some_and(|x| x.eq_ignore_ascii_case(m.as_bytes()))
    })?;
    let mut year: i64 =
        w.next()?.parse().ok().filter(|y| (0..10_000).contains(y))?;
    if year < 50 {
        year += 2000;
    } else if year < 1000 {
        year += 1900;
    }
    let time = w.next().unwrap_or("00:00:00");
    let mut t = time.split(':').map(|p| p.parse::<i64>().ok());
    let time =
        match (t.next().flatten(), t.next().flatten(), t.next().flatten()) {
            (Some(h), m, s) if (0..24).contains(&h) => Some(
                h * 3600
                    + m.unwrap_or(0).clamp(0, 59) * 60
                    + s.unwrap_or(0).clamp(0, 60),
            ),
            _ => None,
        };
    let zone = w.next().unwrap_or("+0000");
    let offset = match zone.as_bytes() {
        [sign @ (b'+' | b'-'), digits @ ..] if digits.len() == 4 => {
            let z: i64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
            let secs = (z / 100) * 3600 + (z % 100) * 60;
            Some(if *sign == b'-' { -secs } else { secs })
        }
        // RFC 5322 4.3's obsolete zone names; others count as UTC.
        _ => Some(
            [
                ("EST", -5),
                ("EDT", -4),
                ("CST", -6),
                ("CDT", -5),
                ("MST", -7),
                ("MDT", -6),
                ("PST", -8),
                ("PDT", -7),
            ]
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(zone))
            .map_or(0, |(_, h)| *h)
                * 3600,
        ),
    };
    Some(HeaderDate {
        day: days_from_civil(year, month as u32 + 1, day),
        time,
        offset,
    })
}

/// Days since 1970-01-01 of a calendar date (proleptic Gregorian).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy =
        (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl Args<'_> {
    fn atom_until_dash(&mut self) -> Result<&[u8], Bad> {
        let start = self.position();
        for _ in 0..3 {
            if !self.peek().is_some_and(|b| b.is_ascii_alphabetic()) {
                return Err(Bad("bad month"));
            }
            self.skip(1);
        }
        Ok(&self.buffer()[start..start + 3])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(s: &[u8]) -> Result<Key, Bad> {
        parse_keys(&mut Args::new(s))
    }

    #[test]
    fn forms() {
        assert_eq!(
            keys(b"FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"").unwrap(),
            Key::And(vec![
                Key::Flag("\\Flagged".into(), true),
                Key::Date(
                    DateField::Internal,
                    DateCmp::Since,
                    days_from_civil(1994, 2, 1)
                ),
                Key::Not(Box::new(Key::Header(
                    "FROM".into(),
                    b"Smith".to_vec()
                ))),
            ])
        );
        assert!(matches!(keys(b"OR (SEEN) 1:5").unwrap(), Key::Or(..)));
        assert!(matches!(keys(b"UID 1:*").unwrap(), Key::Uid(_)));
        assert_eq!(keys(b"MODSEQ 5").unwrap(), Key::ModSeq(5));
        assert_eq!(
            keys(b"MODSEQ \"/flags/\\\\draft\" all 620162338").unwrap(),
            Key::ModSeq(620162338)
        );
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn nasty_keys() {
        for bad in [
            &b""[..],
            b"()",
            b"FOO",
            b"OR SEEN",
            b"SINCE 1-Foo-2000",
            b"SINCE 32-Jan-2000",
            b"SINCE 1-Jan-",
            b"LARGER x",
            b"NOT",
            b"HEADER",
        ] {
            assert!(keys(bad).is_err(), "{bad:?}");
        }
        let deep = [&b"NOT "[..]].repeat(100).concat();
        let deep = [deep, b"ALL".to_vec()].concat();
        assert!(keys(&deep).is_err());
        let nested = ["(".repeat(100), "ALL".into(), ")".repeat(100)].concat();
        assert!(keys(nested.as_bytes()).is_err());
    }
}
