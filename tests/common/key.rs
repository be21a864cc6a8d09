//! OpenPGP signing keys for the tests: [`TestKey`], made inside the test process with the
//! pure-Rust `pgp` crate (fast, the archive's usual key), and [`GpgKey`], made by the real `gpg`
//! for the key-validity cases (expired, revoked, subkeys; see [`GpgCase`]).
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

/// The validity states [`GpgKey`] makes, each a way a Release signature must not count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GpgCase {
    /// Primary key signs; it was made on 2020-01-01, expired a day later, and the signature
    /// was made while it was valid (sqv would accept it; gpgv says EXPKEYSIG, apt refuses).
    Expired,
    /// Primary key signs, without expiry; then its revocation certificate (no reason given:
    /// a hard revocation) is imported.
    Revoked,
    /// Like `Revoked`, but the revocation says "key is superseded" and is made a year after
    /// the signature (a soft revocation: sqv accepts, gpgv says REVKEYSIG, apt refuses).
    Superseded,
    /// Certify-only primary without expiry; a signing subkey made on 2020-01-01 that expired
    /// a day later; the signature was made by the subkey while it was valid.
    ExpiredSubkey,
    /// Like `ExpiredSubkey` but the subkey never expires: a valid signature by a subkey.
    ValidSubkey,
    /// A signing subkey whose binding signature was made by another primary key: the subkey is
    /// grafted onto this key, so its binding does not verify.
    UnboundSubkey,
}

/// A key made by the real `gpg` in its own `GNUPGHOME` (which is removed, and its agent
/// stopped, on drop), for the key-validity cases: expired, revoked, subkeys. Signatures are
/// made with `--faked-system-time` when the case needs a past date.
pub struct GpgKey {
    home: tempfile::TempDir,
    case: GpgCase,
    /// Primary fingerprint of the certificate the keyring holds.
    fingerprint: String,
    /// Fingerprint of the key that signs (the primary or a subkey).
    signing: String,
    /// `--faked-system-time` for signing, if the case needs one.
    sign_time: Option<&'static str>,
    public: Vec<u8>,
}

/// 2020-01-01T00:00:00Z: when the expiring keys are made.
const GPG_EPOCH: &str = "20200101T000000";
/// An hour later: when their signatures are made (the keys are valid then).
const GPG_SIGN_TIME: &str = "20200101T010000";

impl GpgKey {
    pub fn new(case: GpgCase) -> GpgKey {
        let home = private_dir();
        let mut key = GpgKey {
            home,
            case,
            fingerprint: String::new(),
            signing: String::new(),
            sign_time: None,
            public: Vec::new(),
        };
        let uid = format!("debsync {case:?} key <{case:?}@test.invalid>").to_lowercase();
        match case {
            GpgCase::Expired => {
                key.gpg_at(
                    GPG_EPOCH,
                    &["--quick-gen-key", &uid, "ed25519", "sign", "1d"],
                );
                key.fingerprint = key.fingerprints()[0].clone();
                key.signing = key.fingerprint.clone();
                key.sign_time = Some(GPG_SIGN_TIME);
            }
            GpgCase::Revoked | GpgCase::Superseded => {
                key.gpg_at(
                    GPG_EPOCH,
                    &["--quick-gen-key", &uid, "ed25519", "sign", "never"],
                );
                key.fingerprint = key.fingerprints()[0].clone();
                key.signing = key.fingerprint.clone();
                key.sign_time = Some(GPG_SIGN_TIME);
                let rev = if case == GpgCase::Revoked {
                    // gpg writes one at key creation; its armor line is defused with a ':'.
                    let path = key
                        .home
                        .path()
                        .join(format!("openpgp-revocs.d/{}.rev", key.fingerprint));
                    std::fs::read_to_string(path)
                        .unwrap()
                        .replace(":-----BEGIN PGP", "-----BEGIN PGP")
                } else {
                    key.superseded_revocation()
                };
                // The signing home keeps the unrevoked key (gpg will not sign with a revoked
                // one); the certificate is revoked in a second, public-only home.
                let public = key.home.path().join("public.gpg");
                let revocation = key.home.path().join("revocation.asc");
                std::fs::write(&public, key.gpg(&["--export", &key.fingerprint.clone()])).unwrap();
                std::fs::write(&revocation, rev).unwrap();
                let other = private_dir();
                for file in [&public, &revocation] {
                    gpg_in(
                        other.path(),
                        None,
                        &["--import", file.to_str().unwrap()],
                        "",
                    );
                }
                key.public = gpg_in(other.path(), None, &["--export", &key.fingerprint], "");
                return key;
            }
            GpgCase::ExpiredSubkey | GpgCase::ValidSubkey => {
                key.gpg_at(
                    GPG_EPOCH,
                    &["--quick-gen-key", &uid, "ed25519", "cert", "never"],
                );
                key.fingerprint = key.fingerprints()[0].clone();
                let expire = if case == GpgCase::ExpiredSubkey {
                    "1d"
                } else {
                    "never"
                };
                let fpr = key.fingerprint.clone();
                key.gpg_at(
                    GPG_EPOCH,
                    &["--quick-add-key", &fpr, "ed25519", "sign", expire],
                );
                key.signing = key.fingerprints()[1].clone();
                key.sign_time = Some(GPG_SIGN_TIME);
            }
            GpgCase::UnboundSubkey => {
                // Key A has the signing subkey; key B is what the keyring trusts.
                key.gpg(&[
                    "--quick-gen-key",
                    "a <a@test.invalid>",
                    "ed25519",
                    "cert",
                    "never",
                ]);
                let a = key.fingerprints()[0].clone();
                key.gpg(&["--quick-add-key", &a, "ed25519", "sign", "never"]);
                let subkey = key.fingerprints()[1].clone();
                key.gpg(&["--quick-gen-key", &uid, "ed25519", "cert", "never"]);
                let b = key.fingerprints()[2].clone();
                let export = |fpr: &str| {
                    let bytes = key.gpg(&["--export", fpr]);
                    SignedPublicKey::from_bytes(&bytes[..]).expect("parse gpg export")
                };
                let (a_key, b_key) = (export(&a), export(&b));
                assert_eq!(a_key.public_subkeys.len(), 1);
                let grafted = SignedPublicKey::new(
                    b_key.primary_key.clone(),
                    b_key.details.clone(),
                    a_key.public_subkeys.clone(),
                );
                key.fingerprint = b;
                key.signing = subkey;
                key.public = grafted.to_bytes().expect("serialize grafted key");
                return key;
            }
        }
        key.public = key.gpg(&["--export", &key.fingerprint.clone()]);
        key
    }

