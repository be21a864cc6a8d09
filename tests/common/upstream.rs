//! `Upstream`: a static HTTP server over a directory, with fault injection switchable at run time.
//!
//! Pipeline of one request: match the fault rules against the path (each matching rule is
//! consumed once) → a `Status` fault answers right away, `IgnoreRange` strips `Range`/`If-Range`
//! → `ServeDir` (Range, conditional requests) → body faults rewrite the response body → the
//! request is logged.
//!
//! The server runs on its own single-threaded tokio runtime on a dedicated thread, so plain
//! `#[test]`s that spawn the `debsync` binary can use it. The listener is bound once on
//! `127.0.0.1:0` and handed as is to `axum::serve`: no port probing. Dropping the `Upstream`
//! stops the runtime (open connections, e.g. a slow drip, are cut).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use futures_util::stream::{self, BoxStream};
use tower_http::services::ServeDir;

/// What to do to a matching request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and a short text body instead of the file (e.g. 500, 503, 404).
    Status(u16),
    /// Send the first `after` body bytes, then end the body cleanly while the original
    /// `Content-Length` stays: the client sees a short read and the connection is closed.
    Truncate { after: usize },
    /// Send the first `after` body bytes, then abort the connection with an error mid-body.
    Reset { after: usize },
    /// Send the body in `chunk`-byte pieces with a pause of `every` before each piece.
    Drip { chunk: usize, every: Duration },
    /// Claim this `Content-Length` while sending the real body.
    ContentLength(u64),
    /// Drop `Range` and `If-Range` from the request: a full `200` instead of a `206`.
    IgnoreRange,
    /// Answer `401` unless the request's `Authorization` header is exactly this value.
    RequireAuth(String),
    /// Hold the request before answering it until the test calls
    /// [`Upstream::release`] with this gate name ([`Upstream::held`] counts the waiting ones):
    /// a run stopped at a known point, without sleeping.
    Hold(String),
}

/// Which request paths a rule applies to (the URL path, starting with `/`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathMatch {
    Any,
    Exact(String),
    Suffix(String),
    Contains(String),
}

impl PathMatch {
    fn matches(&self, path: &str) -> bool {
        match self {
            PathMatch::Any => true,
            PathMatch::Exact(p) => path == p,
            PathMatch::Suffix(s) => path.ends_with(s.as_str()),
            PathMatch::Contains(s) => path.contains(s.as_str()),
        }
    }
}

/// A fault applied to matching requests, for the next `remaining` of them (or forever).
#[derive(Clone, Debug)]
pub struct FaultRule {
    pub path: PathMatch,
    pub fault: Fault,
    /// `None`: forever; `Some(n)`: the next n matching requests, then the rule is spent.
    pub remaining: Option<usize>,
}

impl FaultRule {
    /// A rule for paths ending in `suffix`, forever.
    pub fn suffix(suffix: &str, fault: Fault) -> FaultRule {
        FaultRule {
            path: PathMatch::Suffix(suffix.to_string()),
            fault,
            remaining: None,
        }
    }

    /// A rule for exactly `path` (e.g. `/dists/stable/InRelease`), forever.
    pub fn exact(path: &str, fault: Fault) -> FaultRule {
        FaultRule {
            path: PathMatch::Exact(path.to_string()),
            fault,
            remaining: None,
        }
    }

    /// A rule for paths containing `part`, forever.
    pub fn contains(part: &str, fault: Fault) -> FaultRule {
        FaultRule {
            path: PathMatch::Contains(part.to_string()),
            fault,
            remaining: None,
        }
    }

    /// A rule for every path, forever.
    pub fn any(fault: Fault) -> FaultRule {
        FaultRule {
            path: PathMatch::Any,
            fault,
            remaining: None,
        }
    }

    /// Limits the rule to the next `n` matching requests ("500 twice, then recover").
    pub fn times(mut self, n: usize) -> FaultRule {
        self.remaining = Some(n);
        self
    }
}

/// One served request, as the log records it once the response headers are ready.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    pub status: u16,
    /// The request's `Range` header, if any (before `IgnoreRange` stripped it).
    pub range: Option<String>,
    /// The faults applied to this request.
    pub faults: Vec<Fault>,
}

