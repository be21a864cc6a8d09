//! Proves the shared kit in `tests/common/` does what it claims: archives pass the real apt,
//! signatures verify with `pgp`, and every upstream fault really happens on the wire.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

/// A small archive: `hello` (amd64), `data` (all), a `libfoo1` in `contrib`.
fn sample_archive(dir: &Path) -> TestArchive {
    let mut a = TestArchive::new(dir.join("upstream"));
    a.add_package("hello", "1.0-1", "amd64", "main", b"hello deb bytes");
    a.add_package("data", "2:0.5", "all", "main", b"arch all bytes");
    a.add_package("libfoo1", "3.1", "amd64", "contrib", b"libfoo bytes");
    a.suite("stable").architectures.push("all".into());
    a
}

fn keyring(dir: &Path, key: &TestKey) -> std::path::PathBuf {
    let p = dir.join("keys/archive.gpg");
    key.write_keyring(&p);
    p
}

fn apt_against(dir: &Path, url: &str, keyring: &Path) -> Apt {
    Apt::new(
        &dir.join("apt"),
        url,
        "stable",
        &["main", "contrib"],
        keyring,
    )
}

#[test]
fn apt_update_and_download_from_kit_archive() {
    let tmp = tempfile::tempdir().unwrap();
    let mut a = sample_archive(tmp.path());
    a.build();
    assert_eq!(
        a.read("pool/main/h/hello/hello_1.0-1_amd64.deb"),
        b"hello deb bytes"
    );
    assert!(
        a.path("pool/contrib/libf/libfoo1/libfoo1_3.1_amd64.deb")
            .exists()
    );
    assert!(a.path("pool/main/d/data/data_0.5_all.deb").exists());
    let up = Upstream::serve(a.dir());
    let apt = apt_against(tmp.path(), &up.base_url(), &keyring(tmp.path(), a.key()));

    assert_eq!(apt.fetch_package("hello"), b"hello deb bytes");
    assert_eq!(apt.fetch_package("data"), b"arch all bytes");
    assert_eq!(apt.fetch_package("libfoo1"), b"libfoo bytes");
    assert!(!up.requests_to("/dists/stable/InRelease").is_empty());
    assert!(
        up.requests_to("/Release.gpg").is_empty(),
        "InRelease was enough"
    );
}

#[test]
fn apt_is_clean_with_by_hash_armored_key_and_no_uncompressed_packages() {
    let tmp = tempfile::tempdir().unwrap();
    let mut a = sample_archive(tmp.path());
    {
        let s = a.suite("stable");
        s.acquire_by_hash = true;
        s.write_uncompressed = false;
    }
    a.build();
    let release = String::from_utf8(a.read("dists/stable/Release")).unwrap();
    assert!(release.contains("Acquire-By-Hash: yes\n"));
    assert!(
        release.contains(" main/binary-amd64/Packages\n"),
        "listed though not written"
    );
    assert!(!a.path("dists/stable/main/binary-amd64/Packages").exists());
    let xz = a.read("dists/stable/main/binary-amd64/Packages.xz");
    let by_hash = format!(
        "dists/stable/main/binary-amd64/by-hash/SHA256/{}",
        sha256_hex(&xz)
    );
    assert_eq!(a.read(&by_hash), xz);

    let up = Upstream::serve(a.dir());
    let asc = tmp.path().join("keys/archive.asc");
    a.key().write_armored(&asc);
    let apt = apt_against(tmp.path(), &up.base_url(), &asc);
    assert_eq!(apt.fetch_package("hello"), b"hello deb bytes");
    assert!(
        up.requests()
            .iter()
            .any(|r| r.path.contains("/by-hash/SHA256/")),
        "apt used by-hash: {:#?}",
        up.requests()
    );
}

