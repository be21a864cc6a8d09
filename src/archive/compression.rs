//! Index compression: which decoder a file name asks for, and which variant to parse.
//!
//! A mirror keeps every variant upstream publishes (apt clients pick their own), but it only
//! needs to parse one: the one that decodes fastest.

use std::io::Read;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Compression {
    None,
    Gzip,
    Xz,
    Bzip2,
    Zstd,
    Lzma,
}

impl Compression {
    /// From the file name's extension; anything unknown is treated as unsupported (`None`).
    pub fn from_name(name: &str) -> Option<Compression> {
        let ext = name.rsplit_once('.').map(|(_, e)| e);
        Some(match ext {
            Some("gz") => Compression::Gzip,
            Some("xz") => Compression::Xz,
            Some("bz2") => Compression::Bzip2,
            Some("zst") => Compression::Zstd,
            Some("lzma") => Compression::Lzma,
            _ => {
                if name.contains('.') {
                    return None;
                }
                Compression::None
            }
        })
    }

    /// Lower is cheaper to decode: used to choose which variant of an index to parse.
    pub fn decode_cost(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Zstd => 1,
            Compression::Gzip => 2,
            Compression::Xz => 3,
            Compression::Lzma => 4,
            Compression::Bzip2 => 5,
        }
    }

    /// The logical name a listed file is a variant of, and its compression: `Packages.xz` →
    /// (`Packages`, Xz); `icons-64x64.tar` → (itself, None). Unlike [`Compression::from_name`],
    /// an unknown extension (`.yml`, `.tar`, `Index`) is a plain file, not an unsupported one.
    pub fn split(name: &str) -> (&str, Compression) {
        match Compression::from_name(name) {
            Some(c) => (c.strip(name), c),
            None => (name, Compression::None),
        }
    }

    /// The file name without this compression's extension.
    pub fn strip(self, name: &str) -> &str {
        match self {
            Compression::None => name,
            _ => name.rsplit_once('.').map_or(name, |(base, _)| base),
        }
    }

    /// Wraps a reader in the matching streaming decoder.
    pub fn decoder<'a, R: Read + 'a>(self, r: R) -> std::io::Result<Box<dyn Read + 'a>> {
        Ok(match self {
            Compression::None => Box::new(r),
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(r)),
            Compression::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(r)),
            Compression::Lzma => {
                let stream = liblzma::stream::Stream::new_lzma_decoder(u64::MAX)
                    .map_err(std::io::Error::other)?;
                Box::new(liblzma::read::XzDecoder::new_stream(r, stream))
            }
            Compression::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(r)),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(r)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn names() {
        assert_eq!(Compression::from_name("Packages"), Some(Compression::None));
        assert_eq!(Compression::from_name("Packages.xz"), Some(Compression::Xz));
        assert_eq!(Compression::from_name("Packages.lz4"), None);
        assert_eq!(Compression::Xz.strip("Packages.xz"), "Packages");
    }

    #[test]
    fn decoders_round_trip() {
        let data = b"Package: a\n\nPackage: b\n".repeat(100);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 1);
        xz.write_all(&data).unwrap();
        let xz = xz.finish().unwrap();
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        bz.write_all(&data).unwrap();
        let bz = bz.finish().unwrap();
        let zst = zstd::encode_all(&data[..], 1).unwrap();
        for (c, bytes) in [
            (Compression::Gzip, gz),
            (Compression::Xz, xz),
            (Compression::Bzip2, bz),
            (Compression::Zstd, zst),
            (Compression::None, data.clone()),
        ] {
            let mut out = Vec::new();
            c.decoder(&bytes[..])
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(out, data, "{c:?}");
        }
    }
}
