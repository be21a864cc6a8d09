//! `/healthz`, `/metrics` and the access log.

use std::time::Duration;

use crate::support::{Proc, Tree, curl_resp, eventually, get, metric};
use crate::{DEB, DEB_LEN, archive};

/// A config with the given mirrors under `<tmp>/srv/`; returns (tmp, config path).
pub fn config(mirrors: &[&str]) -> (Tree, std::path::PathBuf) {
    config_with(mirrors, "")
}

/// [`config`] with more TOML appended (a `[serve]` table).
pub fn config_with(mirrors: &[&str], extra: &str) -> (Tree, std::path::PathBuf) {
    let t = Tree::new();
    t.file("keys/k.gpg", b"not checked by serve");
    let mut text = String::from("root = \"srv\"\n");
    for m in mirrors {
        text.push_str(&format!(
            "[[mirror]]\nname = \"{m}\"\nupstream = \"http://127.0.0.1:1/{m}\"\nsuites = [\"stable\"]\n\
             components = [\"main\"]\narchitectures = [\"amd64\"]\nkeyring = \"keys/k.gpg\"\n"
        ));
    }
    text.push_str(extra);
    let path = t.file("mirror.toml", text.as_bytes());
    (t, path)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A state file as sync writes it, last success `age` seconds ago.
fn synced(t: &Tree, mirror: &str, age: i64) {
    t.file(
        &format!("srv/{mirror}/.debsync/state.json"),
        format!(
            r#"{{"last_result": "ok", "last_success": {}}}"#,
            now() - age
        )
        .as_bytes(),
    );
}

#[test]
fn healthz_needs_every_mirror_synced_and_fresh() {
    let (t, cfg) = config_with(
        &["debian", "ubuntu", "stale"],
        "[serve]\nmax_age_secs = 3600\n",
    );
    synced(&t, "debian", 60);
    synced(&t, "stale", 7200);
    let p = Proc::spawn(&["--config", cfg.to_str().unwrap()]);
    let r = get(p.addr, "/healthz", &[]);
    assert_eq!(r.status, 503);
    let text = r.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].starts_with("ubuntu: ") && lines[0].contains("srv/ubuntu"),
        "{text}"
    );
    assert!(
        lines[1].starts_with("stale: last successful sync 2h 0m ago (")
            && lines[1].ends_with("older than max_age_secs = 3600"),
        "{text}"
    );

    // A tree that exists but was never synced is not healthy either.
    t.dir("srv/ubuntu");
    let r = get(p.addr, "/healthz", &[]);
    assert_eq!(r.status, 503);
    assert!(r.text().contains("ubuntu: never synced"), "{}", r.text());

    synced(&t, "ubuntu", 0);
    synced(&t, "stale", 10);
    let r = get(p.addr, "/healthz", &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    assert!(text.starts_with("ok\n"), "{text}");
    for m in ["debian", "ubuntu", "stale"] {
        assert!(
            text.contains(&format!("\n{m}: last successful sync ")),
            "{text}"
        );
    }
}

#[test]
fn healthz_max_age_defaults_to_two_days_and_zero_turns_it_off() {
    let (t, cfg) = config(&["debian"]);
    synced(&t, "debian", 2 * 86_400 + 60);
    let p = Proc::spawn(&["--config", cfg.to_str().unwrap()]);
    assert_eq!(get(p.addr, "/healthz", &[]).status, 503);
    drop(p);
    let (t, cfg) = config_with(&["debian"], "[serve]\nmax_age_secs = 0\n");
    synced(&t, "debian", 365 * 86_400);
    let p = Proc::spawn(&["--config", cfg.to_str().unwrap()]);
    assert_eq!(get(p.addr, "/healthz", &[]).status, 200);
}

