//! SHA-256 digests as values.

use std::fmt;

/// A SHA-256 digest. Parsing accepts exactly 64 hex digits, any case.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256(pub [u8; 32]);

impl Sha256 {
    pub fn from_hex(s: &str) -> Option<Sha256> {
        Sha256::from_hex_bytes(s.as_bytes())
    }

    pub fn from_hex_bytes(s: &[u8]) -> Option<Sha256> {
        if s.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(Sha256(out))
    }

    /// Digest of a byte slice.
    pub fn digest(data: &[u8]) -> Sha256 {
        use sha2::Digest;
        Sha256(sha2::Sha256::digest(data).into())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256({})", self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_rejects() {
        let h = Sha256::digest(b"abc");
        assert_eq!(
            h.to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(Sha256::from_hex(&h.to_hex().to_uppercase()), Some(h));
        assert_eq!(Sha256::from_hex("ba78"), None);
        assert_eq!(Sha256::from_hex(&"zz".repeat(32)), None);
    }
}
