//! The edge cache's test set-up: a signed upstream archive served by the kit's fault-injecting
//! [`Upstream`], a `mirror.toml` with one `[[cache]]` named `edge`, `debsync serve` over it, and
//! a small HTTP client (reqwest on one shared runtime) that sees the cache's headers.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::common::archive::walk_files;
use crate::common::*;

pub const CACHE: &str = "edge";
pub const HELLO: &str = "pool/main/h/hello/hello_1.0-1_amd64.deb";
pub const HELLO_LEN: usize = 1_000_000;
pub const BIG: &str = "pool/main/b/big/big_2.0-1_amd64.deb";
pub const BIG_LEN: usize = 3 * 1024 * 1024 + 17;

pub struct Edge {
    pub tmp: tempfile::TempDir,
    pub archive: TestArchive,
    pub upstream: Option<Upstream>,
    pub keyring: PathBuf,
    pub config: PathBuf,
    pub server: DebsyncServer,
}

/// One HTTP response, whole or as far as it got.
#[derive(Debug)]
pub struct Got {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
    /// The body ended with an error (cut short).
    pub broken: bool,
}

impl Got {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn cache(&self) -> &str {
        self.header("x-debsync-cache").unwrap_or("")
    }
}

pub fn rt() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
            .unwrap()
    })
}

pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .tls_certs_only([])
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

pub async fn fetch(client: &reqwest::Client, url: &str, headers: &[(&str, &str)]) -> Got {
    use futures_util::StreamExt;
    let mut req = client.get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let mut body = Vec::new();
    let mut broken = false;
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => body.extend_from_slice(&c),
            Err(_) => {
                broken = true;
                break;
            }
        }
    }
    Got {
        status,
        headers,
        body,
        broken,
    }
}

/// The sample archive: `hello` (1 MB), `big` (3 MiB, for streaming), `tool` depending on
/// `hello`; by-hash indices as Debian has them.
pub fn sample(dir: &std::path::Path) -> TestArchive {
    let mut a = TestArchive::new(dir.join("upstream"));
    a.suite("stable").acquire_by_hash = true;
    a.add_package(
        "hello",
        "1.0-1",
        "amd64",
        "main",
        &noise("hello", HELLO_LEN),
    );
    a.add_package("big", "2.0-1", "amd64", "main", &noise("big", BIG_LEN));
    a.add_package("tool", "0.1", "amd64", "main", &noise("tool", 5000))
        .extra_fields
        .push(("Depends".into(), "hello (>= 1.0)".into()));
    a
}

impl Edge {
    /// Builds [`sample`] (after `edit`), serves it and a cache of it; `cache_toml` adds keys
    /// to the `[[cache]]` table.
    pub fn start(edit: impl FnOnce(&mut TestArchive), cache_toml: &str) -> Edge {
        let tmp = tempfile::tempdir().unwrap();
        let mut archive = sample(tmp.path());
        edit(&mut archive);
        archive.build();
        let upstream = Upstream::serve(archive.dir());
        let keyring = tmp.path().join("keys/archive.gpg");
        archive.key().write_keyring(&keyring);
        let config = tmp.path().join("mirror.toml");
        std::fs::write(
            &config,
            format!(
                "root = {:?}\n[sync]\nretry_delay_ms = 0\ntimeout_secs = 10\n\n[[cache]]\nname = \"{CACHE}\"\nupstream = \"{}\"\nkeyring = {:?}\n{cache_toml}\n",
                tmp.path().join("root"),
                upstream.base_url(),
                keyring
            ),
        )
        .unwrap();
        let server = serve(&config);
        Edge {
            tmp,
            archive,
            upstream: Some(upstream),
            keyring,
            config,
            server,
        }
    }

    /// The kit's upstream (panics once stopped).
    pub fn up(&self) -> &Upstream {
        self.upstream.as_ref().expect("upstream running")
    }

    /// Stops the upstream server: every later request to it is refused.
    pub fn stop_upstream(&mut self) {
        self.upstream = None;
    }

