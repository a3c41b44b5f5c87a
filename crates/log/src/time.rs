//! Time as etcd's loggers print it: zap's `ISO8601TimeEncoder`
//! (`2006-01-02T15:04:05.000Z0700`, the process's local zone, `Z` when it is UTC),
//! capnslog's `2006-01-02 15:04:05.000000`, lumberjack's backup-name stamp
//! (`2006-01-02T15-04-05.000`), and Go's `time.Duration.String()` for durations.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A broken-down wall-clock time with its offset from UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub nanos: u32,
    /// Seconds east of UTC.
    pub offset: i64,
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// (year, month, day) to days since 1970-01-01 (H. Hinnant's `days_from_civil`).
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Seconds and nanoseconds since the Unix epoch (negative times clamp to the epoch).
fn unix(t: SystemTime) -> (i64, u32) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    (d.as_secs() as i64, d.subsec_nanos())
}

/// The local zone's offset from UTC at `secs`, as the C library knows it (`TZ`, else
/// `/etc/localtime`), which is where Go's `time.Local` comes from too.
fn local_offset(secs: i64) -> i64 {
    let t = secs as libc::time_t;
    // SAFETY: `tm` is plain data that localtime_r fills; both pointers are valid for the call.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            return 0;
        }
        tm.tm_gmtoff
    }
}

impl Civil {
    /// `t` in UTC.
    pub fn utc(t: SystemTime) -> Civil {
        let (secs, nanos) = unix(t);
        Civil::at(secs, nanos, 0)
    }

    /// `t` in the process's local zone.
    pub fn local(t: SystemTime) -> Civil {
        let (secs, nanos) = unix(t);
        Civil::at(secs, nanos, local_offset(secs))
    }

    fn at(secs: i64, nanos: u32, offset: i64) -> Civil {
        let local = secs + offset;
        let (year, month, day) = civil_from_days(local.div_euclid(86_400));
        let sod = local.rem_euclid(86_400);
        Civil {
            year,
            month,
            day,
            hour: (sod / 3600) as u32,
            minute: (sod % 3600 / 60) as u32,
            second: (sod % 60) as u32,
            nanos,
            offset,
        }
    }

    /// Seconds since the Unix epoch of this wall-clock time.
    pub fn unix_seconds(&self) -> i64 {
        let days = days_from_civil(self.year, self.month, self.day);
        days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
            - self.offset
    }

    /// zap's ISO 8601: `2026-12-06T13:09:01.387Z` (or `+0100` outside UTC); milliseconds
    /// truncated, as Go's `.000` does.
    pub fn iso8601(&self) -> String {
        let mut s = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}",
            self.year,
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
            self.nanos / 1_000_000
        );
        if self.offset == 0 {
            s.push('Z');
        } else {
            let sign = if self.offset < 0 { '-' } else { '+' };
            let abs = self.offset.abs();
            s.push_str(&format!("{sign}{:02}{:02}", abs / 3600, abs % 3600 / 60));
        }
        s
    }

    /// capnslog's `2006-01-02 15:04:05.000000`.
    pub fn capnslog(&self) -> String {
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}",
            self.year,
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
            self.nanos / 1000
        )
    }

    /// lumberjack's backup stamp `2006-01-02T15-04-05.000`.
    pub fn backup_stamp(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}-{:02}-{:02}.{:03}",
            self.year,
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
            self.nanos / 1_000_000
        )
    }
}

/// Parses lumberjack's backup stamp back to seconds since the epoch (in UTC, or in the
/// local zone when `local`).
pub(crate) fn parse_backup_stamp(s: &str, local: bool) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 23 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[19] != b'.' {
        return None;
    }
    if b[13] != b'-' || b[16] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (month, day) = (num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    num(20..23)?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    let civil = Civil {
        year: i64::from(num(0..4)?),
        month,
        day,
        hour,
        minute,
        second: second.min(59),
        nanos: 0,
        offset: 0,
    };
    let utc = civil.unix_seconds();
    Some(if local { utc - local_offset(utc) } else { utc })
}

