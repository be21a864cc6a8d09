//! Black-box tests of `debsync daemon`: the built binary, a real socket on 127.0.0.1, the kit's
//! signed archive behind its fault-injecting upstream. Every wait polls the daemon's HTTP,
//! state or metrics against a deadline; nothing sleeps to synchronise.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use common::*;

/// Every second, no jitter, retries after a second: a test sees each step within seconds.
const FAST: &str = r#"
[daemon]
jitter_secs = 0
retry_min_secs = 1
retry_max_secs = 1
[[mirror]]
schedule = "* * * * * *"
"#;

/// A running `debsync daemon`; killed on drop if a test failed before stopping it.
struct Daemon {
    child: Child,
    addr: String,
    stderr: Arc<Mutex<String>>,
}

impl Daemon {
    fn spawn(config: &Path) -> Daemon {
        let config = config.to_string_lossy();
        Daemon::spawn_with(&["daemon", "--config", &config, "--listen", "127.0.0.1:0"])
    }

    /// `debsync <args>`, which prints `listening on http://ADDR` first.
    fn spawn_with(args: &[&str]) -> Daemon {
        let mut child = Command::new(debsync_bin())
            .args(args)
            .env("RUST_LOG", "debsync=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn debsync daemon");
        let stderr = Arc::new(Mutex::new(String::new()));
        let log = stderr.clone();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                eprintln!("daemon: {line}");
                log.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(out).lines();
            let _ = tx.send(lines.next());
            for _ in lines {}
        });
        let first = rx.recv_timeout(Duration::from_secs(30));
        let Ok(Some(Ok(line))) = first else {
            let _ = child.kill();
            panic!("no `listening on` line: {first:?}");
        };
        let addr = line
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        Daemon {
            child,
            addr,
            stderr,
        }
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on a child we own and have not reaped.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, sig) }, 0);
    }

    fn get(&self, path: &str) -> (u16, Vec<u8>) {
        get(&self.addr, path)
    }

    fn metrics(&self) -> String {
        String::from_utf8_lossy(&self.get("/metrics").1).into_owned()
    }

    fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits (bounded) for the process to exit.
    fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "daemon still running {timeout:?} after the signal; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` over a fresh connection: (status, body); status 0 when the connection closed
/// without a response (a connection the old server generation accepted just as a reload
/// stopped it: hyper's graceful shutdown closes connections with no request read yet).
fn get(addr: &str, path: &str) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    // Closed with the request unread, the kernel resets the connection instead of a clean end.
    if s.read_to_end(&mut raw).is_err() || raw.is_empty() {
        return (0, Vec::new());
    }
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&raw[..split]);
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head:?}"));
    (status, raw[split + 4..].to_vec())
}

