//! Whole runs over time: upstream changes, no-op runs, by-hash generations, cleanup and its
//! limit, the trace and state files.

use std::collections::BTreeSet;

use crate::common::*;
use crate::support::*;

#[test]
fn unchanged_upstream_is_a_noop_with_release_requests_only() {
    let f = Fixture::new(|_| {}, "");
    f.sync_ok();
    let before = f.served();
    let trace = std::fs::read(f.tree().join("project/trace").join(hostname())).unwrap();
    f.upstream.clear_log();

    let stdout = f.sync_ok();
    assert!(stdout.contains("unchanged"), "{stdout}");
    let paths: BTreeSet<String> = f.upstream.requests().into_iter().map(|r| r.path).collect();
    let allowed: BTreeSet<String> = ["InRelease", "Release", "Release.gpg"]
        .iter()
        .map(|n| format!("/dists/stable/{n}"))
        .collect();
    assert!(!paths.is_empty());
    assert!(
        paths.is_subset(&allowed),
        "a no-op run fetched more than the Release files: {paths:#?}"
    );
    assert_same_tree(&before, &f.served());
    // The trace is written again (ftpsync does so on every successful run; see
    // hardening::a_no_op_run_records_its_success_and_trace) but describes the same archive.
    let serial = |t: &[u8]| {
        String::from_utf8_lossy(t)
            .lines()
            .find(|l| l.starts_with("Archive serial: "))
            .map(str::to_string)
    };
    let again = std::fs::read(f.tree().join("project/trace").join(hostname())).unwrap();
    assert_eq!(serial(&again), serial(&trace));
    assert!(serial(&again).is_some());
}

#[test]
fn trace_and_state_after_a_successful_run() {
    let f = Fixture::new(|_| {}, "");
    let out = f.sync();
    assert_success(&out);
    let trace = std::fs::read_to_string(f.tree().join("project/trace").join(hostname())).unwrap();
    let field = |name: &str| {
        trace
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name}: in trace:\n{trace}"))
            .to_string()
    };
    // ftpsync's first line is the ctime-style date.
    assert!(trace.lines().next().unwrap().contains(" UTC 20"), "{trace}");
    assert!(field("Date").contains(" 20"), "{trace}");
    assert!(field("Date-Started").contains(" 20"), "{trace}");
    let serial = field("Archive serial");
    assert!(
        serial.len() == 10 && serial.bytes().all(|b| b.is_ascii_digit()) && serial.ends_with("01"),
        "serial {serial:?}"
    );
    assert!(field("Creator").starts_with("debsync "), "{trace}");
    assert_eq!(field("Upstream-mirror"), "127.0.0.1");
    let bytes: u64 = field("Total bytes received in rsync").parse().unwrap();
    assert!(
        bytes >= 3 * DEB_LEN as u64,
        "received {bytes} bytes: {trace}"
    );
    assert!(field("Suites").contains("stable"));

    let state = f.state();
    assert_eq!(state["last_result"], "ok", "{state}");
    assert!(state["last_success"].as_i64().unwrap() > 0);
    assert!(f.tree().join(".debsync/state.json").is_file());
    assert!(
        !f.tree().join(".debsync/staging").exists(),
        "staging is cleaned up after a run"
    );
}

