//! The per-run changelog: `project/debsync/changes/<serial>.json` after each run that changed
//! packages, `debsync status --changes [--since] [--json]`, pruning to `changes_kept`, and the
//! file served by `debsync serve`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::common::*;
use crate::support::*;

fn changes_dir(f: &Fixture) -> std::path::PathBuf {
    f.tree().join("project/debsync/changes")
}

fn logs(f: &Fixture) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(changes_dir(f))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn read_log(f: &Fixture, name: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(changes_dir(f).join(name)).unwrap()).unwrap()
}

fn status(f: &Fixture, extra: &[&str]) -> String {
    let config = f.config_str();
    let mut args = vec!["status", "--config", &config, "--changes"];
    args.extend_from_slice(extra);
    let out = run_debsync(&args);
    assert_success(&out);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `GET path` over a fresh connection: (status, body).
fn get(url: &str, path: &str) -> (u16, Vec<u8>) {
    let addr = url.trim_start_matches("http://").trim_end_matches('/');
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let code = head.split(' ').nth(1).unwrap().parse().unwrap();
    (code, raw[split + 4..].to_vec())
}

/// A first sync, then upstream adds `newpkg`, upgrades `hello` and drops `libfoo1`: the
/// second run's changelog says exactly that, named by upstream's archive serial, and
/// `status --changes` and the server show it.
#[test]
fn a_run_records_what_it_added_upgraded_and_removed() {
    let mut f = Fixture::new(
        |a| a.trace_host = Some("upstream.example".into()),
        "[sync]\nmax_delete = 10\n",
    );
    f.sync_ok();
    let first = logs(&f);
    assert_eq!(first.len(), 1, "{first:?}");
    let initial = read_log(&f, &first[0]);
    assert_eq!(initial["suites"][0]["suite"], "stable");
    assert_eq!(initial["suites"][0]["initial"], true);
    assert_eq!(initial["suites"][0]["added"], serde_json::json!([]));
    let first_serial = initial["serial"].as_str().unwrap().to_string();
    assert_eq!(first[0], format!("{first_serial}.json"));
    assert_eq!(
        Some(first_serial.as_str()),
        f.state()["archive_serial"].as_str()
    );

    f.change(|a| {
        add(a, "newpkg", "1.0", "amd64");
        let hello = a.suites[0].package_mut("hello");
        hello.version = "1.1-1".into();
        hello.content = noise("hello_1.1-1", DEB_LEN);
        a.remove_package("libfoo1");
    });
    f.sync_ok();
    // A run that changed nothing records nothing.
    f.sync_ok();
    let now = logs(&f);
    assert_eq!(now.len(), 2, "{now:?}");
    let second = now.iter().find(|n| **n != first[0]).unwrap();
    let log = read_log(&f, second);
    assert_eq!(log["mirror"], "debian");
    assert_eq!(
        Some(log["serial"].as_str().unwrap()),
        f.state()["archive_serial"].as_str()
    );
    let suite = &log["suites"][0];
    assert_eq!(suite["initial"], false);
    assert_eq!(
        suite["added"],
        serde_json::json!([{"package": "newpkg", "arch": "amd64", "version": "1.0"}])
    );
    assert_eq!(
        suite["upgraded"],
        serde_json::json!([{"package": "hello", "arch": "amd64", "from": "1.0-1", "to": "1.1-1"}])
    );
    assert_eq!(
        suite["removed"],
        serde_json::json!([{"package": "libfoo1", "arch": "amd64", "version": "3.1"}])
    );

    let text = status(&f, &[]);
    for want in [
        "stable: initial sync",
        "stable: 1 added, 1 upgraded, 1 removed",
        "+ newpkg 1.0 [amd64]",
        "~ hello 1.0-1 -> 1.1-1 [amd64]",
        "- libfoo1 3.1 [amd64]",
    ] {
        assert!(text.contains(want), "{want:?} missing:\n{text}");
    }
    let since = status(&f, &["--since", &first_serial, "--json"]);
    let since: serde_json::Value = serde_json::from_str(&since).unwrap();
    assert_eq!(since.as_array().unwrap().len(), 1, "{since}");
    assert_eq!(since[0], log);
    let everything: serde_json::Value =
        serde_json::from_str(&status(&f, &["--since", "1970-01-01", "--json"])).unwrap();
    assert_eq!(everything.as_array().unwrap().len(), 2);

    let server = spawn_serve(&["--config", &f.config_str(), "--listen", "127.0.0.1:0"]).unwrap();
    let (code, body) = get(
        &server.url,
        &format!("/debian/project/debsync/changes/{second}"),
    );
    assert_eq!(code, 200);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&body).unwrap(),
        log
    );
}

/// Without an upstream archive serial the name is a timestamp serial; only the newest
/// `changes_kept` stay.
#[test]
fn timestamp_serials_and_only_the_newest_are_kept() {
    let mut f = Fixture::new(|_| {}, "[sync]\nchanges_kept = 2\n");
    f.sync_ok();
    for v in ["2", "3", "4"] {
        f.change(|a| add(a, &format!("pkg{v}"), v, "amd64"));
        f.sync_ok();
    }
    let names = logs(&f);
    assert_eq!(names.len(), 2, "{names:?}");
    for n in &names {
        let stem = n.trim_end_matches(".json");
        let base = stem.split('-').next().unwrap();
        assert_eq!(base.len(), 14, "{n}: YYYYMMDDHHMMSS");
        assert!(base.bytes().all(|b| b.is_ascii_digit()), "{n}");
    }
    let kept: Vec<String> = names
        .iter()
        .map(|n| read_log(&f, n)["suites"][0]["added"][0]["package"].to_string())
        .collect();
    assert!(kept.contains(&"\"pkg4\"".to_string()), "{kept:?}");
    assert!(!kept.contains(&"\"pkg2\"".to_string()), "{kept:?}");
}

/// `changes_kept = 0`: no changelog at all.
#[test]
fn changes_kept_zero_records_nothing() {
    let mut f = Fixture::new(|_| {}, "[sync]\nchanges_kept = 0\n");
    f.sync_ok();
    f.change(|a| add(a, "newpkg", "1.0", "amd64"));
    f.sync_ok();
    assert!(logs(&f).is_empty());
    assert!(status(&f, &[]).contains("no recorded changes"));
}

/// With `sources = true` the source packages are in the changelog too, as arch `source`.
#[test]
fn source_packages_are_recorded_as_arch_source() {
    let mut f = Fixture::new(
        |a| {
            a.suites[0].add_source("hello", "1.0-1", "main", b"hello source");
        },
        "[[mirror]]\nsources = true\n",
    );
    f.sync_ok();
    f.change(|a| {
        a.suites[0].add_source("newsrc", "2.0", "main", b"new source");
    });
    f.sync_ok();
    let names = logs(&f);
    assert_eq!(names.len(), 2, "{names:?}");
    let log = names
        .iter()
        .map(|n| read_log(&f, n))
        .find(|l| l["suites"][0]["initial"] == false)
        .unwrap();
    assert_eq!(
        log["suites"][0]["added"],
        serde_json::json!([{"package": "newsrc", "arch": "source", "version": "2.0"}])
    );
}
