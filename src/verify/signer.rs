//! Which signatures count: the verdict apt reaches, whichever verifier it runs.
//!
//! apt runs gpgv (Debian ≤ 12) or sqv (Debian ≥ 13) and sorts each signature by its status
//! (apt's `methods/gpgv.cc`): GOODSIG is good; EXPKEYSIG, REVKEYSIG, EXPSIG and ERRSIG are
//! "worthless"; BADSIG is bad; NO_PUBKEY is ignored. A file is refused when it has no good
//! signature, or any bad one. The two verifiers judge key validity at different times:
//!
//! - sqv (sequoia's standard policy) requires the key to have been valid when the signature was
//!   made: the certificate and, for a subkey, its binding (with the subkey's back-signature and
//!   the signing flag) alive and unrevoked at the signature's creation time; a hard revocation
//!   (compromise, or no reason given) counts whenever it was made.
//! - gpgv reports EXPKEYSIG for a good signature by a key that has expired *now*, and
//!   REVKEYSIG for one by a key revoked now, whenever the signature was made.
//!
//! A mirror must publish only what every apt client accepts, so a signature counts here only if
//! it passes both: sequoia's standard policy at the signature's creation time, and the same
//! checks (alive, unrevoked, bound, signing-capable) again at the verification time.

use std::time::{SystemTime, UNIX_EPOCH};

use sequoia_openpgp as openpgp;

use openpgp::cert::prelude::*;
use openpgp::packet::Signature;
use openpgp::packet::key::PublicParts;
use openpgp::parse::stream::{
    GoodChecksum, MessageLayer, MessageStructure, VerificationError, VerificationHelper,
};
use openpgp::policy::Policy;
use openpgp::types::RevocationStatus;
use openpgp::{Cert, Fingerprint, KeyHandle};

use super::Keyring;
use crate::archive::date::format_rfc2822;

/// What the signatures of one file came to.
#[derive(Debug, Default)]
pub(super) struct Outcome {
    /// Primary fingerprints of the keys whose signatures count.
    pub good: Vec<String>,
    /// Signatures by a key of the keyring that do not match the data (gpgv's BADSIG).
    pub bad: Vec<String>,
    /// Why each other signature does not count, one phrase each.
    pub rejected: Vec<String>,
    /// Signatures seen.
    pub total: usize,
    /// The message was a cleartext-signed one (`-----BEGIN PGP SIGNED MESSAGE-----`).
    pub cleartext: bool,
    /// It had compression or encryption layers, which no Release signature has.
    pub other_layers: bool,
}

/// The sequoia verification helper: hands over the keyring, records an [`Outcome`].
///
/// `check` always returns `Ok` so the verified data reaches the caller, which then builds a
/// `VerifiedRelease` only if the recorded outcome has a good signature and no bad one.
pub(super) struct Helper<'a> {
    keyring: &'a Keyring,
    policy: &'a dyn Policy,
    now: SystemTime,
    pub outcome: Option<Outcome>,
}

impl<'a> Helper<'a> {
    pub(super) fn new(keyring: &'a Keyring, policy: &'a dyn Policy, now: SystemTime) -> Helper<'a> {
        Helper {
            keyring,
            policy,
            now,
            outcome: None,
        }
    }

    fn judge(&self, result: Result<GoodChecksum<'_>, VerificationError<'_>>, o: &mut Outcome) {
        match result {
            Ok(GoodChecksum { ka, .. }) => {
                let key = ka.key().fingerprint();
                match problem_at(ka.cert(), &key, self.policy, self.now) {
                    None => o.good.push(ka.cert().fingerprint().to_hex()),
                    Some(p) => o.rejected.push(p),
                }
            }
            Err(VerificationError::MissingKey { sig }) => {
                o.rejected
                    .push(format!("signature by {} not in the keyring", issuers(sig)));
            }
            Err(VerificationError::UnboundKey { sig, cert, error }) => o.rejected.push(format!(
                "signing {} of key {} not validly bound at the signature's creation time {} \
                 ({error:#})",
                issuers(sig),
                cert.fingerprint().to_hex(),
                created(sig)
            )),
            Err(VerificationError::BadKey { sig, ka, error }) => {
                // gpgv checks the signature before the key's validity: BADSIG wins.
                if sig.verify_document(ka.key()).is_err_and(|e| mismatch(&e)) {
                    o.bad.push(who(&ka));
                } else {
                    let why = problem(&ka).unwrap_or_else(|| format!("{}: {error}", who(&ka)));
                    o.rejected.push(format!(
                        "{why} (at the signature's creation time {})",
                        created(sig)
                    ));
                }
            }
            Err(VerificationError::BadSignature { ka, error, .. }) => {
                if mismatch(&error) {
                    o.bad.push(who(&ka));
                } else {
                    o.rejected
                        .push(format!("signature by {}: {error}", who(&ka)));
                }
            }
            Err(VerificationError::MalformedSignature { error, .. }) => {
                o.rejected.push(format!("malformed signature: {error}"));
            }
            Err(e) => o.rejected.push(e.to_string()),
        }
    }
}

