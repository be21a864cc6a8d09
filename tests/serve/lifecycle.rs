//! Start-up, mounts, TLS and graceful shutdown.

use std::io::{Read, Write};
use std::process::Command;
use std::time::Duration;

use debsync::serve::Limits;

use crate::ops::config;
use crate::support::{Lib, Proc, Resp, Tree, bare, connect, curl, curl_resp, get, noise};

#[test]
fn config_serves_each_mirror_under_its_prefix() {
    let (t, cfg) = config(&["debian", "debian-security", "ubuntu"]);
    t.file("srv/debian/dists/bookworm/Release", b"Origin: Debian\n");
    t.file(
        "srv/debian-security/dists/bookworm-security/Release",
        b"Origin: Debian security\n",
    );
    t.file("srv/ubuntu/dists/noble/Release", b"Origin: Ubuntu\n");
    t.file("srv/stray-dir/secret", b"not a mirror");
    let p = Proc::spawn(&["--config", cfg.to_str().unwrap()]);
    assert_eq!(
        get(p.addr, "/debian/dists/bookworm/Release", &[]).text(),
        "Origin: Debian\n"
    );
    assert_eq!(
        get(
            p.addr,
            "/debian-security/dists/bookworm-security/Release",
            &[]
        )
        .text(),
        "Origin: Debian security\n"
    );
    assert_eq!(
        get(p.addr, "/ubuntu/dists/noble/Release", &[]).text(),
        "Origin: Ubuntu\n"
    );
    // Mirrors don't leak into each other, and the root is not served.
    assert_eq!(get(p.addr, "/debian/dists/noble/Release", &[]).status, 404);
    assert_eq!(get(p.addr, "/stray-dir/secret", &[]).status, 404);
    let r = get(p.addr, "/debian", &[]);
    assert_eq!((r.status, r.header("location")), (301, Some("/debian/")));
    // `/` lists the mirrors, not the root directory.
    let j: serde_json::Value =
        serde_json::from_slice(&get(p.addr, "/", &["Accept: application/json"]).body).unwrap();
    let names: Vec<&str> = j["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["debian", "debian-security", "ubuntu"]);
    let html = get(p.addr, "/", &[]).text();
    assert!(html.contains("href=\"/debian-security/\"") && !html.contains("stray"));
    let html = get(p.addr, "/debian/dists/", &[]).text();
    assert!(
        html.contains("href=\"/debian/\""),
        "breadcrumb includes the mirror prefix"
    );
}

#[test]
fn bad_start_up_is_one_error_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_debsync"))
        .args([
            "serve",
            "--root",
            "/nonexistent/debsync-test",
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: /nonexistent/debsync-test: "),
        "{err}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_debsync"))
        .args(["serve", "--root", "/tmp", "--listen", "nonsense"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .starts_with("error: \"nonsense\": not a socket address")
    );
    let out = Command::new(env!("CARGO_BIN_EXE_debsync"))
        .args(["serve", "--root", "/tmp", "--config", "x.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "clap usage error");
}

#[test]
fn sigterm_finishes_in_flight_responses() {
    let t = Tree::new();
    let big = t.path("big.iso");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(32 << 20)
        .unwrap();
    let mut p = Proc::spawn_env(
        &["--root", t.dir.path().to_str().unwrap()],
        &[("RUST_LOG", "debug")],
    );
    let mut s = connect(p.addr);
    s.write_all(b"GET /big.iso HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut first = vec![0u8; 64 * 1024];
    s.read_exact(&mut first).unwrap(); // the response is under way
    p.signal_term();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    let r = Resp::parse(&[first, rest].concat());
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body.len(),
        32 << 20,
        "in-flight body cut short; server log:\n{}",
        p.stderr()
    );
    assert!(r.header("connection").is_none_or(|c| c == "close"));
    assert!(p.wait().success());
    assert!(std::net::TcpStream::connect_timeout(&p.addr, Duration::from_secs(2)).is_err());
}

#[test]
fn injected_shutdown_closes_idle_and_drains_busy_connections() {
    let t = Tree::new();
    t.file("small", b"hi");
    std::fs::File::create(t.path("big.iso"))
        .unwrap()
        .set_len(32 << 20)
        .unwrap();
    let mut lib = Lib::start(bare(t.dir.path()), Limits::default());
    // An idle keep-alive connection…
    let mut idle = connect(lib.addr);
    idle.write_all(b"GET /small HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = idle.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).ends_with("hi"));
    // …and a busy one.
    let mut busy = connect(lib.addr);
    busy.write_all(b"GET /big.iso HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut first = vec![0u8; 64 * 1024];
    busy.read_exact(&mut first).unwrap();
    lib.trigger_shutdown();
    // The idle one is closed promptly (read returns EOF, not the 10 s timeout).
    let mut rest = Vec::new();
    idle.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    // The busy one gets every byte.
    let mut body = Vec::new();
    busy.read_to_end(&mut body).unwrap();
    assert_eq!(Resp::parse(&[first, body].concat()).body.len(), 32 << 20);
    assert!(
        lib.wait_stopped(Duration::from_secs(10)),
        "run() did not return"
    );
}

#[test]
fn tls_with_rustls() {
    let t = Tree::new();
    t.file("pool/x.deb", &noise(200_000, 9));
    let cert = t.path("cert.pem");
    let key = t.path("key.pem");
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ])
        .args([
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let p = Proc::spawn(&[
        "--root",
        t.dir.path().to_str().unwrap(),
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    assert!(p.base.starts_with("https://127.0.0.1:"), "{}", p.base);
    let r = curl_resp(&[
        "--cacert",
        cert.to_str().unwrap(),
        &format!("{}/pool/x.deb", p.base),
    ]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, noise(200_000, 9));
    let r = curl_resp(&[
        "--cacert",
        cert.to_str().unwrap(),
        "-r",
        "10-19",
        &format!("{}/pool/x.deb", p.base),
    ]);
    assert_eq!((r.status, r.body.len()), (206, 10));
    // Plain HTTP on the TLS port gets nowhere, and the failed handshake is not left counted
    // as an open connection.
    let out = curl(&[&format!("http://{}/pool/x.deb", p.addr)]);
    assert!(!out.status.success() || !String::from_utf8_lossy(&out.stdout).contains("200"));
    let open = || {
        let r = curl_resp(&[
            "--cacert",
            cert.to_str().unwrap(),
            &format!("{}/metrics", p.base),
        ]);
        r.text()
            .lines()
            .any(|l| l == "debsync_http_connections_open 1")
    };
    assert!(crate::support::eventually(Duration::from_secs(5), open));
}
