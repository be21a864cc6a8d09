//! `Fixture`: one signed upstream archive served on `127.0.0.1:0`, a keyring holding its key,
//! a `mirror.toml`, and the runs and checks every sync-side suite shares. Each suite builds its
//! own sample archive and hands it to [`Fixture::from_archive`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::*;

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

impl Fixture {
    /// Builds `archive` (edited by the caller), serves it, writes its keyring and a config
    /// (`extra_toml` merged as [`write_config`] does).
    pub fn from_archive(
        tmp: tempfile::TempDir,
        mut archive: TestArchive,
        extra_toml: &str,
    ) -> Fixture {
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

    /// `debsync verify --config`.
    pub fn verify(&self) -> Output {
        run_debsync(&["verify", "--config", &self.config_str()])
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
