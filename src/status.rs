//! `debsync status`: what each mirror's state file says, for a person or (with `--json`) a
//! monitoring script. Reads only the state file and the lock; never the network.
//!
//! A state that says `running` while nobody holds the run lock is a run that was killed: it
//! is shown as `interrupted`, which is what happened to it.
//!
//! `--changes` reads the per-run changelogs instead (`project/debsync/changes/`, see
//! [`crate::sync::changes`]): what each recent run added, upgraded and removed.

use serde::Serialize;

use crate::config::{Config, MirrorConfig};
use crate::sync::changes::Changelog;
use crate::sync::lock;
use crate::sync::state::{RunResult, RunSummary, State};

/// One mirror's status.
#[derive(Debug, Serialize)]
pub struct MirrorStatus {
    pub mirror: String,
    pub upstream: String,
    /// `ok`, `failed`, `running`, `interrupted` or `never`.
    pub result: &'static str,
    pub last_success: Option<i64>,
    pub last_attempt: Option<i64>,
    pub last_error: Option<String>,
    pub archive_serial: Option<String>,
    pub last_run: Option<RunSummary>,
    pub pool_files: u64,
    pub pool_bytes: u64,
    pub suites: Vec<SuiteStatus>,
    /// Unix seconds of the next run a running `debsync daemon` plans (`None` without a
    /// daemon, or while it runs the mirror).
    pub next_run: Option<i64>,
    /// The daemon's schedule of the mirror (`None` without a daemon).
    pub schedule: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct SuiteStatus {
    pub suite: String,
    /// The mirrored Release's `Date`.
    pub release_date: Option<i64>,
    pub aliases: Vec<String>,
}

/// Reads the status of every mirror of a config (or the one named).
pub fn collect(config: &Config, only: Option<&str>) -> Result<Vec<MirrorStatus>, crate::Error> {
    Ok(config
        .select(only)?
        .into_iter()
        .map(|m| of_mirror(config, m))
        .collect())
}

fn of_mirror(config: &Config, mirror: &MirrorConfig) -> MirrorStatus {
    let tree = mirror.tree(&config.root);
    let state = State::load(&tree);
    let plan = crate::daemon::stats::ScheduleFile::read(&tree);
    let result = match state.last_result {
        RunResult::Ok => "ok",
        RunResult::Failed => "failed",
        RunResult::Running if lock::is_running(&tree) => "running",
        RunResult::Running | RunResult::Interrupted => "interrupted",
        RunResult::Never => "never",
    };
    MirrorStatus {
        mirror: mirror.name.clone(),
        upstream: crate::fetch::shown(&mirror.upstream),
        result,
        last_success: state.last_success,
        last_attempt: state.last_attempt,
        last_error: state.last_error.clone(),
        archive_serial: state.archive_serial.clone(),
        last_run: state.last_run.clone(),
        pool_files: state.pool_files,
        pool_bytes: state.pool_bytes,
        suites: mirror
            .suites
            .iter()
            .map(|s| {
                let live = state.suites.get(s);
                SuiteStatus {
                    suite: s.clone(),
                    release_date: live.and_then(|l| l.date),
                    aliases: live.map(|l| l.aliases.clone()).unwrap_or_default(),
                }
            })
            .collect(),
        next_run: plan.as_ref().and_then(|p| p.next_run),
        schedule: plan.map(|p| p.schedule),
    }
}

/// The human form, one block per mirror.
pub fn render(statuses: &[MirrorStatus], now: i64) -> String {
    use crate::archive::date::format_rfc2822;
    let when = |t: Option<i64>| match t {
        Some(t) => format!("{} ({} ago)", format_rfc2822(t), age(now - t)),
        None => "never".to_string(),
    };
    let mut out = String::new();
    for s in statuses {
        out.push_str(&format!("{}: {} ({})\n", s.mirror, s.result, s.upstream));
        out.push_str(&format!("  last success:  {}\n", when(s.last_success)));
        if let Some(r) = &s.last_run {
            let what = if r.unchanged {
                "upstream unchanged".to_string()
            } else {
                format!(
                    "{} files fetched, {} deleted, {} received",
                    r.fetched_files,
                    r.deleted_files,
                    size(r.bytes_received)
                )
            };
            out.push_str(&format!(
                "  last run:      {}, took {:.1} s: {what}\n",
                when(Some(r.started)),
                r.duration_ms as f64 / 1000.0
            ));
        }
        if let Some(e) = &s.last_error
            && s.result != "ok"
        {
            out.push_str(&format!("  last error:    {e}\n"));
        }
        if let Some(schedule) = &s.schedule {
            let next = match s.next_run {
                Some(t) => format!("{} (in {})", format_rfc2822(t), age(t - now)),
                None => "running now".to_string(),
            };
            out.push_str(&format!(
                "  next run:      {next}, daemon schedule {schedule:?}\n"
            ));
        }
        out.push_str(&format!(
            "  archive serial: {}\n",
            s.archive_serial.as_deref().unwrap_or("unknown")
        ));
        out.push_str(&format!(
            "  pool:          {} files, {}\n",
            s.pool_files,
            size(s.pool_bytes)
        ));
        for suite in &s.suites {
            let aliases = if suite.aliases.is_empty() {
                String::new()
            } else {
                format!(" (also {})", suite.aliases.join(", "))
            };
            out.push_str(&format!(
                "  {}{aliases}: Release of {}\n",
                suite.suite,
                when(suite.release_date)
            ));
        }
    }
    out
}

/// `--since`: a day (`YYYY-MM-DD`, UTC) or an archive serial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Since {
    /// Unix seconds of the day's start.
    Date(i64),
    Serial(String),
}

