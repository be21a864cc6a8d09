//! `kill -9` at random instants of a run against an upstream that flips between two
//! generations. After every kill the served tree must be whole: the real `apt-get update`
//! against `debsync serve` reports nothing, and `debsync verify` finds nothing wrong. The
//! next run must complete and converge on upstream.
//!
//! `DEBSYNC_KILL_SWEEP` sets the number of kills (default [`DEFAULT_KILLS`]; the full
//! sweep is 100+), `DEBSYNC_KILL_SEED` replays a sweep.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::common::*;
use crate::support::*;

pub const DEFAULT_KILLS: usize = 20;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} does not parse")),
        Err(_) => default,
    }
}

/// Where a killed run was, judged from outside: what it had asked upstream for, and whether
/// the new InRelease was live.
fn phase(f: &Fixture, finished: bool) -> &'static str {
    if finished {
        return "finished before the kill";
    }
    let live = std::fs::read(f.tree().join(INRELEASE)).ok();
    if live.as_deref() == Some(f.archive.read(INRELEASE).as_slice()) {
        return "after the swap";
    }
    let reqs = f.upstream.requests();
    if reqs.iter().any(|r| r.path.starts_with("/pool/")) {
        "pool"
    } else if reqs.iter().any(|r| {
        r.path.starts_with("/dists/")
            && !["/InRelease", "/Release", "/Release.gpg"]
                .iter()
                .any(|s| r.path.ends_with(s))
    }) {
        "staging indices"
    } else if reqs.is_empty() {
        "startup"
    } else {
        "release"
    }
}

/// The checks a served tree must pass at any instant; returns what is wrong.
pub fn inconsistencies(
    f: &Fixture,
    server: &DebsyncServer,
    apt_dir: &std::path::Path,
) -> Vec<String> {
    let mut wrong = Vec::new();
    let apt = Apt::new(
        apt_dir,
        &format!("{}debian/", server.url),
        "stable",
        &["main"],
        &f.keyring,
    );
    let out = apt.update();
    let problems = out.problems();
    if !out.output.status.success() || !problems.is_empty() {
        wrong.push(format!(
            "apt-get update (exit {:?}): {problems:?}\n{}",
            out.output.status, out.stdout
        ));
    }
    let _ = std::fs::remove_dir_all(apt_dir);
    let v = f.verify();
    if !v.status.success() {
        wrong.push(format!(
            "debsync verify: {}{}",
            String::from_utf8_lossy(&v.stdout),
            String::from_utf8_lossy(&v.stderr)
        ));
    }
    wrong
}

