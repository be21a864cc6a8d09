//! Helpers for the server tests: a tree builder, the binary as a child process, the library on
//! its own runtime thread, and small blocking HTTP clients (raw TCP and curl). Every blocking
//! call has a timeout; nothing waits by sleeping.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use debsync::serve::{Limits, Server, Site};

pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A temporary directory with helpers to fill it.
pub struct Tree {
    pub dir: tempfile::TempDir,
}

impl Tree {
    pub fn new() -> Tree {
        Tree {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn file(&self, rel: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, bytes).expect("write");
        p
    }

    pub fn dir(&self, rel: &str) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(&p).expect("mkdir");
        p
    }
}

/// Deterministic pseudo-random bytes (xorshift), so range checks compare real content.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// `debsync serve ARGS --listen 127.0.0.1:0`, killed on drop.
pub struct Proc {
    child: Child,
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT` (or https).
    pub base: String,
    pub stderr: PathBuf,
    _logdir: tempfile::TempDir,
}

impl Proc {
    pub fn spawn(args: &[&str]) -> Proc {
        Proc::spawn_env(args, &[])
    }

    pub fn spawn_env(args: &[&str], env: &[(&str, &str)]) -> Proc {
        let logdir = tempfile::tempdir().expect("tempdir");
        let stderr = logdir.path().join("stderr");
        let mut child = Command::new(env!("CARGO_BIN_EXE_debsync"))
            .arg("serve")
            .args(args)
            .args(["--listen", "127.0.0.1:0"])
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("spawn debsync");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = match rx.recv_timeout(TIMEOUT) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!("no 'listening on' line within {TIMEOUT:?}");
            }
        };
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| {
                let err = std::fs::read_to_string(&stderr).unwrap_or_default();
                panic!("unexpected first line {line:?}; stderr: {err}")
            })
            .to_string();
        let addr = base
            .split("://")
            .nth(1)
            .and_then(|a| a.parse().ok())
            .expect("address in listening line");
        Proc {
            child,
            addr,
            base,
            stderr,
            _logdir: logdir,
        }
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal_term();
        self.wait()
    }

    /// Sends SIGTERM without waiting.
    pub fn signal_term(&self) {
        self.signal(rustix::process::Signal::TERM);
    }

    pub fn signal(&self, signal: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_child(&self.child);
        rustix::process::kill_process(pid, signal).expect("kill");
    }

    pub fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "debsync did not exit within {TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(10)); // polling an exit, not synchronising
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The library server on its own runtime thread, with an injected shutdown.
pub struct Lib {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: mpsc::Receiver<()>,
}

impl Lib {
    pub fn start(site: Site, limits: Limits) -> Lib {
        let (addr_tx, addr_rx) = mpsc::channel();
        let (done_tx, done) = mpsc::channel();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = debsync::serve::bind("127.0.0.1:0").await.expect("bind");
                addr_tx
                    .send(listener.local_addr().expect("addr"))
                    .expect("send addr");
                Server::new(site, limits)
                    .run(listener, async {
                        let _ = stop_rx.await;
                    })
                    .await
                    .expect("server run");
            });
            let _ = done_tx.send(());
        });
        let addr = addr_rx.recv_timeout(TIMEOUT).expect("server address");
        Lib {
            addr,
            stop: Some(stop),
            done,
        }
    }

    /// Fires the shutdown future.
    pub fn trigger_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Waits (bounded) until `run` has returned.
    pub fn wait_stopped(&self, limit: Duration) -> bool {
        self.done.recv_timeout(limit).is_ok()
    }
}

impl Drop for Lib {
    fn drop(&mut self) {
        self.trigger_shutdown();
    }
}

/// A parsed HTTP/1.1 response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn parse(raw: &[u8]) -> Resp {
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Resp {
            status,
            headers,
            body: raw[split + 4..].to_vec(),
        }
    }
}

pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, TIMEOUT).expect("connect");
    s.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    s.set_write_timeout(Some(TIMEOUT)).expect("timeout");
    s
}

/// Sends raw bytes, reads until the server closes.
pub fn raw(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut s = connect(addr);
    s.write_all(request).expect("write request");
    let mut out = Vec::new();
    // A reset after the response (server closing with unread input) still leaves `out` full.
    let _ = s.read_to_end(&mut out);
    out
}

/// `GET path` with extra header lines, `Connection: close`.
pub fn get(addr: SocketAddr, path: &str, headers: &[&str]) -> Resp {
    request(addr, "GET", path, headers)
}

pub fn request(addr: SocketAddr, method: &str, path: &str, headers: &[&str]) -> Resp {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    Resp::parse(&raw(addr, req.as_bytes()))
}

/// Runs curl with `--max-time`; panics if curl itself fails to start.
pub fn curl(args: &[&str]) -> Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl (apt-get install curl)")
}

/// `curl -D - -o BODY ARGS`: (parsed headers, body).
pub fn curl_resp(args: &[&str]) -> Resp {
    let dir = tempfile::tempdir().expect("tempdir");
    let body = dir.path().join("body");
    let body_s = body.to_str().expect("utf-8 path");
    let mut all = vec!["-D", "-", "-o", body_s];
    all.extend_from_slice(args);
    let out = curl(&all);
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut r = Resp::parse(&out.stdout);
    r.body = std::fs::read(&body).unwrap_or_default();
    r
}

/// Reads a Prometheus sample value from `/metrics`.
pub fn metric(addr: SocketAddr, sample: &str) -> Option<f64> {
    let text = get(addr, "/metrics", &[]).text();
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
}

/// Polls `cond` until true or `limit` passes.
pub fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20)); // polling an observable, not synchronising
    }
    cond()
}

/// A bare-tree site.
pub fn bare(root: &Path) -> Site {
    Site::bare(root).expect("bare site")
}
