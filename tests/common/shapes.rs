//! Real archive shapes for [`Suite`]: everything a signed Release lists besides
//! `Packages`/`Sources`, and the Debian security and Ubuntu layouts. Every knob is off by
//! default, so an archive without them is byte-for-byte what the kit always wrote.
//!
//! Shapes follow deb.debian.org (bookworm, bookworm-updates, bookworm-security InRelease),
//! security.debian.org and archive.ubuntu.com:
//! - `i18n/Translation-<lang>`: `en` as `.xz`, other languages as `.bz2` (Ubuntu: `.xz`);
//! - `Contents-<arch>` and `Contents-udeb-<arch>` (`.gz`) per component (Ubuntu: one
//!   suite-level `Contents-<arch>.gz`, no udeb Contents), `path   section/package` lines;
//! - `dep11/Components-<arch>.yml` (`.gz`, `.xz`) and `dep11/icons-64x64.tar` (`.gz`);
//! - `cnf/Commands-<arch>` (`.xz`), as Ubuntu has (bookworm has none);
//! - `debian-installer/binary-<arch>/Packages` (`.gz`, `.xz`) with `.udeb`s in the pool;
//! - `installer-<arch>/<dated>/images/` with `MD5SUMS`/`SHA256SUMS` listed in Release, and
//!   `current` a symlink to the last dated dir (its SUMS listed too, like Debian);
//! - per-directory `Release` files (`binary-<arch>/Release`, `source/Release`);
//! - pdiffs: `<index>.diff/Index` in dak's merged format and the `diff --ed` patches, gzip'd.
//!
//! The uncompressed name of every index is listed in Release (and written only with
//! `write_uncompressed`): apt skips a target whose uncompressed name Release does not list.

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use md5::Md5;
use sha2::Digest;

use super::archive::{FileInfo, Package, Suite};
use super::render::*;

/// Which hash lists Release carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReleaseHashes {
    /// `MD5Sum` + `SHA256` (deb.debian.org).
    #[default]
    Debian,
    /// `SHA256` only (security.debian.org).
    Sha256Only,
    /// `MD5Sum` + `SHA1` + `SHA256` (archive.ubuntu.com).
    Ubuntu,
}

/// The real-archive knobs of one suite; see the module docs.
#[derive(Clone, Debug, Default)]
pub struct Shape {
    /// Languages of `i18n/Translation-<lang>` per component.
    pub translations: Vec<String>,
    pub contents: bool,
    pub dep11: bool,
    pub cnf: bool,
    /// `debian-installer/binary-<arch>/Packages` with one `<name>-udeb` per binary package.
    pub udebs: bool,
    /// Dated installer directories under `main/installer-<arch>/`; `current` links to the last.
    pub installer: Vec<String>,
    /// Keep a history of every index and write pdiffs for it on in-place rebuilds.
    pub pdiffs: bool,
    /// `binary-<arch>/Release`, `source/Release`, `debian-installer/binary-<arch>/Release`.
    pub dir_release: bool,
    /// Release `Components: updates/<c>` while files are listed and live under `<c>/`.
    pub security_layout: bool,
    /// Suite-level `Contents-<arch>`, no udeb Contents, Translation as `.xz`.
    pub ubuntu: bool,
    /// Write the suite in `dists/<codename>/` and make `dists/<name>` a symlink to it.
    pub alias_symlink: bool,
    pub hashes: ReleaseHashes,
}

impl Shape {
    /// Compressions of `Packages`/`Sources`: `.xz` only on security.debian.org, else `.gz` and
    /// `.xz`.
    pub fn index_compressions(&self) -> &'static [&'static str] {
        if self.security_layout {
            &["xz"]
        } else {
            &["gz", "xz"]
        }
    }
}

