//! OpenPGP keyrings and the signature checks that gate every sync.
//!
//! The pure-Rust `pgp` crate (rPGP) replaces gpgv, so a fresh machine builds debsync with cargo
//! alone. Rules, as apt applies them: at least one signature must verify against a key (primary
//! or subkey) of the pinned keyring; signatures by keys not in the keyring are ignored, not
//! fatal, because Debian signs with several keys and a keyring may hold only some of them.
//!
//! [`VerifiedRelease`] can only be built here, and it holds the Release parsed from exactly the
//! bytes the signature covers: text around the signed block can never reach the parser.

use std::io::BufReader;
use std::path::{Path, PathBuf};

use pgp::composed::{CleartextSignedMessage, Deserializable, DetachedSignature, SignedPublicKey};
use pgp::packet::Signature;
use pgp::types::KeyDetails;

use crate::archive::release::{Release, ReleaseError};

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("{path}: cannot read keyring: {source}")]
    KeyringRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: no usable OpenPGP public key in keyring ({detail})")]
    KeyringEmpty { path: PathBuf, detail: String },
    #[error("{what}: not a valid OpenPGP signed message: {detail}")]
    Malformed { what: String, detail: String },
    #[error(
        "{what}: no valid signature by a key in the keyring ({signatures} signature(s), issuers: {issuers})"
    )]
    NoGoodSignature {
        what: String,
        signatures: usize,
        issuers: String,
    },
    #[error("{what}: signed Release text is not valid: {source}")]
    Release { what: String, source: ReleaseError },
}

/// Public keys trusted to sign one upstream's Release files.
pub struct Keyring {
    keys: Vec<SignedPublicKey>,
}

impl Keyring {
    /// Loads binary (`.gpg`, many keys) or ASCII-armored (`.asc`) keyrings.
    pub fn load(paths: &[PathBuf]) -> Result<Keyring, VerifyError> {
        let mut keys = Vec::new();
        for path in paths {
            let bytes = std::fs::read(path).map_err(|source| VerifyError::KeyringRead {
                path: path.clone(),
                source,
            })?;
            let found = parse_keys(&bytes).map_err(|detail| VerifyError::KeyringEmpty {
                path: path.clone(),
                detail,
            })?;
            keys.extend(found);
        }
        Ok(Keyring { keys })
    }

    pub fn from_keys(keys: Vec<SignedPublicKey>) -> Keyring {
        Keyring { keys }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The primary fingerprint of the key that made `sig` over `data`, if any key did.
    fn signer(&self, sig: &Signature, data: &[u8]) -> Option<String> {
        self.keys.iter().find_map(|key| {
            let ok = sig.verify(&key.primary_key, data).is_ok()
                || key
                    .public_subkeys
                    .iter()
                    .any(|sub| sig.verify(&sub.key, data).is_ok());
            ok.then(|| key.primary_key.fingerprint().to_string())
        })
    }
}

/// Parses every key in a keyring file; keys rPGP cannot parse are skipped as long as one remains,
/// since a distribution keyring may carry old keys in formats nobody signs with any more.
fn parse_keys(bytes: &[u8]) -> Result<Vec<SignedPublicKey>, String> {
    let armored = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .is_some_and(|i| bytes[i..].starts_with(b"-----BEGIN"));
    let iter: Box<dyn Iterator<Item = pgp::errors::Result<SignedPublicKey>>> = if armored {
        SignedPublicKey::from_armor_many(BufReader::new(bytes))
            .map(|(iter, _)| iter)
            .map_err(|e| e.to_string())?
    } else {
        SignedPublicKey::from_bytes_many(BufReader::new(bytes)).map_err(|e| e.to_string())?
    };
    let mut keys = Vec::new();
    let mut last_error = String::from("empty");
    for key in iter {
        match key {
            Ok(k) => keys.push(k),
            Err(e) => last_error = e.to_string(),
        }
    }
    if keys.is_empty() {
        return Err(last_error);
    }
    Ok(keys)
}

/// A Release whose signature checked out, with the exact text that was signed.
#[derive(Debug, Clone)]
pub struct VerifiedRelease {
    release: Release,
    signers: Vec<String>,
}

impl VerifiedRelease {
    pub fn release(&self) -> &Release {
        &self.release
    }

