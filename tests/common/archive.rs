//! `TestArchive`: a real, signed Debian archive written into a directory.
//!
//! The model is plain data (suites → packages/sources + knobs) that test code mutates freely;
//! [`TestArchive::build`] renders it: pool files, `Packages`/`Sources` (plain, `.gz`, `.xz`),
//! optional `by-hash/SHA256/` copies, `Release` with MD5Sum/SHA256, `InRelease` and `Release.gpg`.
//!
//! Building again in the same directory is an in-place upstream update: files whose bytes did not
//! change are not rewritten (mtimes stay), pool files the previous build wrote and the new one
//! does not are deleted, stale files under `dists/<suite>/` are deleted, and old `by-hash/`
//! files are kept (like a real archive keeps by-hash generations).
//!
//! Knobs for bad archives live on [`Suite`] and [`Package`]; byte-level damage after signing is
//! done with [`TestArchive::corrupt`], [`TestArchive::tamper_inrelease`] and friends. Real
//! archive shapes (Translation, Contents, DEP-11, installer, pdiffs, aliases, the security and
//! Ubuntu layouts) are [`Suite::shape`], see [`super::shapes`].
//!
//! [`TestArchive::new_flat`] makes a flat repository instead (`deb URL ./`, see [`Suite::flat`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use md5::Md5;
use sha2::{Digest, Sha256};

use super::key::TestKey;
pub use super::pdiffs::PdiffLog;
pub use super::render::{
    gzip, pool_prefix, rfc2822, rfc2822_from_now, version_in_filename, walk_files, xz,
};
use super::render::{
    is_safe_relative, package_stanza, sha1_hex, source_stanza, write_file, write_if_changed,
};
use super::shapes::{Listing, add_shaped, udebs, write_traces};
pub use super::shapes::{ReleaseHashes, Shape};

/// One binary package (`.deb`) of a suite.
#[derive(Clone, Debug)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub arch: String,
    pub component: String,
    /// The bytes of the `.deb` (arbitrary bytes are fine: apt does not look inside on download).
    pub content: Vec<u8>,
    /// Overrides the `Filename:` field. When the value is a safe relative path the content is
    /// written there; otherwise (`../evil`, `/etc/passwd`) nothing is written.
    pub filename: Option<String>,
    /// Overrides the `Size:` field (the real size is used for hashing regardless).
    pub size_override: Option<u64>,
    /// Extra `Field: value` lines appended to the stanza.
    pub extra_fields: Vec<(String, String)>,
}

impl Package {
    /// The `Filename:` value: the override, or `pool/<component>/<prefix>/<name>/<name>_<version>_<arch>.deb`.
    pub fn filename(&self) -> String {
        self.filename.clone().unwrap_or_else(|| {
            format!(
                "pool/{}/{}/{}/{}_{}_{}.deb",
                self.component,
                pool_prefix(&self.name),
                self.name,
                self.name,
                version_in_filename(&self.version),
                self.arch
            )
        })
    }
}

/// One source package of a suite: files go to `pool/<component>/<prefix>/<name>/`.
#[derive(Clone, Debug)]
pub struct SourcePackage {
    pub name: String,
    pub version: String,
    pub component: String,
    /// (file name, bytes), e.g. `("hello_1.0-1.dsc", …)`.
    pub files: Vec<(String, Vec<u8>)>,
    /// Overrides `Directory:` (a flat repository's: `.`, as `apt-ftparchive sources .` says).
    pub directory: Option<String>,
}

impl SourcePackage {
    /// The override, or `pool/<component>/<prefix>/<name>`.
    pub fn directory(&self) -> String {
        if let Some(d) = &self.directory {
            return d.clone();
        }
        format!(
            "pool/{}/{}/{}",
            self.component,
            pool_prefix(&self.name),
            self.name
        )
    }
}

