//! Issue 15, the edge cache: `[[cache]]` served by `debsync serve` in front of the kit's
//! upstream, exercised by the real apt-get and by concurrent HTTP clients.
//!
//! - `apt`: apt-get update + install (download-only) through the cache; a second client is
//!   served from it; a restarted server; a mirror and a cache under one server, and the
//!   daemon. (debootstrap through a cache: `tests/debootstrap.rs`.)
//! - `flight`: coalescing (100 clients, one upstream GET), streaming while downloading,
//!   `Range` on a miss, unlisted files, a kill -9 mid-download.
//! - `faults`: tampered `.deb`, index and InRelease from upstream; upstream down or stalling;
//!   a rollback to an older Release.
//! - `bounds`: eviction under a small limit, `debsync cache prune`.
//! - `ops`: upstream credentials from a file; preheat from the CLI and the endpoint.

mod common;

#[path = "cache/kit.rs"]
mod kit;

#[path = "cache/apt.rs"]
mod apt;
#[path = "cache/bounds.rs"]
mod bounds;
#[path = "cache/faults.rs"]
mod faults;
#[path = "cache/flight.rs"]
mod flight;
#[path = "cache/ops.rs"]
mod ops;
