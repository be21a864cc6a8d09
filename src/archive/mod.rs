//! Pure archive formats: no network, no filesystem, no async.
//!
//! Everything here takes bytes, `&str` or a `Read`/`BufRead`, so each parser is unit-tested on
//! literal input and fuzzed. The sync engine and the server only ever see the typed results:
//! an [`ArchivePath`] is a path that has already been proven to stay inside a mirror's tree,
//! a [`Sha256`] is 32 bytes, not a hex string that might be upper-case or short.
//!
//! - [`deb822`]: RFC 822-style paragraphs (Release, Sources) and a streaming stanza splitter.
//! - [`release`]: the Release file: metadata, dates, and the SHA256 list of index files.
//! - [`packages`] / [`sources`]: the pool files an index references, with size and SHA256,
//!   and the [`PackageId`] of the stanza that lists them.
//! - [`listing`]: files a pdiff `Index` or an installer `SHA256SUMS` lists beside it.
//! - [`compression`]: which decoder a file name asks for, and which variant to prefer.
//! - [`path`]: [`ArchivePath`], the only way a path from upstream reaches the disk.
//! - [`date`]: the RFC 2822 dates Release files carry, and the formats the trace file uses.

pub mod compression;
pub mod date;
pub mod deb822;
pub mod hash;
pub mod listing;
pub mod packages;
pub mod path;
pub mod release;
pub mod sources;

pub use hash::Sha256;
pub use path::ArchivePath;

/// Which package a stanza describes: name, architecture (`source` for a Sources stanza, which
/// has no single one) and version. What a changelog records about an index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackageId<'a> {
    pub name: &'a str,
    pub arch: &'a str,
    pub version: &'a str,
}

impl<'a> PackageId<'a> {
    /// The id of a raw `Packages` (or, with `source`, `Sources`) stanza; `None` when a field
    /// is missing or not UTF-8. The three come first in real indices: the rest of the stanza
    /// (the long Description, the hashes) is not read.
    pub fn of_stanza(stanza: &'a [u8], source: bool) -> Option<PackageId<'a>> {
        let (mut name, mut arch, mut version) = (None, source.then_some("source"), None);
        for (field, value) in deb822::field_lines(stanza) {
            let slot = if field.eq_ignore_ascii_case(b"Package") {
                &mut name
            } else if field.eq_ignore_ascii_case(b"Version") {
                &mut version
            } else if !source && field.eq_ignore_ascii_case(b"Architecture") {
                &mut arch
            } else {
                continue;
            };
            *slot = slot.or(std::str::from_utf8(value).ok());
            if let (Some(name), Some(arch), Some(version)) = (name, arch, version) {
                return Some(PackageId {
                    name,
                    arch,
                    version,
                });
            }
        }
        None
    }
}

/// One file an index refers to: where it lives in the tree and what it must hash to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRef {
    pub path: ArchivePath,
    pub size: u64,
    pub sha256: Sha256,
}

#[cfg(test)]
mod tests {
    use super::PackageId;

    fn id(name: &'static str, arch: &'static str, version: &'static str) -> PackageId<'static> {
        PackageId {
            name,
            arch,
            version,
        }
    }

    #[test]
    fn package_ids_of_binary_and_source_stanzas() {
        let binary = b"Package: libc6\nSource: glibc\nVersion: 2.36-9+deb12u4\nInstalled-Size: 1\nArchitecture: amd64\nDescription: GNU C Library\n Version: not this\n";
        assert_eq!(
            PackageId::of_stanza(binary, false),
            Some(id("libc6", "amd64", "2.36-9+deb12u4"))
        );
        // deb822 field names are case-insensitive; the first occurrence counts.
        let odd = b"package: a\nVERSION: 1\nArchitecture: all\nPackage: b\n";
        assert_eq!(PackageId::of_stanza(odd, false), Some(id("a", "all", "1")));
        let source = b"Package: glibc\nBinary: libc6\nVersion: 2.36-9\nArchitecture: any all\n";
        assert_eq!(
            PackageId::of_stanza(source, true),
            Some(id("glibc", "source", "2.36-9"))
        );
        assert_eq!(
            PackageId::of_stanza(b"Package: a\nVersion: 1\n", false),
            None
        );
        assert_eq!(
            PackageId::of_stanza(b"Package: \xff\nVersion: 1\nArchitecture: all\n", false),
            None
        );
    }
}
