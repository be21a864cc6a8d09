//! Transport and content faults, each on the three kinds of file a run fetches (InRelease, an
//! index, a pool file). Every test follows one shape: a good sync, upstream gains a package,
//! the fault is switched on, and then either
//! - the fault is transient (`times(n)`): the run retries and the mirror converges; or
//! - the fault persists: the run fails with an `error:` line naming the file and the fault,
//!   the served tree is byte-for-byte what it was, no staging is left, and once the fault is
//!   cleared the next run converges.

use std::time::{Duration, Instant};

use crate::common::*;
use crate::support::*;

const TARGETS: [&str; 3] = [INRELEASE, PACKAGES_XZ, NEW];

fn url_path(rel: &str) -> String {
    format!("/{rel}")
}

/// A synced mirror whose upstream then gained `newpkg`; returns the served tree before.
fn changed_fixture(
    extra_toml: &str,
    edit: impl FnOnce(&mut TestArchive),
) -> (Fixture, std::collections::BTreeMap<String, String>) {
    let mut f = Fixture::new(edit, extra_toml);
    f.sync_ok();
    let before = f.served();
    f.add_new_package();
    f.upstream.clear_log();
    (f, before)
}

/// `fault` on `target` for `times` requests: the run must succeed and converge, and the
/// fault must really have been hit.
fn transient(target: &str, fault: Fault, times: usize, extra_toml: &str) {
    let (f, _) = changed_fixture(extra_toml, |_| {});
    f.upstream.add_fault(FaultRule {
        path: PathMatch::Exact(url_path(target)),
        fault: fault.clone(),
        remaining: Some(times),
    });
    f.assert_converges();
    let hits = f
        .upstream
        .requests_to(&url_path(target))
        .iter()
        .filter(|r| r.faults.contains(&fault))
        .count();
    assert_eq!(
        hits,
        times,
        "{target} {fault:?}: {:#?}",
        f.upstream.requests()
    );
    eprintln!("transient {fault:?} on {target}: recovered");
}

/// `fault` on `target` forever: the run must fail naming the file (and every needle); then
/// the fault is cleared and the next run converges.
fn persistent(target: &str, fault: Fault, extra_toml: &str, needles: &[&str]) -> String {
    let (f, before) = changed_fixture(extra_toml, |_| {});
    f.upstream
        .add_fault(FaultRule::exact(&url_path(target), fault.clone()));
    let mut all = vec![target];
    all.extend_from_slice(needles);
    let line = f.assert_fails(&before, &all);
    eprintln!("persistent {fault:?} on {target}: {line}");
    f.upstream.clear_faults();
    f.assert_converges();
    line
}

/// The error of a body that ended early: a download says how far it got, a whole-file fetch
/// (InRelease) what the connection did.
fn assert_names_short_body(line: &str) {
    assert!(
        line.contains("transfer incomplete after")
            || line.contains("end of file before message length reached"),
        "does not name the short body: {line}"
    );
}

#[test]
fn server_errors_then_recovery_are_retried() {
    for target in TARGETS {
        transient(target, Fault::Status(500), 2, "");
        transient(target, Fault::Status(503), 3, "");
    }
}

#[test]
fn server_errors_forever_fail_naming_the_status() {
    for target in TARGETS {
        persistent(target, Fault::Status(503), "", &["HTTP 503"]);
    }
}

#[test]
fn truncated_body_is_retried_and_forever_fails() {
    for target in TARGETS {
        transient(target, Fault::Truncate { after: 100 }, 1, "");
        let line = persistent(target, Fault::Truncate { after: 100 }, "", &[]);
        assert_names_short_body(&line);
    }
}

#[test]
fn reset_mid_file_is_retried_and_forever_fails() {
    for target in TARGETS {
        transient(target, Fault::Reset { after: 100 }, 1, "");
        let line = persistent(target, Fault::Reset { after: 100 }, "", &[]);
        assert_names_short_body(&line);
    }
}

/// `[sync] timeout_secs = 1` against a drip of one small piece every 1.5 s.
const STALL_TOML: &str = "[sync]\ntimeout_secs = 1\nretries = 1\n";

