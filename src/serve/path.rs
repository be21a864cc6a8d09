//! URL path → filesystem path: the only place that makes that step.
//!
//! Two stages, each a type:
//! 1. [`SafePath::parse`] turns the raw, still percent-encoded request path into a list of
//!    decoded segments. It refuses `..` segments (encoded or not), backslashes, NUL and
//!    invalid escapes outright instead of normalising them, and reports private names (any
//!    segment starting with `.`) as not found. Empty and `.`
//!    segments collapse: apt asks a flat repository (`deb URL ./`) for `URL/./InRelease`, and
//!    a redirect built from a `SafePath` can never become `//host`.
//! 2. [`open_beneath`] opens the relative path under a tree with `openat2(RESOLVE_BENEATH)`, so
//!    the kernel refuses any resolution (a symlink, absolute or relative) that leaves the tree,
//!    and refuses a symlink that leads to a private name: what a path resolves to is checked,
//!    not only how it is spelled. The returned handle is what the response streams from: one
//!    open per request, so a directory swapped mid-response cannot mix two generations of the
//!    archive.

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use rustix::fs::{Mode, OFlags, ResolveFlags};

use crate::tree;

/// A file name that is never listed nor served: dot files (`.debsync/`, `.x.debsync-tmp`).
/// The sync lock (`Archive-Update-in-Progress-<host>`) is served, as ftpsync's is. The rule is the tree's (`crate::tree`), shared with the sync that writes them.
pub fn is_private(name: &str) -> bool {
    tree::is_private_name(name)
}

/// Why a request path is refused. `error.rs` maps it to a status; this module does not
/// depend on the HTTP layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// Malformed or traversing (`..`, `\`, NUL, bad escapes): `400`.
    Bad(&'static str),
    /// A private name: reported as absent, `404`.
    Private,
}

/// The rule for one decoded, non-empty path segment: no `/`, `\` or NUL in it, not `.` or
/// `..` (`400`), not private (`404`). Listings apply the same rule ([`is_listable`]).
fn check_name(name: &str) -> Result<(), PathError> {
    if name.contains(['/', '\\', '\0']) {
        return Err(PathError::Bad("encoded '/', '\\' or NUL in path"));
    }
    match name {
        ".." => Err(PathError::Bad("'..' segment in path")),
        // Never reached from `parse`, which skips `.` segments; a listing must not show it.
        "." => Err(PathError::Bad("'.' is no name")),
        s if is_private(s) => Err(PathError::Private),
        _ => Ok(()),
    }
}

/// Whether a directory entry may appear in a listing: exactly the names a request can name
/// (see [`check_name`]), so a listing never shows what would answer `400` or `404`.
pub fn is_listable(name: &str) -> bool {
    !name.is_empty() && check_name(name).is_ok()
}

/// A sanitised request path: decoded segments, none empty, none private, none `.`/`..`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafePath {
    segments: Vec<String>,
    trailing_slash: bool,
}

impl SafePath {
    /// Parses the raw request path (as on the request line, percent-encoded, without query).
    pub fn parse(raw: &str) -> Result<SafePath, PathError> {
        let rest = raw
            .strip_prefix('/')
            .ok_or(PathError::Bad("path must start with '/'"))?;
        let mut segments = Vec::new();
        for encoded in rest.split('/') {
            let bytes = decode(encoded)?;
            let seg = String::from_utf8(bytes).map_err(|_| PathError::Bad("path is not UTF-8"))?;
            // Empty and `.` segments are no step (see the module doc).
            if seg.is_empty() || seg == "." {
                continue;
            }
            check_name(&seg)?;
            segments.push(seg);
        }
        let trailing_slash = rest.is_empty() || rest.ends_with('/');
        Ok(SafePath {
            segments,
            trailing_slash,
        })
    }

    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    pub fn has_trailing_slash(&self) -> bool {
        self.trailing_slash
    }

    /// The same path without its first `n` segments (what is left under a mount prefix).
    pub fn skip(&self, n: usize) -> SafePath {
        SafePath {
            segments: self.segments.get(n..).unwrap_or_default().to_vec(),
            trailing_slash: self.trailing_slash,
        }
    }

