//! Keeping a cache under `max_size`: least recently used first, never what a suite's current
//! or previous Release needs.
//!
//! - **Usage**: counted once by a walk in the background at start, then kept up to date as
//!   downloads are committed.
//! - **Recency**: a file's atime, set explicitly on every hit (at most once a minute per file),
//!   so it works on `noatime`/`relatime` mounts and survives restarts; the mtime stays what
//!   `Last-Modified` says.
//! - **Eviction**: once usage passes `max_size`, one pass (never two at once) walks the tree,
//!   sorts the unpinned files by atime and deletes the oldest until usage is at 90 % of the
//!   limit. Pinned: every suite's InRelease and the by-hash indices of its current and previous
//!   Release (a client mid-update may still ask for the previous ones). A pool file evicted
//!   while a client reads it stays readable through the open handle.
//! - **Prune** (`debsync cache prune`): the same pass offline, plus temp files a killed
//!   process left (untouched for 10 minutes).

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use super::Cache;

/// Usage is brought down to this share of `max_size` (hysteresis: no eviction per commit).
const LOW_WATER_PERCENT: u64 = 90;
/// A temp file untouched this long belongs to a process that is gone.
const STALE_TEMP: Duration = Duration::from_secs(600);

#[derive(Default)]
pub(super) struct Usage {
    bytes: AtomicU64,
    counted: AtomicBool,
    evicting: AtomicBool,
}

impl Usage {
    /// Bytes under the tree, once counted.
    pub(super) fn bytes(&self) -> Option<u64> {
        self.counted
            .load(Ordering::Relaxed)
            .then(|| self.bytes.load(Ordering::Relaxed))
    }
}

/// Counts the tree in the background, then evicts if it is already over the limit.
pub(super) fn start_counting(cache: &Arc<Cache>) {
    let c = cache.clone();
    tokio::task::spawn_blocking(move || {
        let total: u64 = walk(&c.tree).iter().map(|f| f.size).sum();
        c.usage.bytes.store(total, Ordering::Relaxed);
        c.usage.counted.store(true, Ordering::Relaxed);
        maybe_evict(&c);
    });
}

/// A download of `size` bytes was committed.
pub(super) fn committed(cache: &Arc<Cache>, size: u64) {
    cache.usage.bytes.fetch_add(size, Ordering::Relaxed);
    if cache.usage.counted.load(Ordering::Relaxed) {
        maybe_evict(cache);
    }
}

fn maybe_evict(cache: &Arc<Cache>) {
    let Some(max) = cache.cfg.max_size else {
        return;
    };
    if cache.usage.bytes.load(Ordering::Relaxed) <= max
        || cache.usage.evicting.swap(true, Ordering::AcqRel)
    {
        return;
    }
    let c = cache.clone();
    let run = move || {
        let pinned = super::release::pinned(&c);
        let (files, bytes, left) = evict(&c.tree, max * LOW_WATER_PERCENT / 100, &pinned);
        c.usage.bytes.store(left, Ordering::Relaxed);
        c.metrics.evicted(files, bytes);
        c.usage.evicting.store(false, Ordering::Release);
        if files > 0 {
            tracing::info!(
                "cache {}: evicted {files} file(s), {bytes} bytes; {left} bytes left",
                c.name()
            );
        }
    };
    match tokio::runtime::Handle::try_current() {
        Ok(_) => drop(tokio::task::spawn_blocking(run)),
        Err(_) => run(),
    }
}

/// A hit: the file's atime becomes now, unless it was set within the last minute.
pub(super) fn touch(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    if meta.atime() + 60 > now.as_secs() as i64 {
        return;
    }
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return;
    };
    let times = [
        libc::timespec {
            tv_sec: now.as_secs() as libc::time_t,
            tv_nsec: now.subsec_nanos() as libc::c_long,
        },
        libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
    ];
    // SAFETY: a plain syscall with a NUL-terminated path and a valid two-element array.
    unsafe {
        libc::utimensat(libc::AT_FDCWD, c_path.as_ptr(), times.as_ptr(), 0);
    }
}

struct CachedFile {
    rel: String,
    size: u64,
    atime: i64,
}

