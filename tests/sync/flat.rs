//! Flat repositories (`deb URL ./`, `flat = true`): mirrored as `dists/flat` with links at the
//! tree root, updated with one exchange, refused whole when bad, and read by the real apt.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::common::*;
use crate::support::*;

/// Names at the top of the generation the kit's flat repository has (without by-hash).
const TOP: [&str; 6] = [
    "InRelease",
    "Release",
    "Release.gpg",
    "Packages",
    "Packages.gz",
    "Packages.xz",
];

fn link(f: &Fixture, name: &str) -> PathBuf {
    std::fs::read_link(f.tree().join(name)).unwrap_or_else(|e| panic!("{name}: not a link: {e}"))
}

fn inode(path: &Path) -> u64 {
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .ino()
}

#[test]
fn flat_repository_is_mirrored_with_links_at_its_root() {
    let f = Fixture::flat(|_| {}, "");
    let stdout = f.sync_ok();
    assert!(stdout.contains("updated flat"), "{stdout}");
    for n in TOP {
        let want = f.archive.read(n);
        assert_eq!(
            std::fs::read(f.tree().join("dists/flat").join(n)).unwrap(),
            want,
            "{n}"
        );
        assert_eq!(link(&f, n), Path::new("dists/flat").join(n));
        assert_eq!(std::fs::read(f.tree().join(n)).unwrap(), want, "{n}");
    }
    let packages = String::from_utf8(f.archive.read("Packages")).unwrap();
    assert!(
        packages.contains(&format!("Filename: ./{FLAT_HELLO}\n")),
        "{packages}"
    );
    for p in [FLAT_HELLO, FLAT_DATA, FLAT_LIBFOO] {
        assert_eq!(
            std::fs::read(f.tree().join(p)).unwrap(),
            f.archive.read(p),
            "{p}"
        );
    }
    let asked: Vec<String> = f.upstream.requests().into_iter().map(|r| r.path).collect();
    assert!(
        asked.iter().all(|p| !p.starts_with("/dists/")),
        "a flat upstream has no dists/: {asked:#?}"
    );
    let verify = run_debsync(&["verify", "--config", &f.config_str()]);
    assert_success(&verify);
    assert!(String::from_utf8_lossy(&verify.stdout).contains("0 problem(s)"));

    // Unchanged upstream: the Release files only, and nothing moves.
    let before = f.served();
    f.upstream.clear_log();
    let stdout = f.sync_ok();
    assert!(stdout.contains("unchanged"), "{stdout}");
    let asked: BTreeSet<String> = f.upstream.requests().into_iter().map(|r| r.path).collect();
    let allowed: BTreeSet<String> = ["/InRelease", "/Release", "/Release.gpg"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert!(!asked.is_empty() && asked.is_subset(&allowed), "{asked:#?}");
    assert_same_tree(&before, &f.served());
}

/// The new generation goes live by the exchange of `dists/flat` alone: the root links of
/// names both generations have are the same links (same inodes), and now read the new
/// generation; a name the new one lacks loses its link, and old by-hash files stay reachable.
#[test]
fn flat_update_goes_live_with_one_exchange() {
    let mut f = Fixture::flat(
        |a| a.suites[0].acquire_by_hash = true,
        "[sync]\nmax_delete = 5\n",
    );
    f.sync_ok();
    let old_xz = f.archive.read("Packages.xz");
    let kept = ["InRelease", "Release", "Packages.xz", "by-hash"];
    let links_before: Vec<u64> = kept.iter().map(|n| inode(&f.tree().join(n))).collect();
    let generation_before = inode(&f.tree().join("dists/flat"));

    f.change(|a| {
        a.remove_package("hello");
        a.remove_package("libfoo1");
        add(a, "hello", "1.1-1", "amd64");
        // Still listed in Release, no longer served: the mirror has no `Packages` then.
        a.suites[0].write_uncompressed = false;
    });
    let stdout = f.sync_ok();
    assert!(
        stdout.contains("updated flat") && stdout.contains("2 deleted"),
        "{stdout}"
    );

    assert_ne!(inode(&f.tree().join("dists/flat")), generation_before);
    let links_after: Vec<u64> = kept.iter().map(|n| inode(&f.tree().join(n))).collect();
    assert_eq!(
        links_before, links_after,
        "links are not rewritten: {kept:?}"
    );
    for n in ["InRelease", "Release", "Packages.xz"] {
        assert_eq!(
            std::fs::read(f.tree().join(n)).unwrap(),
            f.archive.read(n),
            "{n}"
        );
    }
    assert!(
        std::fs::symlink_metadata(f.tree().join("Packages")).is_err(),
        "the link of a name the live generation lacks is removed"
    );
    let new_hello = "hello_1.1-1_amd64.deb";
    assert_eq!(
        std::fs::read(f.tree().join(new_hello)).unwrap(),
        f.archive.read(new_hello)
    );
    for gone in [FLAT_HELLO, FLAT_LIBFOO] {
        assert!(!f.tree().join(gone).exists(), "{gone} should be deleted");
    }
    assert!(f.tree().join(FLAT_DATA).is_file());
    let old_by_hash = f.tree().join("by-hash/SHA256").join(sha256_hex(&old_xz));
    assert_eq!(std::fs::read(old_by_hash).unwrap(), old_xz);
}

/// A kill between the exchange and the links leaves the new generation live with a link
/// missing and one dangling (both 404, never the wrong generation); the next run, upstream
/// unchanged, is not a no-op after a run that never finished, and puts the links right.
#[test]
fn flat_links_are_repaired_by_the_run_after_a_kill() {
    let f = Fixture::flat(|_| {}, "");
    f.sync_ok();
    let healthy = f.served();
    std::fs::remove_file(f.tree().join("Packages.xz")).unwrap();
    std::os::unix::fs::symlink("dists/flat/Sources.xz", f.tree().join("Sources.xz")).unwrap();
    let state_path = f.tree().join(".debsync/state.json");
    let mut state = f.state();
    state["last_result"] = "running".into();
    std::fs::write(&state_path, serde_json::to_vec(&state).unwrap()).unwrap();

    let stdout = f.sync_ok();
    assert!(!stdout.contains("unchanged"), "{stdout}");
    assert_same_tree(&healthy, &f.served());
    assert_eq!(f.state()["last_result"], "ok");
}

#[test]
fn flat_tampered_packages_is_refused_and_the_tree_kept() {
    let mut f = Fixture::flat(|_| {}, "");
    f.sync_ok();
    let before = f.served();
    f.change(|a| add(a, "extra", "0.1", "all"));
    f.archive.corrupt("Packages.xz");
    f.assert_refused(&before, &["Packages.xz"]);
    assert!(f.upstream.requests_to("extra_0.1_all.deb").is_empty());
}

/// A pool file under a name the root links own would be written into the live generation
/// (through the `by-hash` link) without a swap.
#[test]
fn flat_pool_file_under_a_root_link_is_refused() {
    let mut f = Fixture::flat(|a| a.suites[0].acquire_by_hash = true, "");
    f.sync_ok();
    let before = f.served();
    f.change(|a| {
        add(a, "evil", "1", "amd64");
        a.suites[0].package_mut("evil").filename = Some("./by-hash/evil_1_amd64.deb".into());
    });
    f.assert_refused(&before, &["by-hash/evil_1_amd64.deb", "manages itself"]);
    assert!(f.upstream.requests_to("evil_1_amd64.deb").is_empty());
}

#[test]
fn apt_updates_and_downloads_from_a_served_flat_mirror() {
    let f = Fixture::flat(
        |a| {
            let s = &mut a.suites[0];
            s.acquire_by_hash = true;
            s.add_source("hello", "1.0-1", "main", &noise("hello-src", DEB_LEN));
        },
        "[[mirror]]\nsources = true\n",
    );
    f.sync_ok();
    let sources = String::from_utf8(f.archive.read("Sources")).unwrap();
    assert!(sources.contains("\nDirectory: .\n"), "{sources}");
    for p in ["hello_1.0-1.dsc", "hello_1.0.orig.tar.gz"] {
        assert_eq!(
            std::fs::read(f.tree().join(p)).unwrap(),
            f.archive.read(p),
            "{p}"
        );
    }
    let server = spawn_serve(&["--config", &f.config_str(), "--listen", "127.0.0.1:0"]).unwrap();
    let url = format!("{}{MIRROR_NAME}/", server.url);
    let k = f.keyring.display();
    let apt = Apt::with_sources_line(
        &f.tmp.path().join("apt"),
        &format!("deb [signed-by={k}] {url} ./\ndeb-src [signed-by={k}] {url} ./\n"),
    );
    apt.update().assert_clean();
    for (name, file) in [("hello", FLAT_HELLO), ("data", FLAT_DATA)] {
        let (out, got) = apt.download(name);
        out.assert_clean();
        let got = got.unwrap_or_else(|| panic!("apt-get download {name}: no .deb"));
        assert_eq!(std::fs::read(got).unwrap(), f.archive.read(file), "{name}");
    }
    apt.run(&["source", "--download-only", "hello"])
        .assert_clean();
    assert_eq!(
        std::fs::read(apt.download_dir().join("hello_1.0.orig.tar.gz")).unwrap(),
        f.archive.read("hello_1.0.orig.tar.gz")
    );
}

/// After a failed run the next one walks for orphans; a flat repository's pool is its root,
/// so an orphan there (and a killed download's temp file) is found, while the root links,
/// `dists/`, `project/` and the state stay.
#[test]
fn flat_orphans_are_found_by_the_walk_after_a_failed_run() {
    let mut f = Fixture::flat(|_| {}, "[sync]\nmax_delete = 5\nretries = 0\n");
    f.sync_ok();
    f.change(|a| {
        a.remove_package("libfoo1");
        add(a, "extra", "0.1", "all");
    });
    f.archive.corrupt("extra_0.1_all.deb");
    assert_failure(&f.sync());
    assert_eq!(f.state()["last_result"], "failed");
    // A download killed mid-way leaves its temp file beside the target; a file no index
    // lists is an orphan wherever it is.
    std::fs::write(f.tree().join(".gone_1_amd64.deb.debsync-tmp"), b"partial").unwrap();
    std::fs::create_dir_all(f.tree().join("amd64")).unwrap();
    std::fs::write(f.tree().join("amd64/stray_1_amd64.deb"), b"stray").unwrap();

    f.change(|_| {});
    let stdout = f.sync_ok();
    assert!(stdout.contains("3 deleted"), "{stdout}");
    for gone in [
        FLAT_LIBFOO,
        ".gone_1_amd64.deb.debsync-tmp",
        "amd64/stray_1_amd64.deb",
    ] {
        assert!(!f.tree().join(gone).exists(), "{gone} should be deleted");
    }
    assert!(
        !f.tree().join("amd64").exists(),
        "a directory left empty is pruned"
    );
    for p in [FLAT_HELLO, FLAT_DATA, "extra_0.1_all.deb"] {
        assert_eq!(
            std::fs::read(f.tree().join(p)).unwrap(),
            f.archive.read(p),
            "{p}"
        );
    }
    for n in TOP {
        assert_eq!(
            std::fs::read(f.tree().join(n)).unwrap(),
            f.archive.read(n),
            "{n}"
        );
    }
    assert!(f.tree().join("project/trace").join(hostname()).is_file());
    assert_eq!(f.state()["last_result"], "ok");
}