    /// Primary fingerprint of the key in the keyring.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Fingerprint of the key that makes the signatures (a subkey in the subkey cases).
    pub fn signing_fingerprint(&self) -> &str {
        &self.signing
    }

    pub fn case(&self) -> GpgCase {
        self.case
    }

    /// The certificate as a binary keyring, as verifiers see it (revocation included).
    pub fn public_binary(&self) -> &[u8] {
        &self.public
    }

    /// `gpg --clearsign` of `text` by the signing key (at the case's signing time).
    pub fn clearsign(&self, text: &str) -> String {
        let input = self.home.path().join("input");
        std::fs::write(&input, text).unwrap();
        let out = self.sign(&["--clearsign", input.to_str().unwrap()]);
        String::from_utf8(out).unwrap()
    }

    /// `gpg --detach-sign --armor` of `data` by the signing key.
    pub fn detach_sign(&self, data: &[u8]) -> String {
        let input = self.home.path().join("input");
        std::fs::write(&input, data).unwrap();
        let out = self.sign(&["--armor", "--detach-sign", input.to_str().unwrap()]);
        String::from_utf8(out).unwrap()
    }

    fn sign(&self, args: &[&str]) -> Vec<u8> {
        let user = format!("{}!", self.signing);
        let mut all = vec![
            "--digest-algo",
            "SHA256",
            "--local-user",
            &user,
            "--output",
            "-",
        ];
        all.extend_from_slice(args);
        match self.sign_time {
            Some(t) => self.gpg_at(t, &all),
            None => self.gpg(&all),
        }
    }

    /// A revocation certificate with reason "key is superseded", dated a year after the key.
    fn superseded_revocation(&self) -> String {
        let out = self.gpg_input(
            Some("20210101T000000"),
            &[
                "--command-fd",
                "0",
                "--armor",
                "--output",
                "-",
                "--gen-revoke",
                &self.fingerprint,
            ],
            "y\n2\nreplaced by a newer key\n\ny\n",
        );
        String::from_utf8(out).unwrap()
    }

    /// Primary and subkey fingerprints of every key in the home, in order.
    fn fingerprints(&self) -> Vec<String> {
        let out = self.gpg(&["--with-colons", "--list-keys"]);
        String::from_utf8(out)
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("fpr:"))
            .map(|l| l.split(':').nth(9).unwrap().to_string())
            .collect()
    }

    fn gpg(&self, args: &[&str]) -> Vec<u8> {
        self.gpg_input(None, args, "")
    }

    fn gpg_at(&self, time: &str, args: &[&str]) -> Vec<u8> {
        self.gpg_input(Some(time), args, "")
    }

    fn gpg_input(&self, time: Option<&str>, args: &[&str], stdin: &str) -> Vec<u8> {
        gpg_in(self.home.path(), time, args, stdin)
    }
}

/// A temp dir only its owner can enter, as gpg wants its home.
fn private_dir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

/// Runs gpg with `home` as `GNUPGHOME` (at the faked `time`, if any); panics unless it succeeds,
/// returns its stdout.
fn gpg_in(home: &Path, time: Option<&str>, args: &[&str], stdin: &str) -> Vec<u8> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut cmd = Command::new("gpg");
    cmd.env("GNUPGHOME", home)
        .args(["--no-tty", "--quiet", "--pinentry-mode", "loopback"])
        .args(["--passphrase", ""]);
    // Interactive commands (`--gen-revoke`) refuse `--batch`; they read `--command-fd`.
    if !args.contains(&"--command-fd") {
        cmd.arg("--batch");
    }
    if let Some(t) = time {
        cmd.args(["--faked-system-time", t, "--ignore-time-conflict"]);
    }
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run gpg");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "gpg {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

impl Drop for GpgKey {
    fn drop(&mut self) {
        // Stop the agent this home started (it would otherwise outlive the test).
        let _ = std::process::Command::new("gpgconf")
            .env("GNUPGHOME", self.home.path())
            .args(["--kill", "gpg-agent"])
            .status();
    }
}
