#![deny(unreachable_pub)]
//! debsync: a Debian/Ubuntu archive mirror synchronizer and static server.
//!
//! # A tour
//! - [`config`]: `mirror.toml`, validated up front so a typo fails before any network traffic.
//! - [`archive`]: pure formats (deb822, Release, Packages, Sources, compression, safe paths).
//!   No I/O beyond `Read`/`BufRead`, so every parser is unit-tested and fuzzed on bytes.
//! - [`verify`]: OpenPGP keyrings and signature checks. The only way to get a
//!   [`verify::VerifiedRelease`] is to verify it, and it parses exactly the bytes it verified.
//! - [`fetch`]: the HTTP client: retries with backoff, resume, and hashing while streaming.
//! - [`sync`]: the two-stage engine (lock → release → stage → pool → swap → cleanup → trace).
//! - [`serve`]: the static HTTP server over the synced trees (and the edge caches).
//! - [`cache`]: the verified pull-through edge cache (`[[cache]]`), served beside the mirrors.
//! - [`daemon`]: `debsync daemon`, serve and sync in one process on per-mirror cron schedules.
//! - [`push`]: the mirror network: push tokens, `notify` of downstream mirrors after a run.
//! - [`check`]: `debsync verify`, the full re-hash that sync's trust rule leaves to it, and
//!   `debsync check`, a dry run of the next sync that writes nothing.
//! - [`tree`]: the names of a mirror's tree (live, private, temp), owned in one place.
//! - [`status`]: `debsync status`, each mirror's state for a person or a monitoring script.

pub mod archive;
pub mod cache;
pub mod check;
pub mod config;
pub mod daemon;
pub(crate) mod fetch;
pub mod push;
pub mod serve;
pub mod status;
pub mod sync;
pub(crate) mod tree;
pub mod verify;

mod error;
pub use error::Error;
