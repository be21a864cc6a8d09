//! Stage 1 (ftpsync's name; step 4 of a run): the pool files the new indices reference, fetched before any index goes live.
//!
//! One blocking thread decodes and scans the changed indices and feeds a bounded queue; N
//! async workers drain it. Memory stays flat however large the archive: the queue holds at
//! most a few hundred entries, and what is remembered per package is a 16-byte key.
//!
//! Trust rule: a pool file listed with the same path, size and SHA256 by the live generation
//! was verified when that generation was built, so it is neither stat'ed nor re-hashed here
//! (`debsync verify` does that). Anything else is checked on disk and fetched if wrong.
//! Failures are collected, not counted: any failure is an error value that stops the run
//! before the swap.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use super::generation::ParseSource;
use super::manifest::{self, Manifests};
use super::plan::IndexKind;
use super::{Ctx, SyncError};
use crate::archive::{ArchivePath, FileRef, PackageId, packages, sources};
use crate::fetch::pipeline::{Endpoint, Handoff, Job, Pipeline};
use crate::fetch::{Expected, FetchError, hash_file};

/// A 128-bit digest of a pool path: compact set membership for 60,000+ files. Two `u64`s
/// rather than a `u128`, whose 16-byte alignment would pad every (key, tag) entry of the
/// planning tables from 24 to 32 bytes. Only ever in memory, so the hash may change between
/// versions; XXH3 because a run takes a few hundred thousand of them (the paths come from
/// signed indices: no one to forge collisions against a keyless hash).
pub(crate) type PathKey = [u64; 2];

#[inline]
pub(crate) fn path_key(path: &str) -> PathKey {
    bytes_key(path.as_bytes())
}

/// [`path_key`] of any bytes (the changelog keys packages with it).
#[inline]
pub(crate) fn bytes_key(bytes: &[u8]) -> PathKey {
    let h = xxhash_rust::xxh3::xxh3_128(bytes);
    [h as u64, (h >> 64) as u64]
}

/// The position of `key` in `table`, sorted by key (as [`slice::binary_search_by_key`]
/// answers). Path keys are uniform hashes, so an entry sits near `key / 2^64` of the way
/// into the table: the search starts there and widens until it brackets the key, touching a
/// few neighbouring cache lines where a plain binary search over 60,000 entries misses the
/// cache at nearly every step.
#[inline]
pub(crate) fn find_key<T>(
    table: &[T],
    key: &PathKey,
    key_of: impl Fn(&T) -> &PathKey,
) -> Result<usize, usize> {
    let n = table.len();
    if n == 0 {
        return Err(0);
    }
    let guess = ((u128::from(key[0]) * n as u128) >> 64) as usize;
    let (mut lo, mut hi) = (guess, guess + 1);
    let mut step = 1;
    // Widen [lo, hi) until table[lo] <= key < table[hi] (or an end is reached).
    while lo > 0 && key_of(&table[lo]) > key {
        hi = lo;
        lo = lo.saturating_sub(step);
        step *= 2;
    }
    step = 1;
    while hi < n && key_of(&table[hi]) <= key {
        lo = hi;
        hi = (hi + step).min(n);
        step *= 2;
    }
    table[lo..hi]
        .binary_search_by(|e| key_of(e).cmp(key))
        .map(|i| lo + i)
        .map_err(|i| lo + i)
}

/// Content tag: enough of the SHA256 and size to tell "same file" from "replaced file".
#[inline]
fn content_tag(sha256: &crate::archive::Sha256, size: u64) -> u64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&sha256.0[..8]);
    u64::from_le_bytes(first) ^ size
}

/// What the planning pass learnt, for cleanup.
#[derive(Default)]
pub(crate) struct PoolOutcome {
    /// Every path the changed new indices reference, with its content tag, sorted by key.
    pub new_keys: Vec<(PathKey, u64)>,
    /// Paths the old versions of changed indices referenced and the new ones do not.
    pub unreferenced: Vec<String>,
    pub listed_files: u64,
    pub listed_bytes: u64,
    pub fetched_files: u64,
    pub checked_local: u64,
    /// Replacements to rename into place after the swap: (waiting file, final path).
    pub deferred: Vec<(std::path::PathBuf, std::path::PathBuf)>,
}

