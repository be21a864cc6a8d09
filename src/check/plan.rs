//! `debsync check`: can the next sync run, and what would it do? Built from the sync's own
//! steps, so it checks exactly what a sync would; it writes nothing under the mirror's root.
//!
//! 1. **keyrings**: every keyring file loads ([`Keyring::load`] names the one that fails).
//! 2. **release**: each suite's InRelease (or Release + Release.gpg) is fetched and checked
//!    as sync checks it ([`fetch_releases`], [`check_release`]): upstream reachable, signed
//!    by the keyring, not expired, dated, not older than the mirrored one.
//! 3. **indices**: per changed suite, the files Release lists that the live generation cannot
//!    hard-link (an upper bound: Release also lists variants upstream may not serve, such
//!    as Debian's uncompressed Packages). The Packages and Sources that changed are fetched
//!    (the smallest variant, hash-checked) into a directory under the system temp dir that
//!    is removed at the end.
//! 4. **pool**: the sync's planner ([`plan_pool`]) against the live generation, reading the
//!    manifests earlier runs left (never writing one): files and bytes to download (a listed
//!    file already on disk with the right size counts as "to re-hash", as sync hashes it),
//!    and what cleanup would delete, `max_delete` included. An up-to-date mirror (upstream
//!    unchanged, last run ok) plans nothing: a sync would do nothing.
//! 5. **disk**: free space on the root's file system against the bytes to download.
//!
//! No run lock: writing nothing, check runs beside a sync (its figures are those of the
//! moment) and never makes a scheduled sync skip a firing.

use std::path::{Path, PathBuf};

use serde::Serialize;
use tokio::sync::mpsc;

use crate::archive::FileRef;
use crate::archive::compression::Compression;
use crate::config::{Config, MirrorConfig};
use crate::fetch::{Expected, FetchError};
use crate::sync::cleanup::{self, Mode};
use crate::sync::generation::{
    CheckedRelease, ParseSource, check_release, known_absent, parse_source, select,
};
use crate::sync::manifest::Manifests;
use crate::sync::plan::{IndexGroup, unchanged_in};
use crate::sync::pool::{PoolSources, plan_pool};
use crate::sync::state::{RunResult, State};
use crate::sync::{Ctx, SyncError, fetch_releases, layout, live, lock};
use crate::verify::Keyring;

/// What `debsync check` found for one mirror.
#[derive(Debug, Default, Serialize)]
pub struct MirrorCheck {
    pub mirror: String,
    pub upstream: String,
    /// No problem: a sync would run now and fit on the disk.
    pub ok: bool,
    /// What would make a sync fail (each names the file or URL).
    pub problems: Vec<String>,
    pub keyrings: Vec<PathBuf>,
    pub keys: usize,
    /// A sync holds the run lock right now.
    pub sync_running: bool,
    pub suites: Vec<SuiteCheck>,
    /// Upstream unchanged since a successful run: a sync would do nothing.
    pub up_to_date: bool,
    /// Index files to download, and their bytes (an upper bound).
    pub index_files: u64,
    pub index_bytes: u64,
    /// Every pool file the changed indices list.
    pub pool_listed_files: u64,
    pub pool_listed_bytes: u64,
    pub pool_download_files: u64,
    pub pool_download_bytes: u64,
    /// Listed files already on disk with the right size: hashed, downloaded only if wrong.
    pub pool_rehash_files: u64,
    pub delete_files: u64,
    /// Bytes to download: indices plus pool.
    pub needed_bytes: u64,
    /// Free bytes (for an unprivileged user) on the root's file system, and where measured.
    pub free_bytes: Option<u64>,
    pub free_at: Option<PathBuf>,
}

/// One suite's Release as upstream serves it now.
#[derive(Debug, Default, Serialize)]
pub struct SuiteCheck {
    pub suite: String,
    /// Differs from the mirrored one.
    pub changed: bool,
    pub date: Option<i64>,
    pub valid_until: Option<i64>,
    /// Fingerprints of the keys whose signatures verified.
    pub signed_by: Vec<String>,
}

