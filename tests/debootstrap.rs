//! End to end with real packages: `debootstrap --variant=minbase bookworm` from a debsync mirror.
//!
//! 1. **download**: the real `.deb`s of a minbase bookworm (`tests/fixtures/minbase-bookworm.txt`,
//!    which says how it was made) with this machine's `apt-get download`, cached across runs in
//!    `$DEBSYNC_DEB_CACHE` (default `/var/cache/debsync-test-debs`) and checked against the
//!    SHA256 apt's lists give.
//! 2. **upstream**: a signed archive from them: `apt-ftparchive packages` with the archive's
//!    Priority/Section as overrides (debootstrap picks "Priority: required" from the index, and a
//!    `.deb`'s own control file may disagree with the archive), `apt-ftparchive release`, signed
//!    with the kit's test key; served by the kit's [`Upstream`] on 127.0.0.1.
//! 3. **sync**: `debsync sync` (suite bookworm), then `debsync verify`.
//! 4. **debootstrap**: `debsync serve` the mirror, `debootstrap --variant=minbase
//!    --keyring=<test key> bookworm <dir> http://127.0.0.1:<port>/debian/` to completion.
//! 5. **apt**: inside the new system, `apt-get update` against the mirror with the key as
//!    `signed-by`: no `W:`/`E:`/`Err:` line; `dpkg --audit` finds nothing half-installed.
//! 6. **edge cache** (before step 4, while upstream runs): the same debootstrap and apt run
//!    through a `[[cache]]` of the upstream; every `.deb` ends up in the cache, and the apt
//!    run is repeated with upstream stopped (served from the cache alone).
//!
//! Skips with a printed reason (not a failure) when not root or when `debootstrap`, `apt-get`
//! or `apt-ftparchive` is missing. Nothing here talks to a network host but 127.0.0.1, except
//! `apt-get download` filling a cold cache from the machine's configured Debian mirror.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::archive::{gzip, xz};
use common::*;

const MINBASE: &str = include_str!("fixtures/minbase-bookworm.txt");
const SUITE: &str = "bookworm";
const DEBOOTSTRAP_TIMEOUT: Duration = Duration::from_secs(600);

/// Written straight to the process's stderr, so it shows even when the harness captures output.
fn say(msg: &str) {
    let _ = writeln!(std::io::stderr(), "debootstrap e2e: {msg}");
}

#[test]
fn debootstrap_minbase_from_a_debsync_mirror() {
    if let Some(why) = skip_reason() {
        say(&format!("SKIPPED: {why}"));
        return;
    }
    if std::env::var_os("RUST_LOG").is_none() {
        // `debsync serve` inherits stderr, where its access log (info) would add a line per
        // .deb to every `cargo test`. SAFETY: the only test in this binary, set before it
        // starts any thread or child.
        unsafe { std::env::set_var("RUST_LOG", "warn") };
    }
    let mut phases = Phases::default();
    let tmp = tempfile::tempdir().unwrap();

    let names: Vec<&str> = MINBASE
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let debs = phases.run("download (apt-get, cached)", || fetch_debs(&names));

    let key = TestKey::shared();
    let keyring = tmp.path().join("keys/archive.gpg");
    key.write_keyring(&keyring);
    let upstream_dir = tmp.path().join("upstream");
    phases.run("build upstream (apt-ftparchive)", || {
        build_upstream(&upstream_dir, &debs, key)
    });
    let upstream = Upstream::serve(&upstream_dir);

    let config = write_config(
        &tmp.path().join("mirror"),
        &upstream.base_url(),
        &keyring,
        &format!("[[mirror]]\nsuites = [\"{SUITE}\"]"),
    );
    phases.run("debsync sync", || assert_success(&run_sync(&config)));
    phases.run("debsync verify", || {
        assert_success(&run_debsync(&[
            "verify",
            "--config",
            &config.to_string_lossy(),
        ]))
    });
    let mirror = mirror_dir(&tmp.path().join("mirror"));
    for deb in &debs {
        assert!(mirror.join(&deb.pool_path).is_file(), "{}", deb.pool_path);
    }
    phases.run("through the edge cache", || {
        through_the_cache(tmp.path(), upstream, &keyring, &debs)
    }); // From here on upstream is gone; only the mirror serves.

    let server = spawn_serve(&[
        "--config",
        &config.to_string_lossy(),
        "--listen",
        "127.0.0.1:0",
    ])
    .expect("debsync serve");
    let url = format!("{}{MIRROR_NAME}/", server.url);

    let target = Chroot::new(tmp.path().join("target"));
    phases.run("debootstrap --variant=minbase", || {
        debootstrap(&target.0, &keyring, &url)
    });
    phases.run("chroot apt-get update", || {
        chroot_apt_update(&target.0, &keyring, &url)
    });
    drop(target);
    phases.report();
}

