//! Issue 12's sync cases, each reproduced against today's engine first: shape changes in the
//! pool, a frozen Release, a Release without Date, one path listed twice with different
//! bytes, a drip-feeding upstream, flag names as pool paths, the idle mirror's freshness,
//! credentials in error lines, and `verify` on a Release + Release.gpg mirror.

use std::time::{Duration, Instant};

use crate::common::*;
use crate::support::*;

/// `pool/main/x` a file in one generation, a directory (`pool/main/x/y.deb`) in the next,
/// and back: each change converges, and clients see the file the live index names.
#[test]
fn pool_paths_changing_between_file_and_directory_converge() {
    let shape = |as_dir: bool| {
        move |a: &mut TestArchive| {
            a.remove_package("shape");
            let p = a.add_package("shape", "1", "amd64", "main", &noise("shape", 900));
            p.filename = Some(
                if as_dir {
                    "pool/main/x/y.deb"
                } else {
                    "pool/main/x"
                }
                .into(),
            );
        }
    };
    // Each change deletes one of four pool files: more than 10 % of so small a pool.
    let mut f = Fixture::new(shape(false), "[sync]\nmax_delete = 5\n");
    f.sync_ok();
    assert!(f.tree().join("pool/main/x").is_file());
    for as_dir in [true, false, true] {
        f.change(shape(as_dir));
        f.sync_ok();
        let (now, gone) = if as_dir {
            ("pool/main/x/y.deb", "pool/main/x/y.deb/nothing")
        } else {
            ("pool/main/x", "pool/main/x/y.deb")
        };
        assert_eq!(
            std::fs::read(f.tree().join(now)).unwrap(),
            f.archive.read(now)
        );
        assert!(!f.tree().join(gone).exists());
        let out = run_debsync(&["verify", "--config", &f.config_str()]);
        assert_success(&out);
        // And the next run is a no-op, not a failure in the pending-rename step.
        assert!(f.sync_ok().contains("unchanged"));
    }
}

/// A byte-identical InRelease whose Valid-Until has passed: upstream is frozen (or replaying
/// an old Release). The run fails; the tree stays as it was.
#[test]
fn a_frozen_release_past_valid_until_fails() {
    let mut f = Fixture::new(
        |a| a.suite("stable").valid_until = Some(rfc2822_from_now(3)),
        "",
    );
    f.sync_ok();
    let before = f.served();
    // Nothing changes upstream; time passes beyond Valid-Until.
    let deadline = Instant::now() + Duration::from_secs(4);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(250));
    }
    f.assert_refused(&before, &["dists/stable", "expired", "Valid-Until"]);
    // Upstream publishes a fresh one: the mirror follows.
    f.change(|a| a.suite("stable").valid_until = Some(rfc2822_from_now(3600)));
    f.sync_ok();
}

#[test]
fn a_release_without_date_is_refused_unless_allowed() {
    let no_date = |a: &mut TestArchive| a.suite("stable").omit_date = true;
    let f = Fixture::new(no_date, "");
    let out = f.sync();
    let err = assert_failure(&out);
    assert!(
        err.contains("has no Date") && err.contains("allow_missing_date"),
        "{err}"
    );
    assert!(!f.tree().join("dists/stable").exists());
    let f = Fixture::new(no_date, "[[mirror]]\nallow_missing_date = true\n");
    f.sync_ok();
}

