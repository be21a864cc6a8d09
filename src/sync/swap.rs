//! The atomic step: a staged `dists/<suite>` becomes live with one `renameat2(RENAME_EXCHANGE)`.
//!
//! A client sees either the old generation or the new one, never a mix: no moment exists
//! where InRelease is new and Packages old. The old generation lands in the staging path and is
//! deleted afterwards. A symlink in place of `dists/<suite>` is not an option: hardened web
//! servers refuse to follow them.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use rustix::fs::{CWD, RenameFlags, renameat_with};

use super::{SyncError, io_err};

/// One durability barrier for everything written so far: pool files and staged indices reach
/// the disk before any index that names them can go live. `syncfs` flushes the filesystem in
/// one call, where an fsync per file would make a 60,000-file sync crawl.
pub(crate) fn barrier(tree: &Path) -> Result<(), SyncError> {
    let dir = std::fs::File::open(tree).map_err(io_err(tree))?;
    rustix::fs::syncfs(&dir).map_err(|e| SyncError::Io {
        path: tree.to_path_buf(),
        source: e.into(),
    })
}

/// Pause between two flushes of a [`Flusher`]: long enough that its commits cost little
/// beside the writes, short enough that the barrier finds a fraction of a second of them.
const FLUSH_PACE: Duration = Duration::from_millis(250);

/// Flushes the filesystem when the pool stage starts and again and again beside it, so the
/// barrier after it finds little left to write: an initial sync's 60,000 files otherwise
/// wait for one `syncfs` of a second at the end, with the network idle, and a resync's
/// staged indices for one of tens of milliseconds. Advisory: the barrier still decides
/// durability, so a failed flush is only logged.
pub(crate) struct Flusher {
    stop: mpsc::Sender<()>,
    /// `None` when no thread could be started: then the barrier does all the work.
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Flusher {
    pub(crate) fn start(tree: &Path) -> Flusher {
        let (stop, stopped) = mpsc::channel::<()>();
        let tree: PathBuf = tree.to_path_buf();
        // The first flush at once: what was written before the write phase (a resync's tens
        // of megabytes of staged indices) reaches the disk beside it, not after it.
        // Any message or a hung-up sender ends the loop; only the pace running out goes on.
        let flush = move || {
            loop {
                if let Err(e) = barrier(&tree) {
                    tracing::debug!("flush ahead of the barrier: {e}");
                }
                let paced = stopped.recv_timeout(FLUSH_PACE);
                if !matches!(paced, Err(mpsc::RecvTimeoutError::Timeout)) {
                    break;
                }
            }
        };
        let thread = std::thread::Builder::new()
            .name("flusher".into())
            .spawn(flush)
            .ok();
        Flusher { stop, thread }
    }

    /// Stops flushing; returns once the flush under way (if any) has finished. Blocking.
    pub(crate) fn finish(self) {
        let _ = self.stop.send(());
        if let Some(thread) = self.thread {
            let _ = thread.join();
        }
    }
}

/// Makes `staged` live at `live`, atomically. Afterwards `staged` holds the old generation
/// (or nothing, on a first run), which the caller removes.
pub(crate) fn swap_in(staged: &Path, live: &Path) -> Result<(), SyncError> {
    if let Some(parent) = live.parent() {
        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    let flags = if std::fs::symlink_metadata(live).is_ok() {
        RenameFlags::EXCHANGE
    } else {
        RenameFlags::NOREPLACE
    };
    renameat_with(CWD, staged, CWD, live, flags).map_err(|e| SyncError::Io {
        path: live.to_path_buf(),
        source: std::io::Error::from(e),
    })?;
    // Make the directory entries themselves durable.
    if let Some(parent) = live.parent()
        && let Ok(d) = std::fs::File::open(parent)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Makes `dists/<alias>` a link to `<suite>` for each wanted alias, and removes alias links
/// no suite claims any more. Each link is replaced atomically (temp link + rename), so a
/// client resolving `dists/stable` sees the old release or the new one. A real directory is
/// a configured suite and is never replaced by a link.
pub(crate) fn publish_aliases(
    tree: &Path,
    wanted: &std::collections::BTreeMap<String, String>,
) -> Result<(), SyncError> {
    let dists = tree.join("dists");
    for (alias, suite) in wanted {
        let link = dists.join(alias);
        match std::fs::symlink_metadata(&link) {
            Ok(m) if !m.file_type().is_symlink() => continue,
            Ok(_) if std::fs::read_link(&link).is_ok_and(|t| t == Path::new(suite)) => continue,
            _ => {}
        }
        let tmp = crate::fetch::temp_path(&link);
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(suite, &tmp).map_err(io_err(&tmp))?;
        std::fs::rename(&tmp, &link).map_err(io_err(&link))?;
    }
    let Ok(entries) = std::fs::read_dir(&dists) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if e.file_type().is_ok_and(|t| t.is_symlink()) && !wanted.contains_key(&name) {
            let path = e.path();
            std::fs::remove_file(&path).map_err(io_err(&path))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `finish` waits for the thread, which a stop ends mid-pause (a test that hangs fails);
    /// one dropped unfinished ends on its own; neither minds a tree it cannot open.
    #[test]
    fn flushers_stop() {
        let dir = tempfile::tempdir().unwrap();
        Flusher::start(dir.path()).finish();
        drop(Flusher::start(dir.path()));
        Flusher::start(&dir.path().join("missing")).finish();
    }

    #[test]
    fn exchange_swaps_whole_directories() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("dists/stable");
        let staged = dir.path().join("staging/stable");
        std::fs::create_dir_all(&staged).unwrap();
        std::fs::write(staged.join("InRelease"), "one").unwrap();
        swap_in(&staged, &live).unwrap();
        assert_eq!(
            std::fs::read_to_string(live.join("InRelease")).unwrap(),
            "one"
        );
        assert!(!staged.exists());

        std::fs::create_dir_all(&staged).unwrap();
        std::fs::write(staged.join("InRelease"), "two").unwrap();
        swap_in(&staged, &live).unwrap();
        assert_eq!(
            std::fs::read_to_string(live.join("InRelease")).unwrap(),
            "two"
        );
        assert_eq!(
            std::fs::read_to_string(staged.join("InRelease")).unwrap(),
            "one"
        );
        barrier(dir.path()).unwrap();
    }

    #[test]
    fn aliases_follow_the_wanted_map() {
        let dir = tempfile::tempdir().unwrap();
        let dists = dir.path().join("dists");
        for d in ["bookworm", "trixie", "stable"] {
            std::fs::create_dir_all(dists.join(d)).unwrap();
        }
        std::fs::remove_dir(dists.join("stable")).unwrap();
        let map = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(a, s)| (a.to_string(), s.to_string()))
                .collect()
        };
        publish_aliases(dir.path(), &map(&[("stable", "bookworm")])).unwrap();
        assert_eq!(
            std::fs::read_link(dists.join("stable")).unwrap(),
            Path::new("bookworm")
        );
        publish_aliases(
            dir.path(),
            &map(&[
                ("stable", "trixie"),
                ("oldstable", "bookworm"),
                ("trixie", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(
            std::fs::read_link(dists.join("stable")).unwrap(),
            Path::new("trixie")
        );
        assert_eq!(
            std::fs::read_link(dists.join("oldstable")).unwrap(),
            Path::new("bookworm")
        );
        assert!(
            dists.join("trixie").is_dir(),
            "a real suite is never replaced"
        );
        publish_aliases(dir.path(), &map(&[])).unwrap();
        assert!(std::fs::symlink_metadata(dists.join("stable")).is_err());
        assert!(dists.join("bookworm").is_dir());
    }
}