/// A duration printed as Go's `time.Duration.String()` (`1.5s`, `2m0s`, `300ms`,
/// `1.234567ms`, `0s`): what zap's `StringDurationEncoder` writes for `zap.Duration`.
/// Use it as `took = %chorus_log::GoDuration(elapsed)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoDuration(pub Duration);

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&go_duration(self.0))
    }
}

/// Go's `Duration.String` for a non-negative duration (Go's durations are int64
/// nanoseconds; longer ones saturate as Go's would overflow).
pub fn go_duration(d: Duration) -> String {
    let ns = u64::try_from(d.as_nanos()).unwrap_or(i64::MAX as u64);
    if ns == 0 {
        return "0s".to_string();
    }
    if ns < 1_000_000_000 {
        let (unit, scale) = match ns {
            n if n < 1_000 => return format!("{n}ns"),
            n if n < 1_000_000 => ("µs", 1_000),
            _ => ("ms", 1_000_000),
        };
        return format!("{}{unit}", fraction(ns, scale));
    }
    let secs = ns / 1_000_000_000;
    let frac = fraction(ns % 60_000_000_000, 1_000_000_000);
    let (h, m) = (secs / 3600, secs / 60 % 60);
    match (h, m) {
        (0, 0) => format!("{frac}s"),
        (0, m) => format!("{m}m{frac}s"),
        (h, m) => format!("{h}h{m}m{frac}s"),
    }
}

/// `value / scale` with the fraction's trailing zeros dropped (`1500, 1000` -> `1.5`).
fn fraction(value: u64, scale: u64) -> String {
    let (whole, rest) = (value / scale, value % scale);
    if rest == 0 {
        return whole.to_string();
    }
    let digits = scale.ilog10() as usize;
    let frac = format!("{rest:0digits$}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_is_zaps_with_milliseconds_truncated() {
        let t = UNIX_EPOCH + Duration::new(1_796_566_141, 387_999_999);
        assert_eq!(Civil::utc(t).iso8601(), "2026-12-06T14:09:01.387Z");
        let plus = Civil::at(1_796_566_141, 5_000_000, 3600 + 1800);
        assert_eq!(plus.iso8601(), "2026-12-06T15:39:01.005+0130");
        let minus = Civil::at(0, 0, -5 * 3600);
        assert_eq!(minus.iso8601(), "1969-12-31T19:00:00.000-0500");
    }

    #[test]
    fn capnslog_and_backup_stamps() {
        let c = Civil::utc(UNIX_EPOCH + Duration::new(1_764_074_320, 350_351_000));
        assert_eq!(c.capnslog(), "2025-11-25 12:38:40.350351");
        assert_eq!(c.backup_stamp(), "2025-11-25T12-38-40.350");
        assert_eq!(
            parse_backup_stamp("2025-11-25T12-38-40.350", false),
            Some(1_764_074_320)
        );
        assert_eq!(parse_backup_stamp("2025-11-25T12:38:40.350", false), None);
        assert_eq!(parse_backup_stamp("2025-13-25T12-38-40.350", false), None);
    }

    #[test]
    fn civil_round_trips() {
        for days in [-800_000, -1, 0, 59, 60, 365, 11_016, 20_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
    }

    #[test]
    fn durations_print_as_go_does() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_nanos(999), "999ns"),
            (Duration::from_nanos(1_500), "1.5µs"),
            (Duration::from_nanos(5_447_941), "5.447941ms"),
            (Duration::from_millis(100), "100ms"),
            (Duration::from_millis(900), "900ms"),
            (Duration::from_secs(1), "1s"),
            (Duration::from_millis(1_500), "1.5s"),
            (Duration::from_secs(7), "7s"),
            (Duration::from_secs(60), "1m0s"),
            (Duration::from_secs(300), "5m0s"),
            (Duration::from_millis(61_250), "1m1.25s"),
            (Duration::from_secs(3600), "1h0m0s"),
            (Duration::from_secs(2 * 3600 + 5), "2h0m5s"),
        ];
        for (d, want) in cases {
            assert_eq!(GoDuration(d).to_string(), want, "{d:?}");
        }
    }
}
