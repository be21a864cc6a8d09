//! Issue 14, the mirror network: pushes (`POST /-/sync/<mirror>`) into `debsync daemon`, and
//! three debsync instances on 127.0.0.1 (upstream archive → hub daemon → leaf daemon). The
//! daemons run on `@yearly` schedules after their first run, so every later sync here is
//! one a push started. Upstream is held at known points with the kit's `Fault::Hold`.

use super::*;

const OK_RUNS: &str = "debsync_mirror_sync_runs_total{mirror=\"debian\",result=\"ok\"}";
const NEXT_SYNC: &str = "debsync_mirror_next_sync_timestamp_seconds{mirror=\"debian\"}";

/// A daemon that syncs once at start, then only when pushed; `[push]` with `token_file`, and
/// `extra` (e.g. a `notify` line) in its `[[mirror]]`.
fn pushed_toml(token_file: &Path, extra_mirror: &str) -> String {
    format!(
        "[daemon]\njitter_secs = 0\nretry_min_secs = 1\nretry_max_secs = 1\n\
         [sync]\nupstream_update_wait_secs = 1\nupstream_update_retries = 30\n\
         [push]\ntoken_file = \"{}\"\n\
         [[mirror]]\nschedule = \"@yearly\"\n{extra_mirror}",
        token_file.display()
    )
}

fn token(dir: &Path, name: &str, value: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("{value}\n")).unwrap();
    path
}

/// `POST path` with an optional `Authorization` value: (status, body).
fn post(addr: &str, path: &str, auth: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = auth.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: test\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad response {text:?}"));
    (status, text)
}

/// Waits until the daemon's loop for `debian` is idle with `ok` successful runs.
fn wait_idle_after(d: &Daemon, ok: f64) {
    wait_for(
        &format!("{ok} ok run(s), then idle"),
        Duration::from_secs(60),
        d,
        || {
            let m = d.metrics();
            (sample(&m, OK_RUNS) == Some(ok) && sample(&m, NEXT_SYNC).is_some()).then_some(())
        },
    );
}

/// Waits until `d` serves `inrelease` for the `debian` mirror.
fn wait_serves(d: &Daemon, inrelease: &[u8]) {
    wait_for("the expected InRelease", Duration::from_secs(60), d, || {
        (d.get("/debian/dists/stable/InRelease") == (200, inrelease.to_vec())).then_some(())
    });
}

/// The push endpoint's answers (401, 403, 404, 202, 409), pushes during a run merged into one
/// more run, the token never logged, and pushes off (404) without a token or in `serve`.
#[test]
fn pushes_start_a_sync_or_queue_exactly_one_more() {
    let mut s = Setup::new();
    let secret = "push-token-7f3a9c";
    let token_file = token(s.tmp.path(), "push-token", secret);
    let config = write_config(
        s.tmp.path(),
        &s.upstream.base_url(),
        &s.keyring,
        &pushed_toml(&token_file, ""),
    );
    let mut d = Daemon::spawn(&config);
    wait_idle_after(&d, 1.0);
    let bearer = format!("Bearer {secret}");

    assert_eq!(post(&d.addr, "/-/sync/debian", None).0, 401);
    let (status, text) = post(&d.addr, "/-/sync/debian", Some("Bearer wrong-token"));
    assert_eq!(status, 403, "{text}");
    assert_eq!(post(&d.addr, "/-/sync/debian", Some("Basic eDp5")).0, 401);
    assert_eq!(post(&d.addr, "/-/sync/nosuch", Some(&bearer)).0, 404);
    assert_eq!(
        post(&d.addr, "/debian/", Some(&bearer)).0,
        405,
        "POST only under /-/"
    );
    assert_eq!(d.get("/-/sync/debian").0, 405);

    // Upstream changes; the push starts a run, held at the new pool file.
    let new = "pool/main/n/newpkg/newpkg_1.0_amd64.deb";
    s.archive
        .add_package("newpkg", "1.0", "amd64", "main", &noise("newpkg", 4096));
    s.archive.build();
    s.upstream
        .add_fault(FaultRule::suffix(new, Fault::Hold("newpkg".into())));
    assert_eq!(post(&d.addr, "/-/sync/debian", Some(&bearer)).0, 202);
    wait_for("the run at newpkg", Duration::from_secs(60), &d, || {
        (s.upstream.held("newpkg") == 1).then_some(())
    });
    for _ in 0..3 {
        let (status, text) = post(&d.addr, "/-/sync/debian", Some(&bearer));
        assert_eq!(status, 409, "{text}");
    }
    s.upstream.release("newpkg");
    // The pushed run, then exactly one more for the three pushes during it.
    wait_idle_after(&d, 3.0);
    assert_eq!(sample(&d.metrics(), OK_RUNS), Some(3.0));
    assert_eq!(
        d.get(&format!("/debian/{new}")),
        (200, noise("newpkg", 4096))
    );
    assert!(!d.log().contains(secret), "the token is never logged");
    d.signal(libc::SIGTERM);
    assert!(d.wait_exit(Duration::from_secs(10)).success());

    // Without a token, pushes are off; `debsync serve` has no scheduler to push.
    let config = write_config(
        s.tmp.path(),
        &s.upstream.base_url(),
        &s.keyring,
        "[daemon]\njitter_secs = 0\n[[mirror]]\nschedule = \"@yearly\"\n",
    );
    let off = Daemon::spawn(&config);
    assert_eq!(post(&off.addr, "/-/sync/debian", Some(&bearer)).0, 404);
    let config_arg = config.to_string_lossy().into_owned();
    let serve = Daemon::spawn_with(&["serve", "--config", &config_arg, "--listen", "127.0.0.1:0"]);
    assert_eq!(post(&serve.addr, "/-/sync/debian", Some(&bearer)).0, 404);
}

