//! The run lock: `<tree>/Archive-Update-in-Progress-<hostname>`, ftpsync's name, so tools that
//! watch for it (and admins used to it) keep working.
//!
//! `flock` does the exclusion, so a lock left by a killed process is free again the moment the
//! kernel closes its file; the pid inside is only for the "already running" message.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};

use super::SyncError;

/// Held for the whole run; dropping it removes the file and releases the lock.
pub(crate) struct RunLock {
    path: PathBuf,
    _file: File,
}

pub(crate) use crate::tree::{is_flag_name, lock_name};

/// Whether a sync holds the run lock of `tree` right now (any host name: the lock is ours
/// whatever the host is called today).
pub(crate) fn is_running(tree: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(tree) else {
        return false;
    };
    entries.flatten().any(|e| {
        e.file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(crate::tree::LOCK_PREFIX))
            && std::fs::File::open(e.path())
                .is_ok_and(|f| flock(&f, FlockOperation::NonBlockingLockShared).is_err())
    })
}

impl RunLock {
    pub(crate) fn acquire(tree: &Path, hostname: &str) -> Result<RunLock, SyncError> {
        let path = tree.join(lock_name(hostname));
        let io = |source| SyncError::Io {
            path: path.clone(),
            source,
        };
        // Loop because another process may unlink the file between our open and our flock;
        // a lock on an unlinked inode excludes nobody.
        for _ in 0..10 {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(io)?;
            if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                return Err(SyncError::Locked {
                    path: path.clone(),
                    pid: pid.trim().to_string(),
                });
            }
            let same = std::fs::metadata(&path)
                .ok()
                .zip(file.metadata().ok())
                .is_some_and(|(a, b)| a.ino() == b.ino() && a.dev() == b.dev());
            if !same {
                continue;
            }
            let mut old = String::new();
            let _ = file.read_to_string(&mut old);
            if !old.trim().is_empty() {
                tracing::warn!(
                    "{}: taking over stale lock of pid {} (process is gone)",
                    path.display(),
                    old.trim()
                );
            }
            file.set_len(0).map_err(io)?;
            file.rewind().map_err(io)?;
            writeln!(file, "{}", std::process::id()).map_err(io)?;
            return Ok(RunLock { path, _file: file });
        }
        Err(SyncError::Locked {
            path,
            pid: "unknown (lock file keeps changing)".into(),
        })
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Unlink while still holding the lock, so no one locks the old inode after us.
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_fails_and_names_pid() {
        let dir = tempfile::tempdir().unwrap();
        let first = RunLock::acquire(dir.path(), "host").unwrap();
        let err = RunLock::acquire(dir.path(), "host")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("already running"), "{err}");
        assert!(err.contains(&std::process::id().to_string()), "{err}");
        assert!(is_running(dir.path()));
        drop(first);
        assert!(!is_running(dir.path()));
        assert!(!dir.path().join(lock_name("host")).exists());
        let _again = RunLock::acquire(dir.path(), "host").unwrap();
    }

    #[test]
    fn stale_lock_file_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(lock_name("host")), "999999\n").unwrap();
        assert!(!is_running(dir.path()), "a lock file nobody holds");
        let _lock = RunLock::acquire(dir.path(), "host").unwrap();
        let pid = std::fs::read_to_string(dir.path().join(lock_name("host"))).unwrap();
        assert_eq!(pid.trim(), std::process::id().to_string());
    }
}
