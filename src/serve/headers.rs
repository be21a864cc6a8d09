//! Pure header logic for files: content types, cache lifetimes, validators, conditional requests
//! (RFC 9110 §13.2.2 order) and single `Range`s. No I/O, so every rule is a table row below.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderValue, header};

/// `Content-Type` for a file name (last path segment).
pub(super) fn content_type(name: &str) -> &'static str {
    const TEXT: &str = "text/plain; charset=utf-8";
    match name {
        "InRelease" | "Release" | "Packages" | "Sources" | "Index" | "Components" | "Commands"
        | "Translation" | "md5sum.txt" | "SHA256SUMS" | "SHA512SUMS" | "MD5SUMS" => return TEXT,
        "Release.gpg" => return "application/pgp-signature",
        _ => {}
    }
    let uncompressed_index = name.starts_with("Contents-") || name.starts_with("Translation-");
    if uncompressed_index && !name.contains('.') {
        return TEXT;
    }
    let ext = match name.rsplit_once('.') {
        Some((_, ext)) => ext.to_ascii_lowercase(),
        None => return "application/octet-stream",
    };
    match ext.as_str() {
        "deb" | "udeb" | "ddeb" => "application/vnd.debian.binary-package",
        "xz" => "application/x-xz",
        "gz" | "tgz" => "application/gzip",
        "bz2" => "application/x-bzip2",
        "zst" => "application/zstd",
        "lz4" => "application/x-lz4",
        "lzma" => "application/x-lzma",
        "tar" => "application/x-tar",
        "diff" | "patch" => "text/x-diff; charset=utf-8",
        "dsc" | "changes" | "buildinfo" | "txt" | "asc" | "sig" | "list" | "sources" => TEXT,
        "gpg" => "application/pgp-keys",
        "html" | "htm" => "text/html; charset=utf-8",
        "json" => "application/json",
        "iso" => "application/x-iso9660-image",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "jpg" | "jpeg" => "image/jpeg",
        _ => "application/octet-stream",
    }
}

/// `Cache-Control` for a file, from its path inside the mirror tree.
///
/// `by-hash/` names are content hashes and `pool/` names carry the version, so both are
/// immutable in practice; indices under `dists/` change with every archive run.
pub(super) fn cache_control(rel_segments: &[String]) -> &'static str {
    if rel_segments.iter().any(|s| s == "by-hash") {
        "public, max-age=31536000, immutable"
    } else if rel_segments.first().is_some_and(|s| s == "pool") {
        "public, max-age=2592000"
    } else if rel_segments.first().is_some_and(|s| s == "dists") {
        "public, max-age=60, must-revalidate"
    } else {
        "public, max-age=300"
    }
}

/// The validators of one open file, formatted once as the header values they are sent as:
/// a hot file's responses then clone them (a reference count) instead of formatting them.
#[derive(Debug, Clone)]
pub(super) struct Validators {
    /// Strong entity tag, quoted.
    etag: HeaderValue,
    /// The `Last-Modified` date.
    last_modified: HeaderValue,
    /// Whole seconds since the epoch (HTTP dates have no sub-second part).
    pub mtime_secs: u64,
}

impl Validators {
    pub(super) fn new(inode: u64, len: u64, mtime_secs: i64, mtime_nsec: i64) -> Validators {
        let mtime = u64::try_from(mtime_secs).unwrap_or(0);
        let etag = format!("\"{inode:x}-{len:x}-{mtime_secs:x}.{mtime_nsec:x}\"");
        let date = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(mtime));
        // Digits, letters, `"`, `-`, `.`, `,`, `:` and spaces: always valid header values.
        let value = |s: String| HeaderValue::try_from(s).unwrap_or(HeaderValue::from_static(""));
        Validators {
            etag: value(etag),
            last_modified: value(date),
            mtime_secs: mtime,
        }
    }

    pub(super) fn etag(&self) -> &str {
        self.etag.to_str().unwrap_or_default()
    }

    pub(super) fn etag_header(&self) -> HeaderValue {
        self.etag.clone()
    }

    #[cfg(test)]
    pub(super) fn last_modified(&self) -> &str {
        self.last_modified.to_str().unwrap_or_default()
    }

    pub(super) fn last_modified_header(&self) -> HeaderValue {
        self.last_modified.clone()
    }
}

/// Outcome of the conditional headers.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Precondition {
    Proceed,
    NotModified,
    Failed,
}