impl Suite {
    /// Every index deb.debian.org lists for a suite (plus `cnf/`): Translation-en/de,
    /// Contents, DEP-11, cnf, udebs, an installer (`20230607`, `20230607+deb12u5`, current),
    /// per-directory Release files, and `No-Support-for-Architecture-all: Packages` when the
    /// suite has `all`.
    pub fn with_full_indices(&mut self) -> &mut Suite {
        self.shape.translations = vec!["en".into(), "de".into()];
        self.shape.contents = true;
        self.shape.dep11 = true;
        self.shape.cnf = true;
        self.shape.udebs = true;
        self.shape.installer = vec!["20230607".into(), "20230607+deb12u5".into()];
        self.shape.dir_release = true;
        if self.architectures.iter().any(|a| a == "all") {
            self.extra_release_fields
                .push(("No-Support-for-Architecture-all".into(), "Packages".into()));
        }
        self
    }

    /// pdiffs on in-place rebuilds (see [`Shape::pdiffs`]).
    pub fn with_pdiffs(&mut self) -> &mut Suite {
        self.shape.pdiffs = true;
        self
    }

    /// `dists/<codename>` is the directory, `dists/<name>` a symlink to it.
    pub fn with_alias_symlink(&mut self) -> &mut Suite {
        assert_ne!(self.name, self.codename, "an alias needs a codename");
        self.shape.alias_symlink = true;
        self
    }

    /// security.debian.org: `Components: updates/main`, files under `main/`, SHA256 only,
    /// `Packages`/`Sources` as `.xz` only, Translation-en, Contents, by-hash, per-directory
    /// Release files.
    pub fn debian_security_layout(&mut self) -> &mut Suite {
        self.origin = "Debian".into();
        self.label = "Debian-Security".into();
        self.acquire_by_hash = true;
        self.shape.security_layout = true;
        self.shape.hashes = ReleaseHashes::Sha256Only;
        self.shape.translations = vec!["en".into()];
        self.shape.contents = true;
        self.shape.dir_release = true;
        self
    }

    /// archive.ubuntu.com: MD5Sum/SHA1/SHA256, no Valid-Until, suite-level
    /// `Contents-<arch>.gz`, Translation-en and `i18n/Index`, DEP-11, cnf, udebs, by-hash.
    pub fn ubuntu_layout(&mut self) -> &mut Suite {
        self.origin = "Ubuntu".into();
        self.label = "Ubuntu".into();
        self.valid_until = None;
        self.acquire_by_hash = true;
        self.shape.ubuntu = true;
        self.shape.hashes = ReleaseHashes::Ubuntu;
        self.shape.translations = vec!["en".into()];
        self.shape.contents = true;
        self.shape.dep11 = true;
        self.shape.cnf = true;
        self.shape.udebs = true;
        self.shape.dir_release = true;
        self
    }

    /// `NotAutomatic: yes` + `ButAutomaticUpgrades: yes` (Ubuntu/Debian backports).
    pub fn not_automatic(&mut self) -> &mut Suite {
        self.extra_release_fields
            .push(("NotAutomatic".into(), "yes".into()));
        self.extra_release_fields
            .push(("ButAutomaticUpgrades".into(), "yes".into()));
        self
    }

    /// The directory the suite is written to under `dists/`.
    pub fn dir_name(&self) -> &str {
        if self.shape.alias_symlink {
            &self.codename
        } else {
            &self.name
        }
    }
}

/// What one suite build writes, relative to its `dists/` directory.
#[derive(Default)]
pub(crate) struct Listing {
    /// Listed in Release: path → bytes.
    pub listed: BTreeMap<String, Vec<u8>>,
    /// Listed uncompressed variants: written only with `write_uncompressed`.
    pub plain: BTreeSet<String>,
    /// Listed paths reached through a symlink (`installer-*/current/…`): not written.
    pub through_symlink: BTreeSet<String>,
    /// Written, not listed (pdiff patches, installer images): path → bytes.
    pub unlisted: BTreeMap<String, Vec<u8>>,
    /// Symlinks: path → target.
    pub symlinks: BTreeMap<String, String>,
}

impl Listing {
    /// Lists `base` (uncompressed, a plain variant) and `base.<ext>` for each extension.
    pub fn add_index(&mut self, base: &str, plain: Vec<u8>, exts: &[&str]) {
        for ext in exts {
            let bytes = match *ext {
                "gz" => gzip(&plain),
                "xz" => xz(&plain),
                "bz2" => bzip2(&plain),
                other => panic!("unknown compression {other}"),
            };
            self.listed.insert(format!("{base}.{ext}"), bytes);
        }
        self.plain.insert(base.to_string());
        self.listed.insert(base.to_string(), plain);
    }
}

