//! The edge cache: a pull-through cache of one upstream archive that checks everything it
//! stores against the archive's signature, served at `/<name>/` beside full mirrors.
//!
//! # The story
//! A full mirror copies a whole archive; many sites only want every client's downloads to
//! cross the WAN once. apt-cacher-ng and friends do that, but they trust what upstream sends.
//! Here the chain of trust a full mirror checks ahead of time is checked on demand:
//!
//! 1. **InRelease** (`release.rs`): fetched, verified against the pinned keyring with
//!    [`crate::verify`], and only then written (temp name, rename) to `dists/<suite>/InRelease`.
//!    It is served from the cache for `release_ttl`, then revalidated with `If-None-Match` /
//!    `If-Modified-Since`. A newer signed Release must not be older than the cached one (no
//!    rollback). Upstream unreachable or failing: the cached one is served (stale-if-error,
//!    `X-Debsync-Cache: STALE`, `Warning: 110`, a metric).
//! 2. **Indices** (`index.rs`): a request under `dists/<suite>/` is looked up in that suite's
//!    cached verified Release (by name or by-hash); what Release does not list is a 404. Indices
//!    are stored only under their by-hash name, so a named request always gets the bytes the
//!    current Release vouches for, and a new Release switches every index at once.
//! 3. **Pool files** (`index.rs`): looked up in the pool map built from the cached verified
//!    `Packages`/`Sources` of the current Releases (path key → size and SHA256, compact).
//!    Unlisted: streamed through uncached, or refused (`unlisted = "refuse"`).
//! 4. **Fetch** (`flight.rs`): one download per path however many clients ask (a per-path
//!    in-flight map). The body goes to a temp file beside the target while it is hashed;
//!    clients read that file as it grows, so the first bytes reach them at once, and `Range`
//!    works on a miss. The last byte of any response is held back until the SHA256 matched, so
//!    no client ever receives a complete unverified body. Then rename: nothing unverified ever
//!    has a final name.
//! 5. **Bounds** (`evict.rs`): over `max_size`, the least recently used files go (atime,
//!    set on every hit), never the InRelease or the indices of the current or previous
//!    Release of a suite, so a client mid-update still finds them. `debsync cache prune`
//!    does the same offline and clears temp files of killed runs.
//! 6. **Upstream** (`upstream.rs`): one client, credentials from apt's `auth.conf` or a bearer
//!    token file, sent as sensitive headers and never logged.
//! 7. **Preheat** (`preheat.rs`): the dependency closure of named packages fetched ahead of a
//!    rollout, from `debsync preheat` or `POST /-/preheat/<name>`.
//!
//! A kill -9 at any instant leaves only verified files under final names (temp files are
//! private `.…` names, removed by `prune`).

pub mod config;
mod evict;
mod flight;
mod index;
mod metrics;
pub mod preheat;
mod release;
mod upstream;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use config::{CacheConfig, Unlisted};
pub use evict::{PruneReport, prune};
pub use flight::Flight;

use crate::config::SyncConfig;
use crate::verify::Keyring;
use metrics::CacheMetrics;

/// Why a cache request fails; the server maps each to a status.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// Upstream has no such file, or the verified Release does not list it.
    #[error("not found")]
    NotFound,
    /// A pool file no cached index lists, with `unlisted = "refuse"`.
    #[error("{0}: not listed in any cached verified index (unlisted = \"refuse\")")]
    Refused(String),
    /// Upstream failed (connection, status, timeout) and nothing cached can stand in.
    #[error("upstream: {0}")]
    Upstream(String),
    /// Upstream sent something that fails verification: signature, hash, size, rollback.
    #[error("verification failed: {0}")]
    Verify(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The cache cannot run (keyring unreadable, HTTP client setup).
    #[error("cache setup: {0}")]
    Setup(String),
}

/// How a stored answer came about, for `X-Debsync-Cache`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    Hit,
    /// Fetched (and verified) by this request.
    Miss,
    /// Upstream failed; this is the last verified copy.
    Stale,
}

impl How {
    pub fn header(self) -> &'static str {
        match self {
            How::Hit => "HIT",
            How::Miss => "MISS",
            How::Stale => "STALE",
        }
    }
}

/// What the server sends for a cache path.
pub enum Answer {
    /// A verified file in the cache's tree (`rel` relative to it).
    Stored { rel: PathBuf, how: How },
    /// A download in progress: stream it as it grows.
    Flight(Arc<Flight>),
    /// An unlisted pool file streamed from upstream, not stored.
    Pass(reqwest::Response),
}

/// One `[[cache]]` at run time: shared by every request to it.
pub struct Cache {
    cfg: CacheConfig,
    tree: PathBuf,
    keyring: Result<Keyring, String>,
    upstream: upstream::Upstream,
    suites: release::Suites,
    flights: flight::Flights,
    pub(crate) metrics: CacheMetrics,
    /// Bytes under the tree, once counted (see `evict.rs`).
    usage: evict::Usage,
    /// The bearer token `POST /-/preheat/<name>` must present (`preheat_token_file`).
    preheat_token: Option<String>,
}

