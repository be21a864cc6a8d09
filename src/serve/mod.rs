//! The static archive server: what nginx with `autoindex on` used to do for a mirror, over the
//! trees that `debsync sync` writes.
//!
//! # Sites
//! A [`Site`] maps URL prefixes to trees. From a config ([`Site::from_config`]) every mirror
//! `name` is served at `/<name>/` from `<root>/<name>` and `/` lists the mirrors; a bare tree
//! ([`Site::bare`]) is served at `/`.
//!
//! # The request pipeline
//! Each step can answer early; the order is the order below.
//!
//! 1. **Connection** (`server.rs`): the connection limit (over it: `503` and close), the TLS
//!    handshake if any, then hyper's HTTP/1.1 parser with a header size cap (`431`) and a
//!    header read timeout (which is also the keep-alive idle timeout). Writes that stall longer
//!    than the send timeout drop the connection, so slow readers cannot pin it.
//! 2. **Observe** (`access.rs`): in-flight gauge; when the body ends, the status and bytes
//!    counters and one combined-log access line.
//! 3. **Guard** (`guard` below): one valid `Host` in HTTP/1.1 (`400`, RFC 9112 §3.2), only
//!    GET and HEAD (`405` with `Allow`) except `POST` under `/-/`, request target length
//!    (`414`), no request body (`413`), a time limit on producing the response head (`503`).
//!    Steps 2 and 3 are plain calls in [`handle`], not middleware: a file request then costs
//!    no boxed service clones.
//! 4. **Route**: `/healthz` and `/metrics` (`ops.rs`), `POST /-/sync/<mirror>` (`push.rs`),
//!    `POST /-/preheat/<cache>` (`cache.rs`); everything else is a path.
//! 5. **Sanitise** (`path.rs`): decode and check the path into a [`path::SafePath`]
//!    (`400` for traversal and malformed escapes, `404` for private names).
//! 6. **Mount**: the first segment picks the mirror (or `/` is the mirror index).
//!    6b. **Cache**: or an edge cache (`cache.rs`, over [`crate::cache`]): what the cache
//!    answers (stored, in flight, passed through) becomes the response.
//! 7. **Open** (`files.rs`): one `openat2(RESOLVE_BENEATH)` relative to the tree (`403` for a
//!    symlink leaving it), then `fstat` on that handle. A path through a symlink is opened
//!    again with symlinks allowed and must not resolve to a private name (`404`).
//! 8. **Directory**: redirect to the slash form, or list it (`listing.rs`, HTML or JSON;
//!    big settled directories come from `dircache.rs`, keyed by the handle's `fstat`).
//! 9. **File**: conditionals (`304`/`412`), `Range` (`206`/`416`), headers (`headers.rs`), and
//!    the body streamed from the handle opened in step 7 — a `dists/` swap mid-response can't
//!    mix generations.
//!
//! Errors of steps 3–9 are [`error::HttpError`] values, turned into statuses in one `match`.
//!
//! `/healthz` and `/metrics` take precedence over tree paths of the same name (a bare tree's
//! top-level `healthz` file, or a mirror named `metrics`).
//!
//! # Use
//! What `debsync serve` does; tests pass their own listener, limits and shutdown future.
//! ```no_run
//! # async fn serve(config: &debsync::config::Config) -> Result<(), debsync::serve::ServeError> {
//! use debsync::serve::{self, Limits, Server, Site};
//! let shutdown = serve::shutdown_signal()?; // SIGTERM/SIGINT handlers installed now
//! let listener = serve::bind("127.0.0.1:8080").await?;
//! println!("listening on http://{}", listener.local_addr().map_err(serve::ServeError::LocalAddr)?);
//! Server::new(Site::from_config(config), Limits::default())
//!     .run(listener, shutdown)
//!     .await
//! # }
//! ```

mod access;
mod accesslog;
mod cache;
mod datetime;
mod dircache;
pub mod error;
mod files;
mod front;
mod handles;
mod headers;
mod listing;
mod metrics;
mod ops;
mod order;
pub mod path;
mod push;
mod server;
mod tls;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Version, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower::ServiceExt;

pub use accesslog::AccessLog;
pub use error::{HttpError, ServeError};
pub use push::{Pushed, SyncPush};
pub use server::{Limits, Server, bind, shutdown_signal, shutdown_signal_reopening};

use crate::config::Config;
use files::{Found, ListingRequest};
use listing::{Entry, Kind, Page};
use path::SafePath;

/// One tree and where it is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Mirror name: the URL prefix in a config site, the metrics label in both kinds.
    pub name: String,
    pub tree: PathBuf,
    /// The mirror's config, for its card (`front.rs`); `None` for a bare tree.
    info: Option<front::MirrorInfo>,
}