/// Calls `f` for every pool file an index lists, streaming.
pub(crate) fn for_each_file(
    src: &ParseSource,
    mut f: impl FnMut(FileRef) -> Result<(), SyncError>,
) -> Result<(), SyncError> {
    for_each_entry(src, |file, _| f(file))
}

/// [`for_each_file`], with the package of the stanza that lists each file (when the stanza
/// names one).
pub(crate) fn for_each_entry(
    src: &ParseSource,
    mut f: impl FnMut(FileRef, Option<PackageId<'_>>) -> Result<(), SyncError>,
) -> Result<(), SyncError> {
    let index_err = |detail: String| src.error(detail);
    let mut reader = src.stanzas()?;
    loop {
        let n = reader.index + 1;
        let Some(stanza) = reader
            .next_stanza()
            .map_err(|e| index_err(format!("stanza {n}: {e}")))?
        else {
            break;
        };
        match src.kind {
            IndexKind::Packages => {
                let file = packages::pool_file(stanza, n).map_err(|e| index_err(e.to_string()))?;
                f(file, PackageId::of_stanza(stanza, false))?
            }
            IndexKind::Sources => {
                let id = PackageId::of_stanza(stanza, true);
                for file in
                    sources::source_files(stanza, n).map_err(|e| index_err(e.to_string()))?
                {
                    f(file, id)?;
                }
            }
            IndexKind::PDiffIndex | IndexKind::InstallerSums | IndexKind::Plain => {}
        }
    }
    Ok(())
}

/// Like [`for_each_entry`], but reads the index's manifest when an earlier run left one, and
/// leaves one behind when it had to parse. Entries may repeat after a damaged manifest;
/// every caller deduplicates by path.
pub(crate) fn for_each_listed(
    manifests: Manifests<'_>,
    src: &ParseSource,
    mut f: impl FnMut(FileRef, Option<PackageId<'_>>) -> Result<(), SyncError>,
) -> Result<(), SyncError> {
    if manifest::read(&manifest::path(manifests.tree, &src.sha256), &mut f)? {
        return Ok(());
    }
    let mut writer = None;
    if manifests.write {
        writer = manifest::Writer::create(manifests.tree, &src.sha256)
            .inspect_err(|e| tracing::warn!("{}: cannot write manifest: {e}", src.display))
            .ok();
    }
    for_each_entry(src, |entry, id| {
        if let Some(w) = writer.as_mut()
            && w.push(&entry, id).is_err()
        {
            writer = None;
        }
        f(entry, id)
    })?;
    if let Some(w) = writer
        && let Err(e) = w.finish()
    {
        tracing::warn!("{}: cannot write manifest: {e}", src.display);
    }
    Ok(())
}

/// [`for_each_listed`] for passes that only key the paths, with each file's content tag. A
/// manifest's paths are not proven again (each was when written; whoever acts on one proves
/// it), which makes reading one several times faster.
pub(crate) fn for_each_listed_key(
    manifests: Manifests<'_>,
    src: &ParseSource,
    mut f: impl FnMut(&str, u64) -> Result<(), SyncError>,
) -> Result<(), SyncError> {
    let stored = manifest::read_stored(&manifest::path(manifests.tree, &src.sha256), |e| {
        f(e.path, content_tag(&e.sha256, e.size))
    })?;
    if stored {
        return Ok(());
    }
    for_each_listed(manifests, src, |file, _| {
        f(file.path.as_str(), content_tag(&file.sha256, file.size))
    })
}

/// Plans and runs stage 1 for the given changed indices.
pub(crate) async fn sync_pool(
    ctx: &Ctx<'_>,
    old: Vec<ParseSource>,
    new: Vec<ParseSource>,
    unchanged: Vec<ParseSource>,
) -> Result<PoolOutcome, SyncError> {
    let (tx, rx) = mpsc::channel::<Vec<FileRef>>(QUEUED_BATCHES);
    let tree = ctx.tree.clone();
    let counts = Arc::new(Counts::default());
    let _progress =
        super::progress::Reporter::start(&ctx.mirror.name, counts.clone(), ctx.fetcher.clone());
    let planned = counts.clone();
    let dirs = Arc::new(DirCache::default());
    let planner_dirs = dirs.clone();
    let planner = tokio::task::spawn_blocking(move || {
        let sources = PoolSources {
            old,
            new,
            unchanged,
        };
        let phase = std::time::Instant::now();
        // The planner makes each queued file's directory: one thread creating directories
        // ahead of the writers, instead of writers queueing on the lock of a shared parent
        // (`pool/main/libx/`) for every `mkdir`. A failure is left for the worker to report.
        let make_dir = |f: &FileRef| {
            if let Some(parent) = Some(f.path.parent()).filter(|p| !p.is_empty()) {
                let _ = planner_dirs.ensure(&tree, parent);
            }
        };
        let result = plan_pool(
            Manifests::of_run(&tree),
            &sources,
            make_dir,
            tx,
            &planned.queued,
        );
        tracing::debug!("pool: planned in {:?}", phase.elapsed());
        planned
            .planned
            .store(true, std::sync::atomic::Ordering::Relaxed);
        result
    });

    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let failures: Arc<Mutex<Vec<FetchError>>> = Arc::default();
    let worker_ctx = Arc::new(WorkerCtx {
        tree: ctx.tree.clone(),
        base: ctx.mirror.upstream.clone(),
        fetcher: ctx.fetcher.clone(),
        dirs,
        deferred: Mutex::default(),
    });
    // Plain http pipelines over a few connections; anything else gets a request per worker.
    let pipelined = Some(ctx.cfg.pipeline_depth)
        .filter(|depth| *depth > 1)
        .zip(Endpoint::of(&ctx.mirror.upstream));
    let workers_wanted = match pipelined {
        Some(_) => ctx.cfg.concurrency.min(PIPELINED_CONNECTIONS),
        None => ctx.cfg.concurrency,
    };
    // Spawned, not joined in place: hashing and writing then spread over every core.
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..workers_wanted {
        let queue = Queue {
            rx: rx.clone(),
            batch: Vec::new(),
            closed: false,
        };
        let worker = Worker {
            ctx: worker_ctx.clone(),
            failures: failures.clone(),
            counts: counts.clone(),
        };
        let pipeline = pipelined
            .clone()
            .map(|(depth, endpoint)| Pipeline::new(endpoint, ctx.fetcher.clone(), depth));
        workers.spawn(async move {
            match pipeline {
                Some(pipeline) => worker.run_pipelined(queue, pipeline).await,
                None => worker.run(queue).await,
            }
        });
    }
    // A worker that panicked may have dropped a file: the run must not reach the swap.
    let mut panics = Vec::new();
    while let Some(joined) = workers.join_next().await {
        if let Err(e) = joined {
            panics.push(e.to_string());
        }
    }

    let mut outcome = match planner.await {
        Ok(r) => r?,
        Err(e) => {
            return Err(SyncError::Panicked {
                what: "the pool planner",
                detail: e.to_string(),
            });
        }
    };
    if !panics.is_empty() {
        return Err(SyncError::Panicked {
            what: "a pool worker",
            detail: panics.join("; "),
        });
    }
    let failures = std::mem::take(&mut *locked(&failures));
    // One error for a dead upstream, not one per file that was never tried.
    if let Some(down) = failures
        .iter()
        .find(|e| matches!(e, FetchError::UpstreamDown { .. }))
    {
        let cause = failures
            .iter()
            .find(|e| !matches!(e, FetchError::UpstreamDown { .. }))
            .map(|e| format!(" (last: {e})"))
            .unwrap_or_default();
        return Err(SyncError::UpstreamDown(format!("{down}{cause}")));
    }
    if !failures.is_empty() {
        return Err(SyncError::Pool(failures));
    }
    outcome.deferred = std::mem::take(&mut *locked(&worker_ctx.deferred));
    outcome.fetched_files = counts.fetched.load(std::sync::atomic::Ordering::Relaxed);
    outcome.checked_local = counts.local.load(std::sync::atomic::Ordering::Relaxed);
    Ok(outcome)
}

/// A mutex's data even after a panic elsewhere poisoned it: a failure or a deferred rename
/// must never be dropped on the way to the swap decision.
fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

use super::progress::Counts;

/// The index files stage 1 reads, by role.
#[derive(Default)]
pub(crate) struct PoolSources {
    /// Live versions of the indices that changed: what may become unreferenced.
    pub old: Vec<ParseSource>,
    /// The new indices whose pool files must be in place before the swap.
    pub new: Vec<ParseSource>,
    /// Indices that did not change (their pool files stay referenced).
    pub unchanged: Vec<ParseSource>,
}

/// Files the planner hands over at a time: one wake-up of a worker per batch, not per file.
const BATCH_FILES: usize = 32;
/// ... and at most this many bytes a batch, so large files still spread over the workers.
const BATCH_BYTES: u64 = 4 << 20;
/// Batches queued ahead of the workers: memory stays at a few hundred entries.
pub(crate) const QUEUED_BATCHES: usize = 16;

/// The blocking half: read the old indices into a compact map, then stream the new ones and
/// queue every file the live generation does not already vouch for, in batches (`debsync
/// check` reads the queue instead of workers), each file passed to `prepare` first.
pub(crate) fn plan_pool(
    manifests: Manifests<'_>,
    sources: &PoolSources,
    mut prepare: impl FnMut(&FileRef),
    tx: mpsc::Sender<Vec<FileRef>>,
    queued: &std::sync::atomic::AtomicU64,
) -> Result<PoolOutcome, SyncError> {
    let PoolSources {
        old,
        new,
        unchanged,
    } = sources;
    // What the unchanged suites list, to catch a path two suites list with different bytes.
    let mut unchanged_table: Vec<(PathKey, u64)> = Vec::new();
    for src in unchanged {
        for_each_listed_key(manifests, src, |path, tag| {
            unchanged_table.push((path_key(path), tag));
            Ok(())
        })?;
    }
    unchanged_table.sort_unstable_by_key(|e| e.0);
    // The live generation as a sorted (key, tag) table: 24 bytes a file, no hash-table slack.
    let mut old_table: Vec<(PathKey, u64)> = Vec::new();
    for src in old {
        for_each_listed_key(manifests, src, |path, tag| {
            old_table.push((path_key(path), tag));
            Ok(())
        })?;
    }
    old_table.sort_unstable_by_key(|e| e.0);
    old_table.dedup_by_key(|e| e.0);
    let mut referenced = vec![false; old_table.len()];

    let mut outcome = PoolOutcome::default();
    // Paths the live generation does not list. Those it does are only marked in `referenced`,
    // their tags updated in place: a resync remembers what is new, not every path twice.
    let mut listed = Listed::default();
    let mut batch = Vec::with_capacity(BATCH_FILES);
    let mut batch_bytes = 0;
    for src in new {
        for_each_listed(manifests, src, |f, _| {
            let key = path_key(f.path.as_str());
            let tag = content_tag(&f.sha256, f.size);
            let old = find_key(&old_table, &key, |e| &e.0).ok();
            // Listed twice (another index of this run, or an unchanged suite): the same
            // bytes, or two suites whose clients cannot both be right.
            let before = match old {
                Some(i) if referenced[i] => Some(old_table[i].1),
                Some(_) => None,
                None => listed.insert(key, tag),
            };
            match before {
                Some(before) if before == tag => return Ok(()),
                Some(_) => return Err(conflict(manifests, &f, new, unchanged)),
                None => {}
            }
            if let Ok(i) = find_key(&unchanged_table, &key, |e| &e.0)
                && unchanged_table[i].1 != tag
            {
                return Err(conflict(manifests, &f, new, unchanged));
            }
            // The pool must not reach into the trees the swap replaces, the trace, our flag
            // files (the run lock), or a flat repository's root links into the live
            // generation. Hidden names never get this far (ArchivePath).
            let first = f.path.as_str().split('/').next().unwrap_or("");
            if matches!(first, "dists" | "project")
                || super::lock::is_flag_name(first)
                || src.reserved.iter().any(|r| r == first)
            {
                return Err(SyncError::Index {
                    file: src.display.clone(),
                    detail: format!(
                        "package file {} lies under {first}, which debsync manages itself",
                        f.path
                    ),
                });
            }
            outcome.listed_files += 1;
            outcome.listed_bytes += f.size;
            if let Some(i) = old {
                referenced[i] = true;
                let same = old_table[i].1 == tag;
                old_table[i].1 = tag;
                if same {
                    return Ok(());
                }
            }
            prepare(&f);
            queued.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            batch_bytes += f.size;
            batch.push(f);
            if batch.len() == BATCH_FILES || batch_bytes >= BATCH_BYTES {
                batch_bytes = 0;
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_FILES));
                // The receiver only goes away when the run is failing anyway.
                tx.blocking_send(full)
                    .map_err(|_| SyncError::WorkersStopped)?;
            }
            Ok(())
        })?;
    }
    if !batch.is_empty() {
        tx.blocking_send(batch)
            .map_err(|_| SyncError::WorkersStopped)?;
    }
    drop(tx);
    // Paths are not kept in memory: the old manifests (just read or written) name them again.
    if referenced.iter().any(|r| !r) {
        let mut seen = HashSet::new();
        for src in old {
            for_each_listed_key(manifests, src, |path, _| {
                let key = path_key(path);
                if let Ok(i) = find_key(&old_table, &key, |e| &e.0)
                    && !referenced[i]
                    && seen.insert(key)
                {
                    // Cleanup deletes it: proven like any path from an index.
                    let path = ArchivePath::new(path).map_err(|e| SyncError::Index {
                        file: src.display.clone(),
                        detail: format!("manifest: {e}"),
                    })?;
                    outcome.unreferenced.push(path.as_str().to_string());
                }
                Ok(())
            })?;
        }
    }
    // Every path the new indices list: the live generation's that are still listed (with
    // their new tags), then the new ones.
    let mut still = referenced.iter();
    old_table.retain(|_| still.next().copied().unwrap_or(false));
    old_table.extend(listed.into_entries());
    old_table.sort_unstable_by_key(|e| e.0);
    outcome.new_keys = old_table;
    Ok(outcome)
}

