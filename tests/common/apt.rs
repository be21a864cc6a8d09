//! The real `apt-get`, with a fully private configuration under one directory.
//!
//! `APT_CONFIG` points at our own `apt.conf`, which moves `Dir::Etc::Parts` to an empty
//! directory before apt reads the system `apt.conf.d` (so no docker-clean hooks, proxies or
//! extra index targets leak in); the same settings are also given as `-o` options. Trust comes
//! only from `signed-by` (`Dir::Etc::Trusted*` are empty). `APT::Sandbox::User=root` because the
//! `_apt` user cannot read a keyring inside a private temp dir.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::{COMMAND_TIMEOUT, run_with_timeout};

/// A private apt setup for one source (`deb [signed-by=…] URL suite components`).
pub struct Apt {
    dir: PathBuf,
    options: Vec<(String, String)>,
}

/// The result of one apt-get run.
#[derive(Debug)]
pub struct AptOutput {
    pub output: Output,
    pub stdout: String,
    pub stderr: String,
}

impl AptOutput {
    /// Lines starting with `W:` or `E:` (or `Err:`) on stdout or stderr.
    pub fn problems(&self) -> Vec<String> {
        self.stdout
            .lines()
            .chain(self.stderr.lines())
            .filter(|l| l.starts_with("W:") || l.starts_with("E:") || l.starts_with("Err:"))
            .map(str::to_string)
            .collect()
    }

    /// Panics unless apt exited 0 with no `W:`/`E:`/`Err:` line.
    pub fn assert_clean(&self) -> &Self {
        let problems = self.problems();
        assert!(
            self.output.status.success() && problems.is_empty(),
            "apt-get not clean (exit {:?}): {problems:#?}\n--- stdout\n{}\n--- stderr\n{}",
            self.output.status,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Panics if apt exited 0 without any `W:`/`E:` line; returns the problem lines.
    pub fn assert_problem(&self) -> Vec<String> {
        let problems = self.problems();
        assert!(
            !self.output.status.success() || !problems.is_empty(),
            "apt-get unexpectedly clean\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        problems
    }
}

impl Apt {
    /// Prepares `<dir>/{etc,state,cache,download}` and a `sources.list` with
    /// `deb [signed-by=<keyring>] <url> <suite> <components…>` (architecture amd64).
    pub fn new(dir: &Path, url: &str, suite: &str, components: &[&str], keyring: &Path) -> Apt {
        Self::with_sources_line(
            dir,
            &format!(
                "deb [signed-by={}] {url} {suite} {}\n",
                keyring.display(),
                components.join(" ")
            ),
        )
    }

    /// Like [`Apt::new`] with arbitrary `sources.list` content (e.g. with `deb-src` lines).
    pub fn with_sources_line(dir: &Path, sources_list: &str) -> Apt {
        let etc = dir.join("etc");
        for d in [
            "etc/apt.conf.d",
            "etc/preferences.d",
            "etc/sources.list.d",
            "etc/trusted.gpg.d",
            "state/lists/partial",
            "cache/archives/partial",
            "log",
            "download",
        ] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        std::fs::write(dir.join("state/status"), "").unwrap();
        std::fs::write(etc.join("sources.list"), sources_list).unwrap();
        let p = |rel: &str| dir.join(rel).to_string_lossy().into_owned();
        let options: Vec<(String, String)> = [
            ("Dir::Etc", p("etc")),
            ("Dir::Etc::main", p("etc/apt.conf")),
            ("Dir::Etc::Parts", p("etc/apt.conf.d")),
            ("Dir::Etc::SourceList", p("etc/sources.list")),
            ("Dir::Etc::SourceParts", p("etc/sources.list.d")),
            ("Dir::Etc::Preferences", p("etc/preferences")),
            ("Dir::Etc::PreferencesParts", p("etc/preferences.d")),
            ("Dir::Etc::Trusted", p("etc/trusted.gpg")),
            ("Dir::Etc::TrustedParts", p("etc/trusted.gpg.d")),
            ("Dir::State", p("state")),
            ("Dir::State::lists", p("state/lists")),
            ("Dir::State::status", p("state/status")),
            ("Dir::Cache", p("cache")),
            ("Dir::Cache::archives", p("cache/archives")),
            ("Dir::Log", p("log")),
            ("APT::Architecture", "amd64".into()),
            ("APT::Architectures", "amd64".into()),
            ("APT::Sandbox::User", "root".into()),
            ("Debug::NoLocking", "1".into()),
            ("Acquire::Languages", "none".into()),
            ("Acquire::Retries", "0".into()),
            ("Acquire::http::Pipeline-Depth", "0".into()),
            ("Acquire::Check-Valid-Until", "true".into()),
            ("Binary::apt::APT::Keep-Downloaded-Packages", "true".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let conf: String = options
            .iter()
            .map(|(k, v)| format!("{k} \"{v}\";\n"))
            .collect();
        std::fs::write(etc.join("apt.conf"), conf).unwrap();
        Apt {
            dir: dir.to_path_buf(),
            options,
        }
    }

    /// Where `apt-get download` puts files (its working directory).
    pub fn download_dir(&self) -> PathBuf {
        self.dir.join("download")
    }

    /// Where `apt-get update` stores the fetched indices.
    pub fn lists_dir(&self) -> PathBuf {
        self.dir.join("state/lists")
    }

    /// Runs `apt-get <args>` with the private configuration, in [`Apt::download_dir`].
    pub fn run(&self, args: &[&str]) -> AptOutput {
        let mut cmd = Command::new("/usr/bin/apt-get");
        cmd.current_dir(self.download_dir())
            .env("APT_CONFIG", self.dir.join("etc/apt.conf"))
            .env("LC_ALL", "C")
            .env("DEBIAN_FRONTEND", "noninteractive");
        for var in [
            "http_proxy",
            "HTTP_PROXY",
            "https_proxy",
            "HTTPS_PROXY",
            "no_proxy",
        ] {
            cmd.env_remove(var);
        }
        for (k, v) in &self.options {
            cmd.arg("-o").arg(format!("{k}={v}"));
        }
        cmd.args(args);
        let output = run_with_timeout(&mut cmd, COMMAND_TIMEOUT);
        AptOutput {
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            output,
        }
    }

    /// `apt-get update`.
    pub fn update(&self) -> AptOutput {
        self.run(&["update"])
    }

    /// `apt-get download <package>`; returns the output and the downloaded `.deb` (if any).
    pub fn download(&self, package: &str) -> (AptOutput, Option<PathBuf>) {
        let out = self.run(&["download", package]);
        let prefix = format!("{package}_");
        let file = std::fs::read_dir(self.download_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                let name = p.file_name().unwrap().to_string_lossy();
                name.starts_with(&prefix) && name.ends_with(".deb")
            });
        (out, file)
    }

    /// `apt-get update` then `apt-get download <package>`, both asserted clean; returns the
    /// downloaded bytes.
    pub fn fetch_package(&self, package: &str) -> Vec<u8> {
        self.update().assert_clean();
        let (out, file) = self.download(package);
        out.assert_clean();
        let file = file.unwrap_or_else(|| panic!("apt-get download {package}: no .deb written"));
        std::fs::read(file).unwrap()
    }
}
