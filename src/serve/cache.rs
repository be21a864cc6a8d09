//! Step 6b of the pipeline: a path under an edge cache's prefix. [`crate::cache`] decides what
//! the path is; this turns its answer into a response:
//!
//! - a stored file goes through `files.rs` like a mirror's (conditionals, `Range`, validators),
//!   with `Cache-Control` and `Content-Type` from the name the client asked for;
//! - a download in flight streams as it grows (`200`, or `206` for one `Range`; no validators
//!   yet, so conditionals do not apply);
//! - an unlisted pool file streams from upstream as it comes.
//!
//! Every answer says how it came about in `X-Debsync-Cache` (`HIT`, `MISS`, `STALE`, `PASS`);
//! a stale one also carries `Warning: 110`.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use futures_util::TryStreamExt;

use super::error::HttpError;
use super::files::{self, Found};
use super::headers::{self, RangeDecision};
use super::path::SafePath;
use crate::cache::{Answer, Cache, CacheError, Flight, How};

/// The header naming how a cache answer came about.
pub(super) const CACHE_STATUS: HeaderName = HeaderName::from_static("x-debsync-cache");

pub(super) async fn respond(
    cache: &Arc<Cache>,
    dircache: &super::dircache::DirCache,
    head: bool,
    rel: &SafePath,
    req: &HeaderMap,
) -> Result<Response, HttpError> {
    let segments = rel.segments();
    if segments.is_empty() || rel.has_trailing_slash() {
        return Err(HttpError::NotFound);
    }
    let answer = cache
        .resolve(&segments.join("/"))
        .await
        .map_err(http_error)?;
    let mut resp = match answer {
        Answer::Stored { rel: stored, how } => {
            let tree_fd = super::path::open_tree(cache.tree())?;
            let found = files::lookup(cache.tree(), &tree_fd, &stored, None, dircache)?;
            let Found::File { meta, body } = found else {
                return Err(HttpError::NotFound);
            };
            if how == How::Hit {
                cache.touched(&cache.tree().join(&stored));
            }
            let mut resp = files::respond(req, head, segments, meta, body).await?;
            let h = resp.headers_mut();
            h.insert(CACHE_STATUS, HeaderValue::from_static(how.header()));
            if how == How::Stale {
                h.insert(
                    header::WARNING,
                    HeaderValue::from_static("110 - \"Response is Stale\""),
                );
            }
            resp
        }
        Answer::Flight(flight) => in_flight(flight, head, segments, req)?,
        Answer::Pass(upstream) => pass(upstream, head, segments),
    };
    resp.headers_mut()
        .entry(CACHE_STATUS)
        .or_insert(HeaderValue::from_static("MISS"));
    Ok(resp)
}

fn http_error(e: CacheError) -> HttpError {
    match e {
        CacheError::NotFound => HttpError::NotFound,
        CacheError::Io { path, source } => {
            tracing::error!("{}: {source}", path.display());
            HttpError::Io(source)
        }
        CacheError::Refused(_) => HttpError::Upstream {
            status: StatusCode::FORBIDDEN,
            message: e.to_string(),
        },
        CacheError::Upstream(_) | CacheError::Verify(_) | CacheError::Setup(_) => {
            HttpError::Upstream {
                status: StatusCode::BAD_GATEWAY,
                message: e.to_string(),
            }
        }
    }
}

fn base_headers(resp: &mut Response, segments: &[String], len: u64) {
    let name = segments.last().map(String::as_str).unwrap_or("");
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(headers::content_type(name)),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(headers::cache_control(segments)),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

/// A download in progress: the whole file or one range of it, streamed as it arrives.
fn in_flight(
    flight: Arc<Flight>,
    head: bool,
    segments: &[String],
    req: &HeaderMap,
) -> Result<Response, HttpError> {
    let size = flight.size;
    // Without validators yet, an `If-Range` cannot be checked: the whole file is the answer.
    let range = match req.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(spec) if !req.contains_key(header::IF_RANGE) => headers::parse_range(spec, size),
        _ => RangeDecision::Full,
    };
    let (status, start, end) = match range {
        RangeDecision::Full => (StatusCode::OK, 0, size),
        RangeDecision::Partial { start, end } => (StatusCode::PARTIAL_CONTENT, start, end + 1),
        RangeDecision::Unsatisfiable => return Err(HttpError::RangeNotSatisfiable { len: size }),
    };
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = status;
    base_headers(&mut resp, segments, end - start);
    let h = resp.headers_mut();
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{size}", end - 1))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    if !head {
        *resp.body_mut() = Body::from_stream(flight.body(start, end));
    }
    Ok(resp)
}

/// An unlisted file, streamed from upstream and not stored.
fn pass(upstream: reqwest::Response, head: bool, segments: &[String]) -> Response {
    let len = upstream.content_length();
    let mut resp = Response::new(Body::empty());
    base_headers(&mut resp, segments, len.unwrap_or(0));
    let h = resp.headers_mut();
    if len.is_none() {
        h.remove(header::CONTENT_LENGTH);
    }
    h.insert(CACHE_STATUS, HeaderValue::from_static("PASS"));
    if !head {
        let body = upstream.bytes_stream().map_err(std::io::Error::other);
        *resp.body_mut() = Body::from_stream(body);
    }
    resp
}

/// `POST /-/preheat/<cache>?suite=S&packages=a,b[&with_depends=true][&arch=amd64,arm64]` with
/// `Authorization: Bearer <token>`: works out the closure, answers `202` with it as JSON, and
/// fetches the files in the background.
pub(super) async fn preheat(
    axum::extract::State(app): axum::extract::State<Arc<super::App>>,
    axum::extract::Path(name): axum::extract::Path<String>,
    axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>,
    req: HeaderMap,
) -> Response {
    use axum::response::IntoResponse;
    let Some(cache) = app.site.caches().iter().find(|c| c.name() == name) else {
        return HttpError::NotFound.into_response();
    };
    let auth = req.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    if !cache.preheat_allowed(auth) {
        let mut resp = HttpError::Upstream {
            status: StatusCode::UNAUTHORIZED,
            message: format!("preheat of {name}: a valid bearer token is required"),
        }
        .into_response();
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return resp;
    }
    let list = |key: &str| -> Vec<String> {
        query
            .get(key)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let (Some(suite), packages) = (query.get("suite"), list("packages")) else {
        return bad_query("suite= is required");
    };
    if packages.is_empty() {
        return bad_query("packages=a,b,… is required");
    }
    let mut architectures = list("arch");
    if architectures.is_empty() {
        architectures.push("amd64".into());
    }
    let request = crate::cache::preheat::PreheatRequest {
        suite: suite.clone(),
        packages,
        with_depends: query
            .get("with_depends")
            .is_some_and(|v| matches!(v.as_str(), "1" | "true" | "yes")),
        architectures,
    };
    match crate::cache::preheat::preheat(cache, &request, true).await {
        Ok(report) => {
            let body = serde_json::to_string_pretty(&report).unwrap_or_default() + "\n";
            let mut resp = (StatusCode::ACCEPTED, body).into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            resp
        }
        Err(e) => http_error(e).into_response(),
    }
}

fn bad_query(why: &str) -> Response {
    use axum::response::IntoResponse;
    HttpError::Upstream {
        status: StatusCode::BAD_REQUEST,
        message: format!("preheat: {why}"),
    }
    .into_response()
}