/// Every stored file under the tree (not `.debsync/`, not temp files).
fn walk(tree: &Path) -> Vec<CachedFile> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel_dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(tree.join(&rel_dir)) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if crate::tree::is_private_name(&name) {
                continue;
            }
            let rel = rel_dir.join(&name);
            let Ok(meta) = e.metadata() else {
                continue;
            };
            if meta.is_dir() {
                stack.push(rel);
            } else if meta.is_file() {
                out.push(CachedFile {
                    rel: rel.to_string_lossy().into_owned(),
                    size: meta.len(),
                    atime: meta.atime(),
                });
            }
        }
    }
    out
}

/// Deletes the least recently used unpinned files until at most `target` bytes are left.
/// Returns (files deleted, bytes deleted, bytes left).
fn evict(tree: &Path, target: u64, pinned: &HashSet<String>) -> (u64, u64, u64) {
    let mut files = walk(tree);
    let mut left: u64 = files.iter().map(|f| f.size).sum();
    files.retain(|f| !pinned.contains(&f.rel));
    files.sort_by_key(|f| f.atime);
    let (mut count, mut bytes) = (0, 0);
    for f in files {
        if left <= target {
            break;
        }
        if std::fs::remove_file(tree.join(&f.rel)).is_ok() {
            left -= f.size;
            count += 1;
            bytes += f.size;
        }
    }
    (count, bytes, left)
}

/// What `debsync cache prune` did.
#[derive(Debug, Default)]
pub struct PruneReport {
    pub evicted_files: u64,
    pub evicted_bytes: u64,
    pub temp_files: u64,
    pub bytes_left: u64,
}

/// Offline prune of one cache: stale temp files, then eviction down to `max_size` (when
/// given; else the cache's own limit, else none).
pub async fn prune(cache: &Arc<Cache>, max_size: Option<u64>) -> PruneReport {
    cache.suites.load_known(cache).await;
    let limit = max_size.or(cache.cfg.max_size);
    let c = cache.clone();
    tokio::task::spawn_blocking(move || {
        let mut report = PruneReport {
            temp_files: remove_stale_temps(&c.tree),
            ..PruneReport::default()
        };
        let pinned = super::release::pinned(&c);
        let target = limit.unwrap_or(u64::MAX);
        let (files, bytes, left) = evict(&c.tree, target, &pinned);
        report.evicted_files = files;
        report.evicted_bytes = bytes;
        report.bytes_left = left;
        report
    })
    .await
    .unwrap_or_default()
}

fn remove_stale_temps(tree: &Path) -> u64 {
    let mut removed = 0;
    let mut stack = vec![tree.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Ok(meta) = e.metadata() else {
                continue;
            };
            if meta.is_dir() {
                if name != ".debsync" {
                    stack.push(e.path());
                }
            } else if crate::tree::is_temp_name(&name)
                && meta
                    .modified()
                    .is_ok_and(|m| m.elapsed().unwrap_or_default() > STALE_TEMP)
                && std::fs::remove_file(e.path()).is_ok()
            {
                removed += 1;
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(tree: &Path, rel: &str, len: usize, atime: i64) {
        let p = tree.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, vec![0u8; len]).unwrap();
        let f = std::fs::File::options().append(true).open(&p).unwrap();
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(atime as u64);
        f.set_times(std::fs::FileTimes::new().set_accessed(t))
            .unwrap();
    }

    #[test]
    fn oldest_unpinned_go_first() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path();
        file(t, "pool/a", 100, 1_000);
        file(t, "pool/b", 100, 3_000);
        file(t, "pool/c", 100, 2_000);
        file(t, "dists/s/InRelease", 100, 500);
        file(t, "pool/.a.1-0.debsync-tmp", 100, 10);
        let pinned: HashSet<String> = ["dists/s/InRelease".to_string()].into();
        let (n, bytes, left) = evict(t, 200, &pinned);
        assert_eq!((n, bytes, left), (2, 200, 200));
        assert!(!t.join("pool/a").exists() && !t.join("pool/c").exists());
        assert!(t.join("pool/b").exists() && t.join("dists/s/InRelease").exists());
        assert!(
            t.join("pool/.a.1-0.debsync-tmp").exists(),
            "temp files are not eviction's"
        );
    }
}
