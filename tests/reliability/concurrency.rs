//! Two syncs racing for one tree, and syncs swapping generations while `debsync serve`
//! answers clients that read InRelease and then the indices and pool files it names.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use crate::common::*;
use crate::support::*;

/// Slow pool files: every run spends over a second in its pool phase, inside the lock.
fn slow_pool(f: &Fixture) {
    f.upstream.add_fault(FaultRule::contains(
        "/pool/",
        Fault::Drip {
            chunk: 1024,
            every: Duration::from_millis(300),
        },
    ));
}

#[test]
fn two_syncs_started_together_one_runs_one_is_refused() {
    let gens = Generations::new(6, 4096);
    let mut f = Fixture::new(
        |a| {
            a.suites[0].acquire_by_hash = true;
            a.suites[0].packages = gens.a.clone();
        },
        "[sync]\nmax_delete = 1000\n",
    );
    f.sync_ok();
    slow_pool(&f);
    let mut gen_b = false;
    for round in 0..4 {
        gen_b = !gen_b;
        gens.publish(&mut f.archive, gen_b);
        let (one, two) = std::thread::scope(|s| {
            let one = s.spawn(|| f.sync());
            let two = s.spawn(|| f.sync());
            (one.join().unwrap(), two.join().unwrap())
        });
        let ok = [&one, &two].iter().filter(|o| o.status.success()).count();
        assert_eq!(
            ok,
            1,
            "round {round}: exactly one run must win\n--- one\n{}\n--- two\n{}",
            String::from_utf8_lossy(&one.stderr),
            String::from_utf8_lossy(&two.stderr)
        );
        let loser = if one.status.success() { &two } else { &one };
        let line = error_line(&String::from_utf8_lossy(&loser.stderr));
        assert!(
            line.contains("already running") && line.contains("Archive-Update-in-Progress-"),
            "round {round}: {line}"
        );
        eprintln!("round {round}: refused: {line}");
        assert_mirrors(f.archive.dir(), &f.archive, &f.tree());
        assert_success(&f.verify());
        assert_no_staging(&f.tree());
    }
}

fn server_addr(server: &DebsyncServer) -> std::net::SocketAddr {
    server
        .url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap()
}

/// What the HTTP client thread saw.
#[derive(Default)]
struct Seen {
    /// InRelease → index → pool → InRelease rounds completed.
    rounds: AtomicUsize,
    /// Rounds during which InRelease changed (a swap happened in between).
    swapped_during: AtomicUsize,
    /// By-hash indices already pruned (three generations went by during one round).
    by_hash_gone: AtomicUsize,
    /// Real problems.
    wrong: Mutex<Vec<String>>,
}

