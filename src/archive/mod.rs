//! Pure archive formats: no network, no filesystem, no async.
//!
//! Everything here takes bytes, `&str` or a `Read`/`BufRead`, so each parser is unit-tested on
//! literal input and fuzzed. The sync engine and the server only ever see the typed results:
//! an [`ArchivePath`] is a path that has already been proven to stay inside a mirror's tree,
//! a [`Sha256`] is 32 bytes, not a hex string that might be upper-case or short.
//!
//! - [`deb822`]: RFC 822-style paragraphs (Release, Sources) and a streaming stanza splitter.
//! - [`release`]: the Release file: metadata, dates, and the SHA256 list of index files.
//! - [`packages`] / [`sources`]: the pool files an index references, with size and SHA256.
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

/// One file an index refers to: where it lives in the tree and what it must hash to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRef {
    pub path: ArchivePath,
    pub size: u64,
    pub sha256: Sha256,
}