/// Paths listed so far this run with their content tags, in listing order, and a hash
/// index over them: about 30 bytes a path at 60,000 paths, where a `HashMap` of the same
/// entries needs twice that at its load factor (and three times while it grows).
#[derive(Default)]
struct Listed {
    entries: Vec<(PathKey, u64)>,
    index: hashbrown::HashTable<u32>,
}

impl Listed {
    /// Adds a path; returns the tag it was listed with before, if it was.
    fn insert(&mut self, key: PathKey, tag: u64) -> Option<u64> {
        let entries = &self.entries;
        // A path key is a hash already.
        match self.index.entry(
            key[0],
            |&i| entries[i as usize].0 == key,
            |&i| entries[i as usize].0[0],
        ) {
            hashbrown::hash_table::Entry::Occupied(e) => Some(entries[*e.get() as usize].1),
            hashbrown::hash_table::Entry::Vacant(v) => {
                v.insert(entries.len() as u32);
                self.entries.push((key, tag));
                None
            }
        }
    }

    fn into_entries(self) -> Vec<(PathKey, u64)> {
        self.entries
    }
}

/// The error for a pool path listed with different contents: names both indices (found again
/// by a second look, since the first pass keeps no paths).
fn conflict(
    manifests: Manifests<'_>,
    f: &FileRef,
    new: &[ParseSource],
    unchanged: &[ParseSource],
) -> SyncError {
    let mut listings: Vec<String> = Vec::new();
    for src in new.iter().chain(unchanged) {
        let _ = for_each_listed(manifests, src, |g, _| {
            if g.path == f.path {
                listings.push(format!(
                    "{} ({} bytes, SHA256 {})",
                    src.display, g.size, g.sha256
                ));
            }
            Ok(())
        });
    }
    listings.dedup();
    SyncError::Conflict {
        path: f.path.to_string(),
        listings: listings.join(" vs "),
    }
}