    /// `http://ADDR/edge/`
    pub fn url(&self) -> String {
        format!("{}{CACHE}/", self.server.url)
    }

    /// The cache's tree, `<tmp>/root/edge`.
    pub fn tree(&self) -> PathBuf {
        self.tmp.path().join("root").join(CACHE)
    }

    /// A private apt for `stable main` through the cache.
    pub fn apt(&self, name: &str) -> Apt {
        Apt::new(
            &self.tmp.path().join(name),
            &self.url(),
            "stable",
            &["main"],
            &self.keyring,
        )
    }

    /// GET `<cache>/<rel>` with extra headers.
    pub fn get(&self, rel: &str, headers: &[(&str, &str)]) -> Got {
        let url = format!("{}{rel}", self.url());
        rt().block_on(async { fetch(&client(), &url, headers).await })
    }

    /// Upstream requests whose path ends with `suffix`.
    pub fn upstream_hits(&self, suffix: &str) -> usize {
        self.up().requests_to(suffix).len()
    }

    /// A sample of `/metrics` (`name{labels}`), if present.
    pub fn metric(&self, sample: &str) -> Option<f64> {
        let url = format!("{}metrics", self.server.url);
        let text = rt()
            .block_on(async { fetch(&client(), &url, &[]).await })
            .body;
        String::from_utf8_lossy(&text)
            .lines()
            .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
    }

    pub fn requests(&self, result: &str) -> f64 {
        self.metric(&format!(
            "debsync_cache_requests_total{{cache=\"{CACHE}\",result=\"{result}\"}}"
        ))
        .unwrap_or(0.0)
    }

    /// Every file under the cache's tree that is not private: relative path → SHA256.
    pub fn stored(&self) -> std::collections::BTreeMap<String, String> {
        let mut out = std::collections::BTreeMap::new();
        let tree = self.tree();
        for rel in walk_files(&tree) {
            if !rel.split('/').any(|c| c.starts_with('.')) {
                let bytes = std::fs::read(tree.join(&rel)).unwrap();
                out.insert(rel, sha256_hex(&bytes));
            }
        }
        out
    }

    /// Files under the tree with a private (`.…`) name outside `.debsync/`: temp files.
    pub fn temp_files(&self) -> Vec<String> {
        walk_files(&self.tree())
            .into_iter()
            .filter(|rel| {
                !rel.starts_with(".debsync/") && rel.split('/').any(|c| c.starts_with('.'))
            })
            .collect()
    }

    /// Restarts `debsync serve` on the same config (empty in-memory state).
    pub fn restart(&mut self) {
        self.server = serve(&self.config);
    }
}

pub fn serve(config: &std::path::Path) -> DebsyncServer {
    let args = [
        "--config",
        &*config.to_string_lossy(),
        "--listen",
        "127.0.0.1:0",
    ];
    spawn_serve(&args).unwrap()
}

/// Polls `cond` until true or 20 s pass.
pub fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20)); // polling an observable, not synchronising
    }
    cond()
}

/// A running `debsync daemon` (killed on drop) and its base URL.
pub struct DaemonProc {
    child: std::process::Child,
    pub url: String,
}

impl Drop for DaemonProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `debsync daemon --config <config> --listen 127.0.0.1:0`, once it printed its address.
pub fn daemon(config: &std::path::Path) -> DaemonProc {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let mut child = Command::new(debsync_bin())
        .args(["daemon", "--config", &*config.to_string_lossy()])
        .args(["--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn debsync daemon");
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = std::io::BufReader::new(out).lines();
        let _ = tx.send(lines.next());
        for _ in lines {}
    });
    let first = rx.recv_timeout(Duration::from_secs(30));
    let Ok(Some(Ok(line))) = first else {
        let _ = child.kill();
        panic!("no `listening on` line: {first:?}");
    };
    let url = format!(
        "{}/",
        line.trim_start_matches("listening on ")
            .trim_end_matches('/')
    );
    DaemonProc { child, url }
}
