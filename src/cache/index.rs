//! What a path must be, from the cached verified files: indices from the suite's Release,
//! pool files from the cached `Packages`/`Sources` of the current Releases.
//!
//! Indices are stored only as `dists/<suite>/<dir>/by-hash/SHA256/<hex>`, whatever name the
//! client used: the current Release maps a name to its hash, so a new Release switches every
//! index at once and an old index can never be served under a new Release.
//!
//! The pool map ([`PoolMap`]) holds a 16-byte key, the size and the SHA256 per pool file
//! (about 60 bytes an entry: 6 MB for Debian's 100,000 amd64 + source files), built from the
//! indices clients fetched, each parsed once per generation.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use super::flight::Target;
use super::release::Generation;
use super::{Answer, Cache, CacheError, How, Unlisted};
use crate::archive::compression::Compression;
use crate::archive::{FileRef, Sha256};
use crate::sync::plan::IndexKind;
use crate::sync::pool::{PathKey, path_key};

/// Pool files the cached indices of one generation list.
#[derive(Default)]
pub(crate) struct PoolMap {
    entries: HashMap<PathKey, (u64, Sha256)>,
    /// SHA256s of the indices already parsed into `entries`.
    parsed: HashSet<Sha256>,
}

/// Where an index listed in `suite`'s Release as `path` with `sha256` is stored.
pub(super) fn by_hash_rel(suite: &str, path: &str, sha256: &Sha256) -> String {
    let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
    let sep = if dir.is_empty() { "" } else { "/" };
    format!("dists/{suite}/{dir}{sep}by-hash/SHA256/{sha256}")
}

/// The Release entry a path under `dists/<suite>/` names: by its name, or by-hash (SHA256, or
/// SHA512 through Release's SHA512 list).
fn listed<'a>(g: &'a Generation, path: &str) -> Option<&'a FileRef> {
    let release = g.verified.release();
    let Some((dir, hash)) = path
        .rsplit_once("/by-hash/")
        .or_else(|| path.strip_prefix("by-hash/").map(|h| ("", h)))
    else {
        return release.file(path);
    };
    let in_dir = |p: &str| match p.rsplit_once('/') {
        Some((d, _)) => d == dir,
        None => dir.is_empty(),
    };
    if let Some(hex) = hash.strip_prefix("SHA256/") {
        let want = Sha256::from_hex(hex)?;
        return release
            .files
            .iter()
            .find(|f| f.sha256 == want && in_dir(f.path.as_str()));
    }
    let hex = hash.strip_prefix("SHA512/")?.to_ascii_lowercase();
    let (named, _) = release
        .sha512
        .iter()
        .find(|(p, h)| *h == hex && in_dir(p))?;
    release.file(named)
}

/// A request under `dists/<suite>/` other than InRelease.
pub(super) async fn resolve_index(
    cache: &Arc<Cache>,
    suite: &str,
    path: &str,
) -> Result<Answer, CacheError> {
    let (g, _) = cache.suites.current(cache, suite).await?;
    let entry = listed(&g, path).ok_or(CacheError::NotFound)?;
    let store_rel = by_hash_rel(suite, entry.path.as_str(), &entry.sha256);
    if cache.tree.join(&store_rel).is_file() {
        return Ok(Answer::Stored {
            rel: PathBuf::from(store_rel),
            how: How::Hit,
        });
    }
    // A by-hash name stays valid while upstream publishes the next generation.
    let upstream_rel = if g.verified.release().acquire_by_hash {
        store_rel.clone()
    } else {
        format!("dists/{suite}/{}", entry.path)
    };
    let target = Target {
        store_rel,
        upstream_rel,
        size: entry.size,
        sha256: entry.sha256,
    };
    cache.flights.fetch(cache, target).await
}

