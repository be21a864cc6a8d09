//! The per-run changelog, `project/debsync/changes/<serial>.json`: which packages a run added,
//! upgraded and removed, per suite (the machine-readable heir of an archive's CHANGELOG).
//!
//! 1. **diff** (on a blocking thread after the pool stage, while the old indices are still
//!    live): each Packages or Sources index that changed is compared with the live one it
//!    replaces, in streaming passes over their pool manifests (which the pool stage has just
//!    read or written: a few milliseconds each, where parsing a 50 MB index costs a hundred):
//!    the old index becomes a sorted table of 16-byte keys of (package, arch, version); the
//!    new one is streamed against it (what is not in the table was added); the old one is
//!    streamed again for the keys nobody claimed (removed). A package with exactly one
//!    version removed and one added is an upgrade (`from` → `to`; a downgrade is recorded
//!    the same way). Memory: 17 bytes an old entry plus the changes, after the pool stage's
//!    tables are gone. A suite with no live generation before the run is recorded as
//!    `initial`, without listing its packages.
//! 2. **write** (right before the swap's durability barrier, so the changelog goes live and
//!    durable with the generation it describes): temp name, then rename; public, served like
//!    the trace. A swap that fails removes it again.
//! 3. **prune**: only the newest `[sync] changes_kept` files stay.
//!
//! The name is upstream's archive serial (from its `project/trace/master`), else a
//! timestamp serial `YYYYMMDDHHMMSS` (UTC) of the run; a name already taken gets `-2`, `-3`….

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::generation::{ParseSource, StagedSuite};
use super::manifest;
use super::pool::{PathKey, bytes_key, find_key, for_each_entry};
use super::{Ctx, SyncError, io_err};
use crate::archive::PackageId;

/// One run's changes.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Changelog {
    pub mirror: String,
    /// The file's name without `.json`: upstream's archive serial or a timestamp serial.
    pub serial: String,
    /// Unix seconds at which the run went live.
    pub date: i64,
    pub suites: Vec<SuiteChanges>,
}

/// What changed in one suite.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct SuiteChanges {
    pub suite: String,
    /// The suite's first generation on this mirror: its packages are not listed.
    pub initial: bool,
    pub added: Vec<Package>,
    pub upgraded: Vec<Upgrade>,
    pub removed: Vec<Package>,
}