/// What the server serves.
#[derive(Clone)]
pub struct Site {
    mounts: Vec<Mount>,
    /// Edge caches, each at `/<name>/` (config sites only).
    caches: Vec<Arc<crate::cache::Cache>>,
    /// `true`: mounts live at `/<name>/` and `/` lists them. `false`: the one mount is at `/`.
    prefixed: bool,
    /// `[serve] max_age_secs`: `/healthz` fails a mirror whose last success is older (0: off).
    max_age_secs: u64,
}

impl Site {
    /// Every mirror of the config at `/<name>/`. Trees that do not exist yet are served as
    /// `404` and reported by `/healthz` until the first sync creates them.
    pub fn from_config(config: &Config) -> Site {
        Site {
            mounts: mirror_mounts(config),
            caches: config
                .caches
                .iter()
                .filter_map(|c| {
                    crate::cache::Cache::new(c, &config.root, &config.sync)
                        .inspect_err(|e| tracing::error!("cache {}: not served: {e}", c.name))
                        .ok()
                })
                .collect(),
            prefixed: true,
            max_age_secs: config.serve.max_age_secs,
        }
    }

    /// One directory served at `/`; it must exist.
    pub fn bare(root: &Path) -> Result<Site, ServeError> {
        path::open_tree(root).map_err(|source| ServeError::Tree {
            path: root.to_path_buf(),
            source,
        })?;
        let name = root
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "root".to_string());
        Ok(Site {
            mounts: vec![Mount {
                name,
                tree: root.to_path_buf(),
                info: None,
            }],
            caches: Vec::new(),
            prefixed: false,
            max_age_secs: 0,
        })
    }

    /// Whether two configs serve the same trees the same way (mirrors, what their pages show,
    /// `[serve] max_age_secs`, caches by name and tree): the daemon starts a new server
    /// generation on a reload only when they do not.
    pub fn serves_same(old: &Config, new: &Config) -> bool {
        let caches = |c: &Config| -> Vec<(String, PathBuf)> {
            c.caches
                .iter()
                .map(|k| (k.name.clone(), k.tree(&c.root)))
                .collect()
        };
        mirror_mounts(old) == mirror_mounts(new)
            && old.serve.max_age_secs == new.serve.max_age_secs
            && caches(old) == caches(new)
    }

    pub fn mounts(&self) -> &[Mount] {
        &self.mounts
    }

    /// The edge caches served by this site.
    pub fn caches(&self) -> &[Arc<crate::cache::Cache>] {
        &self.caches
    }

    /// The edge cache a sanitised path falls into, and the path inside it.
    fn resolve_cache(&self, path: &SafePath) -> Option<(&Arc<crate::cache::Cache>, SafePath)> {
        let first = path.segments().first()?;
        let cache = self.caches.iter().find(|c| c.name() == first)?;
        Some((cache, path.skip(1)))
    }

    /// Which tree a sanitised path falls into, and the segments of the path inside it.
    fn resolve<'p>(&self, path: &'p SafePath) -> Option<(&Mount, &'p [String])> {
        let segments = path.segments();
        if !self.prefixed {
            return self.mounts.first().map(|m| (m, segments));
        }
        let (first, rest) = segments.split_first()?;
        let mount = self.mounts.iter().find(|m| &m.name == first)?;
        Some((mount, rest))
    }
}

/// Every mirror of the config as a mount at `/<name>/`.
fn mirror_mounts(config: &Config) -> Vec<Mount> {
    config
        .mirrors
        .iter()
        .map(|m| Mount {
            name: m.name.clone(),
            tree: m.tree(&config.root),
            info: Some(front::MirrorInfo::of(m)),
        })
        .collect()
}

/// State shared by all handlers.
pub struct App {
    site: Site,
    limits: Limits,
    metrics: metrics::Metrics,
    dircache: Arc<dircache::DirCache>,
    anchors: handles::Anchors,
    hot: handles::HotFiles,
    /// More samples for `/metrics` from the embedding process (`debsync daemon`).
    extra_metrics: Option<ExtraMetrics>,
    /// Where pushes go (`debsync daemon`); `None`: `/-/sync/…` is 404.
    push: Option<Arc<dyn SyncPush>>,
    /// The access log file, if any (else access lines go to `tracing`).
    access_log: Option<AccessLog>,
    /// Served over TLS: the scheme of the apt lines on the front page.
    https: bool,
}

/// Appends Prometheus text samples to a `/metrics` response.
pub type ExtraMetrics = Arc<dyn Fn(&mut String) + Send + Sync>;

