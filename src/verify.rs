//! OpenPGP.