/// Evaluates `If-Match`, `If-Unmodified-Since`, `If-None-Match`, `If-Modified-Since` in the
/// order RFC 9110 prescribes, for a GET or HEAD.
pub(super) fn evaluate(h: &HeaderMap, v: &Validators) -> Precondition {
    if let Some(im) = header_str(h, header::IF_MATCH) {
        if !etag_list_matches(im, v.etag(), true) {
            return Precondition::Failed;
        }
    } else if let Some(date) = header_date(h, header::IF_UNMODIFIED_SINCE)
        && v.mtime_secs > date
    {
        return Precondition::Failed;
    }
    if let Some(inm) = header_str(h, header::IF_NONE_MATCH) {
        if etag_list_matches(inm, v.etag(), false) {
            return Precondition::NotModified;
        }
    } else if let Some(date) = header_date(h, header::IF_MODIFIED_SINCE)
        && v.mtime_secs <= date
    {
        return Precondition::NotModified;
    }
    Precondition::Proceed
}

/// What to send of a `len`-byte file.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum RangeDecision {
    Full,
    /// Inclusive byte range.
    Partial {
        start: u64,
        end: u64,
    },
    Unsatisfiable,
}

/// Applies `Range` (one range only; several are answered with the whole file, as RFC 9110
/// allows) guarded by `If-Range`.
pub(super) fn range(h: &HeaderMap, v: &Validators, len: u64) -> RangeDecision {
    let Some(spec) = header_str(h, header::RANGE) else {
        return RangeDecision::Full;
    };
    if let Some(cond) = header_str(h, header::IF_RANGE) {
        let cond = cond.trim();
        let fresh = if cond.starts_with('"') || cond.starts_with("W/") {
            cond == v.etag()
        } else {
            parse_date(cond) == Some(v.mtime_secs)
        };
        if !fresh {
            return RangeDecision::Full;
        }
    }
    parse_range(spec, len)
}

