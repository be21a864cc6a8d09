//! A bounded cache: eviction keeps what `apt-get update` needs; `debsync cache prune`.

use std::time::{Duration, SystemTime};

use crate::common::*;
use crate::kit::*;

fn size_metric(edge: &Edge) -> Option<f64> {
    edge.metric(&format!("debsync_cache_size_bytes{{cache=\"{CACHE}\"}}"))
}

#[test]
fn eviction_under_a_small_limit_keeps_a_consistent_set() {
    // Room for `big`, `tool` and the indices, not for `hello` on top of them (eviction goes
    // down to 90 % of the limit).
    let limit = BIG_LEN + 700_000;
    let mut edge = Edge::start(|_| {}, &format!("max_size = {limit}"));
    let apt = edge.apt("client");
    apt.update().assert_clean();
    for package in ["hello", "tool", "big"] {
        let (out, _) = apt.download(package);
        out.assert_clean();
    }
    assert!(
        eventually(|| size_metric(&edge).is_some_and(|s| s <= limit as f64)),
        "size {:?} over {limit}",
        size_metric(&edge)
    );
    let evicted = edge
        .metric(&format!(
            "debsync_cache_evicted_files_total{{cache=\"{CACHE}\"}}"
        ))
        .unwrap();
    assert!(evicted >= 1.0);
    let stored = edge.stored();
    assert!(
        !stored.contains_key(HELLO),
        "the least recently used went first"
    );
    // What a client needs to update is all still there: with upstream gone, a new client
    // updates cleanly from the cache alone.
    assert!(stored.contains_key("dists/stable/InRelease"));
    edge.stop_upstream();
    edge.apt("offline").update().assert_clean();
    let got = edge.get(BIG, &[]);
    assert_eq!((got.status, got.cache()), (200, "HIT"));
    let total: u64 = stored
        .keys()
        .map(|k| std::fs::metadata(edge.tree().join(k)).unwrap().len())
        .sum();
    assert!(total <= limit as u64, "{total} > {limit}");
}

#[test]
fn prune_evicts_down_to_a_size_and_keeps_the_indices() {
    let edge = Edge::start(|_| {}, "");
    let apt = edge.apt("client");
    apt.update().assert_clean();
    apt.download("hello").0.assert_clean();
    // A temp file a killed process left an hour ago, and one being written now.
    let old_temp = edge.tree().join("pool/main/h/hello/.x.deb.1-1.debsync-tmp");
    std::fs::write(&old_temp, b"partial").unwrap();
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .append(true)
        .open(&old_temp)
        .unwrap()
        .set_modified(hour_ago)
        .unwrap();
    let new_temp = edge.tree().join("pool/main/h/hello/.y.deb.1-2.debsync-tmp");
    std::fs::write(&new_temp, b"partial").unwrap();
    let config = edge.config.to_string_lossy().into_owned();
    let out = run_debsync(&["cache", "prune", "--config", &config, "--max-size", "1000"]);
    assert_success(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("edge: evicted 1 file(s)"), "{stdout}");
    assert!(stdout.contains("removed 1 stale temp file(s)"), "{stdout}");
    assert!(!old_temp.exists() && new_temp.exists());
    let stored = edge.stored();
    assert!(!stored.contains_key(HELLO));
    assert!(stored.contains_key("dists/stable/InRelease"));
    assert!(stored.keys().any(|k| k.contains("by-hash/SHA256/")));
    let bad = run_debsync(&["cache", "prune", "--config", &config, "--cache", "nope"]);
    let err = assert_failure(&bad);
    assert!(err.contains("no [[cache]] named \"nope\""), "{err}");
}
