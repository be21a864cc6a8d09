//! GET/HEAD, Range, conditionals, content types and cache headers — with curl.

use crate::support::{Proc, curl, curl_resp, get, noise};
use crate::{DEB, DEB_LEN, archive};

#[test]
fn head_has_length_and_type_but_no_body() {
    let t = archive();
    let p = Proc::spawn(&["--root", t.dir.path().to_str().unwrap()]);
    let r = curl_resp(&["-I", &format!("{}/{DEB}", p.base)]);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-length"),
        Some(DEB_LEN.to_string().as_str())
    );
    assert_eq!(
        r.header("content-type"),
        Some("application/vnd.debian.binary-package")
    );
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    assert!(r.header("etag").is_some() && r.header("last-modified").is_some());
    // Raw: nothing follows the head of a HEAD response.
    let raw = crate::support::raw(
        p.addr,
        format!("HEAD /{DEB} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    let r = crate::support::Resp::parse(&raw);
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty(), "HEAD sent {} body bytes", r.body.len());
}

#[test]
fn get_streams_the_exact_bytes() {
    let t = archive();
    let p = Proc::spawn(&["--root", t.dir.path().to_str().unwrap()]);
    let r = curl_resp(&[&format!("{}/{DEB}", p.base)]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, noise(DEB_LEN, 1));
    // A small file takes the read-at-open path.
    let r = curl_resp(&[&format!("{}/dists/stable/Release", p.base)]);
    assert_eq!(r.body, b"Origin: Debian\nSuite: stable\n");
    assert_eq!(r.header("content-length"), Some("29"));
}

#[test]
fn single_ranges() {
    let t = archive();
    let p = Proc::spawn(&["--root", t.dir.path().to_str().unwrap()]);
    let url = format!("{}/{DEB}", p.base);
    let all = noise(DEB_LEN, 1);
    let len = DEB_LEN as u64;
    for (range, start, end) in [
        ("0-0", 0, 0),
        ("100-199", 100, 199),
        ("1000000-", 1_000_000, len - 1),
        ("-10", len - 10, len - 1),
        ("1048000-9999999", 1_048_000, len - 1),
    ] {
        let r = curl_resp(&["-r", range, &url]);
        assert_eq!(r.status, 206, "{range}");
        assert_eq!(
            r.header("content-range"),
            Some(format!("bytes {start}-{end}/{len}").as_str()),
            "{range}"
        );
        assert_eq!(r.body, all[start as usize..=end as usize], "{range}");
    }
    // The same on a small (in-memory) file.
    let r = curl_resp(&["-r", "8-14", &format!("{}/dists/stable/Release", p.base)]);
    assert_eq!((r.status, r.body.as_slice()), (206, &b"Debian\n"[..]));
    // Past the end: 416 with the length.
    let r = curl_resp(&["-r", &format!("{len}-"), &url]);
    assert_eq!(r.status, 416);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes */{len}").as_str())
    );
    // Several ranges: the whole file, as RFC 9110 allows.
    let r = curl_resp(&["-r", "0-1,5-6", &url]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), DEB_LEN);
}

#[test]
fn resume_like_apt_with_if_range() {
    let t = archive();
    let p = Proc::spawn(&["--root", t.dir.path().to_str().unwrap()]);
    let url = format!("{}/{DEB}", p.base);
    let dir = tempfile::tempdir().unwrap();
    let part = dir.path().join("hello.deb");
    std::fs::write(&part, &noise(DEB_LEN, 1)[..300_000]).unwrap();
    let out = curl(&["-C", "-", "-o", part.to_str().unwrap(), &url]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(&part).unwrap(), noise(DEB_LEN, 1));
    // apt sends If-Range with the Last-Modified it saw; a fresh validator honours the range,
    // a stale one gets the whole (new) file.
    let head = curl_resp(&["-I", &url]);
    let lm = head.header("last-modified").unwrap().to_string();
    let etag = head.header("etag").unwrap().to_string();
    for (cond, want) in [
        (lm.as_str(), 206),
        (etag.as_str(), 206),
        ("Thu, 01 Jan 1998 00:00:00 GMT", 200),
        ("\"stale\"", 200),
    ] {
        let r = get(
            p.addr,
            &format!("/{DEB}"),
            &["Range: bytes=10-", &format!("If-Range: {cond}")],
        );
        assert_eq!(r.status, want, "If-Range: {cond}");
    }
}