#[test]
fn apt_is_clean_with_release_gpg_only_and_sources() {
    let tmp = tempfile::tempdir().unwrap();
    let mut a = sample_archive(tmp.path());
    {
        let s = a.suite("stable");
        s.write_inrelease = false;
        s.add_source("hello", "1.0-1", "main", b"orig tarball");
    }
    a.build();
    assert!(!a.path("dists/stable/InRelease").exists());
    assert!(a.path("pool/main/h/hello/hello_1.0-1.dsc").exists());
    assert!(a.path("pool/main/h/hello/hello_1.0.orig.tar.gz").exists());
    let sources = String::from_utf8(a.read("dists/stable/main/source/Sources")).unwrap();
    assert!(
        sources.contains("Directory: pool/main/h/hello\n"),
        "{sources}"
    );
    assert!(sources.contains("Checksums-Sha256:\n"), "{sources}");

    let up = Upstream::serve(a.dir());
    let kr = keyring(tmp.path(), a.key());
    let line = format!(
        "deb [signed-by={k}] {u} stable main\ndeb-src [signed-by={k}] {u} stable main\n",
        k = kr.display(),
        u = up.base_url()
    );
    let apt = Apt::with_sources_line(&tmp.path().join("apt"), &line);
    apt.update().assert_clean();
    assert!(!up.requests_to("/dists/stable/Release.gpg").is_empty());
    let listed: Vec<String> = std::fs::read_dir(apt.lists_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        listed.iter().any(|n| n.ends_with("_source_Sources")),
        "{listed:?}"
    );
}

#[test]
fn apt_rejects_archive_signed_by_unknown_key() {
    let tmp = tempfile::tempdir().unwrap();
    let mut a = sample_archive(tmp.path());
    a.suite("stable").signer = Some(TestKey::other().clone());
    a.build();
    let up = Upstream::serve(a.dir());
    let apt = apt_against(tmp.path(), &up.base_url(), &keyring(tmp.path(), a.key()));
    let problems = apt.update().assert_problem();
    assert!(
        problems
            .iter()
            .any(|l| l.contains("NO_PUBKEY") || l.contains("not signed")),
        "{problems:#?}"
    );
}

#[test]
fn inrelease_verifies_with_pgp_and_fails_after_one_byte_tamper() {
    let tmp = tempfile::tempdir().unwrap();
    let mut a = sample_archive(tmp.path());
    a.build();
    let release = a.read("dists/stable/Release");
    let inrelease = String::from_utf8(a.read("dists/stable/InRelease")).unwrap();
    let signed = a.key().verify_clearsigned(&inrelease).expect("verifies");
    let release_text = String::from_utf8(release.clone()).unwrap();
    assert_eq!(signed.replace("\r\n", "\n") + "\n", release_text);
    assert!(inrelease.contains(&format!(
        "\n\n{release_text}-----BEGIN PGP SIGNATURE-----\n"
    )));
    let gpg = String::from_utf8(a.read("dists/stable/Release.gpg")).unwrap();
    a.key()
        .verify_detached(&gpg, &release)
        .expect("Release.gpg verifies");
    assert!(TestKey::other().verify_clearsigned(&inrelease).is_err());

    a.tamper_inrelease("stable");
    let tampered = String::from_utf8(a.read("dists/stable/InRelease")).unwrap();
    assert_eq!(tampered.len(), inrelease.len());
    assert_eq!(
        tampered
            .bytes()
            .zip(inrelease.bytes())
            .filter(|(x, y)| x != y)
            .count(),
        1
    );
    assert!(a.key().verify_clearsigned(&tampered).is_err());
}

#[test]
fn release_lists_sizes_and_hashes_in_debian_format() {
    let tmp = tempfile::tempdir().unwrap();
    let mut a = sample_archive(tmp.path());
    {
        let s = a.suite("stable");
        s.date = Some("Sat, 10 Jun 2023 08:54:36 UTC".into());
        s.valid_until = Some("Sat, 17 Jun 2023 08:54:36 UTC".into());
        s.release_omit_components = vec!["contrib".into()];
    }
    a.build();
    let release = String::from_utf8(a.read("dists/stable/Release")).unwrap();
    assert!(release.contains("Date: Sat, 10 Jun 2023 08:54:36 UTC\n"));
    assert!(release.contains("Valid-Until: Sat, 17 Jun 2023 08:54:36 UTC\n"));
    assert!(release.contains("Components: main\n"));
    assert!(!release.contains("contrib/"));
    let gz = a.read("dists/stable/main/binary-amd64/Packages.gz");
    let line = format!(
        " {} {:>16} main/binary-amd64/Packages.gz\n",
        sha256_hex(&gz),
        gz.len()
    );
    assert!(release.contains(&line), "{release}");
    let packages = String::from_utf8(a.read("dists/stable/main/binary-amd64/Packages")).unwrap();
    assert!(
        packages.contains("Package: data\n"),
        "arch all is in binary-amd64"
    );
    assert!(packages.contains("Filename: pool/main/d/data/data_0.5_all.deb\n"));
    assert!(packages.contains(&format!("SHA256: {}\n", sha256_hex(b"hello deb bytes"))));
}