    /// Relative filesystem path (`.` for the tree itself).
    pub fn to_rel_path(&self) -> PathBuf {
        rel_path(&self.segments)
    }

    /// Decoded, for display: `/a/b/` style.
    pub fn display(&self) -> String {
        let mut s = String::from("/");
        for seg in &self.segments {
            s.push_str(seg);
            s.push('/');
        }
        if !self.trailing_slash && !self.segments.is_empty() {
            s.pop();
        }
        s
    }

    /// Re-encoded URL path with a trailing slash: the target of a directory redirect.
    pub fn encoded_dir(&self) -> String {
        let mut s = String::from("/");
        for seg in &self.segments {
            s.push_str(&encode_segment(seg));
            s.push('/');
        }
        s
    }
}

/// Characters left as-is in an href segment. `:` is encoded so that a name like
/// `javascript:x` can never read as a scheme.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'+')
    .remove(b'@')
    .remove(b',')
    .remove(b'=');

/// Percent-encodes one path segment for use in an href or `Location`.
pub fn encode_segment(seg: &str) -> String {
    utf8_percent_encode(seg, SEGMENT).to_string()
}

/// [`encode_segment`] appending to `out` (no allocation).
pub fn push_encoded(out: &mut String, seg: &str) {
    for chunk in utf8_percent_encode(seg, SEGMENT) {
        out.push_str(chunk);
    }
}

/// The relative filesystem path of sanitised segments (`.` for none), allocated once.
pub(crate) fn rel_path(segments: &[String]) -> PathBuf {
    if segments.is_empty() {
        return PathBuf::from(".");
    }
    let len = segments.iter().map(|s| s.len() + 1).sum();
    let mut path = PathBuf::with_capacity(len);
    for s in segments {
        path.push(s);
    }
    path
}

/// Strict percent-decoding: `%` must be followed by two hex digits.
fn decode(s: &str) -> Result<Vec<u8>, PathError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .ok_or(PathError::Bad("truncated %-escape"))?;
            let hi = hex_val(hex[0]).ok_or(PathError::Bad("invalid %-escape"))?;
            let lo = hex_val(hex[1]).ok_or(PathError::Bad("invalid %-escape"))?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Opens the tree directory itself (`O_PATH`), the anchor for [`open_beneath`].
