//! Dates in Release files (`Sat, 10 Jun 2023 08:54:36 UTC`) and the trace file.
//!
//! Hand-written because the format is small and apt accepts `UTC`, which strict RFC 2822
//! parsers refuse. Times are Unix seconds (`i64`), UTC.

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]; // 1970-01-01 was a Thursday

/// Parses `[Day, ]DD Mon YYYY HH:MM[:SS] ZONE` where ZONE is `UTC`, `GMT`, `UT`, `Z` or `±HHMM`.
pub fn parse_rfc2822(s: &str) -> Option<i64> {
    let s = s.trim();
    let s = match s.split_once(',') {
        Some((_, rest)) => rest.trim_start(),
        None => s,
    };
    let mut parts = s.split_ascii_whitespace();
    let day: u32 = parts.next()?.parse().ok()?;
    let month_name = parts.next()?;
    let month = MONTHS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(month_name))? as u32
        + 1;
    let year: i64 = parts.next()?.parse().ok()?;
    if !(1970..=9999).contains(&year) {
        return None;
    }
    let time = parts.next()?;
    let zone = parts.next().unwrap_or("UTC");
    if parts.next().is_some() {
        return None;
    }
    let mut hms = time.split(':');
    // Unsigned parses: a "-5" hour is malformed, not an overflow waiting to happen.
    let h = i64::from(hms.next()?.parse::<u8>().ok()?);
    let m = i64::from(hms.next()?.parse::<u8>().ok()?);
    let sec = i64::from(hms.next().map_or(Some(0), |x| x.parse::<u8>().ok())?);
    if hms.next().is_some() || h > 23 || m > 59 || sec > 60 || day == 0 || day > 31 {
        return None;
    }
    let offset = match zone {
        "UTC" | "GMT" | "UT" | "Z" => 0,
        z if z.len() == 5 && (z.starts_with('+') || z.starts_with('-')) => {
            let n: i64 = z[1..].parse().ok()?;
            let secs = (n / 100) * 3600 + (n % 100) * 60;
            if z.starts_with('-') { -secs } else { secs }
        }
        _ => return None,
    };
    Some(days_from_civil(year, month, day) * 86400 + h * 3600 + m * 60 + sec - offset)
}

/// `Sun, 29 Nov 2026 15:55:04 +0000` (RFC 2822, as ftpsync's `Date:` line).
pub fn format_rfc2822(t: i64) -> String {
    let (y, mo, d, h, mi, s, wd) = parts(t);
    format!(
        "{}, {d:02} {} {y} {h:02}:{mi:02}:{s:02} +0000",
        DAYS[wd],
        MONTHS[mo as usize - 1]
    )
}

/// `Sun Nov 29 15:55:04 UTC 2026` (the `date -u` line that opens a trace file).
pub fn format_ctime(t: i64) -> String {
    let (y, mo, d, h, mi, s, wd) = parts(t);
    format!(
        "{} {} {d:2} {h:02}:{mi:02}:{s:02} UTC {y}",
        DAYS[wd],
        MONTHS[mo as usize - 1]
    )
}

/// `YYYYMMDD` of a time, for archive serials.
pub fn format_ymd(t: i64) -> String {
    let (y, mo, d, ..) = parts(t);
    format!("{y:04}{mo:02}{d:02}")
}

fn parts(t: i64) -> (i64, u32, u32, i64, i64, i64, usize) {
    let days = t.div_euclid(86400);
    let secs = t.rem_euclid(86400);
    let (y, mo, d) = civil_from_days(days);
    let wd = days.rem_euclid(7) as usize;
    (y, mo, d, secs / 3600, secs % 3600 / 60, secs % 60, wd)
}

// Howard Hinnant's civil-date algorithms (public domain).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_release_dates() {
        assert_eq!(parse_rfc2822("Thu, 01 Jan 1970 00:00:00 UTC"), Some(0));
        assert_eq!(
            parse_rfc2822("Sat, 10 Jun 2023 08:54:36 UTC"),
            Some(1686387276)
        );
        assert_eq!(
            parse_rfc2822("Sat, 10 Jun 2023 10:54:36 +0200"),
            Some(1686387276)
        );
        assert_eq!(parse_rfc2822("10 Jun 2023 08:54:36 GMT"), Some(1686387276));
        assert_eq!(parse_rfc2822("Sat, 10 Foo 2023 08:54:36 UTC"), None);
        assert_eq!(parse_rfc2822("Sat, 10 Jun 2023 25:54:36 UTC"), None);
        assert_eq!(parse_rfc2822("Sat, 10 Jun 2023 08:54:36 PST"), None);
        assert_eq!(parse_rfc2822(""), None);
        assert_eq!(parse_rfc2822("1 Jan 0 -2562047770746544:0 UTC"), None);
        assert_eq!(parse_rfc2822("1 Jan 99999999999999 00:00 UTC"), None);
    }

    #[test]
    fn formats_round_trip() {
        let t = 1686387276;
        assert_eq!(format_rfc2822(t), "Sat, 10 Jun 2023 08:54:36 +0000");
        assert_eq!(parse_rfc2822(&format_rfc2822(t)), Some(t));
        assert_eq!(format_ctime(t), "Sat Jun 10 08:54:36 UTC 2023");
        assert_eq!(format_ymd(t), "20230610");
        assert_eq!(format_ctime(0), "Thu Jan  1 00:00:00 UTC 1970");
    }
}
