//! The next generation of a suite: fetch and verify its Release, then build its complete next
//! `dists/<suite>` in `.debsync/staging/<suite>`, ready for the swap.
//!
//! The staged directory is everything apt will see after the swap: every index variant
//! upstream has, the by-hash files of earlier generations still within retention, and the
//! Release files. Unchanged index files are hard-linked from the live tree (they were verified
//! when they arrived), so a 1 % change costs the changed indices, not all of them.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::StreamExt;

use super::plan::{IndexGroup, IndexKind, by_hash_path, select_indices, unchanged_in};
use super::state::SuiteState;
use super::{Ctx, SyncError, io_err};
use super::{layout, listed};
use crate::archive::compression::Compression;
use crate::archive::release::Release;
use crate::archive::{FileRef, Sha256};
use crate::fetch::{Expected, FetchError};
use crate::verify::{Keyring, VerifiedRelease, verify_detached, verify_inrelease};

/// Largest Release/InRelease accepted (Debian's is 150 KB; Ubuntu's a few MB).
const MAX_RELEASE: u64 = 64 * 1024 * 1024;

/// The Release files of one suite as upstream serves them right now.
pub(crate) struct UpstreamRelease {
    pub suite: String,
    pub inrelease: Option<Vec<u8>>,
    pub release: Option<Vec<u8>>,
    pub release_gpg: Option<Vec<u8>>,
}

impl UpstreamRelease {
    pub(crate) async fn fetch(ctx: &Ctx<'_>, suite: &str) -> Result<UpstreamRelease, SyncError> {
        let get = |name: &'static str| {
            let url = ctx.suite_url(suite, name);
            async move { ctx.fetcher.get_small(&url, MAX_RELEASE).await }
        };
        let (inrelease, release, release_gpg) =
            tokio::join!(get("InRelease"), get("Release"), get("Release.gpg"));
        let (inrelease, release, release_gpg) = (inrelease?, release?, release_gpg?);
        if inrelease.is_none() && (release.is_none() || release_gpg.is_none()) {
            return Err(SyncError::NoRelease {
                url: ctx.suite_shown(suite, ""),
            });
        }
        Ok(UpstreamRelease {
            suite: suite.to_string(),
            inrelease,
            release,
            release_gpg,
        })
    }

    /// `Valid-Until` of the signed text, read without verifying: only for a Release already
    /// known to be byte-identical to the live (verified) one.
    pub(crate) fn valid_until(&self) -> Option<i64> {
        let bytes = self.inrelease.as_ref().or(self.release.as_ref())?;
        crate::archive::release::scan_valid_until(bytes)
    }

    /// Byte-identical to what is live: the no-op test. No parsing, no signature check: the
    /// live copy was verified when it arrived.
    pub(crate) fn matches_live(&self, tree: &Path) -> bool {
        let live = crate::tree::suite_dir(tree, &self.suite);
        let same = |name: &str, bytes: &Option<Vec<u8>>| match bytes {
            Some(b) => std::fs::read(live.join(name)).is_ok_and(|l| &l == b),
            None => !live.join(name).exists(),
        };
        same("InRelease", &self.inrelease)
            && same("Release", &self.release)
            && same("Release.gpg", &self.release_gpg)
    }

    pub(crate) fn verify(
        &self,
        keyring: &Keyring,
        ctx: &Ctx<'_>,
    ) -> Result<VerifiedRelease, SyncError> {
        let suite = &self.suite;
        if let Some(bytes) = &self.inrelease {
            return Ok(verify_inrelease(
                bytes,
                keyring,
                &ctx.suite_shown(suite, "InRelease"),
            )?);
        }
        match (&self.release, &self.release_gpg) {
            (Some(r), Some(sig)) => Ok(verify_detached(
                r,
                sig,
                keyring,
                ctx.suite_shown(suite, "Release").as_str(),
            )?),
            _ => Err(SyncError::NoRelease {
                url: ctx.suite_shown(suite, ""),
            }),
        }
    }
}

/// The index a group's pool files are read from (the cheapest variant to decode).
#[derive(Debug, Clone)]
pub(crate) struct ParseSource {
    pub path: PathBuf,
    /// How errors name it: `dists/<suite>/<path>`.
    pub display: String,
    pub compression: Compression,
    pub kind: IndexKind,
    pub sha256: Sha256,
    /// First path components its pool files must not use ([`layout::reserved_pool_roots`]).
    pub reserved: Arc<[String]>,
}

