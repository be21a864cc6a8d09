//! The bodies of debsync's fuzz targets, as plain functions: `fuzz_targets/<name>.rs` hands
//! libFuzzer's input to one of them, and `tests/corpus.rs` runs them over the seed corpus on a
//! stable toolchain (`cd fuzz && cargo test`), so they cannot rot where nightly is missing.
//!
//! Every function must return normally for every input: a panic is a bug in debsync.
//!
//! - [`deb822`]: `parse_paragraphs` on the input as text, and `StanzaReader` + `field_lines`
//!   on it as bytes, read in chunks whose size the first byte picks: the stanzas must not
//!   depend on the chunking.
//! - [`release`]: `Release::parse`; a parsed Release's paths are valid `ArchivePath`s.
//! - [`packages`]: a `Packages` index through `StanzaReader` and `pool_file`.
//! - [`sources`]: a `Sources` index through `StanzaReader` and `source_files`.
//! - [`inrelease`]: the OpenPGP armor and signature checks, `verify_inrelease` and
//!   `verify_detached` (input split at its first NUL), against the real Debian keyring.
//! - [`path`]: `ArchivePath::new` agrees with the documented rule and never escapes.
//! - [`request_path`]: the server's request-path parser, `SafePath::parse`: what it accepts
//!   has only safe, public segments, stays below the tree and survives its own redirect; and
//!   the listing rule `is_listable` agrees with it on the input taken as one file name.

use std::io::{self, Read};
use std::path::{Component, Path};
use std::sync::LazyLock;

use debsync::archive::ArchivePath;
use debsync::archive::deb822::{StanzaReader, field_lines, parse_paragraphs};
use debsync::archive::packages::pool_file;
use debsync::archive::release::Release;
use debsync::archive::sources::source_files;
use debsync::serve::path::{SafePath, encode_segment, is_listable, is_private};
use debsync::verify::{Keyring, load_keyring, verify_detached, verify_inrelease};

static KEYRING: LazyLock<Keyring> = LazyLock::new(|| {
    load_keyring(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/debian-archive-keyring.gpg"
    )))
    .expect("fixture keyring loads")
});

/// A reader that returns at most `chunk` bytes per call.
struct Chunked<'a> {
    data: &'a [u8],
    chunk: usize,
}