/// Steps 2–9 for one request, as `server.rs` hands them to hyper. Files and listings (nearly
/// every request) go straight to [`serve_path`]; only the operation endpoints take the
/// router, whose boxed layers cost several allocations a request.
async fn handle(
    app: Arc<App>,
    router: Router,
    peer: std::net::SocketAddr,
    req: axum::http::Request<hyper::body::Incoming>,
) -> Result<axum::http::Response<access::Observed>, std::convert::Infallible> {
    let observation = access::Observation::start(&app, peer, &req);
    let resp = match guard(&app, &req) {
        Err(refused) => refused.into_response(),
        Ok(()) => {
            let limit = app.limits.response_timeout;
            match tokio::time::timeout(limit, dispatch(&app, router, req)).await {
                Ok(resp) => resp,
                Err(_) => HttpError::Overloaded.into_response(),
            }
        }
    };
    Ok(observation.finish(resp))
}

/// Step 4: the router for the operation endpoints, [`serve_path`] for everything else.
async fn dispatch(
    app: &App,
    router: Router,
    req: axum::http::Request<hyper::body::Incoming>,
) -> Response {
    if routed(req.uri().path()) {
        match router.oneshot(req.map(Body::new)).await {
            Ok(resp) => resp,
            Err(never) => match never {},
        }
    } else {
        let (parts, _) = req.into_parts();
        serve_path(app, &parts).await
    }
}

/// The router of step 4: the operation endpoints (the limits of step 3 are [`handle`]'s, for
/// them as for paths). An unknown path under `/-/` falls through to a path.
fn router(app: Arc<App>) -> Router {
    Router::new()
        .route(HEALTHZ, get(ops::healthz))
        .route(METRICS, get(ops::metrics))
        .route("/-/preheat/{cache}", axum::routing::post(cache::preheat))
        .route(OPS_SYNC, axum::routing::post(push::sync))
        .fallback(serve_path_handler)
        .with_state(app)
}

/// Whether a path is the router's (step 4) rather than a tree's.
fn routed(path: &str) -> bool {
    path == HEALTHZ || path == METRICS || path.starts_with(OPS_PREFIX)
}

/// The router's read-only endpoints (`ops.rs`).
const HEALTHZ: &str = "/healthz";
const METRICS: &str = "/metrics";

/// The namespace of operations that may change something: `-` is no mirror name.
const OPS_PREFIX: &str = "/-/";

/// A push: `POST /-/sync/<mirror>`.
const OPS_SYNC: &str = "/-/sync/{mirror}";

/// Step 3: `Host`, method, request-target and body limits, before any routing.
fn guard<B>(app: &App, req: &axum::http::Request<B>) -> Result<(), HttpError> {
    check_host(req.version(), req.headers()).map_err(HttpError::BadHost)?;
    let ops_post = req.method() == Method::POST && req.uri().path().starts_with(OPS_PREFIX);
    if req.method() != Method::GET && req.method() != Method::HEAD && !ops_post {
        return Err(HttpError::MethodNotAllowed);
    }
    let target_len = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if target_len > app.limits.max_uri_bytes {
        return Err(HttpError::UriTooLong);
    }
    let body_len = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if body_len.is_some_and(|n| n > 0) {
        return Err(HttpError::BodyNotAllowed);
    }
    Ok(())
}

/// RFC 9112 §3.2: an HTTP/1.1 request must carry exactly one `Host`, and any `Host` must be a
/// `host[:port]` (empty is allowed: a target without authority). HTTP/1.0 may omit it.
fn check_host(version: Version, headers: &HeaderMap) -> Result<(), &'static str> {
    let mut hosts = headers.get_all(header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (None, _) if version == Version::HTTP_11 => Err("HTTP/1.1 request without Host"),
        (None, _) => Ok(()),
        (Some(_), Some(_)) => Err("more than one Host"),
        (Some(host), None) => {
            // uri-host (reg-name, IPv4, [IPv6]) and an optional port, as bytes.
            let ok = host
                .as_bytes()
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=:[]".contains(b));
            if ok { Ok(()) } else { Err("invalid Host") }
        }
    }
}

/// Steps 5–9.
async fn serve_path(app: &App, req: &Parts) -> Response {
    match serve_path_inner(app, req).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
}

/// [`serve_path`] as the router's fallback (a path under `/-/` that names no operation).
async fn serve_path_handler(State(app): State<Arc<App>>, req: Request) -> Response {
    let (req, _) = req.into_parts();
    serve_path(&app, &req).await
}

