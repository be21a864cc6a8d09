//! The fixture every sync test starts from: a signed upstream archive served on
//! `127.0.0.1:0`, a keyring holding its key, a `mirror.toml`, and helpers to run
//! `debsync sync` and compare the served tree before and after.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// Size of every pool file the fixtures make.
pub const DEB_LEN: usize = 4096;

/// `pool/<component>/<prefix>/<name>/<name>_<version>_<arch>.deb`, as the kit lays it out.
pub fn pool_path(component: &str, name: &str, version: &str, arch: &str) -> String {
    let prefix = if name.starts_with("lib") && name.len() > 3 {
        &name[..4]
    } else {
        &name[..1]
    };
    let version = version.split_once(':').map_or(version, |(_, v)| v);
    format!("pool/{component}/{prefix}/{name}/{name}_{version}_{arch}.deb")
}

/// Adds a package whose content is [`noise`] of its name and version.
pub fn add(a: &mut TestArchive, name: &str, version: &str, arch: &str) {
    a.add_package(
        name,
        version,
        arch,
        "main",
        &noise(&format!("{name}_{version}"), DEB_LEN),
    );
}

pub const HELLO: &str = "pool/main/h/hello/hello_1.0-1_amd64.deb";
pub const DATA: &str = "pool/main/d/data/data_0.5_all.deb";
pub const LIBFOO: &str = "pool/main/libf/libfoo1/libfoo1_3.1_amd64.deb";

/// A signed archive with `hello` (amd64), `data` (arch all, epoch 2) and `libfoo1` (amd64).
pub fn sample_archive(dir: &Path) -> TestArchive {
    let mut a = TestArchive::new(dir.join("upstream"));
    add(&mut a, "hello", "1.0-1", "amd64");
    add(&mut a, "data", "2:0.5", "all");
    add(&mut a, "libfoo1", "3.1", "amd64");
    a.suite("stable").architectures.push("all".into());
    a
}

/// One upstream, one mirror config, one temp dir.
pub struct Fixture {
    pub tmp: tempfile::TempDir,
    pub archive: TestArchive,
    pub upstream: Upstream,
    pub keyring: PathBuf,
    pub config: PathBuf,
    /// A flat repository mirrored with `flat = true` ([`Fixture::flat`]).
    pub flat: bool,
}

pub const FLAT_HELLO: &str = "hello_1.0-1_amd64.deb";
pub const FLAT_DATA: &str = "data_0.5_all.deb";
pub const FLAT_LIBFOO: &str = "libfoo1_3.1_amd64.deb";

