//! One download per path, however many clients ask, streamed to all of them as it arrives.
//!
//! 1. **Join or start**: the in-flight map (path → [`Flight`]) is looked up under one lock;
//!    the first asker creates the temp file beside the target (a unique private name) and
//!    spawns the download, so it does not depend on that client staying connected.
//! 2. **Wait for upstream's answer**: every asker waits until upstream has answered, so a
//!    404 or an upstream error becomes the client's status instead of a broken body.
//! 3. **Tee**: the download writes each chunk to the temp file and hashes it, then publishes
//!    how far it got on a `watch` channel; each client reads the temp file (positional reads
//!    on a shared handle) up to that point.
//! 4. **Hold back the last byte**: a client gets the last byte of the file only once size and
//!    SHA256 matched, so no response body is ever complete with unverified bytes; a mismatch
//!    ends every body with an error, deletes the temp file, and stores nothing.
//! 5. **Commit**: rename to the final name, publish `Done`, leave the map.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::HeaderMap;
use sha2::Digest;
use tokio::sync::watch;

use super::{Answer, Cache, CacheError, How};
use crate::archive::Sha256;

const CHUNK: u64 = 256 * 1024;

/// What to fetch and what it must be.
pub(super) struct Target {
    /// Where it is stored, relative to the cache's tree (and the in-flight key).
    pub store_rel: String,
    /// What is asked of upstream (a by-hash name, or the file's own).
    pub upstream_rel: String,
    pub size: u64,
    pub sha256: Sha256,
}

/// How far a download got.
#[derive(Clone, Debug)]
enum Progress {
    Connecting,
    Receiving(u64),
    Done,
    Failed(Failure),
}

#[derive(Clone, Debug)]
enum Failure {
    NotFound,
    Upstream(Arc<str>),
    Verify(Arc<str>),
}

impl From<Failure> for CacheError {
    fn from(f: Failure) -> CacheError {
        match f {
            Failure::NotFound => CacheError::NotFound,
            Failure::Upstream(m) => CacheError::Upstream(m.to_string()),
            Failure::Verify(m) => CacheError::Verify(m.to_string()),
        }
    }
}

/// A download in progress that clients read as it grows.
pub struct Flight {
    /// The stored path relative to the tree (its last segment picks the `Content-Type`).
    pub rel: String,
    /// The exact size the verified index gives.
    pub size: u64,
    file: File,
    progress: watch::Receiver<Progress>,
}

#[derive(Default)]
pub(super) struct Flights {
    map: Mutex<HashMap<String, Arc<Flight>>>,
    counter: AtomicU64,
}

impl Flights {
    /// Steps 1 and 2: the flight for `target`, once upstream has answered; a file that became
    /// stored meanwhile is a hit.
    pub(super) async fn fetch(
        &self,
        cache: &Arc<Cache>,
        target: Target,
    ) -> Result<Answer, CacheError> {
        let flight = {
            let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(f) = map.get(&target.store_rel) {
                cache.metrics.coalesced();
                f.clone()
            } else {
                let dest = cache.tree.join(&target.store_rel);
                if dest.is_file() {
                    return Ok(Answer::Stored {
                        rel: target.store_rel.into(),
                        how: How::Hit,
                    });
                }
                let io = |path: &std::path::Path| {
                    let path = path.to_path_buf();
                    move |source| CacheError::Io { path, source }
                };
                let parent = dest.parent().unwrap_or(&cache.tree);
                std::fs::create_dir_all(parent).map_err(io(parent))?;
                let n = self.counter.fetch_add(1, Ordering::Relaxed);
                let tmp =
                    crate::tree::unique_temp_path(&dest, &format!("{}-{n}", std::process::id()));
                let file = File::options()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .open(&tmp)
                    .map_err(io(&tmp))?;
                let reader = file.try_clone().map_err(io(&tmp))?;
                let (tx, rx) = watch::channel(Progress::Connecting);
                let flight = Arc::new(Flight {
                    rel: target.store_rel.clone(),
                    size: target.size,
                    file: reader,
                    progress: rx,
                });
                map.insert(target.store_rel.clone(), flight.clone());
                tokio::spawn(run(cache.clone(), target, tmp, file, tx));
                flight
            }
        };
        let mut rx = flight.progress.clone();
        loop {
            let state = rx.borrow_and_update().clone();
            match state {
                Progress::Connecting => {}
                Progress::Failed(f) => return Err(f.into()),
                Progress::Receiving(_) | Progress::Done => return Ok(Answer::Flight(flight)),
            }
            if rx.changed().await.is_err() && matches!(*rx.borrow(), Progress::Connecting) {
                return Err(CacheError::Upstream("download task ended".into()));
            }
        }
    }
}

/// The download task: steps 3 and 5.
async fn run(
    cache: Arc<Cache>,
    target: Target,
    tmp: std::path::PathBuf,
    file: File,
    tx: watch::Sender<Progress>,
) {
    let result = download(&cache, &target, &file, &tx).await;
    drop(file);
    let dest = cache.tree.join(&target.store_rel);
    let result = result.and_then(|()| {
        std::fs::rename(&tmp, &dest)
            .map_err(|e| Failure::Upstream(format!("{}: cannot store: {e}", dest.display()).into()))
    });
    match result {
        Ok(()) => {
            let _ = tx.send(Progress::Done);
            super::evict::committed(&cache, target.size);
        }
        Err(f) => {
            let _ = std::fs::remove_file(&tmp);
            match &f {
                Failure::Verify(m) => {
                    cache.metrics.verify_failure();
                    tracing::warn!("cache {}: {m}; nothing stored", cache.name());
                }
                Failure::Upstream(m) => tracing::warn!("cache {}: {m}", cache.name()),
                Failure::NotFound => {}
            }
            let _ = tx.send(Progress::Failed(f));
        }
    }
    let mut map = cache.flights.map.lock().unwrap_or_else(|e| e.into_inner());
    map.remove(&target.store_rel);
}

