//! Datetimes in payloads and filters: RFC 3339 / ISO 8601 strings, compared as microseconds since the Unix
//! epoch (UTC).
//!
//! Accepted forms (`YYYY` is exactly four digits, 0000–9999; every other field exactly two digits):
//!
//! * `YYYY-MM-DD` (midnight UTC);
//! * `YYYY-MM-DD<sep>HH:MM`, `YYYY-MM-DD<sep>HH:MM:SS` and `YYYY-MM-DD<sep>HH:MM:SS.f` with 1 to 9 fraction
//!   digits, where `<sep>` is `T`, `t` or one space;
//! * after a time, an optional zone: `Z`, `z`, `+HH:MM`, `-HH:MM`, `+HHMM` or `-HHMM` (offset hours < 24,
//!   minutes < 60). No zone means UTC.
//!
//! Fields are range-checked (month 1–12, the day against the month's length with Gregorian leap years, hour
//! < 24, minute < 60). A leap second (`:60`) is accepted and read as the last microsecond of that minute
//! (`HH:MM:59.999999`, whatever fraction follows), so it orders after every other instant of the minute and
//! before the next minute. Fractions finer than a microsecond are truncated, not rounded.

/// Microseconds in one day.
const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Parses an RFC 3339 / ISO 8601 datetime (see the module documentation for the accepted forms) into
/// microseconds since 1970-01-01T00:00:00Z. `None` when `s` is not such a datetime or a field is out of range.
pub fn parse_datetime(s: &str) -> Option<i64> {
    let mut p = Cursor { b: s.as_bytes(), i: 0 };
    let year = p.digits(4)?;
    p.expect(b'-')?;
    let month = p.digits(2)?;
    p.expect(b'-')?;
    let day = p.digits(2)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    if p.done() {
        return Some(days * MICROS_PER_DAY);
    }
    if !matches!(p.next()?, b'T' | b't' | b' ') {
        return None;
    }
    let hour = p.digits(2)?;
    p.expect(b':')?;
    let minute = p.digits(2)?;
    let (mut second, mut micros) = (0, 0);
    if p.peek() == Some(b':') {
        p.i += 1;
        second = p.digits(2)?;
        if p.peek() == Some(b'.') {
            p.i += 1;
            let start = p.i;
            while matches!(p.peek(), Some(b'0'..=b'9')) {
                p.i += 1;
            }
            let n = p.i - start;
            if n == 0 || n > 9 {
                return None;
            }
            // First six digits, right-padded with zeros: the microseconds (the rest is truncated).
            micros = p.b[start..start + n.min(6)].iter().fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0'));
            for _ in n..6 {
                micros *= 10;
            }
        }
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    if second == 60 {
        second = 59;
        micros = 999_999;
    }
    let offset_minutes = match p.next() {
        None => 0,
        Some(b'Z' | b'z') => 0,
        Some(sign @ (b'+' | b'-')) => {
            let oh = p.digits(2)?;
            if p.peek() == Some(b':') {
                p.i += 1;
            }
            let om = p.digits(2)?;
            if oh > 23 || om > 59 {
                return None;
            }
            let m = oh * 60 + om;
            if sign == b'-' { -m } else { m }
        }
        Some(_) => return None,
    };
    if !p.done() {
        return None;
    }
    let seconds = ((hour * 60 + minute) - offset_minutes) * 60 + second;
    Some(days * MICROS_PER_DAY + seconds * 1_000_000 + micros)
}

/// Whether `year` is a Gregorian leap year.
fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Days in `month` (1–12) of `year`.
fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Formats a Unix time in milliseconds as RFC 3339 UTC with milliseconds (`2026-11-23T16:11:08.042Z`), the
/// inverse of [`days_from_civil`] for the date; [`parse_datetime`] reads it back.
pub fn format_unix_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let rem = secs % 86_400;
    // Shifted to the March-based era of `days_from_civil`, then undone step by step.
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z", rem / 3600, rem % 3600 / 60, rem % 60, ms % 1000)
}

/// Days from 1970-01-01 to the given proleptic Gregorian date.
///
/// The year is shifted to start on March 1st so the leap day is the last day of the shifted year; the shifted
/// year is then split into 400-year eras of 146 097 days, and the day of the era is the day of the year plus
/// 365 per year plus the leap days (`/4 - /100`) before it.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400; // 0..=399
    let shifted_month = if month > 2 { month - 3 } else { month + 9 }; // March = 0 .. February = 11
    // Days before the shifted month: months of 31,30,31,30,31 days repeat, which (153 m + 2) / 5 counts.
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    // 719 468 days lie between 0000-03-01 (day 0 of era 0) and 1970-01-01.
    era * 146_097 + day_of_era - 719_468
}

