//! Indices: every variant upstream really has, each checked against the signed Release; and
//! what a Packages index may say (stanza syntax, file names).

use crate::common::noise;
use crate::common::{Fault, FaultRule, assert_success, run_debsync, served_snapshot, sha256_hex};
use crate::support::*;

/// Files under `dir/dists` (relative to `dir`) → SHA-256.
fn dists(dir: &std::path::Path) -> std::collections::BTreeMap<String, String> {
    served_snapshot(dir)
        .into_iter()
        .filter(|(p, _)| p.starts_with("dists/"))
        .collect()
}

#[test]
fn mirrors_every_variant_upstream_serves_and_skips_the_404_one() {
    let f = Fixture::new(|a| a.suite("stable").write_uncompressed = false, "");
    let release = String::from_utf8(f.archive.read("dists/stable/Release")).unwrap();
    assert!(
        release.contains(" main/binary-amd64/Packages\n"),
        "Release lists the uncompressed index upstream does not serve"
    );
    f.sync_ok();
    assert!(
        f.upstream
            .requests_to("/dists/stable/main/binary-amd64/Packages")
            .iter()
            .any(|r| r.status == 404),
        "the listed-but-absent variant was asked for: {:#?}",
        f.upstream.requests()
    );
    // dists/ is upstream's dists/, byte for byte: every .gz and .xz, both architectures.
    let mirrored = dists(&f.tree());
    assert_eq!(mirrored, dists(f.archive.dir()));
    for rel in [
        "dists/stable/main/binary-amd64/Packages.gz",
        "dists/stable/main/binary-amd64/Packages.xz",
        "dists/stable/main/binary-all/Packages.gz",
        "dists/stable/main/binary-all/Packages.xz",
    ] {
        assert!(mirrored.contains_key(rel), "{rel} missing: {mirrored:#?}");
    }
    assert!(!mirrored.contains_key("dists/stable/main/binary-amd64/Packages"));
    for p in [HELLO, DATA, LIBFOO] {
        assert_eq!(std::fs::read(f.tree().join(p)).unwrap(), f.archive.read(p));
    }
}

#[test]
fn index_whose_hash_or_size_differs_from_release_is_refused() {
    let mut f = Fixture::new(|_| {}, "");
    f.sync_ok();
    let before = f.served();
    f.change(|a| add(a, "newpkg", "1.0", "amd64"));

    // Same size, one byte different.
    f.archive
        .corrupt("dists/stable/main/binary-amd64/Packages.gz");
    f.assert_refused(
        &before,
        &[
            "dists/stable/main/binary-amd64/Packages.gz",
            "SHA256 mismatch",
        ],
    );

    // Restore it, then make another variant longer than Release says.
    f.change(|_| {});
    let mut xz = f.archive.read("dists/stable/main/binary-amd64/Packages.xz");
    xz.extend_from_slice(b"trailing garbage");
    f.archive
        .write("dists/stable/main/binary-amd64/Packages.xz", &xz);
    f.assert_refused(
        &before,
        &["dists/stable/main/binary-amd64/Packages.xz", "larger than"],
    );
}

#[test]
fn index_with_no_variant_upstream_is_refused() {
    let mut f = Fixture::new(|a| a.suite("stable").write_uncompressed = false, "");
    f.sync_ok();
    let before = f.served();
    f.change(|a| add(a, "newpkg", "1.0", "amd64"));
    f.archive
        .delete("dists/stable/main/binary-amd64/Packages.gz");
    f.archive
        .delete("dists/stable/main/binary-amd64/Packages.xz");
    f.assert_refused(
        &before,
        &[
            "dists/stable/main/binary-amd64/Packages",
            "none of the variants",
        ],
    );
}

/// A stanza for `extra_stanzas` with every field a pool entry needs, `field` replaced.
fn stanza_with(field: &str, value: &str) -> String {
    let mut fields = vec![
        ("Package", "odd".to_string()),
        ("Version", "1".to_string()),
        ("Architecture", "amd64".to_string()),
        ("Filename", "pool/main/o/odd/odd_1_amd64.deb".to_string()),
        ("Size", "3".to_string()),
        ("SHA256", sha256_hex(b"odd")),
    ];
    for f in &mut fields {
        if f.0 == field {
            f.1 = value.to_string();
        }
    }
    fields.iter().map(|(k, v)| format!("{k}: {v}\n")).collect()
}