/// Checks every mirror of a config (or the one named); each is checked whatever the others
/// gave.
pub async fn check_all(
    config: &Config,
    only: Option<&str>,
) -> Result<Vec<MirrorCheck>, crate::config::ConfigError> {
    let mut out = Vec::new();
    for mirror in config.select(only)? {
        out.push(check_mirror(config, mirror).await);
    }
    Ok(out)
}

pub async fn check_mirror(config: &Config, mirror: &MirrorConfig) -> MirrorCheck {
    let mut report = MirrorCheck {
        mirror: mirror.name.clone(),
        upstream: crate::fetch::shown(&mirror.upstream),
        keyrings: mirror.keyrings.clone(),
        ..MirrorCheck::default()
    };
    if let Err(e) = run(config, mirror, &mut report).await {
        report.problems.push(e.to_string());
    }
    report.ok = report.problems.is_empty();
    report
}

async fn run(
    config: &Config,
    mirror: &MirrorConfig,
    report: &mut MirrorCheck,
) -> Result<(), SyncError> {
    let tree = mirror.tree(&config.root);
    // 1. keyrings
    let keyring = Keyring::load(&mirror.keyrings)?;
    report.keys = keyring.len();
    report.sync_running = lock::is_running(&tree);
    let ctx = Ctx::new(config, mirror)?;

    // 2. release
    let (changed, unchanged) = fetch_releases(&ctx).await?;
    let mut checked = Vec::new();
    for (up, is_changed) in changed
        .iter()
        .map(|u| (u, true))
        .chain(unchanged.iter().map(|u| (u, false)))
    {
        let c = check_release(&ctx, up, &keyring)?;
        let release = c.verified.release();
        report.suites.push(SuiteCheck {
            suite: up.suite.clone(),
            changed: is_changed,
            date: release.date,
            valid_until: release.valid_until,
            signed_by: c.verified.signers().to_vec(),
        });
        if is_changed {
            checked.push((up.suite.clone(), c));
        }
    }
    let state = State::load(&tree);
    report.up_to_date = changed.is_empty() && state.last_result == RunResult::Ok;

    if !report.up_to_date {
        // 3. indices
        let temp = TempDir::create(&mirror.name)
            .map_err(|(path, source)| SyncError::Io { path, source })?;
        let mut sources = PoolSources::default();
        for (suite, c) in &checked {
            plan_suite(&ctx, suite, c, &temp.0, &mut sources, report).await?;
        }
        for up in &unchanged {
            sources
                .unchanged
                .extend(live::sources(&ctx, &up.suite, &keyring));
        }
        // 4. pool
        let previous_ok = state.last_result == RunResult::Ok;
        let diff = previous_ok || !layout::pool_exists(&tree, mirror);
        plan_pool_and_cleanup(&ctx, sources, diff, report).await?;
    }

    // 5. disk
    report.needed_bytes = report.index_bytes + report.pool_download_bytes;
    let at = existing_ancestor(&tree);
    match rustix::fs::statvfs(&at) {
        Ok(fs) => {
            let free = fs.f_bavail.saturating_mul(fs.f_frsize);
            report.free_bytes = Some(free);
            if free < report.needed_bytes {
                report.problems.push(format!(
                    "{}: not enough disk space: {} to download, {} free",
                    at.display(),
                    crate::status::size(report.needed_bytes),
                    crate::status::size(free)
                ));
            }
        }
        Err(e) => report
            .problems
            .push(format!("{}: cannot read free space: {e}", at.display())),
    }
    report.free_at = Some(at);
    Ok(())
}

