//! Counters of one cache, lock-free, rendered into `/metrics` with a `cache` label.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
pub(crate) struct CacheMetrics {
    hits: AtomicU64,
    misses: AtomicU64,
    stale: AtomicU64,
    passed: AtomicU64,
    errors: AtomicU64,
    upstream_requests: AtomicU64,
    upstream_bytes: AtomicU64,
    coalesced: AtomicU64,
    verify_failures: AtomicU64,
    evicted_files: AtomicU64,
    evicted_bytes: AtomicU64,
}

fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

impl CacheMetrics {
    pub(crate) fn hit(&self) {
        add(&self.hits, 1)
    }
    pub(crate) fn miss(&self) {
        add(&self.misses, 1)
    }
    pub(crate) fn stale(&self) {
        add(&self.stale, 1)
    }
    pub(crate) fn pass(&self) {
        add(&self.passed, 1)
    }
    pub(crate) fn error(&self) {
        add(&self.errors, 1)
    }
    pub(crate) fn upstream_request(&self) {
        add(&self.upstream_requests, 1)
    }
    pub(crate) fn upstream_bytes(&self, n: u64) {
        add(&self.upstream_bytes, n)
    }
    pub(crate) fn coalesced(&self) {
        add(&self.coalesced, 1)
    }
    pub(crate) fn verify_failure(&self) {
        add(&self.verify_failures, 1)
    }
    pub(crate) fn evicted(&self, files: u64, bytes: u64) {
        add(&self.evicted_files, files);
        add(&self.evicted_bytes, bytes);
    }

    fn samples(
        &self,
        size: Option<u64>,
    ) -> [(&'static str, &'static str, &'static str, Option<u64>); 7] {
        let get = |c: &AtomicU64| Some(c.load(Ordering::Relaxed));
        [
            (
                "debsync_cache_upstream_requests_total",
                "counter",
                "Requests sent upstream.",
                get(&self.upstream_requests),
            ),
            (
                "debsync_cache_upstream_bytes_total",
                "counter",
                "Body bytes received from upstream.",
                get(&self.upstream_bytes),
            ),
            (
                "debsync_cache_coalesced_total",
                "counter",
                "Requests that joined a download already in flight instead of starting one.",
                get(&self.coalesced),
            ),
            (
                "debsync_cache_verify_failures_total",
                "counter",
                "Upstream files refused: bad signature, hash or size mismatch, rollback.",
                get(&self.verify_failures),
            ),
            (
                "debsync_cache_evicted_files_total",
                "counter",
                "Files evicted to stay under max_size.",
                get(&self.evicted_files),
            ),
            (
                "debsync_cache_evicted_bytes_total",
                "counter",
                "Bytes evicted to stay under max_size.",
                get(&self.evicted_bytes),
            ),
            (
                "debsync_cache_size_bytes",
                "gauge",
                "Bytes the cache holds (absent until first counted).",
                size,
            ),
        ]
    }
}

/// The samples of every cache, each family declared once.
pub(crate) fn render(caches: &[(&str, &CacheMetrics, Option<u64>)], out: &mut String) {
    if caches.is_empty() {
        return;
    }
    let label = |name: &str| name.replace('\\', "\\\\").replace('"', "\\\"");
    let _ = writeln!(
        out,
        "# HELP debsync_cache_requests_total Cache answers by result: hit, miss (fetched and verified), stale (upstream failed, cached copy served), pass (unlisted, not stored), error.\n# TYPE debsync_cache_requests_total counter"
    );
    for (name, m, _) in caches {
        for (result, c) in [
            ("hit", &m.hits),
            ("miss", &m.misses),
            ("stale", &m.stale),
            ("pass", &m.passed),
            ("error", &m.errors),
        ] {
            let _ = writeln!(
                out,
                "debsync_cache_requests_total{{cache=\"{}\",result=\"{result}\"}} {}",
                label(name),
                c.load(Ordering::Relaxed)
            );
        }
    }
    let families = caches[0].1.samples(None);
    for (i, (family, kind, help, _)) in families.iter().enumerate() {
        let _ = writeln!(out, "# HELP {family} {help}\n# TYPE {family} {kind}");
        for (name, m, size) in caches {
            if let Some(v) = m.samples(*size)[i].3 {
                let _ = writeln!(out, "{family}{{cache=\"{}\"}} {v}", label(name));
            }
        }
    }
}
