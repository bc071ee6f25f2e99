//! Timestamps in WHEN, checked field by field: RFC 3339 (`2026-11-24T10:00:00Z`, `…+02:00`,
//! `t`/`z` in lowercase, a space for the `T`), also with minutes only or a date only (midnight),
//! and local times (no zone) in the zone of `TZ`. A day past its month's end, hour 24, a leap
//! second, an offset past ±23:59 or anything after the zone is an error naming the field; so is
//! a local time the clocks skip or show twice (daylight saving time), which only an offset pins.

use anyhow::{Result, anyhow, bail};

/// Whether `s` is meant as a timestamp: it starts with a year and a dash (`2026-`).
pub fn looks_like(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 5 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-'
}

/// Unix seconds of timestamp `s` (see [`looks_like`]); an error says what is wrong with it.
pub fn parse(s: &str) -> Result<i64> {
    let (naive, offset) = fields(s).map_err(|e| anyhow!("not a valid time {s:?}: {e}"))?;
    match offset {
        Some(offset) => Ok(naive - offset),
        None => {
            known_zone()?;
            local(s, naive, offset_at)
        }
    }
}

/// The time as if it were UTC (seconds), and its offset (seconds east) if it has one.
fn fields(s: &str) -> Result<(i64, Option<i64>)> {
    let mut p = Cursor { s, at: 0 };
    let year = p.number(4, "the year")?;
    p.expect(b'-', "the year")?;
    let month = p.number(2, "the month")?;
    p.expect(b'-', "the month")?;
    let day = p.number(2, "the day")?;
    check_date(year, month, day)?;
    let mut secs = days_from_civil(year, month, day) * 86400;
    if let Some(b'T' | b't' | b' ') = p.peek() {
        p.at += 1;
        secs += p.time()?;
    }
    let offset = p.zone()?;
    if p.at < s.len() {
        bail!("unexpected {:?} after the time", &s[p.at..]);
    }
    Ok((secs, offset))
}