async fn download(
    cache: &Cache,
    target: &Target,
    file: &File,
    tx: &watch::Sender<Progress>,
) -> Result<(), Failure> {
    cache.metrics.upstream_request();
    let url = crate::fetch::shown(&cache.upstream.url(&target.upstream_rel));
    let resp = match cache
        .upstream
        .get(&target.upstream_rel, HeaderMap::new())
        .await
    {
        Ok(r) if r.status() == reqwest::StatusCode::OK => r,
        Ok(r) => {
            return Err(Failure::Upstream(
                format!("{url}: HTTP {}", r.status()).into(),
            ));
        }
        Err(CacheError::NotFound) => return Err(Failure::NotFound),
        Err(e) => return Err(Failure::Upstream(e.to_string().into())),
    };
    if let Some(len) = resp.content_length()
        && len != target.size
    {
        return Err(Failure::Verify(
            format!(
                "{url}: upstream sends {len} bytes, the verified index lists {}",
                target.size
            )
            .into(),
        ));
    }
    let _ = tx.send(Progress::Receiving(0));
    let mut hasher = sha2::Sha256::new();
    let mut have = 0u64;
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| {
            Failure::Upstream(
                format!(
                    "{url}: transfer broke after {have} of {} bytes: {}",
                    target.size,
                    crate::fetch::error_chain(&e.without_url())
                )
                .into(),
            )
        })?;
        if have + chunk.len() as u64 > target.size {
            return Err(Failure::Verify(
                format!(
                    "{url}: larger than the {} bytes the verified index lists",
                    target.size
                )
                .into(),
            ));
        }
        hasher.update(&chunk);
        file.write_all_at(&chunk, have)
            .map_err(|e| Failure::Upstream(format!("{url}: cannot write the cache: {e}").into()))?;
        have += chunk.len() as u64;
        cache.metrics.upstream_bytes(chunk.len() as u64);
        let _ = tx.send(Progress::Receiving(have));
    }
    if have != target.size {
        return Err(Failure::Upstream(
            format!(
                "{url}: transfer ended after {have} of {} bytes",
                target.size
            )
            .into(),
        ));
    }
    let actual = Sha256(hasher.finalize().into());
    if actual != target.sha256 {
        return Err(Failure::Verify(
            format!(
                "{url}: SHA256 mismatch: the verified index lists {}, upstream sent {actual}",
                target.sha256
            )
            .into(),
        ));
    }
    Ok(())
}

impl Flight {
    /// Waits until the download is verified and stored (or failed).
    pub(super) async fn finished(&self) -> Result<(), CacheError> {
        let mut rx = self.progress.clone();
        loop {
            let state = rx.borrow_and_update().clone();
            match state {
                Progress::Done => return Ok(()),
                Progress::Failed(f) => return Err(f.into()),
                Progress::Connecting | Progress::Receiving(_) => {}
            }
            if rx.changed().await.is_err() {
                return match rx.borrow().clone() {
                    Progress::Done => Ok(()),
                    Progress::Failed(f) => Err(f.into()),
                    _ => Err(CacheError::Upstream("download task ended".into())),
                };
            }
        }
    }

    /// Bytes `start..end` as the download makes them available (step 4: the file's last byte
    /// only once it is verified). A failed download ends the stream with an error.
    pub fn body(
        self: Arc<Self>,
        start: u64,
        end: u64,
    ) -> impl futures_util::Stream<Item = io::Result<Bytes>> + Send + 'static {
        let rx = self.progress.clone();
        futures_util::stream::unfold((self, rx, start), move |(flight, mut rx, pos)| async move {
            loop {
                if pos >= end {
                    return None;
                }
                let state = rx.borrow_and_update().clone();
                let ready = match &state {
                    Progress::Done => flight.size,
                    Progress::Receiving(n) => (*n).min(flight.size.saturating_sub(1)),
                    Progress::Connecting => 0,
                    Progress::Failed(f) => {
                        let err = io::Error::other(format!("download failed: {f:?}"));
                        return Some((Err(err), (flight, rx, end)));
                    }
                };
                let upto = ready.min(end);
                if pos < upto {
                    let len = (upto - pos).min(CHUNK) as usize;
                    let mut buf = vec![0u8; len];
                    return match flight.file.read_exact_at(&mut buf, pos) {
                        Ok(()) => Some((Ok(Bytes::from(buf)), (flight, rx, pos + len as u64))),
                        Err(e) => Some((Err(e), (flight, rx, end))),
                    };
                }
                if rx.changed().await.is_err() && !matches!(*rx.borrow(), Progress::Done) {
                    let err = io::Error::other("download ended unfinished");
                    return Some((Err(err), (flight, rx, end)));
                }
            }
        })
    }
}