fn binary_packages<'a>(
    suite: &'a Suite,
    component: &'a str,
    arch: &'a str,
) -> impl Iterator<Item = &'a Package> + 'a {
    suite.packages.iter().filter(move |p| {
        p.component == component && (p.arch == arch || (p.arch == "all" && arch != "all"))
    })
}

/// The udebs of a suite with `udebs`: one `<name>-udeb` per non-`all` binary package.
pub fn udebs(suite: &Suite) -> Vec<Package> {
    if !suite.shape.udebs {
        return Vec::new();
    }
    let mut out = Vec::new();
    for p in suite.packages.iter().filter(|p| p.arch != "all") {
        let name = format!("{}-udeb", p.name);
        let filename = format!(
            "pool/{}/{}/{}/{name}_{}_{}.udeb",
            p.component,
            pool_prefix(&p.name),
            p.name,
            version_in_filename(&p.version),
            p.arch
        );
        out.push(Package {
            content: format!("udeb {name} {}\n", p.version)
                .repeat(16)
                .into_bytes(),
            name,
            filename: Some(filename),
            size_override: None,
            extra_fields: vec![("Section".into(), "debian-installer".into())],
            ..p.clone()
        });
    }
    out
}

/// Adds every shaped index of `suite` to `out`.
pub(crate) fn add_shaped(suite: &Suite, out: &mut Listing) {
    let shape = &suite.shape;
    let archs = suite_archs(suite);
    let udebs = udebs(suite);
    for component in &suite.components {
        let c = component.as_str();
        let mut i18n_index = String::new();
        for lang in &shape.translations {
            let mut text = String::new();
            for p in suite.packages.iter().filter(|p| p.component == c) {
                let desc = format!("test package {}\n", p.name);
                let md5 = hex::encode(Md5::digest(desc.as_bytes()));
                let n = &p.name;
                text.push_str(&format!(
                    "Package: {n}\nDescription-md5: {md5}\n\
                     Description-{lang}: test package {n} ({lang})\n {n}, translated.\n\n"
                ));
            }
            let exts: &[&str] = if lang == "en" || shape.ubuntu {
                &["xz"]
            } else {
                &["bz2"]
            };
            let base = format!("{c}/i18n/Translation-{lang}");
            i18n_index.push_str(&format!(
                " {} {:>8} Translation-{lang}\n",
                sha1_hex(text.as_bytes()),
                text.len()
            ));
            out.add_index(&base, text.into(), exts);
        }
        if shape.ubuntu && !shape.translations.is_empty() {
            // Ubuntu still lists the old `i18n/Index` (SHA1 of each Translation file).
            out.listed.insert(
                format!("{c}/i18n/Index"),
                format!("SHA1:\n{i18n_index}").into(),
            );
        }
        for arch in &archs {
            let a = arch.as_str();
            if shape.contents && !shape.ubuntu {
                let text = contents(binary_packages(suite, c, a), "misc");
                out.add_index(&format!("{c}/Contents-{a}"), text.into(), &["gz"]);
                let u = udebs.iter().filter(|p| p.component == c && p.arch == a);
                let text = contents(u, "debian-installer");
                out.add_index(&format!("{c}/Contents-udeb-{a}"), text.into(), &["gz"]);
            }
            if shape.dep11 && a != "all" {
                let (yml, icons) = dep11(suite, c, a);
                out.add_index(&format!("{c}/dep11/Components-{a}.yml"), yml, &["gz", "xz"]);
                out.add_index(&format!("{c}/dep11/icons-64x64.tar"), icons, &["gz"]);
            }
            if shape.cnf && a != "all" {
                let mut text = format!("suite: {}\ncomponent: {c}\narch: {a}\n\n", suite.name);
                for p in binary_packages(suite, c, a) {
                    let (n, v) = (&p.name, &p.version);
                    text.push_str(&format!("name: {n}\nversion: {v}\ncommands: {n}\n\n"));
                }
                out.add_index(&format!("{c}/cnf/Commands-{a}"), text.into(), &["xz"]);
            }
            if shape.udebs && a != "all" {
                let mut text = String::new();
                for p in udebs.iter().filter(|p| p.component == c && p.arch == a) {
                    text.push_str(&udeb_stanza(p));
                    text.push('\n');
                }
                let dir = format!("{c}/debian-installer/binary-{a}");
                out.add_index(&format!("{dir}/Packages"), text.into(), &["gz", "xz"]);
                dir_release(suite, out, &dir, c, a);
            }
            dir_release(suite, out, &format!("{c}/binary-{a}"), c, a);
            if c == "main" && a != "all" {
                installer(suite, out, a);
            }
        }
        if suite.with_sources {
            dir_release(suite, out, &format!("{c}/source"), c, "source");
        }
    }
    if shape.contents && shape.ubuntu {
        for a in &archs {
            let mut text = String::new();
            for c in &suite.components {
                let section = if c == "main" {
                    "misc".into()
                } else {
                    format!("{c}/misc")
                };
                text.push_str(&contents(binary_packages(suite, c, a), &section));
            }
            out.add_index(&format!("Contents-{a}"), text.into(), &["gz"]);
        }
    }
}

