//! Operating a mirror: `debsync status` (human and JSON), a run stopped by Ctrl-C or SIGTERM
//! (state says `interrupted`, the tree is as it was), and a killed run shown as interrupted.

use std::time::Duration;

use crate::common::*;
use crate::support::*;

fn status(f: &Fixture, extra: &[&str]) -> String {
    let config = f.config_str();
    let mut args = vec!["status", "--config", &config];
    args.extend_from_slice(extra);
    let out = run_debsync(&args);
    assert_success(&out);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn status_shows_the_last_run_in_text_and_json() {
    let f = Fixture::new(|_| {}, "");
    let never = status(&f, &[]);
    assert!(never.starts_with("debian: never"), "{never}");
    f.sync_ok();
    let text = status(&f, &[]);
    for want in [
        "debian: ok",
        "last success:",
        "files fetched",
        "archive serial: 20",
        "pool:          3 files",
        "stable: Release of ",
    ] {
        assert!(text.contains(want), "{want:?} missing:\n{text}");
    }
    let json: serde_json::Value = serde_json::from_str(&status(&f, &["--json"])).unwrap();
    let m = &json[0];
    assert_eq!(m["mirror"], "debian");
    assert_eq!(m["result"], "ok");
    assert_eq!(m["pool_files"], 3);
    assert_eq!(m["last_run"]["fetched_files"], 3);
    assert!(m["suites"][0]["release_date"].as_i64().unwrap() > 0);
}

/// A run killed mid-way leaves `running` in its state file; nobody holds the lock, so status
/// says what happened.
#[test]
fn a_killed_run_shows_as_interrupted() {
    let f = Fixture::new(|_| {}, "");
    f.sync_ok();
    let path = f.tree().join(".debsync/state.json");
    let mut state = f.state();
    state["last_result"] = "running".into();
    std::fs::write(&path, serde_json::to_vec(&state).unwrap()).unwrap();
    assert!(status(&f, &[]).starts_with("debian: interrupted"));
}

/// Ctrl-C (SIGINT) and SIGTERM during the pool stage: the run stops, says so, leaves the
/// served tree as it was and records `interrupted`; the next run converges.
#[test]
fn a_signal_abandons_the_run_cleanly() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let mut f = Fixture::new(|_| {}, "");
        f.sync_ok();
        f.change(|a| add(a, "newpkg", "1", "amd64"));
        let before = f.served();
        f.upstream.add_fault(FaultRule::contains(
            "newpkg",
            Fault::Drip {
                chunk: 1,
                every: Duration::from_millis(200),
            },
        ));
        let child = f.spawn_sync();
        f.wait_for_request("newpkg_1_amd64.deb", Duration::from_secs(20));
        // SAFETY: a plain kill(2) on a child we own.
        unsafe { libc::kill(child.id() as i32, signal) };
        let out = child.wait_with_output().unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("error: interrupted"), "{err}");
        assert_same_tree(&before, &f.served());
        assert_eq!(f.state()["last_result"], "interrupted");
        f.upstream.clear_faults();
        f.sync_ok();
    }
}

/// Upstream fails every request in the middle of the pool stage: the run stops after a few
/// failures in a row with one clear error, instead of retrying every remaining file.
#[test]
fn a_dead_upstream_stops_the_run_early() {
    let mut f = Fixture::new(|_| {}, "[sync]\nretries = 4\nconcurrency = 2\n");
    f.sync_ok();
    f.change(|a| {
        for i in 0..60 {
            add(a, &format!("pkg{i}"), "1", "amd64");
        }
    });
    let before = f.served();
    f.upstream
        .add_fault(FaultRule::contains("/pool/", Fault::Status(503)));
    let out = f.sync();
    let err = assert_failure(&out);
    assert!(err.contains("upstream down"), "{err}");
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{err}"
    );
    assert_same_tree(&before, &f.served());
    // 60 files x 5 attempts without the breaker; with it, about the threshold.
    let pool_requests = f
        .upstream
        .requests()
        .iter()
        .filter(|r| r.path.contains("/pool/"))
        .count();
    assert!(pool_requests < 40, "{pool_requests} pool requests");
}

/// `-q` keeps a healthy run silent (cron mails nothing); `--log-format json` writes one JSON
/// object per log line.
#[test]
fn quiet_and_json_logs() {
    let f = Fixture::new(|_| {}, "");
    let config = f.config_str();
    let out = run_debsync(&["sync", "-q", "--config", &config]);
    assert_success(&out);
    assert!(out.stdout.is_empty() && out.stderr.is_empty(), "{out:?}");
    let out = run_debsync(&["--log-format", "json", "sync", "--config", &config]);
    assert_success(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(!lines.is_empty());
    for l in lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        assert!(
            v["level"].is_string() && v["fields"]["message"].is_string(),
            "{l}"
        );
    }
}

/// Shell completions and the man page come from the CLI definition itself.
#[test]
fn completions_and_man_page() {
    for shell in ["bash", "zsh", "fish"] {
        let out = run_debsync(&["completions", shell]);
        assert_success(&out);
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(
            script.contains("status") && script.contains("config"),
            "{shell}"
        );
    }
    let out = run_debsync(&["manpage"]);
    assert_success(&out);
    let man = String::from_utf8_lossy(&out.stdout);
    assert!(
        man.contains(".TH debsync 1") && man.contains("sync"),
        "{man}"
    );
}

/// Off a terminal, a long pool stage logs a progress line now and then (the interval is
/// shortened for the test): files done of queued, bytes, rate.
#[test]
fn a_long_pool_stage_reports_progress() {
    let mut f = Fixture::new(|_| {}, "");
    f.sync_ok();
    f.change(|a| add(a, "newpkg", "1", "amd64"));
    f.upstream.add_fault(FaultRule::contains(
        "newpkg",
        Fault::Drip {
            chunk: 512,
            every: Duration::from_millis(150),
        },
    ));
    let out = run_with_timeout(
        std::process::Command::new(debsync_bin())
            .args(["sync", "--config", &f.config_str()])
            .env("DEBSYNC_PROGRESS_SECS", "0.2"),
        Duration::from_secs(60),
    );
    assert_success(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .find(|l| l.contains("debian: pool: "))
        .unwrap_or_else(|| panic!("no progress line:\n{err}"));
    assert!(
        line.contains("/1 files") && line.contains("received") && line.contains("/s"),
        "{line}"
    );
}