impl Read for Chunked<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.data.len().min(self.chunk).min(out.len());
        out[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// Every stanza, or the error text; a small limit so the "too large" path is reachable.
fn stanzas(reader: impl Read) -> Result<Vec<Vec<u8>>, String> {
    let mut r = StanzaReader::new(reader).with_max_stanza(64 * 1024);
    let mut out = Vec::new();
    while let Some(s) = r.next_stanza().map_err(|e| e.to_string())? {
        out.push(s.to_vec());
    }
    Ok(out)
}

pub fn deb822(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(paragraphs) = parse_paragraphs(text)
    {
        for p in &paragraphs {
            assert!(!p.is_empty());
            for (name, value) in p.fields() {
                assert!(!name.is_empty() && !name.contains(':'));
                assert_eq!(*value, value.trim());
                let _ = p.lines(name).count();
            }
        }
    }
    let chunk = usize::from(data.first().copied().unwrap_or(1)).max(1);
    let whole = stanzas(data);
    let chunked = stanzas(Chunked { data, chunk });
    // The size limit trips at read boundaries, so only compare when neither hit it.
    if let (Ok(whole), Ok(chunked)) = (&whole, &chunked) {
        assert_eq!(whole, chunked, "stanzas differ with {chunk}-byte reads");
        for s in whole {
            for (name, value) in field_lines(s) {
                assert!(!name.contains(&b':'));
                assert_eq!(value, value.trim_ascii());
            }
        }
    }
}

pub fn release(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(r) = Release::parse(text) {
        for f in &r.files {
            assert!(ArchivePath::new(f.path.as_str()).is_ok());
            assert!(r.file(f.path.as_str()).is_some());
        }
    }
}

pub fn packages(data: &[u8]) {
    let _ = pool_file(data, 0);
    if let Ok(all) = stanzas(data) {
        for (i, s) in all.iter().enumerate() {
            if let Ok(f) = pool_file(s, i as u64) {
                assert!(ArchivePath::new(f.path.as_str()).is_ok());
            }
        }
    }
}

pub fn sources(data: &[u8]) {
    let _ = source_files(data, 0);
    if let Ok(all) = stanzas(data) {
        for (i, s) in all.iter().enumerate() {
            if let Ok(files) = source_files(s, i as u64) {
                for f in files {
                    assert!(ArchivePath::new(f.path.as_str()).is_ok());
                }
            }
        }
    }
}

pub fn inrelease(data: &[u8]) {
    let keyring = &*KEYRING;
    let _ = verify_inrelease(data, keyring, "fuzz");
    if let Some(nul) = data.iter().position(|&b| b == 0) {
        let _ = verify_detached(&data[..nul], &data[nul + 1..], keyring, "fuzz");
    }
}

pub fn path(data: &[u8]) {
    let Ok(p) = std::str::from_utf8(data) else {
        return;
    };
    let model = !p.is_empty()
        && p.len() <= 1024
        && !p.chars().any(|c| c == '\\' || c.is_control())
        && p.split('/')
            .all(|c| !c.is_empty() && !c.starts_with('.') && c.len() <= 255);
    let got = ArchivePath::new(p);
    assert_eq!(got.is_ok(), model, "{p:?}: {got:?}");
    if let Ok(ap) = got {
        // Joined to a base and normalised lexically, the path stays strictly below the base.
        let base = Path::new("/srv/mirror");
        let mut joined = std::path::PathBuf::new();
        for c in base.join(ap.as_path()).components() {
            match c {
                std::path::Component::ParentDir => {
                    joined.pop();
                }
                std::path::Component::CurDir => {}
                other => joined.push(other),
            }
        }
        assert!(
            joined.starts_with(base) && joined != base,
            "{p:?} escapes: {joined:?}"
        );
    }
}

pub fn request_path(data: &[u8]) {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = SafePath::parse(raw) {
        for seg in p.segments() {
            assert!(
                !seg.is_empty() && seg != "." && seg != "..",
                "{raw:?} → {seg:?}"
            );
            assert!(!seg.contains(['/', '\\', '\0']), "{raw:?} → {seg:?}");
            assert!(!is_private(seg), "{raw:?} → {seg:?}");
            assert!(is_listable(seg), "{raw:?} → {seg:?}");
        }
        let rel = p.to_rel_path();
        assert!(
            rel.components().all(|c| matches!(c, Component::Normal(_)))
                || rel == Path::new("."),
            "{raw:?} → {rel:?}"
        );
        assert!(Path::new("/srv/mirror").join(&rel).starts_with("/srv/mirror"));
        // The redirect target parses back to the same directory.
        let again = SafePath::parse(&p.encoded_dir()).expect("own redirect parses");
        assert_eq!(again.segments(), p.segments(), "{raw:?}");
        assert!(again.has_trailing_slash());
        for n in 0..=p.segments().len() + 1 {
            let _ = p.skip(n).to_rel_path();
        }
        let _ = p.display();
    }
    // The same bytes as one file name in a directory: listed exactly when its href fetches it.
    let href = format!("/{}", encode_segment(raw));
    let fetchable = SafePath::parse(&href).is_ok_and(|p| p.segments() == [raw]);
    assert_eq!(is_listable(raw), fetchable, "{raw:?}");
}

/// Seed inputs for `target`, derived from `tests/fixtures` (the real bookworm InRelease,
/// Packages excerpt and keyring) plus small hand-written cases.
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    let fixture = |name: &str| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    let inrelease = fixture("bookworm-InRelease");
    let packages = fixture("bookworm-main-amd64-Packages-300");
    let text = String::from_utf8(inrelease.clone()).unwrap();
    let body = text.split_once("\n\n").unwrap().1;
    let (body, signature) = body.split_once("-----BEGIN PGP SIGNATURE-----").unwrap();
    let signature = format!("-----BEGIN PGP SIGNATURE-----{signature}");
    let stanzas: Vec<Vec<u8>> = stanzas(&packages[..]).unwrap();
    let filenames: Vec<Vec<u8>> = stanzas
        .iter()
        .filter_map(|s| {
            field_lines(s)
                .find(|(k, _)| *k == b"Filename")
                .map(|(_, v)| v.to_vec())
        })
        .collect();
    let h = "5b4f6f2c8a0bb1d5b1b6e6b5f7a3a2b8c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6";
    let source = format!(
        "Package: hello\nBinary: hello\nVersion: 2.10-3\nDirectory: pool/main/h/hello\n\
         Files:\n d41d8cd98f00b204e9800998ecf8427e 1000 hello_2.10-3.dsc\n\
         Checksums-Sha256:\n {h} 1000 hello_2.10-3.dsc\n {h} 725946 hello_2.10.orig.tar.gz\n"
    );
    let mut out: Vec<Vec<u8>> = match target {
        "deb822" => vec![
            body.as_bytes().to_vec(),
            packages[..packages.len().min(8000)].to_vec(),
            source.clone().into_bytes(),
            b"\n\nA: 1\r\nB: 2\r\n\r\n# c\n C: 3\n\n\n\nD: 4".to_vec(),
        ],
        "release" => vec![
            body.as_bytes().to_vec(),
            body.as_bytes()[..body.len().min(3000)].to_vec(),
        ],
        "packages" => {
            let mut v: Vec<Vec<u8>> = stanzas.iter().take(40).cloned().collect();
            v.push(packages[..packages.len().min(20000)].to_vec());
            v
        }
        "sources" => vec![
            source.clone().into_bytes(),
            format!("{source}\n{source}").into_bytes(),
        ],
        "inrelease" => {
            let mut detached = body.as_bytes().to_vec();
            detached.push(0);
            detached.extend_from_slice(signature.as_bytes());
            vec![inrelease.clone(), detached]
        }
        "path" => {
            let mut v: Vec<Vec<u8>> = filenames.into_iter().take(40).collect();
            for p in [
                "../x",
                "a//b",
                ".debsync/state.json",
                "a\\b",
                "pool/x\u{85}y",
                "/etc",
            ] {
                v.push(p.as_bytes().to_vec());
            }
            v
        }
        "request_path" => [
            "/",
            "/debian/pool/main/h/hello/hello_2.10-3_amd64.deb",
            "/debian/dists/stable/",
            "//evil.example/x",
            "/a%20b/c%2Bd/%F0%9F%98%80",
            "/../secret.txt",
            "/..%2fsecret.txt",
            "/%2e%2e/%2E%2E/etc/passwd",
            "/.%2e/x",
            "/pool/..\\..\\x",
            "/pool%5c..%5cx",
            "/pool/ok.deb%00.txt",
            "/pool/%zz",
            "/pool/%2",
            "/pool/%c0%ae%c0%ae/x",
            "/.debsync/state.json",
            "/debian/%2Edebsync/",
            "/Archive-Update-in-Progress-host",
            "/line%0Abreak",
            "back\\slash",
            "relative",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect(),
        other => panic!("no fuzz target {other:?}"),
    };
    out.retain(|s| !s.is_empty());
    out
}

/// One fuzz target's body.
pub type Target = fn(&[u8]);

/// The fuzz targets, by name.
pub const TARGETS: &[(&str, Target)] = &[
    ("deb822", deb822),
    ("release", release),
    ("packages", packages),
    ("sources", sources),
    ("inrelease", inrelease),
    ("path", path),
    ("request_path", request_path),
];