#[derive(Default)]
struct Shared {
    rules: Mutex<Vec<FaultRule>>,
    log: Mutex<Vec<RequestRecord>>,
    /// Gate name → (released, requests waiting at it).
    gates: Mutex<std::collections::HashMap<String, (bool, usize)>>,
    gate_opened: tokio::sync::Notify,
}

impl Shared {
    /// Waits until gate `name` is released (at once if it already is).
    async fn hold(&self, name: &str) {
        self.gates
            .lock()
            .unwrap()
            .entry(name.to_string())
            .or_default()
            .1 += 1;
        loop {
            let opened = self.gate_opened.notified();
            tokio::pin!(opened);
            opened.as_mut().enable();
            if self.gates.lock().unwrap().get(name).is_some_and(|g| g.0) {
                break;
            }
            opened.await;
        }
        self.gates
            .lock()
            .unwrap()
            .entry(name.to_string())
            .or_default()
            .1 -= 1;
    }

    /// The faults for `path`, consuming one use of every matching rule.
    fn take_faults(&self, path: &str) -> Vec<Fault> {
        let mut rules = self.rules.lock().unwrap();
        let mut out = Vec::new();
        for rule in rules.iter_mut() {
            if rule.remaining == Some(0) || !rule.path.matches(path) {
                continue;
            }
            if let Some(n) = rule.remaining.as_mut() {
                *n -= 1;
            }
            out.push(rule.fault.clone());
        }
        rules.retain(|r| r.remaining != Some(0));
        out
    }
}

/// A running HTTP server over a directory; see the module docs.
pub struct Upstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
    _server: ServerThread,
}

