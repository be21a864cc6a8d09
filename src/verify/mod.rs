//! OpenPGP keyrings and the signature checks that gate every sync.
//!
//! sequoia-openpgp (pure-Rust crypto backend) replaces gpgv, so a fresh machine builds debsync
//! with cargo alone, and it checks what gpgv and sqv check, key validity included. The rules
//! ([`signer`] has the details):
//!
//! 1. A signature counts only if it verifies with a key of the pinned keyring (primary key or
//!    signing-capable subkey) that was valid when the signature was made (sequoia's standard
//!    policy, as sqv applies it) *and* is still valid now (not expired, not revoked: gpgv's
//!    EXPKEYSIG/REVKEYSIG, which apt treats as worthless).
//! 2. At least one signature must count. Signatures by keys not in the keyring are ignored,
//!    because Debian signs with several keys and a keyring may hold only some of them.
//! 3. A signature by a keyring key that does not match the data refuses the file even beside a
//!    good one, as apt does with gpgv's BADSIG.
//!
//! [`VerifiedRelease`] can only be built here, and it holds the Release parsed from exactly the
//! bytes the signature covers: text around the signed block can never reach the parser.

mod keyring;
mod signer;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sequoia_openpgp as openpgp;

use openpgp::parse::Parse;
use openpgp::parse::stream::{DetachedVerifierBuilder, VerifierBuilder};
use openpgp::policy::StandardPolicy;

use crate::archive::release::{Release, ReleaseError};

pub use keyring::Keyring;
use signer::{Helper, Outcome};

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
        "{what}: no valid signature by a key in the keyring ({signatures} signature(s): {detail})"
    )]
    NoGoodSignature {
        what: String,
        signatures: usize,
        detail: String,
    },
    #[error(
        "{what}: bad signature by {key} from the keyring beside a good one (apt refuses the file)"
    )]
    BadSignature { what: String, key: String },
    #[error("{what}: signed Release text is not valid: {source}")]
    Release { what: String, source: ReleaseError },
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

    /// Primary-key fingerprints (upper-case hex) of the keys whose signatures count.
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
    verify_inrelease_at(bytes, keyring, what, SystemTime::now())
}

/// Verifies `Release` against a detached `Release.gpg` (armored or binary).
pub fn verify_detached(
    release: &[u8],
    signature: &[u8],
    keyring: &Keyring,
    what: &str,
) -> Result<VerifiedRelease, VerifyError> {
    verify_detached_at(release, signature, keyring, what, SystemTime::now())
}

/// [`verify_inrelease`] with keys judged at `now`.
fn verify_inrelease_at(
    bytes: &[u8],
    keyring: &Keyring,
    what: &str,
    now: SystemTime,
) -> Result<VerifiedRelease, VerifyError> {
    let malformed = |detail: String| VerifyError::Malformed {
        what: what.to_string(),
        detail,
    };
    // apt reads InRelease only as a cleartext-signed message; so do we, before any parsing.
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace());
    if !start.is_some_and(|i| bytes[i..].starts_with(b"-----BEGIN PGP SIGNED MESSAGE-----")) {
        return Err(malformed(
            "no -----BEGIN PGP SIGNED MESSAGE----- header".into(),
        ));
    }
    let policy = StandardPolicy::new();
    let helper = Helper::new(keyring, &policy, now);
    let mut verifier = VerifierBuilder::from_bytes(bytes)
        .and_then(|b| b.with_policy(&policy, now, helper))
        .map_err(|e| malformed(format!("{e:#}")))?;
    let mut signed = Vec::new();
    verifier
        .read_to_end(&mut signed)
        .map_err(|e| malformed(e.to_string()))?;
    let outcome = verifier.into_helper().outcome;
    let outcome = outcome.ok_or_else(|| malformed("no signature".into()))?;
    if !outcome.cleartext || outcome.other_layers {
        return Err(malformed("not a cleartext-signed message".into()));
    }
    let signers = judge(outcome, what)?;
    let text = String::from_utf8(signed).map_err(|_| malformed("not UTF-8".into()))?;
    // The signature covers the CRLF-normalised text; parse that text back in LF form.
    let body = text.replace("\r\n", "\n");
    let release = Release::parse(&body).map_err(|source| VerifyError::Release {
        what: what.to_string(),
        source,
    })?;
    Ok(VerifiedRelease { release, signers })
}