/// Step 6: the same upstream through a `[[cache]]`: debootstrap through it (every `.deb` is
/// then in the cache), the new system's `apt-get update` through it, and again once upstream
/// is stopped: answered from the cache alone.
fn through_the_cache(dir: &Path, upstream: Upstream, keyring: &Path, debs: &[Deb]) {
    let root = dir.join("cache/root");
    let config = dir.join("cache/mirror.toml");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(
        &config,
        format!(
            "root = {root:?}\n[[cache]]\nname = \"edge\"\nupstream = \"{}\"\nkeyring = {keyring:?}\n",
            upstream.base_url()
        ),
    )
    .unwrap();
    let server = spawn_serve(&[
        "--config",
        &config.to_string_lossy(),
        "--listen",
        "127.0.0.1:0",
    ])
    .expect("debsync serve (cache)");
    let url = format!("{}edge/", server.url);
    let target = Chroot::new(dir.join("target-cache"));
    debootstrap(&target.0, keyring, &url);
    for deb in debs {
        let cached = root.join("edge").join(&deb.pool_path);
        assert!(cached.is_file(), "not cached: {}", deb.pool_path);
    }
    chroot_apt_update(&target.0, keyring, &url);
    drop(upstream);
    chroot_apt_update(&target.0, keyring, &url);
}

/// Why this machine cannot run the test, if it cannot.
fn skip_reason() -> Option<String> {
    if !rustix::process::geteuid().is_root() {
        return Some("not root (debootstrap needs root to chroot and create devices)".into());
    }
    for (tool, package) in [
        ("debootstrap", "debootstrap"),
        ("apt-get", "apt"),
        ("apt-cache", "apt"),
        ("apt-ftparchive", "apt-utils"),
        ("chroot", "coreutils"),
    ] {
        if which(tool).is_none() {
            return Some(format!("`{tool}` not found (install {package})"));
        }
    }
    None
}

fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// Wall-clock time of each phase, printed at the end (and as each one finishes).
#[derive(Default)]
struct Phases(Vec<(&'static str, Duration)>);

impl Phases {
    fn run<T>(&mut self, name: &'static str, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let out = f();
        let took = start.elapsed();
        say(&format!("{name}: {:.1} s", took.as_secs_f64()));
        self.0.push((name, took));
        out
    }

    fn report(&self) {
        let total: Duration = self.0.iter().map(|(_, d)| *d).sum();
        let mut text = String::from("phase times:\n");
        for (name, d) in &self.0 {
            text.push_str(&format!("  {name:<34} {:>6.1} s\n", d.as_secs_f64()));
        }
        text.push_str(&format!("  {:<34} {:>6.1} s", "total", total.as_secs_f64()));
        say(&text);
    }
}

// ---------------------------------------------------------------------------------------------
// 1. The real .debs
// ---------------------------------------------------------------------------------------------

/// One downloaded package.
struct Deb {
    name: String,
    /// In the machine-level cache.
    file: PathBuf,
    /// Where it goes in the test archive: `pool/main/<prefix>/<name>/<file as Debian names it>`.
    pool_path: String,
}

/// What `apt-get download --print-uris` says about one package.
struct Uri {
    url: String,
    file: String,
    size: u64,
    sha256: String,
}

fn cache_dir() -> PathBuf {
    std::env::var_os("DEBSYNC_DEB_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/debsync-test-debs"))
}

/// A system `apt-get`/`apt-cache` (this machine's lists), sandbox user root so it may write into
/// the cache, no proxies from the test environment.
fn system_apt(tool: &str, dir: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(tool);
    cmd.current_dir(dir)
        .env("LC_ALL", "C")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .args(["-q", "-o", "APT::Sandbox::User=root"])
        .args(args);
    run_with_timeout(&mut cmd, Duration::from_secs(600))
}

/// `apt-get download --print-uris`, with one `apt-get update` if the lists lack a package.
/// Run in an empty directory: apt prints nothing for a file already in its working directory.
fn print_uris(names: &[&str]) -> Vec<Uri> {
    let empty = tempfile::tempdir().unwrap();
    let cache = empty.path();
    let mut args = vec!["download", "--print-uris"];
    args.extend_from_slice(names);
    let mut out = system_apt("apt-get", cache, &args);
    if !out.status.success() {
        say("apt-get download --print-uris failed; running apt-get update once");
        assert_success(&system_apt("apt-get", cache, &["update"]));
        out = system_apt("apt-get", cache, &args);
    }
    assert_success(&out);
    let uris: Vec<Uri> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let url = parts.next()?.trim_matches('\'').to_string();
            let file = parts.next()?.to_string();
            let size = parts.next()?.parse().ok()?;
            let sha256 = parts.next()?.strip_prefix("SHA256:")?.to_ascii_lowercase();
            Some(Uri {
                url,
                file,
                size,
                sha256,
            })
        })
        .collect();
    assert_eq!(
        uris.len(),
        names.len(),
        "apt-get --print-uris answered for {} of {} packages:\n{}",
        uris.len(),
        names.len(),
        String::from_utf8_lossy(&out.stdout)
    );
    uris
}

fn cached_ok(path: &Path, uri: &Uri) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.len() == uri.size)
        && std::fs::read(path).is_ok_and(|b| sha256_hex(&b) == uri.sha256)
}