impl ParseSource {
    /// Its stanzas, decoded while streaming.
    pub(crate) fn stanzas(
        &self,
    ) -> Result<crate::archive::deb822::StanzaReader<Box<dyn std::io::Read>>, SyncError> {
        let file = std::fs::File::open(&self.path).map_err(|e| self.error(e.to_string()))?;
        let decoder = self
            .compression
            .decoder(std::io::BufReader::with_capacity(128 * 1024, file))
            .map_err(|e| self.error(e.to_string()))?;
        Ok(crate::archive::deb822::StanzaReader::new(decoder))
    }

    /// An error in this index, named as clients see it.
    pub(crate) fn error(&self, detail: String) -> SyncError {
        SyncError::Index {
            file: self.display.clone(),
            detail,
        }
    }
}

pub(crate) struct StagedGroup {
    pub source: Option<ParseSource>,
    /// The parsed index differs from the live generation's.
    pub changed: bool,
}

/// A suite's next generation, complete in staging and not yet live.
pub(crate) struct StagedSuite {
    pub suite: String,
    pub dir: PathBuf,
    pub verified: VerifiedRelease,
    pub groups: Vec<StagedGroup>,
    /// Live groups (changed or gone) whose pool files may become unreferenced.
    pub old_sources: Vec<ParseSource>,
    /// (live, new) of every pool-listing index that changed, appeared or went: the changelog.
    pub index_changes: Vec<(Option<ParseSource>, Option<ParseSource>)>,
    /// No trusted live generation before this one.
    pub initial: bool,
    pub state: SuiteState,
}

pub(crate) fn staging_root(tree: &Path) -> PathBuf {
    crate::tree::staging_dir(tree)
}

/// A suite's Release from upstream, checked as every run checks it, and the live one.
pub(crate) struct CheckedRelease {
    pub verified: VerifiedRelease,
    /// The live generation's Release, verified again (`None`: first run, or no longer
    /// trusted).
    pub old: Option<Release>,
}

/// The signature against the pinned keyring, then Valid-Until, Date, and no rollback behind
/// the live Release: what makes a Release acceptable (`debsync check` asks the same).
pub(crate) fn check_release(
    ctx: &Ctx<'_>,
    up: &UpstreamRelease,
    keyring: &Keyring,
) -> Result<CheckedRelease, SyncError> {
    let verified = up.verify(keyring, ctx)?;
    let release = verified.release();
    let what = ctx.suite_shown(&up.suite, "Release");
    if let Some(until) = release.valid_until
        && until < ctx.now
    {
        return Err(SyncError::Expired {
            what,
            valid_until: crate::archive::date::format_rfc2822(until),
        });
    }
    if release.date.is_none() && !ctx.mirror.allow_missing_date {
        return Err(SyncError::NoDate { what });
    }
    let live_dir = crate::tree::suite_dir(&ctx.tree, &up.suite);
    let old = super::live::release(&live_dir, keyring);
    if let (Some(new_date), Some(old_date)) = (release.date, old.as_ref().and_then(|o| o.date))
        && new_date < old_date
    {
        return Err(SyncError::Rollback {
            what,
            upstream: crate::archive::date::format_rfc2822(new_date),
            mirrored: crate::archive::date::format_rfc2822(old_date),
        });
    }
    Ok(CheckedRelease { verified, old })
}

/// The index groups of a suite's next generation and of its live one.
pub(crate) struct Selected {
    pub groups: Vec<IndexGroup>,
    /// Installer `current` directories, staged as links to their target.
    pub links: Vec<listed::InstallerLink>,
    pub old_groups: Vec<IndexGroup>,
}

pub(crate) fn select(
    ctx: &Ctx<'_>,
    suite: &str,
    release: &Release,
    old: Option<&Release>,
) -> Result<Selected, SyncError> {
    let mut groups = select_indices(release, ctx.mirror).map_err(|source| SyncError::Plan {
        what: ctx.suite_shown(suite, "Release"),
        source,
    })?;
    let links = listed::installer_links(release, &groups);
    for g in &mut groups {
        g.variants
            .retain(|v| !listed::under_link(&links, v.path.as_str()));
    }
    groups.retain(|g| !g.variants.is_empty());
    let old_groups = old
        .and_then(|o| select_indices(o, ctx.mirror).ok())
        .unwrap_or_default();
    Ok(Selected {
        groups,
        links,
        old_groups,
    })
}

