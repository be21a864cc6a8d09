//! `debsync verify`: re-hash what the served Release lists, end to end.
//!
//! Sync trusts what an earlier run verified (that is what makes an idle run cost nothing);
//! this is the other half of that bargain: a slow, complete pass that finds bit rot, a pool
//! file deleted by hand, or an index edited in place. It reads only the live tree.

use std::collections::HashMap;
use std::path::Path;

use crate::archive::FileRef;
use crate::config::{Config, MirrorConfig};
use crate::fetch::hash_file;
use crate::sync::live::{for_each_pool_file, path_key, read_release, sources_of};
use crate::verify::Keyring;

/// One thing wrong in a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub what: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.what)
    }
}

/// Summary of a verify pass.
#[derive(Debug, Default)]
pub struct CheckReport {
    pub indices: u64,
    pub pool_files: u64,
    pub problems: Vec<Problem>,
}

/// Checks one mirror's live tree against its own signed Release files.
pub fn check_mirror(config: &Config, mirror: &MirrorConfig) -> Result<CheckReport, crate::Error> {
    let tree = mirror.tree(&config.root);
    let keyring = Keyring::load(&mirror.keyrings).map_err(crate::sync::SyncError::from)?;
    let mut report = CheckReport::default();
    // Pool path → (size, SHA256, which index) as first listed: a second listing must agree.
    let mut seen: HashMap<crate::sync::live::PathKey, (u64, crate::archive::Sha256, usize)> =
        HashMap::new();
    let mut indices: Vec<String> = Vec::new();
    for suite in &mirror.suites {
        let dir = crate::tree::suite_dir(&tree, suite);
        let verified = match read_release(&dir, &keyring) {
            Ok(v) => v,
            Err(e) => {
                report.problems.push(Problem {
                    path: format!("dists/{suite}"),
                    what: e.to_string(),
                });
                continue;
            }
        };
        for f in &verified.release().files {
            let path = dir.join(f.path.as_path());
            if !path.exists() {
                continue; // Release lists more than a partial mirror carries.
            }
            report.indices += 1;
            check_file(&path, f, &format!("dists/{suite}/{}", f.path), &mut report);
        }
        check_listed(mirror, suite, &dir, verified.release(), &mut report);
        for src in sources_of(mirror, suite, &dir, verified.release()) {
            indices.push(src.display.clone());
            let result = for_each_pool_file(&src, |f| {
                match seen.entry(path_key(f.path.as_str())) {
                    std::collections::hash_map::Entry::Occupied(e) => {
                        let (size, sha256, first) = e.get();
                        let first = &indices[*first];
                        if (*size, *sha256) != (f.size, f.sha256) {
                            report.problems.push(Problem {
                                path: f.path.to_string(),
                                what: format!(
                                    "listed with different contents: {first} ({size} bytes, SHA256 {sha256}) vs {} ({} bytes, SHA256 {})",
                                    src.display, f.size, f.sha256
                                ),
                            });
                        }
                    }
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert((f.size, f.sha256, indices.len() - 1));
                        report.pool_files += 1;
                        let shown = f.path.to_string();
                        check_file(&tree.join(f.path.as_path()), &f, &shown, &mut report);
                    }
                }
                Ok(())
            });
            if let Err(e) = result {
                report.problems.push(Problem {
                    path: src.display.clone(),
                    what: e.to_string(),
                });
            }
        }
    }
    Ok(report)
}

/// The files a live pdiff Index or installer SHA256SUMS lists: each must be there, right.
fn check_listed(
    mirror: &MirrorConfig,
    suite: &str,
    dir: &Path,
    release: &crate::archive::release::Release,
    report: &mut CheckReport,
) {
    use crate::archive::listing::{pdiff_patches, sha256sums};
    use crate::sync::plan::{IndexKind, select_indices};
    for g in select_indices(release, mirror).unwrap_or_default() {
        let parse = match g.kind {
            IndexKind::PDiffIndex => pdiff_patches,
            IndexKind::InstallerSums => sha256sums,
            _ => continue,
        };
        for v in &g.variants {
            let Ok(text) = std::fs::read(dir.join(v.path.as_path())) else {
                continue;
            };
            let listed = match parse(&text, v.path.parent()) {
                Ok(l) => l,
                Err(e) => {
                    report.problems.push(Problem {
                        path: format!("dists/{suite}/{}", v.path),
                        what: e.to_string(),
                    });
                    continue;
                }
            };
            for l in listed {
                report.indices += 1;
                let shown = format!("dists/{suite}/{}", l.path);
                match hash_file(&dir.join(l.path.as_path())) {
                    Ok((sha, len)) if sha == l.sha256 && l.size.is_none_or(|s| s == len) => {}
                    Ok((sha, len)) => report.problems.push(Problem {
                        path: shown,
                        what: format!(
                            "expected SHA256 {} (listed by {}), found {len} bytes with SHA256 {sha}",
                            l.sha256, v.path
                        ),
                    }),
                    Err(e) => report.problems.push(Problem {
                        path: shown,
                        what: format!("listed by {}, cannot read: {e}", v.path),
                    }),
                }
            }
        }
    }
}

fn check_file(path: &Path, want: &FileRef, shown: &str, report: &mut CheckReport) {
    match hash_file(path) {
        Ok((sha, len)) if sha == want.sha256 && len == want.size => {}
        Ok((sha, len)) => report.problems.push(Problem {
            path: shown.to_string(),
            what: format!(
                "expected {} bytes with SHA256 {}, found {len} bytes with SHA256 {sha}",
                want.size, want.sha256
            ),
        }),
        Err(e) => report.problems.push(Problem {
            path: shown.to_string(),
            what: format!("cannot read: {e}"),
        }),
    }
}
