//! The commands that look and change nothing:
//! - [`verify`]: `debsync verify`, the full re-hash of the served tree that sync's trust rule
//!   leaves to it;
//! - [`plan`]: `debsync check`, config, keyrings, upstream and signatures, and what the next
//!   sync would download and delete, against the free disk space.

pub mod plan;
pub mod verify;

pub use verify::{CheckReport, Problem, check_mirror};
