//! The HTTP client: retries with backoff, resume with `Range`, and hashing while streaming.
//!
//! Every download has an expected size and SHA256 (from a verified Release or from an index it
//! lists), so a body is checked as it arrives: a byte past the expected size stops the transfer,
//! and the file only gets its final name once the hash matched. Files are written with plain
//! blocking writes from the async task: they land in the page cache in microseconds, and the
//! durability barrier is one `syncfs` before the swap, not an fsync per file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::header::{CONTENT_RANGE, RANGE, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use sha2::Digest;

use crate::archive::Sha256;
use crate::config::SyncConfig;

pub(crate) mod pipeline;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{url}: not found (404)")]
    NotFound { url: String },
    #[error("{url}: HTTP {status}")]
    Status {
        url: String,
        status: StatusCode,
        retry_after: Option<Duration>,
    },
    #[error("{url}: {}", error_chain(.source))]
    Network { url: String, source: reqwest::Error },
    /// No answer on a pipelined connection (connect, send or the response head failed).
    #[error("{url}: {source}")]
    Connection { url: String, source: std::io::Error },
    #[error(
        "upstream down: {failures} requests in a row got no answer or a server error; stopped instead of retrying every file"
    )]
    UpstreamDown { failures: u64 },
    #[error(
        "{url}: timed out: {got} bytes in {secs} s is below the minimum rate of {min_rate} bytes/s (sync.min_rate)"
    )]
    TooSlow {
        url: String,
        got: u64,
        secs: u64,
        min_rate: u64,
    },
    #[error("{url}: transfer incomplete after {got} of {expected} bytes ({reason})")]
    Truncated {
        url: String,
        got: u64,
        expected: u64,
        reason: String,
    },
    #[error("{url}: larger than debsync's limit of {max} bytes for this kind of file")]
    OverLimit { url: String, max: u64 },
    #[error("{url}: body is larger than the {expected} bytes the index lists")]
    TooLarge { url: String, expected: u64 },
    #[error("{url}: SHA256 mismatch: expected {expected}, got {actual}")]
    HashMismatch {
        url: String,
        expected: Sha256,
        actual: Sha256,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("HTTP client setup: {0}")]
    Client(reqwest::Error),
}