/// upstream → hub → leaf: an upstream change and a push to the hub reach the leaf through the
/// hub's own push; the leaf's `_hierarchy` names both hops; apt against the leaf is clean. A
/// leaf pushed while the hub is mid-update (its new Release live, its run not finished, its
/// flag up) waits, keeps serving what it had, and converges once the hub is done.
#[test]
fn three_tiers_upstream_hub_leaf() {
    let mut s = Setup::new();
    let hub_token = token(s.tmp.path(), "hub-token", "hub-secret");
    let leaf_token = token(s.tmp.path(), "leaf-token", "leaf-secret");
    let hub_dir = s.tmp.path().join("hub");
    let hub_config = |notify: &str| {
        write_config(
            &hub_dir,
            &s.upstream.base_url(),
            &s.keyring,
            &pushed_toml(&hub_token, notify),
        )
    };
    let hub = Daemon::spawn(&hub_config(""));
    wait_serves(&hub, &s.inrelease());
    let leaf_dir = s.tmp.path().join("leaf");
    let leaf_config = write_config(
        &leaf_dir,
        &format!("http://{}/debian/", hub.addr),
        &s.keyring,
        &pushed_toml(&leaf_token, ""),
    );
    let leaf = Daemon::spawn(&leaf_config);
    wait_serves(&leaf, &s.inrelease());

    // The hub learns its leaf.
    let notify = format!(
        "notify = [{{ url = \"http://{}/-/sync/debian\", token_file = \"{}\" }}]\n",
        leaf.addr,
        leaf_token.display()
    );
    hub_config(&notify);
    hub.signal(libc::SIGHUP);
    wait_for("the hub's reload", Duration::from_secs(30), &hub, || {
        hub.log().contains("SIGHUP: reloaded").then_some(())
    });

    // Upstream changes and pushes the hub; the hub pushes the leaf.
    s.archive
        .add_package("newpkg", "2.0", "amd64", "main", &noise("newpkg", 4096));
    s.archive.build();
    let pushed = Instant::now();
    assert_eq!(
        post(&hub.addr, "/-/sync/debian", Some("Bearer hub-secret")).0,
        202
    );
    wait_serves(&leaf, &s.inrelease());
    eprintln!(
        "push to the hub → leaf serving the change: {:?}",
        pushed.elapsed()
    );
    assert!(hub.log().contains("pushed http://"), "{}", hub.log());
    let (_, hierarchy) = leaf.get("/debian/project/trace/_hierarchy");
    let hierarchy = String::from_utf8_lossy(&hierarchy).into_owned();
    assert_eq!(
        hierarchy
            .lines()
            .filter(|l| l.starts_with(&hostname()))
            .count(),
        2,
        "the hub's hop and the leaf's: {hierarchy}"
    );
    let leaf_url = format!("http://{}/debian/", leaf.addr);
    let apt = Apt::new(
        &s.tmp.path().join("apt"),
        &leaf_url,
        "stable",
        &["main"],
        &s.keyring,
    );
    apt.update().assert_clean();
    assert_eq!(apt.fetch_package("newpkg"), noise("newpkg", 4096));

    // The hub mid-update: its new Release is live, but its run holds at upstream's traces.
    let v2 = s.inrelease();
    s.archive
        .add_package("third", "3.0", "amd64", "main", &noise("third", 4096));
    s.archive.build();
    // `_hierarchy` is fetched only after the swap (`master` also names the changelog before it).
    s.upstream.add_fault(FaultRule::suffix(
        "project/trace/_hierarchy",
        Fault::Hold("hub".into()),
    ));
    assert_eq!(
        post(&hub.addr, "/-/sync/debian", Some("Bearer hub-secret")).0,
        202
    );
    wait_for(
        "the hub held after its swap",
        Duration::from_secs(60),
        &hub,
        || (s.upstream.held("hub") == 1).then_some(()),
    );
    assert_eq!(hub.get("/debian/dists/stable/InRelease").1, s.inrelease());
    let (status, listing) = hub.get("/debian/");
    assert!(
        status == 200 && String::from_utf8_lossy(&listing).contains("Archive-Update-in-Progress-"),
        "the hub's flag is served while it syncs"
    );
    // A leaf sync now sees a new Release upstream and the flag: it waits.
    assert_eq!(
        post(&leaf.addr, "/-/sync/debian", Some("Bearer leaf-secret")).0,
        202
    );
    wait_for(
        "the leaf waiting for the hub",
        Duration::from_secs(60),
        &leaf,
        || {
            leaf.log()
                .contains("upstream looks mid-update: waiting")
                .then_some(())
        },
    );
    assert_eq!(leaf.get("/debian/dists/stable/InRelease").1, v2);
    apt.update().assert_clean();
    s.upstream.release("hub");
    wait_serves(&leaf, &s.inrelease());
    apt.update().assert_clean();
    assert_eq!(apt.fetch_package("third"), noise("third", 4096));
}
