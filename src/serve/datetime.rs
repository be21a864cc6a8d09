//! UTC calendar fields from Unix seconds, for listing dates and access-log timestamps
//! (H. Hinnant's `civil_from_days`; no time-zone database, everything is UTC).

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Utc {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

impl Utc {
    pub(super) fn from_unix(secs: i64) -> Utc {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        // All values below are bounded by the arithmetic above.
        Utc {
            year,
            month: month as u32,
            day: day as u32,
            hour: (rem / 3600) as u32,
            minute: (rem % 3600 / 60) as u32,
            second: (rem % 60) as u32,
        }
    }

    /// The current Unix second.
    pub(super) fn unix_now() -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    }

    /// `2024-06-01 12:34` (listings), appended to `out`.
    pub(super) fn push_short(&self, out: &mut String) {
        let _ = write!(
            out,
            "{:04}-{:02}-{:02} {:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute
        );
    }

    /// `10/Oct/2000:13:55:36 +0000` (combined log format).
    pub(super) fn clf(&self) -> String {
        let mon = MONTHS
            .get(self.month.saturating_sub(1) as usize)
            .unwrap_or(&"???");
        format!(
            "{:02}/{mon}/{:04}:{:02}:{:02}:{:02} +0000",
            self.day, self.year, self.hour, self.minute, self.second
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        for (secs, short, clf) in [
            (0, "1970-01-01 00:00", "01/Jan/1970:00:00:00 +0000"),
            (
                784_111_777,
                "1994-11-06 08:49",
                "06/Nov/1994:08:49:37 +0000",
            ),
            (
                951_782_400,
                "2000-02-29 00:00",
                "29/Feb/2000:00:00:00 +0000",
            ),
            (
                1_718_000_000,
                "2024-06-10 06:13",
                "10/Jun/2024:06:13:20 +0000",
            ),
            (-1, "1969-12-31 23:59", "31/Dec/1969:23:59:59 +0000"),
        ] {
            let u = Utc::from_unix(secs);
            let mut s = String::new();
            u.push_short(&mut s);
            assert_eq!(s, short, "{secs}");
            assert_eq!(u.clf(), clf, "{secs}");
        }
    }
}
