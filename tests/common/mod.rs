//! Shared integration-test kit. Include it with `mod common;` from a file in `tests/`.
//!
//! # A tour
//! - [`key`]: [`TestKey`], an OpenPGP key made in the test (clearsign, detached sign, keyrings).
//! - [`archive`]: [`TestArchive`], a real signed Debian archive in a directory, with knobs for
//!   every kind of broken archive and in-place rebuilds for "upstream changed" tests.
//! - [`shapes`]: real archive shapes on a [`Suite`] (Translation, Contents, DEP-11, cnf, udebs,
//!   installer, pdiffs, suite aliases, Debian security and Ubuntu layouts); [`pdiffs`]: dak's
//!   pdiffs across rebuilds; [`render`]: the formats and file helpers behind them.
//! - [`upstream`]: [`Upstream`], an HTTP server over a directory on `127.0.0.1:0` with run-time
//!   fault injection and a request log.
//! - [`apt`]: [`Apt`], the real `apt-get update`/`download` with a fully private configuration.
//! - This file: running the `debsync` binary with a timeout, writing `mirror.toml`, and
//!   snapshotting a tree for "nothing changed" asserts.
//!
//! A typical sync test:
//! ```ignore
//! let tmp = tempfile::tempdir().unwrap();
//! let mut archive = TestArchive::new(tmp.path().join("upstream"));
//! archive.add_package("hello", "1.0-1", "amd64", "main", b"hello deb");
//! archive.build();
//! let upstream = Upstream::serve(archive.dir());
//! let keyring = tmp.path().join("archive.gpg");
//! archive.key().write_keyring(&keyring);
//! let config = write_config(tmp.path(), &upstream.base_url(), &keyring, "");
//! let out = run_sync(&config);
//! assert_success(&out);
//! ```

#![allow(dead_code, unused_imports)]

pub mod apt;
pub mod archive;
pub mod fixture;
pub mod key;
pub mod pdiffs;
pub mod render;
pub mod shapes;
pub mod upstream;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use sha2::{Digest, Sha256};

pub use apt::{Apt, AptOutput};
pub use archive::{
    Package, ReleaseHashes, Shape, SourcePackage, Suite, TestArchive, rfc2822, rfc2822_from_now,
};
pub use fixture::{Fixture, hostname};
pub use key::TestKey;
pub use upstream::{Fault, FaultRule, PathMatch, RequestRecord, ServerThread, Upstream};

/// Name of the mirror [`write_config`] configures.
pub const MIRROR_NAME: &str = "debian";

/// How long a spawned `debsync` or `apt-get` may run before it is killed.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// Path of the `debsync` binary Cargo built for these tests.
pub fn debsync_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_debsync"))
}

/// Writes `<dir>/mirror.toml` and returns its path. Defaults: `root = "<dir>/root"`,
/// `[sync] retry_delay_ms = 0`, `upstream_update_wait_secs = 0` and
/// `upstream_update_retries = 0` (a file upstream lacks fails the run at once), one `[[mirror]]` named `debian` with `upstream`, suite
/// `stable`, component `main`, architecture `amd64`, `keyring = [keyring]`.
///
/// `extra_toml` is parsed and deep-merged over those defaults: tables merge key by key, and
/// `[[mirror]]` entries merge by position into the default mirror (further entries are added).
/// So `"[sync]\nretries = 0\n[[mirror]]\nsuites = [\"stable\", \"testing\"]"` works.
pub fn write_config(dir: &Path, upstream_url: &str, keyring: &Path, extra_toml: &str) -> PathBuf {
    let mut doc: toml::Table = toml::toml! {
        [sync]
        retry_delay_ms = 0
        upstream_update_wait_secs = 0
        upstream_update_retries = 0

        [[mirror]]
        suites = ["stable"]
        components = ["main"]
        architectures = ["amd64"]
    };
    doc.insert(
        "root".into(),
        toml::Value::String(dir.join("root").to_string_lossy().into_owned()),
    );
    let mirror = doc["mirror"].as_array_mut().unwrap()[0]
        .as_table_mut()
        .unwrap();
    mirror.insert("name".into(), MIRROR_NAME.into());
    mirror.insert("upstream".into(), upstream_url.into());
    mirror.insert(
        "keyring".into(),
        toml::Value::Array(vec![keyring.to_string_lossy().into_owned().into()]),
    );
    let extra: toml::Table = extra_toml
        .parse()
        .unwrap_or_else(|e| panic!("extra_toml does not parse: {e}\n{extra_toml}"));
    merge_toml(&mut doc, extra);
    let path = dir.join("mirror.toml");
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(&path, toml::to_string(&doc).unwrap()).unwrap();
    path
}

