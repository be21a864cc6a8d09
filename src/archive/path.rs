//! [`ArchivePath`]: a path taken from upstream data that is safe to join to a mirror's tree.
//!
//! Every `Filename:`, `Directory:` and Release entry passes through [`ArchivePath::new`] before
//! it touches the disk, so "nothing outside the root" is a property of the type, not of each
//! call site. Names starting with `.` are refused too: they are debsync's private namespace
//! (`.debsync/`, `.<file>.debsync-tmp`), and upstream must not be able to collide with it.

use std::fmt;
use std::path::Path;

/// A relative, normalised path: no empty, `.` or `..` components, no leading `/`, no
/// backslash, NUL or control characters, no component starting with `.`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ArchivePath(Box<str>);

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsafe path {path:?}: {reason}")]
pub struct PathError {
    pub path: String,
    pub reason: &'static str,
}

const MAX_PATH: usize = 1024;
const MAX_COMPONENT: usize = 255;

impl ArchivePath {
    pub fn new(path: &str) -> Result<ArchivePath, PathError> {
        let fail = |reason| {
            Err(PathError {
                path: path.chars().take(200).collect(),
                reason,
            })
        };
        if path.is_empty() {
            return fail("empty");
        }
        if path.len() > MAX_PATH {
            return fail("too long");
        }
        if path.starts_with('/') {
            return fail("absolute");
        }
        // One pass over the bytes: characters and component rules together.
        let bytes = path.as_bytes();
        let mut component_start = 0;
        for i in 0..=bytes.len() {
            let b = bytes.get(i).copied().unwrap_or(b'/');
            // C0, DEL and (as UTF-8 `C2 80`..`C2 9F`) C1 control characters.
            let c1 = b == 0xc2 && bytes.get(i + 1).is_some_and(|n| (0x80..=0x9f).contains(n));
            if b == b'\\' || b < 0x20 || b == 0x7f || c1 {
                return fail("backslash or control character");
            }
            if b != b'/' {
                continue;
            }
            let component = &bytes[component_start..i];
            match component {
                [] => return fail("empty component"),
                [b'.'] | [b'.', b'.'] => return fail("dot component"),
                [b'.', ..] => return fail("hidden component"),
                c if c.len() > MAX_COMPONENT => return fail("component too long"),
                _ => {}
            }
            component_start = i + 1;
        }
        Ok(ArchivePath(path.into()))
    }

    /// A path as an index may spell it relative to the repository root: a flat repository
    /// made with `apt-ftparchive packages .` says `Filename: ./hello_1.0_amd64.deb`. Leading
    /// `./` are dropped (apt resolves the path against the same root); the rest must pass
    /// [`ArchivePath::new`].
    pub fn from_index(path: &str) -> Result<ArchivePath, PathError> {
        ArchivePath::new(strip_current_dir(path))
    }

    /// Joins two safe paths (`Directory:` + file name in Sources).
    pub fn join(&self, rest: &str) -> Result<ArchivePath, PathError> {
        ArchivePath::new(&format!("{}/{}", self.0, rest))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn as_path(&self) -> &Path {
        Path::new(&*self.0)
    }

    /// The last component.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// Everything before the last component, or `""`.
    pub fn parent(&self) -> &str {
        self.0.rsplit_once('/').map_or("", |(p, _)| p)
    }
}

/// `path` without its leading `./` (any number of them); `"./"` becomes `""`.
pub fn strip_current_dir(mut path: &str) -> &str {
    while let Some(rest) = path.strip_prefix("./") {
        path = rest;
    }
    path
}

impl fmt::Display for ArchivePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ArchivePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! safe {
        ($($p:expr),* $(,)?) => { $( assert!(ArchivePath::new($p).is_ok(), "{:?} should be safe", $p); )* };
    }
    macro_rules! unsafe_ {
        ($($p:expr),* $(,)?) => { $( assert!(ArchivePath::new($p).is_err(), "{:?} should be refused", $p); )* };
    }

    #[test]
    fn accepts_archive_paths() {
        safe!(
            "pool/main/h/hello/hello_2.10-3_amd64.deb",
            "main/binary-amd64/Packages.xz",
            "pool/main/libc/libc++/libc++1_14.0_amd64.deb",
            "pool/main/g/gcc-12/gcc-12_12.2.0-14+deb12u1_amd64.deb",
            "pool/non-free-firmware/f/firmware~1/x_1:2_all.deb",
            "a..b",
        );
    }

    #[test]
    fn index_paths_drop_a_leading_current_dir() {
        for (raw, want) in [
            ("./hello_1.0_amd64.deb", "hello_1.0_amd64.deb"),
            ("././amd64/x.deb", "amd64/x.deb"),
            ("pool/main/x.deb", "pool/main/x.deb"),
        ] {
            assert_eq!(ArchivePath::from_index(raw).unwrap().as_str(), want);
        }
    }

    #[test]
    fn refuses_escapes() {
        unsafe_!(
            "",
            "/etc/passwd",
            "../evil",
            "pool/../../evil",
            "pool/./x",
            "pool//x",
            "pool/x/",
            "pool\\x",
            "pool/x\0y",
            "pool/x\ny",
            "pool/x\u{85}y",
            "pool/x\u{9f}",
            ".debsync/state.json",
            "pool/.x.debsync-tmp",
            "..",
        );
        for p in ["./", "./../x", "./.x", "././", "./a/./b", "./a//b", "/./a"] {
            assert!(
                ArchivePath::from_index(p).is_err(),
                "{p:?} should be refused"
            );
        }
        let long = "a/".repeat(600);
        unsafe_!(&long, &"x".repeat(300));
    }

    #[test]
    fn parent_and_name() {
        let p = ArchivePath::new("pool/main/h/hello/hello.deb").unwrap();
        assert_eq!(p.file_name(), "hello.deb");
        assert_eq!(p.parent(), "pool/main/h/hello");
        assert_eq!(ArchivePath::new("x").unwrap().parent(), "");
    }
}
