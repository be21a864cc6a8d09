//! What people and monitoring see of a synced mirror: the front page and the mirror's page
//! (cards with the apt lines), listing order (`?sort=`), and `/metrics` after a real sync.

use std::path::Path;

use crate::common::{self, Fixture, MIRROR_NAME, TestArchive};
use crate::support::{Proc, Tree, get};

/// A mirror synced by the real `debsync sync` from the kit's signed upstream.
fn synced() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let mut archive = TestArchive::new(tmp.path().join("upstream"));
    archive.add_package("hello", "1.0-1", "amd64", "main", &common::noise("h", 4096));
    archive.add_package("world", "2.0", "amd64", "main", &common::noise("w", 9000));
    let f = Fixture::from_archive(tmp, archive, "");
    f.sync_ok();
    f
}

/// The value of one sample in a metrics page.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Every per-mirror figure `/metrics` reports is the one the sync recorded, read again on each
/// scrape (a second, no-op sync shows at once).
#[test]
fn metrics_after_a_real_sync() {
    let f = synced();
    let p = Proc::spawn(&["--config", &f.config_str()]);
    let state = f.state();
    let run = &state["last_run"];
    let m = get(p.addr, "/metrics", &[]).text();
    let per = |name: &str| sample(&m, &format!("{name}{{mirror=\"{MIRROR_NAME}\"}}"));
    assert!(run["fetched_files"].as_u64().unwrap() >= 2, "{state}");
    assert_eq!(
        per("debsync_mirror_last_sync_fetched_files"),
        run["fetched_files"].as_f64().unwrap()
    );
    assert_eq!(
        per("debsync_mirror_last_sync_fetched_bytes"),
        run["bytes_received"].as_f64().unwrap()
    );
    assert!(per("debsync_mirror_last_sync_fetched_bytes") >= 13_096.0);
    assert_eq!(
        per("debsync_mirror_last_sync_duration_seconds"),
        run["duration_ms"].as_f64().unwrap() / 1000.0
    );
    assert_eq!(per("debsync_mirror_last_sync_deleted_files"), 0.0);
    assert_eq!(per("debsync_mirror_sync_failures_total"), 0.0);
    assert_eq!(
        per("debsync_mirror_last_success_timestamp_seconds"),
        state["last_success"].as_f64().unwrap()
    );
    let date = state["suites"]["stable"]["date"].as_f64().unwrap();
    let suite = format!("{{mirror=\"{MIRROR_NAME}\",suite=\"stable\"}}");
    assert_eq!(
        sample(
            &m,
            &format!("debsync_mirror_release_timestamp_seconds{suite}")
        ),
        date
    );
    let age = sample(&m, &format!("debsync_mirror_release_age_seconds{suite}"));
    assert!((age - (now() - date)).abs() < 5.0, "age {age}");
    assert!(m.contains("debsync_mirror_last_result{mirror=\"debian\",result=\"ok\"} 1\n"));
    assert!(m.contains("debsync_build_info{version=\""));
    assert_eq!(get(p.addr, "/healthz", &[]).status, 200);

    // Nothing changed upstream: the next run fetches nothing, and the scrape says so.
    f.sync_ok();
    let m = get(p.addr, "/metrics", &[]).text();
    let per = |name: &str| sample(&m, &format!("{name}{{mirror=\"{MIRROR_NAME}\"}}"));
    assert_eq!(per("debsync_mirror_last_sync_fetched_files"), 0.0);
    assert_eq!(per("debsync_mirror_last_sync_fetched_bytes"), 0.0);
}

