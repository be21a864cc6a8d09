//! Pure archive formats.
