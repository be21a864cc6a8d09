//! What a file request starts from, kept between requests: each tree's anchor handle, and the
//! bytes of small files asked for again and again (`InRelease`, by-hash indices, a `Release`
//! in an `apt-get update` storm).
//!
//! A small file served from memory costs one `fstatat` instead of open, `openat2`, `fstat`,
//! read and two closes. What makes that safe:
//! - An entry is made only from a handle that [`super::path::open_beneath`] opened, so only a
//!   file a request could reach (inside the tree, not private) is ever held.
//! - A hit is served only while the request path still resolves to that very file: same
//!   device, inode, size, modification and change times. A `dists/<suite>` swap, a rewrite,
//!   a rename or a symlink switched to another target all change that, and the request falls
//!   through to the open path (which refuses what it must). A hit is therefore a byte-exact
//!   copy of what the open path would send for that resolved file.
//! - Only settled files are held (modified over a second ago), so an in-place rewrite always
//!   changes the modification time.
//! - Memory is bounded: at most [`MAX_FILE`] bytes an entry and [`BUDGET`] in all; when a new
//!   entry does not fit, the table starts over (a hot set fills it again within requests).
//!
//! The anchor (the tree directory opened `O_PATH`) is reopened at most every second, so a tree
//! directory that is itself replaced (not just what is inside it) is picked up promptly.

use std::collections::HashMap;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use rustix::fs::{AtFlags, Stat};

use super::files::FileMeta;
use super::path::open_tree;

/// Largest file held in memory.
pub(super) const MAX_FILE: u64 = 64 * 1024;
/// All held files together.
const BUDGET: usize = 8 * 1024 * 1024;
/// How long an anchor handle is reused before the tree directory is opened again.
const ANCHOR_TTL: Duration = Duration::from_secs(1);

/// Which file a path resolved to, as far as a cached copy is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FileIdentity {
    dev: u64,
    ino: u64,
    size: i64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileIdentity {
    /// From an `fstat` of the open handle.
    pub(super) fn of_handle(m: &std::fs::Metadata) -> FileIdentity {
        use std::os::unix::fs::MetadataExt;
        FileIdentity {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size() as i64,
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }

    /// Modified over a second ago. File times come from a coarse clock (a few ms), so a file
    /// rewritten in place twice within one tick keeps its times; one modified long enough ago
    /// cannot be rewritten without its modification time changing.
    fn settled(&self) -> bool {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        self.mtime.0 < now - 1
    }

    /// From an `fstatat` of the path.
    // The field types of `struct stat` differ between architectures.
    #[allow(clippy::unnecessary_cast)]
    fn of(st: &Stat) -> FileIdentity {
        FileIdentity {
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
            size: st.st_size as i64,
            mtime: (st.st_mtime as i64, st.st_mtime_nsec as i64),
            ctime: (st.st_ctime as i64, st.st_ctime_nsec as i64),
        }
    }
}

/// The anchor handles of a site's trees, by tree path.
#[derive(Default)]
pub(super) struct Anchors {
    open: RwLock<HashMap<PathBuf, (Arc<OwnedFd>, Instant)>>,
}

impl Anchors {
    /// The tree's anchor: the held one while it is fresh, else a newly opened one.
    pub(super) fn get(&self, tree: &Path) -> io::Result<Arc<OwnedFd>> {
        let now = Instant::now();
        if let Some((fd, opened)) = read(&self.open).get(tree)
            && now.duration_since(*opened) < ANCHOR_TTL
        {
            return Ok(fd.clone());
        }
        // A tree that does not exist (yet) is not remembered: the error goes to the request.
        let fd = Arc::new(open_tree(tree)?);
        write(&self.open).insert(tree.to_path_buf(), (fd.clone(), now));
        Ok(fd)
    }
}

struct HotFile {
    identity: FileIdentity,
    meta: FileMeta,
    body: Bytes,
}

/// Small files held in memory, by request key (the mount and the path inside it).
#[derive(Default)]
pub(super) struct HotFiles {
    table: RwLock<Table>,
}

#[derive(Default)]
struct Table {
    files: HashMap<Box<str>, Arc<HotFile>>,
    bytes: usize,
}

impl HotFiles {
    /// The held copy of `key` if `rel` (under `tree_fd`) still resolves to the file it was
    /// made from.
    pub(super) fn get(
        &self,
        key: &str,
        tree_fd: &OwnedFd,
        rel: &Path,
    ) -> Option<(FileMeta, Bytes)> {
        let held = read(&self.table).files.get(key)?.clone();
        let now = rustix::fs::statat(tree_fd, rel, AtFlags::empty()).ok()?;
        if FileIdentity::of(&now) == held.identity {
            return Some((held.meta.clone(), held.body.clone()));
        }
        let mut table = write(&self.table);
        if let Some(old) = table.files.remove(key) {
            table.bytes -= old.body.len();
        }
        None
    }

    /// Keeps a copy of a small, settled file just read from a handle `open_beneath` opened.
    pub(super) fn offer(&self, key: &str, identity: FileIdentity, meta: &FileMeta, body: &Bytes) {
        if body.len() as u64 > MAX_FILE || !identity.settled() {
            return;
        }
        let mut table = write(&self.table);
        if table.bytes + body.len() > BUDGET {
            table.files.clear();
            table.bytes = 0;
        }
        let file = Arc::new(HotFile {
            identity,
            meta: meta.clone(),
            body: body.clone(),
        });
        table.bytes += body.len();
        if let Some(old) = table.files.insert(key.into(), file) {
            table.bytes -= old.body.len();
        }
    }
}

/// A lock's data even after a panic elsewhere poisoned it: these are caches, always safe to use.
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