pub fn open_tree(tree: &Path) -> io::Result<OwnedFd> {
    rustix::fs::open(
        tree,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(io::Error::from)
}

/// How [`open_beneath`] opens the target.
#[derive(Debug, Clone, Copy)]
pub enum OpenMode {
    /// Readable handle (file contents or directory entries).
    Read,
    /// `O_PATH`: only good for `fstat` (used for symlinks in listings).
    Stat,
}

/// Opens `rel` under the tree anchored at `tree_fd`, refusing anything that resolves outside it
/// or to a private name.
///
/// Private names are unreachable by any path: `SafePath` refuses them in the request, and
/// symlinks cannot lead to them either (`pool/x -> ../.debsync/state.json`, a link to a
/// directory inside `.debsync/`, to a `.x.debsync-tmp` file or to the lock file). The common
/// case costs nothing extra: the first `openat2` refuses symlinks, so when it succeeds every
/// component is one of `rel`'s, checked here. Only a path through a symlink (a suite alias
/// `dists/stable -> bookworm`, `updates -> .`, `current -> 20230607`) is opened a second time
/// with symlinks allowed, and the path the kernel actually resolved is then checked
/// ([`resolved_in_tree`]).
///
/// Errors: `PermissionDenied` wrapping [`Escapes`] when resolution would leave the tree
/// (see [`is_escape`]), `NotFound` for a private name, otherwise the OS error (`NotFound`, …).
pub fn open_beneath(
    tree: &Path,
    tree_fd: &OwnedFd,
    rel: &Path,
    mode: OpenMode,
) -> io::Result<File> {
    let flags = match mode {
        // O_NONBLOCK: opening a FIFO must not block a worker thread; it is refused after fstat.
        OpenMode::Read => OFlags::RDONLY | OFlags::NOCTTY | OFlags::NONBLOCK | OFlags::CLOEXEC,
        OpenMode::Stat => OFlags::PATH | OFlags::CLOEXEC,
    };
    if has_private_component(rel) {
        return Err(private(rel));
    }
    match openat2_beneath(tree_fd, rel, flags, ResolveFlags::NO_SYMLINKS) {
        Ok(file) => Ok(file),
        Err(Open::Symlink) => open_through_symlinks(tree, tree_fd, rel, flags),
        Err(Open::NoOpenat2) => open_checked(tree, rel, flags),
        Err(Open::Failed(e)) => Err(e),
    }
}

/// Why [`openat2_beneath`] did not return a handle.
enum Open {
    /// `ELOOP`: a symlink on the way (with `NO_SYMLINKS`) or a symlink loop (without).
    Symlink,
    /// `ENOSYS`: a kernel older than 5.6.
    NoOpenat2,
    Failed(io::Error),
}

/// `openat2(RESOLVE_BENEATH | extra)`, retrying the lookups a concurrent rename spoiled.
fn openat2_beneath(
    tree_fd: &OwnedFd,
    rel: &Path,
    flags: OFlags,
    extra: ResolveFlags,
) -> Result<File, Open> {
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS | extra;
    // EAGAIN: a rename raced with the lookup (a sync swapping dists/); retrying is the contract.
    for _ in 0..8 {
        match rustix::fs::openat2(tree_fd, rel, flags, Mode::empty(), resolve) {
            Ok(fd) => return Ok(File::from(fd)),
            Err(rustix::io::Errno::AGAIN) => continue,
            Err(rustix::io::Errno::LOOP) => return Err(Open::Symlink),
            Err(rustix::io::Errno::XDEV) => return Err(Open::Failed(escapes(rel))),
            Err(rustix::io::Errno::NOSYS) => return Err(Open::NoOpenat2),
            Err(e) => return Err(Open::Failed(e.into())),
        }
    }
    Err(Open::Failed(io::Error::new(
        io::ErrorKind::Interrupted,
        format!("{}: lookup kept racing with renames", rel.display()),
    )))
}

/// The slow path of [`open_beneath`]: `rel` goes through at least one symlink.
///
/// A private resolved path is tried once more before it is refused: a sync's
/// `RENAME_EXCHANGE` of `dists/<suite>` moves the generation just opened into
/// `.debsync/staging/` for a moment, and the second open finds the new one.
fn open_through_symlinks(
    tree: &Path,
    tree_fd: &OwnedFd,
    rel: &Path,
    flags: OFlags,
) -> io::Result<File> {
    for _ in 0..2 {
        let file = match openat2_beneath(tree_fd, rel, flags, ResolveFlags::empty()) {
            Ok(file) => file,
            // A symlink loop: refused like a link leaving the tree.
            Err(Open::Symlink) => return Err(escapes(rel)),
            Err(Open::NoOpenat2) => return open_checked(tree, rel, flags),
            Err(Open::Failed(e)) => return Err(e),
        };
        match resolved_in_tree(tree, tree_fd, rel, &file) {
            Some(resolved) if !has_private_component(&resolved) => return Ok(file),
            _ => continue,
        }
    }
    Err(private(rel))
}

/// Where the open `file` sits in the tree, as the kernel resolved it: the `/proc/self/fd`
/// links of the file and of the tree, one stripped from the other. Without `/proc`, the
/// canonical path of `tree/rel`, trusted only if it names the same inode as `file`. `None`
/// when the answer is not certain (a rename moved things in between).
fn resolved_in_tree(tree: &Path, tree_fd: &OwnedFd, rel: &Path, file: &File) -> Option<PathBuf> {
    match (fd_path(tree_fd.as_fd()), fd_path(file.as_fd())) {
        (Ok(root), Ok(target)) => target.strip_prefix(root).ok().map(Path::to_path_buf),
        _ => canonical_in_tree(tree, rel, file),
    }
}

/// `readlink` of `/proc/self/fd/<fd>`, relative to a handle on `/proc/self/fd` opened once
/// (the process's fd table, shared by all threads): walking `/proc/self/fd/` for every
/// request cost more than the rest of the symlink check.
fn fd_path(fd: BorrowedFd<'_>) -> io::Result<PathBuf> {
    static PROC_SELF_FD: OnceLock<Option<OwnedFd>> = OnceLock::new();
    let dir = PROC_SELF_FD.get_or_init(|| {
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        rustix::fs::open("/proc/self/fd", flags, Mode::empty()).ok()
    });
    let dir = dir
        .as_ref()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "/proc/self/fd"))?;
    let target = rustix::fs::readlinkat(dir, fd.as_raw_fd().to_string(), Vec::new())?;
    Ok(PathBuf::from(OsString::from_vec(target.into_bytes())))
}