/// What the live generation was built from: a file it selected, listed unchanged, and does
/// not have is one upstream did not serve; asking again would only cost a 404.
pub(crate) fn known_absent<'g>(old_groups: &'g [IndexGroup], live_dir: &Path) -> HashSet<&'g str> {
    old_groups
        .iter()
        .flat_map(|g| g.variants.iter())
        .filter(|f| !live_dir.join(f.path.as_path()).exists())
        .map(|f| f.path.as_str())
        .collect()
}

/// Verifies and stages one suite.
pub(crate) async fn build(
    ctx: &Ctx<'_>,
    up: &UpstreamRelease,
    keyring: &Keyring,
    prev: Option<&SuiteState>,
) -> Result<StagedSuite, SyncError> {
    let suite = &up.suite;
    let CheckedRelease { verified, old } = check_release(ctx, up, keyring)?;
    let release = verified.release();
    let live_dir = crate::tree::suite_dir(&ctx.tree, suite);
    let Selected {
        groups,
        links,
        old_groups,
    } = select(ctx, suite, release, old.as_ref())?;
    let known_absent = known_absent(&old_groups, &live_dir);

    let dir = staging_root(&ctx.tree).join(suite);
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let next = NextGeneration {
        suite,
        live_dir: &live_dir,
        dir: &dir,
        old: old.as_ref(),
        by_hash: release.acquire_by_hash,
        known_absent: &known_absent,
    };

    // Every variant of every group: link if unchanged, fetch otherwise; a 404 is fine as long
    // as upstream serves none of it either (Debian lists uncompressed files it never serves).
    let files: Vec<&FileRef> = groups.iter().flat_map(|g| g.variants.iter()).collect();
    let results: Vec<Result<Option<&FileRef>, SyncError>> = futures_util::stream::iter(files)
        .map(|f| stage_file(ctx, &next, f))
        .buffer_unordered(ctx.cfg.concurrency)
        .collect()
        .await;
    let mut present: Vec<&FileRef> = Vec::new();
    for r in results {
        if let Some(f) = r? {
            present.push(f);
        }
    }
    let present_paths: HashSet<&str> = present.iter().map(|f| f.path.as_str()).collect();
    for g in &groups {
        if !g
            .variants
            .iter()
            .any(|v| present_paths.contains(v.path.as_str()))
        {
            let url = ctx.suite_shown(suite, &g.base);
            if g.required {
                return Err(SyncError::MissingIndex { what: url });
            }
            tracing::debug!("{url}: listed, but upstream serves no variant of it");
        }
    }
    let extra = listed::stage_listed(
        ctx,
        suite,
        &live_dir,
        &dir,
        old.as_ref(),
        &groups,
        &present_paths,
    )
    .await?;
    listed::place_links(&dir, &links)?;
    for prefix in super::plan::self_links(release) {
        let at = dir.join(&prefix);
        std::os::unix::fs::symlink(".", &at).map_err(io_err(&at))?;
    }

    let mut staged_groups = Vec::new();
    let mut old_sources = Vec::new();
    let mut index_changes = Vec::new();
    let reserved: Arc<[String]> = layout::reserved_pool_roots(ctx.mirror, release).into();
    for g in groups.iter().filter(|g| g.kind.lists_pool()) {
        let source = parse_source(g, suite, &dir, &reserved, |f| {
            present_paths.contains(f.path.as_str())
        });
        let old_source = old_groups.iter().find(|o| o.base == g.base).and_then(|o| {
            parse_source(o, suite, &live_dir, &reserved, |f| {
                live_dir.join(f.path.as_path()).is_file()
            })
        });
        let changed = match (&source, &old_source) {
            (Some(n), Some(o)) => n.sha256 != o.sha256,
            _ => true,
        };
        if changed {
            index_changes.push((old_source.clone(), source.clone()));
            old_sources.extend(old_source);
        }
        staged_groups.push(StagedGroup { source, changed });
    }
    // Groups that are gone from the new selection: all their pool files may be unreferenced.
    for o in &old_groups {
        if !groups.iter().any(|g| g.base == o.base)
            && let Some(s) = parse_source(o, suite, &live_dir, &reserved, |f| {
                live_dir.join(f.path.as_path()).is_file()
            })
        {
            index_changes.push((Some(s.clone()), None));
            old_sources.push(s);
        }
    }

    tracing::debug!(
        "stage {suite}: {} files Release lists, {extra} files from listings",
        present.len()
    );
    let mut state = place_by_hash(ctx, suite, release, old.as_ref(), &present, prev)?;
    state.aliases = upstream_aliases(ctx, up, release).await?;
    write_release_files(up, keyring, &dir, ctx)?;

    Ok(StagedSuite {
        suite: suite.clone(),
        dir,
        initial: old.is_none(),
        verified,
        groups: staged_groups,
        old_sources,
        index_changes,
        state,
    })
}