#[test]
fn conditional_requests() {
    let t = archive();
    let p = Proc::spawn(&["--root", t.dir.path().to_str().unwrap()]);
    let url = format!("{}/dists/stable/InRelease", p.base);
    let first = curl_resp(&[&url]);
    let etag = first.header("etag").unwrap().to_string();
    let lm = first.header("last-modified").unwrap().to_string();
    let cases: Vec<(String, u16)> = vec![
        (format!("If-None-Match: {etag}"), 304),
        (format!("If-None-Match: \"nope\", {etag}"), 304),
        ("If-None-Match: \"nope\"".into(), 200),
        (format!("If-Modified-Since: {lm}"), 304),
        (
            "If-Modified-Since: Thu, 01 Jan 1998 00:00:00 GMT".into(),
            200,
        ),
        (format!("If-Match: {etag}"), 200),
        ("If-Match: \"nope\"".into(), 412),
        (
            "If-Unmodified-Since: Thu, 01 Jan 1998 00:00:00 GMT".into(),
            412,
        ),
    ];
    for (h, want) in cases {
        let r = curl_resp(&["-H", &h, &url]);
        assert_eq!(r.status, want, "{h}");
        if want == 304 {
            assert!(r.body.is_empty());
            assert_eq!(r.header("etag"), Some(etag.as_str()));
        }
    }
    // curl's own -z sends If-Modified-Since from a date.
    let r = curl_resp(&["-z", &lm, &url]);
    assert_eq!(r.status, 304);
}

#[test]
fn content_types_and_cache_lifetimes() {
    let t = archive();
    let p = Proc::spawn(&["--root", t.dir.path().to_str().unwrap()]);
    let by_hash = "dists/stable/main/binary-amd64/by-hash/SHA256/0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";
    for (path, ct, cc) in [
        (
            DEB,
            "application/vnd.debian.binary-package",
            "public, max-age=2592000",
        ),
        (
            "pool/main/h/hello/hello_2.10-3.dsc",
            "text/plain; charset=utf-8",
            "public, max-age=2592000",
        ),
        (
            "dists/stable/InRelease",
            "text/plain; charset=utf-8",
            "public, max-age=60, must-revalidate",
        ),
        (
            "dists/stable/main/binary-amd64/Packages",
            "text/plain; charset=utf-8",
            "public, max-age=60, must-revalidate",
        ),
        (
            "dists/stable/main/binary-amd64/Packages.xz",
            "application/x-xz",
            "public, max-age=60, must-revalidate",
        ),
        (
            by_hash,
            "application/octet-stream",
            "public, max-age=31536000, immutable",
        ),
    ] {
        let r = curl_resp(&["-I", &format!("{}/{path}", p.base)]);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-type"), Some(ct), "{path}");
        assert_eq!(r.header("cache-control"), Some(cc), "{path}");
    }
}

#[test]
fn directories_redirect_to_slash_form() {
    let t = archive();
    let p = Proc::spawn(&["--root", t.dir.path().to_str().unwrap()]);
    let r = get(p.addr, "/dists/stable", &[]);
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("/dists/stable/"));
    // Collapsed slashes can't turn the redirect into a protocol-relative URL.
    let r = get(p.addr, "//dists", &[]);
    assert_eq!(r.header("location"), Some("/dists/"));
    // A file with a trailing slash is not a directory.
    assert_eq!(get(p.addr, &format!("/{DEB}/"), &[]).status, 404);
}