/// An axum app served on `127.0.0.1:<ephemeral>` by a current-thread runtime on its own
/// thread, so plain `#[test]`s can use it. The listener is bound before this returns (no
/// probe-then-bind race); dropping it stops the server and joins the thread.
pub struct ServerThread {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ServerThread {
    pub fn spawn(app: Router) -> ServerThread {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("upstream-{}", addr.port()))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                    tokio::select! {
                        r = axum::serve(listener, app) => r.expect("test server"),
                        _ = stopped => {}
                    }
                });
                rt.shutdown_timeout(Duration::from_secs(1));
            })
            .unwrap();
        ServerThread {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Upstream {
    /// Serves `root` on `127.0.0.1:<ephemeral>`; returns once the socket is listening.
    pub fn serve(root: &Path) -> Upstream {
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .fallback_service(ServeDir::new(root))
            .layer(middleware::from_fn_with_state(shared.clone(), inject));
        let server = ServerThread::spawn(app);
        Upstream {
            addr: server.addr,
            shared,
            _server: server,
        }
    }

    /// `http://127.0.0.1:PORT/`
    pub fn base_url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// `http://127.0.0.1:PORT/<rel>` (`rel` without a leading `/`).
    pub fn url(&self, rel: &str) -> String {
        format!("{}{}", self.base_url(), rel.trim_start_matches('/'))
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Adds a fault rule; it applies to requests that arrive from now on.
    pub fn add_fault(&self, rule: FaultRule) {
        self.shared.rules.lock().unwrap().push(rule);
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        self.shared.rules.lock().unwrap().clear();
    }

    /// Every request so far, in the order their responses started.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.log.lock().unwrap().clone()
    }

    /// The requests whose path ends with `suffix`.
    pub fn requests_to(&self, suffix: &str) -> Vec<RequestRecord> {
        self.requests()
            .into_iter()
            .filter(|r| r.path.ends_with(suffix))
            .collect()
    }

    /// Releases the requests held by [`Fault::Hold`] with this name, and every later one.
    pub fn release(&self, gate: &str) {
        self.shared
            .gates
            .lock()
            .unwrap()
            .entry(gate.to_string())
            .or_default()
            .0 = true;
        self.shared.gate_opened.notify_waiters();
    }

    /// How many requests are waiting at gate `gate` right now.
    pub fn held(&self, gate: &str) -> usize {
        self.shared
            .gates
            .lock()
            .unwrap()
            .get(gate)
            .map_or(0, |g| g.1)
    }

    /// Empties the request log.
    pub fn clear_log(&self) {
        self.shared.log.lock().unwrap().clear();
    }
}

async fn inject(State(shared): State<Arc<Shared>>, mut req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let range = req
        .headers()
        .get(header::RANGE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let faults = shared.take_faults(&path);
    for f in &faults {
        if let Fault::Hold(gate) = f {
            shared.hold(gate).await;
        }
    }
    let is_head = req.method() == axum::http::Method::HEAD;

    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let status = faults.iter().find_map(|f| match f {
        Fault::Status(s) => Some(*s),
        Fault::RequireAuth(want) if authorization.as_deref() != Some(want) => Some(401),
        _ => None,
    });
    let mut resp = if let Some(s) = status {
        let code = StatusCode::from_u16(s).expect("valid status");
        (code, format!("injected {s}\n")).into_response()
    } else {
        if faults.contains(&Fault::IgnoreRange) {
            req.headers_mut().remove(header::RANGE);
            req.headers_mut().remove(header::IF_RANGE);
        }
        next.run(req).await
    };

    if status.is_none() && !is_head {
        for f in &faults {
            resp = apply_body_fault(resp, f);
        }
    }

    shared.log.lock().unwrap().push(RequestRecord {
        method,
        path,
        status: resp.status().as_u16(),
        range,
        faults,
    });
    resp
}

type ByteStream = BoxStream<'static, Result<Bytes, std::io::Error>>;

fn apply_body_fault(resp: Response, fault: &Fault) -> Response {
    let (mut parts, body) = resp.into_parts();
    let data: ByteStream = body
        .into_data_stream()
        .map(|r| r.map_err(std::io::Error::other))
        .boxed();
    let data = match fault {
        Fault::Truncate { after } => limit(data, *after, false),
        Fault::Reset { after } => limit(data, *after, true),
        Fault::Drip { chunk, every } => drip(data, *chunk, *every),
        Fault::ContentLength(n) => {
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(*n));
            // If the claim is longer than the body, the end is "early": flush first.
            data.chain(stream::once(flush_point()).filter_map(|()| async { None }))
                .boxed()
        }
        Fault::Status(_) | Fault::IgnoreRange | Fault::RequireAuth(_) | Fault::Hold(_) => data,
    };
    // A streamed body has no exact size hint, so hyper frames it with the Content-Length header
    // ServeDir (or ContentLength above) set, and cuts the connection when the body ends early.
    Response::from_parts(parts, Body::from_stream(data))
}

/// Passes at most `max` bytes, then ends (or fails, when `fail`).
fn limit(inner: ByteStream, max: usize, fail: bool) -> ByteStream {
    stream::unfold(
        (inner, 0usize, false),
        move |(mut inner, sent, done)| async move {
            if done {
                return None;
            }
            if sent >= max {
                // Let hyper flush what it holds before the body ends: an early end (or an
                // error) makes it drop the connection without writing its buffer.
                flush_point().await;
                if fail {
                    let err =
                        std::io::Error::new(std::io::ErrorKind::ConnectionReset, "injected reset");
                    return Some((Err(err), (inner, sent, true)));
                }
                return None;
            }
            match inner.next().await {
                None => None,
                Some(Err(e)) => Some((Err(e), (inner, sent, true))),
                Some(Ok(mut b)) => {
                    if b.len() > max - sent {
                        b.truncate(max - sent);
                    }
                    let n = b.len();
                    Some((Ok(b), (inner, sent + n, false)))
                }
            }
        },
    )
    .boxed()
}

/// Returns `Pending` a few times (waking itself at once): hyper flushes its write buffer to the
/// socket whenever the body is not ready.
async fn flush_point() {
    for _ in 0..4 {
        tokio::task::yield_now().await;
    }
}

/// Re-chunks the body into `chunk`-byte pieces, sleeping `every` before each.
fn drip(inner: ByteStream, chunk: usize, every: Duration) -> ByteStream {
    let chunk = chunk.max(1);
    stream::unfold(
        (inner, Bytes::new()),
        move |(mut inner, mut buf)| async move {
            while buf.is_empty() {
                match inner.next().await {
                    None => return None,
                    Some(Err(e)) => return Some((Err(e), (inner, Bytes::new()))),
                    Some(Ok(b)) => buf = b,
                }
            }
            tokio::time::sleep(every).await;
            let piece = buf.split_to(chunk.min(buf.len()));
            Some((Ok(piece), (inner, buf)))
        },
    )
    .boxed()
}