/// A suite (`dists/<name>/`) and every knob of its indices and Release.
#[derive(Clone, Debug)]
pub struct Suite {
    pub name: String,
    pub codename: String,
    pub origin: String,
    pub label: String,
    pub components: Vec<String>,
    /// Release `Architectures:`; add `"all"` to also get `binary-all/`.
    pub architectures: Vec<String>,
    /// Release `Date:`; defaults to the time of `build()` (see [`rfc2822`]).
    pub date: Option<String>,
    /// Leaves `Date:` out of Release (some vendor repositories do).
    pub omit_date: bool,
    pub valid_until: Option<String>,
    /// Writes `Acquire-By-Hash: yes` and `by-hash/SHA256/<hex>` copies of every index.
    pub acquire_by_hash: bool,
    /// Writes `source/Sources{,.gz,.xz}` per component.
    pub with_sources: bool,
    /// When false the uncompressed `Packages`/`Sources` are listed in Release but not written
    /// (as on deb.debian.org, which 404s them).
    pub write_uncompressed: bool,
    pub write_inrelease: bool,
    pub write_release_gpg: bool,
    /// Signs InRelease and Release.gpg with this key instead of the archive's.
    pub signer: Option<TestKey>,
    /// Components dropped from Release (`Components:` and hash lists) but still written.
    pub release_omit_components: Vec<String>,
    /// Extra `Field: value` lines in Release (after `Components:`).
    pub extra_release_fields: Vec<(String, String)>,
    pub packages: Vec<Package>,
    pub sources: Vec<SourcePackage>,
    /// Raw stanza text appended to one `Packages` file: (component, arch, text without the
    /// separating blank line).
    pub extra_stanzas: Vec<(String, String, String)>,
    /// Real-archive indices and layouts (all off by default): see [`Shape`] and the
    /// builders in [`super::shapes`] (`with_full_indices`, `ubuntu_layout`, …).
    pub shape: Shape,
    /// A flat repository, as `apt-ftparchive packages .` + `release .` make one: `Release`,
    /// `InRelease`, `Release.gpg`, one `Packages` for every architecture (and `Sources`) at the
    /// archive root, no `dists/`; Release has no `Suite`, `Codename`, `Components` or
    /// `Architectures`; [`Suite::add_package`] gives `Filename: ./<name>_<version>_<arch>.deb`,
    /// [`Suite::add_source`] `Directory: .`.
    pub flat: bool,
}

impl Suite {
    fn new(name: &str) -> Suite {
        Suite {
            name: name.to_string(),
            codename: if name == "stable" {
                "bookworm".to_string()
            } else {
                name.to_string()
            },
            origin: "Debsync-Test".to_string(),
            label: "Debsync-Test".to_string(),
            components: vec!["main".to_string()],
            architectures: vec!["amd64".to_string()],
            date: None,
            omit_date: false,
            valid_until: None,
            acquire_by_hash: false,
            with_sources: false,
            write_uncompressed: true,
            write_inrelease: true,
            write_release_gpg: true,
            signer: None,
            release_omit_components: Vec::new(),
            extra_release_fields: Vec::new(),
            packages: Vec::new(),
            sources: Vec::new(),
            extra_stanzas: Vec::new(),
            shape: Shape::default(),
            flat: false,
        }
    }

    /// Where the suite's Release and indices are, relative to the archive root:
    /// `dists/<dir>/`, or `` for a flat repository.
    pub fn dir_rel(&self) -> String {
        if self.flat {
            String::new()
        } else {
            format!("dists/{}/", self.dir_name())
        }
    }

    /// Adds a binary package; adds its component/arch to the suite if missing.
    pub fn add_package(
        &mut self,
        name: &str,
        version: &str,
        arch: &str,
        component: &str,
        content: &[u8],
    ) -> &mut Package {
        if !self.components.iter().any(|c| c == component) {
            self.components.push(component.to_string());
        }
        if !self.architectures.iter().any(|a| a == arch) {
            self.architectures.push(arch.to_string());
        }
        let filename = self
            .flat
            .then(|| format!("./{name}_{}_{arch}.deb", version_in_filename(version)));
        self.packages.push(Package {
            name: name.to_string(),
            version: version.to_string(),
            arch: arch.to_string(),
            component: component.to_string(),
            content: content.to_vec(),
            filename,
            size_override: None,
            extra_fields: Vec::new(),
        });
        self.packages.last_mut().unwrap()
    }

