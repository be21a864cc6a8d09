//! Files of a suite that Release does not list itself but a listed file does: the patches of
//! a pdiff `Index` and the images of an installer `SHA256SUMS`. They live inside
//! `dists/<suite>`, so they are staged with the generation that names them and go live with
//! it in the same swap; each is checked against the hash its (verified) listing gives.
//!
//! Installer trees also carry `current`, a symlink upstream to the newest dated build. HTTP
//! cannot show a link, so it is recognised by its content: a non-dated version directory
//! whose every listed file has the same hash under a dated one becomes a link to it, on the
//! mirror as upstream, instead of a second copy of the images.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use futures_util::StreamExt;

use super::plan::{IndexGroup, IndexKind, unchanged_in};
use super::{Ctx, SyncError, io_err};
use crate::archive::Sha256;
use crate::archive::listing::{Listed, pdiff_patches, sha256sums};
use crate::archive::release::Release;
use crate::fetch::{Expected, FetchError, hash_file};

/// The largest installer image accepted (SHA256SUMS gives no sizes).
const MAX_INSTALLER_FILE: u64 = 16 << 30;

/// `installer-<arch>/<version>` directories to publish as links: (link, target name), both
/// relative to the suite directory's `installer-<arch>/` parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InstallerLink {
    /// `main/installer-amd64/current`
    pub dir: String,
    /// `20230607+deb12u15`
    pub target: String,
}

/// Finds the version directories that are links upstream (see the module docs).
pub(crate) fn installer_links(release: &Release, groups: &[IndexGroup]) -> Vec<InstallerLink> {
    let hashes: HashMap<&str, &Sha256> = release
        .files
        .iter()
        .map(|f| (f.path.as_str(), &f.sha256))
        .collect();
    let mut links = Vec::new();
    for g in groups.iter().filter(|g| g.kind == IndexKind::InstallerSums) {
        // base: <component>/installer-<arch>/<version>/images/SHA256SUMS
        let Some(version_dir) = g.base.strip_suffix("/images/SHA256SUMS") else {
            continue;
        };
        let Some((parent, version)) = version_dir.rsplit_once('/') else {
            continue;
        };
        if version.starts_with(|c: char| c.is_ascii_digit()) {
            continue;
        }
        let under: Vec<(&str, &Sha256)> = hashes
            .iter()
            .filter_map(|(p, h)| {
                p.strip_prefix(version_dir)
                    .and_then(|r| r.strip_prefix('/'))
                    .map(|r| (r, *h))
            })
            .collect();
        let mut dated: Vec<&str> = groups
            .iter()
            .filter(|o| o.kind == IndexKind::InstallerSums)
            .filter_map(|o| o.base.strip_suffix("/images/SHA256SUMS"))
            .filter_map(|d| d.strip_prefix(parent)?.strip_prefix('/'))
            .filter(|v| v.starts_with(|c: char| c.is_ascii_digit()))
            .filter(|v| {
                under
                    .iter()
                    .all(|(rest, h)| hashes.get(format!("{parent}/{v}/{rest}").as_str()) == Some(h))
            })
            .collect();
        dated.sort_unstable();
        if let Some(target) = dated.last() {
            links.push(InstallerLink {
                dir: version_dir.to_string(),
                target: (*target).to_string(),
            });
        }
    }
    links
}

/// Whether a Release path is inside a linked version directory (staged through the link).
pub(crate) fn under_link(links: &[InstallerLink], path: &str) -> bool {
    links.iter().any(|l| {
        path.strip_prefix(l.dir.as_str())
            .is_some_and(|r| r.starts_with('/'))
    })
}

