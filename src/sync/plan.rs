//! What to fetch, decided from (config, verified Release, previous Release) alone: pure, so
//! each rule is a table-driven unit test.
//!
//! Selection is by rule, not by list: every file the signed Release lists under a configured
//! component is mirrored, except
//! - architecture-specific files of architectures not configured: a path segment named
//!   `<prefix>-<arch>` (`binary-arm64`, `Contents-udeb-arm64.gz`, `Commands-arm64.xz`,
//!   `installer-arm64`) where `<arch>` is one Release's `Architectures` names (plus `all` and
//!   `source`);
//! - the families a mirror trims ([`Selection`]): languages, Contents, dep11, cnf, installer,
//!   pdiffs.
//!
//! Suite-level files (Ubuntu's top-level `Contents-<arch>.gz`) follow the same rules. A file
//! Release lists in several compressions is one [`IndexGroup`]: each variant upstream serves
//! is mirrored, and the ones it does not serve (Debian lists uncompressed files it never
//! publishes) stay absent on the mirror too.

use std::collections::BTreeMap;

use crate::archive::compression::Compression;
use crate::archive::release::Release;
use crate::archive::{FileRef, Sha256};
use crate::config::{MirrorConfig, Selection};

/// What kind of index a group is, i.e. which further files it makes the mirror fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IndexKind {
    /// `binary-<arch>/Packages`, `debian-installer/binary-<arch>/Packages`: pool files.
    Packages,
    /// `source/Sources`: pool files of source packages.
    Sources,
    /// `<index>.diff/Index`: the patches it lists, beside it in the suite.
    PDiffIndex,
    /// `installer-<arch>/<version>/images/SHA256SUMS`: the installer images it lists.
    InstallerSums,
    /// Mirrored for clients but names no further files (Contents, Translation, dep11, …).
    Plain,
}

impl IndexKind {
    /// Whether the group lists pool files.
    pub(crate) fn lists_pool(self) -> bool {
        matches!(self, IndexKind::Packages | IndexKind::Sources)
    }
}

/// One logical index (`main/binary-amd64/Packages`) and every compressed variant Release
/// lists for it.
#[derive(Debug, Clone)]
pub(crate) struct IndexGroup {
    pub base: String,
    pub kind: IndexKind,
    pub variants: Vec<FileRef>,
    /// A mirror without it is useless (the configured architectures' Packages, Sources when
    /// asked for): upstream serving none of its variants fails the run.
    pub required: bool,
}

impl IndexGroup {
    /// Variants in the order to prefer for parsing: cheapest to decode first.
    pub(crate) fn by_decode_cost(&self) -> Vec<&FileRef> {
        let mut v: Vec<&FileRef> = self
            .variants
            .iter()
            .filter(|f| Compression::from_name(f.path.as_str()).is_some())
            .collect();
        v.sort_by_key(|f| {
            Compression::from_name(f.path.as_str()).map_or(u8::MAX, |c| c.decode_cost())
        });
        v
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("Release lacks component {component:?} (it lists: {listed})")]
    MissingComponent { component: String, listed: String },
    #[error("Release lists no {base} (in any compression)")]
    MissingIndex { base: String },
}

/// A configured component as this Release lays it out: the Debian security archive says
/// `Components: updates/main` but lists (and serves) its files under `main/`.
struct ComponentDirs {
    dirs: Vec<String>,
}

impl ComponentDirs {
    fn of(release_name: &str) -> ComponentDirs {
        let mut dirs = vec![release_name.to_string()];
        if let Some((_, last)) = release_name.rsplit_once('/') {
            dirs.push(last.to_string());
        }
        ComponentDirs { dirs }
    }

    /// The part of `path` below this component, if it is under it.
    fn strip<'p>(&self, path: &'p str) -> Option<&'p str> {
        self.dirs.iter().find_map(|d| {
            path.strip_prefix(d.as_str())
                .and_then(|rest| rest.strip_prefix('/'))
        })
    }

    /// The directory Release actually uses for this component (for messages and required
    /// index names): the one some listed file is under, else the Release name.
    fn listed_dir(&self, release: &Release) -> String {
        self.dirs
            .iter()
            .rev()
            .find(|d| {
                release
                    .files
                    .iter()
                    .any(|f| f.path.as_str().starts_with(&format!("{d}/")))
            })
            .unwrap_or(&self.dirs[0])
            .clone()
    }
}