/// Step 3 for one changed suite: count the index files to fetch, fetch the changed
/// Packages/Sources, and sort every pool-listing index into the planner's roles.
async fn plan_suite(
    ctx: &Ctx<'_>,
    suite: &str,
    checked: &CheckedRelease,
    temp: &Path,
    sources: &mut PoolSources,
    report: &mut MirrorCheck,
) -> Result<(), SyncError> {
    let release = checked.verified.release();
    let old = checked.old.as_ref();
    let live_dir = crate::tree::suite_dir(&ctx.tree, suite);
    let selected = select(ctx, suite, release, old)?;
    let absent = known_absent(&selected.old_groups, &live_dir);
    for f in selected.groups.iter().flat_map(|g| g.variants.iter()) {
        let linked = unchanged_in(old, f) && live_dir.join(f.path.as_path()).is_file();
        if !linked && !absent.contains(f.path.as_str()) {
            report.index_files += 1;
            report.index_bytes += f.size;
        }
    }
    let reserved: std::sync::Arc<[String]> =
        layout::reserved_pool_roots(ctx.mirror, release).into();
    let live_source = |g: &IndexGroup| {
        parse_source(g, suite, &live_dir, &reserved, |f| {
            live_dir.join(f.path.as_path()).is_file()
        })
    };
    for g in selected.groups.iter().filter(|g| g.kind.lists_pool()) {
        let old_source = selected
            .old_groups
            .iter()
            .find(|o| o.base == g.base)
            .and_then(live_source);
        // Unchanged: the variant the live generation is read from is listed again, same hash.
        if let Some(o) = &old_source
            && g.variants
                .iter()
                .any(|v| v.sha256 == o.sha256 && live_dir.join(v.path.as_path()) == o.path)
        {
            sources.unchanged.push(o.clone());
            continue;
        }
        match fetch_index(ctx, suite, g, temp, &reserved).await? {
            Some(new) => sources.new.push(new),
            None if g.required => {
                return Err(SyncError::MissingIndex {
                    what: ctx.suite_shown(suite, &g.base),
                });
            }
            None => {}
        }
        sources.old.extend(old_source);
    }
    for o in &selected.old_groups {
        if !selected.groups.iter().any(|g| g.base == o.base) {
            sources.old.extend(live_source(o));
        }
    }
    Ok(())
}