/// One client round: InRelease, then each index by hash and by name, then a pool file the
/// index names, then InRelease again. By-hash must always match; by-name and pool only when
/// no swap happened in between (otherwise the client legitimately saw two generations).
fn client_round(addr: std::net::SocketAddr, n: usize, seen: &Seen) -> Result<(), String> {
    let get = |path: &str| -> Result<(u16, Vec<u8>), String> {
        http_get(addr, &format!("/debian/{path}"))
    };
    let (st, inrelease) = get(INRELEASE)?;
    if st != 200 {
        return Err(format!("InRelease: HTTP {st}"));
    }
    let listed = release_sha256(&String::from_utf8_lossy(&inrelease));
    let mut maybe_wrong = Vec::new();
    let mut packages = None;
    for rel in [
        "main/binary-amd64/Packages",
        "main/binary-amd64/Packages.xz",
    ] {
        let (sha, _) = listed
            .get(rel)
            .ok_or_else(|| format!("InRelease lists no {rel}"))?;
        let by_hash = format!("dists/stable/main/binary-amd64/by-hash/SHA256/{sha}");
        match get(&by_hash)? {
            (200, body) if sha256_hex(&body) == *sha => {
                if rel.ends_with("Packages") {
                    packages = Some(body);
                }
            }
            (200, body) => {
                return Err(format!(
                    "{by_hash}: content has SHA256 {}",
                    sha256_hex(&body)
                ));
            }
            (404, _) => {
                seen.by_hash_gone.fetch_add(1, Ordering::Relaxed);
            }
            (st, _) => return Err(format!("{by_hash}: HTTP {st}")),
        }
        let (st, body) = get(&format!("dists/stable/{rel}"))?;
        if st != 200 || sha256_hex(&body) != *sha {
            maybe_wrong.push(format!(
                "dists/stable/{rel}: HTTP {st}, SHA256 {} where InRelease says {sha}",
                sha256_hex(&body)
            ));
        }
    }
    if let Some(packages) = packages {
        let text = String::from_utf8_lossy(&packages);
        let stanzas: Vec<&str> = text
            .split("\n\n")
            .filter(|s| !s.trim().is_empty())
            .collect();
        let stanza = stanzas[n % stanzas.len()];
        let field = |k: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{k}: ")))
                .unwrap_or_default()
                .to_string()
        };
        let (file, sha) = (field("Filename"), field("SHA256"));
        let (st, body) = get(&file)?;
        if st != 200 || sha256_hex(&body) != sha {
            maybe_wrong.push(format!("{file}: HTTP {st}, not the file the index names"));
        }
    }
    let (_, again) = get(INRELEASE)?;
    if again != inrelease {
        seen.swapped_during.fetch_add(1, Ordering::Relaxed);
    } else if !maybe_wrong.is_empty() {
        return Err(format!(
            "generation mix with no swap in between: {maybe_wrong:?}"
        ));
    }
    seen.rounds.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

