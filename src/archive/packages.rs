//! Binary `Packages` indices: the pool files they reference.
//!
//! Only `Filename`, `Size` and `SHA256` matter to a mirror, so the scanner looks at the first
//! byte of each line and ignores the rest of the stanza: parsing the 50 MB bookworm `Packages`
//! is a memchr walk, not a field-by-field parse.

use std::sync::LazyLock;

use memchr::memmem::Finder;

use super::deb822::field_lines;
use super::{ArchivePath, FileRef, Sha256};

/// What is wrong with one stanza.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PackagesError {
    #[error("stanza {stanza} ({package}): missing {field}")]
    Missing {
        stanza: u64,
        package: String,
        field: &'static str,
    },
    #[error("stanza {stanza} ({package}): bad {field}: {value:?}")]
    Bad {
        stanza: u64,
        package: String,
        field: &'static str,
        value: String,
    },
}

/// Extracts the pool file of one `Packages` stanza. `stanza` numbers it for messages.
///
/// Fast path: three SIMD substring searches for `\nFilename:`, `\nSize:` and `\nSHA256:`
/// (continuation lines start with a space, so they can never match). Stanzas that spell a
/// field differently (deb822 names are case-insensitive) fall back to a line-by-line parse.
pub fn pool_file(raw: &[u8], stanza: u64) -> Result<FileRef, PackagesError> {
    if let (Some(filename), Some(size), Some(sha256)) = (
        fast_field(raw, &FILENAME, b"Filename:"),
        fast_field(raw, &SIZE, b"Size:"),
        fast_field(raw, &SHA256, b"SHA256:"),
    ) {
        return build(raw, stanza, Some(filename), Some(size), Some(sha256));
    }
    let mut filename = None;
    let mut size = None;
    let mut sha256 = None;
    for (name, value) in field_lines(raw) {
        if name.eq_ignore_ascii_case(b"Filename") {
            filename = filename.or(Some(value));
        } else if name.eq_ignore_ascii_case(b"Size") {
            size = size.or(Some(value));
        } else if name.eq_ignore_ascii_case(b"SHA256") {
            sha256 = sha256.or(Some(value));
        }
    }
    build(raw, stanza, filename, size, sha256)
}

static FILENAME: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\nFilename:"));
static SIZE: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\nSize:"));
static SHA256: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\nSHA256:"));

/// The trimmed single-line value of a field found by exact spelling, or `None`.
#[inline]
fn fast_field<'a>(raw: &'a [u8], finder: &Finder<'_>, name: &[u8]) -> Option<&'a [u8]> {
    let start = if raw.starts_with(name) {
        name.len()
    } else {
        finder.find(raw)? + 1 + name.len()
    };
    let rest = &raw[start..];
    let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
    Some(rest[..end].trim_ascii())
}

fn package_name(raw: &[u8]) -> String {
    field_lines(raw)
        .find(|(k, _)| k.eq_ignore_ascii_case(b"Package"))
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default()
}

fn build(
    raw: &[u8],
    stanza: u64,
    filename: Option<&[u8]>,
    size: Option<&[u8]>,
    sha256: Option<&[u8]>,
) -> Result<FileRef, PackagesError> {
    let missing = |field| PackagesError::Missing {
        stanza,
        package: package_name(raw),
        field,
    };
    let bad = |field, value: &[u8]| PackagesError::Bad {
        stanza,
        package: package_name(raw),
        field,
        value: String::from_utf8_lossy(&value[..value.len().min(200)]).into_owned(),
    };
    let filename = filename.ok_or_else(|| missing("Filename"))?;
    let size_raw = size.ok_or_else(|| missing("Size"))?;
    let sha_raw = sha256.ok_or_else(|| missing("SHA256"))?;
    let path = std::str::from_utf8(filename)
        .ok()
        .and_then(|s| ArchivePath::from_index(s).ok())
        .ok_or_else(|| bad("Filename", filename))?;
    let size = parse_size(size_raw).ok_or_else(|| bad("Size", size_raw))?;
    let sha256 = Sha256::from_hex_bytes(sha_raw).ok_or_else(|| bad("SHA256", sha_raw))?;
    Ok(FileRef { path, size, sha256 })
}

/// A decimal size with no sign, no spaces and no overflow.
pub fn parse_size(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    s.iter().try_fold(0u64, |n, d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STANZA: &[u8] = b"Package: hello\nVersion: 2.10-3\nDescription: hi\n SHA256: not-this\nFilename: pool/main/h/hello/hello_2.10-3_amd64.deb\nSize: 53000\nSHA256: 5b4f6f2c8a0bb1d5b1b6e6b5f7a3a2b8c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6\n";

    #[test]
    fn extracts_pool_file() {
        let f = pool_file(STANZA, 1).unwrap();
        assert_eq!(f.path.as_str(), "pool/main/h/hello/hello_2.10-3_amd64.deb");
        assert_eq!(f.size, 53000);
        assert_eq!(&f.sha256.to_hex()[..8], "5b4f6f2c");
    }

    #[test]
    fn refuses_bad_stanzas() {
        let s = std::str::from_utf8(STANZA).unwrap();
        let cases = [
            (
                s.replace("Filename: pool", "Filename: ../pool"),
                "bad Filename",
            ),
            (
                s.replace("Filename: pool", "Filename: /pool"),
                "bad Filename",
            ),
            (s.replace("Size: 53000", "Size: -1"), "bad Size"),
            (
                s.replace("Size: 53000", "Size: 99999999999999999999"),
                "bad Size",
            ),
            (s.replace("SHA256: 5b4f", "SHA256: 5b4"), "bad SHA256"),
            (s.replace("Filename:", "Filenam:"), "missing Filename"),
            (s.replace("\nSize: 53000", ""), "missing Size"),
            (
                s.replace("Filename: pool", "filename: ../pool"),
                "bad Filename",
            ),
        ];
        for (text, want) in cases {
            let err = pool_file(text.as_bytes(), 7).unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
            assert!(err.contains("stanza 7 (hello)"), "{err}");
        }
    }

    #[test]
    fn field_case_and_position_variants_agree() {
        let want = pool_file(STANZA, 1).unwrap();
        let s = std::str::from_utf8(STANZA).unwrap();
        let lower = s
            .replace("Filename:", "filename:")
            .replace("Size:", "size:");
        assert_eq!(pool_file(lower.as_bytes(), 1).unwrap(), want);
        let first = format!(
            "Filename: {}\n{}",
            want.path,
            s.replace(&format!("Filename: {}\n", want.path), "")
        );
        assert_eq!(pool_file(first.as_bytes(), 1).unwrap(), want);
    }

    #[test]
    fn real_packages_excerpt_parses() {
        let data = include_bytes!("../../tests/fixtures/bookworm-main-amd64-Packages-300");
        let mut r = crate::archive::deb822::StanzaReader::new(&data[..]);
        let mut n = 0;
        while let Some(st) = r.next_stanza().unwrap() {
            let f = pool_file(st, n).unwrap();
            assert!(f.path.as_str().starts_with("pool/main/"), "{}", f.path);
            n += 1;
        }
        assert_eq!(n, 300);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size(b"0"), Some(0));
        assert_eq!(parse_size(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_size(b"18446744073709551616"), None);
        assert_eq!(parse_size(b"100000000000000000000"), None);
        assert_eq!(
            parse_size(b"1844674407370955161"),
            Some(1844674407370955161)
        );
        assert_eq!(parse_size(b"+1"), None);
        assert_eq!(parse_size(b""), None);
    }
}
