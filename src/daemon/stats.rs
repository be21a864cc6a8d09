//! What the daemon knows about its schedule, for `/metrics` (in memory, since the daemon
//! started) and for `debsync status` (`<tree>/.debsync/schedule.json`, while the daemon runs).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// How one scheduled run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    Ok,
    Failed,
    /// Another process held the mirror's run lock: nothing done, retried at the next firing.
    Skipped,
    Interrupted,
}

impl RunKind {
    const ALL: [RunKind; 4] = [
        RunKind::Ok,
        RunKind::Failed,
        RunKind::Skipped,
        RunKind::Interrupted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Ok => "ok",
            RunKind::Failed => "failed",
            RunKind::Skipped => "skipped",
            RunKind::Interrupted => "interrupted",
        }
    }
}

#[derive(Debug, Default, Clone)]
struct MirrorStats {
    next_run: Option<i64>,
    runs: [u64; 4],
    failures: u32,
    running: bool,
}

/// Per-mirror schedule figures, shared by the mirror tasks and the `/metrics` handler.
#[derive(Debug, Default)]
pub struct Stats {
    mirrors: Mutex<BTreeMap<String, MirrorStats>>,
}

impl Stats {
    fn with<R>(&self, mirror: &str, f: impl FnOnce(&mut MirrorStats) -> R) -> R {
        let mut map = self.mirrors.lock().unwrap_or_else(|e| e.into_inner());
        f(map.entry(mirror.to_string()).or_default())
    }

    pub fn set_next(&self, mirror: &str, next_run: Option<i64>, failures: u32) {
        self.with(mirror, |s| {
            s.next_run = next_run;
            s.failures = failures;
        });
    }

    pub fn started(&self, mirror: &str) {
        self.with(mirror, |s| {
            s.running = true;
            s.next_run = None;
        });
    }

    /// Counts a finished run; not for a mirror [`Stats::remove`]d meanwhile (a reload dropped
    /// it while it ran).
    pub fn finished(&self, mirror: &str, kind: RunKind) {
        let mut map = self.mirrors.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = map.get_mut(mirror) {
            s.running = false;
            s.runs[kind as usize] += 1;
        }
    }

    /// Forgets a mirror the config no longer has.
    pub fn remove(&self, mirror: &str) {
        self.mirrors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(mirror);
    }

    /// Runs of `mirror` that ended as `kind` (for tests and logs).
    pub fn runs(&self, mirror: &str, kind: RunKind) -> u64 {
        self.with(mirror, |s| s.runs[kind as usize])
    }

    /// Appends the daemon's samples in the Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let map = self
            .mirrors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let family = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        family(
            out,
            "debsync_mirror_next_sync_timestamp_seconds",
            "gauge",
            "Unix time of the mirror's next planned sync (absent while one runs).",
        );
        for (name, s) in &map {
            if let Some(t) = s.next_run {
                let _ = writeln!(
                    out,
                    "debsync_mirror_next_sync_timestamp_seconds{{mirror=\"{}\"}} {t}",
                    label(name)
                );
            }
        }
        family(
            out,
            "debsync_mirror_sync_runs_total",
            "counter",
            "Scheduled syncs since the daemon started, by result (skipped: lock held elsewhere).",
        );
        for (name, s) in &map {
            for kind in RunKind::ALL {
                let _ = writeln!(
                    out,
                    "debsync_mirror_sync_runs_total{{mirror=\"{}\",result=\"{}\"}} {}",
                    label(name),
                    kind.as_str(),
                    s.runs[kind as usize]
                );
            }
        }
        family(
            out,
            "debsync_mirror_sync_failures_in_a_row",
            "gauge",
            "Failed syncs since the last success (the retry backoff grows with it).",
        );
        for (name, s) in &map {
            let _ = writeln!(
                out,
                "debsync_mirror_sync_failures_in_a_row{{mirror=\"{}\"}} {}",
                label(name),
                s.failures
            );
        }
        family(
            out,
            "debsync_mirror_sync_running",
            "gauge",
            "1 while the daemon runs a sync of the mirror.",
        );
        for (name, s) in &map {
            let _ = writeln!(
                out,
                "debsync_mirror_sync_running{{mirror=\"{}\"}} {}",
                label(name),
                u8::from(s.running)
            );
        }
    }
}

fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `<tree>/.debsync/schedule.json`: the daemon's plan for one mirror.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ScheduleFile {
    /// The daemon's pid: a file whose process is gone is stale.
    pub pid: u32,
    /// Unix seconds of the next planned run; `None` while one runs.
    pub next_run: Option<i64>,
    pub schedule: String,
    pub failures_in_a_row: u32,
}

impl ScheduleFile {
    /// Writes it when the tree's private directory exists (a mirror never synced has none,
    /// and creating it would make an empty tree look servable).
    pub fn write(&self, tree: &Path) {
        let path = crate::tree::schedule_file(tree);
        if !crate::tree::state_dir(tree).is_dir() {
            return;
        }
        let result = serde_json::to_vec_pretty(self)
            .map_err(std::io::Error::other)
            .and_then(|bytes| crate::sync::write_replace(&path, &bytes));
        if let Err(e) = result {
            tracing::warn!("{}: cannot write: {e}", path.display());
        }
    }

    pub fn remove(tree: &Path) {
        let _ = std::fs::remove_file(crate::tree::schedule_file(tree));
    }

    /// The plan of a running daemon; `None` when there is no file or its daemon is gone.
    pub fn read(tree: &Path) -> Option<ScheduleFile> {
        let bytes = std::fs::read(crate::tree::schedule_file(tree)).ok()?;
        let file: ScheduleFile = serde_json::from_slice(&bytes).ok()?;
        let pid = rustix::process::Pid::from_raw(i32::try_from(file.pid).ok()?)?;
        rustix::process::test_kill_process(pid).ok()?;
        Some(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_result_per_mirror() {
        let s = Stats::default();
        s.set_next("debian", Some(1_700_000_000), 0);
        s.started("ubuntu");
        s.finished("ubuntu", RunKind::Failed);
        s.set_next("ubuntu", Some(5), 1);
        s.started("debian");
        let mut out = String::new();
        s.render(&mut out);
        for line in [
            "debsync_mirror_next_sync_timestamp_seconds{mirror=\"ubuntu\"} 5\n",
            "debsync_mirror_sync_runs_total{mirror=\"ubuntu\",result=\"failed\"} 1\n",
            "debsync_mirror_sync_runs_total{mirror=\"debian\",result=\"ok\"} 0\n",
            "debsync_mirror_sync_failures_in_a_row{mirror=\"ubuntu\"} 1\n",
            "debsync_mirror_sync_running{mirror=\"debian\"} 1\n",
            "# TYPE debsync_mirror_sync_runs_total counter\n",
        ] {
            assert!(out.contains(line), "missing {line:?} in\n{out}");
        }
        // A running mirror has no next run.
        assert!(
            !out.contains("timestamp_seconds{mirror=\"debian\"}"),
            "{out}"
        );
    }

    #[test]
    fn schedule_file_of_a_live_daemon_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = ScheduleFile {
            pid: std::process::id(),
            next_run: Some(42),
            schedule: "* * * * * *".into(),
            failures_in_a_row: 0,
        };
        file.write(dir.path());
        assert_eq!(
            ScheduleFile::read(dir.path()),
            None,
            "no .debsync: not written"
        );
        std::fs::create_dir_all(dir.path().join(".debsync")).unwrap();
        file.write(dir.path());
        assert_eq!(ScheduleFile::read(dir.path()), Some(file.clone()));
        file.pid = i32::MAX as u32; // no such process
        file.write(dir.path());
        assert_eq!(ScheduleFile::read(dir.path()), None);
        ScheduleFile::remove(dir.path());
        assert!(!crate::tree::schedule_file(dir.path()).exists());
    }
}
