//! The pinned keyring: the certificates trusted to sign one upstream's Release files.

use std::path::PathBuf;

use sequoia_openpgp::Cert;
use sequoia_openpgp::cert::CertParser;
use sequoia_openpgp::parse::Parse;

use super::VerifyError;

/// Public keys (certificates: primary key, subkeys and their self-signatures) trusted to sign
/// one upstream's Release files. Whether a key is still valid is decided per signature, at
/// verification time, not here: a keyring may well hold expired keys (Debian's does).
pub struct Keyring {
    certs: Vec<Cert>,
}

impl Keyring {
    /// Loads binary (`.gpg`, many keys) or ASCII-armored (`.asc`) keyrings.
    pub fn load(paths: &[PathBuf]) -> Result<Keyring, VerifyError> {
        let mut certs = Vec::new();
        for path in paths {
            let bytes = std::fs::read(path).map_err(|source| VerifyError::KeyringRead {
                path: path.clone(),
                source,
            })?;
            let found = parse_certs(&bytes).map_err(|detail| VerifyError::KeyringEmpty {
                path: path.clone(),
                detail,
            })?;
            certs.extend(found);
        }
        Ok(Keyring { certs })
    }

    /// A keyring from the bytes of a keyring file (binary or armored).
    pub fn from_bytes(bytes: &[u8]) -> Result<Keyring, String> {
        parse_certs(bytes).map(|certs| Keyring { certs })
    }

    pub fn len(&self) -> usize {
        self.certs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }

    pub(super) fn certs(&self) -> &[Cert] {
        &self.certs
    }
}

/// Parses every certificate in a keyring file; ones that cannot be parsed are skipped as long as
/// one remains, since a distribution keyring may carry old keys in formats nobody signs with.
fn parse_certs(bytes: &[u8]) -> Result<Vec<Cert>, String> {
    let parser = CertParser::from_bytes(bytes).map_err(|e| e.to_string())?;
    let mut certs = Vec::new();
    let mut last_error = String::from("empty");
    for cert in parser {
        match cert {
            Ok(c) => certs.push(c),
            Err(e) => last_error = e.to_string(),
        }
    }
    if certs.is_empty() {
        return Err(last_error);
    }
    Ok(certs)
}
