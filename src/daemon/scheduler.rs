//! One task per mirror: plan the next run ([`schedule::next_run`]), sleep until then, run the
//! sync, repeat; a push ([`super::push`]) wakes the task at once, and a push during a run makes
//! it loop once more. One task per mirror is what makes two runs of one mirror at once impossible
//! inside the daemon; the sync's own run lock covers a `debsync sync` started beside it (the
//! daemon's run then ends as `skipped`, and the mirror waits for its next firing).
//!
//! A reload hands each task the new config (it re-plans at once: a changed schedule takes
//! effect for the coming firing, not after it); a mirror the new config lacks finishes its
//! running sync, if any, and its task ends. Stopping resolves the stop future every running
//! sync was given, so it ends as `interrupted`, and ends every task.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::push::{Pushes, Trigger};
use super::schedule::{self, Policy};
use super::stats::{RunKind, ScheduleFile, Stats};
use crate::config::Config;
use crate::sync::state::{RunResult, State};

/// A boxed future, as the runner takes and returns them.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Runs one sync of a mirror; `stop` resolves when the daemon stops, and the run should then
/// end as [`RunKind::Interrupted`]. The daemon's runner is [`SyncRunner`]; tests script one.
pub trait Runner: Send + Sync + 'static {
    fn run(&self, config: Arc<Config>, mirror: String, stop: BoxFuture<()>) -> BoxFuture<RunKind>;
}

/// The real thing: [`crate::sync::sync_mirror_until`].
pub struct SyncRunner;

impl Runner for SyncRunner {
    fn run(&self, config: Arc<Config>, mirror: String, stop: BoxFuture<()>) -> BoxFuture<RunKind> {
        Box::pin(async move {
            use crate::sync::{Outcome, SyncError, SyncOptions, sync_mirror_until};
            let Some(m) = config.mirrors.iter().find(|m| m.name == mirror) else {
                return RunKind::Skipped;
            };
            // The sync's future is not provably `Send` (a higher-ranked lifetime in a
            // closure), so it runs on a blocking-pool thread that drives it with the
            // runtime's handle; its own tasks (pool workers) still run on the runtime.
            let handle = tokio::runtime::Handle::current();
            let m = m.clone();
            let cfg = config.clone();
            let result = tokio::task::spawn_blocking(move || {
                handle.block_on(sync_mirror_until(&cfg, &m, &SyncOptions::default(), stop))
            })
            .await;
            let result = match result {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!("{mirror}: sync task failed: {e}");
                    return RunKind::Failed;
                }
            };
            match result {
                Ok(r) => {
                    if r.outcome == Outcome::Updated {
                        tracing::info!(
                            "{mirror}: updated {} in {:.1} s: {} files fetched, {} deleted, {} received",
                            r.suites_updated.join(" "),
                            r.elapsed_ms as f64 / 1000.0,
                            r.fetched_files,
                            r.deleted_files,
                            crate::status::size(r.bytes_received)
                        );
                    }
                    RunKind::Ok
                }
                Err(e @ SyncError::Locked { .. }) => {
                    tracing::warn!("{mirror}: skipped this firing: {e}");
                    RunKind::Skipped
                }
                Err(SyncError::Interrupted) => {
                    tracing::info!("{mirror}: run interrupted; the served tree is as it was");
                    RunKind::Interrupted
                }
                Err(e) => {
                    tracing::error!("{mirror}: sync failed: {e}");
                    RunKind::Failed
                }
            }
        })
    }
}

/// Wall-clock time for the schedule. `System` in the daemon; `Tokio` follows tokio's clock
/// from a fixed start, so tests with `tokio::time::pause()` drive schedules without waiting.
#[derive(Debug, Clone, Copy)]
pub enum Clock {
    System,
    Tokio {
        start: DateTime<Utc>,
        at: tokio::time::Instant,
    },
}

impl Clock {
    /// A clock reading `start` now and moving with tokio's (pausable) time.
    pub fn tokio(start: DateTime<Utc>) -> Clock {
        Clock::Tokio {
            start,
            at: tokio::time::Instant::now(),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
            Clock::Tokio { start, at } => {
                *start + chrono::Duration::from_std(at.elapsed()).unwrap_or_default()
            }
        }
    }

