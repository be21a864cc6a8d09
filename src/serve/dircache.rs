//! A small cache of directory listings, so a 10,000-entry pool directory costs one `fstat`
//! instead of 10,000 `fstatat`s per request.
//!
//! The key is the directory's identity and change times (`dev`, `ino`, `mtime`, `ctime`, to
//! the nanosecond). `debsync sync` adds, replaces and removes files only by `rename`/`unlink`
//! in that directory, which always moves its `mtime`, so a changed directory is a new key and
//! the stale entry is simply never hit again. Not cached: directories changed in the last two
//! seconds (coarse-timestamp filesystems could hide a second change in the same tick),
//! directories containing symlinks (a link's target can change without touching the
//! directory), and small directories (cheap to read anyway).

use std::collections::HashMap;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use super::listing::Entry;

/// Directories with fewer entries are not worth caching.
pub(super) const MIN_ENTRIES: usize = 256;
/// Most directories kept; an arbitrary one is evicted beyond.
const CAPACITY: usize = 64;
/// A directory changed this recently is not cached.
const SETTLE_SECS: i64 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct DirKey {
    dev: u64,
    ino: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl DirKey {
    pub(super) fn of(meta: &Metadata) -> DirKey {
        DirKey {
            dev: meta.dev(),
            ino: meta.ino(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }

    fn settled(&self) -> bool {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        self.mtime.0.max(self.ctime.0) + SETTLE_SECS < now
    }
}

#[derive(Default)]
pub(super) struct DirCache {
    map: Mutex<HashMap<DirKey, Arc<Vec<Entry>>>>,
}

impl DirCache {
    pub(super) fn get(&self, key: &DirKey) -> Option<Arc<Vec<Entry>>> {
        self.map.lock().ok()?.get(key).cloned()
    }

    /// Stores `entries` if the rules in the module doc allow; returns them shared either way.
    pub(super) fn offer(
        &self,
        key: DirKey,
        entries: Vec<Entry>,
        has_symlinks: bool,
    ) -> Arc<Vec<Entry>> {
        let entries = Arc::new(entries);
        if has_symlinks || entries.len() < MIN_ENTRIES || !key.settled() {
            return entries;
        }
        if let Ok(mut map) = self.map.lock() {
            if map.len() >= CAPACITY
                && let Some(victim) = map.keys().next().copied()
            {
                map.remove(&victim);
            }
            map.insert(key, entries.clone());
        }
        entries
    }
}
