//! The two-stage sync engine, in ftpsync's order. ftpsync's "stage 1" is step 4 (the pool),
//! its "stage 2" steps 5–6 (indices live, then deletions); building the next generation of
//! each suite (step 3) is [`generation`]'s job.
//!
//! 1. **lock**: one run per tree ([`lock`]).
//! 2. **release**: fetch each suite's InRelease. Byte-identical to the live one and the last
//!    run finished → done, in milliseconds: nothing is parsed, nothing verified again.
//! 3. **generation**: verify the signature against the pinned keyring, refuse expired or rolled-back
//!    Releases, and build each changed suite's complete next `dists/<suite>` in staging,
//!    every index hash-checked ([`generation`]). Nothing live has changed yet.
//! 4. **pool**: fetch every pool file the new indices list that the live generation does not
//!    already vouch for ([`pool`]). Pool first, because an index must never go live before the
//!    files it names: a client reading it would get 404s.
//! 5. **swap**: the run's changelog (packages added, upgraded, removed) is written beside
//!    the trace ([`changes`]), one `syncfs` barrier makes it durable with everything else,
//!    then each suite goes live with one atomic directory exchange ([`swap`]). A kill at any
//!    instant leaves either generation, whole.
//! 6. **cleanup**: delete what no live index references, within `max_delete` ([`cleanup`]).
//!    Delete last, because until the swap the old indices still name those files.
//! 7. **trace**: ftpsync's trace file and our state file ([`trace`], [`state`]), each
//!    replaced atomically, with no barrier of their own: a power cut that loses them leaves
//!    the state of a run that started and never finished, which the next run handles the
//!    safe way (it walks the pool for orphans and completes any pending replacement).
//! 8. **notify**: with the lock released (downstream mirrors wait while it is up), push the
//!    mirror's `notify` targets ([`crate::push`]).
//!
//! Upstream itself may be mid-update: a run with work to do looks for its update flag first,
//! and a file its Release lists that it does not serve makes the run fetch the Release again
//! and re-plan, or wait and retry ([`upstream_update`]).

pub mod changes;
pub(crate) mod cleanup;
pub(crate) mod generation;
pub(crate) mod layout;
pub(crate) mod listed;
pub(crate) mod live;
pub(crate) mod lock;
pub(crate) mod manifest;
pub(crate) mod plan;
pub(crate) mod pool;
pub(crate) mod progress;
pub(crate) mod state;
pub(crate) mod swap;
pub(crate) mod trace;
pub(crate) mod upstream_update;

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use reqwest::Url;

use crate::config::{Config, MaxDelete, MirrorConfig, SyncConfig};
use crate::fetch::{FetchError, Fetcher};
use crate::verify::{Keyring, VerifyError};
use generation::{ParseSource, StagedSuite, UpstreamRelease};
use pool::PoolSources;
use state::{RunResult, State};

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{path}: another sync is already running (pid {pid})")]
    Locked { path: PathBuf, pid: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error("{url}: upstream has neither InRelease nor Release + Release.gpg")]
    NoRelease { url: String },
    #[error(
        "{what}: has no Date, so a rollback to an older Release cannot be detected (set allow_missing_date = true to accept it)"
    )]
    NoDate { what: String },
    #[error("{what}: expired: Valid-Until {valid_until} is in the past")]
    Expired { what: String, valid_until: String },
    #[error(
        "{what}: Date {upstream} is older than the mirrored Release's {mirrored} (rollback refused)"
    )]
    Rollback {
        what: String,
        upstream: String,
        mirrored: String,
    },
    #[error("{what}: {source}")]
    Plan {
        what: String,
        source: plan::PlanError,
    },
    #[error("{what}: upstream serves none of the variants Release lists")]
    MissingIndex { what: String },
    #[error("{file}: {detail}")]
    Index { file: String, detail: String },
    #[error("{file}: listed by a verified index, but upstream does not serve it (404)")]
    ListedMissing { file: String },
    #[error("{url}: upstream shows an Archive-Update-in-Progress flag (it is mid-update)")]
    UpstreamFlag { url: String },
    #[error("upstream is mid-update: {detail}; the served tree is unchanged")]
    UpstreamUpdating { detail: String },
    #[error("{} pool file(s) failed; the new indices were not published. First: {}", .0.len(), first_errors(.0))]
    Pool(Vec<FetchError>),
    #[error(
        "refusing to delete {count} files (limit {limit}, max_delete = {max_delete}); run with --force-delete if upstream really dropped them"
    )]
    TooManyDeletes {
        count: u64,
        limit: u64,
        max_delete: MaxDelete,
    },
    #[error("{what} panicked; the new indices were not published: {detail}")]
    Panicked { what: &'static str, detail: String },
    #[error("{0}; the new indices were not published")]
    UpstreamDown(String),
    #[error("interrupted by a signal; the served tree is as it was before this run")]
    Interrupted,
    #[error("the pool workers stopped before the planner finished")]
    WorkersStopped,
    #[error("{path}: listed with different contents: {listings}")]
    Conflict { path: String, listings: String },
}