/// The names from [`super::plan::aliases`] under which upstream serves this very suite (the
/// same signed Release bytes): its `dists/stable` link to `bookworm`. A name upstream does not
/// serve is not invented on the mirror.
async fn upstream_aliases(
    ctx: &Ctx<'_>,
    up: &UpstreamRelease,
    release: &Release,
) -> Result<Vec<String>, SyncError> {
    let (name, ours) = match (&up.inrelease, &up.release) {
        (Some(b), _) => ("InRelease", b),
        (None, Some(b)) => ("Release", b),
        (None, None) => return Ok(Vec::new()),
    };
    let mut out = Vec::new();
    if ctx.mirror.flat {
        return Ok(out);
    }
    for alias in super::plan::aliases(&up.suite, release) {
        let url = ctx.suite_url(&alias, name);
        if ctx.fetcher.get_small(&url, MAX_RELEASE).await?.as_ref() == Some(ours) {
            out.push(alias);
        }
    }
    Ok(out)
}

pub(crate) fn parse_source(
    g: &IndexGroup,
    suite: &str,
    dir: &Path,
    reserved: &Arc<[String]>,
    exists: impl Fn(&FileRef) -> bool,
) -> Option<ParseSource> {
    if !g.kind.lists_pool() {
        return None;
    }
    let f = g.by_decode_cost().into_iter().find(|f| exists(f))?;
    Some(ParseSource {
        path: dir.join(f.path.as_path()),
        display: format!("dists/{suite}/{}", f.path),
        compression: Compression::from_name(f.path.as_str())?,
        kind: g.kind,
        sha256: f.sha256,
        reserved: reserved.clone(),
    })
}

/// What staging one file of a suite needs to know about the generation being built.
#[derive(Clone, Copy)]
struct NextGeneration<'a> {
    suite: &'a str,
    live_dir: &'a Path,
    dir: &'a Path,
    old: Option<&'a Release>,
    by_hash: bool,
    known_absent: &'a HashSet<&'a str>,
}

