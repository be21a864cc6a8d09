//! What every reliability test shares: a served upstream archive with a mirror config, the
//! "served tree unchanged" and "converged" checks, two alternating archive generations, a
//! raw HTTP client for hammering `debsync serve`, and a server that streams endless bodies.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::common::*;

/// A binary package for `main`/`amd64` whose content is [`noise`] of its name and version.
pub fn package(name: &str, version: &str, len: usize) -> Package {
    Package {
        name: name.to_string(),
        version: version.to_string(),
        arch: "amd64".to_string(),
        component: "main".to_string(),
        content: noise(&format!("{name}_{version}"), len),
        filename: None,
        size_override: None,
        extra_fields: Vec::new(),
    }
}

pub const SUITE_DIR: &str = "dists/stable";
pub const PACKAGES: &str = "dists/stable/main/binary-amd64/Packages";
pub const PACKAGES_GZ: &str = "dists/stable/main/binary-amd64/Packages.gz";
pub const PACKAGES_XZ: &str = "dists/stable/main/binary-amd64/Packages.xz";
pub const INRELEASE: &str = "dists/stable/InRelease";
/// The package every fault test adds upstream before the faulty run.
pub const NEW: &str = "pool/main/n/newpkg/newpkg_1.0_amd64.deb";

impl Fixture {
    /// Four 4 KiB packages (`hello`, `libfoo1`, `tool`, `zed`), `edit`ed, built and served.
    pub fn new(edit: impl FnOnce(&mut TestArchive), extra_toml: &str) -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        Self::in_dir(tmp, edit, extra_toml)
    }

    /// Like [`Fixture::new`] in a given temp dir (the config's root is `<tmp>/root`).
    pub fn in_dir(
        tmp: tempfile::TempDir,
        edit: impl FnOnce(&mut TestArchive),
        extra_toml: &str,
    ) -> Fixture {
        let mut archive = TestArchive::new(tmp.path().join("upstream"));
        for name in ["hello", "libfoo1", "tool", "zed"] {
            archive.suites[0]
                .packages
                .push(package(name, "1.0-1", 4096));
        }
        edit(&mut archive);
        Fixture::from_archive(tmp, archive, extra_toml)
    }

    /// Upstream gains `newpkg` (a changed index and one new pool file).
    pub fn add_new_package(&mut self) {
        self.change(|a| a.suites[0].packages.push(package("newpkg", "1.0", 4096)));
        assert!(self.archive.path(NEW).is_file());
    }

    /// A sync that must fail: returns its `error:` line after checking it contains every
    /// needle, that the served tree is still `before`, and that no staging is left.
    pub fn assert_fails(&self, before: &BTreeMap<String, String>, needles: &[&str]) -> String {
        let out = self.sync();
        let stderr = assert_failure(&out);
        let line = error_line(&stderr);
        for n in needles {
            assert!(line.contains(n), "error line lacks {n:?}: {line}\n{stderr}");
        }
        assert_same_tree(before, &self.served());
        assert_no_staging(&self.tree());
        line
    }

    /// The next run against the (now healthy) upstream succeeds and the mirror equals it:
    /// same InRelease, same index files, every listed pool file, `verify` clean, and no
    /// staging or temp files left behind.
    pub fn assert_converges(&self) {
        let out = self.sync();
        assert_success(&out);
        assert_mirrors(self.archive.dir(), &self.archive, &self.tree());
        let v = self.verify();
        assert_success(&v);
        assert_no_staging(&self.tree());
    }
}