fn first_errors(errors: &[FetchError]) -> String {
    let shown: Vec<String> = errors.iter().take(3).map(ToString::to_string).collect();
    shown.join("; ")
}

pub(crate) fn io_err(path: &Path) -> impl Fn(std::io::Error) -> SyncError + '_ {
    move |source| SyncError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes a small file atomically (temp + rename) with an fsync: used for state and trace,
/// which are read by other processes at any moment.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = crate::fetch::temp_path(path);
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Replaces a small file atomically (temp + rename) without waiting for the disk: readers
/// see the old or the new bytes, and a crash may keep the old ones.
pub(crate) fn write_replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = crate::fetch::temp_path(path);
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Per-run options from the command line.
#[derive(Debug, Clone, Default)]
pub struct SyncOptions {
    pub force_delete: bool,
    /// Check every pool file on disk instead of trusting the live generation; repairs what
    /// `debsync verify` reports.
    pub full: bool,
}

/// Whether a run changed the live tree.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Outcome {
    /// Upstream unchanged: nothing fetched, nothing swapped.
    Unchanged,
    /// New generations went live.
    #[default]
    Updated,
}

/// What one mirror's run did.
#[derive(Debug, Clone, Default)]
pub struct SyncReport {
    pub mirror: String,
    pub outcome: Outcome,
    pub suites_updated: Vec<String>,
    pub fetched_files: u64,
    pub checked_local: u64,
    pub deleted_files: u64,
    pub bytes_received: u64,
    pub listed_files: u64,
    pub elapsed_ms: u128,
    /// Pool phase (ftpsync's stage 1) and swap + cleanup (stage 2).
    pub stage1_ms: u128,
    pub stage2_ms: u128,
}

/// Everything a run's stages share.
pub struct Ctx<'a> {
    pub tree: PathBuf,
    pub mirror: &'a MirrorConfig,
    pub cfg: &'a SyncConfig,
    pub fetcher: Fetcher,
    pub now: i64,
}

impl<'a> Ctx<'a> {
    /// A run's context for `mirror`, its tree under `config.root`, stamped now.
    pub(crate) fn new(config: &'a Config, mirror: &'a MirrorConfig) -> Result<Ctx<'a>, SyncError> {
        Ok(Ctx {
            tree: mirror.tree(&config.root),
            mirror,
            cfg: &config.sync,
            fetcher: Fetcher::new(&config.sync, mirror.upstream.scheme() == "https")?,
            now: now_unix(),
        })
    }

    /// Upstream URL of a path relative to the archive root; each segment is percent-encoded.
    pub fn url(&self, rel: &str) -> Url {
        join_url(&self.mirror.upstream, rel)
    }

    /// [`Ctx::url`] as errors and logs show it: credentials redacted.
    pub fn shown(&self, rel: &str) -> String {
        crate::fetch::shown(&self.url(rel))
    }
}

/// `base` + a relative archive path, each segment percent-encoded (a `?` or `#` in a file
/// name stays part of the path).
pub fn join_url(base: &Url, rel: &str) -> Url {
    let mut url = base.clone();
    if !rel.is_empty()
        && let Ok(mut segments) = url.path_segments_mut()
    {
        segments.pop_if_empty().extend(rel.split('/'));
    }
    url
}

pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

pub fn hostname() -> String {
    let uname = rustix::system::uname();
    let name = uname.nodename().to_string_lossy().into_owned();
    if name.is_empty() {
        "localhost".into()
    } else {
        name
    }
}

/// Syncs every configured mirror (or the one named). Each is attempted whatever happened to
/// the others: one dead upstream must not keep the rest of a config stale.
pub async fn sync_all(
    config: &Config,
    only: Option<&str>,
    opts: &SyncOptions,
) -> Result<Vec<(String, Result<SyncReport, SyncError>)>, crate::config::ConfigError> {
    let mut results = Vec::new();
    for mirror in config.select(only)? {
        results.push((mirror.name.clone(), sync_mirror(config, mirror, opts).await));
    }
    Ok(results)
}

/// One mirror's run: lock → release → (no-op?) → stage → pool → swap → cleanup → trace.
/// SIGINT and SIGTERM abandon it (see [`sync_mirror_until`]).
pub async fn sync_mirror(
    config: &Config,
    mirror: &MirrorConfig,
    opts: &SyncOptions,
) -> Result<SyncReport, SyncError> {
    sync_mirror_until(config, mirror, opts, interrupted()).await
}

/// [`sync_mirror`], abandoned cleanly (state `interrupted`, tree as it was) when `stop`
/// resolves instead of on a signal: the daemon owns the signals of its process.
pub async fn sync_mirror_until(
    config: &Config,
    mirror: &MirrorConfig,
    opts: &SyncOptions,
    stop: impl std::future::Future<Output = ()>,
) -> Result<SyncReport, SyncError> {
    let clock = Instant::now();
    let tree = mirror.tree(&config.root);
    std::fs::create_dir_all(&tree).map_err(io_err(&tree))?;
    let host = hostname();
    // 1. lock
    let lock = lock::RunLock::acquire(&tree, &host)?;
    let ctx = Ctx::new(config, mirror)?;
    let mut state = State::load(&tree);
    finish_pending(&tree, &mut state)?;

    // 2. release
    let (changed, unchanged) = match fetch_releases(&ctx).await {
        Ok(split) => split,
        Err(e) => {
            state.record_failure(&tree, &e);
            return Err(e);
        }
    };
    let mut report = SyncReport {
        mirror: mirror.name.clone(),
        ..SyncReport::default()
    };
    if changed.is_empty() && state.last_result == RunResult::Ok && !opts.full {
        report.outcome = Outcome::Unchanged;
        report.elapsed_ms = clock.elapsed().as_millis();
        state.record_noop(&tree, ctx.now, report.summary(ctx.now))?;
        let info = trace::TraceInfo::of(mirror, &host, &state, &report, ctx.now, now_unix());
        trace::write_own(&tree, &info).map_err(io_err(&crate::tree::trace_dir(&tree)))?;
        tracing::info!("{}: upstream unchanged, nothing to do", mirror.name);
        drop(lock);
        crate::push::notify_downstream(&config.sync, mirror).await;
        return Ok(report);
    }

    let mut previous_ok = state.last_result == RunResult::Ok;
    state.record_start(&tree, ctx.now)?;
    // 3.–6. A signal abandons the run at its next await: nothing of it is live (the swap has
    // no await inside), the lock goes with the process, and the state says what happened.
    tokio::pin!(stop);
    let mut waits = upstream_update::Waits::new(&config.sync);
    let (mut changed, mut unchanged) = (changed, unchanged);
    let result = loop {
        let attempt = async {
            upstream_update::check_flag(&ctx).await?;
            run(&ctx, &mut state, &changed, &unchanged, previous_ok, opts).await
        };
        let gap = match upstream_update::until(&mut stop, attempt).await {
            Err(e) if e.is_upstream_gap() => e,
            other => break other,
        };
        match upstream_update::recover(&ctx, &mut waits, &mut stop, gap, &changed, &unchanged).await
        {
            Ok(next) => {
                // After a re-plan, files fetched for the superseded Release may be listed by
                // no index: cleanup walks the pool instead of diffing the indices.
                previous_ok &= !next.replanned;
                (changed, unchanged) = (next.changed, next.unchanged);
            }
            Err(e) => break Err(e),
        }
    };
    // Staging holds either half-built generations (failure) or swapped-out old ones.
    let staging = generation::staging_root(&tree);
    if let Err(e) = std::fs::remove_dir_all(&staging)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!("{}: cannot clean staging: {e}", staging.display());
    }
    if let Ok(figures) = &result {
        report.add(figures);
    }
    report.bytes_received = ctx.fetcher.bytes_received();
    report.elapsed_ms = clock.elapsed().as_millis();
    state.last_run = Some(report.summary(ctx.now));
    if let Err(e) = result {
        state.record_failure(&tree, &e);
        return Err(e);
    }

    // 7. trace: upstream's traces after the run describe the archive state just mirrored.
    let traces = trace::UpstreamTraces::fetch(&ctx, &host).await;
    state.record_success(&tree, traces.archive_serial(), now_unix())?;
    let info = trace::TraceInfo::of(mirror, &host, &state, &report, ctx.now, now_unix());
    trace::write(&tree, &traces, &info).map_err(io_err(&crate::tree::trace_dir(&tree)))?;
    // 8. notify, once our flag is down: a downstream that sees it would wait for nothing.
    drop(lock);
    crate::push::notify_downstream(&config.sync, mirror).await;
    tracing::info!(
        "{}: done in {} ms: {} suite(s) updated, {} pool files fetched, {} deleted, {} bytes",
        mirror.name,
        report.elapsed_ms,
        report.suites_updated.len(),
        report.fetched_files,
        report.deleted_files,
        report.bytes_received
    );
    Ok(report)
}