#[test]
fn malformed_stanza_is_refused() {
    let cases: [(String, &[&str]); 4] = [
        (
            "Package: broken\nthis line is not a field\nVersion: 1\n".into(),
            &["stanza 4", "broken", "missing Filename"],
        ),
        (
            stanza_with("Size", "lots"),
            &["stanza 4", "odd", "bad Size", "lots"],
        ),
        (
            stanza_with("SHA256", "xyz"),
            &["stanza 4", "odd", "bad SHA256"],
        ),
        (
            "\u{1}\u{2} binary garbage \u{ff}\n".into(),
            &["stanza 4", "missing Filename"],
        ),
    ];
    for (garbage, needles) in cases {
        let mut f = Fixture::new(|_| {}, "");
        f.sync_ok();
        let before = f.served();
        f.change(|a| {
            a.suite("stable")
                .extra_stanzas
                .push(("main".into(), "amd64".into(), garbage.clone()))
        });
        let mut all = vec!["dists/stable/main/binary-amd64/Packages"];
        all.extend_from_slice(needles);
        f.assert_refused(&before, &all);
    }
}

#[test]
fn filename_escaping_the_root_is_refused() {
    for evil in ["../evil", "/etc/passwd", "pool/../../outside.deb"] {
        let mut f = Fixture::new(|_| {}, "");
        f.sync_ok();
        let before = f.served();
        f.change(|a| add(a, "evil", "1.0", "amd64"));
        f.change(|a| a.suite("stable").package_mut("evil").filename = Some(evil.into()));
        f.assert_refused(
            &before,
            &["dists/stable/main/binary-amd64/Packages", "Filename", evil],
        );
        // Nothing was fetched for it, so nothing can have been written outside.
        assert!(
            f.upstream
                .requests()
                .iter()
                .all(|r| !r.path.contains("evil")
                    && !r.path.contains("passwd")
                    && !r.path.contains("outside")),
            "{evil}: {:#?}",
            f.upstream.requests()
        );
        assert!(!f.tmp.path().join("root/evil").exists());
        assert!(!f.tmp.path().join("outside.deb").exists());
    }
}

#[test]
fn index_server_errors_are_retried_and_by_hash_falls_back_to_names() {
    let f = Fixture::new(|a| a.suite("stable").acquire_by_hash = true, "");
    // Upstream says Acquire-By-Hash but serves no by-hash files, and fails twice on one index.
    std::fs::remove_dir_all(f.archive.path("dists/stable/main/binary-amd64/by-hash")).unwrap();
    std::fs::remove_dir_all(f.archive.path("dists/stable/main/binary-all/by-hash")).unwrap();
    f.upstream.add_fault(
        FaultRule::exact(
            "/dists/stable/main/binary-amd64/Packages.xz",
            Fault::Status(503),
        )
        .times(2),
    );
    f.sync_ok();
    let xz: Vec<u16> = f
        .upstream
        .requests_to("/dists/stable/main/binary-amd64/Packages.xz")
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(xz, [503, 503, 200]);
    // The mirror still offers by-hash, built from the verified files.
    let bytes = f.archive.read("dists/stable/main/binary-amd64/Packages.xz");
    let by_hash = f
        .tree()
        .join("dists/stable/main/binary-amd64/by-hash/SHA256")
        .join(sha256_hex(&bytes));
    assert_eq!(std::fs::read(by_hash).unwrap(), bytes);
}

#[test]
fn pool_file_under_dists_survives_the_swap() {
    // A Filename inside the suite directory: fetched in the pool stage, before the swap.
    let odd = "dists/stable/extra/odd_1.0_amd64.deb";
    let mut f = Fixture::new(
        |a| {
            add(a, "odd", "1.0", "amd64");
            a.suite("stable").package_mut("odd").filename = Some(odd.into());
        },
        "",
    );
    // The kit drops unknown files under dists/<suite>/ on build; put the file back.
    f.archive.write(odd, &noise("odd_1.0", DEB_LEN));
    let out = f.sync();
    if !out.status.success() {
        // Refusing such a Filename is fine too, as long as the refusal names it.
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(odd), "{stderr}");
        return;
    }
    assert_eq!(
        std::fs::read(f.tree().join(odd))
            .ok()
            .map(|b| sha256_hex(&b)),
        Some(sha256_hex(&noise("odd_1.0", DEB_LEN))),
        "an index lists {odd}, but the mirror does not have it"
    );
    let config = f.config_str();
    assert_success(&run_debsync(&["verify", "--config", &config]));
    f.change(|a| add(a, "more", "1.0", "amd64"));
    f.archive.write(odd, &noise("odd_1.0", DEB_LEN));
    f.sync_ok();
    assert!(
        f.tree().join(odd).is_file(),
        "still there after the next swap"
    );
}
