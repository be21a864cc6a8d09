//! Source `Sources` indices: every file of every source package (`Directory` + the
//! `Checksums-Sha256` list).

use super::deb822::parse_paragraphs;
use super::packages::parse_size;
use super::{ArchivePath, FileRef, Sha256};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourcesError {
    #[error("stanza {stanza}: not UTF-8")]
    Utf8 { stanza: u64 },
    #[error("stanza {stanza}: {source}")]
    Syntax {
        stanza: u64,
        source: super::deb822::Deb822Error,
    },
    #[error("stanza {stanza} ({package}): missing {field}")]
    Missing {
        stanza: u64,
        package: String,
        field: &'static str,
    },
    #[error("stanza {stanza} ({package}): bad {field} entry {value:?}")]
    Bad {
        stanza: u64,
        package: String,
        field: &'static str,
        value: String,
    },
}

/// The files of one source package stanza.
pub fn source_files(raw: &[u8], stanza: u64) -> Result<Vec<FileRef>, SourcesError> {
    let text = std::str::from_utf8(raw).map_err(|_| SourcesError::Utf8 { stanza })?;
    let paragraphs =
        parse_paragraphs(text).map_err(|source| SourcesError::Syntax { stanza, source })?;
    let Some(p) = paragraphs.first() else {
        return Ok(Vec::new());
    };
    let package = p.get("Package").unwrap_or("").to_string();
    let missing = |field| SourcesError::Missing {
        stanza,
        package: package.clone(),
        field,
    };
    let bad = |field, value: &str| SourcesError::Bad {
        stanza,
        package: package.clone(),
        field,
        value: value.chars().take(200).collect(),
    };
    let raw_dir = p.get("Directory").ok_or_else(|| missing("Directory"))?;
    // A flat repository made with `apt-ftparchive sources .` says `Directory: .`: its files
    // are at the repository root.
    let dir = match super::path::strip_current_dir(raw_dir) {
        "." | "" if !raw_dir.is_empty() => None,
        d => Some(ArchivePath::new(d).map_err(|_| bad("Directory", raw_dir))?),
    };
    if p.get("Checksums-Sha256").is_none() {
        return Err(missing("Checksums-Sha256"));
    }
    let mut out = Vec::new();
    for line in p.lines("Checksums-Sha256") {
        let mut parts = line.split_ascii_whitespace();
        let (Some(hash), Some(size), Some(name), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("Checksums-Sha256", line));
        };
        let sha256 = Sha256::from_hex(hash).ok_or_else(|| bad("Checksums-Sha256", line))?;
        let size = parse_size(size.as_bytes()).ok_or_else(|| bad("Checksums-Sha256", line))?;
        if name.contains('/') {
            return Err(bad("Checksums-Sha256", line));
        }
        let path = match &dir {
            Some(dir) => dir.join(name),
            None => ArchivePath::new(name),
        }
        .map_err(|_| bad("Checksums-Sha256", line))?;
        out.push(FileRef { path, size, sha256 });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "5b4f6f2c8a0bb1d5b1b6e6b5f7a3a2b8c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6";

    #[test]
    fn lists_files_under_directory() {
        let s = format!(
            "Package: hello\nDirectory: pool/main/h/hello\nChecksums-Sha256:\n {H} 1000 hello_2.10.dsc\n {H} 2000 hello_2.10.orig.tar.gz\n"
        );
        let files = source_files(s.as_bytes(), 1).unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!(
            files[1].path.as_str(),
            "pool/main/h/hello/hello_2.10.orig.tar.gz"
        );
        assert_eq!(files[1].size, 2000);
    }

    #[test]
    fn flat_directory_is_the_repository_root() {
        for (dir, want) in [
            (".", "hello_2.10.dsc"),
            ("./", "hello_2.10.dsc"),
            ("./src", "src/hello_2.10.dsc"),
        ] {
            let s = format!(
                "Package: hello\nDirectory: {dir}\nChecksums-Sha256:\n {H} 1 hello_2.10.dsc\n"
            );
            let files = source_files(s.as_bytes(), 1).unwrap();
            assert_eq!(files[0].path.as_str(), want, "{dir}");
        }
    }

    #[test]
    fn refuses_escapes() {
        for (dir, name) in [
            ("../x", "a.dsc"),
            ("pool/x", "../../a.dsc"),
            ("/etc", "a"),
            (".", ".."),
            (".", ".hidden"),
            ("./..", "a"),
        ] {
            let s = format!("Package: p\nDirectory: {dir}\nChecksums-Sha256:\n {H} 1 {name}\n");
            assert!(source_files(s.as_bytes(), 3).is_err(), "{dir} {name}");
        }
        let s = "Package: p\nDirectory: pool/p\n";
        assert!(
            source_files(s.as_bytes(), 3)
                .unwrap_err()
                .to_string()
                .contains("missing Checksums-Sha256")
        );
    }
}