    /// Sleeps until the clock reads `at` or later. Long waits are cut in slices of a minute,
    /// so a wall clock that jumps (suspend, NTP step) delays a run by a minute at most.
    pub async fn sleep_until(&self, at: DateTime<Utc>) {
        loop {
            let Ok(left) = (at - self.now()).to_std() else {
                return;
            };
            if left.is_zero() {
                return;
            }
            tokio::time::sleep(left.min(Duration::from_secs(60))).await;
        }
    }
}

/// When the mirror's schedule counts from at start-up: its last attempt if that run
/// succeeded; `None` (run now) if it never ran, failed, was interrupted or killed.
pub fn initial_last(state: &State) -> Option<DateTime<Utc>> {
    match state.last_result {
        RunResult::Ok => state
            .last_attempt
            .and_then(|t| DateTime::from_timestamp(t, 0)),
        RunResult::Failed | RunResult::Running | RunResult::Interrupted | RunResult::Never => None,
    }
}

struct MirrorTask {
    config: watch::Sender<Arc<Config>>,
    handle: JoinHandle<()>,
}

/// The mirror tasks of the daemon.
pub struct Scheduler {
    tasks: BTreeMap<String, MirrorTask>,
    /// Tasks of removed mirrors, finishing their run.
    retired: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
    runner: Arc<dyn Runner>,
    clock: Clock,
    stats: Arc<Stats>,
    pushes: Arc<Pushes>,
}

impl Scheduler {
    /// Starts a task for every mirror of `config`; pushes for them arrive through `pushes`.
    pub fn start(
        config: Arc<Config>,
        runner: Arc<dyn Runner>,
        clock: Clock,
        stats: Arc<Stats>,
        pushes: Arc<Pushes>,
    ) -> Scheduler {
        let (stop, _) = watch::channel(false);
        let mut s = Scheduler {
            tasks: BTreeMap::new(),
            retired: Vec::new(),
            stop,
            runner,
            clock,
            stats,
            pushes,
        };
        s.reload(config);
        s
    }

    /// Names of the scheduled mirrors.
    pub fn mirrors(&self) -> Vec<String> {
        self.tasks.keys().cloned().collect()
    }

    /// Applies a new config: starts tasks for new mirrors, re-plans the others, retires the
    /// removed ones. Returns the names added and removed.
    pub fn reload(&mut self, config: Arc<Config>) -> (Vec<String>, Vec<String>) {
        let removed: Vec<String> = self
            .tasks
            .keys()
            .filter(|n| !config.mirrors.iter().any(|m| &m.name == *n))
            .cloned()
            .collect();
        for name in &removed {
            if let Some(task) = self.tasks.remove(name) {
                // Dropping the sender ends the task once its current run (if any) is done.
                drop(task.config);
                self.retired.push(task.handle);
            }
            self.stats.remove(name);
            self.pushes.remove(name);
        }
        self.retired.retain(|h| !h.is_finished());
        let mut added = Vec::new();
        for m in &config.mirrors {
            if let Some(task) = self.tasks.get(&m.name) {
                task.config.send_replace(config.clone());
                continue;
            }
            let (tx, rx) = watch::channel(config.clone());
            let tree = m.tree(&config.root);
            let last = initial_last(&State::load(&tree));
            let task = MirrorLoop {
                name: m.name.clone(),
                config: rx,
                stop: self.stop.subscribe(),
                runner: self.runner.clone(),
                clock: self.clock,
                stats: self.stats.clone(),
                last,
                failures: 0,
                trigger: self.pushes.trigger(&m.name),
            };
            let handle = tokio::spawn(task.run());
            self.tasks
                .insert(m.name.clone(), MirrorTask { config: tx, handle });
            added.push(m.name.clone());
        }
        (added, removed)
    }

    /// Stops scheduling, interrupts running syncs, and waits for every task to end.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        // The config senders stay alive until the tasks end: a closed channel would read as
        // "removed from the config".
        let (senders, handles): (Vec<_>, Vec<_>) = self
            .tasks
            .into_values()
            .map(|t| (t.config, t.handle))
            .unzip();
        for h in handles.into_iter().chain(self.retired) {
            let _ = h.await;
        }
        drop(senders);
    }
}