#[test]
fn request_durations_are_a_histogram() {
    let t = archive();
    let p = Proc::spawn(&["--root", t.dir.path().to_str().unwrap()]);
    let count = "debsync_http_request_duration_seconds_count";
    let before = metric(p.addr, count).unwrap();
    assert_eq!(get(p.addr, &format!("/{DEB}"), &[]).status, 200);
    let text = get(p.addr, "/metrics", &[]).text();
    let sample = |s: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(s)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {s} in\n{text}"))
    };
    // The first scrape and the download.
    assert_eq!(sample(count), before + 2.0, "{text}");
    assert_eq!(
        sample("debsync_http_request_duration_seconds_bucket{le=\"+Inf\"}"),
        sample(count)
    );
    assert!(sample("debsync_http_request_duration_seconds_sum") > 0.0);
    assert!(
        sample("debsync_http_request_duration_seconds_bucket{le=\"0.001\"}")
            <= sample("debsync_http_request_duration_seconds_bucket{le=\"60\"}")
    );
    assert_eq!(
        sample(&format!(
            "debsync_build_info{{version=\"{}\"}}",
            env!("CARGO_PKG_VERSION")
        )),
        1.0
    );
}

#[test]
fn metrics_count_requests_bytes_and_read_sync_state() {
    let (t, cfg) = config(&["debian", "ubuntu", "broken"]);
    t.file(
        "srv/debian/.debsync/state.json",
        br#"{"last_success": 1700000000, "last_result": "ok", "archive_serial": "2024060101", "new_key": {"x": 1}}"#,
    );
    t.file("srv/debian/dists/stable/Release", b"0123456789");
    t.dir("srv/ubuntu"); // never synced: no state file
    // A state file this version cannot read (a field of the wrong type).
    t.file(
        "srv/broken/.debsync/state.json",
        br#"{"last_result": "failed", "last_success": "soon"}"#,
    );
    let p = Proc::spawn(&["--config", cfg.to_str().unwrap()]);
    for _ in 0..3 {
        assert_eq!(get(p.addr, "/debian/dists/stable/Release", &[]).status, 200);
    }
    assert_eq!(get(p.addr, "/debian/nope", &[]).status, 404);
    let r = curl_resp(&[&format!("{}/metrics", p.base)]);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = r.text();
    for line in [
        "debsync_http_requests_total{code=\"200\"} 3",
        "debsync_http_requests_total{code=\"404\"} 1",
        "debsync_http_requests_in_flight 1", // the scrape itself
        "debsync_mirror_last_success_timestamp_seconds{mirror=\"debian\"} 1700000000",
        "debsync_mirror_last_result{mirror=\"debian\",result=\"ok\"} 1",
        "debsync_mirror_archive_serial_info{mirror=\"debian\",serial=\"2024060101\"} 1",
        "debsync_mirror_last_result{mirror=\"ubuntu\",result=\"never\"} 1",
        "debsync_mirror_last_result{mirror=\"broken\",result=\"unknown\"} 1",
        "debsync_mirror_servable{mirror=\"ubuntu\"} 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    assert!(!text.contains("timestamp_seconds{mirror=\"ubuntu\"}"));
    assert!(!text.contains("timestamp_seconds{mirror=\"broken\"}"));
    // Error bodies count too; 3 × 10 bytes of Release at least.
    assert!(metric(p.addr, "debsync_http_response_bytes_total").unwrap() >= 30.0);
    // Every sample belongs to a family with a TYPE (a histogram's by its base name).
    for l in text.lines().filter(|l| !l.starts_with('#')) {
        let (name, value) = l.rsplit_once(' ').unwrap();
        assert!(value.parse::<f64>().is_ok(), "{l}");
        let family = name.split('{').next().unwrap();
        let histogram = ["_bucket", "_sum", "_count"]
            .iter()
            .filter_map(|suffix| family.strip_suffix(suffix))
            .any(|base| text.contains(&format!("# TYPE {base} histogram\n")));
        assert!(
            histogram || text.contains(&format!("# TYPE {family} ")),
            "{family} has no TYPE"
        );
    }
}