    /// Adds a source package with a `.dsc` and an `.orig.tar.gz` made of `content`.
    pub fn add_source(
        &mut self,
        name: &str,
        version: &str,
        component: &str,
        content: &[u8],
    ) -> &mut SourcePackage {
        if !self.components.iter().any(|c| c == component) {
            self.components.push(component.to_string());
        }
        self.with_sources = true;
        let v = version_in_filename(version);
        let upstream = v.split('-').next().unwrap_or(&v).to_string();
        let dsc =
            format!("Format: 3.0 (quilt)\nSource: {name}\nVersion: {version}\nArchitecture: any\n");
        self.sources.push(SourcePackage {
            name: name.to_string(),
            version: version.to_string(),
            component: component.to_string(),
            files: vec![
                (format!("{name}_{v}.dsc"), dsc.into_bytes()),
                (format!("{name}_{upstream}.orig.tar.gz"), content.to_vec()),
            ],
            directory: self.flat.then(|| ".".to_string()),
        });
        self.sources.last_mut().unwrap()
    }

    /// Removes every binary and source package called `name`; returns how many were removed.
    pub fn remove_package(&mut self, name: &str) -> usize {
        let before = self.packages.len() + self.sources.len();
        self.packages.retain(|p| p.name != name);
        self.sources.retain(|s| s.name != name);
        before - self.packages.len() - self.sources.len()
    }

    /// The binary package called `name` (first match), for in-place edits.
    pub fn package_mut(&mut self, name: &str) -> &mut Package {
        self.packages
            .iter_mut()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("no package {name}"))
    }

    fn key<'a>(&'a self, default: &'a TestKey) -> &'a TestKey {
        self.signer.as_ref().unwrap_or(default)
    }

    /// Architectures that get a `binary-<arch>/` directory.
    fn index_architectures(&self) -> Vec<String> {
        let mut archs = self.architectures.clone();
        archs.sort();
        archs.dedup();
        archs
    }
}

/// Description of one index (or pool) file the last build wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileInfo {
    pub size: u64,
    pub md5: String,
    pub sha256: String,
}

impl FileInfo {
    pub fn of(bytes: &[u8]) -> FileInfo {
        FileInfo {
            size: bytes.len() as u64,
            md5: hex::encode(Md5::digest(bytes)),
            sha256: hex::encode(Sha256::digest(bytes)),
        }
    }
}

/// A Debian archive rooted at a directory (the URL root apt is pointed at).
#[derive(Debug)]
pub struct TestArchive {
    dir: PathBuf,
    key: TestKey,
    pub suites: Vec<Suite>,
    /// Writes `project/trace/{master,_hierarchy,_traces,<host>}` (ftpsync format) when set:
    /// the upstream mirror's own host name. See [`super::shapes::write_traces`].
    pub trace_host: Option<String>,
    written_pool: BTreeSet<PathBuf>,
    pdiffs: BTreeMap<String, PdiffLog>,
    builds: u32,
}

impl TestArchive {
    /// An archive in `dir` with one suite `stable` (codename `bookworm`), component `main`,
    /// architecture `amd64`, signed by [`TestKey::shared`]. Nothing is written until `build()`.
    pub fn new(dir: impl Into<PathBuf>) -> TestArchive {
        TestArchive {
            dir: dir.into(),
            key: TestKey::shared().clone(),
            suites: vec![Suite::new("stable")],
            trace_host: None,
            written_pool: BTreeSet::new(),
            pdiffs: BTreeMap::new(),
            builds: 0,
        }
    }

    /// A flat repository in `dir` (one [`Suite::flat`] suite, called `flat`), signed by
    /// [`TestKey::shared`]. Nothing is written until `build()`.
    pub fn new_flat(dir: impl Into<PathBuf>) -> TestArchive {
        let mut a = TestArchive::new(dir);
        a.suites[0] = Suite::new("flat");
        a.suites[0].flat = true;
        a
    }

    /// Uses `key` as the archive key for every suite (unless a suite sets `signer`).
    pub fn with_key(mut self, key: &TestKey) -> TestArchive {
        self.key = key.clone();
        self
    }

