//! The mirror as its users see it: the real apt against `debsync serve`, and `debsync verify`.

use crate::common::*;
use crate::support::*;

fn serve(f: &Fixture) -> DebsyncServer {
    spawn_serve(&["--config", &f.config_str(), "--listen", "127.0.0.1:0"]).unwrap()
}

#[test]
fn apt_updates_and_downloads_from_the_served_mirror() {
    let f = Fixture::new(|a| a.suite("stable").acquire_by_hash = true, "");
    f.sync_ok();
    let server = serve(&f);
    let apt = Apt::new(
        &f.tmp.path().join("apt"),
        &format!("{}debian/", server.url),
        "stable",
        &["main"],
        &f.keyring,
    );
    assert_eq!(apt.fetch_package("hello"), f.archive.read(HELLO));
    let (out, file) = apt.download("data");
    out.assert_clean();
    assert_eq!(std::fs::read(file.unwrap()).unwrap(), f.archive.read(DATA));
    let (out, file) = apt.download("libfoo1");
    out.assert_clean();
    assert_eq!(
        std::fs::read(file.unwrap()).unwrap(),
        f.archive.read(LIBFOO)
    );
}

#[test]
fn apt_gets_sources_from_the_served_mirror() {
    let f = Fixture::new(
        |a| {
            a.suite("stable")
                .add_source("hello", "1.0-1", "main", &noise("hello-src", DEB_LEN));
        },
        "[[mirror]]\nsources = true\n",
    );
    f.sync_ok();
    for p in [
        "pool/main/h/hello/hello_1.0-1.dsc",
        "pool/main/h/hello/hello_1.0.orig.tar.gz",
    ] {
        assert_eq!(
            std::fs::read(f.tree().join(p)).unwrap(),
            f.archive.read(p),
            "{p}"
        );
    }
    let server = serve(&f);
    let url = format!("{}debian/", server.url);
    let k = f.keyring.display();
    let apt = Apt::with_sources_line(
        &f.tmp.path().join("apt"),
        &format!(
            "deb [signed-by={k}] {url} stable main\ndeb-src [signed-by={k}] {url} stable main\n"
        ),
    );
    apt.update().assert_clean();
    apt.run(&["source", "--download-only", "hello"])
        .assert_clean();
    assert_eq!(
        std::fs::read(apt.download_dir().join("hello_1.0.orig.tar.gz")).unwrap(),
        f.archive.read("pool/main/h/hello/hello_1.0.orig.tar.gz")
    );
}

#[test]
fn verify_passes_after_sync_and_names_a_corrupted_pool_file() {
    let f = Fixture::new(|_| {}, "");
    f.sync_ok();
    let config = f.config_str();
    let out = run_debsync(&["verify", "--config", &config]);
    assert_success(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("0 problem(s)"), "{stdout}");

    let path = f.tree().join(LIBFOO);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let out = run_debsync(&["verify", "--config", &config]);
    let stderr = assert_failure(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let problem = stdout
        .lines()
        .find(|l| l.contains(LIBFOO))
        .unwrap_or_else(|| panic!("no line names {LIBFOO}:\n{stdout}\n{stderr}"));
    assert!(problem.contains("SHA256"), "{problem}");
    assert_eq!(
        stdout.lines().filter(|l| l.contains("pool/")).count(),
        1,
        "only the corrupted file is reported: {stdout}"
    );

    // A deleted pool file is named too.
    std::fs::remove_file(f.tree().join(HELLO)).unwrap();
    let out = run_debsync(&["verify", "--config", &config]);
    assert_failure(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.lines().any(|l| l.contains(HELLO)), "{stdout}");
}

/// `sync --full` repairs what `verify` reports: a corrupted and a deleted pool file are
/// fetched again although upstream did not change, and a plain sync (which trusts the live
/// generation) would not have touched them.
#[test]
fn full_sync_repairs_what_verify_reports() {
    let f = Fixture::new(|_| {}, "");
    f.sync_ok();
    let config = f.config_str();
    let path = f.tree().join(LIBFOO);
    let good = std::fs::read(&path).unwrap();
    let mut bad = good.clone();
    bad[100] ^= 1;
    std::fs::write(&path, &bad).unwrap();
    std::fs::remove_file(f.tree().join(HELLO)).unwrap();

    // The ordinary run is a no-op: it trusts what it verified before.
    assert_success(&run_debsync(&["sync", "--config", &config]));
    assert_failure(&run_debsync(&["verify", "--config", &config]));

    let out = run_debsync(&["sync", "--config", &config, "--full"]);
    assert_success(&out);
    assert_eq!(std::fs::read(&path).unwrap(), good);
    assert!(f.tree().join(HELLO).is_file());
    let out = run_debsync(&["verify", "--config", &config]);
    assert_success(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("0 problem(s)"), "{stdout}");
}
