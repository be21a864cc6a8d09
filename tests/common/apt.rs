//! The real `apt-get`, with a fully private configuration under one directory.
//!
//! `APT_CONFIG` points at our own `apt.conf`, which moves `Dir::Etc::Parts` to a private
//! directory before apt reads the system `apt.conf.d` (so no docker-clean hooks, proxies or
//! extra index targets leak in); the same settings are also given as `-o` options. Trust comes
//! only from `signed-by` (`Dir::Etc::Trusted*` are empty). `APT::Sandbox::User=root` because the
//! `_apt` user cannot read a keyring inside a private temp dir.
//!
//! Languages are apt's default (`LC_ALL=C`: Translation-en) unless [`Apt::with_languages`] says
//! otherwise. The `with_*` builders add what real clients add: the index targets apt-file,
//! appstream and command-not-found install into `/etc/apt/apt.conf.d` (copied from the Debian
//! bookworm packages, written into the private `apt.conf.d`), the d-i udeb index, pdiffs, and a
//! request log (`Debug::Acquire::http`) for [`AptOutput::requested_paths`].

use std::collections::BTreeSet;
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

    /// Lines (stdout) starting with `prefix`, e.g. `"Ign:"`.
    pub fn lines_starting(&self, prefix: &str) -> Vec<String> {
        self.stdout
            .lines()
            .filter(|l| l.starts_with(prefix))
            .map(str::to_string)
            .collect()
    }

    /// The `Ign:` items without their number, URL and size: `stable/main Translation-de`,
    /// so a run against the mirror compares with a control run against upstream.
    pub fn ign_set(&self) -> BTreeSet<String> {
        self.items("Ign:").into_iter().collect()
    }

    /// The `Get:` items in order, normalised like [`AptOutput::ign_set`]:
    /// `stable/main amd64 Packages`, `stable InRelease`.
    pub fn gets(&self) -> Vec<String> {
        self.items("Get:")
    }

    fn items(&self, prefix: &str) -> Vec<String> {
        self.lines_starting(prefix)
            .iter()
            .filter_map(|l| {
                let rest = l.split_once(' ')?.1; // drop "Get:3"
                let rest = rest.split_once(' ')?.1; // drop the URL
                let rest = match rest.rfind(" [") {
                    Some(i) if rest.ends_with(']') => &rest[..i],
                    _ => rest,
                };
                Some(rest.to_string())
            })
            .collect()
    }

    /// The paths apt's http method requested (needs [`Apt::with_request_log`]), in order,
    /// each once: `/dists/stable/InRelease`, `/debian/dists/…` through the mirror.
    pub fn requested_paths(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for l in self.stderr.lines().chain(self.stdout.lines()) {
            let Some(rest) = l.strip_prefix("GET ") else {
                continue;
            };
            let Some(path) = rest.strip_suffix(" HTTP/1.1") else {
                continue;
            };
            if !out.iter().any(|p| p == path) {
                out.push(path.to_string());
            }
        }
        out
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
            ("Acquire::Retries", "0".into()),
            ("Acquire::http::Pipeline-Depth", "0".into()),
            ("Acquire::Check-Valid-Until", "true".into()),
            ("Binary::apt::APT::Keep-Downloaded-Packages", "true".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let apt = Apt {
            dir: dir.to_path_buf(),
            options,
        };
        apt.write_conf();
        apt
    }

    fn write_conf(&self) {
        let conf: String = self
            .options
            .iter()
            .map(|(k, v)| format!("{k} \"{v}\";\n"))
            .collect();
        std::fs::write(self.dir.join("etc/apt.conf"), conf).unwrap();
    }

    /// Sets `key` (in the private `apt.conf` and as `-o`), replacing an earlier value.
    pub fn with_option(mut self, key: &str, value: &str) -> Apt {
        self.options.retain(|(k, _)| k != key);
        self.options.push((key.to_string(), value.to_string()));
        self.write_conf();
        self
    }

    /// `Acquire::Languages` (e.g. `"en"`, `"de"`); without it apt uses its default.
    pub fn with_languages(self, languages: &str) -> Apt {
        self.with_option("Acquire::Languages", languages)
    }

    /// `Acquire::PDiffs` (apt's default is true).
    pub fn with_pdiffs(self, on: bool) -> Apt {
        self.with_option("Acquire::PDiffs", if on { "true" } else { "false" })
    }

    /// `Debug::Acquire::http`: the http method logs each request (see
    /// [`AptOutput::requested_paths`]).
    pub fn with_request_log(self) -> Apt {
        self.with_option("Debug::Acquire::http", "true")
    }

    /// Writes `<etc>/apt.conf.d/<name>`: read after `apt.conf`, before the `-o` options.
    pub fn with_conf_part(self, name: &str, text: &str) -> Apt {
        std::fs::write(self.dir.join("etc/apt.conf.d").join(name), text).unwrap();
        self
    }

    /// apt-file's Contents targets (`50apt-file.conf`, with `Contents-udeb` enabled).
    pub fn with_apt_file(self) -> Apt {
        self.with_conf_part("50apt-file.conf", APT_FILE_CONF)
            .with_conf_part(
                "60debsync-apt-file",
                "Acquire::IndexTargets::deb::Contents-udeb::DefaultEnabled \"true\";\n",
            )
    }

    /// appstream's DEP-11 targets (`50appstream`), with the 64x64 icons enabled.
    pub fn with_appstream(self) -> Apt {
        self.with_conf_part("50appstream", APPSTREAM_CONF)
            .with_conf_part(
                "60debsync-appstream",
                "Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled \"true\";\n",
            )
    }

    /// command-not-found's target (`50command-not-found`), enabled (Debian ships it off).
    pub fn with_command_not_found(self) -> Apt {
        self.with_conf_part("50command-not-found", CNF_CONF)
            .with_conf_part(
                "60debsync-cnf",
                "Acquire::IndexTargets::deb::CNF::DefaultEnabled \"true\";\n",
            )
    }

    /// A d-i udeb index target, `$(COMPONENT)/debian-installer/binary-$(ARCHITECTURE)/Packages`.
    pub fn with_di_packages(self) -> Apt {
        self.with_conf_part("50debsync-di", DI_PACKAGES_CONF)
    }

    /// `apt-config dump` with this configuration (the same `APT_CONFIG` and `-o` options).
    pub fn config_dump(&self) -> String {
        let mut cmd = Command::new("/usr/bin/apt-config");
        cmd.env("APT_CONFIG", self.dir.join("etc/apt.conf"))
            .env("LC_ALL", "C");
        for (k, v) in &self.options {
            cmd.arg("-o").arg(format!("{k}={v}"));
        }
        cmd.arg("dump");
        let out = run_with_timeout(&mut cmd, COMMAND_TIMEOUT);
        assert!(out.status.success(), "apt-config dump: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// What `apt-config dump` shows for `key` (case-insensitive): the items of a list
    /// (`key:: "…"` lines) when it has any, else the plain value.
    pub fn config_values(&self, key: &str) -> Vec<String> {
        let want = key.to_ascii_lowercase();
        let (mut plain, mut items) = (Vec::new(), Vec::new());
        for l in self.config_dump().lines() {
            let Some((k, v)) = l.split_once(' ') else {
                continue;
            };
            let v = v.trim_end_matches(';').trim_matches('"').to_string();
            match k.to_ascii_lowercase() {
                k if k == want => plain.push(v),
                k if k.strip_suffix("::") == Some(want.as_str()) => items.push(v),
                _ => {}
            }
        }
        if items.is_empty() { plain } else { items }
    }

    /// The languages apt will fetch Translation files for, as `apt-config dump` reports them,
    /// without the `none` it always appends: `["en"]` by default under `LC_ALL=C`, `[]` for
    /// `Acquire::Languages "none"`.
    pub fn languages(&self) -> Vec<String> {
        self.config_values("Acquire::Languages")
            .into_iter()
            .filter(|l| !l.is_empty() && l != "none")
            .collect()
    }

    /// Moves the mtime of every file in apt's lists `secs` into the past: lists fetched
    /// that long ago, so the next `update` does not send an `If-Modified-Since` a server could
    /// answer with 304 when upstream changed within the same second.
    pub fn age_lists(&self, secs: u64) {
        for e in std::fs::read_dir(self.lists_dir()).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_file() {
                let f = std::fs::File::options()
                    .append(true)
                    .open(e.path())
                    .unwrap();
                let t = f.metadata().unwrap().modified().unwrap();
                f.set_modified(t - std::time::Duration::from_secs(secs))
                    .unwrap();
            }
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

/// The index targets of apt-file 3.3 (Debian bookworm), `/etc/apt/apt.conf.d/50apt-file.conf`.
pub const APT_FILE_CONF: &str = r#"Acquire::IndexTargets {
    deb::Contents-deb  {
        MetaKey "$(COMPONENT)/Contents-$(ARCHITECTURE)";
        ShortDescription "Contents-$(ARCHITECTURE)";
        Description "$(RELEASE)/$(COMPONENT) $(ARCHITECTURE) Contents (deb)";

        flatMetaKey "Contents-$(ARCHITECTURE)";
        flatDescription "$(RELEASE) Contents (deb)";
        PDiffs "true";
        KeepCompressed "true";
    };
    deb-src::Contents-dsc  {
        MetaKey "$(COMPONENT)/Contents-source";
        ShortDescription "Contents-source";
        Description "$(RELEASE)/$(COMPONENT) source Contents (dsc)";

        flatMetaKey "Contents-source";
        flatDescription "$(RELEASE) Contents (dsc)";
        PDiffs "true";
        KeepCompressed "true";
        DefaultEnabled "false";
    };
    deb::Contents-udeb  {
        MetaKey "$(COMPONENT)/Contents-udeb-$(ARCHITECTURE)";
        ShortDescription "Contents-udeb-$(ARCHITECTURE)";
        Description "$(RELEASE)/$(COMPONENT) $(ARCHITECTURE) Contents (udeb)";

        flatMetaKey "Contents-udeb-$(ARCHITECTURE)";
        flatDescription "$(RELEASE) Contents (udeb)";
        KeepCompressed "true";
        PDiffs "true";
        DefaultEnabled "false";
    };
    deb::Contents-deb-legacy {
        MetaKey "Contents-$(ARCHITECTURE)";
        ShortDescription "Contents-$(ARCHITECTURE)";
        Description "$(RELEASE) $(ARCHITECTURE) Contents (deb)";

        PDiffs "true";
        KeepCompressed "true";
        Fallback-Of "Contents-deb";
        Identifier "Contents-deb";
    };
};
"#;

/// The DEP-11 targets of appstream 0.16.1 (Debian bookworm), `50appstream`, without its
/// `APT::Update::Post-Invoke-Success` hook.
pub const APPSTREAM_CONF: &str = r#"Acquire::IndexTargets {
    deb::DEP-11  {
        MetaKey "$(COMPONENT)/dep11/Components-$(NATIVE_ARCHITECTURE).yml";
        ShortDescription "Components-$(NATIVE_ARCHITECTURE)";
        Description "$(RELEASE)/$(COMPONENT) $(NATIVE_ARCHITECTURE) DEP-11 Metadata";

        KeepCompressed "true";
        KeepCompressedAs "gz";
    };
    deb::DEP-11-icons-small  {
        MetaKey "$(COMPONENT)/dep11/icons-48x48.tar";
        ShortDescription "icons-48x48";
        Description "$(RELEASE)/$(COMPONENT) DEP-11 48x48 Icons";

        KeepCompressed "true";
        KeepCompressedAs "gz";
        DefaultEnabled "false";
    };
    deb::DEP-11-icons  {
        MetaKey "$(COMPONENT)/dep11/icons-64x64.tar";
        ShortDescription "icons-64x64";
        Description "$(RELEASE)/$(COMPONENT) DEP-11 64x64 Icons";

        KeepCompressed "true";
        KeepCompressedAs "gz";
        DefaultEnabled "false";
    };
};
"#;

/// The target of command-not-found 23.04.0 (Debian bookworm), `50command-not-found`, without
/// its `APT::Update::Post-Invoke-Success` hook.
pub const CNF_CONF: &str = r#"Acquire::IndexTargets {
    deb::CNF  {
        MetaKey "$(COMPONENT)/cnf/Commands-$(NATIVE_ARCHITECTURE)";
        ShortDescription "Commands-$(NATIVE_ARCHITECTURE)";
        Description "$(RELEASE)/$(COMPONENT) $(NATIVE_ARCHITECTURE) c-n-f Metadata";
        DefaultEnabled "no";
    };
};
"#;

/// The udeb index of a component, as debian-installer's tools read it.
pub const DI_PACKAGES_CONF: &str = r#"Acquire::IndexTargets {
    deb::DI-Packages  {
        MetaKey "$(COMPONENT)/debian-installer/binary-$(ARCHITECTURE)/Packages";
        ShortDescription "DI-Packages";
        Description "$(RELEASE)/$(COMPONENT) $(ARCHITECTURE) debian-installer Packages";
    };
};
"#;
