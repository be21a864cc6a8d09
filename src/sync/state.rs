//! `.debsync/state.json`: what the last run verified and how it ended.
//!
//! The no-op fast path and the "trust what an earlier run verified" rule both rest on this
//! file, so it is written atomically (temp + rename) and read leniently: a missing or
//! unreadable state only costs a full run, never a wrong one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{SyncError, io_err};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RunResult {
    Ok,
    Failed,
    Running,
    /// Stopped by a signal (Ctrl-C, SIGTERM) before it finished; the tree is as it was.
    Interrupted,
    #[default]
    Never,
}

impl RunResult {
    /// The name the state file uses.
    pub fn as_str(self) -> &'static str {
        match self {
            RunResult::Ok => "ok",
            RunResult::Failed => "failed",
            RunResult::Running => "running",
            RunResult::Interrupted => "interrupted",
            RunResult::Never => "never",
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    pub version: u32,
    pub last_result: RunResult,
    /// Unix seconds of the end of the last successful run.
    pub last_success: Option<i64>,
    pub last_attempt: Option<i64>,
    pub last_error: Option<String>,
    pub archive_serial: Option<String>,
    pub pool_files: u64,
    pub pool_bytes: u64,
    pub suites: BTreeMap<String, SuiteState>,
    /// In-place pool replacements waiting for a swap that a kill may have interrupted.
    pub pending: Option<Pending>,
    /// What the last finished run did (success or failure).
    pub last_run: Option<RunSummary>,
    /// Runs that ended `failed`, ever (for `debsync_mirror_sync_failures_total`).
    pub failed_runs: u64,
}

/// Figures of one finished run, for `debsync status` and `/metrics`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct RunSummary {
    pub started: i64,
    pub duration_ms: u64,
    pub unchanged: bool,
    pub fetched_files: u64,
    pub deleted_files: u64,
    pub bytes_received: u64,
}

/// Written before a swap that has pool replacements to finish after it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Pending {
    /// Suite → SHA256 of the InRelease (or Release) of the generation being swapped in.
    pub suites: BTreeMap<String, String>,
    /// (waiting file, final path), relative to the tree.
    pub renames: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SuiteState {
    pub inrelease_sha256: Option<String>,
    pub date: Option<i64>,
    /// by-hash paths (relative to `dists/<suite>`) per generation, newest first.
    pub by_hash: Vec<Vec<String>>,
    /// `dists/<alias>` links to this suite, from its Release (`stable` → `bookworm`).
    pub aliases: Vec<String>,
}

pub(crate) fn state_dir(tree: &Path) -> PathBuf {
    crate::tree::state_dir(tree)
}

pub(crate) fn state_path(tree: &Path) -> PathBuf {
    crate::tree::state_file(tree)
}

impl State {
    /// A run with something to do starts: `running` until it ends (a kill leaves it so, and
    /// `debsync status` shows that as interrupted).
    pub fn record_start(&mut self, tree: &Path, now: i64) -> Result<(), SyncError> {
        self.last_result = RunResult::Running;
        self.last_attempt = Some(now);
        self.save(tree).map_err(io_err(&state_path(tree)))
    }

    /// A no-op run: a healthy idle mirror is a fresh one. Written without an fsync: the next
    /// run writes it again, and an idle run must stay cheap.
    pub fn record_noop(&mut self, tree: &Path, now: i64, run: RunSummary) -> Result<(), SyncError> {
        self.last_success = Some(now);
        self.last_attempt = Some(now);
        self.last_run = Some(run);
        self.save_quick(tree).map_err(io_err(&state_path(tree)))
    }

    /// The run went live; `serial` is upstream's archive serial when it has one. Not synced:
    /// losing this record to a power cut leaves the one of a run that started (made durable
    /// by the swap's barrier), and the next run then takes the path of an interrupted one.
    pub fn record_success(
        &mut self,
        tree: &Path,
        serial: Option<String>,
        now: i64,
    ) -> Result<(), SyncError> {
        if let Some(serial) = serial {
            self.archive_serial = Some(serial);
        }
        self.last_result = RunResult::Ok;
        self.last_success = Some(now);
        self.last_error = None;
        self.save_quick(tree).map_err(io_err(&state_path(tree)))
    }

    /// The run failed or was interrupted (best effort: the error is what matters).
    pub fn record_failure(&mut self, tree: &Path, e: &SyncError) {
        self.last_result = match e {
            SyncError::Interrupted => RunResult::Interrupted,
            _ => RunResult::Failed,
        };
        if self.last_result == RunResult::Failed {
            self.failed_runs += 1;
        }
        self.last_error = Some(e.to_string());
        if let Err(save) = self.save(tree) {
            tracing::warn!("cannot record the failure in the state file: {save}");
        }
    }

    /// Without an upstream `master` trace, the serial follows the newest Release date seen:
    /// `YYYYMMDD01`, never going backwards.
    pub fn raise_serial_to(&mut self, release_date: i64) {
        let serial = format!("{}01", crate::archive::date::format_ymd(release_date));
        if self
            .archive_serial
            .as_deref()
            .is_none_or(|old| old < serial.as_str())
        {
            self.archive_serial = Some(serial);
        }
    }

    pub fn load(tree: &Path) -> State {
        let path = state_path(tree);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!("{}: unreadable, starting from scratch: {e}", path.display());
                State::default()
            }),
            Err(_) => State::default(),
        }
    }

    /// The state file as it is, for readers that only report it (`/metrics`, `/healthz`, the
    /// front page): `None` when absent or unreadable, and no log line (they ask often).
    pub fn read(tree: &Path) -> Option<State> {
        let bytes = std::fs::read(state_path(tree)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// [`State::save`] without the fsync: for the no-op run's timestamps, and for a finished
    /// run's record (see [`State::record_success`]).
    pub fn save_quick(&self, tree: &Path) -> std::io::Result<()> {
        let mut state = self.clone();
        state.version = 1;
        let bytes = serde_json::to_vec_pretty(&state).map_err(std::io::Error::other)?;
        super::write_replace(&state_path(tree), &bytes)
    }

    pub fn save(&self, tree: &Path) -> std::io::Result<()> {
        let path = state_path(tree);
        std::fs::create_dir_all(state_dir(tree))?;
        let mut state = self.clone();
        state.version = 1;
        let bytes = serde_json::to_vec_pretty(&state).map_err(std::io::Error::other)?;
        super::write_atomic(&path, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_lenient_load() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(State::load(dir.path()).last_result, RunResult::Never);
        let mut s = State {
            last_result: RunResult::Ok,
            last_success: Some(5),
            ..State::default()
        };
        s.suites.insert("stable".into(), SuiteState::default());
        s.save(dir.path()).unwrap();
        let back = State::load(dir.path());
        assert_eq!(back.last_result, RunResult::Ok);
        assert_eq!(back.last_success, Some(5));
        std::fs::write(state_path(dir.path()), "{garbage").unwrap();
        assert_eq!(State::load(dir.path()).last_result, RunResult::Never);
    }
}