/// `dists/stable/<dir>/by-hash/SHA256` names in the mirror.
fn by_hash_names(f: &Fixture, dir: &str) -> BTreeSet<String> {
    let d = f
        .tree()
        .join("dists/stable")
        .join(dir)
        .join("by-hash/SHA256");
    std::fs::read_dir(&d)
        .unwrap_or_else(|e| panic!("{}: {e}", d.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// SHA-256 of the live `Packages` variants of `dir`: the by-hash names of this generation.
fn live_index_hashes(f: &Fixture, dir: &str) -> BTreeSet<String> {
    ["Packages", "Packages.gz", "Packages.xz"]
        .iter()
        .filter_map(|n| std::fs::read(f.tree().join("dists/stable").join(dir).join(n)).ok())
        .map(|b| sha256_hex(&b))
        .collect()
}

#[test]
fn by_hash_keeps_the_last_three_generations() {
    let mut f = Fixture::new(|a| a.suite("stable").acquire_by_hash = true, "");
    let dir = "main/binary-amd64";
    let mut generations: Vec<BTreeSet<String>> = Vec::new();
    for i in 0..4 {
        if i > 0 {
            f.change(|a| add(a, &format!("gen{i}"), "1.0", "amd64"));
        }
        f.sync_ok();
        let current = live_index_hashes(&f, dir);
        assert_eq!(current.len(), 3, "three variants per generation");
        assert!(
            !generations.contains(&current),
            "each sync changes the index"
        );
        generations.push(current);
        // Every by-hash file is what its name says.
        for name in by_hash_names(&f, dir) {
            let bytes = std::fs::read(
                f.tree()
                    .join("dists/stable")
                    .join(dir)
                    .join("by-hash/SHA256")
                    .join(&name),
            )
            .unwrap();
            assert_eq!(sha256_hex(&bytes), name);
        }
    }
    let expected: BTreeSet<String> = generations[1..].iter().flatten().cloned().collect();
    assert_eq!(
        by_hash_names(&f, dir),
        expected,
        "by-hash holds generations 2-4, not the first"
    );
    // Upstream still has all four generations; the mirror pruned the oldest.
    let upstream: BTreeSet<String> = std::fs::read_dir(
        f.archive
            .path("dists/stable/main/binary-amd64/by-hash/SHA256"),
    )
    .unwrap()
    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
    .collect();
    assert!(generations[0].is_subset(&upstream));
}

#[test]
fn unreferenced_pool_files_are_deleted_within_the_limit() {
    // 20 packages: one removal is 5 %, under the default 10 %.
    let mut f = Fixture::new(
        |a| {
            for i in 0..17 {
                add(a, &format!("pkg{i:02}"), "1.0", "amd64");
            }
        },
        "",
    );
    f.sync_ok();
    let gone = pool_path("main", "pkg03", "1.0", "amd64");
    assert!(f.tree().join(&gone).is_file());
    f.change(|a| {
        a.remove_package("pkg03");
    });
    f.sync_ok();
    assert!(!f.tree().join(&gone).exists(), "{gone} deleted");
    assert!(
        !f.tree().join("pool/main/p/pkg03").exists(),
        "its empty directory is pruned"
    );
    assert!(
        f.tree()
            .join(pool_path("main", "pkg04", "1.0", "amd64"))
            .is_file()
    );
    assert!(f.tree().join(HELLO).is_file());
}

#[test]
fn mass_deletion_is_refused_without_force_delete() {
    let mut f = Fixture::new(
        |a| {
            for i in 0..17 {
                add(a, &format!("pkg{i:02}"), "1.0", "amd64");
            }
        },
        "",
    );
    f.sync_ok();
    let before = f.served();
    f.change(|a| {
        for i in 0..15 {
            a.remove_package(&format!("pkg{i:02}"));
        }
    });
    f.assert_refused(
        &before,
        &[
            "refusing to delete 15 files",
            "max_delete = 10%",
            "--force-delete",
        ],
    );

    let out = f.sync_with(&["--force-delete"]);
    assert_success(&out);
    for i in 0..15 {
        assert!(
            !f.tree()
                .join(pool_path("main", &format!("pkg{i:02}"), "1.0", "amd64"))
                .exists()
        );
    }
    assert!(
        f.tree()
            .join(pool_path("main", "pkg16", "1.0", "amd64"))
            .is_file()
    );
    assert_eq!(
        std::fs::read(f.tree().join("dists/stable/InRelease")).unwrap(),
        f.archive.read("dists/stable/InRelease")
    );
    assert_eq!(f.state()["last_result"], "ok");
}

#[test]
fn upstream_update_end_to_end() {
    let mut f = Fixture::new(
        |a| {
            a.suite("stable").acquire_by_hash = true;
            add(a, "extra", "0.1", "all");
        },
        "[sync]\nmax_delete = 5\n",
    );
    let stdout = f.sync_ok();
    assert!(stdout.contains("updated stable"), "{stdout}");
    for p in [HELLO, DATA, LIBFOO, "pool/main/e/extra/extra_0.1_all.deb"] {
        assert_eq!(
            std::fs::read(f.tree().join(p)).unwrap(),
            f.archive.read(p),
            "{p}"
        );
    }
    let first_trace =
        std::fs::read_to_string(f.tree().join("project/trace").join(hostname())).unwrap();

    // Upstream: hello 1.0-1 → 1.1-1, libfoo1 removed, extra (arch all) removed.
    f.change(|a| {
        let s = a.suite("stable");
        s.remove_package("hello");
        s.remove_package("libfoo1");
        s.remove_package("extra");
        add(a, "hello", "1.1-1", "amd64");
    });
    let new_hello = pool_path("main", "hello", "1.1-1", "amd64");
    let stdout = f.sync_ok();
    assert!(stdout.contains("3 deleted"), "{stdout}");
    assert_eq!(
        std::fs::read(f.tree().join(&new_hello)).unwrap(),
        f.archive.read(&new_hello)
    );
    for gone in [HELLO, LIBFOO, "pool/main/e/extra/extra_0.1_all.deb"] {
        assert!(!f.tree().join(gone).exists(), "{gone} should be deleted");
    }
    assert!(f.tree().join(DATA).is_file(), "unchanged package kept");

    // dists/ is upstream's, except the by-hash files upstream keeps forever.
    let no_by_hash = |m: std::collections::BTreeMap<String, String>| {
        m.into_iter()
            .filter(|(p, _)| p.starts_with("dists/") && !p.contains("/by-hash/"))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    assert_eq!(
        no_by_hash(f.served()),
        no_by_hash(served_snapshot(f.archive.dir()))
    );
    // pool/ is exactly upstream's pool/.
    let pool = |m: std::collections::BTreeMap<String, String>| {
        m.into_iter()
            .filter(|(p, _)| p.starts_with("pool/"))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    assert_eq!(pool(f.served()), pool(served_snapshot(f.archive.dir())));
    // The current indices are also reachable by hash.
    for n in ["Packages", "Packages.gz", "Packages.xz"] {
        let bytes = std::fs::read(f.tree().join("dists/stable/main/binary-amd64").join(n)).unwrap();
        let by_hash = f
            .tree()
            .join("dists/stable/main/binary-amd64/by-hash/SHA256")
            .join(sha256_hex(&bytes));
        assert_eq!(std::fs::read(by_hash).unwrap(), bytes, "{n}");
    }

    let trace = std::fs::read_to_string(f.tree().join("project/trace").join(hostname())).unwrap();
    assert_ne!(trace, first_trace, "trace rewritten by the second run");
    assert!(trace.contains("Creator: debsync "), "{trace}");
    assert_eq!(f.state()["last_result"], "ok");
}

#[test]
fn pool_file_still_listed_by_an_unchanged_suite_is_kept() {
    let mut f = Fixture::new(
        |a| {
            // A fixed Date, so rebuilding leaves stable's Release text as it was.
            a.suite("stable").date = Some(rfc2822_from_now(-60));
            let t = a.suite("testing");
            t.architectures.push("all".into());
            t.add_package(
                "hello",
                "1.0-1",
                "amd64",
                "main",
                &noise("hello_1.0-1", DEB_LEN),
            );
            t.add_package(
                "libfoo1",
                "3.1",
                "amd64",
                "main",
                &noise("libfoo1_3.1", DEB_LEN),
            );
        },
        "[sync]\nmax_delete = 5\n[[mirror]]\nsuites = [\"stable\", \"testing\"]\n",
    );
    f.sync_ok();
    let stable_before: std::collections::BTreeMap<_, _> = f
        .served()
        .into_iter()
        .filter(|(p, _)| p.starts_with("dists/stable/"))
        .collect();

    // testing drops hello 1.0-1 and libfoo1; stable (unchanged) still lists both. The kit
    // re-signs every build, so stable's signed files are put back byte for byte.
    let signed = ["InRelease", "Release.gpg"].map(|n| {
        let rel = format!("dists/stable/{n}");
        let bytes = f.archive.read(&rel);
        (rel, bytes)
    });
    f.change(|a| {
        let t = a.suite("testing");
        t.remove_package("hello");
        t.remove_package("libfoo1");
        t.add_package(
            "hello",
            "2.0-1",
            "amd64",
            "main",
            &noise("hello_2.0-1", DEB_LEN),
        );
    });
    for (rel, bytes) in &signed {
        f.archive.write(rel, bytes);
    }
    for n in ["InRelease", "Release", "Release.gpg"] {
        let rel = format!("dists/stable/{n}");
        assert_eq!(
            std::fs::read(f.tree().join(&rel)).unwrap(),
            f.archive.read(&rel),
            "{rel}: upstream's is still the mirrored one"
        );
    }
    let stdout = f.sync_ok();
    assert!(
        stdout.contains("updated testing in") && stdout.contains("0 deleted"),
        "only testing changed: {stdout}"
    );
    for p in [HELLO, LIBFOO, &pool_path("main", "hello", "2.0-1", "amd64")] {
        assert!(
            f.tree().join(p).is_file(),
            "{p} must stay: a live suite lists it"
        );
    }
    let stable_after: std::collections::BTreeMap<_, _> = f
        .served()
        .into_iter()
        .filter(|(p, _)| p.starts_with("dists/stable/"))
        .collect();
    assert_eq!(stable_before, stable_after);

    // Now stable drops them too: only then are they deleted.
    f.change(|a| {
        let s = a.suite("stable");
        s.remove_package("hello");
        s.remove_package("libfoo1");
    });
    let stdout = f.sync_ok();
    assert!(stdout.contains("2 deleted"), "{stdout}");
    assert!(!f.tree().join(HELLO).exists());
    assert!(!f.tree().join(LIBFOO).exists());
    assert!(
        f.tree()
            .join(pool_path("main", "hello", "2.0-1", "amd64"))
            .is_file()
    );
    assert!(f.tree().join(DATA).is_file());
}

#[test]
fn source_package_update_replaces_its_files() {
    let mut f = Fixture::new(
        |a| {
            a.suite("stable")
                .add_source("hello", "1.0-1", "main", &noise("src-1.0", DEB_LEN));
        },
        "[sync]\nmax_delete = 5\n[[mirror]]\nsources = true\n",
    );
    f.sync_ok();
    let old = [
        "pool/main/h/hello/hello_1.0-1.dsc",
        "pool/main/h/hello/hello_1.0.orig.tar.gz",
    ];
    for p in old {
        assert_eq!(
            std::fs::read(f.tree().join(p)).unwrap(),
            f.archive.read(p),
            "{p}"
        );
    }
    f.change(|a| {
        let s = a.suite("stable");
        s.sources.clear();
        s.add_source("hello", "1.1-1", "main", &noise("src-1.1", DEB_LEN));
    });
    f.sync_ok();
    for p in old {
        assert!(!f.tree().join(p).exists(), "{p} should be deleted");
    }
    for p in [
        "pool/main/h/hello/hello_1.1-1.dsc",
        "pool/main/h/hello/hello_1.1.orig.tar.gz",
    ] {
        assert_eq!(
            std::fs::read(f.tree().join(p)).unwrap(),
            f.archive.read(p),
            "{p}"
        );
    }
    assert!(f.tree().join(HELLO).is_file(), "the binary is untouched");
}

#[test]
fn max_delete_percentage_counts_the_whole_mirror() {
    // stable: 20 packages, unchanged. testing: 4 packages of its own, drops one (1 of 24: 4 %).
    let mut f = Fixture::new(
        |a| {
            a.suite("stable").date = Some(rfc2822_from_now(-60));
            for i in 0..17 {
                add(a, &format!("pkg{i:02}"), "1.0", "amd64");
            }
            let t = a.suite("testing");
            for i in 0..4 {
                let name = format!("tpkg{i}");
                t.add_package(&name, "1.0", "amd64", "main", &noise(&name, DEB_LEN));
            }
        },
        "[[mirror]]\nsuites = [\"stable\", \"testing\"]\n",
    );
    f.sync_ok();
    let signed = ["InRelease", "Release.gpg"].map(|n| {
        let rel = format!("dists/stable/{n}");
        let bytes = f.archive.read(&rel);
        (rel, bytes)
    });
    f.change(|a| {
        a.suite("testing").remove_package("tpkg0");
    });
    for (rel, bytes) in &signed {
        f.archive.write(rel, bytes);
    }
    let out = f.sync();
    assert_success(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("updated testing in") && stdout.contains("1 deleted"),
        "{stdout}"
    );
    assert!(
        !f.tree()
            .join(pool_path("main", "tpkg0", "1.0", "amd64"))
            .exists()
    );
}