impl FetchError {
    /// Whether another attempt may succeed: server-side trouble, broken transfers and corrupt
    /// bodies (a proxy or a mirror mid-update) are retried; a 404 or a local disk error is not.
    pub fn is_transient(&self) -> bool {
        match self {
            FetchError::Status { status, .. } => {
                status.is_server_error()
                    || *status == StatusCode::REQUEST_TIMEOUT
                    || *status == StatusCode::TOO_MANY_REQUESTS
            }
            FetchError::Network { .. }
            | FetchError::Connection { .. }
            | FetchError::TooSlow { .. }
            | FetchError::Truncated { .. }
            | FetchError::TooLarge { .. }
            | FetchError::HashMismatch { .. } => true,
            FetchError::NotFound { .. }
            | FetchError::UpstreamDown { .. }
            | FetchError::OverLimit { .. }
            | FetchError::Io { .. }
            | FetchError::Client(_) => false,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            FetchError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// What a downloaded file must be.
#[derive(Debug, Clone, Copy)]
pub struct Expected {
    /// The exact size, or only a cap when `exact` is false (installer `SHA256SUMS` list no
    /// sizes; the hash still decides).
    pub size: u64,
    pub sha256: Sha256,
    pub exact: bool,
}

impl Expected {
    pub fn new(size: u64, sha256: Sha256) -> Expected {
        Expected {
            size,
            sha256,
            exact: true,
        }
    }

    /// A file known by its hash alone, refused once it grows past `cap`.
    pub fn hash_only(sha256: Sha256, cap: u64) -> Expected {
        Expected {
            size: cap,
            sha256,
            exact: false,
        }
    }
}

/// The retry decision, pure so it can be tested without a clock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryPolicy {
    pub retries: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// Delay before attempt `attempt + 1` (attempt counts from 0), or `None` to give up.
    /// Exponential with ±50 % jitter, capped, and never shorter than the server's `Retry-After`
    /// (itself capped, so a hostile server cannot park a run for hours).
    pub(crate) fn delay(&self, attempt: u32, err: &FetchError, jitter: f64) -> Option<Duration> {
        if attempt >= self.retries || !err.is_transient() {
            return None;
        }
        let exp = self.base_delay.saturating_mul(1u32 << attempt.min(16));
        let jittered = exp
            .mul_f64(0.5 + jitter.clamp(0.0, 1.0))
            .min(self.max_delay);
        Some(match err.retry_after() {
            Some(ra) => jittered.max(ra.min(self.max_delay)),
            None => jittered,
        })
    }
}

/// A cheap jitter source in [0, 1): hashing with a per-process random key is enough here
/// (retry delays, and the daemon's schedule).
pub(crate) fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// A shared HTTP client for one sync run; clones share the connection pool and counters.
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    policy: RetryPolicy,
    received: Arc<AtomicU64>,
    pace: Pace,
    /// Requests in a row that got no answer or a 5xx, over the whole run (the circuit breaker).
    connect_failures: Arc<AtomicU64>,
    timeout: Duration,
}

/// What debsync calls itself in requests.
pub(crate) const USER_AGENT: &str = concat!("debsync/", env!("CARGO_PKG_VERSION"));

/// How long an unused connection to upstream stays open.
const IDLE_CONNECTION: Duration = Duration::from_secs(1);

/// Failed requests in a row (no answer, or a 5xx) after which upstream counts as down: the
/// run stops instead of retrying every remaining file (hours, on a large mirror).
pub(crate) const UPSTREAM_DOWN_AFTER: u64 = 16;

/// The overall deadline of one request as a rate: after `grace` (the request timeout) the
/// average rate since the request started must stay at or above `min_rate`. The idle-read
/// timeout alone lets an upstream sending a byte a second hold a transfer for ever.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pace {
    pub grace: Duration,
    pub min_rate: u64,
}

impl Pace {
    /// Whether `got` bytes after `elapsed` is too slow to go on.
    pub(crate) fn too_slow(&self, got: u64, elapsed: Duration) -> bool {
        self.min_rate > 0
            && elapsed > self.grace
            && (got as f64) < self.min_rate as f64 * elapsed.as_secs_f64()
    }

    pub(crate) fn check(
        &self,
        url: &Url,
        got: u64,
        started: std::time::Instant,
    ) -> Result<(), FetchError> {
        let elapsed = started.elapsed();
        if self.too_slow(got, elapsed) {
            return Err(FetchError::TooSlow {
                url: shown(url),
                got,
                secs: elapsed.as_secs(),
                min_rate: self.min_rate,
            });
        }
        Ok(())
    }
}

impl Fetcher {
    /// `https`: whether TLS will be needed. A plain-http upstream skips loading the system's
    /// CA store, which costs more than the whole no-op run otherwise does.
    pub fn new(cfg: &SyncConfig, https: bool) -> Result<Fetcher, FetchError> {
        // rustls needs a process-wide crypto provider; installing twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder();
        if !https {
            builder = builder.tls_certs_only([]);
        }
        let client = builder
            .user_agent(USER_AGENT)
            .connect_timeout(cfg.timeout())
            .read_timeout(cfg.timeout())
            .pool_max_idle_per_host(cfg.concurrency.max(1))
            // Index downloads leave connections whose read buffers grew to ~400 KiB; while
            // the pipelined pool stage runs beside them they would only hold that memory.
            .pool_idle_timeout(IDLE_CONNECTION)
            .no_proxy()
            .build()
            .map_err(FetchError::Client)?;
        Ok(Fetcher {
            client,
            policy: RetryPolicy {
                retries: cfg.retries,
                base_delay: cfg.retry_delay(),
                max_delay: Duration::from_secs(60),
            },
            received: Arc::default(),
            connect_failures: Arc::default(),
            pace: Pace {
                grace: cfg.timeout(),
                min_rate: cfg.min_rate,
            },
            timeout: cfg.timeout(),
        })
    }