/// Step 2: every suite's Release files from upstream, split into (changed, unchanged)
/// against the live tree. An unchanged one whose Valid-Until has passed is not news:
/// upstream stopped updating (a freeze attack looks exactly like this), which clients will
/// refuse.
pub(crate) async fn fetch_releases(
    ctx: &Ctx<'_>,
) -> Result<(Vec<UpstreamRelease>, Vec<UpstreamRelease>), SyncError> {
    let mut upstream = Vec::new();
    for suite in &ctx.mirror.suites {
        upstream.push(UpstreamRelease::fetch(ctx, suite).await?);
    }
    let (unchanged, changed): (Vec<_>, Vec<_>) = upstream
        .into_iter()
        .partition(|u| u.matches_live(&ctx.tree));
    for u in &unchanged {
        if let Some(until) = u.valid_until()
            && until < ctx.now
        {
            return Err(SyncError::Expired {
                what: ctx.suite_shown(&u.suite, "Release"),
                valid_until: crate::archive::date::format_rfc2822(until),
            });
        }
    }
    Ok((changed, unchanged))
}

/// Resolves on SIGINT or SIGTERM (never, if the handlers cannot be installed).
async fn interrupted() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
}

/// What steps 3–6 did, for the report.
#[derive(Debug, Default)]
struct RunFigures {
    suites_updated: Vec<String>,
    fetched_files: u64,
    checked_local: u64,
    listed_files: u64,
    deleted_files: u64,
    stage1_ms: u128,
    stage2_ms: u128,
}

impl SyncReport {
    fn add(&mut self, f: &RunFigures) {
        self.suites_updated = f.suites_updated.clone();
        self.fetched_files = f.fetched_files;
        self.checked_local = f.checked_local;
        self.listed_files = f.listed_files;
        self.deleted_files = f.deleted_files;
        self.stage1_ms = f.stage1_ms;
        self.stage2_ms = f.stage2_ms;
    }

    /// What the state file keeps of this run.
    fn summary(&self, started: i64) -> state::RunSummary {
        state::RunSummary {
            started,
            duration_ms: self.elapsed_ms as u64,
            unchanged: self.outcome == Outcome::Unchanged,
            fetched_files: self.fetched_files,
            deleted_files: self.deleted_files,
            bytes_received: self.bytes_received,
        }
    }
}