/// One mirror's loop (see the module doc).
struct MirrorLoop {
    name: String,
    config: watch::Receiver<Arc<Config>>,
    stop: watch::Receiver<bool>,
    runner: Arc<dyn Runner>,
    clock: Clock,
    stats: Arc<Stats>,
    /// When the last run (or skipped firing) started; `None`: run at once.
    last: Option<DateTime<Utc>>,
    failures: u32,
    trigger: Arc<Trigger>,
}

impl MirrorLoop {
    async fn run(mut self) {
        let mut jitter = crate::fetch::jitter();
        let mut tree = None;
        loop {
            if self.config.has_changed().is_err() {
                break; // removed from the config while it ran
            }
            let config = self.config.borrow_and_update().clone();
            let Some(mirror) = config.mirrors.iter().find(|m| m.name == self.name) else {
                break;
            };
            let here = mirror.tree(&config.root);
            tree = Some(here.clone());
            let cron = config.daemon.schedule(&self.name);
            let policy = Policy::from_config(&config.daemon);
            let now = self.clock.now();
            let next = schedule::next_run(&cron, &policy, now, self.last, self.failures, jitter);
            self.stats
                .set_next(&self.name, next.map(|n| n.at.timestamp()), self.failures);
            ScheduleFile {
                pid: std::process::id(),
                next_run: next.map(|n| n.at.timestamp()),
                schedule: cron.source().to_string(),
                failures_in_a_row: self.failures,
            }
            .write(&here);
            match next {
                Some(n) => tracing::debug!(
                    "{}: next run at {} ({})",
                    self.name,
                    n.at.to_rfc3339(),
                    n.reason.as_str()
                ),
                None => tracing::warn!(
                    "{}: schedule {:?} never fires again; not scheduled",
                    self.name,
                    cron.source()
                ),
            }
            let clock = self.clock;
            let sleep = async move {
                match next {
                    Some(n) => clock.sleep_until(n.at).await,
                    None => std::future::pending().await,
                }
            };
            let trigger = self.trigger.clone();
            let pushed = tokio::select! {
                biased;
                _ = self.stop.wait_for(|s| *s) => break,
                changed = self.config.changed() => {
                    if changed.is_err() {
                        break; // removed from the config
                    }
                    continue; // re-plan with the new config
                }
                () = trigger.pushed() => true,
                () = sleep => false,
            };
            let start = self.clock.now();
            self.last = Some(start);
            jitter = crate::fetch::jitter();
            self.stats.started(&self.name);
            ScheduleFile {
                pid: std::process::id(),
                next_run: None,
                schedule: cron.source().to_string(),
                failures_in_a_row: self.failures,
            }
            .write(&here);
            let mut stop = self.stop.clone();
            let stop: BoxFuture<()> = Box::pin(async move {
                let _ = stop.wait_for(|s| *s).await;
            });
            self.trigger.set_running(true);
            let kind = self
                .runner
                .run(config.clone(), self.name.clone(), stop)
                .await;
            self.trigger.set_running(false);
            self.stats.finished(&self.name, kind);
            if pushed && kind == RunKind::Skipped {
                // A `debsync sync` holds the lock: the push is not lost, it waits for it.
                self.repush_after(policy.backoff(1));
            }
            match kind {
                RunKind::Ok => self.failures = 0,
                RunKind::Failed => {
                    self.failures = self.failures.saturating_add(1);
                    tracing::warn!(
                        "{}: {} failed run(s) in a row; retrying in {} s at the latest",
                        self.name,
                        self.failures,
                        policy.backoff(self.failures).as_secs()
                    );
                }
                RunKind::Skipped | RunKind::Interrupted => {}
            }
        }
        if let Some(tree) = tree {
            ScheduleFile::remove(&tree);
        }
    }