/// What a spawned worker needs of the run (owned, so workers can be tasks of their own).
struct WorkerCtx {
    tree: std::path::PathBuf,
    base: reqwest::Url,
    fetcher: crate::fetch::Fetcher,
    dirs: Arc<DirCache>,
    deferred: Mutex<Vec<(std::path::PathBuf, std::path::PathBuf)>>,
}

/// Pool directories known to exist, by path key: one `mkdir` per directory instead of one
/// `mkdir` + `stat` per file, and the knowledge that a directory this run created holds only
/// what this run wrote. 8 bytes a directory (36,000 in bookworm main): 63 bits of its
/// [`PathKey`] (two of that many directories share them once in 10^10 mirrors) and, in the
/// lowest bit, "created by this run".
#[derive(Default)]
struct DirCache {
    known: Mutex<hashbrown::HashTable<u64>>,
}

impl DirCache {
    fn lookup(&self, key: PathKey) -> Option<bool> {
        Self::find(&*self.known.lock().ok()?, key)
    }

    fn remember(&self, key: PathKey, created: bool) {
        if let Ok(mut known) = self.known.lock()
            && Self::find(&known, key).is_none()
        {
            let entry = (key[0] & !1) | created as u64;
            known.insert_unique(key[0] | 1, entry, |e| e | 1);
        }
    }