#[test]
fn rebuild_in_place_updates_only_what_changed() {
    let tmp = tempfile::tempdir().unwrap();
    let mut a = sample_archive(tmp.path());
    a.build();
    let before = snapshot_tree(a.dir());
    a.build();
    let again = snapshot_tree(a.dir());
    let differs: Vec<&String> = before
        .keys()
        .filter(|k| before.get(*k) != again.get(*k))
        .collect();
    // Only the signatures differ (they carry a creation time) — or nothing, within one second.
    assert!(
        differs
            .iter()
            .all(|k| k.ends_with("InRelease") || k.ends_with("Release.gpg")),
        "{differs:?}"
    );

    a.remove_package("libfoo1");
    a.suite("stable").package_mut("hello").version = "1.1-1".into();
    a.suite("stable").package_mut("hello").content = b"hello 1.1".to_vec();
    a.build();
    let after = snapshot_tree(a.dir());
    assert!(!after.contains_key("pool/contrib/libf/libfoo1/libfoo1_3.1_amd64.deb"));
    assert!(!after.contains_key("pool/main/h/hello/hello_1.0-1_amd64.deb"));
    assert_eq!(
        a.read("pool/main/h/hello/hello_1.1-1_amd64.deb"),
        b"hello 1.1"
    );
    assert_eq!(
        before["pool/main/d/data/data_0.5_all.deb"],
        after["pool/main/d/data/data_0.5_all.deb"]
    );
}

#[test]
fn hostile_filename_and_extra_stanza_reach_packages() {
    let tmp = tempfile::tempdir().unwrap();
    let mut a = TestArchive::new(tmp.path().join("upstream"));
    a.add_package("evil", "1", "amd64", "main", b"x").filename = Some("../evil".into());
    a.add_package("pw", "1", "amd64", "main", b"y").filename = Some("/etc/passwd".into());
    a.suite("stable").extra_stanzas.push((
        "main".into(),
        "amd64".into(),
        "Package: raw\nVersion: 1\nFilename: pool/main/r/raw/raw.deb\n".into(),
    ));
    a.build();
    let packages = String::from_utf8(a.read("dists/stable/main/binary-amd64/Packages")).unwrap();
    assert!(packages.contains("Filename: ../evil\n"));
    assert!(packages.contains("Filename: /etc/passwd\n"));
    assert!(
        packages.ends_with("Filename: pool/main/r/raw/raw.deb\n\n"),
        "{packages}"
    );
    assert!(!tmp.path().join("evil").exists());
}

#[test]
fn write_config_is_accepted_by_debsync_config() {
    let tmp = tempfile::tempdir().unwrap();
    let kr = tmp.path().join("k.gpg");
    TestKey::shared().write_keyring(&kr);
    let path = write_config(
        tmp.path(),
        "http://127.0.0.1:1/",
        &kr,
        "[sync]\nretries = 1\n[[mirror]]\nsuites = [\"stable\", \"testing\"]\nsources = true\n",
    );
    let cfg = debsync::config::Config::load(&path).expect("config loads");
    assert_eq!(cfg.sync.retry_delay_ms, 0);
    assert_eq!(cfg.sync.retries, 1);
    assert_eq!(cfg.mirrors.len(), 1);
    assert_eq!(cfg.mirrors[0].name, MIRROR_NAME);
    assert_eq!(cfg.mirrors[0].suites, ["stable", "testing"]);
    assert!(cfg.mirrors[0].sources);
    assert_eq!(cfg.mirrors[0].tree(&cfg.root), mirror_dir(tmp.path()));
}