/// The smallest variant of an index upstream serves, hash-checked, in the temp dir.
async fn fetch_index(
    ctx: &Ctx<'_>,
    suite: &str,
    g: &IndexGroup,
    temp: &Path,
    reserved: &std::sync::Arc<[String]>,
) -> Result<Option<ParseSource>, SyncError> {
    let mut variants: Vec<&FileRef> = g.variants.iter().collect();
    variants.sort_by_key(|f| f.size);
    for f in variants {
        let Some(compression) = Compression::from_name(f.path.as_str()) else {
            continue;
        };
        let dest = temp.join(suite).join(f.path.as_path());
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(crate::sync::io_err(parent))?;
        }
        let url = ctx.suite_url(suite, f.path.as_str());
        match ctx
            .fetcher
            .download(&url, &dest, Expected::new(f.size, f.sha256))
            .await
        {
            Ok(()) => {
                return Ok(Some(ParseSource {
                    path: dest,
                    display: format!("dists/{suite}/{}", f.path),
                    compression,
                    kind: g.kind,
                    sha256: f.sha256,
                    reserved: reserved.clone(),
                }));
            }
            Err(FetchError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(None)
}

/// Step 4: the sync's planner, its queue read here instead of by download workers, then the
/// cleanup plan it leads to.
async fn plan_pool_and_cleanup(
    ctx: &Ctx<'_>,
    sources: PoolSources,
    diff: bool,
    report: &mut MirrorCheck,
) -> Result<(), SyncError> {
    let (tx, mut rx) = mpsc::channel::<Vec<FileRef>>(crate::sync::pool::QUEUED_BATCHES);
    let tree = ctx.tree.clone();
    let planner = tokio::task::spawn_blocking(move || {
        let queued = std::sync::atomic::AtomicU64::new(0);
        plan_pool(Manifests::read_only(&tree), &sources, |_| {}, tx, &queued).map(|o| (o, sources))
    });
    while let Some(batch) = rx.recv().await {
        for f in batch {
            match std::fs::symlink_metadata(ctx.tree.join(f.path.as_path())) {
                Ok(m) if m.is_file() && m.len() == f.size => report.pool_rehash_files += 1,
                _ => {
                    report.pool_download_files += 1;
                    report.pool_download_bytes += f.size;
                }
            }
        }
    }
    let (outcome, sources) = planner.await.map_err(|e| SyncError::Panicked {
        what: "the pool planner",
        detail: e.to_string(),
    })??;
    report.pool_listed_files = outcome.listed_files;
    report.pool_listed_bytes = outcome.listed_bytes;
    let mode = if diff {
        Mode::Diff(outcome.unreferenced)
    } else {
        Mode::Walk {
            flat: ctx.mirror.flat,
        }
    };
    let planned = cleanup::plan(
        Manifests::read_only(&ctx.tree),
        mode,
        outcome.new_keys,
        &sources.unchanged,
        ctx.cfg.max_delete,
        false,
    );
    match planned {
        Ok(d) => report.delete_files = d.files.len() as u64,
        Err(e @ SyncError::TooManyDeletes { count, .. }) => {
            report.delete_files = count;
            report.problems.push(e.to_string());
        }
        Err(e) => return Err(e),
    }
    Ok(())
}

/// The tree, or its nearest ancestor that exists (before the first sync).
fn existing_ancestor(tree: &Path) -> PathBuf {
    tree.ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"))
        .to_path_buf()
}

/// `$TMPDIR/debsync-check-<pid>-<mirror>`, removed on drop: indices fetched for the plan
/// never touch the mirror's root.
struct TempDir(PathBuf);

impl TempDir {
    fn create(mirror: &str) -> Result<TempDir, (PathBuf, std::io::Error)> {
        let dir =
            std::env::temp_dir().join(format!("debsync-check-{}-{mirror}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| (dir.clone(), e))?;
        Ok(TempDir(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The human form: a block per mirror.
pub fn render(checks: &[MirrorCheck]) -> String {
    use crate::archive::date::format_rfc2822;
    use crate::status::size;
    let mut out = String::new();
    for c in checks {
        let verdict = if c.ok { "ok" } else { "FAILED" };
        out.push_str(&format!("{}: {verdict} ({})\n", c.mirror, c.upstream));
        for p in &c.problems {
            out.push_str(&format!("  problem:  {p}\n"));
        }
        let files: Vec<String> = c.keyrings.iter().map(|k| k.display().to_string()).collect();
        out.push_str(&format!(
            "  keyrings: {} key(s) from {}\n",
            c.keys,
            files.join(", ")
        ));
        if c.sync_running {
            out.push_str("  note:     a sync is running now; figures are of this moment\n");
        }
        for s in &c.suites {
            let until = s
                .valid_until
                .map(|t| format!(", valid until {}", format_rfc2822(t)))
                .unwrap_or_default();
            let date = s
                .date
                .map(format_rfc2822)
                .unwrap_or_else(|| "no Date".into());
            let news = if s.changed {
                "changed since the last sync"
            } else {
                "as mirrored"
            };
            out.push_str(&format!(
                "  {}: Release verified ({date}{until}), {news}\n",
                s.suite
            ));
        }
        if c.up_to_date {
            out.push_str("  plan:     up to date: a sync would download nothing\n");
        } else if c.problems.is_empty() || c.pool_listed_files > 0 {
            out.push_str(&format!(
                "  indices:  {} file(s), up to {} to download\n",
                c.index_files,
                size(c.index_bytes)
            ));
            out.push_str(&format!(
                "  pool:     {} file(s) to download ({}), {} on disk to re-hash, of {} listed ({})\n",
                c.pool_download_files,
                size(c.pool_download_bytes),
                c.pool_rehash_files,
                c.pool_listed_files,
                size(c.pool_listed_bytes)
            ));
            out.push_str(&format!("  delete:   {} file(s)\n", c.delete_files));
        }
        if let (Some(free), Some(at)) = (c.free_bytes, &c.free_at) {
            out.push_str(&format!(
                "  disk:     {} needed, {} free on {}\n",
                size(c.needed_bytes),
                size(free),
                at.display()
            ));
        }
    }
    out
}
