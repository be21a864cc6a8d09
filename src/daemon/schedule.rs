//! When a mirror runs next: a pure function of the cron schedule, the retry policy, the time
//! now, when its last run started, how many runs in a row failed and a jitter sample. No clock
//! is read here, so every rule is a row of the table test below.
//!
//! The rules, in order:
//! 1. **Retry.** After `failures` failed runs in a row, the next run is `retry_min · 2^(n-1)`
//!    (capped at `retry_max`) after now, unless the next firing (with its jitter) comes
//!    sooner.
//! 2. **Never ran** (or the last run did not finish): now, plus jitter.
//! 3. **Missed firing**: a firing passed since the last run started (the daemon was down, or
//!    a run outlasted the interval): now, plus jitter. Several missed firings make one run.
//! 4. **Firing**: the first firing after the last run started, plus jitter.
//!
//! Jitter is `jitter_secs · sample` with `sample` in `[0, 1)`, so mirrors on one schedule do
//! not all reach upstream in the same second.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::DaemonConfig;

/// The daemon-wide knobs of the schedule (`[daemon]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub jitter: Duration,
    pub retry_min: Duration,
    pub retry_max: Duration,
}

impl Policy {
    pub fn from_config(d: &DaemonConfig) -> Policy {
        Policy {
            jitter: Duration::from_secs(d.jitter_secs),
            retry_min: Duration::from_secs(d.retry_min_secs),
            retry_max: Duration::from_secs(d.retry_max_secs),
        }
    }

    /// Delay before retry number `failures` (1 = after the first failure).
    pub fn backoff(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(20);
        self.retry_min
            .saturating_mul(1u32 << doublings)
            .min(self.retry_max)
    }
}

/// Why a run is planned when it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The schedule's next firing.
    Firing,
    /// A firing passed since the last run started: run now.
    Missed,
    /// No finished run on record: run now.
    Never,
    /// Backoff after failed runs.
    Retry,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Firing => "scheduled",
            Reason::Missed => "missed firing",
            Reason::Never => "no finished run yet",
            Reason::Retry => "retry after failure",
        }
    }
}

/// The planned run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Next {
    pub at: DateTime<Utc>,
    pub reason: Reason,
}