#[test]
fn syncs_while_serving_under_load_never_show_a_generation_mix() {
    let gens = Generations::new(12, 4096);
    let mut f = Fixture::new(
        |a| {
            a.suites[0].acquire_by_hash = true;
            a.suites[0].packages = gens.a.clone();
        },
        "[sync]\nmax_delete = 1000\n",
    );
    f.sync_ok();
    let server = spawn_serve(&["--config", &f.config_str(), "--listen", "127.0.0.1:0"]).unwrap();
    let addr = server_addr(&server);

    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Seen::default());
    let (ready_tx, ready_rx) = mpsc::channel();
    let client = {
        let (stop, seen) = (stop.clone(), seen.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                if let Err(e) = client_round(addr, n, &seen) {
                    seen.wrong.lock().unwrap().push(e);
                }
                n += 1;
                if n == 1 {
                    let _ = ready_tx.send(());
                }
            }
        })
    };
    let apt_runs = Arc::new(AtomicUsize::new(0));
    let apt_thread = {
        let (stop, seen, apt_runs) = (stop.clone(), seen.clone(), apt_runs.clone());
        let apt = Apt::new(
            &f.tmp.path().join("apt"),
            &format!("{}debian/", server.url),
            "stable",
            &["main"],
            &f.keyring,
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let out = apt.update();
                let problems = out.problems();
                if !out.output.status.success() || !problems.is_empty() {
                    seen.wrong
                        .lock()
                        .unwrap()
                        .push(format!("apt-get update: {problems:?}\n{}", out.stdout));
                }
                apt_runs.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    ready_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the client completed a first round");

    let mut gen_b = false;
    let syncs = 8;
    for _ in 0..syncs {
        gen_b = !gen_b;
        gens.publish(&mut f.archive, gen_b);
        f.sync_ok();
        assert_mirrors(f.archive.dir(), &f.archive, &f.tree());
    }
    stop.store(true, Ordering::Relaxed);
    client.join().unwrap();
    apt_thread.join().unwrap();

    let rounds = seen.rounds.load(Ordering::Relaxed);
    let wrong = seen.wrong.lock().unwrap();
    eprintln!(
        "{syncs} syncs under load: {rounds} client rounds ({} spanned a swap, {} by-hash \
         already pruned), {} apt-get updates, {} problems",
        seen.swapped_during.load(Ordering::Relaxed),
        seen.by_hash_gone.load(Ordering::Relaxed),
        apt_runs.load(Ordering::Relaxed),
        wrong.len()
    );
    assert!(wrong.is_empty(), "{wrong:#?}");
    assert!(
        rounds >= syncs,
        "too little load to mean anything: {rounds}"
    );
    assert_success(&f.verify());
}

/// The client check is not vacuous: an index replaced in place under an unchanged InRelease
/// (what a file-by-file update would show) is reported as a generation mix.
#[test]
fn the_client_check_catches_a_generation_mix() {
    let f = Fixture::new(|a| a.suites[0].acquire_by_hash = true, "");
    f.sync_ok();
    let server = spawn_serve(&["--config", &f.config_str(), "--listen", "127.0.0.1:0"]).unwrap();
    let addr = server_addr(&server);
    let seen = Seen::default();
    client_round(addr, 0, &seen).unwrap();
    let plain = f.tree().join(PACKAGES);
    std::fs::remove_file(&plain).unwrap();
    std::fs::write(&plain, b"Package: other-generation\n").unwrap();
    let err = client_round(addr, 0, &seen).unwrap_err();
    assert!(err.contains("generation mix"), "{err}");
}

/// Upstream flips to the other generation while a run is fetching the pool (by-hash indices
/// are immune; pool files it drops are not): the run either publishes the generation it
/// verified, whole, or fails leaving the old one; the next run converges either way.
#[test]
fn upstream_changing_mid_run_never_publishes_a_mix() {
    let gens = Generations::new(6, 4096);
    let mut f = Fixture::new(
        |a| {
            a.suites[0].acquire_by_hash = true;
            a.suites[0].packages = gens.a.clone();
        },
        "[sync]\nmax_delete = 1000\n",
    );
    f.sync_ok();
    slow_pool(&f);
    let server = spawn_serve(&["--config", &f.config_str(), "--listen", "127.0.0.1:0"]).unwrap();
    let config = f.config.clone();
    let mut published = Vec::new();
    for round in 0..4 {
        // Upstream goes to B and, once the run is in its pool phase, back to A.
        gens.publish(&mut f.archive, true);
        let before = f.served();
        f.upstream.clear_log();
        let out = std::thread::scope(|s| {
            let run = s.spawn(|| run_sync(&config));
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while !f
                .upstream
                .requests()
                .iter()
                .any(|r| r.path.starts_with("/pool/"))
            {
                assert!(std::time::Instant::now() < deadline, "no pool request");
                std::thread::sleep(Duration::from_millis(2));
            }
            gens.publish(&mut f.archive, false);
            run.join().unwrap()
        });
        if out.status.success() {
            published.push("B, whole");
        } else {
            let line = error_line(&String::from_utf8_lossy(&out.stderr));
            eprintln!("round {round}: upstream changed mid-run: {line}");
            // The live generation is untouched; the pool files fetched before the failure
            // stay (new paths only, named by no live index) for the next run to reuse.
            let after = f.served();
            for (path, hash) in &before {
                assert_eq!(after.get(path), Some(hash), "round {round}: {path} changed");
            }
            let added: Vec<&String> = after.keys().filter(|p| !before.contains_key(*p)).collect();
            assert!(
                added.iter().all(|p| p.starts_with("pool/")),
                "round {round}: {added:?}"
            );
            eprintln!("round {round}: kept {} fetched pool files", added.len());
            published.push("nothing (failed)");
        }
        let wrong =
            crate::kill::inconsistencies(&f, &server, &f.tmp.path().join(format!("apt{round}")));
        assert!(wrong.is_empty(), "round {round}: {wrong:#?}");
        f.assert_converges();
    }
    eprintln!("upstream changed mid-run: published {published:?}");
}
