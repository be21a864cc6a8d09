//! GET and HEAD of one path inside a tree: open once, `fstat` the handle, then either list the
//! directory or answer for the file (conditionals, `Range`, headers) streaming from that same
//! handle.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

use super::dircache::{DirCache, DirKey};
use super::error::HttpError;
use super::handles::FileIdentity;
use super::headers::{self, Precondition, RangeDecision, Validators};
use super::listing::{self, Page};
use super::path::{OpenMode, open_beneath};

/// Files up to this size are read in the same blocking call that opens them (one thread hop
/// per request); larger ones are streamed in [`CHUNK`]-sized reads.
const SMALL: u64 = super::handles::MAX_FILE;
const CHUNK: usize = 256 * 1024;

/// What a path names, read from one open handle.
pub(super) enum Found {
    File {
        meta: FileMeta,
        body: FileBody,
    },
    /// A directory; `page` is rendered only when a listing was asked for.
    Dir {
        page: Option<Page>,
    },
}

#[derive(Clone)]
pub(super) struct FileMeta {
    pub len: u64,
    pub validators: Validators,
    /// Which file the handle is, for [`super::handles::HotFiles`].
    pub identity: FileIdentity,
}

pub(super) enum FileBody {
    /// The whole (small) file, read from the handle.
    Small(Bytes),
    /// The open handle, streamed on demand.
    Open(File),
}

/// A listing to render if the path is a directory.
pub(super) struct ListingRequest {
    /// Decoded URL path of the directory, for the page's breadcrumb.
    pub segments: Vec<String>,
    pub json: bool,
    pub view: listing::View,
    /// HTML above the table (a mirror's card).
    pub intro: Option<String>,
}

/// Opens `rel` beneath `tree` (anchored at `tree_fd`) and reads (and for directories renders)
/// what the response needs. Blocking: cheap for a file (called inline), a whole directory read
/// for a listing (run it with `spawn_blocking`).
pub(super) fn lookup(
    tree: &Path,
    tree_fd: &OwnedFd,
    rel: &Path,
    list: Option<ListingRequest>,
    cache: &DirCache,
) -> Result<Found, HttpError> {
    let file = open_beneath(tree, tree_fd, rel, OpenMode::Read)?;
    let meta = file.metadata()?;
    if meta.is_dir() {
        let page = match list {
            Some(req) => {
                let key = DirKey::of(&meta);
                let entries = match cache.get(&key) {
                    Some(entries) => entries,
                    None => {
                        let (entries, symlinks) = listing::read_entries(file, tree, tree_fd, rel)?;
                        cache.offer(key, entries, symlinks)
                    }
                };
                let how = listing::Render {
                    segments: &req.segments,
                    json: req.json,
                    view: req.view,
                    intro: req.intro.as_deref(),
                };
                Some(listing::render(&how, &entries))
            }
            None => None,
        };
        return Ok(Found::Dir { page });
    }
    if !meta.is_file() {
        return Err(HttpError::NotServable);
    }
    let len = meta.len();
    let file_meta = FileMeta {
        len,
        validators: Validators::new(meta.ino(), len, meta.mtime(), meta.mtime_nsec()),
        identity: FileIdentity::of_handle(&meta),
    };
    let body = if len <= SMALL {
        let mut buf = Vec::with_capacity(len as usize);
        (&file).take(len).read_to_end(&mut buf)?;
        if buf.len() as u64 != len {
            return Err(HttpError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{}: changed size while being read", rel.display()),
            )));
        }
        FileBody::Small(Bytes::from(buf))
    } else {
        FileBody::Open(file)
    };
    Ok(Found::File {
        meta: file_meta,
        body,
    })
}

/// Headers of a file response: validators, caching, ranges, type, length, nosniff (and
/// `Content-Range` for a part).
const RESPONSE_HEADERS: usize = 8;

/// Builds the response for a file found by [`lookup`].
pub(super) async fn respond(
    req: &HeaderMap,
    head: bool,
    rel_segments: &[String],
    meta: FileMeta,
    body: FileBody,
) -> Result<Response, HttpError> {
    let v = &meta.validators;
    let name = rel_segments.last().map(String::as_str).unwrap_or("");
    let mut resp = Response::new(Body::empty());
    {
        let h = resp.headers_mut();
        // Room for every header below at once, instead of growing the map twice.
        h.reserve(RESPONSE_HEADERS);
        h.insert(header::ETAG, v.etag_header());
        h.insert(header::LAST_MODIFIED, v.last_modified_header());
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(headers::cache_control(rel_segments)),
        );
        h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    }
    match headers::evaluate(req, v) {
        Precondition::Proceed => {}
        Precondition::NotModified => {
            *resp.status_mut() = StatusCode::NOT_MODIFIED;
            return Ok(resp);
        }
        Precondition::Failed => return Err(HttpError::PreconditionFailed),
    }
    let (start, end) = match headers::range(req, v, meta.len) {
        RangeDecision::Full => (0, meta.len),
        RangeDecision::Partial { start, end } => {
            *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
            let cr = format!("bytes {start}-{end}/{}", meta.len);
            if let Ok(cr) = HeaderValue::from_str(&cr) {
                resp.headers_mut().insert(header::CONTENT_RANGE, cr);
            }
            (start, end + 1)
        }
        RangeDecision::Unsatisfiable => {
            return Err(HttpError::RangeNotSatisfiable { len: meta.len });
        }
    };
    let count = end - start;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(headers::content_type(name)),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if head {
        return Ok(resp);
    }
    *resp.body_mut() = match body {
        FileBody::Small(bytes) => Body::from(bytes.slice(start as usize..end as usize)),
        FileBody::Open(file) => Body::from_stream(chunks(file, start, count)),
    };
    Ok(resp)
}

/// Streams `count` bytes from `start` of the open handle with positional reads done inline: a
/// page-cache read of a chunk takes tens of microseconds, less than `tokio::fs`'s hop to the
/// blocking pool for every chunk. A file that shrinks mid-response ends it with an error, so
/// the client sees a short body, never padding.
fn chunks(
    file: File,
    start: u64,
    count: u64,
) -> impl futures_util::Stream<Item = io::Result<Bytes>> {
    futures_util::stream::unfold((file, start, count), |(file, pos, left)| async move {
        if left == 0 {
            return None;
        }
        // Read into fresh capacity: zeroing a 256 KiB buffer first cost as much as the read.
        let mut buf = Vec::with_capacity(left.min(CHUNK as u64) as usize);
        let item = match rustix::io::pread(&file, rustix::buffer::spare_capacity(&mut buf), pos) {
            Ok(0) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shrank while being sent",
            )),
            Ok(_) => Ok(buf),
            Err(e) => Err(io::Error::from(e)),
        };
        match item {
            Ok(buf) => {
                let n = buf.len() as u64;
                Some((Ok(Bytes::from(buf)), (file, pos + n, left - n)))
            }
            Err(e) => Some((Err(e), (file, pos, 0))),
        }
    })
}
