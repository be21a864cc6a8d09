//! Index files that list further files of a suite, beside them: a pdiff `Index` (the patches
//! apt applies instead of downloading a whole index again) and an installer `SHA256SUMS` (the
//! images of one installer build).
//!
//! Each entry becomes a path relative to the listing file's directory, proven with
//! [`ArchivePath`] before the sync engine sees it.

use super::deb822::parse_paragraphs;
use super::packages::parse_size;
use super::{ArchivePath, Sha256};

/// One file a listing names: its path relative to the suite directory and what it must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub path: ArchivePath,
    /// `None` where the listing gives no size (SHA256SUMS).
    pub size: Option<u64>,
    pub sha256: Sha256,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListingError {
    #[error("not UTF-8")]
    Utf8,
    #[error("{0}")]
    Syntax(#[from] super::deb822::Deb822Error),
    #[error("bad {field} entry {line:?}")]
    Bad { field: &'static str, line: String },
}

fn bad(field: &'static str, line: &str) -> ListingError {
    ListingError::Bad {
        field,
        line: line.chars().take(200).collect(),
    }
}

/// The patches a pdiff `Index` (at `dir/Index`) offers, from `SHA256-Download`: the
/// compressed `<name>.gz` files as apt fetches them. An Index without that field (dak before
/// 2020) lists no verifiable download, so it yields nothing and apt falls back to the index.
pub fn pdiff_patches(text: &[u8], dir: &str) -> Result<Vec<Listed>, ListingError> {
    let text = std::str::from_utf8(text).map_err(|_| ListingError::Utf8)?;
    let paragraphs = parse_paragraphs(text)?;
    let Some(p) = paragraphs.first() else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for line in p.lines("SHA256-Download") {
        let field = "SHA256-Download";
        let mut parts = line.split_ascii_whitespace();
        let (Some(hash), Some(size), Some(name), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad(field, line));
        };
        let sha256 = Sha256::from_hex(hash).ok_or_else(|| bad(field, line))?;
        let size = parse_size(size.as_bytes()).ok_or_else(|| bad(field, line))?;
        out.push(Listed {
            path: relative(dir, name).ok_or_else(|| bad(field, line))?,
            size: Some(size),
            sha256,
        });
    }
    Ok(out)
}

/// The files an installer `SHA256SUMS` (at `dir/SHA256SUMS`) lists: `<sha256>  ./<path>`.
pub fn sha256sums(text: &[u8], dir: &str) -> Result<Vec<Listed>, ListingError> {
    let text = std::str::from_utf8(text).map_err(|_| ListingError::Utf8)?;
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let field = "SHA256SUMS";
        let (hash, name) = line
            .split_once(char::is_whitespace)
            .ok_or_else(|| bad(field, line))?;
        let sha256 = Sha256::from_hex(hash).ok_or_else(|| bad(field, line))?;
        // `sha256sum` marks binary mode with `*`; paths are written `./netboot/…`.
        let name = name.trim_start().trim_start_matches('*');
        let name = name.strip_prefix("./").unwrap_or(name);
        out.push(Listed {
            path: relative(dir, name).ok_or_else(|| bad(field, line))?,
            size: None,
            sha256,
        });
    }
    Ok(out)
}

/// `dir/name`, refused unless `name` is a plain relative path (no `..`, no escape).
fn relative(dir: &str, name: &str) -> Option<ArchivePath> {
    let name = ArchivePath::new(name).ok()?;
    if dir.is_empty() {
        Some(name)
    } else {
        ArchivePath::new(dir).ok()?.join(name.as_str()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "5b4f6f2c8a0bb1d5b1b6e6b5f7a3a2b8c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6";

    #[test]
    fn pdiff_index_lists_downloads() {
        let index = format!(
            "SHA256-Current: {H} 1000\nSHA256-History:\n {H} 900 2026-11-30-0800.00\n\
             SHA256-Patches:\n {H} 120 2026-11-30-0800.00\nSHA256-Download:\n \
             {H} 80 2026-11-30-0800.00.gz\nX-Patch-Precedence: merged\n"
        );
        let got = pdiff_patches(index.as_bytes(), "main/binary-amd64/Packages.diff").unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(
            got[0].path.as_str(),
            "main/binary-amd64/Packages.diff/2026-11-30-0800.00.gz"
        );
        assert_eq!(got[0].size, Some(80));
        let old_style = format!("SHA1-Current: abc 1\nSHA256-Current: {H} 1000\n");
        assert!(
            pdiff_patches(old_style.as_bytes(), "x.diff")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn sha256sums_lists_images() {
        let sums = format!("{H}  ./netboot/mini.iso\n{H} *./cdrom/vmlinuz\n\n");
        let got = sha256sums(sums.as_bytes(), "main/installer-amd64/20230607/images").unwrap();
        let paths: Vec<_> = got.iter().map(|l| l.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "main/installer-amd64/20230607/images/netboot/mini.iso",
                "main/installer-amd64/20230607/images/cdrom/vmlinuz"
            ]
        );
    }

    #[test]
    fn listings_refuse_escapes_and_garbage() {
        for name in ["../../../etc/passwd", "/etc/passwd", "a/../../b"] {
            let sums = format!("{H}  {name}\n");
            assert!(sha256sums(sums.as_bytes(), "d/images").is_err(), "{name}");
            let index = format!("SHA256-Download:\n {H} 1 {name}\n");
            assert!(pdiff_patches(index.as_bytes(), "d.diff").is_err(), "{name}");
        }
        assert!(sha256sums(b"nothex  ./a\n", "d").is_err());
        assert!(pdiff_patches(b"SHA256-Download:\n xyz 1 a.gz\n", "d").is_err());
        assert!(sha256sums(&[0xff, 0xfe], "d").is_err());
    }
}
