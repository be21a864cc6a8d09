//! The `Release` file: suite metadata and the checksummed list of index files.
//!
//! Only SHA256 is trusted for content (MD5Sum and SHA1 are ignored, as apt does).

use super::date::parse_rfc2822;
use super::deb822::{Deb822Error, parse_paragraphs};
use super::packages::parse_size;
use super::{ArchivePath, FileRef, Sha256};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReleaseError {
    #[error("{0}")]
    Syntax(#[from] Deb822Error),
    #[error("no paragraph")]
    Empty,
    #[error("bad {field}: {value:?}")]
    BadField { field: &'static str, value: String },
    #[error("no SHA256 file list")]
    NoSha256,
    #[error("SHA256 entry {line:?}: {reason}")]
    BadEntry { line: String, reason: String },
}

/// A parsed Release file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub origin: Option<String>,
    pub label: Option<String>,
    pub suite: Option<String>,
    pub codename: Option<String>,
    pub version: Option<String>,
    /// `Date`, Unix seconds.
    pub date: Option<i64>,
    /// `Valid-Until`, Unix seconds.
    pub valid_until: Option<i64>,
    pub architectures: Vec<String>,
    pub components: Vec<String>,
    pub acquire_by_hash: bool,
    /// The SHA256 list, in file order.
    pub files: Vec<FileRef>,
    /// The SHA512 list (path, lower-case hex), when Release has one: apt fetches by-hash
    /// under the strongest hash listed, so a mirror must publish `by-hash/SHA512/` too.
    pub sha512: Vec<(String, String)>,
}

impl Release {
    pub fn parse(text: &str) -> Result<Release, ReleaseError> {
        let paragraphs = parse_paragraphs(text)?;
        let p = paragraphs.first().ok_or(ReleaseError::Empty)?;
        let owned = |f: &str| p.get(f).map(str::to_string);
        let date_field = |field: &'static str| -> Result<Option<i64>, ReleaseError> {
            p.get(field)
                .map(|v| {
                    parse_rfc2822(v).ok_or_else(|| ReleaseError::BadField {
                        field,
                        value: v.to_string(),
                    })
                })
                .transpose()
        };
        let words = |f: &str| -> Vec<String> {
            p.get(f)
                .unwrap_or("")
                .split_ascii_whitespace()
                .map(str::to_string)
                .collect()
        };
        if p.get("SHA256").is_none() {
            return Err(ReleaseError::NoSha256);
        }
        let mut files = Vec::new();
        for line in p.lines("SHA256") {
            files.push(parse_entry(line)?);
        }
        let mut sha512 = Vec::new();
        for line in p.lines("SHA512") {
            let mut parts = line.split_ascii_whitespace();
            if let (Some(hash), Some(_), Some(path)) = (parts.next(), parts.next(), parts.next())
                && hash.len() == 128
                && hash.bytes().all(|b| b.is_ascii_hexdigit())
            {
                sha512.push((path.to_string(), hash.to_ascii_lowercase()));
            }
        }
        Ok(Release {
            origin: owned("Origin"),
            label: owned("Label"),
            suite: owned("Suite"),
            codename: owned("Codename"),
            version: owned("Version"),
            date: date_field("Date")?,
            valid_until: date_field("Valid-Until")?,
            architectures: words("Architectures"),
            components: words("Components"),
            acquire_by_hash: p
                .get("Acquire-By-Hash")
                .is_some_and(|v| v.eq_ignore_ascii_case("yes")),
            files,
            sha512,
        })
    }

    /// The entry for one index path, if listed.
    pub fn file(&self, path: &str) -> Option<&FileRef> {
        self.files.iter().find(|f| f.path.as_str() == path)
    }

    /// The SHA512 (hex) Release lists for a path, if any.
    pub fn sha512_of(&self, path: &str) -> Option<&str> {
        self.sha512
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, h)| h.as_str())
    }
}

/// The `Valid-Until` date of a Release or InRelease, by a scan of its lines up to the
/// signature: the cheap look the no-op path can afford.
pub fn scan_valid_until(bytes: &[u8]) -> Option<i64> {
    for line in bytes.split(|&b| b == b'\n') {
        if line.starts_with(b"-----BEGIN PGP SIGNATURE") {
            break;
        }
        if let Some(value) = line.strip_prefix(b"Valid-Until:") {
            return parse_rfc2822(std::str::from_utf8(value).ok()?.trim());
        }
    }
    None
}

fn parse_entry(line: &str) -> Result<FileRef, ReleaseError> {
    let bad = |reason: &str| ReleaseError::BadEntry {
        line: line.chars().take(200).collect(),
        reason: reason.to_string(),
    };
    let mut parts = line.split_ascii_whitespace();
    let (Some(hash), Some(size), Some(path), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("expected `<sha256> <size> <path>`"));
    };
    let sha256 = Sha256::from_hex(hash).ok_or_else(|| bad("not a SHA256"))?;
    let size = parse_size(size.as_bytes()).ok_or_else(|| bad("bad size"))?;
    let path = ArchivePath::new(path).map_err(|e| bad(e.reason))?;
    Ok(FileRef { path, size, sha256 })
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "5b4f6f2c8a0bb1d5b1b6e6b5f7a3a2b8c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6";

    fn release(extra: &str) -> String {
        format!(
            "Origin: Debian\nSuite: stable\nCodename: bookworm\nDate: Sat, 10 Jun 2023 08:54:36 UTC\nArchitectures: amd64 arm64\nComponents: main contrib\nAcquire-By-Hash: yes\n{extra}MD5Sum:\n 0123 1 main/x\nSHA256:\n {H} 1234 main/binary-amd64/Packages.xz\n {H}     0 main/binary-amd64/Packages\n"
        )
    }

    #[test]
    fn parses_fields_and_files() {
        let r = Release::parse(&release("")).unwrap();
        assert_eq!(r.codename.as_deref(), Some("bookworm"));
        assert_eq!(r.date, Some(1686387276));
        assert_eq!(r.components, ["main", "contrib"]);
        assert!(r.acquire_by_hash);
        assert_eq!(r.files.len(), 2);
        assert_eq!(r.file("main/binary-amd64/Packages.xz").unwrap().size, 1234);
    }

    #[test]
    fn refuses_bad_release() {
        let cases = [
            (release("Valid-Until: tomorrow\n"), "bad Valid-Until"),
            (
                release("").replace("main/binary-amd64/Packages.xz", "../x"),
                "dot component",
            ),
            (release("").replace(" 1234 ", " 12x4 "), "bad size"),
            (release("").replace("SHA256:", "SHA512:"), "no SHA256"),
        ];
        for (text, want) in cases {
            let err = Release::parse(&text).unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
        }
    }

    #[test]
    fn parses_real_bookworm_release() {
        let text = include_str!("../../tests/fixtures/bookworm-InRelease");
        // The signed body sits between the armor header's blank line and the signature.
        let body = text.split_once("\n\n").unwrap().1;
        let body = body.split("-----BEGIN PGP SIGNATURE-----").next().unwrap();
        let r = Release::parse(body).unwrap();
        assert_eq!(r.codename.as_deref(), Some("bookworm"));
        assert!(r.acquire_by_hash);
        assert!(r.file("main/binary-amd64/Packages.xz").is_some());
        assert!(r.files.len() > 500);
    }
}