    /// The archive root (contains `dists/` and `pool/`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The archive key.
    pub fn key(&self) -> &TestKey {
        &self.key
    }

    /// The suite called `name`, created with defaults if missing.
    pub fn suite(&mut self, name: &str) -> &mut Suite {
        if let Some(i) = self.suites.iter().position(|s| s.name == name) {
            return &mut self.suites[i];
        }
        self.suites.push(Suite::new(name));
        self.suites.last_mut().unwrap()
    }

    /// Adds a binary package to the first suite (`stable` by default).
    pub fn add_package(
        &mut self,
        name: &str,
        version: &str,
        arch: &str,
        component: &str,
        content: &[u8],
    ) -> &mut Package {
        self.suites[0].add_package(name, version, arch, component, content)
    }

    /// Removes `name` from every suite; returns how many entries were removed.
    pub fn remove_package(&mut self, name: &str) -> usize {
        self.suites.iter_mut().map(|s| s.remove_package(name)).sum()
    }

    /// Absolute path of a path relative to the archive root.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// Reads a file relative to the archive root.
    pub fn read(&self, rel: &str) -> Vec<u8> {
        let p = self.path(rel);
        std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
    }

    /// Writes (or replaces) a file relative to the archive root, creating parents.
    pub fn write(&self, rel: &str, bytes: &[u8]) {
        write_file(&self.path(rel), bytes);
    }

    /// Flips the first byte of a file in place (same size, different bytes): a pool file or
    /// index that no longer matches its hash.
    pub fn corrupt(&self, rel: &str) {
        let mut bytes = self.read(rel);
        assert!(!bytes.is_empty(), "{rel} is empty");
        bytes[0] ^= 0xff;
        self.write(rel, &bytes);
    }

    /// Changes one byte of the signed text of `dists/<suite>/InRelease` (the first letter of
    /// the `Label:` value), so the signature no longer verifies.
    pub fn tamper_inrelease(&self, suite: &str) {
        let rel = match self.suites.iter().find(|s| s.name == suite && s.flat) {
            Some(_) => "InRelease".to_string(),
            None => format!("dists/{suite}/InRelease"),
        };
        let mut bytes = self.read(&rel);
        let needle = b"\nLabel: ";
        let at = bytes
            .windows(needle.len())
            .position(|w| w == needle)
            .expect("Label in InRelease")
            + needle.len();
        bytes[at] = if bytes[at] == b'X' { b'Y' } else { b'X' };
        self.write(&rel, &bytes);
    }

    /// Deletes a file relative to the archive root (e.g. `dists/stable/InRelease`).
    pub fn delete(&self, rel: &str) {
        let p = self.path(rel);
        std::fs::remove_file(&p).unwrap_or_else(|e| panic!("remove {}: {e}", p.display()));
    }

    /// Writes everything; see the module docs for the in-place rebuild rules.
    pub fn build(&mut self) {
        std::fs::create_dir_all(&self.dir).unwrap();
        let mut pool: BTreeMap<PathBuf, Vec<u8>> = BTreeMap::new();
        for suite in &self.suites {
            for p in suite.packages.iter().chain(&udebs(suite)) {
                let name = p.filename();
                let name = name.trim_start_matches("./");
                if is_safe_relative(name) {
                    pool.insert(self.dir.join(name), p.content.clone());
                }
            }
            for s in &suite.sources {
                for (f, bytes) in &s.files {
                    pool.insert(self.dir.join(s.directory()).join(f), bytes.clone());
                }
            }
        }
        // Stale files go first, with the directories they leave empty, so a path can change
        // between a file and a directory from one build to the next.
        let now: BTreeSet<PathBuf> = pool.keys().cloned().collect();
        for stale in self.written_pool.difference(&now) {
            let _ = std::fs::remove_file(stale);
            let mut dir = stale.parent();
            while let Some(d) = dir.filter(|d| d.starts_with(&self.dir) && *d != self.dir) {
                if std::fs::remove_dir(d).is_err() {
                    break;
                }
                dir = d.parent();
            }
        }
        for (path, bytes) in &pool {
            write_if_changed(path, bytes);
        }
        self.written_pool = now;

        for suite in &self.suites {
            let log = self.pdiffs.entry(suite.name.clone()).or_default();
            build_suite(&self.dir, suite, suite.key(&self.key), log);
        }
        self.builds += 1;
        if let Some(host) = &self.trace_host {
            write_traces(&self.dir, host, self.builds);
        }
    }
}