impl VerificationHelper for Helper<'_> {
    fn get_certs(&mut self, _ids: &[KeyHandle]) -> openpgp::Result<Vec<Cert>> {
        Ok(self.keyring.certs().to_vec())
    }

    fn check(&mut self, structure: MessageStructure<'_>) -> openpgp::Result<()> {
        let mut o = Outcome {
            cleartext: structure.processed_csf_message(),
            ..Outcome::default()
        };
        for layer in structure {
            match layer {
                MessageLayer::SignatureGroup { results } => {
                    for result in results {
                        o.total += 1;
                        self.judge(result, &mut o);
                    }
                }
                _ => o.other_layers = true,
            }
        }
        self.outcome = Some(o);
        Ok(())
    }
}

/// Why the key `key` of `cert` cannot sign at `t`, or `None` if it can: the certificate has a
/// valid self-signature at `t`, `key` is bound at `t`, and [`problem`] finds nothing.
pub(super) fn problem_at(
    cert: &Cert,
    key: &Fingerprint,
    policy: &dyn Policy,
    t: SystemTime,
) -> Option<String> {
    let vc = match cert.with_policy(policy, t) {
        Ok(vc) => vc,
        Err(e) => {
            return Some(format!(
                "key {}: no valid self-signature at {}: {e}",
                cert.fingerprint().to_hex(),
                date(t)
            ));
        }
    };
    let Some(ka) = vc.keys().key_handle(key.clone()).next() else {
        return Some(format!(
            "key {}: subkey {} not validly bound at {}",
            cert.fingerprint().to_hex(),
            key.to_hex(),
            date(t)
        ));
    };
    problem(&ka)
}

/// Why a key bound at some time cannot sign at that time: the certificate expired or was
/// revoked, the subkey expired or was revoked, or it lacks the signing flag.
pub(super) fn problem(ka: &ValidErasedKeyAmalgamation<'_, PublicParts>) -> Option<String> {
    let vc = ka.valid_cert();
    let primary = vc.fingerprint().to_hex();
    if let Err(e) = vc.alive() {
        return Some(format!("key {primary} {}", not_alive(&e)));
    }
    if let RevocationStatus::Revoked(sigs) = vc.revocation_status() {
        return Some(format!("key {primary} {}", revoked(&sigs)));
    }
    if !ka.primary() {
        let sub = ka.key().fingerprint().to_hex();
        if let Err(e) = ka.alive() {
            return Some(format!(
                "signing subkey {sub} of key {primary} {}",
                not_alive(&e)
            ));
        }
        if let RevocationStatus::Revoked(sigs) = ka.revocation_status() {
            return Some(format!(
                "signing subkey {sub} of key {primary} {}",
                revoked(&sigs)
            ));
        }
    }
    if !ka.for_signing() {
        return Some(format!("{} is not marked for signing", who(ka)));
    }
    None
}

/// `key <primary>` or `subkey <sub> of key <primary>`.
fn who(ka: &ValidErasedKeyAmalgamation<'_, PublicParts>) -> String {
    let primary = ka.cert().fingerprint().to_hex();
    if ka.primary() {
        format!("key {primary}")
    } else {
        format!(
            "subkey {} of key {primary}",
            ka.key().fingerprint().to_hex()
        )
    }
}

/// Whether a signature check failed because the signature does not match the data (rather than
/// because of policy, time or an unsupported algorithm). sequoia's backends report a mismatch
/// as `BadSignature` (RSA, ECDSA) or `ManipulatedMessage` (EdDSA, DSA).
fn mismatch(e: &openpgp::anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<openpgp::Error>(),
        Some(openpgp::Error::BadSignature(_) | openpgp::Error::ManipulatedMessage)
    )
}

fn not_alive(e: &openpgp::anyhow::Error) -> String {
    match e.downcast_ref::<openpgp::Error>() {
        Some(openpgp::Error::Expired(t)) => format!("expired on {}", date(*t)),
        Some(openpgp::Error::NotYetLive(t)) => format!("not valid before {}", date(*t)),
        _ => format!("not alive: {e:#}"),
    }
}

fn revoked(sigs: &[&Signature]) -> String {
    let Some(sig) = sigs.first() else {
        return "revoked".into();
    };
    let when = sig
        .signature_creation_time()
        .map_or_else(String::new, |t| format!(" on {}", date(t)));
    match sig.reason_for_revocation() {
        Some((reason, msg)) if !msg.is_empty() => format!(
            "revoked{when} ({reason}: {:?})",
            String::from_utf8_lossy(msg).trim()
        ),
        Some((reason, _)) => format!("revoked{when} ({reason})"),
        None => format!("revoked{when}"),
    }
}

/// `key <fingerprint>` (or key ID) of a signature's issuer, as the signature names it.
fn issuers(sig: &Signature) -> String {
    // get_issuers() lists fingerprints before key IDs.
    match sig.get_issuers().first() {
        Some(id) => format!("key {}", id.to_hex()),
        None => "an unnamed key".into(),
    }
}

fn created(sig: &Signature) -> String {
    sig.signature_creation_time()
        .map_or_else(|| "(none)".into(), date)
}

fn date(t: SystemTime) -> String {
    let secs = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    };
    format_rfc2822(secs)
}