    /// Bytes received from upstream so far (for the trace file).
    pub fn bytes_received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Runs `op` with the retry policy.
    async fn with_retries<T, F, Fut>(&self, op: F) -> Result<T, FetchError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, FetchError>>,
    {
        self.with_retries_after(None, op).await
    }

    /// [`Fetcher::with_retries`] after a first attempt made elsewhere (the pipeline) failed
    /// with `failed`: the policy, the delays and the attempt count go on from there.
    async fn with_retries_after<T, F, Fut>(
        &self,
        mut failed: Option<FetchError>,
        mut op: F,
    ) -> Result<T, FetchError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, FetchError>>,
    {
        let mut attempt = 0;
        loop {
            if let Some(e) = failed.take() {
                match self.policy.delay(attempt, &e, jitter()) {
                    Some(d) => {
                        tracing::warn!("retrying in {d:?}: {e}");
                        if !d.is_zero() {
                            tokio::time::sleep(d).await;
                        }
                        attempt += 1;
                    }
                    None => return Err(e),
                }
            }
            if let Some(down) = self.upstream_down() {
                return Err(down);
            }
            let result = op().await;
            self.note_outcome(&result);
            match result {
                Ok(v) => return Ok(v),
                Err(e) => failed = Some(e),
            }
        }
    }

    /// Feeds one request's outcome to the circuit breaker.
    fn note_outcome<T>(&self, result: &Result<T, FetchError>) {
        match result {
            Ok(_) => self.note_answer(),
            Err(e) => self.note_error(e),
        }
    }

    /// A request upstream answered: the breaker's count starts over.
    pub(crate) fn note_answer(&self) {
        self.connect_failures.store(0, Ordering::Relaxed);
    }

    /// A failed request: no answer, or a server error, means upstream itself is in trouble;
    /// any other failure still is an answer.
    pub(crate) fn note_error(&self, e: &FetchError) {
        match e {
            FetchError::Network { .. } | FetchError::Connection { .. } => {
                self.connect_failures.fetch_add(1, Ordering::Relaxed);
            }
            FetchError::Status { status, .. } if status.is_server_error() => {
                self.connect_failures.fetch_add(1, Ordering::Relaxed);
            }
            _ => self.note_answer(),
        }
    }

    /// Whether the circuit breaker has tripped.
    pub(crate) fn upstream_down(&self) -> Option<FetchError> {
        let failures = self.connect_failures.load(Ordering::Relaxed);
        (failures >= UPSTREAM_DOWN_AFTER).then_some(FetchError::UpstreamDown { failures })
    }