/// [`verify_detached`] with keys judged at `now`.
fn verify_detached_at(
    release: &[u8],
    signature: &[u8],
    keyring: &Keyring,
    what: &str,
    now: SystemTime,
) -> Result<VerifiedRelease, VerifyError> {
    let malformed = |detail: String| VerifyError::Malformed {
        what: format!("{what}.gpg"),
        detail,
    };
    let policy = StandardPolicy::new();
    let helper = Helper::new(keyring, &policy, now);
    let mut verifier = DetachedVerifierBuilder::from_bytes(signature)
        .and_then(|b| b.with_policy(&policy, now, helper))
        .map_err(|e| malformed(format!("{e:#}")))?;
    verifier
        .verify_bytes(release)
        .map_err(|e| malformed(format!("{e:#}")))?;
    let outcome = verifier.into_helper().outcome;
    let outcome = outcome.filter(|o| o.total > 0);
    let outcome = outcome.ok_or_else(|| malformed("no signature packet".into()))?;
    let signers = judge(outcome, what)?;
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

/// apt's verdict on the signatures of one file: the signers that count, or why none does.
fn judge(outcome: Outcome, what: &str) -> Result<Vec<String>, VerifyError> {
    if outcome.good.is_empty() {
        let mut detail: Vec<String> = outcome
            .bad
            .iter()
            .map(|k| format!("bad signature by {k}"))
            .collect();
        detail.extend(outcome.rejected);
        return Err(VerifyError::NoGoodSignature {
            what: what.to_string(),
            signatures: outcome.total,
            detail: if detail.is_empty() {
                "none".into()
            } else {
                detail.join("; ")
            },
        });
    }
    if let Some(key) = outcome.bad.into_iter().next() {
        return Err(VerifyError::BadSignature {
            what: what.to_string(),
            key,
        });
    }
    let mut good: Vec<String> = Vec::new();
    for key in outcome.good {
        if !good.contains(&key) {
            good.push(key);
        }
    }
    Ok(good)
}

/// Convenience for callers holding a path.
pub fn load_keyring(path: &Path) -> Result<Keyring, VerifyError> {
    Keyring::load(&[path.to_path_buf()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    const INRELEASE: &[u8] = include_bytes!("../../tests/fixtures/bookworm-InRelease");

    /// Primary fingerprints of the three keys that signed the fixture, in signature order.
    const BOOKWORM_SIGNERS: [&str; 3] = [
        "B8B80B5B623EAB6AD8775C45B7C5D7D6350947F8",
        "04B54C3CDCA79751B16BC6B5225629DF75B188BD",
        "4D64FEC119C2029067D6E791F8D2585B8783D481",
    ];

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
        assert_eq!(v.signers(), BOOKWORM_SIGNERS);
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
    fn real_bookworm_inrelease_is_refused_once_its_keys_have_expired() {
        // 2040: every key that signed bookworm has expired by then (gpgv: EXPKEYSIG x3), although
        // each was valid when it signed.
        let later = UNIX_EPOCH + Duration::from_secs(2_208_988_800);
        let err = verify_inrelease_at(INRELEASE, &debian_keyring(), "bookworm/InRelease", later)
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, VerifyError::NoGoodSignature { signatures: 3, .. }),
            "{msg}"
        );
        assert_eq!(msg.matches("expired on").count(), 3, "{msg}");
        for key in BOOKWORM_SIGNERS {
            assert!(msg.contains(&format!("key {key} expired on")), "{msg}");
        }
        assert!(!msg.contains('\n'), "{msg}");
    }

    /// Key-validity rules on keys made here with sequoia, for exact times: a signature counts
    /// only if its key was valid when it signed *and* is valid when it is checked.
    mod validity {
        use super::*;
        use openpgp::cert::prelude::*;
        use openpgp::serialize::SerializeInto;
        use openpgp::serialize::stream::{Message, Signer};
        use openpgp::types::{KeyFlags, ReasonForRevocation};
        use std::io::Write;

        const DAY: u64 = 86_400;
        const RELEASE: &[u8] = b"Origin: Test\nSuite: stable\nCodename: test\nSHA256:\n \
            e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 0 main/binary-amd64/Packages\n";

        fn at(days: u64) -> SystemTime {
            // 2020-01-01 plus `days`.
            UNIX_EPOCH + Duration::from_secs(1_577_836_800 + days * DAY)
        }

        /// A signing key made on day 0 that expires on day 365; revoked on `revoked` if set.
        fn key(revoked: Option<(ReasonForRevocation, u64)>) -> Cert {
            let (cert, _) = CertBuilder::new()
                .set_creation_time(at(0))
                .set_validity_period(Duration::from_secs(365 * DAY))
                .set_primary_key_flags(KeyFlags::empty().set_certification().set_signing())
                .add_userid("validity test <v@test.invalid>")
                .generate()
                .unwrap();
            let Some((reason, day)) = revoked else {
                return cert;
            };
            let mut signer = keypair(&cert);
            let rev = CertRevocationBuilder::new()
                .set_reason_for_revocation(reason, b"test")
                .unwrap()
                .set_signature_creation_time(at(day))
                .unwrap()
                .build(&mut signer, &cert, None)
                .unwrap();
            cert.insert_packets(rev).unwrap().0
        }

        fn keypair(cert: &Cert) -> openpgp::crypto::KeyPair {
            cert.primary_key()
                .key()
                .clone()
                .parts_into_secret()
                .unwrap()
                .into_keypair()
                .unwrap()
        }

        /// A detached signature by `cert` made on `day`.
        fn sign(cert: &Cert, day: u64) -> Vec<u8> {
            let mut sink = Vec::new();
            let mut signer = Signer::new(Message::new(&mut sink), keypair(cert))
                .unwrap()
                .detached()
                .creation_time(at(day))
                .build()
                .unwrap();
            signer.write_all(RELEASE).unwrap();
            signer.finalize().unwrap();
            sink
        }

        /// Verifies a signature made on `signed` as of `checked`: `Ok(())` or the error line.
        fn check(cert: &Cert, signed: u64, checked: u64) -> Result<(), String> {
            let keyring = Keyring::from_bytes(&cert.to_vec().unwrap()).unwrap();
            let sig = sign(cert, signed);
            verify_detached_at(RELEASE, &sig, &keyring, "Release", at(checked))
                .map(|v| assert_eq!(v.signers(), [cert.fingerprint().to_hex()]))
                .map_err(|e| e.to_string())
        }

        #[test]
        fn valid_when_signed_and_when_checked() {
            check(&key(None), 10, 20).unwrap();
        }

        #[test]
        fn expired_since_the_signature() {
            // sqv would accept (valid when signed); gpgv says EXPKEYSIG; apt refuses.
            let cert = key(None);
            let err = check(&cert, 10, 400).unwrap_err();
            let fpr = cert.fingerprint().to_hex();
            assert!(
                err.contains(&format!(
                    "key {fpr} expired on Thu, 31 Dec 2020 00:00:00 +0000"
                )),
                "{err}"
            );
        }

        #[test]
        fn soft_revocation_counts_from_its_date() {
            let cert = key(Some((ReasonForRevocation::KeySuperseded, 100)));
            check(&cert, 10, 20).unwrap();
            let err = check(&cert, 10, 200).unwrap_err();
            assert!(
                err.contains(
                    "revoked on Fri, 10 Apr 2020 00:00:00 +0000 (Key is superseded: \"test\")"
                ),
                "{err}"
            );
        }

        #[test]
        fn signature_made_after_a_soft_revocation_never_counts() {
            let cert = key(Some((ReasonForRevocation::KeyRetired, 100)));
            let err = check(&cert, 150, 160).unwrap_err();
            assert!(err.contains("revoked on Fri, 10 Apr 2020"), "{err}");
        }

        #[test]
        fn hard_revocation_counts_for_earlier_signatures_too() {
            let cert = key(Some((ReasonForRevocation::KeyCompromised, 100)));
            let err = check(&cert, 10, 200).unwrap_err();
            assert!(err.contains("revoked on Fri, 10 Apr 2020"), "{err}");
            assert!(err.contains("compromised"), "{err}");
        }

        #[test]
        fn signature_made_before_the_key_existed_never_counts() {
            let cert = key(None);
            let keyring = Keyring::from_bytes(&cert.to_vec().unwrap()).unwrap();
            // Sign "yesterday" relative to key creation.
            let mut sink = Vec::new();
            let mut signer = Signer::new(Message::new(&mut sink), keypair(&cert))
                .unwrap()
                .detached()
                .creation_time(at(0) - Duration::from_secs(DAY))
                .build()
                .unwrap();
            signer.write_all(RELEASE).unwrap();
            signer.finalize().unwrap();
            let err = verify_detached_at(RELEASE, &sink, &keyring, "Release", at(20))
                .unwrap_err()
                .to_string();
            assert!(err.contains("Release: no valid signature"), "{err}");
            assert!(err.contains(&cert.fingerprint().to_hex()), "{err}");
        }
    }

    #[test]
    fn garbage_is_malformed() {
        let err = verify_inrelease(b"Origin: x\n", &debian_keyring(), "x").unwrap_err();
        assert!(matches!(err, VerifyError::Malformed { .. }), "{err}");
    }
}