fn merge_toml(base: &mut toml::Table, extra: toml::Table) {
    for (k, v) in extra {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(e)) => merge_toml(b, e),
            (Some(toml::Value::Array(b)), toml::Value::Array(e)) if k == "mirror" => {
                for (i, item) in e.into_iter().enumerate() {
                    match (b.get_mut(i), item) {
                        (Some(toml::Value::Table(bt)), toml::Value::Table(et)) => {
                            merge_toml(bt, et)
                        }
                        (_, item) => b.push(item),
                    }
                }
            }
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// The tree of the mirror [`write_config`] configures: `<dir>/root/debian`.
pub fn mirror_dir(config_dir: &Path) -> PathBuf {
    config_dir.join("root").join(MIRROR_NAME)
}

/// Runs `debsync sync --config <config>` (with `RUST_LOG` unset unless the caller's
/// environment sets it), killed after [`COMMAND_TIMEOUT`].
pub fn run_sync(config: &Path) -> Output {
    run_debsync(&["sync", "--config", &config.to_string_lossy()])
}

/// Runs `debsync <args>`, killed after [`COMMAND_TIMEOUT`].
pub fn run_debsync(args: &[&str]) -> Output {
    let mut cmd = Command::new(debsync_bin());
    cmd.args(args);
    run_with_timeout(&mut cmd, COMMAND_TIMEOUT)
}

/// A running `debsync serve`, killed (SIGKILL) and reaped on drop.
pub struct DebsyncServer {
    /// `http://ADDR/` from the first stdout line (`listening on http://ADDR`).
    pub url: String,
    child: std::process::Child,
}

impl DebsyncServer {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for DebsyncServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawns `debsync serve <args>` (pass `--listen 127.0.0.1:0`) and waits up to 30 s for the
/// `listening on http://ADDR` line. Err (with stderr) if the process exits or prints something
/// else first. Stdout after the first line is drained and dropped; stderr is inherited.
pub fn spawn_serve(args: &[&str]) -> Result<DebsyncServer, String> {
    use std::io::BufRead;
    let mut child = Command::new(debsync_bin())
        .arg("serve")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("spawn debsync serve: {e}"))?;
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = std::io::BufReader::new(stdout).lines();
        let _ = tx.send(lines.next());
        for _ in lines {}
    });
    let first = rx.recv_timeout(Duration::from_secs(30));
    let fail = |mut child: std::process::Child, why: String| {
        let _ = child.kill();
        let status = child.wait();
        Err(format!("debsync serve {args:?}: {why} (exit {status:?})"))
    };
    match first {
        Ok(Some(Ok(line))) => match line.strip_prefix("listening on ") {
            Some(url) => Ok(DebsyncServer {
                url: format!("{}/", url.trim_end_matches('/')),
                child,
            }),
            None => fail(child, format!("unexpected first line {line:?}")),
        },
        Ok(_) => fail(child, "no output before stdout closed".into()),
        Err(_) => fail(child, "no `listening on` line within 30 s".into()),
    }
}

/// Runs `cmd` with piped stdout/stderr and no stdin; kills it (SIGKILL) and panics when it
/// runs longer than `timeout`.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let pid = child.id();
    let read_all = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    };
    let stdout = read_all(Box::new(child.stdout.take().unwrap()));
    let stderr = read_all(Box::new(child.stderr.take().unwrap()));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let status = match rx.recv_timeout(timeout) {
        Ok(status) => status.unwrap(),
        Err(_) => {
            if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
            let _ = rx.recv_timeout(Duration::from_secs(10));
            let err = String::from_utf8_lossy(&stderr.join().unwrap_or_default()).into_owned();
            panic!("{cmd:?} timed out after {timeout:?}; stderr:\n{err}");
        }
    };
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// Panics with both streams unless the command exited 0.
pub fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Panics unless the command failed; returns its stderr.
pub fn assert_failure(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "expected failure, exit 0\n--- stdout\n{}\n--- stderr\n{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

/// Every file (and symlink) under `dir/dists` and `dir/pool`: relative path →
/// SHA-256 hex of the bytes (`symlink -> <target>` for symlinks). For "tree unchanged" asserts.
pub fn snapshot_tree(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for top in ["dists", "pool"] {
        snapshot_walk(dir, &dir.join(top), &|_, _| false, &mut out);
    }
    out
}

/// Adds every file and symlink under `start` to `out`, keyed by its path relative to `tree`,
/// skipping entries (and whole directories) for which `skip(name, rel)` holds.
fn snapshot_walk(
    tree: &Path,
    start: &Path,
    skip: &dyn Fn(&str, &str) -> bool,
    out: &mut BTreeMap<String, String>,
) {
    let mut stack = vec![start.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            let path = e.path();
            let rel = path
                .strip_prefix(tree)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if skip(&name, &rel) {
                continue;
            }
            let ft = e.file_type().unwrap();
            if ft.is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                out.insert(rel, format!("symlink -> {}", target.display()));
            } else if ft.is_dir() {
                stack.push(path);
            } else {
                out.insert(rel, sha256_hex(&std::fs::read(&path).unwrap()));
            }
        }
    }
}

/// Deterministic, incompressible-looking bytes: `len` bytes seeded by `seed` (xorshift), so
/// pool files differ and truncate/reset faults cut them mid-body.
pub fn noise(seed: &str, len: usize) -> Vec<u8> {
    let mut state = seed.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    }) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// SHA-256 hex of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// [`snapshot_tree`] minus every path with a component starting with `.`: private names
/// (temp files of a failed download, replacements waiting for a swap) are never served.
pub fn served_snapshot(tree: &Path) -> BTreeMap<String, String> {
    snapshot_tree(tree)
        .into_iter()
        .filter(|(p, _)| !p.split('/').any(|c| c.starts_with('.')))
        .collect()
}

/// What clients can see of a whole tree, for a flat mirror whose root holds links and pool
/// files: like [`served_snapshot`], but every top-level name except `project/` (the trace
/// changes on every run) and the sync lock.
pub fn served_root_snapshot(tree: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let skip = |name: &str, rel: &str| {
        name.starts_with('.') || rel == "project" || name.starts_with("Archive-Update-in-Progress-")
    };
    snapshot_walk(tree, tree, &skip, &mut out);
    out
}

/// Panics with a readable diff unless two snapshots are equal.
pub fn assert_same_tree(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) {
    if before == after {
        return;
    }
    let mut diff = String::new();
    for (p, h) in before {
        match after.get(p) {
            None => diff.push_str(&format!("- {p}\n")),
            Some(h2) if h2 != h => diff.push_str(&format!("~ {p}\n")),
            _ => {}
        }
    }
    for p in after.keys().filter(|p| !before.contains_key(*p)) {
        diff.push_str(&format!("+ {p}\n"));
    }
    panic!("served tree changed:\n{diff}");
}