    pub(crate) fn count_received(&self, bytes: u64) {
        self.received.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn pace(&self) -> Pace {
        self.pace
    }

    /// The idle timeout of one read or connect.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Fetches a small file whole (InRelease, Release.gpg). `Ok(None)` on 404.
    pub async fn get_small(&self, url: &Url, max: u64) -> Result<Option<Vec<u8>>, FetchError> {
        let result = self
            .with_retries(|| async {
                let started = std::time::Instant::now();
                let resp = self.send(url, None).await?;
                let mut body = Vec::new();
                let mut stream = resp.bytes_stream();
                while let Some(chunk) = stream.next().await {
                    self.pace.check(url, body.len() as u64, started)?;
                    let chunk = chunk.map_err(|source| FetchError::Network {
                        url: shown(url),
                        source: source.without_url(),
                    })?;
                    if (body.len() + chunk.len()) as u64 > max {
                        return Err(FetchError::OverLimit {
                            url: shown(url),
                            max,
                        });
                    }
                    body.extend_from_slice(&chunk);
                }
                self.received
                    .fetch_add(body.len() as u64, Ordering::Relaxed);
                Ok(body)
            })
            .await;
        match result {
            Ok(b) => Ok(Some(b)),
            Err(FetchError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn send(
        &self,
        url: &Url,
        range_from: Option<u64>,
    ) -> Result<reqwest::Response, FetchError> {
        let mut req = self.client.get(url.clone());
        if let Some(from) = range_from {
            req = req.header(RANGE, format!("bytes={from}-"));
        }
        let resp = req.send().await.map_err(|source| FetchError::Network {
            url: shown(url),
            source: source.without_url(),
        })?;
        let status = resp.status();
        if status == StatusCode::NOT_FOUND || status == StatusCode::GONE {
            return Err(FetchError::NotFound { url: shown(url) });
        }
        if !status.is_success() {
            let retry_after = resp
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            return Err(FetchError::Status {
                url: shown(url),
                status,
                retry_after,
            });
        }
        Ok(resp)
    }

    /// Downloads `url` to `dest` via `.<name>.debsync-tmp` beside it, checking size and SHA256
    /// while streaming. A partial temp file from an earlier attempt or run is resumed with
    /// `Range` after re-hashing its prefix. The caller owns creating `dest`'s directory.
    pub async fn download(&self, url: &Url, dest: &Path, want: Expected) -> Result<(), FetchError> {
        self.download_with(url, dest, want, true, None).await
    }

    /// [`Fetcher::download`] into a directory this run created: no partial file can be there
    /// yet, so the first attempt skips looking for one (a syscall per file on a 60,000-file
    /// first sync).
    pub async fn download_new(
        &self,
        url: &Url,
        dest: &Path,
        want: Expected,
    ) -> Result<(), FetchError> {
        self.download_with(url, dest, want, false, None).await
    }

    /// [`Fetcher::download`] after the pipeline's attempt at it: `failed` is how that attempt
    /// failed (`None`: it was not one the pipeline finishes, e.g. a redirect), and its partial
    /// file, if any, is resumed.
    pub(crate) async fn download_after(
        &self,
        url: &Url,
        dest: &Path,
        want: Expected,
        failed: Option<FetchError>,
    ) -> Result<(), FetchError> {
        self.download_with(url, dest, want, true, failed).await
    }

    /// [`Fetcher::download`] as a task of its own: futures awaited together by one task share
    /// its thread, so a suite's large indices would be received, hashed and written one core
    /// at a time. Dropping the returned future cancels the transfer, as with `download`.
    pub async fn download_in_task(
        &self,
        url: &Url,
        dest: &Path,
        want: Expected,
    ) -> Result<(), FetchError> {
        let (fetcher, task_url, task_dest) = (self.clone(), url.clone(), dest.to_path_buf());
        let mut task = AbortOnDrop(tokio::spawn(async move {
            fetcher.download(&task_url, &task_dest, want).await
        }));
        match (&mut task.0).await {
            Ok(result) => result,
            Err(e) => match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(_) => Err(FetchError::Io {
                    path: dest.to_path_buf(),
                    source: io::Error::new(io::ErrorKind::Interrupted, "transfer cancelled"),
                }),
            },
        }
    }

    async fn download_with(
        &self,
        url: &Url,
        dest: &Path,
        want: Expected,
        may_have_partial: bool,
        failed: Option<FetchError>,
    ) -> Result<(), FetchError> {
        let tmp = temp_path(dest);
        let mut look_for_partial = may_have_partial;
        self.with_retries_after(failed, || {
            let look = std::mem::replace(&mut look_for_partial, true);
            self.download_once(url, dest, &tmp, want, look)
        })
        .await
        .inspect_err(|e| {
            // A corrupt partial is useless; a truncated one is kept for the next run's resume.
            if !matches!(
                e,
                FetchError::Truncated { .. }
                    | FetchError::Network { .. }
                    | FetchError::Connection { .. }
                    | FetchError::TooSlow { .. }
            ) {
                let _ = fs::remove_file(&tmp);
            }
        })
    }

    async fn download_once(
        &self,
        url: &Url,
        dest: &Path,
        tmp: &Path,
        want: Expected,
        look_for_partial: bool,
    ) -> Result<(), FetchError> {
        let io = |source| FetchError::Io {
            path: tmp.to_path_buf(),
            source,
        };
        let (mut hasher, mut have) = if look_for_partial {
            resume_state(tmp, want.size).map_err(io)?
        } else {
            (sha2::Sha256::new(), 0)
        };
        let started = std::time::Instant::now();
        let resp = self.send(url, (have > 0).then_some(have)).await?;
        let resumed = have > 0
            && resp.status() == StatusCode::PARTIAL_CONTENT
            && resp
                .headers()
                .get(CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with(&format!("bytes {have}-")));
        if !resumed {
            hasher = sha2::Sha256::new();
            have = 0;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .append(resumed)
            .truncate(!resumed)
            .open(tmp)
            .map_err(io)?;
        let mut stream = resp.bytes_stream();
        let resumed_from = have;
        while let Some(chunk) = stream.next().await {
            if let Err(e) = self.pace.check(url, have - resumed_from, started) {
                // Keep what arrived: the next attempt resumes after it.
                drop(file);
                return Err(e);
            }
            // A body cut short (reset, early close, stall) is a truncation: say how far it got
            // and why, and keep the partial file for a resume.
            let chunk = chunk.map_err(|e| FetchError::Truncated {
                url: shown(url),
                got: have,
                expected: want.size,
                reason: error_chain(&e.without_url()),
            })?;
            if have + chunk.len() as u64 > want.size {
                drop(file);
                let _ = fs::remove_file(tmp);
                return Err(FetchError::TooLarge {
                    url: shown(url),
                    expected: want.size,
                });
            }
            hasher.update(&chunk);
            file.write_all(&chunk).map_err(io)?;
            have += chunk.len() as u64;
            self.count_received(chunk.len() as u64);
        }
        put_in_place(url, file, tmp, dest, want, have, hasher)
    }
}

/// The end of a download whose body has been written to `tmp` (`got` bytes through
/// `hasher`): the checks against what it must be, then the final name. A body short of an
/// exact size stays for a resume; one with the wrong hash is removed.
pub(crate) fn put_in_place(
    url: &Url,
    file: File,
    tmp: &Path,
    dest: &Path,
    want: Expected,
    got: u64,
    hasher: sha2::Sha256,
) -> Result<(), FetchError> {
    if got >= EARLY_WRITEBACK_BYTES {
        start_writeback(&file);
    }
    drop(file);
    if want.exact && got < want.size {
        return Err(FetchError::Truncated {
            url: shown(url),
            got,
            expected: want.size,
            reason: "connection closed early".into(),
        });
    }
    let actual = Sha256(hasher.finalize().into());
    if actual != want.sha256 {
        let _ = fs::remove_file(tmp);
        return Err(FetchError::HashMismatch {
            url: shown(url),
            expected: want.sha256,
            actual,
        });
    }
    fs::rename(tmp, dest).map_err(|source| FetchError::Io {
        path: dest.to_path_buf(),
        source,
    })
}

/// A task that is cancelled when its handle is dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Files at least this large have their writeback started as soon as they are complete.
const EARLY_WRITEBACK_BYTES: u64 = 1 << 20;

/// Asks the kernel to start writing a file's dirty pages now, without waiting: the barrier
/// before the swap then finds large files (indices, big packages) already on their way to
/// disk instead of flushing them all at once. Advisory; failure changes nothing.
pub(crate) fn start_writeback(file: &File) {
    use std::os::fd::AsRawFd;
    // SAFETY: a plain syscall on a file descriptor we own for the duration of the call.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
    }
}

/// A URL as errors and logs show it: without the user name and password an upstream URL may
/// carry (`http://user:secret@host/` → `http://***@host/`).
pub(crate) fn shown(url: &Url) -> String {
    if url.username().is_empty() && url.password().is_none() {
        return url.to_string();
    }
    let mut clean = url.clone();
    let _ = clean.set_password(None);
    let _ = clean.set_username("***");
    clean.to_string()
}

/// An error and its causes on one line: reqwest's own message ("error decoding response
/// body") says little without the hyper/io error under it.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let msg = s.to_string();
        if !out.contains(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        cur = s.source();
    }
    out
}

pub(crate) use crate::tree::{is_temp_name, temp_path};

/// Hashes an existing partial file so the download can continue after it.
fn resume_state(tmp: &Path, size: u64) -> std::io::Result<(sha2::Sha256, u64)> {
    let file = match File::open(tmp) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((sha2::Sha256::new(), 0)),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    if len == 0 || len >= size {
        return Ok((sha2::Sha256::new(), 0));
    }
    digest_reader(file)
}

/// Streams a reader through a digest: the one hashing loop shared by resume, local checks
/// and SHA512 by-hash checks.
pub(crate) fn digest_reader<D: Digest>(mut r: impl Read) -> std::io::Result<(D, u64)> {
    let mut hasher = D::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut len = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        len += n as u64;
    }
    Ok((hasher, len))
}

/// SHA256 and length of a local file, streamed.
pub(crate) fn hash_file(path: &Path) -> std::io::Result<(Sha256, u64)> {
    let (hasher, len) = digest_reader::<sha2::Sha256>(File::open(path)?)?;
    Ok((Sha256(hasher.finalize().into()), len))
}

#[cfg(test)]
mod pace_tests {
    use super::*;

