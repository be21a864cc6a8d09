//! One test per safety rule, over raw TCP so no client normalises the path first.

use crate::archive;
use crate::support::{Proc, Resp, Tree, get, raw, request};

fn raw_get(addr: std::net::SocketAddr, target: &[u8]) -> Resp {
    let mut req = b"GET ".to_vec();
    req.extend_from_slice(target);
    req.extend_from_slice(b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let out = raw(addr, &req);
    if out.is_empty() {
        // hyper closed without answering (an unparseable request line): also a refusal.
        return Resp {
            status: 0,
            headers: vec![],
            body: vec![],
        };
    }
    Resp::parse(&out)
}

/// A tree with a secret beside it, so a traversal that worked would show it.
fn tree_with_secret_outside() -> (Tree, std::path::PathBuf) {
    let outer = Tree::new();
    outer.file("secret.txt", b"TOP SECRET\n");
    let tree = outer.dir("mirror");
    std::fs::create_dir_all(tree.join("pool/main")).unwrap();
    std::fs::write(tree.join("pool/main/ok.deb"), b"fine").unwrap();
    (outer, tree)
}

#[test]
fn path_traversal_is_refused() {
    let (_outer, tree) = tree_with_secret_outside();
    let p = Proc::spawn(&["--root", tree.to_str().unwrap()]);
    let targets: &[&[u8]] = &[
        b"/../secret.txt",
        b"/pool/../../secret.txt",
        b"/..%2fsecret.txt",
        b"/..%2f..%2fetc/passwd",
        b"/%2e%2e/secret.txt",
        b"/%2E%2E/%2e%2e/etc/passwd",
        b"/pool/%2e%2e%2f%2e%2e%2fsecret.txt",
        b"/.%2e/secret.txt",
        b"/pool/..\\..\\secret.txt",
        b"/pool%5c..%5c..%5csecret.txt",
        b"/pool/main/ok.deb%00.txt",
        b"/pool/%00",
        b"/pool/%zz",
        b"/pool/%c0%ae%c0%ae/secret.txt",
        b"../secret.txt",
        b"http://evil/../secret.txt",
    ];
    for target in targets {
        let r = raw_get(p.addr, target);
        let shown = String::from_utf8_lossy(target);
        assert!(
            matches!(r.status, 0 | 400 | 404),
            "{shown}: status {} body {:?}",
            r.status,
            r.text()
        );
        assert!(
            !r.text().contains("SECRET") && !r.text().contains("root:"),
            "{shown} leaked"
        );
    }
    // The control: the same server does serve the tree, and a `.` segment (what apt sends
    // for a flat repository, `deb URL ./`) is no step at all.
    assert_eq!(get(p.addr, "/pool/main/ok.deb", &[]).text(), "fine");
    assert_eq!(raw_get(p.addr, b"/./pool/./main/ok.deb").text(), "fine");
}

#[test]
fn symlinks_leaving_the_tree_are_refused() {
    let (outer, tree) = tree_with_secret_outside();
    std::os::unix::fs::symlink("../../secret.txt", tree.join("pool/rel-escape")).unwrap();
    std::os::unix::fs::symlink(outer.path("secret.txt"), tree.join("pool/abs-escape")).unwrap();
    std::os::unix::fs::symlink("/etc", tree.join("etc")).unwrap();
    std::os::unix::fs::symlink("main/ok.deb", tree.join("pool/inside")).unwrap();
    std::os::unix::fs::symlink("pool", tree.join("stable")).unwrap();
    let p = Proc::spawn(&["--root", tree.to_str().unwrap()]);
    for path in [
        "/pool/rel-escape",
        "/pool/abs-escape",
        "/etc/passwd",
        "/etc/",
    ] {
        let r = get(p.addr, path, &[]);
        assert_eq!(r.status, 403, "{path}");
        assert!(
            !r.text().contains("SECRET") && !r.text().contains("root:"),
            "{path} leaked"
        );
    }
    // Links that stay inside work, as files and as directories.
    assert_eq!(get(p.addr, "/pool/inside", &[]).text(), "fine");
    assert_eq!(get(p.addr, "/stable/main/ok.deb", &[]).text(), "fine");
    // Listings show neither the escaping links' targets nor the links.
    let html = get(p.addr, "/pool/", &[]).text();
    assert!(
        html.contains("inside") && !html.contains("escape"),
        "{html}"
    );
    assert!(!get(p.addr, "/", &[]).text().contains("href=\"etc/\""));
}

#[test]
fn private_files_are_never_served_nor_listed() {
    let t = archive();
    let p = Proc::spawn(&["--root", t.dir.path().to_str().unwrap()]);
    for path in [
        "/.debsync/state.json",
        "/.debsync/",
        "/.debsync/staging/dists/stable/Release",
        "/%2edebsync/state.json",
        "/pool/main/h/hello/.hello_2.11-1_amd64.deb.debsync-tmp",
    ] {
        let r = get(p.addr, path, &[]);
        assert_eq!(r.status, 404, "{path}");
        assert!(!r.text().contains("next generation"));
    }
    // The sync lock is ftpsync's flag: downstream mirrors look for it, so it is served.
    assert_eq!(
        get(p.addr, "/Archive-Update-in-Progress-mirrorhost", &[]).status,
        200
    );
}

#[test]
fn only_get_and_head_are_allowed() {
    let t = archive();
    let p = Proc::spawn(&["--root", t.dir.path().to_str().unwrap()]);
    for method in [
        "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND",
    ] {
        for path in ["/dists/stable/Release", "/", "/healthz", "/metrics"] {
            let r = request(p.addr, method, path, &["Content-Length: 0"]);
            assert_eq!(r.status, 405, "{method} {path}");
            assert_eq!(r.header("allow"), Some("GET, HEAD"), "{method} {path}");
        }
    }
    assert_eq!(request(p.addr, "HEAD", "/", &[]).status, 200);
}

#[test]
fn oversized_requests_are_refused() {
    let t = archive();
    let p = Proc::spawn(&["--root", t.dir.path().to_str().unwrap()]);
    // Request target over 4 KiB: 414.
    let long = format!("/pool/{}", "a".repeat(5000));
    assert_eq!(get(p.addr, &long, &[]).status, 414);
    // Headers over 16 KiB in total: 431 from the parser.
    let big = format!("X-Big: {}", "b".repeat(20_000));
    assert_eq!(get(p.addr, "/", &[&big]).status, 431);
    // Too many header lines: 431.
    let many: Vec<String> = (0..100).map(|i| format!("X-H{i}: v")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    assert_eq!(get(p.addr, "/", &many).status, 431);
    // A GET with a body: 413.
    let out = raw(
        p.addr,
        b"GET /dists/stable/Release HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello",
    );
    assert_eq!(Resp::parse(&out).status, 413);
}

/// Issue 12, item 11: a symlink is not a way around the private-name rule. Links to private
/// files, into private directories and through chains of links are neither served nor
/// listed (a link to the lock file is: the lock is public); the links a sync itself makes (suite aliases, `updates -> .`,
/// the installer's `current`) are both.
#[test]
fn symlinks_to_private_names_are_neither_served_nor_listed() {
    use std::os::unix::fs::symlink;
    let t = archive();
    let root = t.dir.path();
    let hello = "pool/main/h/hello";
    for (link, target) in [
        ("pool/state.json", "../.debsync/state.json"),
        ("pool/private-dir", "../.debsync"),
        ("pool/staging", "../.debsync/staging/dists"),
        ("pool/lock", "../Archive-Update-in-Progress-mirrorhost"),
        ("pool/chain", "chain2"),
        ("pool/chain2", "../.debsync/state.json"),
        ("dists/abs", &format!("{}/.debsync", root.display())),
        (
            &format!("{hello}/hello_2.11-1_amd64.deb"),
            ".hello_2.11-1_amd64.deb.debsync-tmp",
        ),
    ] {
        symlink(target, root.join(link)).unwrap();
    }
    // The links a sync makes.
    std::fs::rename(root.join("dists/stable"), root.join("dists/bookworm")).unwrap();
    symlink("bookworm", root.join("dists/stable")).unwrap();
    symlink(".", root.join("dists/bookworm/updates")).unwrap();
    t.file(
        "dists/bookworm/main/installer-amd64/20230607/images/MANIFEST",
        b"netboot\n",
    );
    symlink(
        "20230607",
        root.join("dists/bookworm/main/installer-amd64/current"),
    )
    .unwrap();
    let p = Proc::spawn(&["--root", root.to_str().unwrap()]);
    for (path, status) in [
        ("/pool/state.json", 404),
        ("/pool/private-dir/state.json", 404),
        ("/pool/private-dir/", 404),
        ("/pool/private-dir", 404),
        ("/pool/staging/stable/Release", 404),
        ("/pool/staging/", 404),
        ("/pool/lock", 200),
        ("/pool/chain", 404),
        // Absolute links are refused before their target is looked at.
        ("/dists/abs/state.json", 403),
        ("/pool/main/h/hello/hello_2.11-1_amd64.deb", 404),
    ] {
        let r = get(p.addr, path, &[]);
        assert_eq!(r.status, status, "{path}: {:?}", r.text());
        let body = r.text();
        assert!(
            !body.contains("last_success") && !body.contains("next generation"),
            "{path} leaked {body:?}"
        );
    }
    for (dir, hidden) in [
        (
            "/pool/",
            &["state.json", "private-dir", "staging", "chain"][..],
        ),
        ("/dists/", &["abs"][..]),
        ("/pool/main/h/hello/", &["hello_2.11-1"][..]),
    ] {
        let html = get(p.addr, dir, &[]).text();
        let json = get(p.addr, dir, &["Accept: application/json"]).text();
        for name in hidden {
            assert!(
                !html.contains(&format!("href=\"{name}")),
                "{dir} lists {name}: {html}"
            );
            assert!(!json.contains(name), "{dir} lists {name} (JSON): {json}");
        }
    }
    // The sync's own links work and are listed.
    for path in [
        "/dists/stable/Release",
        "/dists/bookworm/updates/Release",
        "/dists/stable/updates/updates/main/binary-amd64/Packages",
        "/dists/stable/main/installer-amd64/current/images/MANIFEST",
    ] {
        assert_eq!(get(p.addr, path, &[]).status, 200, "{path}");
    }
    assert!(
        get(p.addr, "/dists/", &[])
            .text()
            .contains("href=\"stable/\"")
    );
    assert!(
        get(p.addr, "/dists/stable/", &[])
            .text()
            .contains("href=\"updates/\"")
    );
    assert!(
        get(p.addr, "/dists/stable/main/installer-amd64/", &[])
            .text()
            .contains("href=\"current/\"")
    );
}

/// Issue 12, item 13: RFC 9112 §3.2 — an HTTP/1.1 request without `Host`, or with two, or
/// with a value that is no `host[:port]`, is a `400`. HTTP/1.0 needs no `Host`.
#[test]
fn host_header_is_required_in_http_1_1() {
    let t = archive();
    let p = Proc::spawn(&["--root", t.dir.path().to_str().unwrap()]);
    let status = |req: &str| Resp::parse(&raw(p.addr, req.as_bytes())).status;
    let close = "Connection: close\r\n";
    for (req, want) in [
        (
            format!("GET /dists/stable/Release HTTP/1.1\r\n{close}\r\n"),
            400,
        ),
        (format!("GET / HTTP/1.1\r\n{close}\r\n"), 400),
        (format!("GET /healthz HTTP/1.1\r\n{close}\r\n"), 400),
        (
            format!("HEAD /dists/stable/Release HTTP/1.1\r\n{close}\r\n"),
            400,
        ),
        (
            format!("GET /dists/stable/Release HTTP/1.1\r\nHost: a\r\nHost: b\r\n{close}\r\n"),
            400,
        ),
        (
            format!("GET /dists/stable/Release HTTP/1.1\r\nHost: a b\r\n{close}\r\n"),
            400,
        ),
        (
            format!("GET /dists/stable/Release HTTP/1.1\r\nHost: evil/x\r\n{close}\r\n"),
            400,
        ),
        // The controls.
        (
            "GET /dists/stable/Release HTTP/1.0\r\n\r\n".to_string(),
            200,
        ),
        (
            format!(
                "GET /dists/stable/Release HTTP/1.1\r\nHost: mirror.example:8080\r\n{close}\r\n"
            ),
            200,
        ),
        (
            format!("GET /dists/stable/Release HTTP/1.1\r\nHost: [::1]:80\r\n{close}\r\n"),
            200,
        ),
    ] {
        assert_eq!(status(&req), want, "{req:?}");
    }
}
