//! The tree of one mirror, `<root>/<name>/`, as docs/CONTRACT.md describes it: every name
//! sync writes and every name serve must hide, in one place.
//!
//! - `dists/<suite>/`: a live generation, swapped whole; `dists/<alias>` links to one.
//! - `pool/…`: package files (a flat repository's are at the root).
//! - `project/trace/`: trace files.
//! - `project/debsync/changes/<serial>.json`: what each run added, upgraded and removed.
//! - `.debsync/`: private: `state.json`, `staging/`, `manifests/`, `waiting/`, and
//!   `schedule.json` while `debsync daemon` runs; in an edge cache's tree `cache/` (the
//!   upstream validators of each cached InRelease).
//! - `Archive-Update-in-Progress-<host>`: the run lock (ftpsync's name). Served, as ftpsync's
//!   is: a downstream mirror that sees it knows we are mid-update and waits.
//! - `.<file>.debsync-tmp` (a download in progress) and `.<file>.debsync-next` (a replacement
//!   waiting for the swap), beside their final names.
//!
//! Private: every name starting with `.`.

use std::path::{Path, PathBuf};

/// Prefix of ftpsync's flag files at the top of a tree (`Archive-Update-in-Progress-*`,
/// `Archive-Update-Required-*`).
pub(crate) const FLAG_PREFIX: &str = "Archive-Update-";

/// Prefix of the run lock's name.
pub(crate) const LOCK_PREFIX: &str = "Archive-Update-in-Progress-";

const TEMP_SUFFIX: &str = ".debsync-tmp";
const PENDING_SUFFIX: &str = ".debsync-next";

/// `dists/<suite>`: a suite's live generation (or an alias link to one).
pub(crate) fn suite_dir(tree: &Path, suite: &str) -> PathBuf {
    tree.join("dists").join(suite)
}

/// `.debsync/`: the private state directory.
pub(crate) fn state_dir(tree: &Path) -> PathBuf {
    tree.join(".debsync")
}

/// `.debsync/state.json`.
pub(crate) fn state_file(tree: &Path) -> PathBuf {
    state_dir(tree).join("state.json")
}

/// `.debsync/schedule.json`: a running daemon's plan for the mirror.
pub(crate) fn schedule_file(tree: &Path) -> PathBuf {
    state_dir(tree).join("schedule.json")
}

/// `.debsync/staging/`: next generations being built.
pub(crate) fn staging_dir(tree: &Path) -> PathBuf {
    state_dir(tree).join("staging")
}

/// `.debsync/manifests/`: what each verified index lists, by the index's SHA256.
pub(crate) fn manifests_dir(tree: &Path) -> PathBuf {
    state_dir(tree).join("manifests")
}

/// `.debsync/waiting/`: new pool files whose directory is still a file the live generation
/// names.
pub(crate) fn waiting_dir(tree: &Path) -> PathBuf {
    state_dir(tree).join("waiting")
}

/// `.debsync/cache/validators/<suite>`: an edge cache's `ETag`/`Last-Modified` of a suite's
/// cached InRelease (`/` in a suite name becomes `+`).
pub(crate) fn cache_validators(tree: &Path, suite: &str) -> PathBuf {
    state_dir(tree)
        .join("cache/validators")
        .join(suite.replace('/', "+"))
}

/// `dir/.name.<tag>.debsync-tmp`: an edge cache's download in progress. The tag (process id and
/// a counter) keeps two processes filling one cache (a server and `debsync preheat`) apart.
pub(crate) fn unique_temp_path(dest: &Path, tag: &str) -> PathBuf {
    hidden_sibling(dest, &format!(".{tag}{TEMP_SUFFIX}"))
}

/// `project/trace/`.
pub(crate) fn trace_dir(tree: &Path) -> PathBuf {
    tree.join("project/trace")
}

/// `project/debsync/changes/`: one public JSON changelog per run that changed packages.
pub(crate) fn changes_dir(tree: &Path) -> PathBuf {
    tree.join("project/debsync/changes")
}

/// `Archive-Update-in-Progress-<hostname>`: the run lock.
pub(crate) fn lock_name(hostname: &str) -> String {
    format!("{LOCK_PREFIX}{hostname}")
}

/// An ftpsync flag file's name: ours to write, never an upstream file's.
pub(crate) fn is_flag_name(name: &str) -> bool {
    name.starts_with(FLAG_PREFIX)
}

/// A name no client may reach or see listed: hidden (`.…`: state, temp and pending files).
/// The run lock is public: downstream mirrors look for it (see [`mentions_update_flag`]).
pub(crate) fn is_private_name(name: &str) -> bool {
    name.starts_with('.')
}

/// Whether a listing of an upstream's top directory (an HTML autoindex, or debsync's JSON)
/// names an `Archive-Update-in-Progress-*` flag: upstream is mid-update.
pub(crate) fn mentions_update_flag(listing: &str) -> bool {
    listing.contains(LOCK_PREFIX)
}

/// `dir/.name.debsync-tmp`: where a download goes until its hash checks out.
pub(crate) fn temp_path(dest: &Path) -> PathBuf {
    hidden_sibling(dest, TEMP_SUFFIX)
}

/// `dir/.name.debsync-next`: a replacement waiting for the swap.
pub(crate) fn pending_path(dest: &Path) -> PathBuf {
    hidden_sibling(dest, PENDING_SUFFIX)
}

/// A temp or pending file a killed run may have left.
pub(crate) fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && (name.ends_with(TEMP_SUFFIX) || name.ends_with(PENDING_SUFFIX))
}

fn hidden_sibling(dest: &Path, suffix: &str) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    dest.with_file_name(format!(".{name}{suffix}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_the_tree() {
        let t = Path::new("/m");
        assert_eq!(
            temp_path(&t.join("pool/a/b.deb")),
            t.join("pool/a/.b.deb.debsync-tmp")
        );
        assert_eq!(
            pending_path(&t.join("pool/a/b.deb")),
            t.join("pool/a/.b.deb.debsync-next")
        );
        assert!(is_temp_name(".b.deb.debsync-tmp") && is_temp_name(".b.deb.debsync-next"));
        let unique = unique_temp_path(&t.join("pool/a/b.deb"), "7-1");
        assert_eq!(unique, t.join("pool/a/.b.deb.7-1.debsync-tmp"));
        assert!(is_temp_name(&unique.file_name().unwrap().to_string_lossy()));
        assert!(!is_temp_name("b.deb.debsync-tmp"));
        assert_eq!(state_file(t), t.join(".debsync/state.json"));
        assert_eq!(suite_dir(t, "stable"), t.join("dists/stable"));
        for private in [".debsync", ".x.deb.debsync-tmp"] {
            assert!(is_private_name(private), "{private}");
        }
        for public in ["pool", "Archive-Update-Required-x", &lock_name("host")] {
            assert!(!is_private_name(public), "{public}");
        }
        assert!(mentions_update_flag(
            "<a href=\"Archive-Update-in-Progress-hub\">Archive-Update-in-Progress-hub</a>"
        ));
        assert!(!mentions_update_flag("<a href=\"dists/\">dists/</a>"));
        assert!(is_flag_name("Archive-Update-Required-x") && is_flag_name(&lock_name("h")));
    }
}
