//! What to fetch, decided from (config, verified Release, previous Release) alone: pure, so
//! each rule is a table-driven unit test.

use crate::archive::compression::Compression;
use crate::archive::release::Release;
use crate::archive::{FileRef, Sha256};
use crate::config::MirrorConfig;

/// What kind of index a group is, i.e. how its stanzas list pool files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKind {
    Packages,
    Sources,
    /// Mirrored for clients but lists no pool files (per-directory `Release`).
    Plain,
}

/// One logical index (`main/binary-amd64/Packages`) and every compressed variant Release
/// lists for it.
#[derive(Debug, Clone)]
pub struct IndexGroup {
    pub base: String,
    pub kind: IndexKind,
    pub variants: Vec<FileRef>,
}

impl IndexGroup {
    /// Variants in the order to prefer for parsing: cheapest to decode first.
    pub fn by_decode_cost(&self) -> Vec<&FileRef> {
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

/// Selects the index groups the mirror config asks for.
pub fn select_indices(
    release: &Release,
    mirror: &MirrorConfig,
) -> Result<Vec<IndexGroup>, PlanError> {
    let mut groups = Vec::new();
    for component in &mirror.components {
        if !release.components.is_empty() && !release.components.iter().any(|c| c == component) {
            return Err(PlanError::MissingComponent {
                component: component.clone(),
                listed: release.components.join(" "),
            });
        }
        let mut archs: Vec<&str> = mirror.architectures.iter().map(String::as_str).collect();
        if !archs.contains(&"all") {
            archs.push("all");
        }
        // (directory, index, kind, required): binary-all is optional, the rest must exist.
        let mut wanted: Vec<(String, &str, IndexKind, bool)> = Vec::new();
        for arch in archs {
            let dir = format!("{component}/binary-{arch}");
            wanted.push((dir.clone(), "Packages", IndexKind::Packages, arch != "all"));
            wanted.push((dir, "Release", IndexKind::Plain, false));
        }
        if mirror.sources {
            let dir = format!("{component}/source");
            wanted.push((dir.clone(), "Sources", IndexKind::Sources, true));
            wanted.push((dir, "Release", IndexKind::Plain, false));
        }
        for (dir, name, kind, required) in wanted {
            push_group(&mut groups, release, &dir, name, kind, required)?;
        }
    }
    Ok(groups)
}

fn push_group(
    groups: &mut Vec<IndexGroup>,
    release: &Release,
    dir: &str,
    name: &str,
    kind: IndexKind,
    required: bool,
) -> Result<(), PlanError> {
    let base = format!("{dir}/{name}");
    let variants: Vec<FileRef> = release
        .files
        .iter()
        .filter(|f| {
            let p = f.path.as_str();
            Compression::from_name(p).is_some_and(|c| c.strip(p) == base)
        })
        .cloned()
        .collect();
    if variants.is_empty() {
        if required {
            return Err(PlanError::MissingIndex { base });
        }
        return Ok(());
    }
    groups.push(IndexGroup {
        base,
        kind,
        variants,
    });
    Ok(())
}

/// Whether a file is unchanged between the live Release and the new one, so the live copy
/// can be hard-linked into the new generation instead of fetched again.
pub fn unchanged_in(old: Option<&Release>, file: &FileRef) -> bool {
    old.and_then(|o| o.file(file.path.as_str()))
        .is_some_and(|f| f.sha256 == file.sha256 && f.size == file.size)
}

/// by-hash path of an index file, relative to `dists/<suite>`.
pub fn by_hash_path(file: &FileRef) -> String {
    by_hash_path_of(file.path.parent(), &file.sha256)
}

pub fn by_hash_path_of(dir: &str, sha256: &Sha256) -> String {
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

    fn release(files: &[&str]) -> Release {
        Release {
            origin: None,
            label: None,
            suite: None,
            codename: None,
            version: None,
            date: None,
            valid_until: None,
            architectures: vec!["amd64".into()],
            components: vec!["main".into(), "contrib".into()],
            acquire_by_hash: true,
            files: files.iter().map(|p| file(p)).collect(),
            sha512: Vec::new(),
        }
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
        }
    }

    const FILES: &[&str] = &[
        "main/binary-amd64/Packages",
        "main/binary-amd64/Packages.gz",
        "main/binary-amd64/Packages.xz",
        "main/binary-amd64/Release",
        "main/binary-all/Packages.xz",
        "main/binary-arm64/Packages.xz",
        "main/source/Sources.xz",
        "main/i18n/Translation-en.bz2",
        "main/binary-amd64/Packages.diff/Index",
        "contrib/binary-amd64/Packages.xz",
    ];

    #[test]
    fn selects_configured_indices_and_variants() {
        let groups = select_indices(&release(FILES), &mirror(&["main"], false)).unwrap();
        let bases: Vec<_> = groups.iter().map(|g| g.base.as_str()).collect();
        assert_eq!(
            bases,
            [
                "main/binary-amd64/Packages",
                "main/binary-amd64/Release",
                "main/binary-all/Packages"
            ]
        );
        assert_eq!(groups[0].variants.len(), 3);
        let order: Vec<_> = groups[0]
            .by_decode_cost()
            .iter()
            .map(|f| f.path.to_string())
            .collect();
        assert_eq!(order[0], "main/binary-amd64/Packages");
        assert_eq!(order[1], "main/binary-amd64/Packages.gz");
    }

    #[test]
    fn sources_when_asked() {
        let groups = select_indices(&release(FILES), &mirror(&["main"], true)).unwrap();
        assert!(
            groups
                .iter()
                .any(|g| g.base == "main/source/Sources" && g.kind == IndexKind::Sources)
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