/// `/` has a card per mirror with the apt lines (one-line and deb822) naming the keyring the
/// mirror is checked with; `/<mirror>/` has the same card above its listing.
#[test]
fn front_page_and_mirror_page_show_how_to_use_the_mirror() {
    let f = synced();
    let p = Proc::spawn(&["--config", &f.config_str()]);
    let keyring = f.keyring.display().to_string();
    let r = get(p.addr, "/", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let html = r.text();
    for needle in [
        format!("deb [signed-by={keyring}] http://test/debian/ stable main"),
        format!("Signed-By: {keyring}"),
        "Types: deb\nURIs: http://test/debian/\nSuites: stable\nComponents: main\n".to_string(),
        format!("<code>{}</code>", f.upstream.base_url()),
        "<a href=\"/debian/\">debian/</a>".to_string(),
        format!("<a href=\"/debian/project/trace/{}\">", common::hostname()),
        "<dt>Architectures</dt><dd><code>amd64</code></dd>".to_string(),
        " ago)".to_string(),
    ] {
        assert!(html.contains(&needle), "missing {needle:?} in\n{html}");
    }
    // Scripts keep the plain JSON listing of mirrors.
    let j = get(p.addr, "/", &["Accept: application/json"]).text();
    let v: serde_json::Value = serde_json::from_str(&j).unwrap();
    assert_eq!(v["entries"][0]["name"], "debian");

    let html = get(p.addr, "/debian/", &[]).text();
    let card = html.find("Signed-By: ").expect("card on the mirror page");
    let table = html.find("<table>").expect("listing on the mirror page");
    assert!(card < table);
    for entry in ["href=\"dists/\"", "href=\"pool/\"", "href=\"project/\""] {
        assert!(html.contains(entry), "{entry} in\n{html}");
    }
    // Deeper directories are plain listings.
    assert!(
        !get(p.addr, "/debian/pool/", &[])
            .text()
            .contains("Signed-By")
    );
}

/// Credentials in an upstream URL are never shown; a mirror never synced says so.
#[test]
fn front_page_redacts_upstream_credentials() {
    let t = Tree::new();
    let keyring = t.file("keys/vendor.gpg", b"x");
    t.dir("srv/private");
    let cfg = t.file(
        "mirror.toml",
        format!(
            "root = \"srv\"\n[[mirror]]\nname = \"private\"\n\
             upstream = \"https://user:s3cret@vendor.example/apt\"\nsuites = [\"jammy\"]\n\
             components = [\"main\", \"restricted\"]\narchitectures = [\"amd64\", \"arm64\"]\n\
             keyring = \"{}\"\n",
            keyring.display()
        )
        .as_bytes(),
    );
    let p = Proc::spawn(&["--config", cfg.to_str().unwrap()]);
    for path in ["/", "/private/"] {
        let html = get(p.addr, path, &[]).text();
        assert!(
            !html.contains("s3cret") && !html.contains("user:"),
            "{html}"
        );
        assert!(html.contains("https://***@vendor.example/apt/"), "{html}");
        assert!(
            html.contains(" http://test/private/ jammy main restricted"),
            "{html}"
        );
        assert!(html.contains("<span class=\"bad\">never</span>"), "{html}");
    }
}

fn names_in(html: &str) -> Vec<String> {
    html.split("<td class=\"name\"><a href=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .filter(|h| *h != "../")
        .map(str::to_string)
        .collect()
}

fn write_sized(dir: &Path, name: &str, len: usize, mtime: i64) {
    let path = dir.join(name);
    std::fs::write(&path, vec![b'x'; len]).unwrap();
    let f = std::fs::File::options().write(true).open(&path).unwrap();
    f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime as u64))
        .unwrap();
}

/// Names sort in version order; `?sort=size|date&order=asc|desc` reorders files (directories
/// stay first); JSON follows the same order.
#[test]
fn listings_sort_by_version_size_and_date() {
    let t = Tree::new();
    let dir = t.dir("pool/main/h/hello");
    write_sized(&dir, "hello_10.0_amd64.deb", 100, 3_000);
    write_sized(&dir, "hello_9.0_amd64.deb", 300, 1_000);
    write_sized(&dir, "hello_1.0_amd64.deb", 200, 2_000);
    t.dir("pool/main/h/hello/zz-subdir");
    let p = Proc::spawn(&["--root", t.dir.path().to_str().unwrap()]);
    let order = |q: &str| names_in(&get(p.addr, &format!("/pool/main/h/hello/{q}"), &[]).text());
    let deb = |v: &str| format!("hello_{v}_amd64.deb");
    let (one, nine, ten) = (deb("1.0"), deb("9.0"), deb("10.0"));
    let (one, nine, ten, sub) = (one.as_str(), nine.as_str(), ten.as_str(), "zz-subdir/");
    assert_eq!(order(""), [sub, one, nine, ten]);
    assert_eq!(order("?sort=name&order=desc"), [sub, ten, nine, one]);
    assert_eq!(order("?sort=size"), [sub, ten, one, nine]);
    assert_eq!(order("?sort=size&order=desc"), [sub, nine, one, ten]);
    assert_eq!(order("?sort=date&order=desc"), [sub, ten, one, nine]);
    // The headers link to the other orders.
    let html = get(p.addr, "/pool/main/h/hello/?sort=size", &[]).text();
    assert!(
        html.contains("<a href=\"?sort=size&amp;order=desc\">Size</a> &#9650;"),
        "{html}"
    );
    assert!(html.contains("<a href=\"?sort=date&amp;order=desc\">Modified (UTC)</a>"));
    let j = get(
        p.addr,
        "/pool/main/h/hello/?sort=size&order=desc",
        &["Accept: application/json"],
    )
    .text();
    let v: serde_json::Value = serde_json::from_str(&j).unwrap();
    let names: Vec<&str> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["zz-subdir", nine, one, ten]);
}