#[test]
fn run_sync_spawns_the_binary() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), "http://127.0.0.1:1/", &tmp.path().join("k"), "");
    // Whatever the engine does today, the helper returns its output instead of hanging.
    let out = run_sync(&config);
    assert!(out.status.code().is_some());
    let snap = snapshot_tree(&mirror_dir(tmp.path()));
    let _ = snap;
}

#[test]
fn spawn_serve_reports_a_server_that_never_listens() {
    // The skeleton binary exits at once; the helper must say so instead of hanging.
    if let Ok(server) = spawn_serve(&["--root", "/nonexistent", "--listen", "127.0.0.1:0"]) {
        assert!(
            server.url.starts_with("http://127.0.0.1:"),
            "{}",
            server.url
        );
    }
}

// ---- upstream faults, seen by a raw HTTP/1.1 client ----

/// A minimal HTTP/1.1 GET with `Connection: close`: (status, headers, body as received).
fn raw_get(url_base: &str, path: &str, extra: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let host = url_base
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let mut s = TcpStream::connect(&host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{extra}\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    // A reset may end the read with an error after some bytes: keep what arrived.
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => panic!("read timed out"),
            Err(_) => break,
        }
    }
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("headers")
        + 4;
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, buf[end..].to_vec())
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn served_blob(tmp: &Path) -> Upstream {
    let root = tmp.join("www");
    std::fs::create_dir_all(root.join("d")).unwrap();
    std::fs::write(root.join("d/blob.bin"), blob()).unwrap();
    Upstream::serve(&root)
}

fn blob() -> Vec<u8> {
    (0..100_000u32).map(|i| (i % 251) as u8).collect()
}

#[test]
fn fault_status_for_first_n_requests_then_recovers() {
    let tmp = tempfile::tempdir().unwrap();
    let up = served_blob(tmp.path());
    up.add_fault(FaultRule::suffix("/blob.bin", Fault::Status(503)).times(2));
    up.add_fault(FaultRule::exact("/d/missing", Fault::Status(404)));
    let statuses: Vec<u16> = (0..3)
        .map(|_| raw_get(&up.base_url(), "/d/blob.bin", "").0)
        .collect();
    assert_eq!(statuses, [503, 503, 200]);
    assert_eq!(raw_get(&up.base_url(), "/d/missing", "").0, 404);
    let log = up.requests_to("/blob.bin");
    assert_eq!(log.len(), 3);
    assert_eq!(log[0].faults, [Fault::Status(503)]);
    assert!(log[2].faults.is_empty());
    assert_eq!(log[2].method, "GET");
}

#[test]
fn fault_require_auth_answers_401_without_the_exact_header() {
    let tmp = tempfile::tempdir().unwrap();
    let up = served_blob(tmp.path());
    up.add_fault(FaultRule::any(Fault::RequireAuth("Bearer t0k".into())));
    assert_eq!(raw_get(&up.base_url(), "/d/blob.bin", "").0, 401);
    let wrong = "Authorization: Bearer nope\r\n";
    assert_eq!(raw_get(&up.base_url(), "/d/blob.bin", wrong).0, 401);
    let right = "Authorization: Bearer t0k\r\n";
    let (status, _, body) = raw_get(&up.base_url(), "/d/blob.bin", right);
    assert_eq!((status, body), (200, blob()));
}

#[test]
fn fault_truncate_and_reset_give_short_bodies() {
    let tmp = tempfile::tempdir().unwrap();
    let up = served_blob(tmp.path());
    up.add_fault(FaultRule::suffix("/blob.bin", Fault::Truncate { after: 1000 }).times(1));
    let (status, h, body) = raw_get(&up.base_url(), "/d/blob.bin", "");
    assert_eq!(status, 200);
    assert_eq!(header(&h, "content-length"), Some("100000"));
    assert_eq!(body, blob()[..1000]);

    up.add_fault(FaultRule::suffix("/blob.bin", Fault::Truncate { after: 70_000 }).times(1));
    let (_, _, body) = raw_get(&up.base_url(), "/d/blob.bin", "");
    assert_eq!(body, blob()[..70_000]);

    up.add_fault(FaultRule::suffix("/blob.bin", Fault::Reset { after: 5000 }).times(1));
    let (_, h, body) = raw_get(&up.base_url(), "/d/blob.bin", "");
    assert_eq!(header(&h, "content-length"), Some("100000"));
    assert_eq!(body, blob()[..5000]);

    let (_, _, body) = raw_get(&up.base_url(), "/d/blob.bin", "");
    assert_eq!(body, blob(), "rules are spent");
}