/// The Release component a configured one names: equal, or the same last segment
/// (`main` ↔ `updates/main`).
fn release_component<'r>(release: &'r Release, configured: &str) -> Option<&'r str> {
    let last = |s: &str| s.rsplit_once('/').map_or(s, |(_, l)| l).to_string();
    release
        .components
        .iter()
        .find(|c| c.as_str() == configured)
        .or_else(|| {
            release
                .components
                .iter()
                .find(|c| last(c) == last(configured))
        })
        .map(String::as_str)
}

/// Selects every group the mirror config asks for.
pub(crate) fn select_indices(
    release: &Release,
    mirror: &MirrorConfig,
) -> Result<Vec<IndexGroup>, PlanError> {
    if mirror.flat {
        return select_flat(release, mirror);
    }
    let mut selected: Vec<ComponentDirs> = Vec::new();
    for component in &mirror.components {
        let name = if release.components.is_empty() {
            component.as_str()
        } else {
            release_component(release, component).ok_or_else(|| PlanError::MissingComponent {
                component: component.clone(),
                listed: release.components.join(" "),
            })?
        };
        selected.push(ComponentDirs::of(name));
    }
    let all_components: Vec<ComponentDirs> = release
        .components
        .iter()
        .map(|c| ComponentDirs::of(c))
        .collect();
    let rules = Rules::new(release, mirror);

    let mut groups: BTreeMap<String, IndexGroup> = BTreeMap::new();
    for f in &release.files {
        let path = f.path.as_str();
        let rest = match selected.iter().find_map(|c| c.strip(path)) {
            Some(rest) => rest,
            // Under a component not configured: not ours. Anything else is suite-level.
            None if all_components.iter().any(|c| c.strip(path).is_some()) => continue,
            None => path,
        };
        let Some(kind) = rules.classify(rest) else {
            continue;
        };
        let (base, _) = Compression::split(path);
        groups
            .entry(base.to_string())
            .or_insert_with(|| IndexGroup {
                base: base.to_string(),
                kind,
                variants: Vec::new(),
                required: false,
            })
            .variants
            .push(f.clone());
    }

    // The indices without which the mirror is useless must be listed.
    for c in &selected {
        let dir = c.listed_dir(release);
        let mut required: Vec<String> = mirror
            .architectures
            .iter()
            .filter(|a| a.as_str() != "all")
            .map(|a| format!("{dir}/binary-{a}/Packages"))
            .collect();
        if mirror.sources {
            required.push(format!("{dir}/source/Sources"));
        }
        for base in required {
            match groups.get_mut(&base) {
                Some(g) => g.required = true,
                None => return Err(PlanError::MissingIndex { base }),
            }
        }
    }
    Ok(groups.into_values().collect())
}

/// A flat repository's Release lists its indices at its root, with no components: its
/// `Packages` (required) and, with `sources = true`, its `Sources` list the pool; everything
/// else it lists follows the usual rules (every architecture is wanted: one flat `Packages`
/// holds them all).
fn select_flat(release: &Release, mirror: &MirrorConfig) -> Result<Vec<IndexGroup>, PlanError> {
    let rules = Rules::new(release, mirror);
    let mut groups: BTreeMap<String, IndexGroup> = BTreeMap::new();
    for f in &release.files {
        let (base, _) = Compression::split(f.path.as_str());
        let kind = match base {
            "Packages" => IndexKind::Packages,
            "Sources" if mirror.sources => IndexKind::Sources,
            "Sources" => continue,
            _ => match rules.classify(f.path.as_str()) {
                Some(kind) => kind,
                None => continue,
            },
        };
        groups
            .entry(base.to_string())
            .or_insert_with(|| IndexGroup {
                base: base.to_string(),
                kind,
                variants: Vec::new(),
                required: kind.lists_pool(),
            })
            .variants
            .push(f.clone());
    }
    let mut required = vec!["Packages"];
    if mirror.sources {
        required.push("Sources");
    }
    for base in required {
        if !groups.contains_key(base) {
            return Err(PlanError::MissingIndex { base: base.into() });
        }
    }
    Ok(groups.into_values().collect())
}

