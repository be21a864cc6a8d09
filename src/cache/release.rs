//! Each suite's verified Release: fetched, verified and stored before anything of the suite is
//! served, revalidated after the TTL, and served stale when upstream fails.
//!
//! Per suite, one revalidation at a time (an async lock), so a hundred clients running
//! `apt-get update` at once cost one conditional request. The steps of [`Suites::current`]:
//! fresh in memory → answer; else take the suite's lock → (first use) load and re-verify the
//! stored InRelease → conditional GET with the stored validators → 304: fresh again; 200:
//! verify, refuse a rollback, store (temp + rename), new generation; upstream failing: the
//! stored generation, marked stale.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use reqwest::StatusCode;
use reqwest::header::{
    ETAG, HeaderMap, HeaderValue, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED,
};
use serde::{Deserialize, Serialize};

use super::index::PoolMap;
use super::{Cache, CacheError, How};
use crate::verify::{VerifiedRelease, verify_inrelease};

/// Largest InRelease accepted (Debian's is about 200 KiB).
const MAX_INRELEASE: usize = 16 << 20;

/// A revalidation that takes longer counts as an upstream failure: the cached InRelease is
/// served instead (well within the server's time limit for a response head).
const REVALIDATE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A suite's Release as verified at one moment, with what was learnt from its indices.
pub(super) struct Generation {
    pub suite: String,
    pub verified: VerifiedRelease,
    checked: Mutex<Option<Instant>>,
    /// Pool files of this generation's cached Packages/Sources.
    pub pool: Mutex<PoolMap>,
}

impl Generation {
    fn new(suite: &str, verified: VerifiedRelease, checked: Option<Instant>) -> Generation {
        Generation {
            suite: suite.to_string(),
            verified,
            checked: Mutex::new(checked),
            pool: Mutex::new(PoolMap::default()),
        }
    }

    fn fresh(&self, ttl: std::time::Duration) -> bool {
        let checked = *self.checked.lock().unwrap_or_else(|e| e.into_inner());
        checked.is_some_and(|t| t.elapsed() < ttl)
    }

    fn mark_checked(&self) {
        *self.checked.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    }
}

/// The current generation of a suite and the one before it.
type CurrentAndPrevious = (Option<Arc<Generation>>, Option<Arc<Generation>>);

#[derive(Default)]
struct SuiteState {
    lock: tokio::sync::Mutex<()>,
    /// The current generation, and the one before it (clients mid-update may still ask for
    /// its indices: eviction keeps both).
    generations: RwLock<CurrentAndPrevious>,
}

impl SuiteState {
    fn current(&self) -> Option<Arc<Generation>> {
        self.generations
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .clone()
    }

    fn replace(&self, new: Arc<Generation>) {
        let mut g = self.generations.write().unwrap_or_else(|e| e.into_inner());
        let old = g.0.take();
        *g = (Some(new), old);
    }
}

/// The suites of one cache.
#[derive(Default)]
pub(super) struct Suites {
    map: Mutex<HashMap<String, Arc<SuiteState>>>,
    loaded: tokio::sync::OnceCell<()>,
}

/// Upstream's validators of a stored InRelease.
#[derive(Serialize, Deserialize, Default)]
struct Validators {
    etag: Option<String>,
    last_modified: Option<String>,
}

impl Suites {
    fn state(&self, suite: &str) -> Arc<SuiteState> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(suite.to_string()).or_default().clone()
    }

    /// Every current and previous generation (pool lookups, eviction's pinned set).
    pub(super) fn generations(&self) -> Vec<Arc<Generation>> {
        let states: Vec<_> = {
            let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
            map.values().cloned().collect()
        };
        let mut out = Vec::new();
        for s in states {
            let g = s.generations.read().unwrap_or_else(|e| e.into_inner());
            out.extend(g.0.iter().chain(g.1.iter()).cloned());
        }
        out
    }

    /// Once per process: the suites whose InRelease is stored are loaded (and verified again:
    /// the keyring may have changed), so pool files are found after a restart before any
    /// client has asked for an InRelease.
    pub(super) async fn load_known(&self, cache: &Arc<Cache>) {
        self.loaded
            .get_or_init(|| async {
                super::evict::start_counting(cache);
                let dists = cache.tree.join("dists");
                let Ok(entries) = std::fs::read_dir(&dists) else {
                    return;
                };
                for e in entries.flatten() {
                    let suite = e.file_name().to_string_lossy().into_owned();
                    if crate::tree::is_private_name(&suite) {
                        continue;
                    }
                    if let Some(g) = load_stored(cache, &suite) {
                        self.state(&suite).replace(Arc::new(g));
                    }
                }
            })
            .await;
    }

    /// The suite's current generation, revalidated if older than the TTL (see the module doc).
    pub(super) async fn current(
        &self,
        cache: &Cache,
        suite: &str,
    ) -> Result<(Arc<Generation>, How), CacheError> {
        let state = self.state(suite);
        if let Some(g) = state.current()
            && g.fresh(cache.cfg.release_ttl)
        {
            return Ok((g, How::Hit));
        }
        let _one_at_a_time = state.lock.lock().await;
        let current = state.current();
        if let Some(g) = &current
            && g.fresh(cache.cfg.release_ttl)
        {
            return Ok((g.clone(), How::Hit));
        }
        let revalidated = tokio::time::timeout(
            REVALIDATE_TIMEOUT,
            revalidate(cache, suite, current.as_deref()),
        )
        .await
        .unwrap_or_else(|_| {
            Err(CacheError::Upstream(format!(
                "dists/{suite}/InRelease: no complete answer within {REVALIDATE_TIMEOUT:?}"
            )))
        });
        match revalidated {
            Ok(None) => {
                let g = current.ok_or_else(|| CacheError::Upstream("304 without a copy".into()))?;
                g.mark_checked();
                Ok((g, How::Hit))
            }
            Ok(Some(new)) => {
                let new = Arc::new(new);
                state.replace(new.clone());
                Ok((new, How::Miss))
            }
            Err(CacheError::Upstream(why)) => match current {
                Some(g) => {
                    tracing::warn!(
                        "cache {}: {why}; serving the cached {suite} InRelease (stale-if-error)",
                        cache.name()
                    );
                    Ok((g, How::Stale))
                }
                None => Err(CacheError::Upstream(why)),
            },
            Err(e) => Err(e),
        }
    }
}

