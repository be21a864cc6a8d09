//! Pool manifests: `.debsync/manifests/<sha256 of an index>`, the pool files that index lists
//! and the package of each, in a compact binary form.
//!
//! Parsing a 50 MB Packages costs a few hundred milliseconds; reading what an earlier run
//! learnt from the very same bytes costs a few. Manifests are keyed by the index's SHA256,
//! so a manifest can only ever describe the index it was made from; one that is missing,
//! truncated, malformed or of an older format is ignored and the index is parsed again.
//!
//! An entry: path length (`u16` LE), path, size (`u64` LE), SHA256 (32 bytes), then the
//! listing stanza's package as `name NUL arch NUL version` behind its `u16` length (0: the
//! stanza named none). A length of `u16::MAX` starts the trailer: entry count, `END.`.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::archive::{ArchivePath, FileRef, PackageId, Sha256};

const MAGIC: &[u8; 8] = b"DSMANIF2";
const END: &[u8; 4] = b"END.";
/// Read and write buffer: a few hundred system calls for a 60,000-entry manifest, and no
/// more resident memory than that while the planner holds a reader and a writer open.
const BUF_BYTES: usize = 64 * 1024;

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
pub(crate) fn read<E>(
    path: &Path,
    mut f: impl FnMut(FileRef, Option<PackageId<'_>>) -> Result<(), E>,
) -> Result<bool, E> {
    for_each_raw(path, |raw| {
        let (Some(p), Ok(id)) = (
            std::str::from_utf8(raw.path)
                .ok()
                .and_then(|s| ArchivePath::new(s).ok()),
            decode_id(raw.id),
        ) else {
            return Ok(false);
        };
        let file = FileRef {
            path: p,
            size: raw.size,
            sha256: Sha256(raw.sha256),
        };
        f(file, id).map(|()| true)
    })
}

/// Like [`read`], for the packages alone, each also as stored (`name NUL arch NUL version`,
/// what [`package_bytes`] makes of it): callers key those bytes instead of encoding the
/// package again. The paths are neither proven nor copied.
pub(crate) fn read_packages<E>(
    path: &Path,
    mut f: impl FnMut(&[u8], PackageId<'_>) -> Result<(), E>,
) -> Result<bool, E> {
    for_each_raw(path, |raw| match decode_id(raw.id) {
        Ok(Some(id)) => f(raw.id, id).map(|()| true),
        Ok(None) => Ok(true),
        Err(()) => Ok(false),
    })
}

/// Whether a manifest can store this package: fields holding NUL (the separator) or a total
/// too long for its `u16` length are left out, as if the stanza named no package.
pub(crate) fn storable(id: &PackageId<'_>) -> bool {
    let fields = [id.name, id.arch, id.version];
    !fields.iter().any(|s| s.contains('\0'))
        && fields.iter().map(|s| s.len()).sum::<usize>() + 3 < usize::from(u16::MAX)
}

/// A package as a manifest stores it, into `out`.
pub(crate) fn package_bytes(id: &PackageId<'_>, out: &mut Vec<u8>) {
    out.clear();
    for part in package_parts(id) {
        out.extend_from_slice(part);
    }
}

/// The stored form of a package, in the pieces [`Writer::push`] writes one after the other.
fn package_parts<'a>(id: &PackageId<'a>) -> [&'a [u8]; 5] {
    let [name, arch, version] = [id.name, id.arch, id.version].map(str::as_bytes);
    [name, b"\0", arch, b"\0", version]
}

/// An entry as read back for passes that only key its path: the path is UTF-8 but not proven
/// an [`ArchivePath`] again (it was one when written); whoever acts on a path proves it.
pub(crate) struct StoredEntry<'a> {
    pub path: &'a str,
    pub size: u64,
    pub sha256: Sha256,
}

/// Like [`read`], without proving or copying each path: several times faster.
pub(crate) fn read_stored<E>(
    path: &Path,
    mut f: impl FnMut(StoredEntry<'_>) -> Result<(), E>,
) -> Result<bool, E> {
    for_each_raw(path, |raw| match std::str::from_utf8(raw.path) {
        Ok(path) => f(StoredEntry {
            path,
            size: raw.size,
            sha256: Sha256(raw.sha256),
        })
        .map(|()| true),
        Err(_) => Ok(false),
    })
}

/// An entry as stored.
struct RawEntry<'b> {
    path: &'b [u8],
    size: u64,
    sha256: [u8; 32],
    id: &'b [u8],
}

