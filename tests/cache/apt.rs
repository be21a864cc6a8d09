//! The real apt-get through the cache.

use crate::kit::*;

/// The `.deb`s `apt-get install --download-only` left in the client's archive cache.
fn downloaded(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("cache/archives"))
        .unwrap()
        .filter_map(|e| {
            let name = e.ok()?.file_name().to_string_lossy().into_owned();
            name.ends_with(".deb").then_some(name)
        })
        .collect();
    names.sort();
    names
}

#[test]
fn apt_update_and_install_through_the_cache() {
    let edge = Edge::start(|_| {}, "");
    let first = edge.apt("client1");
    first.update().assert_clean();
    first
        .run(&["install", "--download-only", "-y", "tool"])
        .assert_clean();
    let dir1 = edge.tmp.path().join("client1");
    assert_eq!(
        downloaded(&dir1),
        ["hello_1.0-1_amd64.deb", "tool_0.1_amd64.deb"],
        "tool and its dependency"
    );
    let got = std::fs::read(dir1.join("cache/archives/hello_1.0-1_amd64.deb")).unwrap();
    assert_eq!(got, edge.archive.read(HELLO));
    // What the cache holds: the verified InRelease, indices by hash, the pool files.
    let stored = edge.stored();
    assert!(stored.contains_key("dists/stable/InRelease"), "{stored:#?}");
    assert!(stored.contains_key(HELLO), "{stored:#?}");
    assert!(
        stored
            .keys()
            .any(|k| k.contains("binary-amd64/by-hash/SHA256/")),
        "{stored:#?}"
    );
    assert!(
        !stored.contains_key("dists/stable/main/binary-amd64/Packages.xz"),
        "indices are stored only by hash"
    );
    assert!(edge.temp_files().is_empty(), "{:?}", edge.temp_files());

    // A second client within the TTL: everything from the cache, nothing upstream.
    let before = edge.up().requests().len();
    let second = edge.apt("client2");
    second.update().assert_clean();
    second
        .run(&["install", "--download-only", "-y", "tool"])
        .assert_clean();
    assert_eq!(
        downloaded(&edge.tmp.path().join("client2")),
        downloaded(&dir1)
    );
    assert_eq!(
        edge.up().requests().len(),
        before,
        "upstream asked again: {:#?}",
        &edge.up().requests()[before..]
    );
    assert_eq!(edge.upstream_hits("/hello_1.0-1_amd64.deb"), 1);
    assert!(edge.requests("hit") >= 4.0, "{}", edge.requests("hit"));
}

#[test]
fn a_restarted_server_serves_what_it_cached() {
    let mut edge = Edge::start(|_| {}, "");
    let apt = edge.apt("client");
    assert_eq!(apt.fetch_package("hello"), edge.archive.read(HELLO));
    edge.restart();
    edge.stop_upstream();
    // The pool file is found on disk; the stored InRelease is verified again at start.
    let got = edge.get(HELLO, &[]);
    assert_eq!((got.status, got.cache()), (200, "HIT"));
    assert_eq!(got.body, edge.archive.read(HELLO));
}

#[test]
fn a_mirror_and_a_cache_under_one_server_and_the_daemon() {
    let edge = Edge::start(|_| {}, "");
    // The same config with a full mirror of the same upstream beside the cache.
    let mirror = format!(
        "[[mirror]]\nname = \"debian\"\nupstream = \"{}\"\nsuites = [\"stable\"]\n\
         components = [\"main\"]\narchitectures = [\"amd64\"]\nkeyring = {:?}\n",
        edge.up().base_url(),
        edge.keyring
    );
    let mut text = std::fs::read_to_string(&edge.config).unwrap();
    text.push_str(&mirror);
    std::fs::write(&edge.config, text).unwrap();
    crate::common::assert_success(&crate::common::run_sync(&edge.config));
    let server = serve(&edge.config);
    for (prefix, client) in [("debian", "via-mirror"), (CACHE, "via-cache")] {
        let apt = crate::common::Apt::new(
            &edge.tmp.path().join(client),
            &format!("{}{prefix}/", server.url),
            "stable",
            &["main"],
            &edge.keyring,
        );
        assert_eq!(
            apt.fetch_package("hello"),
            edge.archive.read(HELLO),
            "{prefix}"
        );
    }
    assert!(edge.tree().join(HELLO).is_file());
    // `debsync daemon` serves the cache too.
    let daemon = daemon(&edge.config);
    let url = format!("{}{CACHE}/{HELLO}", daemon.url);
    let got = rt().block_on(async { fetch(&client(), &url, &[]).await });
    assert_eq!((got.status, got.cache()), (200, "HIT"));
}