/// A request outside `dists/`: stored, or listed by a cached index, or unlisted.
pub(super) async fn resolve_pool(cache: &Arc<Cache>, rel: &str) -> Result<Answer, CacheError> {
    if cache.tree.join(rel).is_file() {
        return Ok(Answer::Stored {
            rel: PathBuf::from(rel),
            how: How::Hit,
        });
    }
    let found = match lookup(cache, rel) {
        Some(f) => Some(f),
        None => {
            let c = cache.clone();
            tokio::task::spawn_blocking(move || parse_new_indices(&c))
                .await
                .map_err(|e| CacheError::Setup(format!("index parser: {e}")))?;
            lookup(cache, rel)
        }
    };
    match (found, cache.cfg.unlisted) {
        (Some((size, sha256)), _) => {
            let target = Target {
                store_rel: rel.to_string(),
                upstream_rel: rel.to_string(),
                size,
                sha256,
            };
            cache.flights.fetch(cache, target).await
        }
        (None, Unlisted::Refuse) => Err(CacheError::Refused(rel.to_string())),
        (None, Unlisted::Pass) => {
            cache.metrics.upstream_request();
            let resp = cache.upstream.get(rel, Default::default()).await?;
            Ok(Answer::Pass(resp))
        }
    }
}

fn lookup(cache: &Cache, rel: &str) -> Option<(u64, Sha256)> {
    let key = path_key(rel);
    cache.suites.generations().iter().find_map(|g| {
        let pool = g.pool.lock().unwrap_or_else(|e| e.into_inner());
        pool.entries.get(&key).copied()
    })
}

/// Parses the cached `Packages`/`Sources` of every generation not parsed yet into its pool
/// map (one variant per index; blocking).
pub(super) fn parse_new_indices(cache: &Cache) {
    for g in cache.suites.generations() {
        let release = g.verified.release();
        // Variants of one index: logical path → the cached variants.
        let mut groups: HashMap<&str, Vec<(&FileRef, Compression)>> = HashMap::new();
        for f in &release.files {
            let (logical, compression) = Compression::split(f.path.as_str());
            let name = logical.rsplit('/').next().unwrap_or(logical);
            if matches!(name, "Packages" | "Sources") {
                groups.entry(logical).or_default().push((f, compression));
            }
        }
        for (logical, variants) in groups {
            let already = {
                let pool = g.pool.lock().unwrap_or_else(|e| e.into_inner());
                variants
                    .iter()
                    .any(|(f, _)| pool.parsed.contains(&f.sha256))
            };
            if already {
                continue;
            }
            let Some((f, compression)) = variants.iter().find(|(f, _)| {
                cache
                    .tree
                    .join(by_hash_rel(&g.suite, f.path.as_str(), &f.sha256))
                    .is_file()
            }) else {
                continue;
            };
            let kind = if logical.ends_with("Sources") {
                IndexKind::Sources
            } else {
                IndexKind::Packages
            };
            let src = crate::sync::generation::ParseSource {
                path: cache
                    .tree
                    .join(by_hash_rel(&g.suite, f.path.as_str(), &f.sha256)),
                display: format!("dists/{}/{}", g.suite, f.path),
                compression: *compression,
                kind,
                sha256: f.sha256,
                reserved: Arc::from(Vec::new()),
            };
            let mut found: Vec<(PathKey, (u64, Sha256))> = Vec::new();
            let parsed = crate::sync::pool::for_each_file(&src, |r| {
                found.push((path_key(r.path.as_str()), (r.size, r.sha256)));
                Ok(())
            });
            if let Err(e) = parsed {
                tracing::warn!("cache {}: {e}", cache.name());
                continue;
            }
            let mut pool = g.pool.lock().unwrap_or_else(|e| e.into_inner());
            pool.entries.extend(found);
            pool.parsed.insert(f.sha256);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_hash_names() {
        let h = Sha256::digest(b"x");
        assert_eq!(
            by_hash_rel("stable", "main/binary-amd64/Packages.xz", &h),
            format!("dists/stable/main/binary-amd64/by-hash/SHA256/{h}")
        );
        assert_eq!(
            by_hash_rel("flat", "Packages", &h),
            format!("dists/flat/by-hash/SHA256/{h}")
        );
    }
}
