//! Pool files: retries on transient faults, resume with `Range`, and the faults that must fail
//! the run before anything goes live.

use crate::common::*;
use crate::support::*;

const NEW: &str = "pool/main/n/newpkg/newpkg_1.0_amd64.deb";

/// A synced mirror whose upstream then gained `newpkg`: returns the fixture and the served
/// snapshot before the second sync.
fn with_new_package() -> (Fixture, std::collections::BTreeMap<String, String>) {
    let mut f = Fixture::new(|_| {}, "");
    f.sync_ok();
    let before = f.served();
    f.change(|a| add(a, "newpkg", "1.0", "amd64"));
    assert_eq!(NEW, pool_path("main", "newpkg", "1.0", "amd64"));
    assert!(f.archive.path(NEW).is_file());
    f.upstream.clear_log();
    (f, before)
}

fn statuses(f: &Fixture, rel: &str) -> Vec<u16> {
    f.upstream
        .requests_to(&format!("/{rel}"))
        .iter()
        .map(|r| r.status)
        .collect()
}

fn assert_fetched(f: &Fixture, rel: &str) {
    assert_eq!(
        std::fs::read(f.tree().join(rel)).unwrap(),
        f.archive.read(rel),
        "{rel}"
    );
    assert!(
        f.served()
            .contains_key("dists/stable/main/binary-amd64/Packages.gz")
            && std::fs::read(f.tree().join("dists/stable/InRelease")).unwrap()
                == f.archive.read("dists/stable/InRelease"),
        "the new generation is live"
    );
}

#[test]
fn downloads_only_missing_pool_files() {
    let (f, _) = with_new_package();
    f.sync_ok();
    assert_fetched(&f, NEW);
    let pool: Vec<String> = f
        .upstream
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/pool/"))
        .map(|r| r.path)
        .collect();
    assert_eq!(pool, [format!("/{NEW}")], "only the new file is fetched");
}

#[test]
fn server_errors_are_retried() {
    let (f, _) = with_new_package();
    f.upstream
        .add_fault(FaultRule::suffix(NEW, Fault::Status(500)).times(2));
    f.sync_ok();
    assert_eq!(statuses(&f, NEW), [500, 500, 200]);
    assert_fetched(&f, NEW);
}

#[test]
fn reset_mid_file_is_retried() {
    let (f, _) = with_new_package();
    f.upstream
        .add_fault(FaultRule::suffix(NEW, Fault::Reset { after: 1000 }).times(1));
    f.sync_ok();
    assert!(statuses(&f, NEW).len() >= 2, "{:#?}", f.upstream.requests());
    assert_fetched(&f, NEW);
}

#[test]
fn truncated_download_is_resumed_with_range() {
    let (f, _) = with_new_package();
    f.upstream
        .add_fault(FaultRule::suffix(NEW, Fault::Truncate { after: 1000 }).times(1));
    f.sync_ok();
    let reqs = f.upstream.requests_to(&format!("/{NEW}"));
    assert_eq!(reqs.len(), 2, "{reqs:#?}");
    assert_eq!(reqs[0].range, None);
    assert_eq!(reqs[1].range.as_deref(), Some("bytes=1000-"), "{reqs:#?}");
    assert_eq!(reqs[1].status, 206);
    assert_fetched(&f, NEW);
    let tmp = f
        .tree()
        .join("pool/main/n/newpkg/.newpkg_1.0_amd64.deb.debsync-tmp");
    assert!(!tmp.exists(), "no temp file left behind");
}

#[test]
fn pool_file_whose_hash_never_matches_is_refused() {
    let (f, before) = with_new_package();
    f.archive.corrupt(NEW);
    f.assert_refused(&before, &[NEW, "SHA256 mismatch", "not published"]);
    assert!(!f.tree().join(NEW).exists());
}

#[test]
fn pool_file_missing_upstream_is_refused() {
    let (f, before) = with_new_package();
    f.archive.delete(NEW);
    f.assert_refused(&before, &[NEW, "not found (404)"]);
}

#[test]
fn server_error_forever_is_refused_after_the_configured_retries() {
    let (f, before) = with_new_package();
    f.upstream
        .add_fault(FaultRule::suffix(NEW, Fault::Status(500)));
    f.assert_refused(&before, &[NEW, "HTTP 500"]);
    // retries = 4 (the default): five attempts, then give up.
    assert_eq!(statuses(&f, NEW), [500; 5]);
}

#[test]
fn truncated_download_forever_is_refused() {
    let (f, before) = with_new_package();
    f.upstream
        .add_fault(FaultRule::suffix(NEW, Fault::Truncate { after: 100 }));
    f.assert_refused(&before, &[NEW, "not published"]);
    assert_eq!(statuses(&f, NEW).len(), 5);
}

#[test]
fn reset_mid_file_forever_is_refused() {
    let (f, before) = with_new_package();
    f.upstream
        .add_fault(FaultRule::suffix(NEW, Fault::Reset { after: 100 }));
    f.assert_refused(&before, &[NEW, "not published"]);
    assert_eq!(statuses(&f, NEW).len(), 5);
}