fn build_suite(root: &Path, suite: &Suite, key: &TestKey, pdiffs: &mut PdiffLog) {
    let suite_dir = root.join(suite.dir_rel());
    // Everything the Release lists (and what else the build writes), relative to the suite dir.
    let mut out = Listing::default();
    // Paths written to disk this build (relative to the suite dir).
    let mut written: BTreeSet<String> = BTreeSet::new();

    if suite.flat {
        let mut text: String = suite
            .packages
            .iter()
            .map(|p| format!("{}\n", package_stanza(p)))
            .collect();
        for (_, _, raw) in &suite.extra_stanzas {
            text.push_str(raw.trim_end_matches('\n'));
            text.push_str("\n\n");
        }
        let compressions = suite.shape.index_compressions();
        out.add_index("Packages", text.into_bytes(), compressions);
        if suite.with_sources {
            let text: String = suite
                .sources
                .iter()
                .map(|s| format!("{}\n", source_stanza(s)))
                .collect();
            out.add_index("Sources", text.into_bytes(), compressions);
        }
    }
    let components = if suite.flat {
        &[][..]
    } else {
        &suite.components[..]
    };
    for component in components {
        for arch in suite.index_architectures() {
            let mut text = String::new();
            for p in suite.packages.iter().filter(|p| {
                &p.component == component && (p.arch == arch || (p.arch == "all" && arch != "all"))
            }) {
                text.push_str(&package_stanza(p));
                text.push('\n');
            }
            for (c, a, raw) in &suite.extra_stanzas {
                if c == component && *a == arch {
                    text.push_str(raw.trim_end_matches('\n'));
                    text.push_str("\n\n");
                }
            }
            let base = format!("{component}/binary-{arch}/Packages");
            out.add_index(&base, text.into_bytes(), suite.shape.index_compressions());
        }
        if suite.with_sources {
            let mut text = String::new();
            for s in suite.sources.iter().filter(|s| &s.component == component) {
                text.push_str(&source_stanza(s));
                text.push('\n');
            }
            let base = format!("{component}/source/Sources");
            out.add_index(&base, text.into_bytes(), suite.shape.index_compressions());
        }
    }
    add_shaped(suite, &mut out);
    if suite.shape.pdiffs {
        pdiffs.update(&mut out);
    }

    let by_hash = |rel: &str, bytes: &[u8]| {
        if suite.acquire_by_hash {
            let dir = Path::new(rel).parent().unwrap();
            let hash = hex::encode(Sha256::digest(bytes));
            write_if_changed(
                &suite_dir.join(dir.join("by-hash/SHA256").join(hash)),
                bytes,
            );
        }
    };
    for (rel, bytes) in &out.listed {
        if (out.plain.contains(rel) && !suite.write_uncompressed)
            || out.through_symlink.contains(rel)
        {
            continue;
        }
        write_if_changed(&suite_dir.join(rel), bytes);
        written.insert(rel.clone());
        if !rel.contains("/installer-") {
            by_hash(rel, bytes);
        }
    }
    for (rel, bytes) in &out.unlisted {
        write_if_changed(&suite_dir.join(rel), bytes);
        written.insert(rel.clone());
        if rel.contains(".diff/") {
            by_hash(rel, bytes);
        }
    }
    for (rel, target) in &out.symlinks {
        symlink(&suite_dir.join(rel), target);
        written.insert(rel.clone());
    }
    if suite.shape.alias_symlink {
        symlink(&root.join("dists").join(&suite.name), &suite.codename);
    }

    let release = release_text(suite, &out.listed);
    write_if_changed(&suite_dir.join("Release"), release.as_bytes());
    written.insert("Release".to_string());
    if suite.write_inrelease {
        write_file(
            &suite_dir.join("InRelease"),
            key.clearsign(&release).as_bytes(),
        );
        written.insert("InRelease".to_string());
    }
    if suite.write_release_gpg {
        write_file(
            &suite_dir.join("Release.gpg"),
            key.detach_sign(release.as_bytes()).as_bytes(),
        );
        written.insert("Release.gpg".to_string());
    }

    // Drop stale files from a previous build (old by-hash generations are kept). At a flat
    // repository's root only index and Release files are the suite's.
    let suites_own = |rel: &str| {
        !suite.flat
            || (!rel.contains('/')
                && ["Packages", "Sources", "Release", "InRelease"]
                    .iter()
                    .any(|p| rel.starts_with(p)))
    };
    for rel in walk_files(&suite_dir) {
        if !written.contains(&rel) && !rel.contains("/by-hash/") && suites_own(&rel) {
            std::fs::remove_file(suite_dir.join(&rel)).unwrap();
        }
    }
}

