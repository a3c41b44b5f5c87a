//! Go's `time.Time` as `encoding/json` writes it (RFC 3339 with up to nine fractional
//! digits and a `Z` or `±hh:mm` zone), as found in the v2 store's `ExpireTime`.

/// Unix nanoseconds of a Go JSON time, or why it is not one. Times outside what an `i64`
/// of nanoseconds holds (years before 1678 or after 2261, such as Go's zero time
/// `0001-01-01T00:00:00Z`) saturate to `i64::MIN` / `i64::MAX`.
pub fn parse_unix_nanos(s: &str) -> Result<i64, String> {
    let bad = || format!("{s:?} is not an RFC 3339 time");
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return Err(bad());
    }
    if b[16] != b':' {
        return Err(bad());
    }
    let num = |from: usize, to: usize| -> Result<i64, String> {
        let part = s.get(from..to).ok_or_else(bad)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        part.parse::<i64>().map_err(|_| bad())
    };
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, min, sec) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return Err(bad());
    }
    let mut rest = &s[19..];
    let mut nanos = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            return Err(bad());
        }
        nanos = frac[..digits].parse::<i64>().map_err(|_| bad())? * 10i64.pow(9 - digits as u32);
        rest = &frac[digits..];
    }
    let offset = zone_offset_secs(rest).ok_or_else(bad)?;
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + min * 60 + sec - offset;
    Ok(secs
        .checked_mul(1_000_000_000)
        .and_then(|n| n.checked_add(nanos))
        .unwrap_or(if secs < 0 { i64::MIN } else { i64::MAX }))
}

/// `Z` → 0, `+hh:mm` / `-hh:mm` → seconds east of UTC.
fn zone_offset_secs(z: &str) -> Option<i64> {
    if z == "Z" {
        return Some(0);
    }
    let b = z.as_bytes();
    if b.len() != 6 || b[3] != b':' || !(b[0] == b'+' || b[0] == b'-') {
        return None;
    }
    let h: i64 = z.get(1..3)?.parse().ok()?;
    let m: i64 = z.get(4..6)?.parse().ok()?;
    if h > 23 || m > 59 {
        return None;
    }
    let secs = h * 3600 + m * 60;
    Some(if b[0] == b'-' { -secs } else { secs })
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::parse_unix_nanos;

    #[test]
    fn go_json_times() {
        assert_eq!(parse_unix_nanos("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(
            parse_unix_nanos("2026-12-06T21:30:00.5Z"),
            Ok(1_796_592_600_500_000_000)
        );
        assert_eq!(
            parse_unix_nanos("2026-12-06T22:30:00.000000001+01:00"),
            Ok(1_796_592_600_000_000_001)
        );
        assert_eq!(
            parse_unix_nanos("2000-02-29T00:00:00-00:30"),
            Ok(951_784_200_000_000_000)
        );
        // Go's zero time is far before what i64 nanoseconds hold.
        assert_eq!(parse_unix_nanos("0001-01-01T00:00:00Z"), Ok(i64::MIN));
    }

    #[test]
    fn refuses_what_is_not_a_time() {
        for bad in [
            "",
            "2026-12-06",
            "2026-12-06T21:30:00",
            "2026-13-06T21:30:00Z",
            "2026-12-06T21:30:00.Z",
            "2026-12-06T21:30:00.1234567890Z",
            "2026-12-06T21:30:00+0100",
            "2026-12-06T21:30:00+01:00x",
            "２026-12-06T21:30:00Z",
            "+026-12-06T21:30:00Z",
        ] {
            assert!(parse_unix_nanos(bad).is_err(), "{bad:?}");
        }
    }
}