    /// Whether the directory is known, and if so whether this run created it.
    fn find(known: &hashbrown::HashTable<u64>, key: PathKey) -> Option<bool> {
        known
            .find(key[0] | 1, |e| e | 1 == key[0] | 1)
            .map(|e| e & 1 == 1)
    }

    /// Makes sure `tree/rel` exists; returns whether this run created it.
    fn ensure(&self, tree: &Path, rel: &str) -> std::io::Result<bool> {
        let key = path_key(rel);
        if let Some(created) = self.lookup(key) {
            return Ok(created);
        }
        let created = match std::fs::create_dir(tree.join(rel)) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if !tree.join(rel).is_dir() {
                    // A file the live generation may still list: see `fetch_one`.
                    return Err(std::io::Error::from(std::io::ErrorKind::NotADirectory));
                }
                false
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some((parent, _)) = rel.rsplit_once('/') {
                    self.ensure(tree, parent)?;
                }
                match std::fs::create_dir(tree.join(rel)) {
                    Ok(()) => true,
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        };
        self.remember(key, created);
        Ok(created)
    }
}

impl WorkerCtx {
    fn url(&self, rel: &str) -> reqwest::Url {
        super::join_url(&self.base, rel)
    }
}

/// Pipelined connections per run: this many writers keep a 2-core machine's filesystem
/// busiest (bench/floor), and each carries `sync.pipeline_depth` requests.
const PIPELINED_CONNECTIONS: usize = 2;