    /// Primary-key fingerprints of the keys whose signatures verified.
    pub fn signers(&self) -> &[String] {
        &self.signers
    }
}

/// Verifies a clearsigned `InRelease`. `what` names it in errors (a URL or path).
pub fn verify_inrelease(
    bytes: &[u8],
    keyring: &Keyring,
    what: &str,
) -> Result<VerifiedRelease, VerifyError> {
    let malformed = |detail: String| VerifyError::Malformed {
        what: what.to_string(),
        detail,
    };
    let text = std::str::from_utf8(bytes).map_err(|_| malformed("not UTF-8".into()))?;
    let (msg, _) =
        CleartextSignedMessage::from_string(text).map_err(|e| malformed(e.to_string()))?;
    let signed = msg.signed_text();
    let signers = good_signers(msg.signatures(), signed.as_bytes(), keyring, what)?;
    // The signature covers the CRLF-normalised text; parse that text back in LF form.
    let body = signed.replace("\r\n", "\n");
    let release = Release::parse(&body).map_err(|source| VerifyError::Release {
        what: what.to_string(),
        source,
    })?;
    Ok(VerifiedRelease { release, signers })
}

/// Verifies `Release` against a detached `Release.gpg` (armored or binary).
pub fn verify_detached(
    release: &[u8],
    signature: &[u8],
    keyring: &Keyring,
    what: &str,
) -> Result<VerifiedRelease, VerifyError> {
    let malformed = |detail: String| VerifyError::Malformed {
        what: format!("{what}.gpg"),
        detail,
    };
    let sigs: Vec<Signature> = DetachedSignature::from_reader_many(BufReader::new(signature))
        .map_err(|e| malformed(e.to_string()))?
        .0
        .filter_map(|s| s.ok().map(|d| d.signature))
        .collect();
    if sigs.is_empty() {
        return Err(malformed("no signature packet".into()));
    }
    let signers = good_signers(&sigs, release, keyring, what)?;
    let text = std::str::from_utf8(release).map_err(|_| VerifyError::Malformed {
        what: what.to_string(),
        detail: "not UTF-8".into(),
    })?;
    let release = Release::parse(text).map_err(|source| VerifyError::Release {
        what: what.to_string(),
        source,
    })?;
    Ok(VerifiedRelease { release, signers })
}

fn good_signers(
    sigs: &[Signature],
    data: &[u8],
    keyring: &Keyring,
    what: &str,
) -> Result<Vec<String>, VerifyError> {
    let signers: Vec<String> = sigs
        .iter()
        .filter_map(|s| keyring.signer(s, data))
        .collect();
    if signers.is_empty() {
        let issuers: Vec<String> = sigs
            .iter()
            .flat_map(|s| {
                s.issuer_fingerprint()
                    .into_iter()
                    .map(|f| f.to_string())
                    .chain(s.issuer_key_id().into_iter().map(|k| format!("{k:?}")))
                    .collect::<Vec<_>>()
            })
            .collect();
        return Err(VerifyError::NoGoodSignature {
            what: what.to_string(),
            signatures: sigs.len(),
            issuers: if issuers.is_empty() {
                "none".into()
            } else {
                issuers.join(", ")
            },
        });
    }
    Ok(signers)
}

/// Convenience for callers holding a path.
pub fn load_keyring(path: &Path) -> Result<Keyring, VerifyError> {
    Keyring::load(&[path.to_path_buf()])
}

#[cfg(test)]
mod tests {
    use super::*;

    const INRELEASE: &[u8] = include_bytes!("../tests/fixtures/bookworm-InRelease");

    fn debian_keyring() -> Keyring {
        load_keyring(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/debian-archive-keyring.gpg"
        )))
        .unwrap()
    }

    #[test]
    fn real_bookworm_inrelease_verifies_with_three_signatures() {
        let keyring = debian_keyring();
        assert!(keyring.len() >= 3);
        let v = verify_inrelease(INRELEASE, &keyring, "bookworm/InRelease").unwrap();
        assert_eq!(v.signers().len(), 3, "signers: {:?}", v.signers());
        assert_eq!(v.release().codename.as_deref(), Some("bookworm"));
    }

    #[test]
    fn one_byte_tamper_fails() {
        let keyring = debian_keyring();
        let mut bad = INRELEASE.to_vec();
        let pos = bad.windows(8).position(|w| w == b"bookworm").unwrap();
        bad[pos] = b'B';
        let err = verify_inrelease(&bad, &keyring, "bookworm/InRelease").unwrap_err();
        assert!(
            matches!(err, VerifyError::NoGoodSignature { signatures: 3, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("bookworm/InRelease"));
    }

    #[test]
    fn garbage_is_malformed() {
        let err = verify_inrelease(b"Origin: x\n", &debian_keyring(), "x").unwrap_err();
        assert!(matches!(err, VerifyError::Malformed { .. }), "{err}");
    }
}