/// The stored InRelease of `suite`, verified again; `None` when absent or no longer valid.
fn load_stored(cache: &Cache, suite: &str) -> Option<Generation> {
    let path = cache.tree.join("dists").join(suite).join("InRelease");
    let bytes = std::fs::read(&path).ok()?;
    let keyring = cache.keyring().ok()?;
    match verify_inrelease(&bytes, keyring, &path.display().to_string()) {
        Ok(v) => Some(Generation::new(suite, v, None)),
        Err(e) => {
            tracing::warn!("cache {}: stored {e}; fetching it again", cache.name());
            None
        }
    }
}

/// A conditional GET of the suite's InRelease: `None` for 304, else the new verified
/// generation, already stored.
async fn revalidate(
    cache: &Cache,
    suite: &str,
    current: Option<&Generation>,
) -> Result<Option<Generation>, CacheError> {
    let rel = format!("dists/{suite}/InRelease");
    let url = crate::fetch::shown(&cache.upstream.url(&rel));
    let dest = cache.tree.join(&rel);
    let validators_path = crate::tree::cache_validators(&cache.tree, suite);
    let mut headers = HeaderMap::new();
    if current.is_some() {
        let stored: Validators = std::fs::read(&validators_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let header = |v: &Option<String>| v.as_deref().and_then(|v| HeaderValue::from_str(v).ok());
        if let Some(v) = header(&stored.etag) {
            headers.insert(IF_NONE_MATCH, v);
        }
        if let Some(v) = header(&stored.last_modified) {
            headers.insert(IF_MODIFIED_SINCE, v);
        }
    }
    cache.metrics.upstream_request();
    let resp = cache.upstream.get(&rel, headers).await?;
    if resp.status() == StatusCode::NOT_MODIFIED {
        return if current.is_some() {
            Ok(None)
        } else {
            Err(CacheError::Upstream(format!(
                "{url}: 304 to an unconditional request"
            )))
        };
    }
    let text = |name| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let validators = Validators {
        etag: text(ETAG),
        last_modified: text(LAST_MODIFIED),
    };
    let mut body = Vec::new();
    let mut stream = resp.bytes_stream();
    use futures_util::StreamExt;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            CacheError::Upstream(format!(
                "{url}: {}",
                crate::fetch::error_chain(&e.without_url())
            ))
        })?;
        if body.len() + chunk.len() > MAX_INRELEASE {
            return Err(CacheError::Verify(format!(
                "{url}: larger than {MAX_INRELEASE} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    cache.metrics.upstream_bytes(body.len() as u64);
    let keyring = cache.keyring()?;
    let verified = verify_inrelease(&body, keyring, &url).map_err(|e| {
        cache.metrics.verify_failure();
        tracing::warn!("cache {}: {e}; nothing stored", cache.name());
        CacheError::Verify(e.to_string())
    })?;
    if let Some(old) = current
        && let (Some(new_date), Some(old_date)) =
            (verified.release().date, old.verified.release().date)
        && new_date < old_date
    {
        cache.metrics.verify_failure();
        return Err(CacheError::Verify(format!(
            "{url}: Date {new_date} is older than the cached Release's {old_date} (rollback refused)"
        )));
    }
    let io = |path: &std::path::Path| {
        let path = path.to_path_buf();
        move |source| CacheError::Io { path, source }
    };
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    crate::sync::write_replace(&dest, &body).map_err(io(&dest))?;
    if let Some(parent) = validators_path.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    let json = serde_json::to_vec(&validators).unwrap_or_default();
    if let Err(e) = crate::sync::write_replace(&validators_path, &json) {
        tracing::warn!("{}: {e}", validators_path.display());
    }
    Ok(Some(Generation::new(suite, verified, Some(Instant::now()))))
}

/// Paths (relative to the tree) eviction must keep: every suite's InRelease and the by-hash
/// indices its current and previous Release list.
pub(super) fn pinned(cache: &Cache) -> HashSet<String> {
    let mut out = HashSet::new();
    for g in cache.suites.generations() {
        out.insert(format!("dists/{}/InRelease", g.suite));
        for f in &g.verified.release().files {
            out.insert(super::index::by_hash_rel(
                &g.suite,
                f.path.as_str(),
                &f.sha256,
            ));
        }
    }
    out
}
