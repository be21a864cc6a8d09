//! Reading a live generation: its signed Release (re-verified) and the indices it lists pool
//! files in. Sync reads the live tree this way to compare and to keep what unchanged suites
//! reference; `debsync verify` reads it the same way to check it.

use std::path::Path;
use std::sync::Arc;

use super::generation::{ParseSource, parse_source};
use super::plan::select_indices;
use super::{Ctx, SyncError, io_err, layout};
use crate::archive::FileRef;
use crate::archive::release::Release;
use crate::config::MirrorConfig;
use crate::verify::{Keyring, VerifiedRelease, verify_detached, verify_inrelease};

/// The live suite's signed Release, verified again: InRelease, or Release + Release.gpg where
/// upstream publishes no InRelease.
pub(crate) fn read_release(
    live_dir: &Path,
    keyring: &Keyring,
) -> Result<VerifiedRelease, SyncError> {
    let inrelease = live_dir.join("InRelease");
    match std::fs::read(&inrelease) {
        Ok(bytes) => {
            return Ok(verify_inrelease(
                &bytes,
                keyring,
                &inrelease.to_string_lossy(),
            )?);
        }
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_err(&inrelease)(e)),
        Err(_) => {}
    }
    let release = live_dir.join("Release");
    let signature = live_dir.join("Release.gpg");
    let r = std::fs::read(&release).map_err(io_err(&release))?;
    let sig = std::fs::read(&signature).map_err(io_err(&signature))?;
    Ok(verify_detached(
        &r,
        &sig,
        keyring,
        &release.to_string_lossy(),
    )?)
}

/// [`read_release`], for sync: a live Release that no longer verifies (the keyring changed)
/// is no longer trusted, and the run behaves as a first run for that suite.
pub(crate) fn release(live_dir: &Path, keyring: &Keyring) -> Option<Release> {
    read_release(live_dir, keyring)
        .ok()
        .map(|v| v.release().clone())
}

/// The pool-listing indices of a live suite that did not change this run.
pub(crate) fn sources(ctx: &Ctx<'_>, suite: &str, keyring: &Keyring) -> Vec<ParseSource> {
    let live_dir = crate::tree::suite_dir(&ctx.tree, suite);
    match release(&live_dir, keyring) {
        Some(r) => sources_of(ctx.mirror, suite, &live_dir, &r),
        None => Vec::new(),
    }
}

/// The pool-listing indices a verified live Release selects for a mirror, read from the
/// variant that is cheapest to decode.
pub(crate) fn sources_of(
    mirror: &MirrorConfig,
    suite: &str,
    live_dir: &Path,
    release: &Release,
) -> Vec<ParseSource> {
    let Ok(groups) = select_indices(release, mirror) else {
        return Vec::new();
    };
    let reserved: Arc<[String]> = layout::reserved_pool_roots(mirror, release).into();
    groups
        .iter()
        .filter_map(|g| {
            parse_source(g, suite, live_dir, &reserved, |f| {
                live_dir.join(f.path.as_path()).is_file()
            })
        })
        .collect()
}

/// A compact key for set membership over pool paths (`debsync verify` checks each path once).
pub(crate) use super::pool::{PathKey, path_key};

/// Calls `f` for every pool file a live index lists, streaming.
pub(crate) fn for_each_pool_file(
    src: &ParseSource,
    f: impl FnMut(FileRef) -> Result<(), SyncError>,
) -> Result<(), SyncError> {
    super::pool::for_each_file(src, f)
}