/// The selection rules for one (Release, mirror) pair.
struct Rules<'a> {
    /// Every architecture name Release knows (a segment `x-<one of these>` is arch-specific).
    known_archs: Vec<&'a str>,
    wanted_archs: Vec<&'a str>,
    select: &'a Selection,
}

impl<'a> Rules<'a> {
    fn new(release: &'a Release, mirror: &'a MirrorConfig) -> Rules<'a> {
        let mut known_archs: Vec<&str> = release
            .architectures
            .iter()
            .chain(&mirror.architectures)
            .map(String::as_str)
            .collect();
        known_archs.extend(["all", "source"]);
        let mut wanted_archs: Vec<&str> = mirror.architectures.iter().map(String::as_str).collect();
        wanted_archs.push("all");
        if mirror.sources {
            wanted_archs.push("source");
        }
        if mirror.flat {
            wanted_archs = known_archs.clone();
        }
        Rules {
            known_archs,
            wanted_archs,
            select: &mirror.select,
        }
    }

    /// The kind of a file below its component (or suite), or `None` when it is not mirrored.
    fn classify(&self, rest: &str) -> Option<IndexKind> {
        let segments: Vec<&str> = rest.split('/').collect();
        for seg in &segments {
            // `Contents-amd64.gz`, `Packages.diff`, `Components-amd64.yml.xz` → stem before '.'.
            let stem = seg.split('.').next().unwrap_or(seg);
            if let Some(arch) = self.arch_of(stem)
                && !self.wanted_archs.contains(&arch)
            {
                return None;
            }
            let s = self.select;
            if let Some(lang) = stem.strip_prefix("Translation-")
                && s.languages
                    .as_ref()
                    .is_some_and(|l| !l.iter().any(|w| w == lang))
            {
                return None;
            }
            let trimmed = (!s.contents && stem.starts_with("Contents-"))
                || (!s.dep11 && *seg == "dep11")
                || (!s.cnf && *seg == "cnf")
                || (!s.installer && (*seg == "debian-installer" || stem.starts_with("installer-")))
                || (!s.pdiffs && seg.ends_with(".diff"));
            if trimmed {
                return None;
            }
        }
        // `source/Sources` is only mirrored with `sources = true`.
        if segments.first() == Some(&"source") && !self.wanted_archs.contains(&"source") {
            return None;
        }
        let (base, _) = Compression::split(rest);
        let parts: Vec<&str> = base.split('/').collect();
        Some(match parts.as_slice() {
            [.., diff, "Index"] if diff.ends_with(".diff") => IndexKind::PDiffIndex,
            [bin, "Packages"] | ["debian-installer", bin, "Packages"]
                if bin.starts_with("binary-") =>
            {
                IndexKind::Packages
            }
            ["source", "Sources"] => IndexKind::Sources,
            [inst, _, "images", "SHA256SUMS"] if inst.starts_with("installer-") => {
                IndexKind::InstallerSums
            }
            _ => IndexKind::Plain,
        })
    }

    /// `binary-amd64` → `amd64`; `Contents-udeb-arm64` → `arm64`; `Translation-de` → none.
    fn arch_of(&self, stem: &str) -> Option<&'a str> {
        self.known_archs.iter().copied().find(|a| {
            stem.strip_suffix(a)
                .is_some_and(|head| head.ends_with('-') && head.len() > 1)
        })
    }
}

