//! Errors of the server: [`ServeError`] for start-up (the process exits), [`HttpError`] for one
//! request (it becomes a response through one exhaustive `match`).

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::path::{PathError, is_escape};

/// Why the server could not start (or stopped).
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{addr:?}: not a socket address (expected e.g. 127.0.0.1:8080 or [::]:80): {message}")]
    ListenAddr { addr: String, message: String },
    #[error("{addr}: cannot listen: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("{path}: cannot serve this directory: {source}")]
    Tree { path: PathBuf, source: io::Error },
    #[error("{path}: cannot read TLS file: {source}")]
    TlsRead { path: PathBuf, source: io::Error },
    #[error("{path}: invalid TLS file: {message}")]
    TlsInvalid { path: PathBuf, message: String },
    #[error("TLS setup failed: {0}")]
    Tls(String),
    #[error("cannot get the listening address: {0}")]
    LocalAddr(io::Error),
    #[error("cannot install the SIGTERM/SIGINT handlers: {0}")]
    Signal(io::Error),
    #[error("{0}")]
    Usage(String),
    #[error("{path}: cannot open the access log: {source}")]
    AccessLog { path: PathBuf, source: io::Error },
}

/// Why one request fails. Mapped to a status in [`HttpError::status`].
#[derive(Debug)]
pub enum HttpError {
    /// Malformed or traversing path (`..`, `%2e%2e`, `\`, NUL, bad escapes).
    BadPath(&'static str),
    /// `Host` missing from an HTTP/1.1 request, repeated, or not a `host[:port]`.
    BadHost(&'static str),
    /// A private name (dot file, staging, lock file): reported as absent.
    Hidden,
    /// No such mirror, file or directory.
    NotFound,
    /// A symlink (or path) resolving outside the tree.
    Escapes,
    /// Neither a regular file nor a directory (FIFO, socket, device).
    NotServable,
    /// Anything but GET and HEAD.
    MethodNotAllowed,
    /// Request target over the configured limit.
    UriTooLong,
    /// A request with a body (`Content-Length` above 0): nothing here takes one.
    BodyNotAllowed,
    /// The response head was not ready within the response timeout.
    Overloaded,
    /// `Range` that starts past the end of a `len`-byte file.
    RangeNotSatisfiable { len: u64 },
    /// `If-Match` / `If-Unmodified-Since` failed.
    PreconditionFailed,
    /// A push without `Authorization: Bearer …`.
    Unauthorized,
    /// A push with the wrong token.
    Forbidden,
    /// Filesystem error other than the ones above.
    Io(io::Error),
    /// An edge cache could not answer from upstream (`502`) or refuses (`403`); the message
    /// names the URL (credentials redacted) and the fault.
    Upstream { status: StatusCode, message: String },
}

impl From<PathError> for HttpError {
    fn from(e: PathError) -> Self {
        match e {
            PathError::Bad(why) => HttpError::BadPath(why),
            PathError::Private => HttpError::Hidden,
        }
    }
}

impl From<io::Error> for HttpError {
    fn from(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => HttpError::NotFound,
            _ if is_escape(&e) => HttpError::Escapes,
            _ => HttpError::Io(e),
        }
    }
}

impl HttpError {
    pub fn status(&self) -> StatusCode {
        match self {
            HttpError::BadPath(_) | HttpError::BadHost(_) => StatusCode::BAD_REQUEST,
            HttpError::Hidden | HttpError::NotFound => StatusCode::NOT_FOUND,
            HttpError::Escapes | HttpError::NotServable | HttpError::Forbidden => {
                StatusCode::FORBIDDEN
            }
            HttpError::Unauthorized => StatusCode::UNAUTHORIZED,
            HttpError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            HttpError::UriTooLong => StatusCode::URI_TOO_LONG,
            HttpError::BodyNotAllowed => StatusCode::PAYLOAD_TOO_LARGE,
            HttpError::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            HttpError::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            HttpError::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            HttpError::Io(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                StatusCode::FORBIDDEN
            }
            HttpError::Io(_) => StatusCode::INTERNAL_SERVER_ERROR,
            HttpError::Upstream { status, .. } => *status,
        }
    }

    fn message(&self) -> String {
        match self {
            HttpError::BadPath(why) | HttpError::BadHost(why) => format!("bad request: {why}"),
            HttpError::Io(e) if self.status() == StatusCode::INTERNAL_SERVER_ERROR => {
                // Logged in full; the client only learns that it failed.
                tracing::error!("I/O error while serving: {e}");
                "internal server error".to_string()
            }
            HttpError::Upstream { message, .. } => message.clone(),
            other => other
                .status()
                .canonical_reason()
                .unwrap_or("error")
                .to_ascii_lowercase(),
        }
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut resp = (status, format!("{}\n", self.message())).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match self {
            HttpError::MethodNotAllowed => {
                h.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            }
            HttpError::Unauthorized => {
                h.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"debsync\""),
                );
            }
            HttpError::RangeNotSatisfiable { len } => {
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                    h.insert(header::CONTENT_RANGE, v);
                }
            }
            _ => {}
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc", dir.path().join("l")).unwrap();
        let fd = super::super::path::open_tree(dir.path()).unwrap();
        let escape = super::super::path::open_beneath(
            dir.path(),
            &fd,
            std::path::Path::new("l/passwd"),
            super::super::path::OpenMode::Read,
        )
        .unwrap_err();
        let cases: Vec<(HttpError, u16)> = vec![
            (HttpError::BadPath("x"), 400),
            (HttpError::BadHost("x"), 400),
            (HttpError::from(PathError::Bad("x")), 400),
            (HttpError::from(PathError::Private), 404),
            (HttpError::Hidden, 404),
            (
                HttpError::from(io::Error::from(io::ErrorKind::NotFound)),
                404,
            ),
            (HttpError::from(escape), 403),
            (
                HttpError::from(io::Error::from(io::ErrorKind::PermissionDenied)),
                403,
            ),
            (HttpError::MethodNotAllowed, 405),
            (HttpError::UriTooLong, 414),
            (HttpError::BodyNotAllowed, 413),
            (HttpError::Overloaded, 503),
            (HttpError::RangeNotSatisfiable { len: 3 }, 416),
            (HttpError::PreconditionFailed, 412),
            (HttpError::from(io::Error::other("disk on fire")), 500),
        ];
        for (e, code) in cases {
            let name = format!("{e:?}");
            assert_eq!(e.into_response().status().as_u16(), code, "{name}");
        }
    }
}