#[test]
fn a_swap_mid_response_never_mixes_generations() {
    // The sync swaps `dists/<suite>` with RENAME_EXCHANGE. A response that started before the
    // swap must finish with the old bytes; the next request sees the new ones.
    let t = crate::support::Tree::new();
    let len = 32 << 20;
    t.file("dists/stable/main/Contents-amd64", &vec![b'A'; len]);
    t.file(
        ".debsync/staging/stable/main/Contents-amd64",
        &vec![b'B'; len],
    );
    let p = Proc::spawn(&["--root", t.dir.path().to_str().unwrap()]);
    let mut s = crate::support::connect(p.addr);
    use std::io::{Read, Write};
    s.write_all(
        b"GET /dists/stable/main/Contents-amd64 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut first = vec![0u8; 64 * 1024];
    s.read_exact(&mut first).unwrap();
    let cwd = rustix::fs::CWD;
    rustix::fs::renameat_with(
        cwd,
        t.path("dists/stable"),
        cwd,
        t.path(".debsync/staging/stable"),
        rustix::fs::RenameFlags::EXCHANGE,
    )
    .unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    let r = crate::support::Resp::parse(&[first, rest].concat());
    assert_eq!(r.body.len(), len);
    assert!(
        r.body.iter().all(|&b| b == b'A'),
        "response mixed generations"
    );
    let r = get(
        p.addr,
        "/dists/stable/main/Contents-amd64",
        &["Range: bytes=0-3"],
    );
    assert_eq!(r.body, b"BBBB");
}

#[test]
fn small_files_held_in_memory_follow_every_change_of_the_tree() {
    // Small files are served from memory after the first request (serve/handles.rs). Every way
    // a path can come to name other bytes must show on the very next request.
    use std::os::unix::fs::symlink;
    let t = crate::support::Tree::new();
    t.file("dists/bookworm/InRelease", b"generation one\n");
    t.file(".debsync/staging/bookworm/InRelease", b"generation two\n");
    t.file("dists/trixie/InRelease", b"trixie\n");
    t.file(".debsync/state.json", b"{\"private\": true}\n");
    symlink("bookworm", t.path("dists/stable")).unwrap();
    // Only settled files (modified over a second ago) are held: backdate them.
    for f in [
        "dists/bookworm/InRelease",
        ".debsync/staging/bookworm/InRelease",
        "dists/trixie/InRelease",
    ] {
        let file = std::fs::File::options()
            .write(true)
            .open(t.path(f))
            .unwrap();
        let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        file.set_modified(hour_ago).unwrap();
    }
    let p = Proc::spawn(&["--root", t.dir.path().to_str().unwrap()]);
    let body = |path: &str| {
        let r = get(p.addr, path, &[]);
        (r.status, String::from_utf8_lossy(&r.body).into_owned())
    };
    let ok = |s: &str| (200, s.to_string());
    for _ in 0..3 {
        assert_eq!(body("/dists/bookworm/InRelease"), ok("generation one\n"));
        assert_eq!(body("/dists/stable/InRelease"), ok("generation one\n"));
    }
    // The sync's swap: same path, same size, other file.
    let cwd = rustix::fs::CWD;
    rustix::fs::renameat_with(
        cwd,
        t.path("dists/bookworm"),
        cwd,
        t.path(".debsync/staging/bookworm"),
        rustix::fs::RenameFlags::EXCHANGE,
    )
    .unwrap();
    assert_eq!(body("/dists/bookworm/InRelease"), ok("generation two\n"));
    assert_eq!(body("/dists/stable/InRelease"), ok("generation two\n"));
    // A Range of a held file is cut from the held bytes.
    let r = get(p.addr, "/dists/bookworm/InRelease", &["Range: bytes=0-9"]);
    assert_eq!((r.status, r.body.as_slice()), (206, &b"generation"[..]));
    // An alias switched to another suite.
    std::fs::remove_file(t.path("dists/stable")).unwrap();
    symlink("trixie", t.path("dists/stable")).unwrap();
    assert_eq!(body("/dists/stable/InRelease"), ok("trixie\n"));
    // Rewritten in place with the same length: same inode, only the times differ.
    std::fs::write(t.path("dists/trixie/InRelease"), b"TRIXIE\n").unwrap();
    assert_eq!(body("/dists/stable/InRelease"), ok("TRIXIE\n"));
    // Replaced by a link to a private file: refused, not served from memory.
    std::fs::remove_file(t.path("dists/trixie/InRelease")).unwrap();
    symlink(
        "../../.debsync/state.json",
        t.path("dists/trixie/InRelease"),
    )
    .unwrap();
    assert_eq!(body("/dists/stable/InRelease").0, 404);
    // Deleted.
    std::fs::remove_file(t.path("dists/bookworm/InRelease")).unwrap();
    assert_eq!(body("/dists/bookworm/InRelease").0, 404);
}