/// [`resolved_in_tree`] without `/proc`.
fn canonical_in_tree(tree: &Path, rel: &Path, file: &File) -> Option<PathBuf> {
    let root = std::fs::canonicalize(tree).ok()?;
    let target = std::fs::canonicalize(tree.join(rel)).ok()?;
    let (opened, named) = (file.metadata().ok()?, std::fs::metadata(&target).ok()?);
    if (opened.dev(), opened.ino()) != (named.dev(), named.ino()) {
        return None;
    }
    target.strip_prefix(root).ok().map(Path::to_path_buf)
}

/// Whether any component of a relative path is a private name (see [`is_private`]).
fn has_private_component(rel: &Path) -> bool {
    rel.components().any(|c| match c {
        // Lossy keeps a leading `.` or lock prefix as it is; request paths are UTF-8 anyway.
        Component::Normal(name) => is_private(&name.to_string_lossy()),
        _ => false,
    })
}

/// The inner error of a path that resolves to a private name: reported as absent.
#[derive(Debug)]
pub struct Private(PathBuf);

impl std::fmt::Display for Private {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: resolves to a private name", self.0.display())
    }
}

impl std::error::Error for Private {}

fn private(rel: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, Private(rel.to_path_buf()))
}

/// The inner error of a path that resolves outside its tree.
#[derive(Debug)]
pub struct Escapes(PathBuf);

impl std::fmt::Display for Escapes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: resolves outside the served tree", self.0.display())
    }
}

impl std::error::Error for Escapes {}

fn escapes(rel: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, Escapes(rel.to_path_buf()))
}

/// Whether an error from [`open_beneath`] means "outside the tree".
pub fn is_escape(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<Escapes>())
}