    /// Rings the trigger again after `delay` (unless the daemon stops first).
    fn repush_after(&self, delay: Duration) {
        let (trigger, mut stop) = (self.trigger.clone(), self.stop.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => {}
                () = tokio::time::sleep(delay) => trigger.ring(),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    const START: &str = "2026-01-01T00:00:00Z";

    fn start() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(START)
            .unwrap()
            .with_timezone(&Utc)
    }

    /// A config with the given (name, schedule) mirrors; keyrings in a temp dir.
    fn config(dir: &std::path::Path, mirrors: &[(&str, &str)], daemon: &str) -> Arc<Config> {
        std::fs::write(dir.join("k.gpg"), b"x").unwrap();
        let mut text = format!("root = \"srv\"\n[daemon]\njitter_secs = 0\n{daemon}\n");
        for (name, schedule) in mirrors {
            text.push_str(&format!(
                "[[mirror]]\nname = \"{name}\"\nupstream = \"http://127.0.0.1:1/\"\n\
                 suites = [\"stable\"]\ncomponents = [\"main\"]\narchitectures = [\"amd64\"]\n\
                 keyring = \"k.gpg\"\nschedule = \"{schedule}\"\n"
            ));
        }
        Arc::new(Config::parse(&text, std::path::Path::new("mirror.toml"), dir).unwrap())
    }

    /// A scripted runner: records each run's mirror and start (seconds since START), takes
    /// `duration`, and ends with the next scripted result (then `Ok`).
    struct Script {
        clock: Clock,
        duration: Duration,
        results: Mutex<Vec<RunKind>>,
        runs: Mutex<Vec<(String, i64)>>,
        running: Arc<AtomicUsize>,
        max_running: AtomicUsize,
        /// Runs wait for the stop future instead of finishing.
        hang: bool,
    }

    fn script(duration: Duration, results: &[RunKind], hang: bool) -> Arc<Script> {
        Arc::new(Script {
            clock: Clock::tokio(start()),
            duration,
            results: Mutex::new(results.iter().rev().copied().collect()),
            runs: Mutex::default(),
            running: Arc::default(),
            max_running: AtomicUsize::new(0),
            hang,
        })
    }

    impl Script {
        fn starts(&self, mirror: &str) -> Vec<i64> {
            self.runs
                .lock()
                .unwrap()
                .iter()
                .filter(|(m, _)| m == mirror)
                .map(|(_, t)| *t)
                .collect()
        }
    }

    impl Runner for Script {
        fn run(&self, _: Arc<Config>, mirror: String, stop: BoxFuture<()>) -> BoxFuture<RunKind> {
            let t = (self.clock.now() - start()).num_seconds();
            self.runs.lock().unwrap().push((mirror, t));
            let n = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_running.fetch_max(n, Ordering::SeqCst);
            let kind = self.results.lock().unwrap().pop().unwrap_or(RunKind::Ok);
            let (duration, hang, running) = (self.duration, self.hang, self.running.clone());
            Box::pin(async move {
                let kind = if hang {
                    stop.await;
                    RunKind::Interrupted
                } else {
                    tokio::time::sleep(duration).await;
                    kind
                };
                running.fetch_sub(1, Ordering::SeqCst);
                kind
            })
        }
    }

    fn scheduler(config: Arc<Config>, runner: &Arc<Script>) -> (Scheduler, Arc<Stats>) {
        let stats = Arc::new(Stats::default());
        let s = Scheduler::start(
            config,
            runner.clone(),
            runner.clock,
            stats.clone(),
            Arc::default(),
        );
        (s, stats)
    }

    async fn advance(secs: u64) {
        tokio::time::sleep(Duration::from_secs(secs)).await;
    }

    /// Every 10 s, runs of 15 s: never two at once; a firing during a run makes one run
    /// right after it.
    #[tokio::test(start_paused = true)]
    async fn runs_of_one_mirror_never_overlap() {
        let dir = tempfile::tempdir().unwrap();
        let runner = script(Duration::from_secs(15), &[], false);
        let (s, _) = scheduler(config(dir.path(), &[("a", "*/10 * * * * *")], ""), &runner);
        advance(50).await;
        assert_eq!(runner.starts("a"), [0, 15, 30, 45]);
        assert_eq!(runner.max_running.load(Ordering::SeqCst), 1);
        s.shutdown().await;
    }

    /// Failed runs are retried after 60, 120, 240, 240 s (the cap), then the schedule
    /// resumes.
    #[tokio::test(start_paused = true)]
    async fn failures_back_off_then_the_schedule_resumes() {
        use RunKind::Failed;
        let dir = tempfile::tempdir().unwrap();
        let runner = script(Duration::ZERO, &[Failed, Failed, Failed, Failed], false);
        let cfg = config(
            dir.path(),
            &[("a", "0 0 0 * * *")],
            "retry_min_secs = 60\nretry_max_secs = 240",
        );
        let (s, stats) = scheduler(cfg, &runner);
        advance(1000).await;
        assert_eq!(runner.starts("a"), [0, 60, 180, 420, 660]);
        assert_eq!(stats.runs("a", Failed), 4);
        assert_eq!(stats.runs("a", RunKind::Ok), 1);
        advance(86_400).await;
        assert_eq!(runner.starts("a"), [0, 60, 180, 420, 660, 86_400]);
        s.shutdown().await;
    }

    /// A run that finds the lock held is not retried early: the next firing is.
    #[tokio::test(start_paused = true)]
    async fn a_skipped_run_waits_for_the_next_firing() {
        let dir = tempfile::tempdir().unwrap();
        let runner = script(Duration::ZERO, &[RunKind::Skipped], false);
        let (s, stats) = scheduler(config(dir.path(), &[("a", "0 * * * * *")], ""), &runner);
        advance(90).await;
        assert_eq!(runner.starts("a"), [0, 60]);
        assert_eq!(stats.runs("a", RunKind::Skipped), 1);
        s.shutdown().await;
    }

    /// A reload starts new mirrors at once, re-plans changed schedules and retires removed
    /// mirrors.
    #[tokio::test(start_paused = true)]
    async fn reload_adds_replans_and_removes_mirrors() {
        let dir = tempfile::tempdir().unwrap();
        let runner = script(Duration::ZERO, &[], false);
        let (mut s, stats) = scheduler(config(dir.path(), &[("a", "*/10 * * * * *")], ""), &runner);
        advance(5).await;
        let both = config(
            dir.path(),
            &[("a", "0 0 0 * * *"), ("b", "*/10 * * * * *")],
            "",
        );
        assert_eq!(s.reload(both), (vec!["b".to_string()], vec![]));
        advance(20).await;
        // a: its new daily schedule replaced the 10 s one before 00:00:10.
        assert_eq!(runner.starts("a"), [0]);
        assert_eq!(runner.starts("b"), [5, 10, 20]);
        let only_a = config(dir.path(), &[("a", "0 0 0 * * *")], "");
        assert_eq!(s.reload(only_a), (vec![], vec!["b".to_string()]));
        advance(30).await;
        assert_eq!(runner.starts("b"), [5, 10, 20]);
        assert_eq!(s.mirrors(), ["a"]);
        let mut metrics = String::new();
        stats.render(&mut metrics);
        assert!(!metrics.contains("mirror=\"b\""), "{metrics}");
        s.shutdown().await;
    }

    /// Shutdown interrupts a running sync through its stop future and ends every task.
    #[tokio::test(start_paused = true)]
    async fn shutdown_interrupts_the_running_sync() {
        let dir = tempfile::tempdir().unwrap();
        let runner = script(Duration::ZERO, &[], true);
        let cfg = config(dir.path(), &[("a", "* * * * * *"), ("b", "@daily")], "");
        let (s, stats) = scheduler(cfg, &runner);
        advance(1).await;
        assert_eq!(runner.running.load(Ordering::SeqCst), 2);
        tokio::time::timeout(Duration::from_secs(5), s.shutdown())
            .await
            .expect("shutdown ends the tasks");
        assert_eq!(stats.runs("a", RunKind::Interrupted), 1);
        assert_eq!(stats.runs("b", RunKind::Interrupted), 1);
        assert_eq!(runner.running.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn start_up_runs_at_once_unless_the_last_run_succeeded() {
        let state = |r: RunResult| State {
            last_result: r,
            last_attempt: Some(1_700_000_000),
            ..State::default()
        };
        assert_eq!(
            initial_last(&state(RunResult::Ok)).map(|t| t.timestamp()),
            Some(1_700_000_000)
        );
        for r in [
            RunResult::Failed,
            RunResult::Running,
            RunResult::Interrupted,
            RunResult::Never,
        ] {
            assert_eq!(initial_last(&state(r)), None, "{r:?}");
        }
    }
}