impl Cache {
    /// Sets a cache up from its config; nothing touches the network or the tree yet.
    pub fn new(
        cfg: &CacheConfig,
        root: &Path,
        sync: &SyncConfig,
    ) -> Result<Arc<Cache>, CacheError> {
        let keyring = Keyring::load(&cfg.keyrings).map_err(|e| e.to_string());
        let upstream = upstream::Upstream::new(cfg, sync)?;
        let preheat_token = match &cfg.preheat_token_file {
            None => None,
            Some(p) => {
                let token = std::fs::read_to_string(p)
                    .map_err(|e| CacheError::Setup(format!("{}: cannot read: {e}", p.display())))?
                    .trim()
                    .to_string();
                if token.is_empty() {
                    return Err(CacheError::Setup(format!("{}: empty token", p.display())));
                }
                Some(token)
            }
        };
        Ok(Arc::new(Cache {
            preheat_token,
            tree: cfg.tree(root),
            cfg: cfg.clone(),
            keyring,
            upstream,
            suites: release::Suites::default(),
            flights: flight::Flights::default(),
            metrics: CacheMetrics::default(),
            usage: evict::Usage::default(),
        }))
    }

    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    pub fn tree(&self) -> &Path {
        &self.tree
    }

    /// Whether `presented` (an `Authorization` value) carries the preheat token; always false
    /// when the cache has none. Compared in constant time.
    pub fn preheat_allowed(&self, presented: Option<&str>) -> bool {
        let (Some(want), Some(got)) = (&self.preheat_token, presented) else {
            return false;
        };
        let Some(got) = got.strip_prefix("Bearer ") else {
            return false;
        };
        let (a, b) = (want.as_bytes(), got.trim().as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    fn keyring(&self) -> Result<&Keyring, CacheError> {
        self.keyring
            .as_ref()
            .map_err(|e| CacheError::Setup(e.clone()))
    }

    /// Answers one request path (relative to the cache, already sanitised by the server:
    /// no `..`, no private `.` names).
    pub async fn resolve(self: &Arc<Self>, rel: &str) -> Result<Answer, CacheError> {
        self.suites.load_known(self).await;
        let answer = match classify(rel) {
            Kind::InRelease { suite } => {
                let (_, how) = self.suites.current(self, suite).await?;
                Ok(Answer::Stored {
                    rel: PathBuf::from(rel),
                    how,
                })
            }
            Kind::Index { suite, path } => index::resolve_index(self, suite, path).await,
            Kind::Pool => index::resolve_pool(self, rel).await,
        };
        match &answer {
            Ok(Answer::Stored { how: How::Hit, .. }) => self.metrics.hit(),
            Ok(Answer::Stored {
                how: How::Stale, ..
            }) => self.metrics.stale(),
            Ok(Answer::Stored { how: How::Miss, .. }) | Ok(Answer::Flight(_)) => {
                self.metrics.miss()
            }
            Ok(Answer::Pass(_)) => self.metrics.pass(),
            Err(_) => self.metrics.error(),
        }
        answer
    }

    /// Appends the Prometheus samples of every cache (each family declared once).
    pub fn render_metrics(caches: &[Arc<Cache>], out: &mut String) {
        let samples: Vec<_> = caches
            .iter()
            .map(|c| (c.name(), &c.metrics, c.usage.bytes()))
            .collect();
        metrics::render(&samples, out);
    }

    /// A hit on a stored file: its atime moves to now (the LRU order), at most once a minute.
    pub fn touched(&self, path: &Path) {
        evict::touch(path);
    }
}

/// What a request path is.
#[derive(Debug, PartialEq, Eq)]
enum Kind<'a> {
    /// `dists/<suite>/InRelease`.
    InRelease { suite: &'a str },
    /// Anything else under `dists/<suite>/`.
    Index { suite: &'a str, path: &'a str },
    /// Anything outside `dists/`: a pool file (or a file an index names elsewhere).
    Pool,
}

fn classify(rel: &str) -> Kind<'_> {
    let Some(rest) = rel.strip_prefix("dists/") else {
        return Kind::Pool;
    };
    match rest.split_once('/') {
        Some((suite, "InRelease")) => Kind::InRelease { suite },
        Some((suite, path)) if !path.is_empty() => Kind::Index { suite, path },
        _ => Kind::Index {
            suite: rest,
            path: "",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_kinds() {
        assert_eq!(
            classify("dists/stable/InRelease"),
            Kind::InRelease { suite: "stable" }
        );
        assert_eq!(
            classify("dists/stable/main/binary-amd64/Packages.xz"),
            Kind::Index {
                suite: "stable",
                path: "main/binary-amd64/Packages.xz"
            }
        );
        assert_eq!(classify("pool/main/h/hello/hello_1_amd64.deb"), Kind::Pool);
        assert_eq!(
            classify("dists/stable"),
            Kind::Index {
                suite: "stable",
                path: ""
            }
        );
    }
}