/// Two suites list one pool path with different bytes: clients of one of them would get hash
/// mismatches. The run names both indices; verify names it too.
#[test]
fn one_pool_path_listed_with_different_bytes_is_an_error() {
    let mut f = Fixture::new(
        |a| {
            let s = a.suite("testing");
            s.add_package(
                "hello",
                "1.0-1",
                "amd64",
                "main",
                &noise("hello_1.0-1", DEB_LEN),
            );
        },
        "[[mirror]]\nsuites = [\"stable\", \"testing\"]\n",
    );
    f.sync_ok();
    let out = run_debsync(&["verify", "--config", &f.config_str()]);
    assert_success(&out);
    let before = f.served();
    f.change(|a| {
        a.suite("testing").package_mut("hello").content = noise("other bytes", DEB_LEN);
    });
    // Upstream's own pool now holds the testing bytes; stable's index names the old ones.
    let err = f.assert_refused(
        &before,
        &[
            HELLO,
            "different contents",
            "dists/stable/",
            "dists/testing/",
        ],
    );
    assert_eq!(err.lines().filter(|l| l.starts_with("error:")).count(), 1);

    // A tree that got that way (each suite synced by a config of its own) fails `verify`.
    let only = |suite: &str| {
        let dir = f.tmp.path().join(suite);
        std::fs::create_dir_all(&dir).unwrap();
        let toml = format!(
            "root = \"{}\"\n[sync]\nmax_delete = 5\n[[mirror]]\nsuites = [\"{suite}\"]\n",
            f.tmp.path().join("root").display()
        );
        write_config(&dir, &f.upstream.base_url(), &f.keyring, &toml)
    };
    assert_success(&run_sync(&only("testing")));
    let out = run_debsync(&["verify", "--config", &f.config_str()]);
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        assert_failure(&out)
    );
    assert!(shown.contains("listed with different contents"), "{shown}");
}

/// The same when both suites change in one run: the live generation lists the path, one new
/// index lists it with new bytes and the other with the old. A resync remembers a path it
/// already knew only as a mark on the live generation's table, and must still see this.
#[test]
fn one_known_pool_path_listed_with_different_bytes_by_two_changed_suites_is_an_error() {
    let mut f = Fixture::new(
        |a| {
            let s = a.suite("testing");
            s.add_package(
                "hello",
                "1.0-1",
                "amd64",
                "main",
                &noise("hello_1.0-1", DEB_LEN),
            );
        },
        "[[mirror]]\nsuites = [\"stable\", \"testing\"]\n",
    );
    f.sync_ok();
    let before = f.served();
    f.change(|a| {
        a.suite("testing").package_mut("hello").content = noise("other bytes", DEB_LEN);
        add(a, "newpkg", "1", "amd64");
    });
    f.assert_refused(
        &before,
        &[
            HELLO,
            "different contents",
            "dists/stable/",
            "dists/testing/",
        ],
    );
    // Both suites agreeing on the new bytes is a plain update.
    f.change(|a| a.suite("stable").package_mut("hello").content = noise("other bytes", DEB_LEN));
    f.sync_ok();
    assert_eq!(
        std::fs::read(f.tree().join(HELLO)).unwrap(),
        noise("other bytes", DEB_LEN)
    );
}

/// An upstream that keeps every connection alive with a few bytes now and then, far below
/// any useful rate: the idle timeout never fires, the minimum rate does.
#[test]
fn a_drip_below_the_minimum_rate_fails_early() {
    let (f, before) = {
        let mut f = Fixture::new(
            |_| {},
            "[sync]\ntimeout_secs = 1\nretries = 1\nmin_rate = 2000\n",
        );
        f.sync_ok();
        f.change(|a| add(a, "newpkg", "1", "amd64"));
        let before = f.served();
        (f, before)
    };
    f.upstream.add_fault(FaultRule::contains(
        "newpkg",
        Fault::Drip {
            chunk: 16,
            every: Duration::from_millis(100),
        },
    ));
    let started = Instant::now();
    f.assert_refused(&before, &["newpkg", "timed out", "min_rate"]);
    // Two attempts of about a second each; a 4 KiB drip at 160 B/s would take 25 s each.
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    f.upstream.clear_faults();
    f.sync_ok();
}

/// A package whose file name is the run lock's: it would replace the lock and be deleted
/// with it.
#[test]
fn flag_file_names_are_refused_as_pool_paths() {
    let name = format!("Archive-Update-in-Progress-{}", hostname());
    let mut f = Fixture::new(|_| {}, "");
    f.sync_ok();
    let before = f.served();
    f.change(|a| {
        a.suite("stable").package_mut("hello").filename = Some(name.clone());
    });
    f.assert_refused(&before, &[&name, "debsync manages itself"]);
}