/// Walks the entries of a manifest; `f` answers `Ok(false)` for an entry it finds malformed.
/// `Ok(false)` when the file is missing, of another format, truncated or malformed.
fn for_each_raw<E>(
    path: &Path,
    mut f: impl FnMut(RawEntry<'_>) -> Result<bool, E>,
) -> Result<bool, E> {
    let Ok(file) = File::open(path) else {
        return Ok(false);
    };
    let mut r = Pieces::new(file);
    if !r.ensure(MAGIC.len()) || &r.ahead()[..MAGIC.len()] != MAGIC {
        return Ok(false);
    }
    r.consume(MAGIC.len());
    let mut count = 0u64;
    loop {
        if !r.ensure(2) {
            return Ok(false);
        }
        let len = usize::from(le_u16(r.ahead()));
        if len == usize::from(u16::MAX) {
            // Trailer: the entry count, then END.
            if !r.ensure(2 + 8 + END.len()) {
                return Ok(false);
            }
            let trailer = &r.ahead()[2..];
            return Ok(le_u64(trailer) == count && &trailer[8..8 + END.len()] == END);
        }
        let (size_at, sha_at, id_len_at) = (2 + len, 2 + len + 8, 2 + len + 8 + 32);
        if !r.ensure(id_len_at + 2) {
            return Ok(false);
        }
        let id_at = id_len_at + 2;
        let end = id_at + usize::from(le_u16(&r.ahead()[id_len_at..]));
        if !r.ensure(end) {
            return Ok(false);
        }
        let bytes = &r.ahead()[..end];
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(&bytes[sha_at..id_len_at]);
        let entry = RawEntry {
            path: &bytes[2..size_at],
            size: le_u64(&bytes[size_at..]),
            sha256,
            id: &bytes[id_at..],
        };
        if !f(entry)? {
            return Ok(false);
        }
        r.consume(end);
        count += 1;
    }
}

/// A manifest read in large pieces, each entry parsed where it lies in the buffer: entries
/// are copied only when one straddles two reads.
struct Pieces {
    file: File,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Pieces {
    fn new(file: File) -> Pieces {
        Pieces {
            file,
            buf: vec![0; BUF_BYTES],
            start: 0,
            end: 0,
        }
    }

    /// At least `n` bytes ahead; `false` when the file ends (or cannot be read) first.
    fn ensure(&mut self, n: usize) -> bool {
        while self.end - self.start < n {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.buf.len() < n {
                self.buf.resize(n, 0);
            }
            match self.file.read(&mut self.buf[self.end..]) {
                Ok(0) => return false,
                Ok(got) => self.end += got,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        true
    }

    fn ahead(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
    }
}

/// The little-endian `u16` at the start of `b` (which holds at least 2 bytes).
fn le_u16(b: &[u8]) -> u16 {
    u16::from_le_bytes([b[0], b[1]])
}

/// The little-endian `u64` at the start of `b` (which holds at least 8 bytes).
fn le_u64(b: &[u8]) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[..8]);
    u64::from_le_bytes(x)
}

/// The stored package of an entry: `None` when none was stored, `Err` when it is malformed.
fn decode_id(raw: &[u8]) -> Result<Option<PackageId<'_>>, ()> {
    if raw.is_empty() {
        return Ok(None);
    }
    let text = std::str::from_utf8(raw).map_err(|_| ())?;
    let mut nuls = memchr::memchr_iter(0, raw);
    match (nuls.next(), nuls.next(), nuls.next()) {
        // NUL is ASCII: both are character boundaries.
        (Some(a), Some(v), None) => Ok(Some(PackageId {
            name: &text[..a],
            arch: &text[a + 1..v],
            version: &text[v + 1..],
        })),
        _ => Err(()),
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
        let mut out = BufWriter::with_capacity(BUF_BYTES, File::create(&tmp)?);
        out.write_all(MAGIC)?;
        Ok(Writer {
            out,
            tmp,
            dest,
            count: 0,
        })
    }

    pub(crate) fn push(&mut self, f: &FileRef, id: Option<PackageId<'_>>) -> io::Result<()> {
        let p = f.path.as_str().as_bytes();
        // ArchivePath caps paths at 1024 bytes, far below the u16 trailer marker.
        let len = u16::try_from(p.len()).map_err(io::Error::other)?;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(p)?;
        self.out.write_all(&f.size.to_le_bytes())?;
        self.out.write_all(&f.sha256.0)?;
        match id.filter(storable) {
            Some(id) => {
                let parts = package_parts(&id);
                // `storable` keeps the total below the trailer marker.
                let len = parts.iter().map(|p| p.len()).sum::<usize>() as u16;
                self.out.write_all(&len.to_le_bytes())?;
                for part in parts {
                    self.out.write_all(part)?;
                }
            }
            None => self.out.write_all(&0u16.to_le_bytes())?,
        }
        self.count += 1;
        Ok(())
    }

    pub(crate) fn finish(mut self) -> io::Result<()> {
        self.out.write_all(&u16::MAX.to_le_bytes())?;
        self.out.write_all(&self.count.to_le_bytes())?;
        self.out.write_all(END)?;
        self.out.flush()?;
        // Megabytes that the run's durability barrier would otherwise write all at once.
        crate::fetch::start_writeback(self.out.get_ref());
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
        let a = PackageId {
            name: "a",
            arch: "amd64",
            version: "1:2.0-1",
        };
        w.push(&entries[0], Some(a)).unwrap();
        w.push(&entries[1], None).unwrap();
        w.finish().unwrap();
        let mut back = Vec::new();
        let ok: Result<bool, ()> = read(&path(tree.path(), &idx), |f, id| {
            back.push((
                f,
                id.map(|id| format!("{} {} {}", id.name, id.arch, id.version)),
            ));
            Ok(())
        });
        assert!(ok.unwrap());
        assert_eq!(
            back,
            [
                (entries[0].clone(), Some("a amd64 1:2.0-1".to_string())),
                (entries[1].clone(), None)
            ]
        );

        // A manifest of the earlier format (no packages) is not read: the index is parsed.
        let bytes = std::fs::read(path(tree.path(), &idx)).unwrap();
        let mut older = bytes.clone();
        older[..8].copy_from_slice(b"DSMANIF1");
        std::fs::write(path(tree.path(), &idx), &older).unwrap();
        let ok: Result<bool, ()> = read(&path(tree.path(), &idx), |_, _| Ok(()));
        assert!(!ok.unwrap());

        for cut in [0, 5, 8, 20, bytes.len() - 1] {
            std::fs::write(path(tree.path(), &idx), &bytes[..cut]).unwrap();
            let ok: Result<bool, ()> = read(&path(tree.path(), &idx), |_, _| Ok(()));
            assert!(!ok.unwrap(), "cut {cut}");
        }
        let ok: Result<bool, ()> = read(&tree.path().join("none"), |_, _| Ok(()));
        assert!(!ok.unwrap());
        prune(tree.path(), &HashSet::new());
        assert!(!path(tree.path(), &idx).exists());
    }

    #[test]
    fn entries_across_read_boundaries() {
        // Several buffers' worth: entries straddle every refill at a different offset.
        let tree = tempfile::tempdir().unwrap();
        let idx = Sha256::digest(b"big");
        let mut w = Writer::create(tree.path(), &idx).unwrap();
        let files: Vec<FileRef> = (0..6000)
            .map(|i| {
                entry(&format!(
                    "pool/main/p/pkg{i}/{}_{i}.deb",
                    "x".repeat(i % 97)
                ))
            })
            .collect();
        for (i, f) in files.iter().enumerate() {
            let version = i.to_string();
            let id = PackageId {
                name: "pkg",
                arch: "amd64",
                version: &version,
            };
            w.push(f, (i % 5 != 0).then_some(id)).unwrap();
        }
        w.finish().unwrap();
        let big = std::fs::read(path(tree.path(), &idx)).unwrap();
        assert!(big.len() > 2 * BUF_BYTES, "several buffers' worth");
        let mut back = Vec::new();
        let ok: Result<bool, ()> = read(&path(tree.path(), &idx), |f, id| {
            back.push((f, id.map(|id| id.version.to_string())));
            Ok(())
        });
        assert!(ok.unwrap());
        assert_eq!(back.len(), files.len());
        for (i, (f, version)) in back.iter().enumerate() {
            assert_eq!(f, &files[i]);
            assert_eq!(
                version.as_deref(),
                (i % 5 != 0).then(|| i.to_string()).as_deref()
            );
        }
        let mut stored = Vec::new();
        let ok: Result<bool, ()> = read_packages(&path(tree.path(), &idx), |bytes, id| {
            let mut again = Vec::new();
            package_bytes(&id, &mut again);
            assert_eq!(bytes, &again[..]);
            stored.push(id.version.to_string());
            Ok(())
        });
        assert!(ok.unwrap());
        assert_eq!(stored.len(), files.len() - files.len() / 5);

        // Cut around each refill and inside the trailer: refused, never a panic.
        let mut cuts = vec![big.len() - 1, big.len() - 5, big.len() - 13];
        for k in 1..=big.len() / BUF_BYTES {
            cuts.extend((k * BUF_BYTES - 3)..(k * BUF_BYTES + 3));
        }
        for cut in cuts {
            std::fs::write(path(tree.path(), &idx), &big[..cut]).unwrap();
            let ok: Result<bool, ()> = read(&path(tree.path(), &idx), |_, _| Ok(()));
            assert!(!ok.unwrap(), "cut {cut}");
        }
    }
}