/// A package version of one architecture (`source` for a Sources entry).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(default)]
pub struct Package {
    pub package: String,
    pub arch: String,
    pub version: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Upgrade {
    pub package: String,
    pub arch: String,
    pub from: String,
    pub to: String,
}

impl SuiteChanges {
    pub fn is_empty(&self) -> bool {
        !self.initial
            && self.added.is_empty()
            && self.upgraded.is_empty()
            && self.removed.is_empty()
    }
}

/// What step 1 needs of a staged suite, owned (it runs on a blocking thread).
pub(crate) struct SuiteIndices {
    suite: String,
    initial: bool,
    /// (live index, new index) of every pool-listing index that changed, appeared or went.
    pairs: Vec<(Option<ParseSource>, Option<ParseSource>)>,
}

impl SuiteIndices {
    pub(crate) fn of(staged: &[StagedSuite]) -> Vec<SuiteIndices> {
        staged
            .iter()
            .map(|s| SuiteIndices {
                suite: s.suite.clone(),
                initial: s.initial,
                pairs: s.index_changes.clone(),
            })
            .collect()
    }
}

pub(crate) type Diff = tokio::task::JoinHandle<Result<Vec<SuiteChanges>, SyncError>>;

/// Starts the diff of this run's changelog  on a blocking thread; `None` with
/// `changes_kept = 0`.
pub(crate) fn start(ctx: &Ctx<'_>, staged: &[StagedSuite]) -> Option<Diff> {
    if ctx.cfg.changes_kept == 0 {
        return None;
    }
    let suites = SuiteIndices::of(staged);
    let tree = ctx.tree.clone();
    Some(tokio::task::spawn_blocking(move || {
        let phase = std::time::Instant::now();
        let diff = diff_suites(&tree, &suites);
        tracing::debug!("changelog: diff in {:?}", phase.elapsed());
        diff
    }))
}

/// The changelog of this run, named by upstream's archive serial; `None` when no package
/// changed. Not worth failing a run over: an index the diff cannot read is a warning and no
/// changelog.
pub(crate) async fn finish(ctx: &Ctx<'_>, diff: Option<Diff>) -> Option<Changelog> {
    let suites = match diff?.await {
        Ok(Ok(suites)) if suites.is_empty() => return None,
        Ok(Ok(suites)) => suites,
        Ok(Err(e)) => {
            tracing::warn!("{}: no changelog for this run: {e}", ctx.mirror.name);
            return None;
        }
        Err(e) => {
            tracing::warn!("{}: no changelog for this run: {e}", ctx.mirror.name);
            return None;
        }
    };
    let date = super::now_unix();
    let serial = super::trace::upstream_serial(ctx)
        .await
        .unwrap_or_else(|| timestamp_serial(date));
    Some(Changelog {
        mirror: ctx.mirror.name.clone(),
        serial,
        date,
        suites,
    })
}

/// Step 1: each suite's changes; suites where nothing changed are left out.
pub(crate) fn diff_suites(
    tree: &Path,
    suites: &[SuiteIndices],
) -> Result<Vec<SuiteChanges>, SyncError> {
    let mut out = Vec::new();
    for s in suites {
        let mut changes = SuiteChanges {
            suite: s.suite.clone(),
            initial: s.initial,
            ..SuiteChanges::default()
        };
        if !s.initial {
            for (old, new) in &s.pairs {
                diff_index(tree, old.as_ref(), new.as_ref(), &mut changes)?;
            }
            pair_upgrades(&mut changes);
        }
        if !changes.is_empty() {
            out.push(changes);
        }
    }
    Ok(out)
}

/// Calls `f` with the package of every stanza of a Packages or Sources index and its key,
/// from the index's manifest (which the pool stage has just read or written) when there is
/// one. A Sources stanza comes once per file it lists, and a damaged manifest may have passed
/// some before the index is parsed: callers tolerate repeats.
fn for_each_package(
    tree: &Path,
    src: &ParseSource,
    mut f: impl FnMut(PathKey, PackageId<'_>),
) -> Result<(), SyncError> {
    let stored = manifest::read_packages(&manifest::path(tree, &src.sha256), |bytes, id| {
        f(bytes_key(bytes), id);
        Ok::<(), SyncError>(())
    })?;
    if stored {
        return Ok(());
    }
    let mut bytes = Vec::new();
    // Packages a manifest would leave out are left out here too: both sources key alike.
    for_each_entry(src, |_, id| {
        if let Some(id) = id.filter(manifest::storable) {
            manifest::package_bytes(&id, &mut bytes);
            f(bytes_key(&bytes), id);
        }
        Ok(())
    })
}

/// Adds what differs between a live index and its replacement to `out` (added and removed
/// only; [`pair_upgrades`] then finds the upgrades among them).
fn diff_index(
    tree: &Path,
    old: Option<&ParseSource>,
    new: Option<&ParseSource>,
    out: &mut SuiteChanges,
) -> Result<(), SyncError> {
    let mut table: Vec<PathKey> = Vec::new();
    if let Some(old) = old {
        for_each_package(tree, old, |key, _| table.push(key))?;
    }
    table.sort_unstable();
    table.dedup();
    let mut kept = vec![false; table.len()];
    if let Some(new) = new {
        for_each_package(tree, new, |key, id| match find_key(&table, &key, |k| k) {
            Ok(i) => kept[i] = true,
            Err(_) => out.added.push(package(id)),
        })?;
    }
    if let Some(old) = old.filter(|_| kept.iter().any(|k| !k)) {
        for_each_package(tree, old, |key, id| {
            if let Ok(i) = find_key(&table, &key, |k| k)
                && !kept[i]
            {
                kept[i] = true;
                out.removed.push(package(id));
            }
        })?;
    }
    Ok(())
}

fn package(id: PackageId<'_>) -> Package {
    Package {
        package: id.name.to_string(),
        arch: id.arch.to_string(),
        version: id.version.to_string(),
    }
}

/// A (package, arch) with exactly one version added and one removed was upgraded. Linear
/// after the sort: a transition touching thousands of packages stays cheap.
fn pair_upgrades(c: &mut SuiteChanges) {
    use std::collections::BTreeMap;
    c.added.sort();
    c.added.dedup();
    c.removed.sort();
    c.removed.dedup();
    // (package, arch) → (versions added, versions removed, the removed one)
    let mut by_name: BTreeMap<(&str, &str), (usize, usize, &str)> = BTreeMap::new();
    for p in &c.added {
        by_name.entry((&p.package, &p.arch)).or_default().0 += 1;
    }
    for p in &c.removed {
        let e = by_name.entry((&p.package, &p.arch)).or_default();
        e.1 += 1;
        e.2 = &p.version;
    }
    let upgrades: Vec<Upgrade> = c
        .added
        .iter()
        .filter_map(
            |a| match by_name.get(&(a.package.as_str(), a.arch.as_str())) {
                Some(&(1, 1, from)) => Some(Upgrade {
                    package: a.package.clone(),
                    arch: a.arch.clone(),
                    from: from.to_string(),
                    to: a.version.clone(),
                }),
                _ => None,
            },
        )
        .collect();
    let upgraded: std::collections::HashSet<(String, String)> = upgrades
        .iter()
        .map(|u| (u.package.clone(), u.arch.clone()))
        .collect();
    let kept = |p: &Package| !upgraded.contains(&(p.package.clone(), p.arch.clone()));
    c.added.retain(kept);
    c.removed.retain(kept);
    c.upgraded = upgrades;
}

/// `YYYYMMDDHHMMSS` (UTC): the serial of a run whose upstream has no archive serial.
pub(crate) fn timestamp_serial(t: i64) -> String {
    let secs = t.rem_euclid(86_400);
    format!(
        "{}{:02}{:02}{:02}",
        crate::archive::date::format_ymd(t),
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Step 2: writes the changelog under a free name; returns its path (for [`unwrite`]).
pub(crate) fn write(tree: &Path, log: &mut Changelog) -> Result<PathBuf, SyncError> {
    let dir = crate::tree::changes_dir(tree);
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let base = log.serial.clone();
    let mut n = 1;
    let path = loop {
        let name = if n == 1 {
            base.clone()
        } else {
            format!("{base}-{n}")
        };
        let path = dir.join(format!("{name}.json"));
        if !path.exists() {
            log.serial = name;
            break path;
        }
        n += 1;
    };
    let mut bytes = serde_json::to_vec_pretty(log).map_err(|e| io_err(&path)(e.into()))?;
    bytes.push(b'\n');
    super::write_replace(&path, &bytes).map_err(io_err(&path))?;
    Ok(path)
}

/// Takes back a changelog whose generation did not go live.
pub(crate) fn unwrite(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        tracing::warn!("{}: cannot remove: {e}", path.display());
    }
}

/// Step 3: deletes all but the newest `keep` changelogs (by modification time, then name).
pub(crate) fn prune(tree: &Path, keep: usize) {
    let mut logs = list(tree);
    if logs.len() <= keep {
        return;
    }
    logs.truncate(logs.len() - keep);
    for (_, path) in logs {
        if let Err(e) = std::fs::remove_file(&path) {
            tracing::warn!("{}: cannot remove: {e}", path.display());
        }
    }
}

/// The changelog files of a tree, oldest first.
fn list(tree: &Path) -> Vec<(std::time::SystemTime, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(crate::tree::changes_dir(tree)) else {
        return Vec::new();
    };
    let mut logs: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.ends_with(".json") && !name.starts_with('.')
        })
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    logs.sort();
    logs
}

/// Every changelog of a tree, oldest first; an unreadable one is skipped with a warning.
pub fn read_all(tree: &Path) -> Vec<Changelog> {
    let mut out: Vec<Changelog> = list(tree)
        .into_iter()
        .filter_map(|(_, path)| {
            let parsed = std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()));
            parsed
                .inspect_err(|e| tracing::warn!("{}: skipped: {e}", path.display()))
                .ok()
        })
        .collect();
    out.sort_by_key(|c| c.date);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::compression::Compression;

    fn package(name: &str, arch: &str, version: &str) -> Package {
        super::package(PackageId {
            name,
            arch,
            version,
        })
    }

    fn index(dir: &Path, name: &str, text: &str) -> ParseSource {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        ParseSource {
            path,
            display: name.into(),
            compression: Compression::from_name("Packages").unwrap(),
            kind: crate::sync::plan::IndexKind::Packages,
            sha256: crate::archive::Sha256::digest(text.as_bytes()),
            reserved: std::sync::Arc::from(Vec::new()),
        }
    }

    fn stanza(name: &str, version: &str) -> String {
        format!(
            "Package: {name}\nVersion: {version}\nArchitecture: amd64\nFilename: pool/{name}_{version}.deb\nSize: 1\nSHA256: {}\n\n",
            "0".repeat(64)
        )
    }

    #[test]
    fn added_upgraded_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let old = index(
            dir.path(),
            "old",
            &[stanza("a", "1"), stanza("b", "1"), stanza("c", "1")].concat(),
        );
        let new = index(
            dir.path(),
            "new",
            &[stanza("a", "1"), stanza("b", "2"), stanza("d", "1")].concat(),
        );
        let suites = [SuiteIndices {
            suite: "stable".into(),
            initial: false,
            pairs: vec![(Some(old), Some(new))],
        }];
        let changes = diff_suites(dir.path(), &suites).unwrap();
        assert_eq!(changes.len(), 1);
        let c = &changes[0];
        assert_eq!(c.added, vec![package("d", "amd64", "1")]);
        assert_eq!(c.removed, vec![package("c", "amd64", "1")]);
        assert_eq!(
            c.upgraded,
            vec![Upgrade {
                package: "b".into(),
                arch: "amd64".into(),
                from: "1".into(),
                to: "2".into()
            }]
        );
    }

    /// Two versions of one package in one index (a repository that keeps old ones): only a
    /// one-for-one replacement is an upgrade.
    #[test]
    fn several_versions_of_a_package_are_added_and_removed_as_such() {
        let mut c = SuiteChanges {
            added: vec![package("a", "amd64", "3"), package("a", "amd64", "2")],
            removed: vec![package("a", "amd64", "1"), package("b", "all", "1")],
            ..SuiteChanges::default()
        };
        pair_upgrades(&mut c);
        assert!(c.upgraded.is_empty());
        assert_eq!(c.added.len(), 2);
        let mut c = SuiteChanges {
            added: vec![package("b", "all", "2")],
            removed: vec![package("b", "all", "1"), package("b", "amd64", "1")],
            ..SuiteChanges::default()
        };
        pair_upgrades(&mut c);
        assert_eq!(c.upgraded.len(), 1);
        assert_eq!(c.removed, vec![package("b", "amd64", "1")]);
        assert!(c.added.is_empty());
    }

    /// The pool stage leaves a manifest of each index it read; the diff reads those instead
    /// of parsing the indices again (here the old index itself is gone).
    #[test]
    fn manifests_stand_in_for_the_indices() {
        let dir = tempfile::tempdir().unwrap();
        let old = index(
            dir.path(),
            "old",
            &[stanza("a", "1"), stanza("b", "1")].concat(),
        );
        let new = index(
            dir.path(),
            "new",
            &[stanza("a", "2"), stanza("b", "1")].concat(),
        );
        for src in [&old, &new] {
            crate::sync::pool::for_each_listed(
                crate::sync::manifest::Manifests::of_run(dir.path()),
                src,
                |_, _| Ok(()),
            )
            .unwrap();
        }
        std::fs::remove_file(&old.path).unwrap();
        let suites = [SuiteIndices {
            suite: "stable".into(),
            initial: false,
            pairs: vec![(Some(old), Some(new))],
        }];
        let c = diff_suites(dir.path(), &suites).unwrap();
        assert_eq!(
            c[0].upgraded,
            vec![Upgrade {
                package: "a".into(),
                arch: "amd64".into(),
                from: "1".into(),
                to: "2".into()
            }]
        );
        assert!(c[0].added.is_empty() && c[0].removed.is_empty());
    }

    #[test]
    fn unchanged_content_records_nothing_and_first_runs_are_initial() {
        let dir = tempfile::tempdir().unwrap();
        let text = [stanza("a", "1"), stanza("b", "1")].concat();
        let old = index(dir.path(), "old", &text);
        let new = index(dir.path(), "new", &format!("{text}\n"));
        let same = [SuiteIndices {
            suite: "stable".into(),
            initial: false,
            pairs: vec![(Some(old), Some(new.clone()))],
        }];
        assert!(diff_suites(dir.path(), &same).unwrap().is_empty());
        let first = [SuiteIndices {
            suite: "stable".into(),
            initial: true,
            pairs: vec![(None, Some(new))],
        }];
        let c = diff_suites(dir.path(), &first).unwrap();
        assert!(c[0].initial && c[0].added.is_empty());
    }

    #[test]
    fn names_prune_and_read_back() {
        assert_eq!(timestamp_serial(86_400 + 3661), "19700102010101");
        let tree = tempfile::tempdir().unwrap();
        let mut names = Vec::new();
        for date in 1..=3 {
            let mut log = Changelog {
                mirror: "m".into(),
                serial: "2026120201".into(),
                date,
                suites: Vec::new(),
            };
            write(tree.path(), &mut log).unwrap();
            names.push(log.serial);
        }
        assert_eq!(names, ["2026120201", "2026120201-2", "2026120201-3"]);
        assert_eq!(read_all(tree.path()).len(), 3);
        prune(tree.path(), 2);
        let left: Vec<i64> = read_all(tree.path()).iter().map(|c| c.date).collect();
        assert_eq!(left.len(), 2);
    }
}
