//! Reliability of `debsync sync`: what a run does when the world misbehaves, tested against
//! the built binary.
//!
//! The promise under test, for every fault: the run either retries and succeeds (where that
//! is right) or fails with one clear `error:` line, and in both cases the served tree
//! (`dists/`, `pool/`) is never anything but a whole generation; the next run against a
//! healthy upstream converges on it.
//!
//! - `faults`: a fault-injecting upstream (5xx, truncation, reset, stall, wrong
//!   Content-Length, wrong hash, dropped files, older/expired Release, garbage, an endless
//!   2 GB body, Range ignored on resume).
//! - `kill`: `kill -9` at random instants while upstream flips between two generations
//!   (`DEBSYNC_KILL_SWEEP`, `DEBSYNC_KILL_SEED`).
//! - `diskfull`: `ENOSPC` on a small tmpfs (root only).
//! - `concurrency`: two syncs on one tree; syncs while `debsync serve` is under load.

mod common;

#[path = "reliability/support.rs"]
mod support;

#[path = "reliability/concurrency.rs"]
mod concurrency;
#[path = "reliability/diskfull.rs"]
mod diskfull;
#[path = "reliability/faults.rs"]
mod faults;
#[path = "reliability/kill.rs"]
mod kill;