/// A worker's view of the planner's queue: one batch at a time.
struct Queue {
    rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Vec<FileRef>>>>,
    /// The batch being worked through, reversed (taken from the end).
    batch: Vec<FileRef>,
    closed: bool,
}

impl Queue {
    /// The next file, waiting for the planner when `wait`; `None` when none is ready (or
    /// none will come, see `closed`).
    async fn next(&mut self, wait: bool) -> Option<FileRef> {
        if self.batch.is_empty() && !self.closed {
            let next = if wait {
                self.rx.lock().await.recv().await
            } else {
                match self.rx.try_lock() {
                    Ok(mut rx) => match rx.try_recv() {
                        Ok(batch) => Some(batch),
                        Err(mpsc::error::TryRecvError::Empty) => return None,
                        Err(mpsc::error::TryRecvError::Disconnected) => None,
                    },
                    Err(_) => return None,
                }
            };
            match next {
                Some(mut batch) => {
                    batch.reverse();
                    self.batch = batch;
                }
                None => self.closed = true,
            }
        }
        self.batch.pop()
    }

    /// The planner is done and every file it queued was taken.
    fn is_done(&self) -> bool {
        self.closed && self.batch.is_empty()
    }
}

/// One pool worker: takes files off the queue until it is closed and empty.
struct Worker {
    ctx: Arc<WorkerCtx>,
    failures: Arc<Mutex<Vec<FetchError>>>,
    counts: Arc<Counts>,
}