#[test]
fn access_log_is_combined_format() {
    let t = archive();
    let mut p = Proc::spawn_env(
        &["--root", t.dir.path().to_str().unwrap()],
        &[("RUST_LOG", "info")],
    );
    let r = get(
        p.addr,
        &format!("/{DEB}"),
        &[
            "User-Agent: Debian APT-HTTP/1.3 (2.6.1) \"quoted\"",
            "Referer: http://x/",
        ],
    );
    assert_eq!(r.status, 200);
    get(p.addr, "/missing?q=1", &[]);
    assert!(p.terminate().success());
    let log = p.stderr();
    let line = log
        .lines()
        .find(|l| l.contains(&format!("\"GET /{DEB} HTTP/1.1\"")))
        .unwrap_or_else(|| panic!("no access line in\n{log}"));
    assert!(line.contains("127.0.0.1 - - ["), "{line}");
    assert!(
        line.contains(&format!("\" 200 {DEB_LEN} \"http://x/\" ")),
        "{line}"
    );
    assert!(
        line.contains("\"Debian APT-HTTP/1.3 (2.6.1) \\x22quoted\\x22\""),
        "{line}"
    );
    assert!(log.contains("\"GET /missing?q=1 HTTP/1.1\" 404 "), "{log}");
}

/// `--access-log FILE`: exactly nginx's combined format, one line per response, nothing on
/// stderr; SIGHUP (after logrotate moved the file) makes the next lines land in a new file at
/// the same path.
#[test]
fn access_log_file_is_combined_and_reopened_on_sighup() {
    let t = archive();
    let logs = Tree::new();
    let path = logs.path("access.log");
    let p = Proc::spawn_env(
        &[
            "--root",
            t.dir.path().to_str().unwrap(),
            "--access-log",
            path.to_str().unwrap(),
        ],
        &[("RUST_LOG", "info")],
    );
    let agent = "Debian APT-HTTP/1.3 (2.6.1) \"quoted\"";
    let r = get(
        p.addr,
        &format!("/{DEB}"),
        &[&format!("User-Agent: {agent}"), "Referer: http://x/"],
    );
    assert_eq!(r.status, 200);
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_default();
    assert!(
        eventually(Duration::from_secs(10), || read(&path).contains(DEB)),
        "no line in {}",
        read(&path)
    );
    let log = read(&path);
    let line = log.lines().find(|l| l.contains(DEB)).unwrap();
    // 127.0.0.1 - - [02/Dec/2026:16:24:35 +0000] "GET /… HTTP/1.1" 200 1048699 "http://x/" "…"
    let (head, rest) = line.split_once(" [").unwrap();
    assert_eq!(head, "127.0.0.1 - -");
    let (date, rest) = rest.split_once("] ").unwrap();
    assert_eq!(date.len(), "02/Dec/2026:16:24:35 +0000".len(), "{line}");
    assert!(date.ends_with(" +0000"), "{line}");
    assert_eq!(
        rest,
        format!(
            "\"GET /{DEB} HTTP/1.1\" 200 {DEB_LEN} \"http://x/\" \"Debian APT-HTTP/1.3 (2.6.1) \\x22quoted\\x22\""
        )
    );
    assert!(
        !p.stderr().contains(DEB),
        "access lines go to the file only"
    );

    // logrotate: move the file, then SIGHUP.
    let rotated = logs.path("access.log.1");
    std::fs::rename(&path, &rotated).unwrap();
    p.signal(rustix::process::Signal::HUP);
    assert!(
        eventually(Duration::from_secs(10), || path.exists()),
        "no new file after SIGHUP; stderr:\n{}",
        p.stderr()
    );
    assert_eq!(get(p.addr, "/missing?after=hup", &[]).status, 404);
    assert!(
        eventually(Duration::from_secs(10), || read(&path)
            .contains("\"GET /missing?after=hup HTTP/1.1\" 404 ")),
        "{}",
        read(&path)
    );
    assert!(!read(&rotated).contains("after=hup"));
    assert!(read(&rotated).contains(DEB));
    assert!(
        p.stderr().contains("reopening the access log"),
        "{}",
        p.stderr()
    );
}

#[test]
fn an_unwritable_access_log_is_one_error_line() {
    let t = archive();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_debsync"))
        .args(["serve", "--root", t.dir.path().to_str().unwrap()])
        .args([
            "--listen",
            "127.0.0.1:0",
            "--access-log",
            "/nonexistent/dir/access.log",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.trim(),
        "error: /nonexistent/dir/access.log: cannot open the access log: No such file or directory (os error 2)"
    );
}
