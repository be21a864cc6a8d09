//! The atomic step: a staged `dists/<suite>` becomes live with one `renameat2(RENAME_EXCHANGE)`.
//!
//! A client sees either the old generation or the new one, never a mix: no moment exists
//! where InRelease is new and Packages old. The old generation lands in the staging path and is
//! deleted afterwards. A symlink in place of `dists/<suite>` is not an option: hardened web
//! servers refuse to follow them.

use std::path::Path;

use rustix::fs::{CWD, RenameFlags, renameat_with};

use super::{SyncError, io_err};

/// One durability barrier for everything written so far: pool files and staged indices reach
/// the disk before any index that names them can go live. `syncfs` flushes the filesystem in
/// one call, where an fsync per file would make a 60,000-file sync crawl.
pub fn barrier(tree: &Path) -> Result<(), SyncError> {
    let dir = std::fs::File::open(tree).map_err(io_err(tree))?;
    rustix::fs::syncfs(&dir).map_err(|e| SyncError::Io {
        path: tree.to_path_buf(),
        source: e.into(),
    })
}

/// Makes `staged` live at `live`, atomically. Afterwards `staged` holds the old generation
/// (or nothing, on a first run), which the caller removes.
pub fn swap_in(staged: &Path, live: &Path) -> Result<(), SyncError> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