#[test]
fn sigkill_at_random_instants_never_leaves_an_inconsistent_tree() {
    let kills: usize = env_or("DEBSYNC_KILL_SWEEP", DEFAULT_KILLS);
    let seed: u64 = env_or(
        "DEBSYNC_KILL_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    );
    eprintln!("kill sweep: {kills} kills, seed {seed} (replay with DEBSYNC_KILL_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let started = Instant::now();

    let gens = Generations::new(16, 16 * 1024);
    let mut f = Fixture::new(
        |a| {
            a.suites[0].acquire_by_hash = true;
            a.suites[0].packages = gens.a.clone();
        },
        "[sync]\nmax_delete = 1000\n",
    );
    // Slow pool files widen the window between "indices staged" and "swap".
    for part in ["_2.0_", "/onlya/", "/onlyb/"] {
        f.upstream.add_fault(FaultRule::contains(
            part,
            Fault::Drip {
                chunk: 2048,
                every: Duration::from_millis(15),
            },
        ));
    }
    f.sync_ok();
    let server = spawn_serve(&["--config", &f.config_str(), "--listen", "127.0.0.1:0"]).unwrap();

    // A typical run, to spread the kills over.
    let mut gen_b = false;
    let mut runs = Vec::new();
    for _ in 0..3 {
        gen_b = !gen_b;
        gens.publish(&mut f.archive, gen_b);
        let t = Instant::now();
        f.sync_ok();
        runs.push(t.elapsed());
    }
    runs.sort();
    let typical = runs[1];
    eprintln!("typical run (A<->B): {typical:?}; kill delays drawn from 0..={typical:?}");

    let mut phases: BTreeMap<&str, usize> = BTreeMap::new();
    let mut bad: Vec<String> = Vec::new();
    let mut converged_runs = 0;
    let mut converged = true;
    for i in 0..kills {
        // After a converged run, upstream always changes; after a bare kill, sometimes.
        if converged || rng.gen_bool(0.5) {
            gen_b = !gen_b;
            gens.publish(&mut f.archive, gen_b);
        }
        f.upstream.clear_log();
        let delay = Duration::from_micros(rng.gen_range(0..=typical.as_micros() as u64));
        let mut child = Command::new(debsync_bin())
            .args(["sync", "--config", &f.config_str()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // The kill instant itself, not a synchronisation.
        std::thread::sleep(delay);
        let finished = child.try_wait().unwrap().is_some();
        let _ = child.kill();
        child.wait().unwrap();
        let at = phase(&f, finished);
        *phases.entry(at).or_default() += 1;

        let wrong = inconsistencies(&f, &server, &f.tmp.path().join(format!("apt{i}")));
        if !wrong.is_empty() {
            bad.push(format!(
                "kill {i} after {delay:?} ({at}, upstream {}):\n{}",
                if gen_b { "B" } else { "A" },
                wrong.join("\n")
            ));
        }

        // Converge now, or let the next run start from this one's leftovers.
        converged = i + 1 == kills || rng.gen_bool(0.6);
        if converged {
            let out = f.sync();
            assert!(
                out.status.success(),
                "seed {seed}, kill {i} ({at}): the next run failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_mirrors(f.archive.dir(), &f.archive, &f.tree());
            assert_no_staging(&f.tree());
            assert_eq!(
                temp_files(&f.tree()),
                Vec::<String>::new(),
                "seed {seed}, kill {i}: temp files survived a converging run"
            );
            converged_runs += 1;
        }
    }
    let v = f.verify();
    assert_success(&v);
    eprintln!(
        "kill sweep: seed {seed}: {kills} kills tried, phases {phases:?}, {converged_runs} \
         converging runs, {} inconsistent trees, {:?}",
        bad.len(),
        started.elapsed()
    );
    assert!(
        bad.is_empty(),
        "seed {seed}: {} inconsistent trees:\n{}",
        bad.len(),
        bad.join("\n\n")
    );
}

/// The checks above are not vacuous: a tree with an index changed in place and a pool file
/// gone fails both apt and verify.
#[test]
fn the_consistency_checks_catch_a_broken_tree() {
    let f = Fixture::new(|a| a.suites[0].acquire_by_hash = true, "");
    f.sync_ok();
    let server = spawn_serve(&["--config", &f.config_str(), "--listen", "127.0.0.1:0"]).unwrap();
    let apt_dir = f.tmp.path().join("apt");
    assert_eq!(inconsistencies(&f, &server, &apt_dir), Vec::<String>::new());

    // Another generation's Packages.xz under this generation's InRelease (every copy).
    let xz = std::fs::read(f.tree().join(PACKAGES_XZ)).unwrap();
    let other = archive::xz(b"Package: other\n");
    for p in archive::walk_files(&f.tree().join(SUITE_DIR)) {
        let p = f.tree().join(SUITE_DIR).join(p);
        if std::fs::read(&p).unwrap() == xz {
            std::fs::remove_file(&p).unwrap();
            std::fs::write(&p, &other).unwrap();
        }
    }
    std::fs::remove_file(f.tree().join("pool/main/h/hello/hello_1.0-1_amd64.deb")).unwrap();
    let wrong = inconsistencies(&f, &server, &apt_dir);
    assert_eq!(wrong.len(), 2, "{wrong:#?}");
    assert!(wrong[0].starts_with("apt-get update"), "{wrong:#?}");
    assert!(wrong[1].contains("hello_1.0-1_amd64.deb"), "{wrong:#?}");
}