struct Cursor<'a> {
    s: &'a str,
    at: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.at).copied()
    }

    /// Exactly `n` digits.
    fn number(&mut self, n: usize, what: &str) -> Result<i64> {
        let digits = self.s.as_bytes().get(self.at..self.at + n);
        match digits.filter(|d| d.iter().all(u8::is_ascii_digit)) {
            Some(d) => {
                self.at += n;
                Ok(d.iter().fold(0, |v, b| v * 10 + i64::from(b - b'0')))
            }
            None => bail!("{what} needs {n} digits"),
        }
    }

    fn expect(&mut self, byte: u8, after: &str) -> Result<()> {
        if self.peek() != Some(byte) {
            bail!("expected {:?} after {after}", byte as char);
        }
        self.at += 1;
        Ok(())
    }

    /// `HH:MM`, `HH:MM:SS` or `HH:MM:SS.fraction` (the fraction is dropped: snapshot times are
    /// whole seconds, so the latest snapshot at or before stays the same), in seconds.
    fn time(&mut self) -> Result<i64> {
        let hour = self.number(2, "the hour")?;
        self.expect(b':', "the hour")?;
        let minute = self.number(2, "the minute")?;
        let mut second = 0;
        if self.peek() == Some(b':') {
            self.at += 1;
            second = self.number(2, "the second")?;
            if self.peek() == Some(b'.') {
                self.at += 1;
                let start = self.at;
                while self.peek().is_some_and(|b| b.is_ascii_digit()) {
                    self.at += 1;
                }
                if self.at == start {
                    bail!("a fraction of a second needs digits after the dot");
                }
            }
        }
        if hour == 24 {
            bail!("hour 24 does not exist (00:00 of the next day is meant)");
        }
        if hour > 23 || minute > 59 {
            bail!("{hour:02}:{minute:02} is not a time of day");
        }
        if second == 60 {
            bail!("second 60 (a leap second) cannot be matched: snapshot times have none; use :59");
        }
        if second > 59 {
            bail!("second {second} is out of range (00-59)");
        }
        Ok(hour * 3600 + minute * 60 + second)
    }

    /// `Z`, `z`, `±HH:MM` or `±HHMM` (seconds east of UTC), or none.
    fn zone(&mut self) -> Result<Option<i64>> {
        let sign = match self.peek() {
            Some(b'Z' | b'z') => {
                self.at += 1;
                return Ok(Some(0));
            }
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => return Ok(None),
        };
        let start = self.at;
        self.at += 1;
        let hours = self.number(2, "the offset's hours")?;
        if self.peek() == Some(b':') {
            self.at += 1;
        }
        let minutes = self.number(2, "the offset's minutes")?;
        if hours > 23 || minutes > 59 {
            bail!(
                "offset {} is out of range (-23:59 to +23:59)",
                &self.s[start..self.at]
            );
        }
        Ok(Some(sign * (hours * 3600 + minutes * 60)))
    }
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn check_date(year: i64, month: i64, day: i64) -> Result<()> {
    if !(1..=12).contains(&month) {
        bail!("month {month:02} does not exist");
    }
    let last = days_in_month(year, month);
    if day == 0 || day > last {
        let name = MONTHS[month as usize - 1];
        bail!("day {day:02} does not exist ({name} {year} has {last} days)");
    }
    Ok(())
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DDTHH:MM:SS` of seconds since 1970 (its inverse, `civil_from_days`).
fn format_naive(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s) = (rem / 3600, rem / 60 % 60, rem % 60);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}")
}

fn format_offset(offset: i64) -> String {
    let sign = if offset < 0 { '-' } else { '+' };
    let a = offset.abs();
    format!("{sign}{:02}:{:02}", a / 3600, a / 60 % 60)
}

/// The instant of local time `naive` (seconds as if UTC) in a zone whose offset at each
/// instant `offset_at` gives: an error when the clocks skip it or show it twice.
fn local(s: &str, naive: i64, offset_at: impl Fn(i64) -> i64) -> Result<i64> {
    // The offsets in force around it (a zone changes its offset at most once a day).
    let mut offsets: Vec<i64> = [-86400, 0, 86400]
        .iter()
        .map(|d| offset_at(naive + d))
        .collect();
    offsets.sort_unstable();
    offsets.dedup();
    let mut instants: Vec<(i64, i64)> = offsets
        .iter()
        .map(|&o| (naive - o, o))
        .filter(|&(t, o)| offset_at(t) == o)
        .collect();
    instants.sort_unstable();
    match instants.as_slice() {
        [(t, _)] => Ok(*t),
        [] => bail!(
            "local time {s:?} does not exist in this time zone (the clocks skip it, from {} to \
             {}); give an offset, like {}{}, or a UTC time ending in Z",
            format_offset(offset_at(naive - 86400)),
            format_offset(offset_at(naive + 86400)),
            format_naive(naive),
            format_offset(offset_at(naive - 86400)),
        ),
        both => {
            let shown: Vec<String> = both
                .iter()
                .map(|&(t, o)| {
                    let utc = format_naive(t);
                    format!("{}{} ({utc}Z)", format_naive(naive), format_offset(o))
                })
                .collect();
            bail!(
                "local time {s:?} happens twice in this time zone (the clocks go back): {}; \
                 give the offset you mean",
                shown.join(" or ")
            )
        }
    }
}

/// A `TZ` naming a zone the C library cannot find is taken as UTC there, without a word: an
/// error for a local time instead. POSIX rules (`CET-1CEST`, `UTC0`) and `UTC`/`GMT` pass.
fn known_zone() -> Result<()> {
    let Some(tz) = std::env::var_os("TZ") else {
        return Ok(());
    };
    let tz = tz.to_string_lossy();
    let name = tz.strip_prefix(':').unwrap_or(&tz);
    if name.is_empty() || ["UTC", "GMT", "UCT", "Z"].contains(&name) {
        return Ok(());
    }
    let dir = std::env::var_os("TZDIR").unwrap_or_else(|| "/usr/share/zoneinfo".into());
    let file = std::path::Path::new(&dir).join(name);
    if std::path::Path::new(name).is_absolute() && std::path::Path::new(name).is_file()
        || file.is_file()
        || posix_rule(name)
    {
        return Ok(());
    }
    bail!(
        "TZ={tz:?} names no time zone this system has ({} has no such file), so the local time \
         would be read as UTC: set TZ to a zone like Europe/Berlin, or give the time with an \
         offset (2026-11-24T10:00+01:00) or in UTC (2026-11-24T09:00Z)",
        dir.display()
    )
}

/// Whether `tz` starts as a POSIX rule does, which the C library reads as one: a zone name (3
/// letters or more, or `<…>`) then an offset (`CET-1…`, `<+0330>-3:30`). A name with a digit in
/// it but no such start (`Etc/GMT+14` without its file, `Europe/Berlin2`) is not one: the C
/// library would read it as UTC.
fn posix_rule(tz: &str) -> bool {
    let b = tz.as_bytes();
    let mut i = 0;
    if b.first() == Some(&b'<') {
        let Some(end) = tz.find('>') else {
            return false;
        };
        let quoted = &b[1..end];
        if quoted.len() < 3
            || !quoted
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || b"+-".contains(c))
        {
            return false;
        }
        i = end + 1;
    } else {
        while b.get(i).is_some_and(u8::is_ascii_alphabetic) {
            i += 1;
        }
        if i < 3 {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'+' | b'-')) {
        i += 1;
    }
    b.get(i).is_some_and(u8::is_ascii_digit)
}

/// The local zone's offset from UTC (seconds east) at Unix time `t`.
pub fn offset_at(t: i64) -> i64 {
    let secs = t as libc::time_t;
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    if unsafe { libc::localtime_r(&secs, &mut tm) }.is_null() {
        return 0;
    }
    tm.tm_gmtoff
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Berlin's zone in 2026: CEST (+02:00) from 2026-03-29T01:00Z to 2026-10-25T01:00Z.
    fn berlin(t: i64) -> i64 {
        if (1_774_746_000..1_792_890_000).contains(&t) {
            7200
        } else {
            3600
        }
    }

    fn local_err(s: &str) -> String {
        let (naive, _) = fields(s).unwrap();
        local(s, naive, berlin).unwrap_err().to_string()
    }

    fn err(s: &str) -> String {
        parse(s).unwrap_err().to_string()
    }

    #[test]
    fn fields_are_checked() {
        assert_eq!(parse("2026-11-24T10:00:00Z").unwrap(), 1_795_514_400);
        assert_eq!(parse("2026-11-24t10:00:00z").unwrap(), 1_795_514_400);
        assert_eq!(parse("2026-11-24T10:00Z").unwrap(), 1_795_514_400);
        assert_eq!(parse("2026-11-24T10:00:00.999Z").unwrap(), 1_795_514_400);
        assert_eq!(parse("2026-11-24 12:00:00+0200").unwrap(), 1_795_514_400);
        assert_eq!(parse("2026-11-25T09:59:00+23:59").unwrap(), 1_795_514_400);
        assert_eq!(parse("2024-02-29T00:00:00Z").unwrap(), 1_709_164_800);
        assert_eq!(parse("1969-12-31T23:59:59Z").unwrap(), -1);
        assert!(err("2026-02-30T10:00:00Z").contains("February 2026 has 28 days"));
        assert!(err("2100-02-29").contains("February 2100 has 28 days"));
        assert!(err("2026-04-31 10:00").contains("day 31 does not exist"));
        assert!(err("2026-13-01T10:00:00Z").contains("month 13"));
        assert!(err("2026-00-10T10:00:00Z").contains("month 00"));
        assert!(err("2026-11-00T10:00:00Z").contains("day 00"));
        assert!(err("2026-11-24T24:00:00Z").contains("hour 24"));
        assert!(err("2026-11-24T10:60:00Z").contains("10:60"));
        assert!(err("2026-12-31T23:59:60Z").contains("leap second"));
        assert!(err("2026-11-24T10:00:00+25:00").contains("+25:00 is out of range"));
        assert!(err("2026-11-24T10:00:00-23:60").contains("-23:60 is out of range"));
        assert!(err("2026-11-24T10:00:00+2:00").contains("offset's hours"));
        assert!(err("2026-11-24T10:00:00Zjunk").contains("\"junk\" after the time"));
        assert!(err("2026-11-24T10:00:00+02:00 ").contains("after the time"));
        assert!(err("2026-11-24T10:00:00.Z").contains("fraction"));
        assert!(err("2026-11-24T10").contains("expected ':'"));
        assert!(err("2026-1-24").contains("the month needs 2 digits"));
        assert!(err("2026-11-24T10:00:00Z\u{e9}").contains("after the time"));
    }

    #[test]
    fn posix_rules_are_told_from_zone_names_with_digits() {
        for rule in [
            "CET-1CEST,M3.5.0,M10.5.0/3",
            "UTC0",
            "EST5EDT",
            "<+0330>-3:30",
            "GMT+14",
        ] {
            assert!(posix_rule(rule), "{rule}");
        }
        for name in [
            "Etc/GMT+14",
            "Europe/Berlin2",
            "Europe/Berln",
            "X1",
            "<+03",
            "<a>1",
            "ABC",
        ] {
            assert!(!posix_rule(name), "{name}");
        }
    }

    #[test]
    fn local_times_the_clocks_skip_or_repeat_are_errors() {
        let (naive, _) = fields("2026-07-01 12:00").unwrap();
        assert_eq!(local("", naive, berlin).unwrap(), naive - 7200);
        let (naive, _) = fields("2026-03-29 03:00").unwrap();
        assert_eq!(local("", naive, berlin).unwrap(), 1_774_746_000);
        let gap = local_err("2026-03-29 02:30");
        assert!(gap.contains("does not exist"), "{gap}");
        assert!(gap.contains("from +01:00 to +02:00"), "{gap}");
        let twice = local_err("2026-10-25 02:30");
        assert!(twice.contains("happens twice"), "{twice}");
        assert!(
            twice.contains("2026-10-25T02:30:00+02:00 (2026-10-25T00:30:00Z)")
                && twice.contains("2026-10-25T02:30:00+01:00 (2026-10-25T01:30:00Z)"),
            "{twice}"
        );
        assert_eq!(format_naive(-1), "1969-12-31T23:59:59");
        assert_eq!(format_naive(1_795_514_400), "2026-11-24T10:00:00");
    }
}