async fn serve_path_inner(app: &App, req: &Parts) -> Result<Response, HttpError> {
    let head = req.method == Method::HEAD;
    let headers = &req.headers;
    let raw_path = req.uri.path();
    let path = SafePath::parse(raw_path)?;
    let json = wants_json(headers);
    if app.site.prefixed && path.segments().is_empty() {
        let page = match json {
            true => mirror_index(&app.site).await,
            false => front_page(app, headers).await,
        };
        return Ok(listing_response(head, page));
    }
    if let Some((cache, rel)) = app.site.resolve_cache(&path) {
        return cache::respond(cache, &app.dircache, head, &rel, headers).await;
    }
    let (mount, rel) = app.site.resolve(&path).ok_or(HttpError::NotFound)?;
    let tree_fd = app.anchors.get(&mount.tree)?;
    let rel_path = path::rel_path(rel);
    let list = path.has_trailing_slash().then(|| ListingRequest {
        segments: path.segments().to_vec(),
        json,
        view: listing::View::from_query(req.uri.query()),
        intro: None,
    });
    let cache = app.dircache.clone();
    let found = if let Some(mut list) = list {
        // The mirror's own page: its card above the listing.
        let card = match (&mount.info, rel.is_empty() && !json) {
            (Some(info), true) => Some((
                mount.clone(),
                info.clone(),
                front::base_url(app.https, host(headers)),
            )),
            _ => None,
        };
        let tree = mount.tree.clone();
        tokio::task::spawn_blocking(move || {
            if let Some((mount, info, base)) = card {
                let mut html = String::new();
                let live = front::Live::read(&mount.tree);
                let now = crate::sync::now_unix();
                front::card(&mut html, &mount, &info, &live, &base, now, false);
                list.intro = Some(html);
            }
            files::lookup(&tree, &tree_fd, &rel_path, Some(list), &cache)
        })
        .await
        .map_err(|e| HttpError::Io(std::io::Error::other(e)))??
    } else {
        // A file: open, fstat and (up to 64 KiB) read are page-cache work of a few
        // microseconds, less than a hop to the blocking pool costs (two context switches and
        // a contended queue lock per request). Listings read whole directories: pool.
        // The request path is the key: it names the mount and the path inside it.
        if let Some((meta, body)) = app.hot.get(raw_path, &tree_fd, &rel_path) {
            Found::File {
                meta,
                body: files::FileBody::Small(body),
            }
        } else {
            let found = files::lookup(&mount.tree, &tree_fd, &rel_path, None, &cache)?;
            if let Found::File {
                meta,
                body: files::FileBody::Small(body),
            } = &found
            {
                app.hot.offer(raw_path, meta.identity, meta, body);
            }
            found
        }
    };
    match found {
        Found::Dir { page: None } => Ok(redirect(&path.encoded_dir())),
        Found::Dir { page: Some(page) } => Ok(listing_response(head, page)),
        Found::File { .. } if path.has_trailing_slash() => Err(HttpError::NotFound),
        Found::File { meta, body } => files::respond(headers, head, rel, meta, body).await,
    }
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/json"))
}

fn host(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::HOST).and_then(|h| h.to_str().ok())
}

/// The `/` page of a config site for people: a card per mirror (`front.rs`).
async fn front_page(app: &App, headers: &HeaderMap) -> Page {
    let mounts = app.site.mounts.clone();
    let base = front::base_url(app.https, host(headers));
    let body = tokio::task::spawn_blocking(move || {
        let now = crate::sync::now_unix();
        let cards: Vec<_> = mounts
            .iter()
            .filter_map(|m| Some((m, m.info.as_ref()?, front::Live::read(&m.tree))))
            .collect();
        front::page(&cards, &base, now)
    })
    .await
    .unwrap_or_default();
    Page {
        body,
        content_type: "text/html; charset=utf-8",
    }
}

/// The `/` listing of a config site for scripts (JSON): one directory per mirror whose tree
/// exists.
async fn mirror_index(site: &Site) -> Page {
    let mounts = site.mounts.clone();
    tokio::task::spawn_blocking(move || {
        let mut entries: Vec<Entry> = mounts
            .iter()
            .filter(|m| path::is_listable(&m.name))
            .filter_map(|m| {
                let meta = std::fs::metadata(&m.tree).ok()?;
                meta.is_dir().then(|| Entry {
                    name: m.name.clone(),
                    kind: Kind::Directory,
                    size: 0,
                    mtime: std::os::unix::fs::MetadataExt::mtime(&meta),
                })
            })
            .collect();
        listing::sort(&mut entries);
        let how = listing::Render {
            json: true,
            ..listing::Render::default()
        };
        listing::render(&how, &entries)
    })
    .await
    .unwrap_or_else(|_| Page {
        body: "{}".to_string(),
        content_type: "application/json",
    })
}

fn listing_response(head: bool, page: Page) -> Response {
    let len = page.body.len();
    let mut resp = Response::new(if head {
        Body::empty()
    } else {
        Body::from(page.body)
    });
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(page.content_type),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::VARY, HeaderValue::from_static("Accept"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; img-src data:"),
    );
    resp
}

fn redirect(location: &str) -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::MOVED_PERMANENTLY;
    if let Ok(loc) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    resp
}