/// Creates the installer links inside a staged generation.
pub(crate) fn place_links(dir: &Path, links: &[InstallerLink]) -> Result<(), SyncError> {
    for l in links {
        let at = dir.join(&l.dir);
        if let Some(parent) = at.parent() {
            std::fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        std::os::unix::fs::symlink(&l.target, &at).map_err(io_err(&at))?;
    }
    Ok(())
}

/// Stages every file the present pdiff Indexes and installer SHA256SUMS list; returns how
/// many. Patches get no by-hash copies: apt fetches them by name only (their names are unique
/// already), and dak publishes none.
pub(crate) async fn stage_listed(
    ctx: &Ctx<'_>,
    suite: &str,
    live_dir: &Path,
    dir: &Path,
    old: Option<&Release>,
    groups: &[IndexGroup],
    present: &HashSet<&str>,
) -> Result<usize, SyncError> {
    let mut wanted: Vec<(Listed, bool)> = Vec::new();
    for g in groups {
        let parse = match g.kind {
            IndexKind::PDiffIndex => pdiff_patches,
            IndexKind::InstallerSums => sha256sums,
            _ => continue,
        };
        let Some(listing) = g
            .variants
            .iter()
            .find(|v| present.contains(v.path.as_str()))
        else {
            continue;
        };
        let shown = format!("dists/{suite}/{}", listing.path);
        let staged = dir.join(listing.path.as_path());
        let text = std::fs::read(&staged).map_err(io_err(&staged))?;
        let files = parse(&text, listing.path.parent()).map_err(|e| SyncError::Index {
            file: shown.clone(),
            detail: e.to_string(),
        })?;
        let trusted = unchanged_in(old, listing);
        wanted.extend(files.into_iter().map(|l| (l, trusted)));
    }
    let mut seen = HashSet::new();
    wanted.retain(|(l, _)| seen.insert(l.path.clone()));
    let count = wanted.len();
    let results: Vec<Result<(), SyncError>> = futures_util::stream::iter(wanted)
        .map(|(l, trusted)| stage_one(ctx, suite, live_dir, dir, l, trusted))
        .buffer_unordered(ctx.cfg.concurrency)
        .collect()
        .await;
    for r in results {
        r?;
    }
    Ok(count)
}

/// One listed file: linked from the live generation when its listing is unchanged (it was
/// checked when it arrived) or when the live copy still hashes right; fetched otherwise.
async fn stage_one(
    ctx: &Ctx<'_>,
    suite: &str,
    live_dir: &Path,
    dir: &Path,
    l: Listed,
    trusted: bool,
) -> Result<(), SyncError> {
    let dest = dir.join(l.path.as_path());
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    let live = live_dir.join(l.path.as_path());
    let live_ok = trusted
        || hash_file(&live)
            .is_ok_and(|(sha, len)| sha == l.sha256 && l.size.is_none_or(|s| s == len));
    if live_ok && std::fs::hard_link(&live, &dest).is_ok() {
        return Ok(());
    }
    let want = match l.size {
        Some(size) => Expected::new(size, l.sha256),
        None => Expected::hash_only(l.sha256, MAX_INSTALLER_FILE),
    };
    let url = ctx.suite_url(suite, l.path.as_str());
    match ctx.fetcher.download(&url, &dest, want).await {
        Ok(()) => Ok(()),
        Err(FetchError::NotFound { .. }) => Err(SyncError::ListedMissing {
            file: format!("dists/{suite}/{}", l.path),
        }),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::{ArchivePath, FileRef};
    use crate::config::MirrorConfig;

    fn release(files: &[(&str, &str)]) -> Release {
        let mut r = Release::parse("SHA256:\n").unwrap();
        r.components = vec!["main".into()];
        r.architectures = vec!["amd64".into()];
        r.files = files
            .iter()
            .map(|(p, content)| FileRef {
                path: ArchivePath::new(p).unwrap(),
                size: content.len() as u64,
                sha256: Sha256::digest(content.as_bytes()),
            })
            .collect();
        r
    }

    fn groups(r: &Release) -> Vec<IndexGroup> {
        let m = MirrorConfig {
            name: "m".into(),
            upstream: reqwest::Url::parse("http://127.0.0.1/").unwrap(),
            suites: vec!["s".into()],
            components: vec!["main".into()],
            architectures: vec!["amd64".into()],
            keyrings: vec![],
            sources: false,
            select: crate::config::Selection::default(),
            allow_missing_date: false,
            flat: false,
            notify: vec![],
        };
        let mut r = r.clone();
        r.files.push(FileRef {
            path: ArchivePath::new("main/binary-amd64/Packages").unwrap(),
            size: 0,
            sha256: Sha256::digest(b""),
        });
        super::super::plan::select_indices(&r, &m).unwrap()
    }

    #[test]
    fn current_links_to_the_newest_identical_dated_build() {
        let r = release(&[
            ("main/installer-amd64/20230607/images/SHA256SUMS", "old"),
            (
                "main/installer-amd64/20230607+deb12u1/images/SHA256SUMS",
                "new",
            ),
            (
                "main/installer-amd64/20230607+deb12u1/images/MD5SUMS",
                "new-md5",
            ),
            ("main/installer-amd64/current/images/SHA256SUMS", "new"),
            ("main/installer-amd64/current/images/MD5SUMS", "new-md5"),
        ]);
        let links = installer_links(&r, &groups(&r));
        assert_eq!(
            links,
            [InstallerLink {
                dir: "main/installer-amd64/current".into(),
                target: "20230607+deb12u1".into()
            }]
        );
        assert!(under_link(
            &links,
            "main/installer-amd64/current/images/MD5SUMS"
        ));
        assert!(!under_link(&links, "main/installer-amd64/currently/x"));
    }

    #[test]
    fn a_current_that_differs_is_a_directory_of_its_own() {
        let r = release(&[
            ("main/installer-amd64/20230607/images/SHA256SUMS", "a"),
            ("main/installer-amd64/current/images/SHA256SUMS", "a"),
            ("main/installer-amd64/current/images/MD5SUMS", "only-here"),
        ]);
        assert!(installer_links(&r, &groups(&r)).is_empty());
    }
}
