//! `debsync check`: config, keyrings, upstream, signatures and the plan of the next sync
//! (files, bytes, deletions, free disk space), against the real sample archive; the whole
//! tree, private files and run lock included, is byte-identical before and after.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::*;
use crate::support::*;

/// Every name under `tree` (hidden ones and the lock too): path → SHA-256 of the bytes, or
/// the link target.
fn whole_tree(tree: &Path) -> BTreeMap<String, String> {
    render_walk(tree)
        .into_iter()
        .map(|rel| {
            let p = tree.join(&rel);
            let meta = std::fs::symlink_metadata(&p).unwrap();
            let value = if meta.file_type().is_symlink() {
                format!("-> {}", std::fs::read_link(&p).unwrap().display())
            } else {
                sha256_hex(&std::fs::read(&p).unwrap())
            };
            (rel, value)
        })
        .collect()
}

fn render_walk(tree: &Path) -> Vec<String> {
    crate::common::render::walk_files(tree)
}

/// `debsync check --config <config> <extra…> --json`: (exit ok, the report of each mirror).
fn check_json(f: &Fixture, extra: &[&str]) -> (bool, serde_json::Value, String) {
    let config = f.config_str();
    let mut args = vec!["check", "--config", &config, "--json"];
    args.extend_from_slice(extra);
    let out = run_debsync(&args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let json = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("check --json printed no JSON ({e}):\n{stdout}"));
    (
        out.status.success(),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn check_text(f: &Fixture) -> (bool, String, String) {
    let out = run_debsync(&["check", "--config", &f.config_str()]);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn before_the_first_sync_it_plans_everything_and_creates_nothing() {
    let f = Fixture::new(|_| {}, "");
    let (ok, text, err) = check_text(&f);
    assert!(ok, "{text}\n{err}");
    for want in [
        "debian: ok",
        "key(s) from",
        "archive.gpg",
        "stable: Release verified",
        "changed since the last sync",
        "pool:     3 file(s) to download (12.0 KiB), 0 on disk to re-hash, of 3 listed",
        "delete:   0 file(s)",
        "free on ",
    ] {
        assert!(text.contains(want), "{want:?} missing:\n{text}");
    }
    let (ok, json, _) = check_json(&f, &[]);
    assert!(ok);
    let m = &json[0];
    assert_eq!(m["mirror"], "debian");
    assert_eq!(m["ok"], true);
    assert_eq!(m["up_to_date"], false);
    assert_eq!(m["pool_download_files"], 3);
    assert_eq!(m["pool_download_bytes"], 3 * DEB_LEN as u64);
    assert!(m["index_files"].as_u64().unwrap() > 0, "{m}");
    let needed = m["needed_bytes"].as_u64().unwrap();
    assert_eq!(
        needed,
        m["index_bytes"].as_u64().unwrap() + 3 * DEB_LEN as u64
    );
    assert!(m["free_bytes"].as_u64().unwrap() > needed);
    assert_eq!(m["suites"][0]["suite"], "stable");
    assert!(!m["suites"][0]["signed_by"].as_array().unwrap().is_empty());
    assert!(!f.tree().exists(), "check created {}", f.tree().display());
}

/// An up-to-date mirror: nothing to download, and the whole tree (state, manifests, lock
/// name) exactly as it was.
#[test]
fn an_up_to_date_mirror_plans_nothing_and_is_left_byte_identical() {
    let f = Fixture::new(|_| {}, "");
    f.sync_ok();
    let before = whole_tree(&f.tree());
    let (ok, json, err) = check_json(&f, &[]);
    assert!(ok, "{err}");
    let m = &json[0];
    assert_eq!(m["up_to_date"], true, "{m}");
    assert_eq!(m["needed_bytes"], 0);
    assert_eq!(m["pool_download_files"], 0);
    assert_eq!(whole_tree(&f.tree()), before);
    let (_, text, _) = check_text(&f);
    assert!(
        text.contains("up to date: a sync would download nothing"),
        "{text}"
    );
}

/// Upstream added one package and dropped another: check says one file to fetch and one
/// to delete, writes nothing, and the sync that follows does exactly that.
#[test]
fn a_changed_upstream_plans_the_difference_and_the_sync_agrees() {
    let mut f = Fixture::new(|_| {}, "[sync]\nmax_delete = 10\n");
    f.sync_ok();
    f.change(|a| {
        add(a, "newpkg", "1.0", "amd64");
        a.remove_package("libfoo1");
    });
    let before = whole_tree(&f.tree());
    let (ok, json, err) = check_json(&f, &[]);
    assert!(ok, "{err}");
    let m = &json[0];
    assert_eq!(m["up_to_date"], false);
    assert_eq!(m["suites"][0]["changed"], true);
    assert_eq!(m["pool_download_files"], 1, "{m}");
    assert_eq!(m["pool_download_bytes"], DEB_LEN as u64);
    assert_eq!(m["pool_listed_files"], 3);
    assert_eq!(m["delete_files"], 1);
    assert_eq!(whole_tree(&f.tree()), before);
    let out = f.sync_ok();
    assert!(out.contains("1 files fetched"), "{out}");
    assert!(out.contains("1 deleted"), "{out}");
}

/// A pool file already on disk (a killed run's leftover) is to be re-hashed, not fetched.
#[test]
fn a_listed_file_already_on_disk_counts_as_rehash() {
    let mut f = Fixture::new(|_| {}, "");
    f.sync_ok();
    f.change(|a| add(a, "newpkg", "1.0", "amd64"));
    let leftover = f.tree().join(pool_path("main", "newpkg", "1.0", "amd64"));
    std::fs::create_dir_all(leftover.parent().unwrap()).unwrap();
    std::fs::write(&leftover, noise("newpkg_1.0", DEB_LEN)).unwrap();
    let (ok, json, _) = check_json(&f, &[]);
    assert!(ok);
    assert_eq!(json[0]["pool_download_files"], 0, "{}", json[0]);
    assert_eq!(json[0]["pool_rehash_files"], 1);
}

/// Each failing mirror is named, with its fault and the file or URL; the good one is still
/// checked; exit non-zero.
#[test]
fn failing_mirrors_are_named_with_their_fault() {
    let f = Fixture::new(|_| {}, "");
    let garbage = f.tmp.path().join("keys/garbage.gpg");
    std::fs::write(&garbage, b"not a key").unwrap();
    let extra = format!(
        r#"
[sync]
retries = 0
[[mirror]]
[[mirror]]
name = "badkey"
upstream = "{url}"
suites = ["stable"]
components = ["main"]
architectures = ["amd64"]
keyring = "{garbage}"
[[mirror]]
name = "nokey"
upstream = "{url}"
suites = ["stable"]
components = ["main"]
architectures = ["amd64"]
keyring = "{missing}"
[[mirror]]
name = "down"
upstream = "http://127.0.0.1:1/debian"
suites = ["stable"]
components = ["main"]
architectures = ["amd64"]
keyring = "{good}"
"#,
        url = f.upstream.base_url(),
        garbage = garbage.display(),
        missing = f.tmp.path().join("keys/missing.gpg").display(),
        good = f.keyring.display(),
    );
    let config = write_config(f.tmp.path(), &f.upstream.base_url(), &f.keyring, &extra);
    let out = run_debsync(&["check", "--config", &config.to_string_lossy()]);
    let err = assert_failure(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("debian: ok"), "{text}");
    assert!(text.contains("badkey: FAILED"), "{text}");
    assert!(
        text.contains("garbage.gpg: no usable OpenPGP public key"),
        "{text}"
    );
    assert!(text.contains("nokey: FAILED"), "{text}");
    assert!(text.contains("missing.gpg: cannot read keyring"), "{text}");
    assert!(text.contains("down: FAILED"), "{text}");
    assert!(text.contains("127.0.0.1:1"), "{text}");
    assert!(
        err.contains("error: 3 of 4 mirrors failed: badkey, nokey, down"),
        "{err}"
    );
}

/// A signature that no longer verifies fails the check with the sync's own message.
#[test]
fn a_tampered_inrelease_fails_the_check() {
    let f = Fixture::new(|_| {}, "");
    f.archive.tamper_inrelease("stable");
    let (ok, json, _) = check_json(&f, &[]);
    assert!(!ok);
    let problems = json[0]["problems"].to_string();
    assert!(problems.contains("dists/stable/InRelease"), "{problems}");
    assert!(problems.contains("signature"), "{problems}");
}

/// Packages that claim more bytes than the disk has: the plan says so and exits non-zero.
#[test]
fn not_enough_disk_space_is_a_problem() {
    let f = Fixture::new(
        |a| {
            add(a, "huge", "1", "amd64");
            a.suites[0].package_mut("huge").size_override = Some(1 << 60);
        },
        "",
    );
    let (ok, json, _) = check_json(&f, &[]);
    assert!(!ok);
    let m = &json[0];
    assert!(m["needed_bytes"].as_u64().unwrap() > 1 << 60);
    assert!(
        m["problems"].to_string().contains("not enough disk space"),
        "{m}"
    );
}

/// The deletion limit a sync would hit is reported before the sync refuses.
#[test]
fn a_deletion_over_max_delete_is_a_problem() {
    let mut f = Fixture::new(|_| {}, "[sync]\nmax_delete = 1\n");
    f.sync_ok();
    f.change(|a| {
        a.remove_package("hello");
        a.remove_package("libfoo1");
    });
    let (ok, json, _) = check_json(&f, &[]);
    assert!(!ok);
    let m = &json[0];
    assert_eq!(m["delete_files"], 2);
    assert!(m["problems"].to_string().contains("--force-delete"), "{m}");
}