/// The next run of a mirror (see the module doc); `None` when the schedule never fires again
/// and no retry is due.
///
/// `last`: when the last run (or skipped firing) started; `None` when the mirror has no
/// finished run. `jitter`: a sample in `[0, 1)` (clamped).
pub fn next_run(
    schedule: &cron::Schedule,
    policy: &Policy,
    now: DateTime<Utc>,
    last: Option<DateTime<Utc>>,
    failures: u32,
    jitter: f64,
) -> Option<Next> {
    let jitter = chrono::Duration::from_std(policy.jitter.mul_f64(jitter.clamp(0.0, 1.0)))
        .unwrap_or_default();
    let firing_after = |t: DateTime<Utc>| schedule.after(&t).next();
    if failures > 0 {
        let retry = now
            + chrono::Duration::from_std(policy.backoff(failures)).unwrap_or(chrono::Duration::MAX);
        return Some(match firing_after(now).map(|f| f + jitter) {
            Some(at) if at < retry => Next {
                at,
                reason: Reason::Firing,
            },
            _ => Next {
                at: retry,
                reason: Reason::Retry,
            },
        });
    }
    let Some(last) = last else {
        return Some(Next {
            at: now + jitter,
            reason: Reason::Never,
        });
    };
    let firing = firing_after(last.min(now))?;
    Some(if firing < now {
        Next {
            at: now + jitter,
            reason: Reason::Missed,
        }
    } else {
        Next {
            at: firing + jitter,
            reason: Reason::Firing,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    const POLICY: Policy = Policy {
        jitter: Duration::from_secs(100),
        retry_min: Duration::from_secs(60),
        retry_max: Duration::from_secs(3600),
    };

    /// One row: schedule, now, last start, failures, jitter sample => planned time, reason.
    macro_rules! plans {
        ($($cron:literal, $now:literal, $last:expr, $failures:literal, $jitter:literal
            => $at:literal, $reason:ident;)*) => {$({
            let schedule: cron::Schedule = $cron.parse().unwrap();
            let last: Option<&str> = $last;
            let got = next_run(&schedule, &POLICY, t($now), last.map(t), $failures, $jitter);
            assert_eq!(
                got,
                Some(Next { at: t($at), reason: Reason::$reason }),
                "{} now {} last {:?} failures {}", $cron, $now, last, $failures
            );
        })*};
    }

    #[test]
    fn plans_follow_the_rules() {
        plans! {
            // Firing: the first one after the last start, plus jitter.
            "0 0 */6 * * *", "2026-01-01T01:00:00Z", Some("2026-01-01T00:00:00Z"), 0, 0.0
                => "2026-01-01T06:00:00Z", Firing;
            "0 0 */6 * * *", "2026-01-01T01:00:00Z", Some("2026-01-01T00:00:00Z"), 0, 0.5
                => "2026-01-01T06:00:50Z", Firing;
            // A firing exactly now is due now.
            "0 0 */6 * * *", "2026-01-01T06:00:00Z", Some("2026-01-01T00:00:00Z"), 0, 0.0
                => "2026-01-01T06:00:00Z", Firing;
            // Missed: the daemon was down over 06:00 (two firings make one run).
            "0 0 */6 * * *", "2026-01-01T13:00:00Z", Some("2026-01-01T00:00:00Z"), 0, 0.25
                => "2026-01-01T13:00:25Z", Missed;
            // A run that outlasted an every-second schedule: the next one starts at once.
            "* * * * * *", "2026-01-01T00:00:03Z", Some("2026-01-01T00:00:00Z"), 0, 0.0
                => "2026-01-01T00:00:03Z", Missed;
            // Never ran: now, plus jitter.
            "0 0 */6 * * *", "2026-01-01T01:00:00Z", None, 0, 0.1
                => "2026-01-01T01:00:10Z", Never;
            // A last start in the future (clock stepped back) counts from now.
            "0 0 */6 * * *", "2026-01-01T01:00:00Z", Some("2026-01-02T00:00:00Z"), 0, 0.0
                => "2026-01-01T06:00:00Z", Firing;
            // Retry: 1 min, 2 min, 4 min … capped at 1 h.
            "0 0 */6 * * *", "2026-01-01T01:00:00Z", Some("2026-01-01T00:59:00Z"), 1, 0.9
                => "2026-01-01T01:01:00Z", Retry;
            "0 0 */6 * * *", "2026-01-01T01:00:00Z", None, 2, 0.0
                => "2026-01-01T01:02:00Z", Retry;
            "0 0 */6 * * *", "2026-01-01T01:00:00Z", None, 3, 0.0
                => "2026-01-01T01:04:00Z", Retry;
            "0 0 */6 * * *", "2026-01-01T01:00:00Z", None, 7, 0.0
                => "2026-01-01T02:00:00Z", Retry;
            "0 0 */6 * * *", "2026-01-01T01:00:00Z", None, 4000, 0.0
                => "2026-01-01T02:00:00Z", Retry;
            // … unless the next firing comes first.
            "0 0 */6 * * *", "2026-01-01T05:59:00Z", None, 3, 0.0
                => "2026-01-01T06:00:00Z", Firing;
            "0 0 */6 * * *", "2026-01-01T05:59:00Z", None, 3, 0.5
                => "2026-01-01T06:00:50Z", Firing;
            "0 0 */6 * * *", "2026-01-01T05:59:00Z", None, 1, 0.5
                => "2026-01-01T06:00:00Z", Retry;
            // Day-of-week names (the cron crate numbers days 1 = Sunday; names avoid that).
            // 2026-01-02 is a Friday.
            "0 30 2 * * Mon-Fri", "2026-01-02T03:00:00Z", Some("2026-01-02T02:30:00Z"), 0, 0.0
                => "2026-01-05T02:30:00Z", Firing;
            "@daily", "2026-01-01T12:00:00Z", Some("2026-01-01T00:00:00Z"), 0, 0.0
                => "2026-01-02T00:00:00Z", Firing;
        }
    }

    #[test]
    fn a_schedule_that_never_fires_again_plans_nothing_but_retries() {
        let past: cron::Schedule = "0 0 0 1 1 * 2001".parse().unwrap();
        let now = t("2026-01-01T00:00:00Z");
        assert_eq!(
            next_run(&past, &POLICY, now, Some(t("2025-01-01T00:00:00Z")), 0, 0.0),
            None
        );
        assert_eq!(
            next_run(&past, &POLICY, now, Some(now), 1, 0.0).map(|n| n.reason),
            Some(Reason::Retry)
        );
    }

    #[test]
    fn jitter_stays_in_bounds() {
        let s: cron::Schedule = "0 0 * * * *".parse().unwrap();
        let now = t("2026-01-01T00:30:00Z");
        let last = Some(t("2026-01-01T00:00:00Z"));
        for (sample, at) in [
            (-1.0, "2026-01-01T01:00:00Z"),
            (0.25, "2026-01-01T01:00:25Z"),
            (7.0, "2026-01-01T01:01:40Z"),
        ] {
            assert_eq!(
                next_run(&s, &POLICY, now, last, 0, sample).unwrap().at,
                t(at)
            );
        }
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let secs: Vec<u64> = (1..=8).map(|n| POLICY.backoff(n).as_secs()).collect();
        assert_eq!(secs, [60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(POLICY.backoff(u32::MAX).as_secs(), 3600);
    }
}