/// Component prefixes the suite directory must answer to itself: the Debian security archive
/// says `Components: updates/main` but keeps the files under `main/`, with a `updates -> .`
/// link so `deb … bookworm-security updates/main` works too. Mirrors keep the link.
pub(crate) fn self_links(release: &Release) -> Vec<String> {
    let mut out: Vec<String> = release
        .components
        .iter()
        .filter_map(|c| c.rsplit_once('/'))
        .filter(|(prefix, last)| {
            !prefix.is_empty()
                && !prefix.contains('/')
                && !prefix.starts_with('.')
                && !release
                    .files
                    .iter()
                    .any(|f| f.path.as_str().starts_with(&format!("{prefix}/{last}/")))
        })
        .map(|(prefix, _)| prefix.to_string())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The other names upstream gives a suite mirrored as `dir`: Release's `Suite` and
/// `Codename` (a mirror of `bookworm` also answers as `stable`, one of `stable` as
/// `bookworm`). Only names of the same family count: `stable-updates` for `bookworm-updates`,
/// not Ubuntu's `noble` for `noble-updates`, whose Codename is the release, not an alias.
pub(crate) fn aliases(dir: &str, release: &Release) -> Vec<String> {
    let family = |s: &str| s.split_once('-').map(|(_, rest)| rest.to_string());
    let mut out: Vec<String> = [&release.suite, &release.codename]
        .into_iter()
        .flatten()
        .filter(|name| name.as_str() != dir && family(name) == family(dir))
        .filter(|name| {
            !name.is_empty()
                && !name.starts_with('.')
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-+".contains(&b))
        })
        .cloned()
        .collect();
    out.dedup();
    out
}

/// Whether a file is unchanged between the live Release and the new one, so the live copy
/// can be hard-linked into the new generation instead of fetched again.
pub(crate) fn unchanged_in(old: Option<&Release>, file: &FileRef) -> bool {
    old.and_then(|o| o.file(file.path.as_str()))
        .is_some_and(|f| f.sha256 == file.sha256 && f.size == file.size)
}

/// by-hash path of an index file, relative to `dists/<suite>`.
pub(crate) fn by_hash_path(file: &FileRef) -> String {
    by_hash_path_of(file.path.parent(), &file.sha256)
}

pub(crate) fn by_hash_path_of(dir: &str, sha256: &Sha256) -> String {
    if dir.is_empty() {
        format!("by-hash/SHA256/{sha256}")
    } else {
        format!("{dir}/by-hash/SHA256/{sha256}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::ArchivePath;

    fn file(p: &str) -> FileRef {
        FileRef {
            path: ArchivePath::new(p).unwrap(),
            size: 1,
            sha256: Sha256::digest(p.as_bytes()),
        }
    }

    fn release_with(components: &[&str], files: &[&str]) -> Release {
        Release {
            origin: None,
            label: None,
            suite: None,
            codename: None,
            version: None,
            date: None,
            valid_until: None,
            architectures: vec!["all".into(), "amd64".into(), "arm64".into()],
            components: components.iter().map(|s| s.to_string()).collect(),
            acquire_by_hash: true,
            files: files.iter().map(|p| file(p)).collect(),
            sha512: Vec::new(),
        }
    }

    fn release(files: &[&str]) -> Release {
        release_with(&["main", "contrib"], files)
    }

    fn mirror(components: &[&str], sources: bool) -> MirrorConfig {
        MirrorConfig {
            name: "m".into(),
            upstream: reqwest::Url::parse("http://127.0.0.1/").unwrap(),
            suites: vec!["stable".into()],
            components: components.iter().map(|s| s.to_string()).collect(),
            architectures: vec!["amd64".into()],
            keyrings: vec![],
            sources,
            select: Selection::default(),
            allow_missing_date: false,
            flat: false,
            notify: vec![],
        }
    }

    /// A Debian-shaped Release: everything a real one lists for main and contrib.
    const FILES: &[&str] = &[
        "main/binary-amd64/Packages",
        "main/binary-amd64/Packages.gz",
        "main/binary-amd64/Packages.xz",
        "main/binary-amd64/Release",
        "main/binary-amd64/Packages.diff/Index",
        "main/binary-all/Packages.xz",
        "main/binary-arm64/Packages.xz",
        "main/source/Sources.xz",
        "main/source/Release",
        "main/i18n/Translation-en",
        "main/i18n/Translation-en.xz",
        "main/i18n/Translation-de.bz2",
        "main/i18n/Translation-pt_BR.bz2",
        "main/i18n/Translation-de.diff/Index",
        "main/Contents-amd64",
        "main/Contents-amd64.gz",
        "main/Contents-arm64.gz",
        "main/Contents-all.gz",
        "main/Contents-source.gz",
        "main/Contents-udeb-amd64.gz",
        "main/Contents-udeb-arm64.gz",
        "main/dep11/Components-amd64.yml.gz",
        "main/dep11/Components-arm64.yml.gz",
        "main/dep11/icons-64x64.tar",
        "main/dep11/icons-64x64.tar.gz",
        "main/dep11/icons-64x64@2.tar.gz",
        "main/cnf/Commands-amd64.xz",
        "main/cnf/Commands-arm64.xz",
        "main/debian-installer/binary-amd64/Packages.xz",
        "main/debian-installer/binary-arm64/Packages.xz",
        "main/installer-amd64/20230607/images/SHA256SUMS",
        "main/installer-amd64/20230607/images/MD5SUMS",
        "main/installer-amd64/current/images/SHA256SUMS",
        "main/installer-arm64/current/images/SHA256SUMS",
        "contrib/binary-amd64/Packages.xz",
        "contrib/Contents-amd64.gz",
    ];

    fn bases(groups: &[IndexGroup]) -> Vec<&str> {
        groups.iter().map(|g| g.base.as_str()).collect()
    }

    fn kind_of<'g>(groups: &'g [IndexGroup], base: &str) -> Option<&'g IndexGroup> {
        groups.iter().find(|g| g.base == base)
    }

    #[test]
    fn a_full_mirror_takes_everything_of_its_components_and_architectures() {
        let groups = select_indices(&release(FILES), &mirror(&["main"], false)).unwrap();
        let got = bases(&groups);
        for want in [
            "main/binary-amd64/Packages",
            "main/binary-amd64/Release",
            "main/binary-amd64/Packages.diff/Index",
            "main/binary-all/Packages",
            "main/i18n/Translation-en",
            "main/i18n/Translation-de",
            "main/i18n/Translation-pt_BR",
            "main/i18n/Translation-de.diff/Index",
            "main/Contents-amd64",
            "main/Contents-all",
            "main/Contents-udeb-amd64",
            "main/dep11/Components-amd64.yml",
            "main/dep11/icons-64x64.tar",
            "main/dep11/icons-64x64@2.tar",
            "main/cnf/Commands-amd64",
            "main/debian-installer/binary-amd64/Packages",
            "main/installer-amd64/20230607/images/SHA256SUMS",
            "main/installer-amd64/20230607/images/MD5SUMS",
            "main/installer-amd64/current/images/SHA256SUMS",
        ] {
            assert!(got.contains(&want), "{want} missing from {got:#?}");
        }
        for unwanted in [
            "main/binary-arm64/Packages",
            "main/Contents-arm64",
            "main/Contents-udeb-arm64",
            "main/dep11/Components-arm64.yml",
            "main/cnf/Commands-arm64",
            "main/debian-installer/binary-arm64/Packages",
            "main/installer-arm64/current/images/SHA256SUMS",
            "main/source/Sources",
            "main/Contents-source",
            "contrib/binary-amd64/Packages",
            "contrib/Contents-amd64",
        ] {
            assert!(!got.contains(&unwanted), "{unwanted} selected: {got:#?}");
        }
        let g = kind_of(&groups, "main/binary-amd64/Packages").unwrap();
        assert_eq!(
            (g.kind, g.required, g.variants.len()),
            (IndexKind::Packages, true, 3)
        );
        let order: Vec<_> = g
            .by_decode_cost()
            .iter()
            .map(|f| f.path.to_string())
            .collect();
        assert_eq!(order[0], "main/binary-amd64/Packages");
        assert_eq!(order[1], "main/binary-amd64/Packages.gz");
        let kinds = [
            ("main/binary-all/Packages", IndexKind::Packages, false),
            (
                "main/debian-installer/binary-amd64/Packages",
                IndexKind::Packages,
                false,
            ),
            (
                "main/binary-amd64/Packages.diff/Index",
                IndexKind::PDiffIndex,
                false,
            ),
            (
                "main/i18n/Translation-de.diff/Index",
                IndexKind::PDiffIndex,
                false,
            ),
            (
                "main/installer-amd64/current/images/SHA256SUMS",
                IndexKind::InstallerSums,
                false,
            ),
            (
                "main/installer-amd64/current/images/SHA256SUMS",
                IndexKind::InstallerSums,
                false,
            ),
            ("main/Contents-amd64", IndexKind::Plain, false),
            ("main/dep11/icons-64x64.tar", IndexKind::Plain, false),
        ];
        for (base, kind, required) in kinds {
            let g = kind_of(&groups, base).unwrap();
            assert_eq!((g.kind, g.required), (kind, required), "{base}");
        }
    }

    #[test]
    fn sources_when_asked() {
        let groups = select_indices(&release(FILES), &mirror(&["main"], true)).unwrap();
        let g = kind_of(&groups, "main/source/Sources").unwrap();
        assert_eq!((g.kind, g.required), (IndexKind::Sources, true));
        assert!(kind_of(&groups, "main/Contents-source").is_some());
        assert!(kind_of(&groups, "main/source/Release").is_some());
    }

    #[test]
    fn trimming_keys_drop_their_families() {
        let trimmed = |f: fn(&mut Selection)| {
            let mut m = mirror(&["main"], false);
            f(&mut m.select);
            let groups = select_indices(&release(FILES), &m).unwrap();
            bases(&groups)
                .into_iter()
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        let langs = trimmed(|s| s.languages = Some(vec!["de".into()]));
        assert!(langs.iter().any(|b| b == "main/i18n/Translation-de"));
        assert!(
            langs
                .iter()
                .any(|b| b == "main/i18n/Translation-de.diff/Index")
        );
        assert!(!langs.iter().any(|b| b.contains("Translation-en")));
        assert!(!langs.iter().any(|b| b.contains("Translation-pt_BR")));
        type Trim = fn(&mut Selection);
        let cases: [(Trim, &str); 5] = [
            (|s| s.contents = false, "Contents-"),
            (|s| s.dep11 = false, "/dep11/"),
            (|s| s.cnf = false, "/cnf/"),
            (|s| s.installer = false, "installer"),
            (|s| s.pdiffs = false, ".diff/"),
        ];
        for (f, gone) in cases {
            let got = trimmed(f);
            assert!(!got.iter().any(|b| b.contains(gone)), "{gone}: {got:#?}");
            assert!(got.iter().any(|b| b == "main/binary-amd64/Packages"));
        }
        let none = trimmed(|s| s.languages = Some(Vec::new()));
        assert!(!none.iter().any(|b| b.contains("Translation")));
    }

    #[test]
    fn security_layout_component_under_its_last_segment() {
        let r = release_with(
            &["updates/main", "updates/contrib"],
            &[
                "main/binary-amd64/Packages.xz",
                "main/Contents-amd64.gz",
                "contrib/binary-amd64/Packages.xz",
            ],
        );
        assert_eq!(self_links(&r), ["updates"]);
        for configured in ["main", "updates/main"] {
            let groups = select_indices(&r, &mirror(&[configured], false)).unwrap();
            assert_eq!(
                bases(&groups),
                ["main/Contents-amd64", "main/binary-amd64/Packages"],
                "{configured}"
            );
        }
    }

    #[test]
    fn suite_level_files_follow_the_architecture_rule() {
        // Ubuntu lists Contents at the suite's top level.
        let r = release(&[
            "Contents-amd64.gz",
            "Contents-arm64.gz",
            "main/binary-amd64/Packages.xz",
        ]);
        let groups = select_indices(&r, &mirror(&["main"], false)).unwrap();
        assert_eq!(
            bases(&groups),
            ["Contents-amd64", "main/binary-amd64/Packages"]
        );
    }

    #[test]
    fn flat_release_lists_its_pool_at_the_root() {
        let r = release_with(
            &[],
            &[
                "Packages",
                "Packages.gz",
                "Packages.xz",
                "Sources.xz",
                "Contents-amd64.gz",
                "Contents-arm64.gz",
                "i18n/Translation-en",
            ],
        );
        let mut m = mirror(&[], false);
        m.flat = true;
        m.suites = vec![crate::sync::layout::FLAT_SUITE.into()];
        m.architectures.clear();
        let groups = select_indices(&r, &m).unwrap();
        assert_eq!(
            bases(&groups),
            [
                "Contents-amd64",
                "Contents-arm64",
                "Packages",
                "i18n/Translation-en"
            ]
        );
        let packages = groups.iter().find(|g| g.base == "Packages").unwrap();
        assert_eq!(packages.kind, IndexKind::Packages);
        assert!(packages.required);
        assert_eq!(packages.variants.len(), 3);
        assert!(
            groups
                .iter()
                .filter(|g| g.base != "Packages")
                .all(|g| g.kind == IndexKind::Plain && !g.required)
        );

        m.sources = true;
        let groups = select_indices(&r, &m).unwrap();
        let sources = groups.iter().find(|g| g.base == "Sources").unwrap();
        assert_eq!((sources.kind, sources.required), (IndexKind::Sources, true));

        let err = select_indices(&release_with(&[], &["Sources.xz"]), &m).unwrap_err();
        assert_eq!(
            err,
            PlanError::MissingIndex {
                base: "Packages".into()
            }
        );
    }

    #[test]
    fn missing_component_or_index_is_an_error() {
        let err = select_indices(&release(FILES), &mirror(&["non-free"], false)).unwrap_err();
        assert!(
            err.to_string().contains("lacks component \"non-free\""),
            "{err}"
        );
        let err = select_indices(
            &release(&["main/binary-arm64/Packages.xz"]),
            &mirror(&["main"], false),
        )
        .unwrap_err();
        assert_eq!(
            err,
            PlanError::MissingIndex {
                base: "main/binary-amd64/Packages".into()
            }
        );
        let err = select_indices(
            &release(&["main/binary-amd64/Packages"]),
            &mirror(&["contrib"], true),
        )
        .unwrap_err();
        assert!(err.to_string().contains("contrib/binary-amd64/Packages"));
    }

    #[test]
    fn aliases_are_names_of_the_same_family() {
        let named = |suite: &str, codename: &str| {
            let mut r = release(&[]);
            r.suite = Some(suite.into());
            r.codename = Some(codename.into());
            r
        };
        let cases = [
            ("bookworm", "oldstable", "bookworm", vec!["oldstable"]),
            ("stable", "stable", "bookworm", vec!["bookworm"]),
            (
                "bookworm-updates",
                "oldstable-updates",
                "bookworm-updates",
                vec!["oldstable-updates"],
            ),
            (
                "bookworm-security",
                "oldstable-security",
                "bookworm-security",
                vec!["oldstable-security"],
            ),
            ("noble", "noble", "noble", vec![]),
            ("noble-updates", "noble-updates", "noble", vec![]),
            ("experimental", "experimental", "rc-buggy", vec![]),
            ("sid", "unstable", "sid", vec!["unstable"]),
            ("x", "../evil", "x", vec![]),
        ];
        for (dir, suite, codename, want) in cases {
            assert_eq!(aliases(dir, &named(suite, codename)), want, "{dir}");
        }
    }

    #[test]
    fn unchanged_and_by_hash() {
        let old = release(FILES);
        let same = file("main/binary-amd64/Packages.xz");
        assert!(unchanged_in(Some(&old), &same));
        let mut changed = same.clone();
        changed.sha256 = Sha256::digest(b"other");
        assert!(!unchanged_in(Some(&old), &changed));
        assert!(!unchanged_in(None, &same));
        assert_eq!(
            by_hash_path(&same),
            format!("main/binary-amd64/by-hash/SHA256/{}", same.sha256)
        );
    }
}