async fn stage_file<'f>(
    ctx: &Ctx<'_>,
    next: &NextGeneration<'_>,
    f: &'f FileRef,
) -> Result<Option<&'f FileRef>, SyncError> {
    let NextGeneration {
        suite,
        live_dir,
        dir,
        old,
        by_hash,
        known_absent,
    } = *next;
    let dest = dir.join(f.path.as_path());
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    let live = live_dir.join(f.path.as_path());
    if unchanged_in(old, f) {
        if std::fs::hard_link(&live, &dest).is_ok() {
            return Ok(Some(f));
        }
        if known_absent.contains(f.path.as_str()) {
            return Ok(None);
        }
    }
    let want = Expected::new(f.size, f.sha256);
    // by-hash first when upstream offers it: immune to upstream replacing the file by name
    // between our InRelease fetch and this request.
    if by_hash {
        let url = ctx.suite_url(suite, &by_hash_path(f));
        match ctx.fetcher.download_in_task(&url, &dest, want).await {
            Ok(()) => return Ok(Some(f)),
            Err(FetchError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let url = ctx.suite_url(suite, f.path.as_str());
    match ctx.fetcher.download_in_task(&url, &dest, want).await {
        Ok(()) => Ok(Some(f)),
        Err(FetchError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Links each present index under `by-hash/SHA256/<hash>` and carries over the by-hash files
/// of the previous generations still within retention, so a client that fetched the old
/// InRelease a moment before the swap still finds the indices it names.
fn place_by_hash(
    ctx: &Ctx<'_>,
    suite: &str,
    release: &Release,
    old: Option<&Release>,
    present: &[&FileRef],
    prev: Option<&SuiteState>,
) -> Result<SuiteState, SyncError> {
    let live_dir = crate::tree::suite_dir(&ctx.tree, suite);
    let dir = staging_root(&ctx.tree).join(suite);
    let mut state = SuiteState {
        date: release.date,
        ..SuiteState::default()
    };
    if !release.acquire_by_hash {
        return Ok(state);
    }
    let mut current = Vec::new();
    for f in present {
        let staged = dir.join(f.path.as_path());
        let rel = by_hash_path(f);
        link_or_copy(&staged, &dir.join(&rel))?;
        current.push(rel);
        if let Some(sha512) = release.sha512_of(f.path.as_str()) {
            // A file carried over from the live tree was checked when it arrived.
            if !unchanged_in(old, f) {
                check_sha512(&staged, sha512, &format!("dists/{suite}/{}", f.path))?;
            }
            let rel = match f.path.parent() {
                "" => format!("by-hash/SHA512/{sha512}"),
                parent => format!("{parent}/by-hash/SHA512/{sha512}"),
            };
            link_or_copy(&staged, &dir.join(&rel))?;
            current.push(rel);
        }
    }
    current.sort();
    current.dedup();
    let keep_old = ctx.cfg.by_hash_generations.saturating_sub(1);
    let mut generations = vec![current];
    for generation in prev.map(|p| p.by_hash.as_slice()).unwrap_or_default() {
        if generations.len() > keep_old {
            break;
        }
        let mut kept = Vec::new();
        for rel in generation {
            let target = dir.join(rel);
            if target.exists() {
                kept.push(rel.clone());
                continue;
            }
            if link_or_copy(&live_dir.join(rel), &target).is_ok() {
                kept.push(rel.clone());
            }
        }
        if !kept.is_empty() && !generations.contains(&kept) {
            generations.push(kept);
        }
    }
    state.by_hash = generations;
    Ok(state)
}

/// SHA512 of a staged index against the signed Release: only needed for repositories that
/// list SHA512 (Ubuntu, apt-ftparchive), where apt requests `by-hash/SHA512/`.
fn check_sha512(path: &Path, want: &str, shown: &str) -> Result<(), SyncError> {
    use sha2::Digest;
    let file = std::fs::File::open(path).map_err(io_err(path))?;
    let (hasher, _) = crate::fetch::digest_reader::<sha2::Sha512>(file).map_err(io_err(path))?;
    let got = hex::encode(hasher.finalize());
    if got != want {
        return Err(SyncError::Index {
            file: shown.to_string(),
            detail: format!("SHA512 mismatch: Release says {want}, file has {got}"),
        });
    }
    Ok(())
}

fn link_or_copy(from: &Path, to: &Path) -> Result<(), SyncError> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    match std::fs::hard_link(from, to) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(_) => std::fs::copy(from, to).map(|_| ()).map_err(io_err(to)),
    }
}

/// InRelease as upstream signed it; Release + Release.gpg too when they verify and say the
/// same as InRelease (an upstream caught mid-update may briefly serve a mismatched pair; then
/// only InRelease is published, which every apt since 0.7.22 prefers anyway).
fn write_release_files(
    up: &UpstreamRelease,
    keyring: &Keyring,
    dir: &Path,
    ctx: &Ctx<'_>,
) -> Result<(), SyncError> {
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).map_err(io_err(&p))
    };
    if let Some(b) = &up.inrelease {
        write("InRelease", b)?;
    }
    if let (Some(r), Some(sig)) = (&up.release, &up.release_gpg) {
        let what = ctx.suite_shown(&up.suite, "Release");
        let detached = verify_detached(r, sig, keyring, &what);
        let agrees = match (&detached, &up.inrelease) {
            (Ok(d), Some(inrel)) => {
                verify_inrelease(inrel, keyring, &what).is_ok_and(|v| v.release() == d.release())
            }
            (Ok(_), None) => true,
            (Err(_), _) => false,
        };
        if agrees {
            write("Release", r)?;
            write("Release.gpg", sig)?;
        } else {
            tracing::warn!(
                "{what}: Release/Release.gpg do not verify or disagree with InRelease; publishing InRelease only"
            );
        }
    }
    Ok(())
}