fn stall() -> Fault {
    Fault::Drip {
        chunk: 16,
        every: Duration::from_millis(1500),
    }
}

#[test]
fn stalled_transfer_times_out_fast_and_a_retry_succeeds() {
    for target in TARGETS {
        let started = Instant::now();
        transient(target, stall(), 1, STALL_TOML);
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{target}: {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn stall_forever_fails_within_the_timeout() {
    for target in TARGETS {
        let started = Instant::now();
        persistent(target, stall(), STALL_TOML, &[]);
        // Two attempts of ~1 s each, plus three debsync runs around them.
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{target}: stalled run took {:?}",
            started.elapsed()
        );
    }
}

/// The error of a stalled transfer must say it timed out (and a reset one that the
/// connection broke): "error decoding response body" names neither.
#[test]
fn stall_and_reset_errors_name_the_fault() {
    let line = persistent(INRELEASE, stall(), STALL_TOML, &[]);
    assert!(
        line.contains("timed out") || line.contains("timeout"),
        "the message does not say the transfer stalled: {line}"
    );
    let line = persistent(NEW, Fault::Reset { after: 100 }, "", &[]);
    assert!(
        line.contains("reset") || line.contains("closed") || line.contains("incomplete"),
        "the message does not say the connection broke: {line}"
    );
}

#[test]
fn wrong_content_length_is_retried_and_forever_fails() {
    for target in TARGETS {
        // Longer than the body: the connection ends early, like a truncation.
        transient(target, Fault::ContentLength(100_000), 1, "");
        // Shorter than the body (index and pool: shorter than Release/Packages say).
        if target != INRELEASE {
            transient(target, Fault::ContentLength(50), 1, "");
        }
        let line = persistent(target, Fault::ContentLength(50), "", &[]);
        eprintln!("short Content-Length forever on {target}: {line}");
    }
}

/// An InRelease cut short by a lying Content-Length is a well-formed HTTP message with a
/// broken signature: failing the run is right, and the next run converges.
#[test]
fn inrelease_cut_by_a_short_content_length_fails_cleanly_once() {
    let (f, before) = changed_fixture("", |_| {});
    f.upstream
        .add_fault(FaultRule::exact(&url_path(INRELEASE), Fault::ContentLength(50)).times(1));
    let out = f.sync();
    if out.status.success() {
        eprintln!("short InRelease was retried");
    } else {
        let line = error_line(&String::from_utf8_lossy(&out.stderr));
        assert!(line.contains("InRelease"), "{line}");
        assert_same_tree(&before, &f.served());
        assert_no_staging(&f.tree());
    }
    f.assert_converges();
}

#[test]
fn file_whose_hash_is_wrong_fails_and_converges_once_fixed() {
    // An index and a pool file by name.
    for target in [PACKAGES_XZ, NEW] {
        let (mut f, before) = changed_fixture("", |_| {});
        f.archive.corrupt(target);
        let line = f.assert_fails(&before, &[target, "SHA256 mismatch"]);
        eprintln!("wrong hash on {target}: {line}");
        f.change(|_| {});
        f.assert_converges();
    }
    // The by-hash copy of an index, which is fetched first.
    let (mut f, before) = changed_fixture("", |a| a.suites[0].acquire_by_hash = true);
    let by_hash = by_hash_of(&f.archive, "main/binary-amd64/Packages.xz");
    f.archive.corrupt(&by_hash);
    let line = f.assert_fails(&before, &[&by_hash, "SHA256 mismatch"]);
    eprintln!("wrong hash on {by_hash}: {line}");
    f.change(|_| {});
    f.assert_converges();
}

/// `dists/stable/<dir>/by-hash/SHA256/<hex>` of an index as the current Release lists it.
fn by_hash_of(archive: &TestArchive, rel: &str) -> String {
    let release = String::from_utf8(archive.read("dists/stable/Release")).unwrap();
    let (sha, _) = release_sha256(&release)[rel].clone();
    let dir = rel.rsplit_once('/').unwrap().0;
    format!("dists/stable/{dir}/by-hash/SHA256/{sha}")
}

#[test]
fn file_listed_in_release_but_dropped_upstream() {
    // A pool file: 404 is final, the run fails; restored, the next run converges.
    let (mut f, before) = changed_fixture("", |_| {});
    f.archive.delete(NEW);
    f.assert_fails(&before, &[NEW, "not found (404)"]);
    f.change(|_| {});
    f.assert_converges();

    // Every variant of an index: the run fails.
    let (mut f, before) = changed_fixture("", |_| {});
    for v in [PACKAGES, PACKAGES_GZ, PACKAGES_XZ] {
        f.archive.delete(v);
    }
    f.assert_fails(&before, &[PACKAGES, "none of the variants"]);
    f.change(|_| {});
    f.assert_converges();

    // A by-hash copy: the index is fetched by name instead and the mirror gets its own
    // by-hash copy, so apt (which asks by hash) still finds it.
    let (f, _) = changed_fixture("", |a| a.suites[0].acquire_by_hash = true);
    let by_hash = by_hash_of(&f.archive, "main/binary-amd64/Packages.xz");
    f.archive.delete(&by_hash);
    f.assert_converges();
    assert_eq!(
        std::fs::read(f.tree().join(&by_hash)).unwrap(),
        f.archive.read(PACKAGES_XZ)
    );
    assert!(
        f.upstream
            .requests_to(&url_path(&by_hash))
            .iter()
            .any(|r| r.status == 404),
        "the by-hash copy was asked for first"
    );
}

#[test]
fn older_or_expired_release_is_refused_then_a_fresh_one_converges() {
    // Older: upstream goes back to a Release dated before the mirrored one.
    let mut f = Fixture::new(|a| a.suites[0].date = Some(rfc2822_from_now(-3600)), "");
    let old: Vec<(String, Vec<u8>)> = archive::walk_files(&f.archive.path(SUITE_DIR))
        .into_iter()
        .map(|rel| {
            let rel = format!("{SUITE_DIR}/{rel}");
            let bytes = f.archive.read(&rel);
            (rel, bytes)
        })
        .collect();
    f.sync_ok();
    f.change(|a| {
        a.suites[0].date = None;
        a.suites[0].packages.push(package("newpkg", "1.0", 4096));
    });
    f.sync_ok();
    let before = f.served();
    for (rel, bytes) in &old {
        f.archive.write(rel, bytes);
    }
    let line = f.assert_fails(&before, &["Release", "rollback refused"]);
    eprintln!("older Release: {line}");
    f.change(|_| {});
    f.assert_converges();

    // Expired: Valid-Until in the past.
    let (mut f, before) = changed_fixture("", |_| {});
    f.change(|a| a.suites[0].valid_until = Some(rfc2822_from_now(-60)));
    let line = f.assert_fails(&before, &["Release", "expired"]);
    eprintln!("expired Release: {line}");
    f.change(|a| a.suites[0].valid_until = Some(rfc2822_from_now(3600)));
    f.assert_converges();
}

#[test]
fn garbage_instead_of_inrelease_or_index_fails_and_converges() {
    // InRelease that is not a signed message at all (an HTML error page with status 200).
    let (mut f, before) = changed_fixture("", |_| {});
    f.archive.write(
        INRELEASE,
        b"<html><body>Service temporarily unavailable</body></html>\n",
    );
    let line = f.assert_fails(&before, &["InRelease"]);
    eprintln!("garbage InRelease: {line}");
    f.change(|_| {});
    f.assert_converges();

    // Random bytes, random sizes, for InRelease.
    let (mut f, before) = changed_fixture("", |_| {});
    f.archive.write(INRELEASE, &noise("garbage", 5000));
    f.assert_fails(&before, &["InRelease"]);
    f.change(|_| {});
    f.assert_converges();

    // Compressed indices that are garbage but correctly signed (a broken upstream): the
    // decoder fails, nothing goes live.
    let (mut f, before) = changed_fixture("", |a| a.suites[0].write_uncompressed = false);
    resign_with(
        &f.archive,
        "stable",
        &[
            ("main/binary-amd64/Packages.gz", noise("gz", 3000)),
            ("main/binary-amd64/Packages.xz", noise("xz", 3000)),
        ],
    );
    let line = f.assert_fails(&before, &["dists/stable/main/binary-amd64/Packages."]);
    eprintln!("signed garbage index: {line}");
    f.change(|_| {});
    f.assert_converges();
}

/// An endless body where Release (or the index) lists a small file: the run must stop
/// reading once past the listed size, write nothing big, and fail; healed, it converges.
#[test]
fn endless_2gb_body_is_cut_at_the_listed_size() {
    let cases: [(&str, u64); 3] = [
        // Release says a few hundred bytes.
        (PACKAGES_XZ, 0),
        // The index says 4096 bytes.
        (NEW, 0),
        // No listed size: only debsync's own cap on Release files stops it.
        (INRELEASE, 64 << 20),
    ];
    for (target, allowance) in cases {
        let (f, before) = changed_fixture("[sync]\nretries = 1\n", |_| {});
        let produced = Produced::default();
        let server =
            EndlessServer::serve(f.archive.dir(), vec![(url_path(target), produced.clone())]);
        let config = write_config(
            f.tmp.path(),
            &server.base_url(),
            &f.keyring,
            "[sync]\nretries = 1\n",
        );
        let started = Instant::now();
        let out = run_sync(&config);
        let stderr = assert_failure(&out);
        let line = error_line(&stderr);
        eprintln!(
            "endless {target}: {line} ({} MiB produced, {:?})",
            produced.load(std::sync::atomic::Ordering::Relaxed) >> 20,
            started.elapsed()
        );
        assert!(line.contains(target), "{line}");
        assert!(line.contains("larger than"), "{line}");
        // Two attempts, each may have a few MiB in socket buffers beyond what was read.
        let limit = 2 * allowance + (64 << 20);
        let sent = produced.load(std::sync::atomic::Ordering::Relaxed);
        assert!(sent < limit, "{target}: server produced {sent} bytes");
        assert_same_tree(&before, &served_snapshot(&f.tree()));
        assert_no_staging(&f.tree());
        let biggest = archive::walk_files(&f.tree())
            .into_iter()
            .map(|p| std::fs::metadata(f.tree().join(&p)).map_or(0, |m| m.len()))
            .max()
            .unwrap_or(0);
        assert!(biggest < 1 << 20, "a {biggest}-byte file was left");
        server.heal();
        assert_success(&run_sync(&config));
        assert_mirrors(f.archive.dir(), &f.archive, &f.tree());
    }
}

/// A truncated transfer resumed with `Range` against a server that ignores it: the full
/// `200` body must replace the partial, not be appended to it.
#[test]
fn resume_against_a_server_that_ignores_range() {
    for target in [PACKAGES, NEW] {
        let (f, _) = changed_fixture("", |_| {});
        f.upstream
            .add_fault(FaultRule::exact(&url_path(target), Fault::IgnoreRange));
        f.upstream.add_fault(
            FaultRule::exact(&url_path(target), Fault::Truncate { after: 300 }).times(1),
        );
        f.assert_converges();
        let reqs = f.upstream.requests_to(&url_path(target));
        assert!(reqs.len() >= 2, "{reqs:#?}");
        assert_eq!(reqs[0].range, None, "{reqs:#?}");
        assert_eq!(reqs[1].range.as_deref(), Some("bytes=300-"), "{reqs:#?}");
        assert_eq!(reqs[1].status, 200, "{reqs:#?}");
        eprintln!("{target}: Range ignored on resume, full body used");
    }
}

/// An endless InRelease is cut at debsync's own 64 MiB cap; the message should say so
/// rather than blame an index (no index lists InRelease).
#[test]
fn endless_inrelease_error_names_the_cap() {
    let (f, _) = changed_fixture("[sync]\nretries = 0\n", |_| {});
    let server = EndlessServer::serve(
        f.archive.dir(),
        vec![(url_path(INRELEASE), Produced::default())],
    );
    let config = write_config(
        f.tmp.path(),
        &server.base_url(),
        &f.keyring,
        "[sync]\nretries = 0\n",
    );
    let line = error_line(&assert_failure(&run_sync(&config)));
    assert!(line.contains("InRelease"), "{line}");
    assert!(!line.contains("the index lists"), "{line}");
}