impl PoolSources {
    /// `--full` trusts nothing: every index counts as changed, so every pool file it lists is
    /// checked on disk (and fetched again when wrong), and cleanup walks the pool.
    fn of(
        ctx: &Ctx<'_>,
        staged: &[StagedSuite],
        unchanged: &[UpstreamRelease],
        keyring: &Keyring,
        full: bool,
    ) -> PoolSources {
        let mut out = PoolSources::default();
        for s in staged {
            if !full {
                out.old.extend(s.old_sources.iter().cloned());
            }
            for src in s
                .groups
                .iter()
                .filter_map(|g| g.source.as_ref().map(|src| (src, g.changed || full)))
            {
                match src {
                    (src, true) => out.new.push(src.clone()),
                    (src, false) => out.unchanged.push(src.clone()),
                }
            }
        }
        for up in unchanged {
            let live = live::sources(ctx, &up.suite, keyring);
            if full {
                out.new.extend(live);
            } else {
                out.unchanged.extend(live);
            }
        }
        out
    }
}

/// Steps 3–6 of a run that has something to do.
async fn run(
    ctx: &Ctx<'_>,
    state: &mut State,
    changed: &[UpstreamRelease],
    unchanged: &[UpstreamRelease],
    previous_ok: bool,
    opts: &SyncOptions,
) -> Result<RunFigures, SyncError> {
    let keyring = Keyring::load(&ctx.mirror.keyrings)?;
    let pool_existed = layout::pool_exists(&ctx.tree, ctx.mirror);
    // 3. generation. Leftovers of a killed run are garbage: the live tree never depends on them.
    let staging = generation::staging_root(&ctx.tree);
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(io_err(&staging))?;
    }
    let mut staged: Vec<StagedSuite> = Vec::new();
    for up in changed {
        staged.push(generation::build(ctx, up, &keyring, state.suites.get(&up.suite)).await?);
    }
    tracing::debug!("stage: {} suite(s) staged", staged.len());
    release_freed_memory();

    // 4. pool: every changed index's files, across suites.
    let sources = PoolSources::of(ctx, &staged, unchanged, &keyring, opts.full);
    let phase = Instant::now();
    let flusher = swap::Flusher::start(&ctx.tree);
    let mut pool =
        pool::sync_pool(ctx, sources.old, sources.new, sources.unchanged.clone()).await?;
    let stage1_ms = phase.elapsed().as_millis();
    tracing::debug!(
        "pool: {} listed, {} fetched in {stage1_ms} ms",
        pool.listed_files,
        pool.fetched_files
    );
    let deletions = plan_deletions(
        ctx,
        &mut pool,
        &sources.unchanged,
        (previous_ok || !pool_existed) && !opts.full,
        opts.force_delete,
    )?;

    // The changelog's diff reads the manifests the pool stage has just read or written.
    // Beside it, what the flusher has not yet made durable (pool files, staged indices) is
    // flushed ahead, so the barrier itself only waits for what is written after.
    let diff = changes::start(ctx, &staged);
    let tree = ctx.tree.clone();
    let ahead = tokio::task::spawn_blocking(move || {
        let phase = Instant::now();
        flusher.finish();
        let flushed = swap::barrier(&tree);
        tracing::debug!(
            "flush ahead (flusher stopped, syncfs): {:?}",
            phase.elapsed()
        );
        flushed
    });
    let changelog = changes::finish(ctx, diff).await;
    // A failure here fails the barrier proper again, which reports it.
    let _ = ahead.await;

    // 5. swap
    let stage2 = Instant::now();
    record_pending(ctx, state, &staged, &pool.deferred)?;
    let written = match changelog {
        Some(mut log) => Some(changes::write(&ctx.tree, &mut log)?),
        None => None,
    };
    let suites_updated = go_live(ctx, state, &staged).inspect_err(|_| {
        if let Some(path) = &written {
            changes::unwrite(path);
        }
    })?;
    for (waiting, dest) in &pool.deferred {
        pool::replace_after_swap(&ctx.tree, waiting, dest).map_err(io_err(dest))?;
    }
    state.pending = None;

    // 6. cleanup
    let phase = Instant::now();
    let deleted_files = cleanup::delete(&ctx.tree, &deletions);
    tracing::debug!("cleanup: {deleted_files} deleted in {:?}", phase.elapsed());
    let live: std::collections::HashSet<crate::archive::Sha256> = staged
        .iter()
        .flat_map(|s| s.groups.iter().filter_map(|g| g.source.as_ref()))
        .chain(sources.unchanged.iter())
        .map(|s| s.sha256)
        .collect();
    manifest::prune(&ctx.tree, &live);
    if written.is_some() {
        changes::prune(&ctx.tree, ctx.cfg.changes_kept);
    }
    state.pool_files = pool.listed_files;
    state.pool_bytes = pool.listed_bytes;
    Ok(RunFigures {
        suites_updated,
        fetched_files: pool.fetched_files,
        checked_local: pool.checked_local,
        listed_files: pool.listed_files,
        deleted_files,
        stage1_ms,
        stage2_ms: stage2.elapsed().as_millis(),
    })
}

