//! What upstream gets wrong never reaches a client complete and is never stored; what upstream
//! fails to send is served from the cache.

use crate::common::archive::walk_files;
use crate::common::*;
use crate::kit::*;

#[test]
fn a_tampered_deb_is_an_error_and_nothing_is_cached() {
    let edge = Edge::start(|_| {}, "");
    edge.archive.corrupt(HELLO);
    let apt = edge.apt("client");
    apt.update().assert_clean();
    let (out, file) = apt.download("hello");
    let problems = out.assert_problem();
    if let Some(f) = file {
        let len = std::fs::metadata(&f).unwrap().len();
        assert!(len < HELLO_LEN as u64, "apt got it whole: {problems:?}");
    }
    let got = edge.get(HELLO, &[]);
    assert!(
        got.status != 200 || got.broken || got.body.len() < HELLO_LEN,
        "a client got the whole tampered body"
    );
    assert!(!edge.tree().join(HELLO).exists(), "stored under its name");
    assert!(
        eventually(|| edge.temp_files().is_empty()),
        "{:?}",
        edge.temp_files()
    );
    let failures = edge
        .metric(&format!(
            "debsync_cache_verify_failures_total{{cache=\"{CACHE}\"}}"
        ))
        .unwrap();
    assert!(failures >= 1.0);
}

#[test]
fn a_tampered_index_is_an_error_and_nothing_is_cached() {
    let edge = Edge::start(|_| {}, "");
    let dir = edge.archive.path("dists/stable/main/binary-amd64");
    for rel in walk_files(&dir) {
        if rel.contains("Packages") || rel.contains("by-hash") {
            edge.archive
                .corrupt(&format!("dists/stable/main/binary-amd64/{rel}"));
        }
    }
    let out = edge.apt("client").update();
    let problems = out.assert_problem();
    eprintln!("apt: {problems:?}");
    let stored = edge.stored();
    assert!(
        !stored.keys().any(|k| k.contains("binary-amd64/")),
        "a tampered index was stored: {stored:#?}"
    );
    assert!(eventually(|| edge.temp_files().is_empty()));
}

#[test]
fn a_tampered_inrelease_is_refused_and_not_cached() {
    let edge = Edge::start(|_| {}, "");
    edge.archive.tamper_inrelease("stable");
    let got = edge.get("dists/stable/InRelease", &[]);
    assert_eq!(got.status, 502);
    let text = String::from_utf8_lossy(&got.body);
    assert!(
        text.contains("InRelease") && text.contains("signature"),
        "{text}"
    );
    assert!(!edge.tree().join("dists/stable/InRelease").exists());
    edge.apt("client").update().assert_problem();
}

#[test]
fn upstream_down_apt_still_works_from_the_cache() {
    let mut edge = Edge::start(|_| {}, "release_ttl_secs = 0");
    let warm = edge.apt("warm");
    assert_eq!(warm.fetch_package("hello"), edge.archive.read(HELLO));
    edge.stop_upstream();
    let got = edge.get("dists/stable/InRelease", &[]);
    assert_eq!((got.status, got.cache()), (200, "STALE"));
    assert!(got.header("warning").is_some_and(|w| w.starts_with("110")));
    let cold = edge.apt("cold");
    assert_eq!(cold.fetch_package("hello"), edge.archive.read(HELLO));
    assert!(edge.requests("stale") >= 2.0);
    // What was never cached is an upstream error, not a hang.
    let got = edge.get(BIG, &[]);
    assert_eq!(got.status, 502, "{}", String::from_utf8_lossy(&got.body));
}

#[test]
fn a_stalling_upstream_is_answered_from_the_cache() {
    let edge = Edge::start(|_| {}, "release_ttl_secs = 0");
    assert_eq!(edge.get("dists/stable/InRelease", &[]).cache(), "MISS");
    // Upstream has news (a newer Last-Modified) but sends it at 16 bytes a second.
    std::fs::File::options()
        .append(true)
        .open(edge.archive.path("dists/stable/InRelease"))
        .unwrap()
        .set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(10))
        .unwrap();
    edge.up().add_fault(FaultRule::suffix(
        "/InRelease",
        Fault::Drip {
            chunk: 16,
            every: std::time::Duration::from_secs(1),
        },
    ));
    let started = std::time::Instant::now();
    let got = edge.get("dists/stable/InRelease", &[]);
    assert_eq!((got.status, got.cache()), (200, "STALE"));
    assert!(started.elapsed() < std::time::Duration::from_secs(25));
}

#[test]
fn a_rollback_to_an_older_release_is_refused() {
    let mut edge = Edge::start(|_| {}, "release_ttl_secs = 0");
    let old_inrelease = edge.archive.read("dists/stable/InRelease");
    edge.archive.suite("stable").date = Some(rfc2822_from_now(3600));
    edge.archive.build();
    assert_eq!(edge.get("dists/stable/InRelease", &[]).status, 200);
    let newer = std::fs::read(edge.tree().join("dists/stable/InRelease")).unwrap();
    // Upstream (or someone in between) now serves the older, validly signed InRelease, with a
    // Last-Modified that says it changed.
    edge.archive.write("dists/stable/InRelease", &old_inrelease);
    std::fs::File::options()
        .append(true)
        .open(edge.archive.path("dists/stable/InRelease"))
        .unwrap()
        .set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(10))
        .unwrap();
    let got = edge.get("dists/stable/InRelease", &[]);
    assert_eq!(got.status, 502);
    assert!(String::from_utf8_lossy(&got.body).contains("rollback"));
    assert_eq!(
        std::fs::read(edge.tree().join("dists/stable/InRelease")).unwrap(),
        newer
    );
}