/// ftpsync writes its trace on every successful run; a healthy idle mirror must not look
/// stale to monitoring.
#[test]
fn a_no_op_run_records_its_success_and_trace() {
    let f = Fixture::new(|_| {}, "");
    f.sync_ok();
    let first = f.state()["last_success"].as_i64().unwrap();
    let trace_path = f.tree().join("project/trace").join(hostname());
    let first_trace = std::fs::read_to_string(&trace_path).unwrap();
    // The trace's Date has a one-second resolution.
    let deadline = Instant::now() + Duration::from_millis(1100);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(f.sync_ok().contains("unchanged"));
    assert!(f.state()["last_success"].as_i64().unwrap() > first);
    let trace = std::fs::read_to_string(&trace_path).unwrap();
    let date = |t: &str| {
        t.lines()
            .find(|l| l.starts_with("Date: "))
            .unwrap()
            .to_string()
    };
    assert_ne!(date(&trace), date(&first_trace), "{trace}");
}

/// A password in the upstream URL never reaches an error line.
#[test]
fn credentials_in_the_upstream_url_are_redacted() {
    let f = Fixture::new(|_| {}, "");
    let url = f
        .upstream
        .base_url()
        .replace("http://", "http://mirroruser:s3cret-pw@");
    let config = write_config(f.tmp.path(), &url, &f.keyring, "");
    f.archive.delete("dists/stable/InRelease");
    f.archive.delete("dists/stable/Release.gpg");
    let out = run_sync(&config);
    let err = assert_failure(&out);
    assert!(!err.contains("s3cret-pw"), "{err}");
    assert!(err.contains("***@127.0.0.1"), "{err}");
}

/// An upstream with Release + Release.gpg and no InRelease: `verify` reads the same files
/// sync does.
#[test]
fn verify_reads_a_release_gpg_mirror() {
    let f = Fixture::new(|a| a.suite("stable").write_inrelease = false, "");
    f.sync_ok();
    assert!(!f.tree().join("dists/stable/InRelease").exists());
    let out = run_debsync(&["verify", "--config", &f.config_str()]);
    assert_success(&out);
    std::fs::write(f.tree().join(HELLO), b"rot").unwrap();
    let out = run_debsync(&["verify", "--config", &f.config_str()]);
    let err = assert_failure(&out);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(HELLO) || err.contains(HELLO),
        "{err}"
    );
}

/// One dead upstream does not keep the other mirrors of a config stale: each is attempted,
/// the exit status says something failed, and stderr names the mirror.
#[test]
fn every_mirror_of_a_config_is_attempted() {
    let f = Fixture::new(|_| {}, "");
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/", l.local_addr().unwrap())
    };
    let second = format!(
        "[sync]\nretries = 0\n[[mirror]]\n[[mirror]]\nname = \"second\"\nupstream = \"{}\"\n\
         suites = [\"stable\"]\ncomponents = [\"main\"]\narchitectures = [\"amd64\"]\n\
         keyring = \"{}\"\n",
        f.upstream.base_url(),
        f.keyring.display()
    );
    let dir = f.tmp.path().join("two");
    let config = write_config(&dir, &dead, &f.keyring, &second);
    let out = run_sync(&config);
    let err = assert_failure(&out);
    assert!(err.contains("error: debian: "), "{err}");
    assert!(err.contains("1 of 2 mirrors failed: debian"), "{err}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("second: updated"), "{stdout}");
    assert!(dir.join("root/second/dists/stable/InRelease").is_file());
}

/// A malformed signature block: one short, readable error line (it used to dump the input
/// as thousands of decimal bytes).
#[test]
fn a_malformed_inrelease_is_one_readable_line() {
    let f = Fixture::new(|_| {}, "");
    f.sync_ok();
    let before = f.served();
    let garbage = format!(
        "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nOrigin: x\n\
         -----BEGIN PGP SIGNATURE-----\n\n{}\n-----END PGP SIGNATURE-----\n",
        "AAAA garbage ".repeat(200)
    );
    f.archive
        .write("dists/stable/InRelease", garbage.as_bytes());
    let err = f.assert_refused(&before, &["dists/stable/InRelease"]);
    let line = err.lines().find(|l| l.starts_with("error:")).unwrap();
    assert!(line.len() < 300, "{} characters: {line}", line.len());
    assert!(!line.contains("[32, "), "{line}");
}