/// Fallback for kernels without `openat2` (< 5.6): canonicalise, check containment, open the
/// canonical path. Racier than `openat2`, but the tree is written only by `debsync sync`.
fn open_checked(tree: &Path, rel: &Path, flags: OFlags) -> io::Result<File> {
    let root = std::fs::canonicalize(tree)?;
    let target = std::fs::canonicalize(tree.join(rel))?;
    let Ok(inside) = target.strip_prefix(&root) else {
        return Err(escapes(rel));
    };
    if has_private_component(inside) {
        return Err(private(rel));
    }
    rustix::fs::open(&target, flags, Mode::empty())
        .map(File::from)
        .map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! ok {
        ($raw:expr, [$($seg:expr),*], $slash:expr) => {{
            let p = SafePath::parse($raw).unwrap_or_else(|e| panic!("{:?}: {e:?}", $raw));
            let want: Vec<String> = vec![$($seg.to_string()),*];
            assert_eq!(p.segments(), &want[..], "{:?}", $raw);
            assert_eq!(p.has_trailing_slash(), $slash, "{:?}", $raw);
        }};
    }
    macro_rules! bad {
        ($raw:expr) => {
            assert!(
                matches!(SafePath::parse($raw), Err(PathError::Bad(_))),
                "{:?} should be a bad path",
                $raw
            )
        };
    }
    macro_rules! hidden {
        ($raw:expr) => {
            assert!(
                matches!(SafePath::parse($raw), Err(PathError::Private)),
                "{:?} should be hidden",
                $raw
            )
        };
    }

    #[test]
    fn accepted() {
        ok!("/", [], true);
        ok!("/debian", ["debian"], false);
        ok!("/debian/", ["debian"], true);
        ok!("/debian//pool///main/", ["debian", "pool", "main"], true);
        ok!("//evil.example/x", ["evil.example", "x"], false);
        ok!("/a%20b/c%2Bd", ["a b", "c+d"], false);
        ok!(
            "/libstdc++6_13.2-1_amd64.deb",
            ["libstdc++6_13.2-1_amd64.deb"],
            false
        );
        ok!("/%F0%9F%98%80", ["😀"], false);
        ok!("/a..b/c.", ["a..b", "c."], false);
        ok!("/debian/./InRelease", ["debian", "InRelease"], false);
        ok!("/debian/%2e/./", ["debian"], true);
        ok!("/line%0Abreak", ["line\nbreak"], false);
    }

    #[test]
    fn refused() {
        bad!("");
        bad!("relative");
        bad!("/..");
        bad!("/../etc/passwd");
        bad!("/a/../../b");
        bad!("/%2e%2e/etc/passwd");
        bad!("/%2E%2E/etc");
        bad!("/.%2e/etc");
        bad!("/..%2f..%2fetc/passwd");
        bad!("/a%2fb");
        bad!("/a%5c..%5cb");
        bad!("/a\\..\\b");
        bad!("/a%00b");
        bad!("/a%zz");
        bad!("/a%2");
        bad!("/%ff%fe");
    }

    #[test]
    fn private_names_are_hidden() {
        hidden!("/.debsync/state.json");
        hidden!("/debian/.debsync/staging/x");
        hidden!("/debian/pool/.x.deb.debsync-tmp");
        hidden!("/debian/%2Edebsync/");
        hidden!("/.git");
    }

    /// A name is listed exactly when a request naming it (encoded as a listing's href is)
    /// gets past the parser.
    #[test]
    fn listable_names_are_the_fetchable_ones() {
        for (name, listable) in [
            ("hello_2.10-3_amd64.deb", true),
            ("libstdc++6", true),
            ("new\nline", true),
            ("😀", true),
            ("a..b", true),
            ("back\\slash", false),
            ("a\0b", false),
            ("a/b", false),
            (".", false),
            ("..", false),
            ("", false),
            (".debsync", false),
            (".x.deb.debsync-tmp", false),
            ("Archive-Update-in-Progress-host", true),
        ] {
            assert_eq!(is_listable(name), listable, "{name:?}");
            let fetchable = SafePath::parse(&format!("/{}", encode_segment(name)))
                .is_ok_and(|p| p.segments() == [name]);
            assert_eq!(listable, fetchable, "{name:?}");
        }
    }

    /// Property check over generated paths (no fuzzer needed to run it): whatever `parse`
    /// accepts has only safe segments, and its redirect form parses back to the same path.
    #[test]
    fn generated_paths_are_safe_or_refused() {
        const ALPHABET: &[&str] = &[
            "/",
            "//",
            ".",
            "..",
            "%2e",
            "%2E",
            "%2f",
            "%2F",
            "%5c",
            "\\",
            "%00",
            "%",
            "%zz",
            "a",
            "b.deb",
            "~",
            "+",
            ":",
            "%3A",
            "%C3%A9",
            "%ff",
            ".debsync",
            "Archive-Update-in-Progress-",
            " ",
            "%20",
            "?",
            "#",
        ];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let (mut accepted, mut refused) = (0, 0);
        for _ in 0..20_000 {
            let mut raw = String::from("/");
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            for i in 0..(x % 9) {
                raw.push_str(ALPHABET[((x >> (i * 5)) % ALPHABET.len() as u64) as usize]);
            }
            let Ok(p) = SafePath::parse(&raw) else {
                refused += 1;
                continue;
            };
            accepted += 1;
            for seg in p.segments() {
                assert!(
                    !seg.is_empty() && seg != "." && seg != "..",
                    "{raw:?} → {seg:?}"
                );
                assert!(!seg.contains(['/', '\\', '\0']), "{raw:?} → {seg:?}");
                assert!(!is_private(seg), "{raw:?} → {seg:?}");
            }
            assert!(!p.to_rel_path().is_absolute());
            let again = SafePath::parse(&p.encoded_dir()).unwrap();
            assert_eq!(again.segments(), p.segments(), "{raw:?}");
        }
        assert!(
            accepted > 1000 && refused > 1000,
            "{accepted} accepted, {refused} refused"
        );
    }

    #[test]
    fn display_and_redirects() {
        let p = SafePath::parse("//a%20b//c").unwrap();
        assert_eq!(p.display(), "/a b/c");
        assert_eq!(p.encoded_dir(), "/a%20b/c/");
        assert_eq!(p.skip(1).to_rel_path(), PathBuf::from("c"));
        assert_eq!(p.skip(5).to_rel_path(), PathBuf::from("."));
        assert_eq!(encode_segment("javascript:x"), "javascript%3Ax");
        assert_eq!(encode_segment("<a \"b\">\n"), "%3Ca%20%22b%22%3E%0A");
    }

    /// Links to private names and into private directories resolve to "not found" (the lock
    /// file is public); links between public names keep working. The temp dir above the tree is
    /// itself a dot name (`/tmp/.tmpXXXX`): only components inside the tree count.
    #[test]
    fn open_beneath_refuses_links_to_private_names() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        for f in [
            ".debsync/state.json",
            "pool/f",
            "pool/.f.debsync-tmp",
            "Archive-Update-in-Progress-h",
        ] {
            std::fs::create_dir_all(tree.join(f).parent().unwrap()).unwrap();
            std::fs::write(tree.join(f), b"x").unwrap();
        }
        for (link, target) in [
            ("pool/state", "../.debsync/state.json"),
            ("pool/private", "../.debsync"),
            ("pool/lock", "../Archive-Update-in-Progress-h"),
            ("pool/tmp", ".f.debsync-tmp"),
            ("pool/chain", "state"),
            ("pool/up", "."),
            ("alias", "pool"),
        ] {
            symlink(target, tree.join(link)).unwrap();
        }
        let fd = open_tree(&tree).unwrap();
        for (rel, ok) in [
            ("pool/f", true),
            ("alias/f", true),
            ("alias/up/up/f", true),
            ("pool/up", true),
            ("pool/state", false),
            ("pool/chain", false),
            ("pool/private", false),
            ("pool/private/state.json", false),
            ("alias/private/state.json", false),
            ("pool/lock", true),
            ("pool/tmp", false),
            (".debsync/state.json", false),
            ("Archive-Update-in-Progress-h", true),
        ] {
            let rel = Path::new(rel);
            for mode in [OpenMode::Read, OpenMode::Stat] {
                let r = open_beneath(&tree, &fd, rel, mode);
                assert_eq!(r.is_ok(), ok, "{rel:?} {mode:?}: {r:?}");
                if let Err(e) = r {
                    assert_eq!(e.kind(), io::ErrorKind::NotFound, "{rel:?}: {e}");
                }
            }
            // The fallbacks agree: without openat2, and without /proc.
            let flags = OFlags::RDONLY | OFlags::CLOEXEC;
            let r = open_checked(&tree, rel, flags);
            assert_eq!(r.is_ok(), ok, "{rel:?} without openat2: {r:?}");
            if let Ok(file) = File::open(tree.join(rel)) {
                let inside = canonical_in_tree(&tree, rel, &file).unwrap();
                assert_eq!(!has_private_component(&inside), ok, "{rel:?}: {inside:?}");
            }
        }
    }

    #[test]
    fn open_beneath_refuses_escaping_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        std::fs::create_dir_all(tree.join("pool")).unwrap();
        std::fs::write(tree.join("pool/f"), b"x").unwrap();
        std::fs::write(dir.path().join("secret"), b"s").unwrap();
        std::os::unix::fs::symlink("../secret", tree.join("up")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), tree.join("abs")).unwrap();
        std::os::unix::fs::symlink("pool/f", tree.join("inside")).unwrap();
        let fd = open_tree(&tree).unwrap();
        for (rel, ok) in [
            ("pool/f", true),
            ("inside", true),
            ("up", false),
            ("abs", false),
        ] {
            let r = open_beneath(&tree, &fd, Path::new(rel), OpenMode::Read);
            assert_eq!(r.is_ok(), ok, "{rel}: {r:?}");
            if !ok {
                let e = r.unwrap_err();
                assert!(is_escape(&e), "{rel}: {e}");
                // Through the fallback as well.
                let e2 = open_checked(&tree, Path::new(rel), OFlags::RDONLY | OFlags::CLOEXEC)
                    .unwrap_err();
                assert!(is_escape(&e2), "{rel}: {e2}");
            }
        }
    }
}
