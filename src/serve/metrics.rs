//! Process-wide counters, lock-free, rendered in the Prometheus text format by `ops.rs`.
//!
//! The request-duration histogram costs a request two relaxed atomic adds (its bucket and the
//! sum); buckets are stored per bucket and made cumulative only when rendered.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the request-duration buckets, in microseconds (Prometheus' default
/// buckets from 1 ms, plus 30 s and 60 s for big downloads); `+Inf` is implied.
const BUCKETS_US: [u64; 14] = [
    1_000, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    5_000_000, 10_000_000, 30_000_000, 60_000_000,
];

/// Counters shared by every connection and request.
pub(super) struct Metrics {
    /// Responses by status code, index `code - 100` for 100..=599.
    by_status: Vec<AtomicU64>,
    bytes_sent: AtomicU64,
    in_flight: AtomicI64,
    connections_open: AtomicI64,
    connections_total: AtomicU64,
    connections_rejected: AtomicU64,
    /// Requests by duration bucket (`BUCKETS_US`, then `+Inf`), not cumulative.
    duration_buckets: [AtomicU64; BUCKETS_US.len() + 1],
    duration_sum_us: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            by_status: (100..600).map(|_| AtomicU64::new(0)).collect(),
            bytes_sent: AtomicU64::new(0),
            in_flight: AtomicI64::new(0),
            connections_open: AtomicI64::new(0),
            connections_total: AtomicU64::new(0),
            connections_rejected: AtomicU64::new(0),
            duration_buckets: Default::default(),
            duration_sum_us: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    pub(super) fn response(&self, status: u16) {
        if let Some(c) = self.by_status.get(usize::from(status).wrapping_sub(100)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(super) fn sent(&self, bytes: u64) {
        self.bytes_sent.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(super) fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn request_finished(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// Counts a finished request (head to end of body) in the duration histogram.
    pub(super) fn request_took(&self, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let bucket = BUCKETS_US.partition_point(|&le| le < us);
        self.duration_buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.duration_sum_us.fetch_add(us, Ordering::Relaxed);
    }

    pub(super) fn connection_opened(&self) {
        self.connections_total.fetch_add(1, Ordering::Relaxed);
        self.connections_open.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn connection_closed(&self) {
        self.connections_open.fetch_sub(1, Ordering::Relaxed);
    }

    pub(super) fn connection_rejected(&self) {
        self.connections_rejected.fetch_add(1, Ordering::Relaxed);
    }

    /// Appends the HTTP-level samples.
    pub(super) fn render(&self, out: &mut String) {
        family(
            out,
            "debsync_http_requests_total",
            "counter",
            "HTTP responses sent, by status code.",
        );
        for (i, c) in self.by_status.iter().enumerate() {
            let n = c.load(Ordering::Relaxed);
            if n > 0 {
                let _ = writeln!(
                    out,
                    "debsync_http_requests_total{{code=\"{}\"}} {n}",
                    i + 100
                );
            }
        }
        let scalars: [(&str, &str, &str, i128); 5] = [
            (
                "debsync_http_response_bytes_total",
                "counter",
                "Response body bytes handed to the connections.",
                self.bytes_sent.load(Ordering::Relaxed).into(),
            ),
            (
                "debsync_http_requests_in_flight",
                "gauge",
                "Requests whose response has not finished yet.",
                self.in_flight.load(Ordering::Relaxed).into(),
            ),
            (
                "debsync_http_connections_open",
                "gauge",
                "Client connections currently open.",
                self.connections_open.load(Ordering::Relaxed).into(),
            ),
            (
                "debsync_http_connections_total",
                "counter",
                "Client connections accepted.",
                self.connections_total.load(Ordering::Relaxed).into(),
            ),
            (
                "debsync_http_connections_rejected_total",
                "counter",
                "Connections refused with 503 because the connection limit was reached.",
                self.connections_rejected.load(Ordering::Relaxed).into(),
            ),
        ];
        for (name, kind, help, value) in scalars {
            family(out, name, kind, help);
            let _ = writeln!(out, "{name} {value}");
        }
        self.render_durations(out);
        family(
            out,
            "debsync_build_info",
            "gauge",
            "Always 1; the version of the running binary as a label.",
        );
        let _ = writeln!(
            out,
            "debsync_build_info{{version=\"{}\"}} 1",
            label(env!("CARGO_PKG_VERSION"))
        );
    }

    fn render_durations(&self, out: &mut String) {
        let name = "debsync_http_request_duration_seconds";
        family(
            out,
            name,
            "histogram",
            "Time from the request head to the end of the response body.",
        );
        let mut cumulative = 0;
        for (i, bucket) in self.duration_buckets.iter().enumerate() {
            cumulative += bucket.load(Ordering::Relaxed);
            match BUCKETS_US.get(i) {
                Some(&le) => {
                    let le = le as f64 / 1e6;
                    let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
                }
                None => {
                    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
                }
            }
        }
        let sum = self.duration_sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {cumulative}");
    }
}

/// `# HELP` and `# TYPE` lines of one metric family.
pub(super) fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Escapes a label value (`\`, `"`, newline).
pub(super) fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters() {
        let m = Metrics::default();
        m.response(200);
        m.response(200);
        m.response(404);
        m.response(42); // ignored, not a panic
        m.sent(10);
        let mut s = String::new();
        m.render(&mut s);
        assert!(
            s.contains("debsync_http_requests_total{code=\"200\"} 2\n"),
            "{s}"
        );
        assert!(s.contains("debsync_http_requests_total{code=\"404\"} 1\n"));
        assert!(s.contains("debsync_http_response_bytes_total 10\n"));
        assert!(s.contains("# TYPE debsync_http_requests_in_flight gauge\n"));
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert!(s.contains(&format!(
            "debsync_build_info{{version=\"{}\"}} 1\n",
            env!("CARGO_PKG_VERSION")
        )));
    }

    #[test]
    fn durations_are_cumulative_buckets() {
        let m = Metrics::default();
        m.request_took(Duration::from_micros(1_000)); // on a bound: that bucket (le is <=)
        m.request_took(Duration::from_millis(3));
        m.request_took(Duration::from_secs(100));
        let mut s = String::new();
        m.render(&mut s);
        for line in [
            "debsync_http_request_duration_seconds_bucket{le=\"0.001\"} 1\n",
            "debsync_http_request_duration_seconds_bucket{le=\"0.005\"} 2\n",
            "debsync_http_request_duration_seconds_bucket{le=\"60\"} 2\n",
            "debsync_http_request_duration_seconds_bucket{le=\"+Inf\"} 3\n",
            "debsync_http_request_duration_seconds_count 3\n",
            "debsync_http_request_duration_seconds_sum 100.004\n",
            "# TYPE debsync_http_request_duration_seconds histogram\n",
        ] {
            assert!(s.contains(line), "missing {line:?} in\n{s}");
        }
    }
}