    #[test]
    fn pace_allows_the_grace_period_then_wants_the_rate() {
        let pace = Pace {
            grace: Duration::from_secs(60),
            min_rate: 1024,
        };
        let s = Duration::from_secs;
        assert!(!pace.too_slow(0, s(59)), "within the grace period");
        assert!(pace.too_slow(61, s(61)), "a byte a second");
        assert!(!pace.too_slow(1024 * 120, s(100)));
        assert!(pace.too_slow(1024 * 99, s(100)));
        let off = Pace {
            min_rate: 0,
            ..pace
        };
        assert!(!off.too_slow(0, s(10_000)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url() -> String {
        "http://127.0.0.1/x".to_string()
    }

    #[test]
    fn retry_decisions() {
        let p = RetryPolicy {
            retries: 3,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        let e500 = FetchError::Status {
            url: url(),
            status: StatusCode::INTERNAL_SERVER_ERROR,
            retry_after: None,
        };
        assert_eq!(p.delay(0, &e500, 0.5), Some(Duration::from_millis(100)));
        assert_eq!(p.delay(2, &e500, 0.5), Some(Duration::from_millis(400)));
        assert_eq!(p.delay(3, &e500, 0.5), None, "retries exhausted");
        assert_eq!(p.delay(9, &e500, 0.5), None);
        let e404 = FetchError::NotFound { url: url() };
        assert_eq!(p.delay(0, &e404, 0.5), None, "404 is final");
        let e503 = FetchError::Status {
            url: url(),
            status: StatusCode::SERVICE_UNAVAILABLE,
            retry_after: Some(Duration::from_secs(3600)),
        };
        assert_eq!(
            p.delay(0, &e503, 0.0),
            Some(Duration::from_secs(1)),
            "Retry-After honoured but capped"
        );
        let e400 = FetchError::Status {
            url: url(),
            status: StatusCode::BAD_REQUEST,
            retry_after: None,
        };
        assert_eq!(p.delay(0, &e400, 0.5), None);
    }

    #[test]
    fn jitter_in_range() {
        for _ in 0..100 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j));
        }
    }

    #[test]
    fn temp_names() {
        let t = temp_path(Path::new("/m/pool/a/b.deb"));
        assert_eq!(t, Path::new("/m/pool/a/.b.deb.debsync-tmp"));
        assert!(is_temp_name(".b.deb.debsync-tmp"));
        assert!(!is_temp_name("b.deb"));
    }

    #[test]
    fn resume_state_hashes_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t");
        fs::write(&p, b"hello").unwrap();
        let (h, n) = resume_state(&p, 10).unwrap();
        assert_eq!(n, 5);
        assert_eq!(Sha256(h.finalize().into()), Sha256::digest(b"hello"));
        // A partial as long as the whole is not a partial: start over.
        assert_eq!(resume_state(&p, 5).unwrap().1, 0);
        assert_eq!(resume_state(&dir.path().join("none"), 5).unwrap().1, 0);
    }

    /// A download run as its own task is cancelled with the future that awaits it, as an
    /// inline one is: the task's state (here a sender) is dropped, or the test hangs.
    #[tokio::test]
    async fn a_task_is_cancelled_with_its_handle() {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = AbortOnDrop(tokio::spawn(async move {
            let _held = tx;
            std::future::pending::<()>().await
        }));
        drop(task);
        assert!(rx.await.is_err(), "the sender went with the task");
    }
}