#[test]
fn fault_range_is_honoured_or_ignored() {
    let tmp = tempfile::tempdir().unwrap();
    let up = served_blob(tmp.path());
    let (status, h, body) = raw_get(&up.base_url(), "/d/blob.bin", "Range: bytes=99990-\r\n");
    assert_eq!(status, 206);
    assert_eq!(
        header(&h, "content-range"),
        Some("bytes 99990-99999/100000")
    );
    assert_eq!(body, blob()[99990..]);

    up.add_fault(FaultRule::contains("blob", Fault::IgnoreRange));
    let (status, _, body) = raw_get(&up.base_url(), "/d/blob.bin", "Range: bytes=99990-\r\n");
    assert_eq!(status, 200);
    assert_eq!(body, blob());
    let log = up.requests();
    assert_eq!(log[1].range.as_deref(), Some("bytes=99990-"));
    assert_eq!(log[1].status, 200);
}

#[test]
fn fault_wrong_content_length_and_drip() {
    let tmp = tempfile::tempdir().unwrap();
    let up = served_blob(tmp.path());
    up.add_fault(FaultRule::suffix("/blob.bin", Fault::ContentLength(200_000)).times(1));
    let (_, h, body) = raw_get(&up.base_url(), "/d/blob.bin", "");
    assert_eq!(header(&h, "content-length"), Some("200000"));
    assert_eq!(body, blob(), "the real body, shorter than claimed");

    up.add_fault(FaultRule::suffix("/blob.bin", Fault::ContentLength(10)).times(1));
    let (_, h, body) = raw_get(&up.base_url(), "/d/blob.bin", "");
    assert_eq!(header(&h, "content-length"), Some("10"));
    assert_eq!(body, blob()[..10], "hyper stops at the claimed length");

    up.add_fault(
        FaultRule::suffix(
            "/blob.bin",
            Fault::Drip {
                chunk: 25_000,
                every: Duration::from_millis(50),
            },
        )
        .times(1),
    );
    let start = Instant::now();
    let (_, _, body) = raw_get(&up.base_url(), "/d/blob.bin", "");
    assert_eq!(body, blob());
    assert!(
        start.elapsed() >= Duration::from_millis(200),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn upstream_serves_async_clients_too() {
    let tmp = tempfile::tempdir().unwrap();
    let up = served_blob(tmp.path());
    let addr = up.addr();
    let fetch = async move {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        s.write_all(b"HEAD /d/blob.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.unwrap();
        out
    };
    let out = tokio::time::timeout(Duration::from_secs(10), fetch)
        .await
        .expect("in time");
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("content-length: 100000"),
        "{text}"
    );
    assert_eq!(up.requests()[0].method, "HEAD");
}

#[test]
fn apt_refuses_expired_valid_until() {
    let tmp = tempfile::tempdir().unwrap();
    let mut a = sample_archive(tmp.path());
    {
        let s = a.suite("stable");
        s.date = Some(rfc2822_from_now(-10 * 86_400));
        s.valid_until = Some(rfc2822_from_now(-86_400));
    }
    a.build();
    let up = Upstream::serve(a.dir());
    let apt = apt_against(tmp.path(), &up.base_url(), &keyring(tmp.path(), a.key()));
    let problems = apt.update().assert_problem();
    assert!(
        problems.iter().any(|l| l.contains("expired")),
        "{problems:#?}"
    );
}

#[test]
#[ignore = "RSA key generation takes seconds in debug builds"]
fn apt_accepts_rsa_signed_archive() {
    let tmp = tempfile::tempdir().unwrap();
    let key = TestKey::rsa(2048, "rsa archive <rsa@test.invalid>");
    let mut a = sample_archive(tmp.path()).with_key(&key);
    a.build();
    let up = Upstream::serve(a.dir());
    let apt = apt_against(tmp.path(), &up.base_url(), &keyring(tmp.path(), &key));
    assert_eq!(apt.fetch_package("hello"), b"hello deb bytes");
}