/// Hands the heap memory freed so far back to the system: the staged indices streamed through
/// buffers on both worker threads, and what glibc kept of them would otherwise stay resident
/// under the pool stage's peak (about 0.2 MiB of a resync's 16).
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the kernel; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Decides deletions before anything goes live, so a refusal leaves the old tree serving.
/// After a clean run the planning pass knows exactly what became unreferenced (`diff`);
/// after a failed or killed one, the pool is walked for orphans.
fn plan_deletions(
    ctx: &Ctx<'_>,
    pool: &mut pool::PoolOutcome,
    unchanged: &[ParseSource],
    diff: bool,
    force: bool,
) -> Result<cleanup::Deletions, SyncError> {
    let mode = if diff {
        cleanup::Mode::Diff(std::mem::take(&mut pool.unreferenced))
    } else {
        cleanup::Mode::Walk {
            flat: ctx.mirror.flat,
        }
    };
    cleanup::plan(
        manifest::Manifests::of_run(&ctx.tree),
        mode,
        std::mem::take(&mut pool.new_keys),
        unchanged,
        ctx.cfg.max_delete,
        force,
    )
}

/// Replacements of files the live indices name must follow the swap; the state file says
/// which, so a kill between the two is finished by the next run (see [`finish_pending`]).
fn record_pending(
    ctx: &Ctx<'_>,
    state: &mut State,
    staged: &[StagedSuite],
    deferred: &[(PathBuf, PathBuf)],
) -> Result<(), SyncError> {
    if deferred.is_empty() {
        return Ok(());
    }
    let rel = |p: &Path| {
        p.strip_prefix(&ctx.tree)
            .map_or_else(|_| p.display().to_string(), |r| r.display().to_string())
    };
    state.pending = Some(state::Pending {
        suites: staged
            .iter()
            .map(|s| {
                (
                    s.suite.clone(),
                    release_fingerprint(&s.dir).unwrap_or_default(),
                )
            })
            .collect(),
        renames: deferred.iter().map(|(w, d)| (rel(w), rel(d))).collect(),
    });
    state
        .save(&ctx.tree)
        .map_err(io_err(&state::state_path(&ctx.tree)))
}

/// One durability barrier, then each staged suite goes live with one exchange; then the
/// aliases and (flat repositories) the root links follow. Returns the suites updated.
fn go_live(
    ctx: &Ctx<'_>,
    state: &mut State,
    staged: &[StagedSuite],
) -> Result<Vec<String>, SyncError> {
    let phase = Instant::now();
    swap::barrier(&ctx.tree)?;
    tracing::debug!("barrier: syncfs in {:?}", phase.elapsed());
    let mut updated = Vec::new();
    for s in staged {
        let live = crate::tree::suite_dir(&ctx.tree, &s.suite);
        swap::swap_in(&s.dir, &live)?;
        if s.dir.exists() {
            std::fs::remove_dir_all(&s.dir).map_err(io_err(&s.dir))?;
        }
        let mut suite_state = s.state.clone();
        suite_state.inrelease_sha256 = std::fs::read(live.join("InRelease"))
            .ok()
            .map(|b| crate::archive::Sha256::digest(&b).to_hex());
        state.suites.insert(s.suite.clone(), suite_state);
        if let Some(date) = s.verified.release().date {
            state.raise_serial_to(date);
        }
        updated.push(s.suite.clone());
    }
    swap::publish_aliases(&ctx.tree, &wanted_aliases(ctx.mirror, state))?;
    if ctx.mirror.flat {
        layout::publish_root_links(&ctx.tree)?;
    }
    Ok(updated)
}

