//! Where a suite's files are: upstream, and in the mirror's tree.
//!
//! A classic archive keeps each suite under `dists/<suite>/`, upstream and on the mirror. A
//! flat repository (`deb URL ./`, the layout of most vendor repositories) keeps its
//! Release files and `Packages` at the repository root, with no `dists/` and no components,
//! and its `Filename:`s are relative to that root.
//!
//! On the mirror a flat repository is staged and swapped exactly like a suite, as
//! `dists/flat` ([`FLAT_SUITE`]): one `renameat2(RENAME_EXCHANGE)` still switches a whole
//! generation. What apt asks for at the root (`./InRelease`, `./Packages.xz`, `./by-hash/…`)
//! reaches it through stable relative links, `InRelease -> dists/flat/InRelease`, one per name
//! at the top of the live generation ([`publish_root_links`]). A link's target never changes,
//! so existing links follow the exchange atomically; only names a generation adds or drops are
//! linked or unlinked, right after the swap.

use std::collections::BTreeSet;
use std::path::Path;

use reqwest::Url;

use super::{Ctx, SyncError, io_err};
use crate::archive::release::Release;
use crate::config::MirrorConfig;

/// The suite name a flat repository is staged and swapped as: `dists/flat`.
pub(crate) const FLAT_SUITE: &str = "flat";

/// Root names the mirror's own layout owns; never a link, never a pool file's first component.
const OWN_ROOT_NAMES: [&str; 2] = ["dists", "project"];

/// A suite file's path relative to the upstream archive root (`rel` empty: the suite's
/// directory itself).
pub(crate) fn upstream_path(mirror: &MirrorConfig, suite: &str, rel: &str) -> String {
    match (mirror.flat, rel) {
        (true, rel) => rel.to_string(),
        (false, "") => format!("dists/{suite}/"),
        (false, rel) => format!("dists/{suite}/{rel}"),
    }
}

impl Ctx<'_> {
    /// Upstream URL of a file of `suite` (`rel` relative to the suite's Release).
    pub fn suite_url(&self, suite: &str, rel: &str) -> Url {
        self.url(&upstream_path(self.mirror, suite, rel))
    }

    /// [`Ctx::suite_url`] as errors and logs show it: credentials redacted.
    pub fn suite_shown(&self, suite: &str, rel: &str) -> String {
        self.shown(&upstream_path(self.mirror, suite, rel))
    }
}

/// Whether the tree has pool files from an earlier run: `pool/`, or for a flat repository
/// (whose pool files are at the root) a generation.
pub(crate) fn pool_exists(tree: &Path, mirror: &MirrorConfig) -> bool {
    match mirror.flat {
        true => tree.join("dists").join(FLAT_SUITE).exists(),
        false => tree.join("pool").exists(),
    }
}

/// Whether a root entry is the mirror's own rather than a flat repository's pool: `dists/`,
/// `project/`, private names, ftpsync's flag files (the run lock), the root links.
pub(crate) fn owned_root_entry(name: &str, is_symlink: bool) -> bool {
    is_symlink
        || OWN_ROOT_NAMES.contains(&name)
        || name.starts_with('.')
        || super::lock::is_flag_name(name)
}