impl Worker {
    /// One request at a time through the general client.
    async fn run(self, mut queue: Queue) {
        while let Some(file) = queue.next(true).await {
            let result = match self.prepare(&file) {
                Ok(Some(t)) => self.download(&t).await,
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            };
            self.finish(result);
        }
    }

    /// Keeps the pipeline full; what it hands back goes through the general client.
    async fn run_pipelined(self, mut queue: Queue, mut pipeline: Pipeline) {
        loop {
            // Refilled in halves: several requests go out per write.
            if pipeline.wants_more() {
                while pipeline.has_room() {
                    let Some(file) = queue.next(pipeline.is_empty()).await else {
                        break;
                    };
                    match self.prepare(&file) {
                        // A partial file from an earlier run is resumed with `Range`, which
                        // only the general path does.
                        Ok(Some(t)) if t.has_partial() => {
                            let result = self.download(&t).await;
                            self.finish(result);
                        }
                        Ok(Some(t)) => pipeline.push(t.job),
                        Ok(None) => {}
                        Err(e) => self.finish(Err(e)),
                    }
                }
            }
            let Some(done) = pipeline.next().await else {
                if queue.is_done() {
                    return;
                }
                continue;
            };
            let result = match done {
                Ok(_) => Ok(()),
                Err(Handoff { job, failed }) => {
                    self.ctx
                        .fetcher
                        .download_after(&job.url, &job.dest, job.want, failed)
                        .await
                }
            };
            self.finish(result);
        }
    }

    fn finish(&self, result: Result<(), FetchError>) {
        match result {
            Ok(()) => {
                self.counts
                    .fetched
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Err(e) => locked(&self.failures).push(e),
        }
    }

    /// Where a listed file goes and whether it needs fetching at all: `None` when the bytes
    /// on disk are already right (counted here).
    fn prepare(&self, file: &FileRef) -> Result<Option<Transfer>, FetchError> {
        let ctx = &self.ctx;
        let dest = ctx.tree.join(file.path.as_path());
        let want = Expected::new(file.size, file.sha256);
        let url = ctx.url(file.path.as_str());
        let fresh_dir = match file.path.parent() {
            "" => false,
            parent => match ctx.dirs.ensure(&ctx.tree, parent) {
                Ok(created) => created,
                // Upstream turned a file into a directory: the file stays until the swap
                // (the live indices name it), so the new file waits in the state directory.
                Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
                    let waiting = waiting_path(&ctx.tree, file.path.as_str());
                    if let Some(parent) = waiting.parent() {
                        std::fs::create_dir_all(parent).map_err(|source| FetchError::Io {
                            path: parent.to_path_buf(),
                            source,
                        })?;
                    }
                    locked(&ctx.deferred).push((waiting.clone(), dest));
                    return Ok(Some(Transfer {
                        job: Job {
                            url,
                            dest: waiting,
                            want,
                        },
                        fresh_dir: false,
                    }));
                }
                Err(source) => {
                    return Err(FetchError::Io {
                        path: ctx.tree.join(parent),
                        source,
                    });
                }
            },
        };
        // A file already there (an interrupted earlier run, or a re-added package) is kept
        // when its bytes are right: hashing locally beats downloading. In a directory this
        // run created there is nothing to look at.
        let mut target = dest.clone();
        if !fresh_dir && let Ok(meta) = std::fs::symlink_metadata(&dest) {
            if meta.is_file() && meta.len() == file.size && local_matches(&dest, &want) {
                self.counts
                    .local
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return Ok(None);
            }
            // Different bytes under a name the live indices may still list: the new file
            // waits beside it and replaces it only after the swap, so a failed run changes
            // nothing.
            target = deferred_path(&dest);
            locked(&ctx.deferred).push((target.clone(), dest));
        }
        Ok(Some(Transfer {
            job: Job {
                url,
                dest: target,
                want,
            },
            fresh_dir,
        }))
    }

