//! Byte-for-byte Go behaviour the v2 API exposes: `encoding/json` string escaping, `time.Time`
//! and `time.Duration` text, and the `path` package's `Clean`/`Join`/`Split`, which decide
//! what a key is called.

/// Appends `s` as a JSON string the way Go's `encoding/json` writes it: `<`, `>`, `&`, U+2028
/// and U+2029 escaped, control characters other than `\n`, `\r`, `\t` as `\u00XX`.
pub fn push_json_str(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{0}'..='\u{1f}' => {
                let b = c as u8;
                out.push_str("\\u00");
                out.push(HEX[(b >> 4) as usize] as char);
                out.push(HEX[(b & 0xf) as usize] as char);
            }
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Unix nanoseconds as Go's `time.Time.MarshalJSON` writes a UTC time (RFC 3339 with
/// nanoseconds, trailing zeros dropped): `2026-11-25T11:30:31.595051743Z`.
pub fn rfc3339_nano(unix_nanos: i64) -> String {
    let secs = unix_nanos.div_euclid(1_000_000_000);
    let nanos = unix_nanos.rem_euclid(1_000_000_000) as u32;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, mo, d) = civil_from_days(days);
    let mut s = format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    );
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// Go's `time.Duration.String()`: `56.619931237s`, `1m2.5s`, `1h0m0s`, `1.5ms`, `0s`.
pub fn go_duration(nanos: i64) -> String {
    let neg = nanos < 0;
    let u = nanos.unsigned_abs();
    let frac = |v: u64, prec: u32| -> String {
        let s = format!("{v:0width$}", width = prec as usize);
        let t = s.trim_end_matches('0');
        if t.is_empty() {
            String::new()
        } else {
            format!(".{t}")
        }
    };
    let body = if u == 0 {
        "0s".to_string()
    } else if u < 1_000 {
        format!("{u}ns")
    } else if u < 1_000_000 {
        format!("{}{}µs", u / 1_000, frac(u % 1_000, 3))
    } else if u < 1_000_000_000 {
        format!("{}{}ms", u / 1_000_000, frac(u % 1_000_000, 6))
    } else {
        let secs = u / 1_000_000_000;
        let f = frac(u % 1_000_000_000, 9);
        let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
        if h > 0 {
            format!("{h}h{m}m{s}{f}s")
        } else if m > 0 {
            format!("{m}m{s}{f}s")
        } else {
            format!("{s}{f}s")
        }
    };
    if neg {
        format!("-{body}")
    } else {
        body
    }
}

/// Go's `path.Clean`.
pub fn clean(p: &str) -> String {
    if p.is_empty() {
        return ".".to_string();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            s => parts.push(s),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// Go's `path.Join`: the non-empty elements joined by `/`, cleaned; "" when all are empty.
pub fn join(elems: &[&str]) -> String {
    let parts: Vec<&str> = elems.iter().copied().filter(|e| !e.is_empty()).collect();
    if parts.is_empty() {
        return String::new();
    }
    clean(&parts.join("/"))
}

/// Go's `path.Split`: everything up to and including the last `/`, and the rest.
pub fn split(p: &str) -> (&str, &str) {
    match p.rfind('/') {
        Some(i) => (&p[..=i], &p[i + 1..]),
        None => ("", p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_escape_like_go() {
        let mut s = String::new();
        push_json_str(&mut s, "a<b>&\"\\\n\r\t\u{1}\u{8}\u{2028}é");
        assert_eq!(s, r#""a\u003cb\u003e\u0026\"\\\n\r\t\u0001\u0008\u2028é""#);
    }

    #[test]
    fn times_format_like_go() {
        assert_eq!(rfc3339_nano(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339_nano(1_795_606_231_595_051_743),
            "2026-11-25T11:30:31.595051743Z"
        );
        assert_eq!(
            rfc3339_nano(1_795_606_231_500_000_000),
            "2026-11-25T11:30:31.5Z"
        );
        assert_eq!(
            rfc3339_nano(951_782_400_000_000_000),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(rfc3339_nano(-1), "1969-12-31T23:59:59.999999999Z");
    }

    #[test]
    fn durations_format_like_go() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(56_619_931_237), "56.619931237s");
        assert_eq!(go_duration(62_500_000_000), "1m2.5s");
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(go_duration(1_500_000), "1.5ms");
        assert_eq!(go_duration(2_000), "2µs");
        assert_eq!(go_duration(7), "7ns");
        assert_eq!(go_duration(-1_000_000_000), "-1s");
    }

    #[test]
    fn paths_behave_like_go() {
        assert_eq!(clean("/1/a/../b//c/"), "/1/b/c");
        assert_eq!(clean("/.."), "/");
        assert_eq!(clean(""), ".");
        assert_eq!(clean("a/../.."), "..");
        assert_eq!(join(&["/1", "/foo/"]), "/1/foo");
        assert_eq!(join(&["/1", ""]), "/1");
        assert_eq!(join(&["", ""]), "");
        assert_eq!(split("/1/foo"), ("/1/", "foo"));
        assert_eq!(split("/"), ("/", ""));
    }
}
