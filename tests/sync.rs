//! Black-box tests of `debsync sync`: the built binary against the kit's signed archives,
//! served by a fault-injecting upstream on `127.0.0.1:0`.
//!
//! Every bad-input test follows one pattern ([`support::Fixture::assert_refused`]): a good
//! sync, then upstream breaks, then a sync that must fail with an `error:` line naming the
//! file and the fault while the served tree (`dists/`, `pool/`) stays byte-for-byte as it was.
//!
//! - `release`: the run lock, signatures, Valid-Until, rollback, components.
//! - `index`: index variants and hashes, malformed stanzas, hostile file names.
//! - `pool`: retries, resume, and pool faults that must stop the run.
//! - `lifecycle`: no-op runs, by-hash generations, cleanup and its limit, trace and state,
//!   and an upstream update end to end.
//! - `client`: the real apt against `debsync serve` of the mirror, and `debsync verify`.
//! - `flat`: flat repositories (`deb URL ./`), end to end, apt included.
//! - `upstream_update`: upstream mid-update: re-plan on a new Release, wait out its flag or a
//!   missing file, fail cleanly when it stays so.
//! - `check`: `debsync check`, the dry run that writes nothing.
//! - `changes`: the per-run changelog and `debsync status --changes`.

mod common;

#[path = "sync/support.rs"]
mod support;

#[path = "sync/changes.rs"]
mod changes;
#[path = "sync/check.rs"]
mod check;
#[path = "sync/client.rs"]
mod client;
#[path = "sync/flat.rs"]
mod flat;
#[path = "sync/hardening.rs"]
mod hardening;
#[path = "sync/index.rs"]
mod index;
#[path = "sync/lifecycle.rs"]
mod lifecycle;
#[path = "sync/ops.rs"]
mod ops;
#[path = "sync/pool.rs"]
mod pool;
#[path = "sync/release.rs"]
mod release;
#[path = "sync/upstream_update.rs"]
mod upstream_update;
