//! Dates for mail headers (RFC 5322 3.3) and mbox `From ` lines, in UTC,
//! from a [`SystemTime`]; no time zone database needed.

use std::time::{SystemTime, UNIX_EPOCH};

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
    "Nov", "Dec",
];

/// Broken-down UTC time.
struct Civil {
    year: i64,
    month: usize,
    day: i64,
    weekday: usize,
    hms: (i64, i64, i64),
}

fn civil(t: SystemTime) -> Civil {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    Civil {
        year,
        month: month as usize - 1,
        day: i64::from(day),
        weekday: days.rem_euclid(7) as usize,
        hms: (rem / 3600, rem % 3600 / 60, rem % 60),
    }
}

/// The calendar date (year, month from 1, day from 1) of a day
/// counted from 1970-01-01 (Howard Hinnant's days-to-civil).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        yoe + era * 400 + i64::from(month <= 2),
        month as u32,
        day as u32,
    )
}

/// The day counted from 1970-01-01 of a calendar date (the inverse
/// of [`civil_from_days`]).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5
        + i64::from(day)
        - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Now, in seconds since the epoch.
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// `Sun, 22 Nov 2026 20:29:08 +0000` (RFC 5322 3.3).
pub fn rfc5322(t: SystemTime) -> String {
    let c = civil(t);
    let (h, m, s) = c.hms;
    format!(
        "{}, {} {} {} {h:02}:{m:02}:{s:02} +0000",
        DAYS[c.weekday], c.day, MONTHS[c.month], c.year
    )
}

/// `Sun, 22 Nov 2026 20:29:08 GMT`, HTTP's IMF-fixdate (RFC 9110
/// 5.6.7).
pub fn http(t: SystemTime) -> String {
    let c = civil(t);
    let (h, m, s) = c.hms;
    format!(
        "{}, {:02} {} {} {h:02}:{m:02}:{s:02} GMT",
        DAYS[c.weekday], c.day, MONTHS[c.month], c.year
    )
}

/// `Sun Nov 22 20:29:08 2026`, the asctime form of mbox `From ` lines.
pub fn asctime(t: SystemTime) -> String {
    let c = civil(t);
    let (h, m, s) = c.hms;
    format!(
        "{} {} {:2} {h:02}:{m:02}:{s:02} {}",
        DAYS[c.weekday], MONTHS[c.month], c.day, c.year
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn known_dates() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_379_348);
        assert_eq!(rfc5322(t), "Sun, 22 Nov 2026 20:29:08 +0000");
        assert_eq!(asctime(t), "Sun Nov 22 20:29:08 2026");
        assert_eq!(rfc5322(UNIX_EPOCH), "Thu, 1 Jan 1970 00:00:00 +0000");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(asctime(leap), "Tue Feb 29 00:00:00 2000");
    }
}