/// The mirror at `tree` holds what the archive at `upstream_dir` serves: InRelease, every
/// non-by-hash file under `dists/stable`, and every pool file of every package.
pub fn assert_mirrors(upstream_dir: &Path, archive: &TestArchive, tree: &Path) {
    let read = |p: &Path| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    assert_eq!(
        read(&tree.join(INRELEASE)),
        read(&upstream_dir.join(INRELEASE)),
        "InRelease converged"
    );
    for rel in archive::walk_files(&upstream_dir.join(SUITE_DIR)) {
        if rel.contains("by-hash/") {
            continue;
        }
        let up = upstream_dir.join(SUITE_DIR).join(&rel);
        let mine = tree.join(SUITE_DIR).join(&rel);
        assert!(mine.is_file(), "{} missing in the mirror", mine.display());
        assert_eq!(read(&mine), read(&up), "{rel} differs from upstream");
    }
    for p in &archive.suites[0].packages {
        let rel = p.filename();
        assert_eq!(
            std::fs::read(tree.join(&rel)).ok().as_deref(),
            Some(p.content.as_slice()),
            "{rel} in the mirror"
        );
    }
}

pub fn assert_no_staging(tree: &Path) {
    let staging = tree.join(".debsync/staging");
    assert!(
        !staging.exists(),
        "staging left behind: {:?}",
        archive::walk_files(&staging)
    );
}

/// Temp files (`.<name>.debsync-tmp`) anywhere under `tree/pool` and `tree/dists`.
pub fn temp_files(tree: &Path) -> Vec<String> {
    ["pool", "dists"]
        .iter()
        .flat_map(|top| {
            archive::walk_files(&tree.join(top))
                .into_iter()
                .map(move |p| format!("{top}/{p}"))
        })
        .filter(|p| p.ends_with(".debsync-tmp"))
        .collect()
}

/// The first line of stderr that starts with `error: ` (panics if none).
pub fn error_line(stderr: &str) -> String {
    stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no `error: ` line in stderr:\n{stderr}"))
        .to_string()
}