/// First path components a flat repository's pool files must not use beside `dists/` and
/// `project/`: they are (or may become) links into the live generation. A pool file written
/// there would land inside `dists/flat` without a swap, or replace a link.
pub(crate) fn reserved_pool_roots(mirror: &MirrorConfig, release: &Release) -> Vec<String> {
    if !mirror.flat {
        return Vec::new();
    }
    let mut names: BTreeSet<String> = ["InRelease", "Release", "Release.gpg", "by-hash"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for f in &release.files {
        let first = f.path.as_str().split('/').next().unwrap_or_default();
        names.insert(first.to_string());
    }
    names.into_iter().collect()
}

/// Makes the tree root of a flat mirror answer for the live `dists/flat`: a relative link
/// `<name> -> dists/flat/<name>` for each name at the top of the live generation, created
/// only once its target is live, and removal of the links whose target the live generation
/// no longer has. Each link is placed atomically (temp link + rename). A name held by a
/// real file or directory (a pool file upstream since dropped, or the mirror's own `dists/`)
/// is left alone.
pub(crate) fn publish_root_links(tree: &Path) -> Result<(), SyncError> {
    let live = tree.join("dists").join(FLAT_SUITE);
    let target_of = |name: &str| Path::new("dists").join(FLAT_SUITE).join(name);
    let mut wanted = BTreeSet::new();
    if let Ok(entries) = std::fs::read_dir(&live) {
        for e in entries {
            let e = e.map_err(io_err(&live))?;
            let Some(name) = e.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if owned_root_entry(&name, false) {
                continue;
            }
            wanted.insert(name);
        }
    }
    for name in &wanted {
        let link = tree.join(name);
        let target = target_of(name);
        match std::fs::symlink_metadata(&link) {
            Ok(m) if !m.file_type().is_symlink() => {
                tracing::warn!(
                    "{}: a real file holds the name; not linked to {}",
                    link.display(),
                    target.display()
                );
                continue;
            }
            Ok(_) if std::fs::read_link(&link).is_ok_and(|t| t == target) => continue,
            _ => {}
        }
        let tmp = crate::fetch::temp_path(&link);
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&target, &tmp).map_err(io_err(&tmp))?;
        std::fs::rename(&tmp, &link).map_err(io_err(&link))?;
    }
    let entries = std::fs::read_dir(tree).map_err(io_err(tree))?;
    for e in entries {
        let e = e.map_err(io_err(tree))?;
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        let ours = e.file_type().is_ok_and(|t| t.is_symlink())
            && std::fs::read_link(&path).is_ok_and(|t| t == target_of(&name));
        if ours && !wanted.contains(&name) {
            std::fs::remove_file(&path).map_err(io_err(&path))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::{ArchivePath, FileRef, Sha256};

    fn mirror(flat: bool) -> MirrorConfig {
        MirrorConfig {
            name: "m".into(),
            upstream: Url::parse("http://127.0.0.1/repo/").unwrap(),
            suites: vec![if flat { FLAT_SUITE } else { "stable" }.into()],
            components: vec![],
            architectures: vec![],
            keyrings: vec![],
            sources: false,
            select: crate::config::Selection::default(),
            allow_missing_date: false,
            flat,
            notify: vec![],
        }
    }

    #[test]
    fn upstream_paths() {
        let cases = [
            (false, "InRelease", "dists/stable/InRelease"),
            (false, "", "dists/stable/"),
            (
                false,
                "main/binary-amd64/Packages",
                "dists/stable/main/binary-amd64/Packages",
            ),
            (true, "InRelease", "InRelease"),
            (true, "by-hash/SHA256/ab", "by-hash/SHA256/ab"),
            (true, "", ""),
        ];
        for (flat, rel, want) in cases {
            let m = mirror(flat);
            assert_eq!(upstream_path(&m, &m.suites[0], rel), want, "{flat} {rel}");
        }
    }

    #[test]
    fn reserved_roots_of_a_flat_release() {
        let mut r = Release::parse("SHA256:\n").unwrap();
        for p in ["Packages", "Packages.xz", "i18n/Translation-en"] {
            r.files.push(FileRef {
                path: ArchivePath::new(p).unwrap(),
                size: 0,
                sha256: Sha256::digest(b""),
            });
        }
        assert!(reserved_pool_roots(&mirror(false), &r).is_empty());
        assert_eq!(
            reserved_pool_roots(&mirror(true), &r),
            [
                "InRelease",
                "Packages",
                "Packages.xz",
                "Release",
                "Release.gpg",
                "by-hash",
                "i18n"
            ]
        );
    }

    #[test]
    fn root_links_follow_the_live_generation() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path();
        let live = t.join("dists/flat");
        std::fs::create_dir_all(live.join("by-hash")).unwrap();
        for n in [
            "InRelease",
            "Packages",
            "Packages.xz",
            ".hidden",
            "Archive-Update-Required-x",
        ] {
            std::fs::write(live.join(n), n).unwrap();
        }
        std::fs::write(t.join("hello.deb"), "pool").unwrap();
        publish_root_links(t).unwrap();
        for n in ["InRelease", "Packages", "Packages.xz", "by-hash"] {
            assert_eq!(
                std::fs::read_link(t.join(n)).unwrap(),
                Path::new("dists/flat").join(n)
            );
        }
        assert_eq!(
            std::fs::read_to_string(t.join("Packages.xz")).unwrap(),
            "Packages.xz"
        );
        for own in [".hidden", "Archive-Update-Required-x"] {
            assert!(std::fs::symlink_metadata(t.join(own)).is_err(), "{own}");
        }

        // Next generation: Packages gone, Sources new, a real file holds a listed name.
        std::fs::remove_file(live.join("Packages")).unwrap();
        std::fs::write(live.join("Sources"), "s").unwrap();
        std::fs::write(live.join("hello.deb"), "index?").unwrap();
        publish_root_links(t).unwrap();
        assert!(std::fs::symlink_metadata(t.join("Packages")).is_err());
        assert_eq!(std::fs::read_to_string(t.join("Sources")).unwrap(), "s");
        assert_eq!(
            std::fs::read_to_string(t.join("hello.deb")).unwrap(),
            "pool"
        );
        assert!(t.join("dists/flat").is_dir() && t.join("InRelease").is_file());
    }
}