/// Makes `link` a symlink to `target` (replacing whatever was there).
fn symlink(link: &Path, target: &str) {
    if std::fs::read_link(link).is_ok_and(|t| t == Path::new(target)) {
        return;
    }
    let _ = std::fs::remove_file(link);
    std::fs::create_dir_all(link.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(target, link)
        .unwrap_or_else(|e| panic!("symlink {} -> {target}: {e}", link.display()));
}

fn release_text(suite: &Suite, listed: &BTreeMap<String, Vec<u8>>) -> String {
    let omitted = |rel: &str| {
        suite
            .release_omit_components
            .iter()
            .any(|c| rel.starts_with(&format!("{c}/")))
    };
    let components: Vec<String> = suite
        .components
        .iter()
        .filter(|c| !suite.release_omit_components.contains(c))
        .map(|c| match suite.shape.security_layout {
            true => format!("updates/{c}"),
            false => c.clone(),
        })
        .collect();
    let date = suite
        .date
        .clone()
        .unwrap_or_else(|| rfc2822(SystemTime::now()));
    let mut r = String::new();
    r.push_str(&format!("Origin: {}\n", suite.origin));
    r.push_str(&format!("Label: {}\n", suite.label));
    if !suite.flat {
        r.push_str(&format!("Suite: {}\n", suite.name));
        r.push_str(&format!("Codename: {}\n", suite.codename));
    }
    if !suite.omit_date {
        r.push_str(&format!("Date: {date}\n"));
    }
    if let Some(v) = &suite.valid_until {
        r.push_str(&format!("Valid-Until: {v}\n"));
    }
    if suite.acquire_by_hash {
        r.push_str("Acquire-By-Hash: yes\n");
    }
    if !suite.flat {
        r.push_str(&format!(
            "Architectures: {}\n",
            suite.index_architectures().join(" ")
        ));
        r.push_str(&format!("Components: {}\n", components.join(" ")));
    }
    r.push_str("Description: debsync test archive\n");
    for (k, v) in &suite.extra_release_fields {
        r.push_str(&format!("{k}: {v}\n"));
    }
    let infos: Vec<(&String, FileInfo)> = listed
        .iter()
        .filter(|(rel, _)| !omitted(rel))
        .map(|(rel, bytes)| (rel, FileInfo::of(bytes)))
        .collect();
    if suite.shape.hashes != ReleaseHashes::Sha256Only {
        r.push_str("MD5Sum:\n");
        for (rel, i) in &infos {
            r.push_str(&format!(" {} {:>16} {}\n", i.md5, i.size, rel));
        }
    }
    if suite.shape.hashes == ReleaseHashes::Ubuntu {
        r.push_str("SHA1:\n");
        for (rel, i) in &infos {
            let sha1 = sha1_hex(&listed[*rel]);
            r.push_str(&format!(" {sha1} {:>16} {rel}\n", i.size));
        }
    }
    r.push_str("SHA256:\n");
    for (rel, i) in &infos {
        r.push_str(&format!(" {} {:>16} {}\n", i.sha256, i.size, rel));
    }
    r
}