/// Replaces files of a suite after the build and signs a Release that lists them as they
/// now are (a garbage index with a correct signature, as a broken upstream would publish).
/// `files` are paths relative to `dists/<suite>/`.
pub fn resign_with(archive: &TestArchive, suite: &str, files: &[(&str, Vec<u8>)]) {
    let dir = format!("dists/{suite}");
    let release = String::from_utf8(archive.read(&format!("{dir}/Release"))).unwrap();
    let mut out = String::new();
    let mut section = "";
    for line in release.lines() {
        if !line.starts_with(' ') {
            section = line.trim_end_matches(':');
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        match files.iter().find(|(rel, _)| fields.get(2) == Some(rel)) {
            Some((rel, bytes)) => {
                let info = archive::FileInfo::of(bytes);
                let hash = if section == "MD5Sum" {
                    info.md5
                } else {
                    info.sha256
                };
                out.push_str(&format!(" {hash} {:>16} {rel}\n", info.size));
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    for (rel, bytes) in files {
        archive.write(&format!("{dir}/{rel}"), bytes);
    }
    archive.write(&format!("{dir}/Release"), out.as_bytes());
    archive.write(
        &format!("{dir}/InRelease"),
        archive.key().clearsign(&out).as_bytes(),
    );
    archive.write(
        &format!("{dir}/Release.gpg"),
        archive.key().detach_sign(out.as_bytes()).as_bytes(),
    );
}

/// The `SHA256:` entries of a Release text: path → (sha256, size).
pub fn release_sha256(text: &str) -> BTreeMap<String, (String, u64)> {
    let mut out = BTreeMap::new();
    let mut in_sha256 = false;
    for line in text.lines() {
        if !line.starts_with(' ') {
            in_sha256 = line.trim_end() == "SHA256:";
            continue;
        }
        if in_sha256 {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() == 3 {
                out.insert(f[2].to_string(), (f[0].to_string(), f[1].parse().unwrap()));
            }
        }
    }
    out
}

/// A GET over a fresh connection (`Connection: close`) with 10 s socket timeouts; returns
/// the status and the body (Content-Length or chunked framing). `Err` on any I/O failure.
pub fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, Vec<u8>), String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("write {path}: {e}"))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .map_err(|e| format!("read {path}: {e}"))?;
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("{path}: no header end"))?;
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    let mut body = raw[end + 4..].to_vec();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{path}: bad status line"))?;
    let header = |name: &str| {
        head.lines().find_map(|l| {
            l.strip_prefix(&format!("{name}:"))
                .map(|v| v.trim().to_string())
        })
    };
    if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        body = dechunk(&body).ok_or_else(|| format!("{path}: bad chunked body"))?;
    } else if let Some(len) = header("content-length").and_then(|v| v.parse::<usize>().ok())
        && body.len() != len
    {
        return Err(format!("{path}: body {} of {len} bytes", body.len()));
    }
    Ok((status, body))
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let nl = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..nl]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[nl + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// Bytes an [`EndlessServer`] produced for one path, shared with the test.
pub type Produced = Arc<AtomicU64>;

/// A static server over a directory where chosen paths answer `200` with a 2 GiB
/// `Content-Length` and a lazily generated body of zeros (nothing is held in memory), counting
/// how many body bytes it produced. Same lifecycle as the kit's `Upstream`.
pub struct EndlessServer {
    addr: SocketAddr,
    endless: Arc<std::sync::Mutex<Vec<(String, Produced)>>>,
    _server: ServerThread,
}

pub const ENDLESS_LEN: u64 = 2 << 30;

impl EndlessServer {
    /// Serves `root`; each `(url path, counter)` is endless.
    pub fn serve(root: &Path, endless: Vec<(String, Produced)>) -> EndlessServer {
        use axum::body::{Body, Bytes};
        use axum::extract::{Request, State};
        use axum::http::header;
        use axum::middleware::{self, Next};
        use axum::response::Response;
        use futures_util::stream;

        type Endless = Arc<std::sync::Mutex<Vec<(String, Produced)>>>;
        async fn handle(State(endless): State<Endless>, req: Request, next: Next) -> Response {
            let found = endless
                .lock()
                .unwrap()
                .iter()
                .find(|(p, _)| p == req.uri().path())
                .map(|(_, c)| c.clone());
            let Some(counter) = found else {
                return next.run(req).await;
            };
            const CHUNK: usize = 64 * 1024;
            let chunks = ENDLESS_LEN / CHUNK as u64;
            let body = stream::iter(0..chunks).map(move |_| {
                counter.fetch_add(CHUNK as u64, Ordering::Relaxed);
                Ok::<_, std::io::Error>(Bytes::from_static(&[0u8; CHUNK]))
            });
            Response::builder()
                .header(header::CONTENT_LENGTH, ENDLESS_LEN)
                .body(Body::from_stream(body))
                .unwrap()
        }
        use futures_util::StreamExt;

        let endless = Arc::new(std::sync::Mutex::new(endless));
        let app = axum::Router::new()
            .fallback_service(tower_http::services::ServeDir::new(root))
            .layer(middleware::from_fn_with_state(endless.clone(), handle));
        let server = ServerThread::spawn(app);
        EndlessServer {
            addr: server.addr,
            endless,
            _server: server,
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// From now on every path is served normally.
    pub fn heal(&self) {
        self.endless.lock().unwrap().clear();
    }
}

/// Two archive generations a test alternates between: B bumps every third package, drops
/// `onlya` and adds `onlyb`. `n` packages of `len` bytes each.
pub struct Generations {
    pub a: Vec<Package>,
    pub b: Vec<Package>,
}

impl Generations {
    pub fn new(n: usize, len: usize) -> Generations {
        let mut a = Vec::new();
        let mut b = Vec::new();
        for i in 0..n {
            let name = format!("pkg{i:02}");
            a.push(package(&name, "1.0", len));
            b.push(package(&name, if i % 3 == 0 { "2.0" } else { "1.0" }, len));
        }
        a.push(package("onlya", "1.0", len));
        b.push(package("onlyb", "1.0", len));
        Generations { a, b }
    }

    /// Makes upstream serve generation `b` (or `a`), rebuilt in place.
    pub fn publish(&self, archive: &mut TestArchive, b: bool) {
        archive.suites[0].packages = if b { self.b.clone() } else { self.a.clone() };
        archive.build();
    }
}
