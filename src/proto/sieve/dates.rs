//! The `date` extension's parts (RFC 5260 §4.2) of a Date-like header
//! or of now, in the zone a test asks for. "Local" time is UTC: the
//! server keeps no time zone database.

use super::script::Zone;
use crate::proto::imap::search::header_date;
use crate::util::date::civil_from_days;

/// A header's date, as `part` in `zone`; None if it does not read.
pub fn part_of_header(raw: &[u8], zone: &Zone, part: &str) -> Option<String> {
    let d = header_date(raw)?;
    let at = d.seconds()?;
    let own = (d.offset? / 60) as i32;
    let minutes = match zone {
        Zone::Local => 0,
        Zone::Fixed(m) => *m,
        Zone::Original => own,
    };
    part_at(at, minutes, part)
}

/// Now as `part` in `zone` (the original zone of now is ours: UTC).
pub fn part_of_now(now: i64, zone: &Zone, part: &str) -> Option<String> {
    let minutes = match zone {
        Zone::Fixed(m) => *m,
        _ => 0,
    };
    part_at(now, minutes, part)
}

/// The moment `at` (UTC seconds) seen `minutes` east of UTC.
fn part_at(at: i64, minutes: i32, part: &str) -> Option<String> {
    let local = at + i64::from(minutes) * 60;
    let (days, secs) = (local.div_euclid(86_400), local.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let sign = if minutes < 0 { '-' } else { '+' };
    let (zh, zm) = (minutes.abs() / 60, minutes.abs() % 60);
    // 1970-01-01 was a Thursday (4); Sunday is 0.
    let weekday = (days + 4).rem_euclid(7);
    Some(match part.to_ascii_lowercase().as_str() {
        "year" => format!("{y:04}"),
        "month" => format!("{m:02}"),
        "day" => format!("{d:02}"),
        "date" => format!("{y:04}-{m:02}-{d:02}"),
        // Modified Julian Day: days since 1858-11-17.
        "julian" => (days + 40_587).to_string(),
        "hour" => format!("{hh:02}"),
        "minute" => format!("{mm:02}"),
        "second" => format!("{ss:02}"),
        "time" => format!("{hh:02}:{mm:02}:{ss:02}"),
        "iso8601" => format!(
            "{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}{sign}{zh:02}:{zm:02}"
        ),
        "std11" => {
            const DAYS: [&str; 7] =
                ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
            const MONTHS: [&str; 12] = [
                "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep",
                "Oct", "Nov", "Dec",
            ];
            format!(
                "{}, {d:02} {} {y:04} {hh:02}:{mm:02}:{ss:02} {sign}{zh:02}{zm:02}",
                DAYS[weekday as usize],
                MONTHS[m as usize - 1]
            )
        }
        "zone" => format!("{sign}{zh:02}{zm:02}"),
        "weekday" => weekday.to_string(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_in_zones() {
        let h = b"Wed, 18 Feb 2009 20:30:00 -0500";
        let get = |z: Zone, p: &str| part_of_header(h, &z, p).unwrap();
        assert_eq!(
            get(Zone::Original, "iso8601"),
            "2009-02-18T20:30:00-05:00"
        );
        assert_eq!(get(Zone::Local, "date"), "2009-02-19");
        assert_eq!(get(Zone::Local, "hour"), "01");
        assert_eq!(get(Zone::Fixed(60), "time"), "02:30:00");
        assert_eq!(get(Zone::Original, "weekday"), "3");
        assert_eq!(get(Zone::Original, "julian"), "54880");
        assert_eq!(
            get(Zone::Original, "std11"),
            "Wed, 18 Feb 2009 20:30:00 -0500"
        );
        assert_eq!(get(Zone::Original, "zone"), "-0500");
        assert!(part_of_header(b"yesterday", &Zone::Local, "year").is_none());
    }
}
