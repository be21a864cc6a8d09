//! Pool manifests: `.debsync/manifests/<sha256 of an index>`, the pool files that index lists,
//! in a compact binary form.
//!
//! Parsing a 50 MB Packages costs a few hundred milliseconds; reading what an earlier run
//! learnt from the very same bytes costs a few. Manifests are keyed by the index's SHA256,
//! so a manifest can only ever describe the index it was made from; one that is missing,
//! truncated or malformed is ignored and the index is parsed again.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::archive::{ArchivePath, FileRef, Sha256};

const MAGIC: &[u8; 8] = b"DSMANIF1";
const END: &[u8; 4] = b"END.";

/// Where a pass reads manifests, and whether a parse leaves one behind for the next run.
#[derive(Clone, Copy)]
pub(crate) struct Manifests<'a> {
    pub tree: &'a Path,
    /// `false` for `debsync check`, which writes nothing under the mirror's root.
    pub write: bool,
}

impl Manifests<'_> {
    pub(crate) fn of_run(tree: &Path) -> Manifests<'_> {
        Manifests { tree, write: true }
    }

    pub(crate) fn read_only(tree: &Path) -> Manifests<'_> {
        Manifests { tree, write: false }
    }
}

pub(crate) fn dir(tree: &Path) -> PathBuf {
    crate::tree::manifests_dir(tree)
}

pub(crate) fn path(tree: &Path, index: &Sha256) -> PathBuf {
    dir(tree).join(index.to_hex())
}

/// Streams a manifest's entries to `f`. `Ok(false)` when there is no usable manifest; entries
/// may already have been passed to `f` then, so callers only use this where repeats are
/// harmless (set inserts that skip what they have seen).
pub(crate) fn read<E>(path: &Path, mut f: impl FnMut(FileRef) -> Result<(), E>) -> Result<bool, E> {
    let Ok(file) = File::open(path) else {
        return Ok(false);
    };
    let mut r = BufReader::with_capacity(256 * 1024, file);
    let mut magic = [0u8; 8];
    if r.read_exact(&mut magic).is_err() || &magic != MAGIC {
        return Ok(false);
    }
    let mut count = 0u64;
    let mut path_buf = Vec::with_capacity(256);
    loop {
        let mut len = [0u8; 2];
        if r.read_exact(&mut len).is_err() {
            return Ok(false);
        }
        let len = u16::from_le_bytes(len);
        if len == u16::MAX {
            // Trailer: the entry count, then END.
            let mut n = [0u8; 8];
            let mut end = [0u8; 4];
            if r.read_exact(&mut n).is_err() || r.read_exact(&mut end).is_err() {
                return Ok(false);
            }
            return Ok(u64::from_le_bytes(n) == count && &end == END);
        }
        path_buf.resize(usize::from(len), 0);
        let mut size = [0u8; 8];
        let mut sha = [0u8; 32];
        if r.read_exact(&mut path_buf).is_err()
            || r.read_exact(&mut size).is_err()
            || r.read_exact(&mut sha).is_err()
        {
            return Ok(false);
        }
        let Some(p) = std::str::from_utf8(&path_buf)
            .ok()
            .and_then(|s| ArchivePath::new(s).ok())
        else {
            return Ok(false);
        };
        f(FileRef {
            path: p,
            size: u64::from_le_bytes(size),
            sha256: Sha256(sha),
        })?;
        count += 1;
    }
}

/// Writes a manifest next to a parse; [`Writer::finish`] makes it visible atomically.
pub(crate) struct Writer {
    out: BufWriter<File>,
    tmp: PathBuf,
    dest: PathBuf,
    count: u64,
}

impl Writer {
    pub(crate) fn create(tree: &Path, index: &Sha256) -> io::Result<Writer> {
        std::fs::create_dir_all(dir(tree))?;
        let dest = path(tree, index);
        let tmp = crate::fetch::temp_path(&dest);
        let mut out = BufWriter::with_capacity(256 * 1024, File::create(&tmp)?);
        out.write_all(MAGIC)?;
        Ok(Writer {
            out,
            tmp,
            dest,
            count: 0,
        })
    }

    pub(crate) fn push(&mut self, f: &FileRef) -> io::Result<()> {
        let p = f.path.as_str().as_bytes();
        // ArchivePath caps paths at 1024 bytes, far below the u16 trailer marker.
        let len = u16::try_from(p.len()).map_err(io::Error::other)?;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(p)?;
        self.out.write_all(&f.size.to_le_bytes())?;
        self.out.write_all(&f.sha256.0)?;
        self.count += 1;
        Ok(())
    }

    pub(crate) fn finish(mut self) -> io::Result<()> {
        self.out.write_all(&u16::MAX.to_le_bytes())?;
        self.out.write_all(&self.count.to_le_bytes())?;
        self.out.write_all(END)?;
        self.out.flush()?;
        std::fs::rename(&self.tmp, &self.dest)
    }
}

/// Removes manifests of indices no longer live.
pub(crate) fn prune(tree: &Path, keep: &HashSet<Sha256>) {
    let Ok(entries) = std::fs::read_dir(dir(tree)) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let keep_it = name
            .to_str()
            .and_then(Sha256::from_hex)
            .is_some_and(|h| keep.contains(&h));
        if !keep_it {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(p: &str) -> FileRef {
        FileRef {
            path: ArchivePath::new(p).unwrap(),
            size: p.len() as u64,
            sha256: Sha256::digest(p.as_bytes()),
        }
    }

    #[test]
    fn round_trip_and_truncation() {
        let tree = tempfile::tempdir().unwrap();
        let idx = Sha256::digest(b"index");
        let mut w = Writer::create(tree.path(), &idx).unwrap();
        let entries = [entry("pool/a/a.deb"), entry("pool/b/b.deb")];
        for e in &entries {
            w.push(e).unwrap();
        }
        w.finish().unwrap();
        let mut back = Vec::new();
        let ok: Result<bool, ()> = read(&path(tree.path(), &idx), |f| {
            back.push(f);
            Ok(())
        });
        assert!(ok.unwrap());
        assert_eq!(back, entries);

        let bytes = std::fs::read(path(tree.path(), &idx)).unwrap();
        for cut in [0, 5, 8, 20, bytes.len() - 1] {
            std::fs::write(path(tree.path(), &idx), &bytes[..cut]).unwrap();
            let ok: Result<bool, ()> = read(&path(tree.path(), &idx), |_| Ok(()));
            assert!(!ok.unwrap(), "cut {cut}");
        }
        let ok: Result<bool, ()> = read(&tree.path().join("none"), |_| Ok(()));
        assert!(!ok.unwrap());
        prune(tree.path(), &HashSet::new());
        assert!(!path(tree.path(), &idx).exists());
    }
}