impl Fixture {
    /// [`sample_archive`], edited by `edit`, built and served; `extra_toml` is merged into the
    /// default config (see `write_config`).
    pub fn new(edit: impl FnOnce(&mut TestArchive), extra_toml: &str) -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let mut archive = sample_archive(tmp.path());
        edit(&mut archive);
        archive.build();
        let upstream = Upstream::serve(archive.dir());
        let keyring = tmp.path().join("keys/archive.gpg");
        archive.key().write_keyring(&keyring);
        let config = write_config(tmp.path(), &upstream.base_url(), &keyring, extra_toml);
        Fixture {
            tmp,
            archive,
            upstream,
            keyring,
            config,
            flat: false,
        }
    }

    /// A flat repository ([`TestArchive::new_flat`]) with the packages of [`sample_archive`]
    /// (pool files at its root: [`FLAT_HELLO`], [`FLAT_DATA`], [`FLAT_LIBFOO`]), edited by
    /// `edit`, built and served; the mirror has `flat = true` and no suites, components or
    /// architectures. `extra_toml` as for [`Fixture::new`].
    pub fn flat(edit: impl FnOnce(&mut TestArchive), extra_toml: &str) -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let mut archive = TestArchive::new_flat(tmp.path().join("upstream"));
        add(&mut archive, "hello", "1.0-1", "amd64");
        add(&mut archive, "data", "2:0.5", "all");
        add(&mut archive, "libfoo1", "3.1", "amd64");
        edit(&mut archive);
        archive.build();
        let upstream = Upstream::serve(archive.dir());
        let keyring = tmp.path().join("keys/archive.gpg");
        archive.key().write_keyring(&keyring);
        let config = write_config(tmp.path(), &upstream.base_url(), &keyring, extra_toml);
        let mut doc: toml::Table = std::fs::read_to_string(&config).unwrap().parse().unwrap();
        let mirror = doc["mirror"].as_array_mut().unwrap()[0]
            .as_table_mut()
            .unwrap();
        for key in ["suites", "components", "architectures"] {
            mirror.remove(key);
        }
        mirror.insert("flat".into(), true.into());
        std::fs::write(&config, toml::to_string(&doc).unwrap()).unwrap();
        Fixture {
            tmp,
            archive,
            upstream,
            keyring,
            config,
            flat: true,
        }
    }

    /// The mirror's tree, `<tmp>/root/debian`.
    pub fn tree(&self) -> PathBuf {
        mirror_dir(self.tmp.path())
    }

    pub fn config_str(&self) -> String {
        self.config.to_string_lossy().into_owned()
    }

    /// `debsync sync --config <config> <extra…>`.
    pub fn sync_with(&self, extra: &[&str]) -> Output {
        let config = self.config_str();
        let mut args = vec!["sync", "--config", &config];
        args.extend_from_slice(extra);
        run_debsync(&args)
    }

    pub fn sync(&self) -> Output {
        run_sync(&self.config)
    }

    /// Runs a sync that must succeed; returns its stdout.
    pub fn sync_ok(&self) -> String {
        let out = self.sync();
        assert_success(&out);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// What clients can see of the tree: [`snapshot_tree`] without private names (`.…`).
    pub fn served(&self) -> BTreeMap<String, String> {
        if self.flat {
            served_root_snapshot(&self.tree())
        } else {
            served_snapshot(&self.tree())
        }
    }

    /// Rebuilds upstream after `edit` (an "upstream changed" step).
    pub fn change(&mut self, edit: impl FnOnce(&mut TestArchive)) {
        edit(&mut self.archive);
        self.archive.build();
    }

    /// The refusal every bad-input test asserts: a sync fails, stderr is one `error:` line that
    /// contains every needle, and the served tree is exactly `before`. Returns stderr.
    pub fn assert_refused(&self, before: &BTreeMap<String, String>, needles: &[&str]) -> String {
        let out = self.sync();
        let stderr = assert_failure(&out);
        let error = stderr
            .lines()
            .find(|l| l.starts_with("error: "))
            .unwrap_or_else(|| panic!("no `error: ` line in stderr:\n{stderr}"));
        eprintln!("refused as expected: {error}");
        for n in needles {
            assert!(
                error.contains(n),
                "error line lacks {n:?}:\n{error}\n--- stderr\n{stderr}"
            );
        }
        assert_same_tree(before, &self.served());
        let state = self.state();
        assert_eq!(state["last_result"], "failed", "{state}");
        stderr
    }

    /// `.debsync/state.json`, parsed.
    pub fn state(&self) -> serde_json::Value {
        let p = self.tree().join(".debsync/state.json");
        let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
        serde_json::from_slice(&bytes).unwrap()
    }

    /// Spawns `debsync sync` without waiting (for lock tests); the caller kills or waits.
    pub fn spawn_sync(&self) -> Child {
        Command::new(debsync_bin())
            .args(["sync", "--config", &self.config_str()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Waits (bounded) until upstream has logged a request whose path ends with `suffix`.
    pub fn wait_for_request(&self, suffix: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.upstream.requests_to(suffix).is_empty() {
            assert!(
                Instant::now() < deadline,
                "no request to {suffix} within {timeout:?}; log: {:#?}",
                self.upstream.requests()
            );
            std::thread::yield_now();
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// The host name debsync puts in the lock and trace file names.
pub fn hostname() -> String {
    let uname = rustix::system::uname();
    let name = uname.nodename().to_string_lossy().into_owned();
    if name.is_empty() {
        "localhost".into()
    } else {
        name
    }
}