/// A byte cursor over the input.
struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    fn done(&self) -> bool {
        self.i == self.b.len()
    }

    fn expect(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    /// Exactly `n` ASCII digits as a number.
    fn digits(&mut self, n: usize) -> Option<i64> {
        let mut v = 0i64;
        for _ in 0..n {
            let c = self.next()?;
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(c - b'0');
        }
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const S: i64 = 1_000_000;

    #[test]
    fn known_epoch_values() {
        assert_eq!(parse_datetime("1970-01-01"), Some(0));
        assert_eq!(parse_datetime("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_datetime("2000-03-01T00:00:00Z"), Some(951_868_800 * S));
        assert_eq!(parse_datetime("2000-02-29"), Some(951_782_400 * S));
        assert_eq!(parse_datetime("1969-12-31T23:59:59Z"), Some(-S));
        assert_eq!(parse_datetime("2023-11-14T22:13:20Z"), Some(1_700_000_000 * S));
        assert_eq!(parse_datetime("2038-01-19T03:14:07Z"), Some(i64::from(i32::MAX) * S));
        assert_eq!(parse_datetime("1900-01-01"), Some(-2_208_988_800 * S));
        assert_eq!(parse_datetime("0000-01-01"), Some(-62_167_219_200 * S));
        assert_eq!(parse_datetime("9999-12-31T23:59:59Z"), Some(253_402_300_799 * S));
    }

    #[test]
    fn separators_fractions_and_zones() {
        let base = 1_700_000_000 * S;
        for s in [
            "2023-11-14T22:13:20Z",
            "2023-11-14t22:13:20z",
            "2023-11-14 22:13:20",
            "2023-11-14T22:13:20",
            "2023-11-14T22:13:20.000Z",
            "2023-11-14T23:13:20+01:00",
            "2023-11-14T23:13:20+0100",
            "2023-11-14T17:43:20-04:30",
            "2023-11-15T03:43:20+05:30",
        ] {
            assert_eq!(parse_datetime(s), Some(base), "{s}");
        }
        assert_eq!(parse_datetime("2023-11-14T22:13Z"), Some(base - 20 * S));
        assert_eq!(parse_datetime("2023-11-14T22:13"), Some(base - 20 * S));
        assert_eq!(parse_datetime("2023-11-14T22:13:20.5Z"), Some(base + 500_000));
        assert_eq!(parse_datetime("2023-11-14T22:13:20.123456Z"), Some(base + 123_456));
        assert_eq!(parse_datetime("2023-11-14T22:13:20.123456789Z"), Some(base + 123_456));
        assert_eq!(parse_datetime("2023-11-14T22:13:20.000001+00:00"), Some(base + 1));
        // An offset that crosses midnight and the year.
        assert_eq!(parse_datetime("2000-01-01T01:00:00+02:00"), parse_datetime("1999-12-31T23:00:00Z"));
    }

    #[test]
    fn leap_second_is_the_last_microsecond_of_its_minute() {
        let t = parse_datetime("2016-12-31T23:59:60Z").unwrap();
        assert_eq!(t, parse_datetime("2016-12-31T23:59:59.999999Z").unwrap());
        assert!(t < parse_datetime("2017-01-01T00:00:00Z").unwrap());
        assert_eq!(parse_datetime("2016-12-31T23:59:60.25Z"), Some(t));
    }

    #[test]
    fn leap_years() {
        assert!(parse_datetime("2024-02-29").is_some());
        assert!(parse_datetime("2000-02-29").is_some());
        assert!(parse_datetime("2023-02-29").is_none());
        assert!(parse_datetime("1900-02-29").is_none());
        assert!(parse_datetime("2100-02-29").is_none());
    }

    #[test]
    fn rejects() {
        for s in [
            "",
            "2023",
            "2023-1-01",
            "2023-01-1",
            "23-01-01",
            "20230101",
            "2023-00-10",
            "2023-13-01",
            "2023-01-00",
            "2023-01-32",
            "2023-04-31",
            "2023-01-01T",
            "2023-01-01T24:00",
            "2023-01-01T23:60",
            "2023-01-01T23:59:61",
            "2023-01-01T1:00",
            "2023-01-01T10",
            "2023-01-01X10:00",
            "2023-01-01T10:00:00.",
            "2023-01-01T10:00:00.1234567890",
            "2023-01-01T10:00:00+1",
            "2023-01-01T10:00:00+01:0",
            "2023-01-01T10:00:00+24:00",
            "2023-01-01T10:00:00+01:60",
            "2023-01-01T10:00:00Zjunk",
            "2023-01-01Z",
            "2023-01-01 ",
            "+2023-01-01",
            "２０２３-01-01",
        ] {
            assert_eq!(parse_datetime(s), None, "{s:?}");
        }
    }

    #[test]
    fn format_unix_ms_is_read_back_by_parse_datetime() {
        assert_eq!(format_unix_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_unix_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(format_unix_ms(1_795_450_268_042), "2026-11-23T16:11:08.042Z");
        let mut ms = 0u64;
        while ms < 253_402_300_799_000 {
            let text = format_unix_ms(ms);
            assert_eq!(parse_datetime(&text), Some(ms as i64 * 1000), "{text}");
            ms += 86_399_999 * 37 + 13;
        }
    }

    #[test]
    fn days_from_civil_is_monotone_and_consistent() {
        let mut expected = days_from_civil(1599, 12, 31);
        for year in 1600..2401 {
            for month in 1..=12 {
                for day in 1..=days_in_month(year, month) {
                    expected += 1;
                    assert_eq!(days_from_civil(year, month, day), expected, "{year}-{month}-{day}");
                }
            }
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
    }
}