fn suite_archs(suite: &Suite) -> Vec<String> {
    let mut archs = suite.architectures.clone();
    archs.sort();
    archs.dedup();
    archs
}

/// dak's Contents: `path<spaces>section/package`, sorted by path, no header.
fn contents<'a>(packages: impl Iterator<Item = &'a Package>, section: &str) -> String {
    let mut lines = BTreeMap::new();
    for p in packages {
        let n = &p.name;
        lines.insert(format!("usr/share/doc/{n}/copyright"), n.clone());
        if p.arch != "all" {
            lines.insert(format!("usr/bin/{n}"), n.clone());
        }
    }
    lines
        .iter()
        .map(|(path, n)| format!("{path:<59} {section}/{n}\n"))
        .collect()
}

/// A DEP-11 document with one desktop-application per package, and the icons tarball.
fn dep11(suite: &Suite, c: &str, a: &str) -> (Vec<u8>, Vec<u8>) {
    let mut yml = format!(
        "---\nFile: DEP-11\nVersion: '0.16'\nOrigin: debsync-{}-{c}\n\
         MediaBaseUrl: https://appstream.test.invalid/media/pool\nPriority: 0\n",
        suite.codename
    );
    let mut icons = Vec::new();
    for p in binary_packages(suite, c, a) {
        let n = &p.name;
        yml.push_str(&format!(
            "---\nType: desktop-application\nID: org.test.{n}\nPackage: {n}\nName:\n  C: {n}\n\
             Summary:\n  C: test package {n}\nIcon:\n  cached:\n  - name: {n}_{n}.png\n    \
             width: 64\n    height: 64\nLaunchable:\n  desktop-id:\n  - {n}.desktop\n"
        ));
        icons.push((format!("{n}_{n}.png"), tiny_png()));
    }
    (yml.into_bytes(), tar(&icons))
}

fn udeb_stanza(p: &Package) -> String {
    let info = FileInfo::of(&p.content);
    format!(
        "Package: {}\nSource: {}\nVersion: {}\nInstalled-Size: 1\n\
         Maintainer: Debsync Tests <tests@test.invalid>\nArchitecture: {}\n\
         Description: test udeb {}\nSection: debian-installer\nPriority: standard\n\
         Filename: {}\nSize: {}\nMD5sum: {}\nSHA256: {}\n",
        p.name,
        p.name.trim_end_matches("-udeb"),
        p.version,
        p.arch,
        p.name,
        p.filename(),
        info.size,
        info.md5,
        info.sha256
    )
}