/// Polls `f` until it returns `Some`, for at most `timeout`.
fn wait_for<T>(what: &str, timeout: Duration, d: &Daemon, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {timeout:?}; daemon log:\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The value of one sample (`name{labels}`) in a metrics page.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn state(tree: &Path) -> serde_json::Value {
    std::fs::read(tree.join(".debsync/state.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

struct Setup {
    tmp: tempfile::TempDir,
    archive: TestArchive,
    upstream: Upstream,
    keyring: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        let tmp = tempfile::tempdir().unwrap();
        let mut archive = TestArchive::new(tmp.path().join("upstream"));
        archive.add_package("hello", "1.0-1", "amd64", "main", &noise("hello", 4096));
        archive.build();
        let upstream = Upstream::serve(archive.dir());
        let keyring = tmp.path().join("keys/archive.gpg");
        archive.key().write_keyring(&keyring);
        Setup {
            tmp,
            archive,
            upstream,
            keyring,
        }
    }

    fn config(&self, extra: &str) -> PathBuf {
        write_config(
            self.tmp.path(),
            &self.upstream.base_url(),
            &self.keyring,
            &format!("{FAST}{extra}"),
        )
    }

    fn tree(&self, name: &str) -> PathBuf {
        self.tmp.path().join("root").join(name)
    }

    fn inrelease(&self) -> Vec<u8> {
        self.archive.read("dists/stable/InRelease")
    }
}

/// Waits until the daemon serves upstream's current InRelease under `/<mirror>/`.
fn wait_served(d: &Daemon, s: &Setup, mirror: &str) {
    let want = s.inrelease();
    let path = format!("/{mirror}/dists/stable/InRelease");
    wait_for(
        &format!("{path} as upstream has it"),
        Duration::from_secs(60),
        d,
        || (d.get(&path) == (200, want.clone())).then_some(()),
    );
}

/// The whole life of a daemon: first sync and serve, an upstream change picked up at a later
/// firing, metrics and status, SIGHUP with a bad then a grown config, SIGTERM → exit 0.
#[test]
fn daemon_syncs_serves_reloads_and_stops() {
    let mut s = Setup::new();
    let config = s.config("");
    let mut d = Daemon::spawn(&config);

    wait_served(&d, &s, MIRROR_NAME);
    let hello = "/debian/pool/main/h/hello/hello_1.0-1_amd64.deb";
    assert_eq!(d.get(hello), (200, noise("hello", 4096)));
    // Healthy once the run has recorded its success (just after the swap).
    wait_for("/healthz 200", Duration::from_secs(30), &d, || {
        (d.get("/healthz").0 == 200).then_some(())
    });

    // Metrics: runs by result and the next firing (absent only while a run is going on).
    let m = wait_for("next sync on /metrics", Duration::from_secs(30), &d, || {
        let m = d.metrics();
        sample(
            &m,
            "debsync_mirror_next_sync_timestamp_seconds{mirror=\"debian\"}",
        )
        .map(|_| m)
    });
    let ok = sample(
        &m,
        "debsync_mirror_sync_runs_total{mirror=\"debian\",result=\"ok\"}",
    );
    assert!(ok.is_some_and(|n| n >= 1.0), "{m}");
    assert!(m.contains("debsync_mirror_last_result{mirror=\"debian\",result=\"ok\"} 1"));

    // `debsync status` shows the daemon's plan.
    let status = wait_for("next run in status", Duration::from_secs(30), &d, || {
        let out = run_debsync(&["status", "--config", &config.to_string_lossy(), "--json"]);
        assert_success(&out);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v[0]["next_run"].as_i64().map(|_| v)
    });
    assert_eq!(status[0]["schedule"], "* * * * * *");
    let out = run_debsync(&["status", "--config", &config.to_string_lossy()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("  next run:      ") && text.contains("daemon schedule \"* * * * * *\""),
        "{text}"
    );

    // Upstream changes: a later firing picks it up.
    s.archive
        .add_package("newpkg", "2.0", "amd64", "main", &noise("newpkg", 4096));
    s.archive.build();
    wait_served(&d, &s, MIRROR_NAME);
    let newpkg = "/debian/pool/main/n/newpkg/newpkg_2.0_amd64.deb";
    assert_eq!(d.get(newpkg), (200, noise("newpkg", 4096)));

    // A bad config on SIGHUP: one error, the daemon keeps running the old one.
    let good = std::fs::read(&config).unwrap();
    std::fs::write(&config, "root = [this is not toml").unwrap();
    d.signal(libc::SIGHUP);
    wait_for("the reload error", Duration::from_secs(30), &d, || {
        d.log()
            .contains("SIGHUP: keeping the running config")
            .then_some(())
    });
    assert!(d.alive(), "SIGHUP must not kill the daemon");
    assert_eq!(d.get(newpkg).0, 200);
    std::fs::write(&config, good).unwrap();

    // A second mirror on SIGHUP: synced and served by the same process.
    let second = format!(
        "[[mirror]]\nname = \"second\"\nupstream = \"{}\"\nsuites = [\"stable\"]\n\
         components = [\"main\"]\narchitectures = [\"amd64\"]\nkeyring = [\"{}\"]\n\
         schedule = \"* * * * * *\"\n",
        s.upstream.base_url(),
        s.keyring.display()
    );
    s.config(&second);
    d.signal(libc::SIGHUP);
    wait_served(&d, &s, "second");
    assert_eq!(
        d.get("/second/pool/main/n/newpkg/newpkg_2.0_amd64.deb"),
        (200, noise("newpkg", 4096))
    );
    assert!(d.alive());
    assert_eq!(d.get(hello).0, 200, "the first mirror is still served");

    // SIGTERM: exit 0 within a few seconds; nothing left `running`, plan files gone.
    d.signal(libc::SIGTERM);
    let status = d.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "exit {status:?}; log:\n{}", d.log());
    for name in [MIRROR_NAME, "second"] {
        let result = state(&s.tree(name))["last_result"].clone();
        assert!(
            result == "ok" || result == "interrupted",
            "{name}: {result}"
        );
        assert!(!s.tree(name).join(".debsync/schedule.json").exists());
    }
}

/// SIGTERM while a sync is mid-download: the run is abandoned (state `interrupted`, nothing
/// of it served), HTTP drains, exit 0.
#[test]
fn sigterm_abandons_a_running_sync_and_exits_zero() {
    let s = Setup::new();
    s.upstream.add_fault(FaultRule::contains(
        "hello_1.0-1",
        Fault::Drip {
            chunk: 1,
            every: Duration::from_millis(200),
        },
    ));
    let mut d = Daemon::spawn(&s.config(""));
    wait_for("the pool download", Duration::from_secs(30), &d, || {
        (!s.upstream.requests_to("hello_1.0-1_amd64.deb").is_empty()).then_some(())
    });
    // Served while syncing; not healthy before the first sync has finished.
    let (status, body) = d.get("/healthz");
    assert_eq!(status, 503);
    assert_eq!(String::from_utf8_lossy(&body), "debian: never synced\n");
    assert_eq!(d.get("/metrics").0, 200);
    d.signal(libc::SIGTERM);
    let status = d.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "exit {status:?}; log:\n{}", d.log());
    assert_eq!(state(&s.tree(MIRROR_NAME))["last_result"], "interrupted");
    assert!(!s.tree(MIRROR_NAME).join("dists/stable/InRelease").exists());
}

/// A `debsync sync` holding the mirror's run lock: the daemon's firings are skipped (logged,
/// counted), never run beside it; once the lock is free the next firing syncs.
#[test]
fn a_held_lock_skips_firings_until_it_is_free() {
    let s = Setup::new();
    let tree = s.tree(MIRROR_NAME);
    std::fs::create_dir_all(&tree).unwrap();
    let host = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    let host = if host.is_empty() {
        "localhost".into()
    } else {
        host
    };
    let lock =
        std::fs::File::create(tree.join(format!("Archive-Update-in-Progress-{host}"))).unwrap();
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).unwrap();
    let mut d = Daemon::spawn(&s.config(""));
    let skipped = "debsync_mirror_sync_runs_total{mirror=\"debian\",result=\"skipped\"}";
    wait_for("two skipped firings", Duration::from_secs(30), &d, || {
        (sample(&d.metrics(), skipped)? >= 2.0).then_some(())
    });
    assert!(d.log().contains("skipped this firing"), "{}", d.log());
    assert!(
        !tree.join("dists").exists(),
        "no run beside the lock holder"
    );
    drop(lock);
    wait_served(&d, &s, MIRROR_NAME);
    d.signal(libc::SIGINT);
    assert!(d.wait_exit(Duration::from_secs(10)).success());
}

/// `[serve] access_log`: the daemon writes the access lines there and reopens the file on
/// SIGHUP (logrotate's `postrotate`), next to reloading the config.
#[test]
fn daemon_reopens_the_access_log_on_sighup() {
    let s = Setup::new();
    let log = s.tmp.path().join("access.log");
    let config = s.config(&format!("[serve]\naccess_log = \"{}\"\n", log.display()));
    let d = Daemon::spawn(&config);
    wait_served(&d, &s, MIRROR_NAME);
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    assert_eq!(d.get("/debian/?before").0, 200);
    wait_for("the first access line", Duration::from_secs(10), &d, || {
        read(&log)
            .contains("\"GET /debian/?before HTTP/1.1\" 200 ")
            .then_some(())
    });
    let rotated = s.tmp.path().join("access.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    d.signal(libc::SIGHUP);
    wait_for("a new access log", Duration::from_secs(10), &d, || {
        log.exists().then_some(())
    });
    assert_eq!(d.get("/debian/?after").0, 200);
    wait_for(
        "the access line after SIGHUP",
        Duration::from_secs(10),
        &d,
        || {
            read(&log)
                .contains("\"GET /debian/?after HTTP/1.1\" 200 ")
                .then_some(())
        },
    );
    assert!(!read(&rotated).contains("after"));
}

/// `debsync serve` logs and ignores SIGHUP (its default action would kill it), and still
/// stops cleanly on SIGTERM.
#[test]
fn serve_survives_sighup() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("file"), b"still here\n").unwrap();
    let root = tmp.path().to_string_lossy().into_owned();
    let mut serve = Daemon::spawn_with(&["serve", "--root", &root, "--listen", "127.0.0.1:0"]);
    assert_eq!(serve.get("/file").1, b"still here\n");
    serve.signal(libc::SIGHUP);
    wait_for(
        "the SIGHUP log line",
        Duration::from_secs(10),
        &serve,
        || serve.log().contains("SIGHUP ignored").then_some(()),
    );
    assert!(serve.alive(), "SIGHUP killed serve");
    assert_eq!(serve.get("/file").1, b"still here\n");
    serve.signal(libc::SIGTERM);
    let status = serve.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
}

#[path = "daemon/network.rs"]
mod network;