impl std::str::FromStr for Since {
    type Err = String;

    fn from_str(s: &str) -> Result<Since, String> {
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        if s.len() == 10 && s.as_bytes()[4] == b'-' && s.as_bytes()[7] == b'-' {
            let month = s[5..7]
                .parse::<usize>()
                .ok()
                .and_then(|m| MONTHS.get(m.checked_sub(1)?));
            return month
                .and_then(|m| {
                    crate::archive::date::parse_rfc2822(&format!(
                        "{} {m} {} 00:00 UTC",
                        &s[8..],
                        &s[..4]
                    ))
                })
                .map(Since::Date)
                .ok_or_else(|| format!("{s:?} is not a date (YYYY-MM-DD)"));
        }
        if !s.is_empty()
            && s.split('-')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        {
            return Ok(Since::Serial(s.to_string()));
        }
        Err(format!(
            "{s:?} is neither a date (YYYY-MM-DD) nor an archive serial (2026120201)"
        ))
    }
}

impl Since {
    /// Whether a run is newer than this: on or after the day, or a serial above this one
    /// (compared as numbers: `2026120201` < `20261202163000`, `-2` suffixes after their base).
    fn admits(&self, log: &Changelog) -> bool {
        match self {
            Since::Date(t) => log.date >= *t,
            Since::Serial(s) => serial_order(&log.serial) > serial_order(s),
        }
    }
}

fn serial_order(serial: &str) -> (u128, u32) {
    let (base, n) = serial.split_once('-').unwrap_or((serial, "1"));
    (base.parse().unwrap_or(0), n.parse().unwrap_or(1))
}

/// The changelogs of every mirror of a config (or the one named), oldest first.
pub fn changes(
    config: &Config,
    only: Option<&str>,
    since: Option<&Since>,
) -> Result<Vec<Changelog>, crate::Error> {
    let mut out = Vec::new();
    for m in config.select(only)? {
        out.extend(
            crate::sync::changes::read_all(&m.tree(&config.root))
                .into_iter()
                .filter(|log| since.is_none_or(|s| s.admits(log))),
        );
    }
    Ok(out)
}

/// The human form of changelogs: a block per run, a line per package.
pub fn render_changes(logs: &[Changelog]) -> String {
    use crate::archive::date::format_rfc2822;
    let mut out = String::new();
    if logs.is_empty() {
        out.push_str("no recorded changes\n");
    }
    for log in logs {
        out.push_str(&format!(
            "{} {} ({}):\n",
            log.mirror,
            log.serial,
            format_rfc2822(log.date)
        ));
        for s in &log.suites {
            if s.initial {
                out.push_str(&format!("  {}: initial sync\n", s.suite));
                continue;
            }
            out.push_str(&format!(
                "  {}: {} added, {} upgraded, {} removed\n",
                s.suite,
                s.added.len(),
                s.upgraded.len(),
                s.removed.len()
            ));
            for p in &s.added {
                out.push_str(&format!("    + {} {} [{}]\n", p.package, p.version, p.arch));
            }
            for u in &s.upgraded {
                out.push_str(&format!(
                    "    ~ {} {} -> {} [{}]\n",
                    u.package, u.from, u.to, u.arch
                ));
            }
            for p in &s.removed {
                out.push_str(&format!("    - {} {} [{}]\n", p.package, p.version, p.arch));
            }
        }
    }
    out
}

/// `3d 4h`, `5h 2m`, `12m`, `40s`.
pub fn age(secs: i64) -> String {
    let s = secs.max(0);
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

/// Bytes in binary units: `12.6 GiB`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_and_sizes_read_naturally() {
        assert_eq!(age(40), "40s");
        assert_eq!(age(12 * 60 + 5), "12m");
        assert_eq!(age(5 * 3600 + 120), "5h 2m");
        assert_eq!(age(3 * 86_400 + 4 * 3600), "3d 4h");
        assert_eq!(size(512), "512 B");
        assert_eq!(size(13_529_147_392), "12.6 GiB");
    }

    #[test]
    fn since_is_a_day_or_a_serial() {
        assert_eq!("1970-01-02".parse(), Ok(Since::Date(86_400)));
        assert_eq!("2026120201".parse(), Ok(Since::Serial("2026120201".into())));
        assert!("2026-13-01".parse::<Since>().is_err());
        assert!("yesterday".parse::<Since>().is_err());
        let log = |serial: &str| Changelog {
            serial: serial.into(),
            date: 86_400,
            ..Changelog::default()
        };
        let since = Since::Serial("2026120201".into());
        assert!(!since.admits(&log("2026120201")));
        assert!(since.admits(&log("2026120201-2")));
        assert!(since.admits(&log("2026120202")));
        assert!(Since::Date(86_400).admits(&log("1")));
        assert!(!Since::Date(86_401).admits(&log("1")));
    }
}