/// Parses one `bytes=` range against a length. Syntax it does not understand is ignored.
pub(super) fn parse_range(spec: &str, len: u64) -> RangeDecision {
    let Some((unit, set)) = spec.split_once('=') else {
        return RangeDecision::Full;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") || set.contains(',') {
        return RangeDecision::Full;
    }
    let Some((first, last)) = set.trim().split_once('-') else {
        return RangeDecision::Full;
    };
    let num = |s: &str| -> Option<u64> {
        let s = s.trim();
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    match (first.trim().is_empty(), last.trim().is_empty()) {
        // bytes=-N: the last N bytes.
        (true, false) => match num(last) {
            None => RangeDecision::Full,
            Some(0) => RangeDecision::Unsatisfiable,
            Some(_) if len == 0 => RangeDecision::Unsatisfiable,
            Some(n) => RangeDecision::Partial {
                start: len.saturating_sub(n),
                end: len - 1,
            },
        },
        // bytes=A-
        (false, true) => match num(first) {
            Some(a) if a >= len => RangeDecision::Unsatisfiable,
            Some(a) => RangeDecision::Partial {
                start: a,
                end: len - 1,
            },
            None => RangeDecision::Full,
        },
        // bytes=A-B
        (false, false) => match (num(first), num(last)) {
            (Some(a), Some(b)) if a > b => RangeDecision::Full,
            (Some(a), Some(_)) if a >= len => RangeDecision::Unsatisfiable,
            (Some(a), Some(b)) => RangeDecision::Partial {
                start: a,
                end: b.min(len - 1),
            },
            _ => RangeDecision::Full,
        },
        (true, true) => RangeDecision::Full,
    }
}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn header_date(h: &HeaderMap, name: header::HeaderName) -> Option<u64> {
    header_str(h, name).and_then(parse_date)
}

fn parse_date(s: &str) -> Option<u64> {
    let t = httpdate::parse_http_date(s.trim()).ok()?;
    t.duration_since(SystemTime::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

/// `If-Match` (strong) / `If-None-Match` (weak) comparison against a list or `*`.
fn etag_list_matches(list: &str, etag: &str, strong: bool) -> bool {
    list.split(',').map(str::trim).any(|tag| {
        if tag == "*" {
            return true;
        }
        match tag.strip_prefix("W/") {
            Some(weak) => !strong && weak == etag,
            None => tag == etag,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(k.clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn v() -> Validators {
        Validators::new(1, 100, 784111777, 0) // Sun, 06 Nov 1994 08:49:37 GMT
    }

    #[test]
    fn content_types() {
        for (name, ct) in [
            (
                "hello_2.10-3_amd64.deb",
                "application/vnd.debian.binary-package",
            ),
            ("d-i_1_amd64.udeb", "application/vnd.debian.binary-package"),
            ("Packages.xz", "application/x-xz"),
            ("Packages.gz", "application/gzip"),
            ("Sources.bz2", "application/x-bzip2"),
            ("Contents-amd64.zst", "application/zstd"),
            ("InRelease", "text/plain; charset=utf-8"),
            ("Release", "text/plain; charset=utf-8"),
            ("Packages", "text/plain; charset=utf-8"),
            ("Contents-amd64", "text/plain; charset=utf-8"),
            ("Release.gpg", "application/pgp-signature"),
            ("hello_2.10-3.dsc", "text/plain; charset=utf-8"),
            (
                "e3b0c44298fc1c149afbf4c8996fb924",
                "application/octet-stream",
            ),
        ] {
            assert_eq!(content_type(name), ct, "{name}");
        }
    }

    #[test]
    fn cache_lifetimes() {
        let s = |p: &str| p.split('/').map(String::from).collect::<Vec<_>>();
        assert!(cache_control(&s("pool/main/h/hello/x.deb")).contains("max-age=2592000"));
        assert!(
            cache_control(&s("dists/stable/main/binary-amd64/by-hash/SHA256/ab"))
                .contains("immutable")
        );
        assert!(cache_control(&s("dists/stable/InRelease")).contains("max-age=60,"));
        assert!(cache_control(&s("project/trace/host")).contains("max-age=300"));
    }

    #[test]
    fn conditionals() {
        use Precondition::*;
        let etag = v().etag().to_string();
        let listed = format!("\"x\", W/{etag}");
        let weak = format!("W/{etag}");
        let rows: Vec<(Vec<(header::HeaderName, &str)>, Precondition)> = vec![
            (vec![], Proceed),
            (vec![(header::IF_NONE_MATCH, &etag)], NotModified),
            (vec![(header::IF_NONE_MATCH, &listed)], NotModified),
            (vec![(header::IF_NONE_MATCH, "*")], NotModified),
            (vec![(header::IF_NONE_MATCH, "\"other\"")], Proceed),
            (
                vec![(header::IF_MODIFIED_SINCE, "Sun, 06 Nov 1994 08:49:37 GMT")],
                NotModified,
            ),
            (
                vec![(header::IF_MODIFIED_SINCE, "Sun, 06 Nov 1994 08:49:36 GMT")],
                Proceed,
            ),
            (vec![(header::IF_MODIFIED_SINCE, "garbage")], Proceed),
            // If-None-Match wins over If-Modified-Since.
            (
                vec![
                    (header::IF_NONE_MATCH, "\"other\""),
                    (header::IF_MODIFIED_SINCE, "Sun, 06 Nov 1994 08:49:37 GMT"),
                ],
                Proceed,
            ),
            (vec![(header::IF_MATCH, &etag)], Proceed),
            (vec![(header::IF_MATCH, &weak)], Failed),
            (vec![(header::IF_MATCH, "\"other\"")], Failed),
            (
                vec![(header::IF_UNMODIFIED_SINCE, "Sun, 06 Nov 1994 08:49:36 GMT")],
                Failed,
            ),
            (
                vec![(header::IF_UNMODIFIED_SINCE, "Sun, 06 Nov 1994 08:49:37 GMT")],
                Proceed,
            ),
        ];
        for (h, want) in rows {
            assert_eq!(evaluate(&headers(&h), &v()), want, "{h:?}");
        }
    }

    #[test]
    fn ranges() {
        use RangeDecision::*;
        let p = |start, end| Partial { start, end };
        for (spec, len, want) in [
            ("bytes=0-0", 100, p(0, 0)),
            ("bytes=10-19", 100, p(10, 19)),
            ("bytes=10-", 100, p(10, 99)),
            ("bytes=90-500", 100, p(90, 99)),
            ("bytes=-10", 100, p(90, 99)),
            ("bytes=-500", 100, p(0, 99)),
            ("bytes=100-", 100, Unsatisfiable),
            ("bytes=100-200", 100, Unsatisfiable),
            ("bytes=-0", 100, Unsatisfiable),
            ("bytes=0-", 0, Unsatisfiable),
            ("bytes=-5", 0, Unsatisfiable),
            ("bytes=5-1", 100, Full),
            ("bytes=0-1,5-6", 100, Full),
            ("items=0-1", 100, Full),
            ("bytes=a-b", 100, Full),
            ("bytes=-", 100, Full),
            ("bytes=+1-2", 100, Full),
            ("bytes 0-1", 100, Full),
            ("BYTES=1-2", 100, p(1, 2)),
        ] {
            assert_eq!(parse_range(spec, len), want, "{spec} of {len}");
        }
    }

    #[test]
    fn if_range() {
        let v = v();
        let with = |cond: &str| {
            range(
                &headers(&[(header::RANGE, "bytes=5-"), (header::IF_RANGE, cond)]),
                &v,
                100,
            )
        };
        assert_eq!(with(v.etag()), RangeDecision::Partial { start: 5, end: 99 });
        assert_eq!(with("\"stale\""), RangeDecision::Full);
        assert_eq!(
            with(v.last_modified()),
            RangeDecision::Partial { start: 5, end: 99 }
        );
        assert_eq!(with("Sun, 06 Nov 1994 08:49:38 GMT"), RangeDecision::Full);
    }
}
