//! Sync engine.