fn fetch_debs(names: &[&str]) -> Vec<Deb> {
    let cache = cache_dir();
    std::fs::create_dir_all(&cache)
        .unwrap_or_else(|e| panic!("create deb cache {}: {e}", cache.display()));
    let uris = print_uris(names);
    let missing: Vec<&str> = uris
        .iter()
        .filter(|u| !cached_ok(&cache.join(&u.file), u))
        .map(|u| u.file.split('_').next().unwrap())
        .collect();
    say(&format!(
        "{} packages, {} MB; {} cached in {}, {} to download",
        uris.len(),
        uris.iter().map(|u| u.size).sum::<u64>() / 1_000_000,
        uris.len() - missing.len(),
        cache.display(),
        missing.len()
    ));
    if !missing.is_empty() {
        for u in uris
            .iter()
            .filter(|u| missing.contains(&u.file.split('_').next().unwrap()))
        {
            let _ = std::fs::remove_file(cache.join(&u.file)); // a partial or stale copy
        }
        let mut args = vec!["download"];
        args.extend_from_slice(&missing);
        assert_success(&system_apt("apt-get", &cache, &args));
    }
    uris.iter()
        .map(|u| {
            let file = cache.join(&u.file);
            assert!(
                cached_ok(&file, u),
                "{}: size/SHA256 differ from apt's lists",
                file.display()
            );
            let name = u.file.split('_').next().unwrap().to_string();
            // The pool name is the URL's (no epoch, unlike apt-get download's `1%3a2.5`),
            // percent-decoded: `+` and `~` arrive as `%2b` and `%7e`.
            let pool_file = percent_encoding::percent_decode_str(u.url.rsplit('/').next().unwrap())
                .decode_utf8()
                .unwrap()
                .into_owned();
            let prefix = if name.starts_with("lib") && name.len() > 3 {
                &name[..4]
            } else {
                &name[..1]
            };
            Deb {
                pool_path: format!("pool/main/{prefix}/{name}/{pool_file}"),
                name,
                file,
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// 2. The upstream archive
// ---------------------------------------------------------------------------------------------

/// `package priority section` for every package, from this machine's apt lists.
fn overrides(debs: &[Deb], dir: &Path) -> String {
    let mut args = vec!["show", "--no-all-versions"];
    args.extend(debs.iter().map(|d| d.name.as_str()));
    let out = system_apt("apt-cache", dir, &args);
    assert_success(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    let mut fields: BTreeMap<String, (String, String)> = BTreeMap::new();
    for stanza in text.split("\n\n") {
        let get = |f: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(f)?.strip_prefix(':'))
                .map(|v| v.trim().to_string())
        };
        if let (Some(p), Some(prio), Some(sec)) = (get("Package"), get("Priority"), get("Section"))
        {
            fields.entry(p).or_insert((prio, sec));
        }
    }
    fields
        .iter()
        .map(|(p, (prio, sec))| format!("{p} {prio} {sec}\n"))
        .collect()
}

fn run_in(dir: &Path, program: &str, args: &[&str]) -> Vec<u8> {
    let mut cmd = Command::new(program);
    cmd.current_dir(dir).env("LC_ALL", "C").args(args);
    let out = run_with_timeout(&mut cmd, COMMAND_TIMEOUT);
    assert_success(&out);
    out.stdout
}

fn build_upstream(dir: &Path, debs: &[Deb], key: &TestKey) {
    for deb in debs {
        let dest = dir.join(&deb.pool_path);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        if std::fs::hard_link(&deb.file, &dest).is_err() {
            std::fs::copy(&deb.file, &dest).unwrap();
        }
    }
    let override_file = dir.join("override");
    std::fs::write(&override_file, overrides(debs, dir)).unwrap();
    let packages = run_in(
        dir,
        "apt-ftparchive",
        &["packages", "pool/main", "override"],
    );
    std::fs::remove_file(&override_file).unwrap();
    let stanzas = packages.windows(2).filter(|w| w == b"\n\n").count();
    assert_eq!(stanzas, debs.len(), "one Packages stanza per .deb");

    let dists = dir.join("dists").join(SUITE);
    let index = dists.join("main/binary-amd64");
    std::fs::create_dir_all(&index).unwrap();
    std::fs::write(index.join("Packages"), &packages).unwrap();
    std::fs::write(index.join("Packages.gz"), gzip(&packages)).unwrap();
    std::fs::write(index.join("Packages.xz"), xz(&packages)).unwrap();
    let opt = |k: &str, v: &str| format!("APT::FTPArchive::Release::{k}={v}");
    let release = run_in(
        &dists,
        "apt-ftparchive",
        &[
            "-o",
            &opt("Origin", "Debian"),
            "-o",
            &opt("Label", "Debian"),
            "-o",
            &opt("Suite", SUITE),
            "-o",
            &opt("Codename", SUITE),
            "-o",
            &opt("Architectures", "amd64"),
            "-o",
            &opt("Components", "main"),
            "-o",
            &opt("Description", "debsync debootstrap test"),
            "release",
            ".",
        ],
    );
    let release = String::from_utf8(release).unwrap();
    std::fs::write(dists.join("Release"), &release).unwrap();
    std::fs::write(dists.join("InRelease"), key.clearsign(&release)).unwrap();
    std::fs::write(
        dists.join("Release.gpg"),
        key.detach_sign(release.as_bytes()),
    )
    .unwrap();
}

// ---------------------------------------------------------------------------------------------
// 4–5. debootstrap and apt inside the result
// ---------------------------------------------------------------------------------------------

/// A debootstrap target. On drop, anything still mounted below it (debootstrap bind-mounts
/// `/dev` nodes in containers, and `/proc`, `/sys` for the second stage) is lazily unmounted
/// first; if something stays mounted, the directory is left alone rather than deleted through
/// a mount into the host.
struct Chroot(PathBuf);

impl Chroot {
    fn new(dir: PathBuf) -> Chroot {
        std::fs::create_dir_all(&dir).unwrap();
        Chroot(dir)
    }

    fn mounts_below(&self) -> Vec<String> {
        let me = self.0.to_string_lossy().into_owned();
        let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
            return Vec::new();
        };
        let mut below: Vec<String> = info
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(&format!("{me}/")) || *m == me)
            .map(str::to_string)
            .collect();
        below.sort_by_key(|m| std::cmp::Reverse(m.len()));
        below
    }
}

impl Drop for Chroot {
    fn drop(&mut self) {
        for m in self.mounts_below() {
            let _ = Command::new("umount").args(["-l", &m]).status();
        }
        let left = self.mounts_below();
        if left.is_empty() {
            let _ = std::fs::remove_dir_all(&self.0);
        } else {
            say(&format!(
                "leaving {} in place: still mounted below it: {left:?}",
                self.0.display()
            ));
        }
    }
}

fn without_proxies(cmd: &mut Command) -> &mut Command {
    for var in [
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "no_proxy",
        "ALL_PROXY",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("LC_ALL", "C")
        .env("DEBIAN_FRONTEND", "noninteractive")
}

fn output_text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn debootstrap(target: &Path, keyring: &Path, url: &str) {
    let mut cmd = Command::new(which("debootstrap").unwrap());
    without_proxies(&mut cmd).args([
        "--variant=minbase",
        &format!("--keyring={}", keyring.display()),
        SUITE,
        &target.to_string_lossy(),
        url,
    ]);
    let out = run_with_timeout(&mut cmd, DEBOOTSTRAP_TIMEOUT);
    if !out.status.success() {
        let log =
            std::fs::read_to_string(target.join("debootstrap/debootstrap.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(60).collect();
        panic!(
            "debootstrap failed: {}\n--- debootstrap.log (last 60 lines)\n{}",
            output_text(&out),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("I: Base system installed successfully."),
        "{}",
        output_text(&out)
    );
    assert!(target.join("usr/bin/apt-get").is_file());
    assert!(
        !target.join("debootstrap").exists(),
        "debootstrap left its work directory behind"
    );
}

fn chroot_apt_update(target: &Path, keyring: &Path, url: &str) {
    const KEY_IN_CHROOT: &str = "/etc/apt/keyrings/debsync-test.gpg";
    let key_path = target.join(KEY_IN_CHROOT.trim_start_matches('/'));
    std::fs::create_dir_all(key_path.parent().unwrap()).unwrap();
    std::fs::copy(keyring, &key_path).unwrap();
    // World-readable: apt fetches and verifies as the `_apt` user.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(
        target.join("etc/apt/sources.list"),
        format!("deb [signed-by={KEY_IN_CHROOT}] {url} {SUITE} main\n"),
    )
    .unwrap();

    // Forget the lists debootstrap left, so apt really fetches and verifies with `signed-by`.
    let lists = target.join("var/lib/apt/lists");
    for entry in std::fs::read_dir(&lists).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() && path.file_name().is_some_and(|n| n != "lock") {
            std::fs::remove_file(&path).unwrap();
        }
    }
    let url = url.trim_end_matches('/'); // as apt prints it
    let chroot = |args: &[&str]| {
        let mut cmd = Command::new(which("chroot").unwrap());
        without_proxies(&mut cmd).arg(target).args(args);
        run_with_timeout(&mut cmd, COMMAND_TIMEOUT)
    };
    let out = chroot(&["apt-get", "update"]);
    let text = output_text(&out);
    let problems: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("W:") || l.starts_with("E:") || l.starts_with("Err:"))
        .collect();
    assert!(
        out.status.success() && problems.is_empty(),
        "apt-get update in the chroot is not clean: {problems:#?}\n{text}"
    );
    for fetched in [
        format!("{url} {SUITE} InRelease"),
        format!("{url} {SUITE}/main amd64 Packages"),
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with("Get:") && l.contains(&fetched)),
            "apt did not fetch {fetched}:\n{text}"
        );
    }
    let out = chroot(&["apt-cache", "policy", "apt"]);
    assert_success(&out);
    let policy = String::from_utf8_lossy(&out.stdout);
    assert!(
        policy.contains(url),
        "apt's candidate is not from the mirror:\n{policy}"
    );
    let audit = chroot(&["dpkg", "--audit"]);
    assert_success(&audit);
    assert!(
        audit.stdout.is_empty(),
        "dpkg --audit: {}",
        output_text(&audit)
    );
}
