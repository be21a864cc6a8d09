//! Process-wide counters, lock-free, rendered in the Prometheus text format by `ops.rs`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Counters shared by every connection and request.
pub(super) struct Metrics {
    /// Responses by status code, index `code - 100` for 100..=599.
    by_status: Vec<AtomicU64>,
    bytes_sent: AtomicU64,
    in_flight: AtomicI64,
    connections_open: AtomicI64,
    connections_total: AtomicU64,
    connections_rejected: AtomicU64,
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
    }
}