/// `dists/<alias>` → suite for every configured suite's aliases. Two suites claiming one
/// alias (a release day, with one Release updated and the other not yet): the newer Release
/// wins. A configured suite's own name is never an alias.
fn wanted_aliases(
    mirror: &MirrorConfig,
    state: &State,
) -> std::collections::BTreeMap<String, String> {
    let mut wanted: std::collections::BTreeMap<String, (Option<i64>, String)> = Default::default();
    for suite in &mirror.suites {
        let Some(s) = state.suites.get(suite) else {
            continue;
        };
        for alias in s.aliases.iter().filter(|a| !mirror.suites.contains(a)) {
            let newer = wanted.get(alias).is_none_or(|(date, _)| s.date > *date);
            if newer {
                wanted.insert(alias.clone(), (s.date, suite.clone()));
            }
        }
    }
    wanted.into_iter().map(|(a, (_, s))| (a, s)).collect()
}

/// SHA256 of a generation's InRelease (or Release): which generation a directory holds.
fn release_fingerprint(dir: &Path) -> Option<String> {
    std::fs::read(dir.join("InRelease"))
        .or_else(|_| std::fs::read(dir.join("Release")))
        .ok()
        .map(|b| crate::archive::Sha256::digest(&b).to_hex())
}

/// Completes (or discards) in-place pool replacements of a run killed around its swap: if
/// the generation they belong to went live, the replacements must follow; if not, the live
/// indices still name the old bytes and the waiting files are dropped.
fn finish_pending(tree: &Path, state: &mut State) -> Result<(), SyncError> {
    let Some(pending) = state.pending.take() else {
        return Ok(());
    };
    let swapped = pending.suites.iter().any(|(suite, sha)| {
        release_fingerprint(&crate::tree::suite_dir(tree, suite)).as_deref() == Some(sha.as_str())
    });
    for (waiting, dest) in &pending.renames {
        let (waiting, dest) = (tree.join(waiting), tree.join(dest));
        let result = if swapped {
            pool::replace_after_swap(tree, &waiting, &dest)
        } else {
            std::fs::remove_file(&waiting)
        };
        if let Err(e) = result
            && e.kind() != std::io::ErrorKind::NotFound
        {
            return Err(io_err(&dest)(e));
        }
    }
    state.save(tree).map_err(io_err(&state::state_path(tree)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending_tree(live_inrelease: &str, pending_inrelease: &str) -> (tempfile::TempDir, State) {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path();
        std::fs::create_dir_all(t.join("dists/stable")).unwrap();
        std::fs::create_dir_all(t.join("pool/p")).unwrap();
        std::fs::write(t.join("dists/stable/InRelease"), live_inrelease).unwrap();
        std::fs::write(t.join("pool/p/a.deb"), "old").unwrap();
        std::fs::write(t.join("pool/p/.a.deb.debsync-next"), "new").unwrap();
        let state = State {
            pending: Some(state::Pending {
                suites: [(
                    "stable".to_string(),
                    crate::archive::Sha256::digest(pending_inrelease.as_bytes()).to_hex(),
                )]
                .into(),
                renames: vec![("pool/p/.a.deb.debsync-next".into(), "pool/p/a.deb".into())],
            }),
            ..State::default()
        };
        (dir, state)
    }

    #[test]
    fn replacements_follow_a_swap_that_happened() {
        let (dir, mut state) = pending_tree("gen2", "gen2");
        finish_pending(dir.path(), &mut state).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("pool/p/a.deb")).unwrap(),
            "new"
        );
        assert!(state.pending.is_none());
        assert!(State::load(dir.path()).pending.is_none());
    }

    #[test]
    fn replacements_of_a_swap_that_never_happened_are_dropped() {
        let (dir, mut state) = pending_tree("gen1", "gen2");
        finish_pending(dir.path(), &mut state).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("pool/p/a.deb")).unwrap(),
            "old"
        );
        assert!(!dir.path().join("pool/p/.a.deb.debsync-next").exists());
    }
}
