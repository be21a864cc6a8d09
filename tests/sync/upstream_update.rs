//! Upstream mid-update (issue 14): a Release that lists files upstream has not written yet,
//! an upstream that publishes a new Release during our run, and ftpsync's
//! `Archive-Update-in-Progress-*` flag. The run re-plans, or waits and retries
//! (`upstream_update_wait_secs`, `upstream_update_retries`), or fails with the served tree
//! unchanged. Upstream is held at known points with the kit's `Fault::Hold`; nothing sleeps.

use std::time::{Duration, Instant};

use crate::common::*;
use crate::support::*;

/// Polls `f` (bounded) until it holds.
fn wait_until(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(Instant::now() < deadline, "{what}: not within 60 s");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `debsync sync` on a thread: the test steers upstream while it runs.
fn sync_in_background(f: &Fixture) -> std::thread::JoinHandle<std::process::Output> {
    let config = f.config.clone();
    std::thread::spawn(move || run_sync(&config))
}

/// An upstream root page naming ftpsync's flag, as an autoindex of a mirror mid-update does.
fn raise_flag(f: &Fixture) {
    let page = "<html><body><a href=\"Archive-Update-in-Progress-up.example\">\
                Archive-Update-in-Progress-up.example</a></body></html>\n";
    std::fs::write(f.archive.dir().join("index.html"), page).unwrap();
}

fn lower_flag(f: &Fixture) {
    std::fs::remove_file(f.archive.dir().join("index.html")).unwrap();
}

fn root_probes(f: &Fixture) -> usize {
    f.upstream
        .requests()
        .iter()
        .filter(|r| r.path == "/")
        .count()
}

/// Upstream publishes a new Release while our run downloads the pool, dropping a file the
/// old one listed: the 404 makes the run fetch InRelease again and re-plan at once (no wait:
/// retries are 0), keeping what it had downloaded; the old tree is served until the swap.
#[test]
fn upstream_flipping_its_release_mid_run_is_followed_and_downloads_are_kept() {
    let toml =
        "[sync]\nconcurrency = 1\nupstream_update_wait_secs = 0\nupstream_update_retries = 0\n";
    let mut f = Fixture::new(|_| {}, toml);
    f.sync_ok();
    let v1 = f.served();
    let (aaa, zzz, zzz2) = (
        pool_path("main", "aaa", "1.0", "amd64"),
        pool_path("main", "zzz", "1.0", "amd64"),
        pool_path("main", "zzz2", "1.0", "amd64"),
    );
    f.change(|a| {
        add(a, "aaa", "1.0", "amd64");
        add(a, "zzz", "1.0", "amd64");
    });
    f.upstream
        .add_fault(FaultRule::suffix(&aaa, Fault::Hold("aaa".into())));
    let run = sync_in_background(&f);
    wait_until("the run at aaa's download", || f.upstream.held("aaa") == 1);
    assert_same_tree(&v1, &f.served());

    // Upstream moves on: zzz is gone, zzz2 is new. Then aaa's download finishes.
    f.change(|a| {
        assert_eq!(a.remove_package("zzz"), 1);
        add(a, "zzz2", "1.0", "amd64");
    });
    f.upstream.release("aaa");
    let out = run.join().unwrap();
    assert_success(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("re-planning"), "{stderr}");

    let tree = f.tree();
    assert_eq!(
        std::fs::read(tree.join("dists/stable/InRelease")).unwrap(),
        f.archive.read("dists/stable/InRelease"),
        "the new Release is live"
    );
    assert_eq!(
        std::fs::read(tree.join(&aaa)).unwrap(),
        f.archive.read(&aaa)
    );
    assert_eq!(
        std::fs::read(tree.join(&zzz2)).unwrap(),
        f.archive.read(&zzz2)
    );
    assert!(!tree.join(&zzz).exists());
    assert_eq!(
        f.upstream.requests_to(&aaa).len(),
        1,
        "aaa was kept, not fetched again"
    );
    assert_eq!(f.upstream.requests_to(&zzz)[0].status, 404);
    assert!(f.verify().status.success());
}

/// ftpsync's flag on upstream's root: the run waits (doubling from 1 s) and looks again,
/// serving the old tree meanwhile; once the flag is gone it syncs.
#[test]
fn an_upstream_update_flag_is_waited_out() {
    let toml = "[sync]\nupstream_update_wait_secs = 1\nupstream_update_retries = 20\n";
    let mut f = Fixture::new(|_| {}, toml);
    f.sync_ok();
    let v1 = f.served();
    let new = pool_path("main", "newpkg", "1.0", "amd64");
    f.change(|a| add(a, "newpkg", "1.0", "amd64"));
    raise_flag(&f);
    let probes = root_probes(&f);
    let run = sync_in_background(&f);
    wait_until("a second look at the flag", || {
        root_probes(&f) >= probes + 2
    });
    assert_same_tree(&v1, &f.served());
    assert!(
        f.upstream.requests_to(&new).is_empty(),
        "nothing fetched while flagged"
    );
    lower_flag(&f);
    let out = run.join().unwrap();
    assert_success(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Archive-Update-in-Progress"), "{stderr}");
    assert_eq!(
        std::fs::read(f.tree().join(&new)).unwrap(),
        f.archive.read(&new)
    );
}

/// A pool file missing once (upstream has not written it yet): one wait, then it is there.
#[test]
fn a_listed_file_missing_once_is_waited_for() {
    let toml = "[sync]\nupstream_update_wait_secs = 0\nupstream_update_retries = 3\n";
    let mut f = Fixture::new(|_| {}, toml);
    f.sync_ok();
    let new = pool_path("main", "newpkg", "1.0", "amd64");
    f.change(|a| add(a, "newpkg", "1.0", "amd64"));
    f.upstream
        .add_fault(FaultRule::suffix(&new, Fault::Status(404)).times(1));
    f.sync_ok();
    let statuses: Vec<u16> = f
        .upstream
        .requests_to(&new)
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [404, 200]);
    assert_eq!(
        std::fs::read(f.tree().join(&new)).unwrap(),
        f.archive.read(&new)
    );
}

/// Retries exhausted, for a missing file and for the flag: one clear error line, the served
/// tree exactly as it was.
#[test]
fn when_upstream_stays_mid_update_the_run_fails_and_the_tree_is_unchanged() {
    let toml = "[sync]\nupstream_update_wait_secs = 0\nupstream_update_retries = 2\n";
    let mut f = Fixture::new(|_| {}, toml);
    f.sync_ok();
    let before = f.served();
    let new = pool_path("main", "newpkg", "1.0", "amd64");
    f.change(|a| add(a, "newpkg", "1.0", "amd64"));
    f.upstream
        .add_fault(FaultRule::suffix(&new, Fault::Status(404)));
    f.assert_refused(
        &before,
        &[
            "upstream is mid-update",
            "upstream_update_retries = 2",
            "newpkg_1.0_amd64.deb",
            "served tree is unchanged",
        ],
    );
    assert_eq!(
        f.upstream.requests_to(&new).len(),
        3,
        "the first try and 2 retries"
    );

    f.upstream.clear_faults();
    raise_flag(&f);
    f.assert_refused(&before, &["Archive-Update-in-Progress", "mid-update"]);
    lower_flag(&f);
    f.sync_ok();
    assert_eq!(
        std::fs::read(f.tree().join(&new)).unwrap(),
        f.archive.read(&new)
    );
}

/// `debsync sync` pushes its `notify` targets after a successful run: a busy downstream
/// (503) is retried until it takes the push (202); one that refuses it (403) is asked once
/// and logged. The run succeeds either way, and the token is never logged.
#[test]
fn notify_retries_a_busy_downstream_and_gives_up_on_a_refusal() {
    let tmp = tempfile::tempdir().unwrap();
    let downstream = Upstream::serve(tmp.path());
    let token = tmp.path().join("leaf-token");
    std::fs::write(&token, "leaf-secret-9d2\n").unwrap();
    let target = |path: &str| {
        format!(
            "{{ url = \"{}\", token_file = \"{}\" }}",
            downstream.url(path),
            token.display()
        )
    };
    let toml = format!(
        "[[mirror]]\nnotify = [{}, {}]\n",
        target("-/sync/busy"),
        target("-/sync/refusing")
    );
    let f = Fixture::new(|_| {}, &toml);
    downstream.add_fault(FaultRule::exact("/-/sync/busy", Fault::Status(503)).times(2));
    downstream.add_fault(FaultRule::exact("/-/sync/busy", Fault::Status(202)));
    downstream.add_fault(FaultRule::exact("/-/sync/refusing", Fault::Status(403)));
    let out = f.sync();
    assert_success(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let busy: Vec<(String, u16)> = downstream
        .requests_to("/-/sync/busy")
        .into_iter()
        .map(|r| (r.method, r.status))
        .collect();
    let post = |s: u16| ("POST".to_string(), s);
    assert_eq!(busy, [post(503), post(503), post(202)]);
    assert_eq!(downstream.requests_to("/-/sync/refusing").len(), 1);
    assert!(stderr.contains("sync started (202)"), "{stderr}");
    assert!(
        stderr.contains("/-/sync/refusing failed: HTTP 403"),
        "{stderr}"
    );
    assert!(!stderr.contains("leaf-secret"), "{stderr}");
}