    /// Downloads through the general client, one request at a time.
    async fn download(&self, t: &Transfer) -> Result<(), FetchError> {
        let Job { url, dest, want } = &t.job;
        if t.fresh_dir {
            self.ctx.fetcher.download_new(url, dest, *want).await
        } else {
            self.ctx.fetcher.download(url, dest, *want).await
        }
    }
}

/// A file to download, and whether its directory was made by this run (then no partial file
/// can be there yet).
struct Transfer {
    job: Job,
    fresh_dir: bool,
}

impl Transfer {
    /// Whether an earlier attempt left a partial file to resume.
    fn has_partial(&self) -> bool {
        !self.fresh_dir
            && std::fs::symlink_metadata(crate::fetch::temp_path(&self.job.dest)).is_ok()
    }
}

/// `.debsync/waiting/<sha256 of the path>`: a new file whose directory is still a file the
/// live generation names.
fn waiting_path(tree: &Path, rel: &str) -> std::path::PathBuf {
    crate::tree::waiting_dir(tree).join(crate::archive::Sha256::digest(rel.as_bytes()).to_hex())
}

/// Puts a file that waited for the swap in place. Upstream may have changed the path's shape
/// meanwhile: a directory where the file goes (its files are listed by no live index now) or
/// a file where one of its directories goes is removed first.
pub(crate) fn replace_after_swap(tree: &Path, waiting: &Path, dest: &Path) -> std::io::Result<()> {
    if let Ok(rel) = dest.strip_prefix(tree) {
        let mut at = tree.to_path_buf();
        let parents: Vec<_> = rel.components().collect();
        for c in parents.iter().take(parents.len().saturating_sub(1)) {
            at.push(c);
            match std::fs::symlink_metadata(&at) {
                Ok(m) if !m.is_dir() => std::fs::remove_file(&at)?,
                _ => {}
            }
        }
    }
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent)?;
    }
    match std::fs::rename(waiting, dest) {
        Err(e) if dest.is_dir() && !dest.is_symlink() => {
            tracing::debug!("{}: replacing a directory: {e}", dest.display());
            std::fs::remove_dir_all(dest)?;
            std::fs::rename(waiting, dest)
        }
        other => other,
    }
}

pub(crate) use crate::tree::pending_path as deferred_path;

fn local_matches(path: &Path, want: &Expected) -> bool {
    hash_file(path).is_ok_and(|(h, len)| h == want.sha256 && len == want.size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_where_a_binary_search_finds_them() {
        let mut table: Vec<PathKey> = (0..5000).map(|i| path_key(&format!("pool/{i}"))).collect();
        // Keys at the ends of the range and next to each other.
        table.extend([
            [0, 0],
            [0, 1],
            [u64::MAX, 0],
            [u64::MAX, u64::MAX],
            [1 << 63, 5],
        ]);
        table.sort_unstable();
        for probe in table
            .iter()
            .copied()
            .chain((0..5000).map(|i| path_key(&format!("other/{i}"))))
            .chain([[0, 2], [1 << 63, 4], [1 << 63, 6], [u64::MAX, 1]])
        {
            assert_eq!(
                find_key(&table, &probe, |k| k),
                table.binary_search(&probe),
                "{probe:?}"
            );
        }
        assert_eq!(find_key(&[] as &[PathKey], &[1, 1], |k| k), Err(0));
        assert_eq!(find_key(&[[5, 5]], &[1, 1], |k| k), Err(0));
        assert_eq!(find_key(&[[5, 5]], &[u64::MAX, 1], |k| k), Err(1));
    }

    #[test]
    fn path_keys_differ() {
        assert_ne!(path_key("pool/a"), path_key("pool/b"));
        assert_eq!(path_key("pool/a"), path_key("pool/a"));
    }
}
