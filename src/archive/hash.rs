//! SHA-256 digests as values.

use std::fmt;

/// Hex digit values; 0xff marks a non-digit.
const HEX: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

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
        // A table lookup per digit: this runs once per package of a 60,000-package index.
        let mut out = [0u8; 32];
        for (o, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
            let hi = HEX[usize::from(pair[0])];
            let lo = HEX[usize::from(pair[1])];
            if (hi | lo) & 0xf0 != 0 {
                return None;
            }
            *o = (hi << 4) | lo;
        }
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