fn dir_release(suite: &Suite, out: &mut Listing, dir: &str, c: &str, a: &str) {
    if !suite.shape.dir_release {
        return;
    }
    let mut text = format!(
        "Archive: {}\nOrigin: {}\nLabel: {}\n",
        suite.name, suite.origin, suite.label
    );
    if suite.acquire_by_hash {
        text.push_str("Acquire-By-Hash: yes\n");
    }
    text.push_str(&format!("Component: {c}\nArchitecture: {a}\n"));
    out.listed.insert(format!("{dir}/Release"), text.into());
}

/// `main/installer-<arch>/<dated>/images/…` for every dated dir, `current` → the last.
fn installer(suite: &Suite, out: &mut Listing, a: &str) {
    let Some(last) = suite.shape.installer.last() else {
        return;
    };
    let base = format!("main/installer-{a}");
    for dated in &suite.shape.installer {
        let files: Vec<(String, Vec<u8>)> = [
            "cdrom/initrd.gz",
            "cdrom/vmlinuz",
            "netboot/mini.iso",
            "netboot/netboot.tar.gz",
        ]
        .iter()
        .map(|f| {
            (
                f.to_string(),
                format!("{dated} {a} {f}\n").repeat(32).into(),
            )
        })
        .collect();
        let (mut sha, mut md5) = (String::new(), String::new());
        for (f, bytes) in &files {
            let i = FileInfo::of(bytes);
            sha.push_str(&format!("{}  ./{f}\n", i.sha256));
            md5.push_str(&format!("{}  ./{f}\n", i.md5));
            out.unlisted
                .insert(format!("{base}/{dated}/images/{f}"), bytes.clone());
        }
        for (name, text) in [("MD5SUMS", md5), ("SHA256SUMS", sha)] {
            out.listed
                .insert(format!("{base}/{dated}/images/{name}"), text.clone().into());
            if dated == last {
                let rel = format!("{base}/current/images/{name}");
                out.through_symlink.insert(rel.clone());
                out.listed.insert(rel, text.into());
            }
        }
    }
    out.symlinks.insert(format!("{base}/current"), last.clone());
}

/// The upstream's traces, as a Debian push mirror has them: `master` (dak's, with the
/// `Archive serial: YYYYMMDDNN` of build `build`), the mirror's own `<host>` (ftpsync's),
/// `_hierarchy` (`<trace file> <mirror> <hub> <upstream>` per hop) and `_traces` (the names).
pub fn write_traces(root: &std::path::Path, host: &str, build: u32) {
    let now = SystemTime::now();
    let (y, mo, d, ..) = civil(now);
    let serial = format!("{y:04}{mo:02}{d:02}{:02}", build.min(99));
    let date = rfc2822(now).replace(" UTC", " +0000");
    let dir = root.join("project/trace");
    let master = format!(
        "{}\nDate: {date}\nArchive serial: {serial}\nCreator: dak\n\
         Running on host: ftp-master.test.invalid\n",
        ctime(now)
    );
    let own = format!(
        "{}\nDate: {date}\nDate-Started: {date}\nArchive serial: {serial}\n\
         Used ftpsync version: 20180513\nCreator: ftpsync 20180513\nRunning on host: {host}\n\
         Maintainer: Test Admins <admins@test.invalid>\nUpstream-mirror: ftp-master.test.invalid\n\
         SSL: false\nArchitectures: all amd64 source\nArchitectures-Configuration: ALL\n\
         Total bytes received in rsync: 4096\nTotal time spent in stage1 rsync: 1\n\
         Total time spent in stage2 rsync: 1\nTotal time spent in rsync: 2\n\
         Average rate: 2048 B/s\n",
        ctime(now)
    );
    let hierarchy = format!(
        "ftp-master.test.invalid ftp-master.test.invalid 1 \n\
         {host} {host} 1 ftp-master.test.invalid\n"
    );
    let mut names = ["_hierarchy", "_traces", host, "master"];
    names.sort_unstable();
    let traces: String = names.iter().map(|n| format!("{n}\n")).collect();
    for (name, text) in [
        ("master", master),
        (host, own),
        ("_hierarchy", hierarchy),
        ("_traces", traces),
    ] {
        write_file(&dir.join(name), text.as_bytes());
    }
}
