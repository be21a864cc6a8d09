//! `/healthz`, `/metrics` and the access log.

use crate::support::{Proc, Tree, curl_resp, get, metric};
use crate::{DEB, DEB_LEN, archive};

/// A config with the given mirrors under `<tmp>/srv/`; returns (tmp, config path).
pub fn config(mirrors: &[&str]) -> (Tree, std::path::PathBuf) {
    let t = Tree::new();
    t.file("keys/k.gpg", b"not checked by serve");
    let mut text = String::from("root = \"srv\"\n");
    for m in mirrors {
        text.push_str(&format!(
            "[[mirror]]\nname = \"{m}\"\nupstream = \"http://127.0.0.1:1/{m}\"\nsuites = [\"stable\"]\n\
             components = [\"main\"]\narchitectures = [\"amd64\"]\nkeyring = \"keys/k.gpg\"\n"
        ));
    }
    let path = t.file("mirror.toml", text.as_bytes());
    (t, path)
}

#[test]
fn healthz_reports_unservable_trees() {
    let (t, cfg) = config(&["debian", "ubuntu"]);
    t.file("srv/debian/dists/stable/Release", b"x");
    let p = Proc::spawn(&["--config", cfg.to_str().unwrap()]);
    let r = get(p.addr, "/healthz", &[]);
    assert_eq!(r.status, 503);
    assert!(
        r.text().contains("ubuntu") && !r.text().contains("debian"),
        "{}",
        r.text()
    );
    t.dir("srv/ubuntu");
    let r = get(p.addr, "/healthz", &[]);
    assert_eq!((r.status, r.text().as_str()), (200, "ok\n"));
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
        "debsync_mirror_last_result{mirror=\"broken\",result=\"failed\"} 1",
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
    // Every HELP/TYPE pair names a family that follows.
    for l in text.lines().filter(|l| !l.starts_with('#')) {
        let (name, value) = l.rsplit_once(' ').unwrap();
        assert!(value.parse::<f64>().is_ok(), "{l}");
        let family = name.split('{').next().unwrap();
        assert!(
            text.contains(&format!("# TYPE {family} ")),
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
