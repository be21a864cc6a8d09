//! After the swap: delete the pool files no live index references any more.
//!
//! Two ways to find them. After a clean previous run, the difference is already known from
//! the planning pass (old index entries the new ones dropped), so cleanup costs what changed.
//! After a first or failed run, the pool directory (a flat repository's: the tree root, less
//! what [`super::layout`] owns) is walked and compared with every live index, which also
//! removes temp files a killed run left behind. Either way the deletion
//! count is checked against `max_delete` before the swap, so an upstream that suddenly lists
//! nothing cannot empty the mirror.

use std::path::Path;

use super::generation::ParseSource;
use super::manifest::Manifests;
use super::pool::{PathKey, find_key, for_each_listed_key, path_key};
use super::{SyncError, io_err};
use crate::config::MaxDelete;
use crate::fetch::is_temp_name;

/// Pool paths (relative to the tree) to delete once the new generation is live.
#[derive(Debug, Default)]
pub(crate) struct Deletions {
    pub files: Vec<String>,
    /// Stray temp files: removed regardless of the limit.
    pub temps: Vec<String>,
}

pub(crate) enum Mode {
    /// Candidates from the planning pass.
    Diff(Vec<String>),
    /// Walk `pool/` (a flat repository: the tree root, less what the layout owns) against
    /// every live key.
    Walk { flat: bool },
}

/// Decides what to delete. `new_keys` are the paths the parsed new indices list; `other_live`
/// are the live indices that were not parsed this run (unchanged), read only if needed.
pub(crate) fn plan(
    manifests: Manifests<'_>,
    mode: Mode,
    new_keys: Vec<(PathKey, u64)>,
    other_live: &[ParseSource],
    max_delete: MaxDelete,
    force: bool,
) -> Result<Deletions, SyncError> {
    let tree = manifests.tree;
    let mut out = Deletions::default();
    if matches!(&mode, Mode::Diff(candidates) if candidates.is_empty()) {
        return Ok(out);
    }
    // Whatever the unchanged indices list stays; they also count towards the size of the
    // mirror the deletion limit is a share of.
    let live = live_keys(manifests, new_keys, other_live)?;
    match mode {
        Mode::Diff(candidates) => {
            out.files = candidates
                .into_iter()
                // A path that became a directory (upstream changed its shape) is not a file
                // to delete any more.
                .filter(|p| {
                    !is_live(&live, p)
                        && std::fs::symlink_metadata(tree.join(p)).is_ok_and(|m| !m.is_dir())
                })
                .collect();
        }
        Mode::Walk { flat } => {
            let mut visit = |rel: String, name: &str| {
                if is_temp_name(name) {
                    out.temps.push(rel);
                } else if !is_live(&live, &rel) {
                    out.files.push(rel);
                }
            };
            if flat {
                walk_root(tree, &mut visit)?;
            } else {
                walk(tree, "pool", &mut visit)?;
            }
        }
    }
    let total = live.len() as u64 + out.files.len() as u64;
    let limit = max_delete.limit(total);
    if !force && out.files.len() as u64 > limit {
        return Err(SyncError::TooManyDeletes {
            count: out.files.len() as u64,
            limit,
            max_delete,
        });
    }
    Ok(out)
}

fn walk(tree: &Path, rel: &str, f: &mut dyn FnMut(String, &str)) -> Result<(), SyncError> {
    let dir = tree.join(rel);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(&dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io_err(&dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let child = format!("{rel}/{name}");
        let ft = entry.file_type().map_err(io_err(&dir))?;
        if ft.is_dir() {
            walk(tree, &child, f)?;
        } else {
            f(child, name);
        }
    }
    Ok(())
}

/// A flat repository's pool: every root entry the layout does not own (temp files of a
/// killed download included).
fn walk_root(tree: &Path, f: &mut dyn FnMut(String, &str)) -> Result<(), SyncError> {
    let entries = std::fs::read_dir(tree).map_err(io_err(tree))?;
    for entry in entries {
        let entry = entry.map_err(io_err(tree))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let ft = entry.file_type().map_err(io_err(tree))?;
        if ft.is_file() && is_temp_name(name) {
            f(name.to_string(), name);
        } else if super::layout::owned_root_entry(name, ft.is_symlink()) {
            continue;
        } else if ft.is_dir() {
            walk(tree, name, f)?;
        } else {
            f(name.to_string(), name);
        }
    }
    Ok(())
}

/// Deletes, then prunes directories left empty (never `pool/` or the tree itself).
pub(crate) fn delete(tree: &Path, d: &Deletions) -> u64 {
    let all: Vec<&str> = d.files.iter().chain(&d.temps).map(String::as_str).collect();
    // Unlinks in different directories barely contend: two threads halve a large batch.
    let deleted = if all.len() >= PARALLEL_DELETES {
        let (first, second) = all.split_at(all.len() / 2);
        std::thread::scope(|s| {
            let other = s.spawn(|| delete_files(tree, second));
            let mine = delete_files(tree, first);
            mine + other.join().unwrap_or(0)
        })
    } else {
        delete_files(tree, &all)
    };
    let mut dirs: Vec<&str> = all
        .iter()
        .filter_map(|rel| rel.rsplit_once('/').map(|(parent, _)| parent))
        .collect();
    dirs.sort_unstable_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
    dirs.dedup();
    for dir in dirs {
        let mut d = dir;
        while !d.is_empty() && d != "pool" {
            if std::fs::remove_dir(tree.join(d)).is_err() {
                break;
            }
            d = d.rsplit_once('/').map_or("", |(p, _)| p);
        }
    }
    deleted
}

/// Deletions from which a second thread pays for itself.
const PARALLEL_DELETES: usize = 256;

fn delete_files(tree: &Path, files: &[&str]) -> u64 {
    let mut deleted = 0;
    for rel in files {
        match std::fs::remove_file(tree.join(rel)) {
            Ok(()) => deleted += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!("{}: cannot delete: {e}", tree.join(rel).display()),
        }
    }
    deleted
}

/// Every key a live index lists after the swap: the changed indices' (sorted, unique) and the
/// unchanged ones', sorted and unique.
fn live_keys(
    manifests: Manifests<'_>,
    mut keys: Vec<(PathKey, u64)>,
    other_live: &[ParseSource],
) -> Result<Vec<(PathKey, u64)>, SyncError> {
    if !other_live.is_empty() {
        for src in other_live {
            for_each_listed_key(manifests, src, |path, _| {
                keys.push((path_key(path), 0));
                Ok(())
            })?;
        }
        keys.sort_unstable_by_key(|e| e.0);
        keys.dedup_by_key(|e| e.0);
    }
    Ok(keys)
}

fn is_live(live: &[(PathKey, u64)], path: &str) -> bool {
    find_key(live, &path_key(path), |e| &e.0).is_ok()
}
