//! OpenPGP signing keys made inside the test process with the pure-Rust `pgp` crate.
//!
//! Keys are v4 keys with an Ed25519 ("legacy" EdDSA, algorithm 22) primary that certifies and
//! signs and has no subkeys: that is the variant every verifier apt may use (gpgv 2.2/2.4, sqv)
//! understands. RFC 9580 Ed25519 (algorithm 27) is not accepted by gpgv 2.2/2.4.
//!
//! The key creation time is one day in the past so a signature made "now" is never older than
//! its key, even with a second's clock skew between the key and the signature.

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pgp::composed::{
    ArmorOptions, CleartextSignedMessage, Deserializable, DetachedSignature, EncryptionCaps,
    KeyType, SecretKeyParamsBuilder, SignedPublicKey, SignedSecretKey,
};
use pgp::crypto::hash::HashAlgorithm;
use pgp::ser::Serialize;
use pgp::types::{KeyDetails, Password, Timestamp};

/// A secret signing key and its public certificate.
#[derive(Clone, Debug)]
pub struct TestKey {
    secret: SignedSecretKey,
    public: SignedPublicKey,
}

impl TestKey {
    /// The process-wide Ed25519 archive key (generated once, cached in a `OnceLock`).
    pub fn shared() -> &'static TestKey {
        static KEY: OnceLock<TestKey> = OnceLock::new();
        KEY.get_or_init(|| TestKey::ed25519("debsync test archive <archive@test.invalid>"))
    }

    /// A second, unrelated cached Ed25519 key: sign with it for "unknown key" tests.
    pub fn other() -> &'static TestKey {
        static KEY: OnceLock<TestKey> = OnceLock::new();
        KEY.get_or_init(|| TestKey::ed25519("unrelated signer <other@test.invalid>"))
    }

    /// A fresh Ed25519 (legacy EdDSA, v4) key that can sign. Takes milliseconds.
    pub fn ed25519(user_id: &str) -> TestKey {
        Self::generate(KeyType::Ed25519Legacy, user_id)
    }

    /// A fresh RSA key (2048 or 3072 bits) that can sign. Slow in debug builds (seconds):
    /// prefer [`TestKey::ed25519`] unless the test is about RSA.
    pub fn rsa(bits: u32, user_id: &str) -> TestKey {
        Self::generate(KeyType::Rsa(bits), user_id)
    }

    fn generate(key_type: KeyType, user_id: &str) -> TestKey {
        let created = SystemTime::now() - Duration::from_secs(86_400);
        let created = created.duration_since(UNIX_EPOCH).unwrap().as_secs() as u32;
        let params = SecretKeyParamsBuilder::default()
            .key_type(key_type)
            .can_certify(true)
            .can_sign(true)
            .can_encrypt(EncryptionCaps::None)
            .created_at(Timestamp::from_secs(created))
            .primary_user_id(user_id.into())
            .build()
            .expect("key params");
        let secret = params.generate(rand::thread_rng()).expect("generate key");
        let public = SignedPublicKey::from(secret.clone());
        TestKey { secret, public }
    }

    /// The public certificate, e.g. to verify with `pgp` directly.
    pub fn public_key(&self) -> &SignedPublicKey {
        &self.public
    }

    /// Upper-case hex fingerprint of the primary key.
    pub fn fingerprint(&self) -> String {
        hex::encode_upper(self.public.fingerprint().as_bytes())
    }

    /// The public key as a binary keyring (what `/usr/share/keyrings/*.gpg` holds).
    pub fn public_binary(&self) -> Vec<u8> {
        self.public.to_bytes().expect("serialize public key")
    }

    /// The public key ASCII-armored (`-----BEGIN PGP PUBLIC KEY BLOCK-----`).
    pub fn public_armored(&self) -> String {
        self.public
            .to_armored_string(ArmorOptions::default())
            .expect("armor public key")
    }

    /// Writes the binary keyring to `path` (creating parent directories).
    pub fn write_keyring(&self, path: &Path) {
        write_creating_parents(path, &self.public_binary());
    }

    /// Writes the armored `.asc` public key to `path` (creating parent directories).
    pub fn write_armored(&self, path: &Path) {
        write_creating_parents(path, self.public_armored().as_bytes());
    }

    /// Clear-signs `text` (an `InRelease`): SHA-256, text signature, `Hash: SHA256` header.
    ///
    /// Laid out like `gpg --clearsign`: the text's final newline is the line break before
    /// `-----BEGIN PGP SIGNATURE-----` and is not signed. (`pgp` itself always appends a
    /// newline after the text, so a text ending in `\n` would otherwise get an extra blank line
    /// that is part of the signed data.)
    pub fn clearsign(&self, text: &str) -> String {
        let text = text.strip_suffix('\n').unwrap_or(text);
        let msg = CleartextSignedMessage::sign(
            rand::thread_rng(),
            text,
            &self.secret.primary_key,
            &Password::empty(),
        )
        .expect("clearsign");
        msg.to_armored_string(ArmorOptions::default())
            .expect("armor clearsigned message")
    }

    /// An armored detached binary signature over `data` (a `Release.gpg`), SHA-256.
    pub fn detach_sign(&self, data: &[u8]) -> String {
        let sig = DetachedSignature::sign_binary_data(
            rand::thread_rng(),
            &self.secret.primary_key,
            &Password::empty(),
            HashAlgorithm::Sha256,
            data,
        )
        .expect("detached signature");
        sig.to_armored_string(ArmorOptions::default())
            .expect("armor signature")
    }

    /// Verifies a clearsigned message against this key; returns the signed text as `pgp`
    /// normalizes it (CRLF line ends, no final line end), or the error as a string.
    pub fn verify_clearsigned(&self, armored: &str) -> Result<String, String> {
        let (msg, _headers) =
            CleartextSignedMessage::from_string(armored).map_err(|e| format!("parse: {e}"))?;
        msg.verify(&self.public)
            .map_err(|e| format!("verify: {e}"))?;
        Ok(msg.signed_text())
    }

    /// Verifies an armored detached signature over `data` against this key.
    pub fn verify_detached(&self, armored: &str, data: &[u8]) -> Result<(), String> {
        let (sig, _headers) =
            DetachedSignature::from_string(armored).map_err(|e| format!("parse: {e}"))?;
        sig.verify(&self.public, data)
            .map_err(|e| format!("verify: {e}"))
    }
}

fn write_creating_parents(path: &Path, bytes: &[u8]) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}
