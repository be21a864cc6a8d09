//! The outermost middleware: counts every request (in flight, by status, bytes, duration) and
//! writes one combined-log-format line per response: to the access log file when one is
//! configured (`accesslog.rs`, exactly nginx's `combined`), else through `tracing` (target
//! `debsync::access`, with the request time in seconds appended).
//!
//! The line is written when the response body is finished or dropped, so the byte count is
//! what was actually handed to the connection, not what was promised in `Content-Length`.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::Response;
use http_body::{Frame, SizeHint};

use super::App;
use super::datetime::Utc;

/// Step 2 for one request: begun when its head arrives, finished with its response, whose
/// body then reports the bytes sent and writes the line when it ends.
pub(super) struct Observation {
    record: Record,
}

impl Observation {
    pub(super) fn start<B>(
        app: &Arc<App>,
        peer: SocketAddr,
        req: &axum::http::Request<B>,
    ) -> Observation {
        app.metrics.request_started();
        let line = (app.access_log.is_some()
            || tracing::enabled!(target: "debsync::access", tracing::Level::INFO))
        .then(|| LogFields::of(req, peer));
        Observation {
            record: Record {
                app: app.clone(),
                started: Instant::now(),
                status: 0,
                line,
            },
        }
    }

    pub(super) fn finish(self, resp: Response) -> axum::http::Response<Observed> {
        let mut record = self.record;
        record.status = resp.status().as_u16();
        resp.map(|inner| Observed {
            inner,
            bytes: 0,
            record: Some(record),
        })
    }
}

/// What the access line needs from the request (only captured when the line is enabled):
/// cheap clones (the header values share hyper's read buffer), formatted once at the end.
struct LogFields {
    client: std::net::IpAddr,
    method: axum::http::Method,
    uri: axum::http::Uri,
    version: axum::http::Version,
    referer: Option<header::HeaderValue>,
    agent: Option<header::HeaderValue>,
}

impl LogFields {
    fn of<B>(req: &axum::http::Request<B>, peer: SocketAddr) -> LogFields {
        LogFields {
            client: peer.ip(),
            method: req.method().clone(),
            uri: req.uri().clone(),
            version: req.version(),
            referer: req.headers().get(header::REFERER).cloned(),
            agent: req.headers().get(header::USER_AGENT).cloned(),
        }
    }

    /// nginx's `combined` line, without its newline.
    fn line(&self, status: u16, bytes: u64) -> String {
        let mut line = String::with_capacity(192);
        let _ = write!(line, "{} - - [", self.client);
        CLF_NOW.with(|now| line.push_str(now.borrow_mut().get()));
        line.push_str("] \"");
        escape_into(&mut line, self.method.as_str().as_bytes());
        line.push(' ');
        let target = self.uri.path_and_query().map_or("/", |p| p.as_str());
        escape_into(&mut line, target.as_bytes());
        let _ = write!(line, " {:?}\" {status} {bytes} \"", self.version);
        escape_field(&mut line, self.referer.as_ref());
        line.push_str("\" \"");
        escape_field(&mut line, self.agent.as_ref());
        line.push('"');
        line
    }
}

/// The combined-log timestamp of the current second, formatted once a second per thread.
struct ClfClock {
    second: i64,
    text: String,
}

impl ClfClock {
    fn get(&mut self) -> &str {
        let now = Utc::unix_now();
        if now != self.second || self.text.is_empty() {
            self.second = now;
            self.text = Utc::from_unix(now).clf();
        }
        &self.text
    }
}

thread_local! {
    static CLF_NOW: std::cell::RefCell<ClfClock> = const {
        std::cell::RefCell::new(ClfClock {
            second: 0,
            text: String::new(),
        })
    };
}

struct Record {
    app: Arc<App>,
    started: Instant,
    status: u16,
    line: Option<LogFields>,
}

impl Record {
    fn finish(self, bytes: u64) {
        let took = self.started.elapsed();
        let m = &self.app.metrics;
        m.response(self.status);
        m.request_finished();
        m.request_took(took);
        let Some(f) = self.line else {
            return;
        };
        let line = f.line(self.status, bytes);
        match &self.app.access_log {
            Some(log) => log.write(line),
            None => {
                tracing::info!(target: "debsync::access", "{line} {:.3}", took.as_secs_f64());
            }
        }
    }
}

/// A response body that counts what passes through it and logs when it ends or is dropped.
pub(super) struct Observed {
    inner: Body,
    bytes: u64,
    record: Option<Record>,
}

impl http_body::Body for Observed {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let n = data.len() as u64;
                    self.bytes += n;
                    if let Some(r) = &self.record {
                        r.app.metrics.sent(n);
                    }
                }
            }
            Poll::Ready(None) => {
                if let Some(r) = self.record.take() {
                    r.finish(self.bytes);
                }
            }
            Poll::Ready(Some(Err(_))) | Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Observed {
    fn drop(&mut self) {
        if let Some(r) = self.record.take() {
            r.finish(self.bytes);
        }
    }
}

/// A header's value escaped, or `-` when the request had none.
fn escape_field(out: &mut String, value: Option<&header::HeaderValue>) {
    match value {
        Some(v) => escape_into(out, v.as_bytes()),
        None => out.push('-'),
    }
}

/// nginx-style escaping of a log field: `"`, `\` and non-printable bytes become `\xNN`.
fn escape_into(out: &mut String, s: &[u8]) {
    for &b in s {
        if b == b'"' || b == b'\\' || !(0x20..0x7f).contains(&b) {
            let _ = write!(out, "\\x{b:02X}");
        } else {
            out.push(char::from(b));
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn log_fields_are_escaped() {
        let escape = |s: &str| {
            let mut out = String::new();
            super::escape_into(&mut out, s.as_bytes());
            out
        };
        assert_eq!(escape("curl/8 \"x\"\n\\"), "curl/8 \\x22x\\x22\\x0A\\x5C");
        assert_eq!(escape("é"), "\\xC3\\xA9");
    }
}