/// The error of an interrupted transfer, once retries are spent.
fn interrupted_error(fault: Fault) -> String {
    let (f, before) = with_new_package();
    f.upstream.add_fault(FaultRule::suffix(NEW, fault));
    let stderr = f.assert_refused(&before, &[NEW]);
    stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap()
        .to_lowercase()
}

#[test]
fn interrupted_download_error_names_the_fault() {
    for fault in [Fault::Truncate { after: 100 }, Fault::Reset { after: 100 }] {
        let error = interrupted_error(fault.clone());
        assert!(
            [
                "ended after",
                "end of file",
                "truncated",
                "incomplete",
                "reset",
                "closed"
            ]
            .iter()
            .any(|w| error.contains(w)),
            "{fault:?}: the error does not say the body was cut short: {error}"
        );
    }
}

#[test]
fn resume_is_not_trusted_when_upstream_ignores_range() {
    let (f, _) = with_new_package();
    f.upstream
        .add_fault(FaultRule::suffix(NEW, Fault::Truncate { after: 1000 }).times(1));
    f.upstream
        .add_fault(FaultRule::suffix(NEW, Fault::IgnoreRange));
    f.sync_ok();
    let reqs = f.upstream.requests_to(&format!("/{NEW}"));
    assert_eq!(reqs.len(), 2, "{reqs:#?}");
    assert_eq!(reqs[1].range.as_deref(), Some("bytes=1000-"));
    assert_eq!(
        reqs[1].status, 200,
        "upstream answered the Range with the whole file"
    );
    assert_fetched(&f, NEW);
}

#[test]
fn partial_file_of_a_package_upstream_dropped_is_cleaned_up() {
    let (mut f, _) = with_new_package();
    f.upstream
        .add_fault(FaultRule::suffix(NEW, Fault::Truncate { after: 100 }));
    assert_failure(&f.sync());
    let partial = f
        .tree()
        .join("pool/main/n/newpkg/.newpkg_1.0_amd64.deb.debsync-tmp");
    assert!(
        partial.exists(),
        "a truncated download is kept for resuming"
    );

    f.upstream.clear_faults();
    f.change(|a| {
        a.remove_package("newpkg");
        add(a, "other", "1.0", "amd64");
    });
    f.sync_ok();
    assert!(!partial.exists(), "the stale partial file is removed");
    assert!(!f.tree().join(NEW).exists());
    assert!(
        f.tree()
            .join(pool_path("main", "other", "1.0", "amd64"))
            .is_file()
    );
}

#[test]
fn failed_run_does_not_replace_a_live_pool_file() {
    let (mut f, before) = with_new_package();
    // Upstream rewrites hello 1.0-1 in place (same path, other bytes), and newpkg never arrives.
    f.change(|a| a.suite("stable").package_mut("hello").content = noise("rebuilt", DEB_LEN));
    f.upstream
        .add_fault(FaultRule::suffix(NEW, Fault::Status(500)));
    f.assert_refused(&before, &[NEW, "HTTP 500"]);
    // What the live index promises still holds.
    let config = f.config_str();
    assert_success(&run_debsync(&["verify", "--config", &config]));
}

#[test]
fn pool_names_with_url_special_characters_are_mirrored() {
    let (mut f, _) = with_new_package();
    f.change(|a| {
        add(a, "tilde", "1.0+dfsg~rc1-2", "amd64");
        add(a, "percent", "1.0", "amd64");
        a.suite("stable").package_mut("percent").filename =
            Some("pool/main/p/percent/percent_1.0%2B;x=1_amd64.deb".into());
    });
    f.sync_ok();
    for p in [
        pool_path("main", "tilde", "1.0+dfsg~rc1-2", "amd64"),
        "pool/main/p/percent/percent_1.0%2B;x=1_amd64.deb".to_string(),
        NEW.to_string(),
    ] {
        assert_eq!(
            std::fs::read(f.tree().join(&p))
                .ok()
                .map(|b| sha256_hex(&b)),
            Some(sha256_hex(&f.archive.read(&p))),
            "{p}"
        );
    }
    let config = f.config_str();
    assert_success(&run_debsync(&["verify", "--config", &config]));
}

/// Over plain http the pool is pipelined (the default: several requests in flight on a
/// connection); `pipeline_depth = 0` sends one request at a time through the general client.
/// Either way each file arrives once, and an error answer in the middle of a pipeline is retried
/// while the requests behind it are answered on the same connection, not sent again.
#[test]
fn pipelined_and_one_at_a_time_fetch_the_same_pool() {
    let names: Vec<String> = (0..30).map(|i| format!("pkg{i:02}")).collect();
    for config in ["", "[sync]\npipeline_depth = 0\n"] {
        let f = Fixture::new(
            |a| {
                for n in &names {
                    add(a, n, "1.0", "amd64");
                }
            },
            config,
        );
        let failing = pool_path("main", "pkg15", "1.0", "amd64");
        f.upstream
            .add_fault(FaultRule::suffix(&failing, Fault::Status(503)).times(1));
        f.sync_ok();
        assert_eq!(statuses(&f, &failing), [503, 200], "{config:?}");
        for n in &names {
            let rel = pool_path("main", n, "1.0", "amd64");
            assert_fetched(&f, &rel);
            if rel != failing {
                assert_eq!(statuses(&f, &rel), [200], "{rel} with {config:?}");
            }
        }
    }
}
