//! Property tests of the pure parsers in `debsync::archive` and of `verify`: whatever bytes
//! upstream sends, nothing panics, and what a well-formed index says is what the parser returns.
//!
//! - No panic on arbitrary input (and on deb822-shaped input, which reaches deeper): deb822
//!   `parse_paragraphs`, `StanzaReader` + `field_lines`, `Release::parse`, `pool_file`,
//!   `source_files`, `ArchivePath::new`, `verify_inrelease`/`verify_detached` with the real
//!   Debian keyring (arbitrary text and mutations of the real bookworm `InRelease`).
//! - `StanzaReader` yields the same stanzas whatever sizes its reads return.
//! - `ArchivePath::new` accepts exactly the model's paths, and an accepted path joined to a base
//!   and normalised stays strictly under the base.
//! - Round trips: generated `Packages` stanzas (any field order, case, extra fields),
//!   generated `Sources` stanzas, and generated `Release` texts parse back to their values.
//!
//! Fixed-input regression tests for what these properties found are at the bottom.

use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};
use std::sync::LazyLock;
use std::time::{Duration, UNIX_EPOCH};

use debsync::archive::deb822::{StanzaReader, field_lines, parse_paragraphs};
use debsync::archive::packages::pool_file;
use debsync::archive::release::Release;
use debsync::archive::sources::source_files;
use debsync::archive::{ArchivePath, FileRef, Sha256};
use debsync::verify::{Keyring, load_keyring, verify_detached, verify_inrelease};
use proptest::prelude::*;
use proptest::sample::select;

const INRELEASE: &str = include_str!("fixtures/bookworm-InRelease");
const PACKAGES_300: &[u8] = include_bytes!("fixtures/bookworm-main-amd64-Packages-300");

static KEYRING: LazyLock<Keyring> = LazyLock::new(|| {
    load_keyring(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/debian-archive-keyring.gpg"
    )))
    .expect("fixture keyring loads")
});

/// `cases` cases and no `*.proptest-regressions` file: a failure proptest finds is pinned as a
/// fixed-input test at the bottom of this file instead.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Sizes: small ones as in real indices, and the whole `u64` range.
fn size() -> impl Strategy<Value = u64> {
    prop_oneof![0..100_000u64, any::<u64>(), Just(u64::MAX)]
}

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

/// One line of deb822-ish text: fields, continuations, blanks, comments and junk.
fn deb822_line() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[A-Za-z][A-Za-z0-9-]{0,11}:[ \t]?[ -~]{0,30}",
        2 => "[ \t][ -~]{0,30}",
        2 => Just(String::new()),
        1 => "[ \t]{1,3}",
        1 => "#[ -~]{0,10}",
        1 => select(vec!["SHA256:", "Filename:", "Size:", "Directory:", "Checksums-Sha256:", "Date:"])
            .prop_map(str::to_string),
        1 => "[ -~]{0,20}",
        1 => "\\PC{0,12}",
        1 => ":[ -~]{0,5}",
    ]
}

/// Text made of [`deb822_line`]s with LF, CRLF or blank-line endings.
fn deb822_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (deb822_line(), select(vec!["\n", "\r\n", "\n\n", "\r"])),
        0..30,
    )
    .prop_map(|lines| lines.into_iter().map(|(l, end)| l + end).collect())
}

/// Bytes that look like an index often enough to split into several stanzas.
fn stanza_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        any::<Vec<u8>>(),
        deb822_text().prop_map(String::into_bytes),
        prop::collection::vec(select(b"\n\n\n\r a:#\t".to_vec()), 0..300),
        (0..PACKAGES_300.len(), 0..1500usize).prop_map(|(start, len)| PACKAGES_300
            [start..(start + len).min(PACKAGES_300.len())]
            .to_vec()),
    ]
}

/// A path component Debian would use (no whitespace, so trimming a value cannot change it).
fn good_component() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => "[a-z0-9][a-z0-9+.~_:-]{0,15}",
        1 => "[a-z0-9]\\PC{0,4}".prop_filter("no whitespace or control", |s| {
            !s.chars().any(|c| c.is_whitespace() || c.is_control() || c == '\\' || c == '/')
        }),
    ]
}

/// A path [`ArchivePath::new`] must accept.
fn good_path() -> impl Strategy<Value = String> {
    prop::collection::vec(good_component(), 1..6).prop_map(|c| c.join("/"))
}

/// Path-shaped strings with every kind of bad component mixed in.
fn any_path() -> impl Strategy<Value = String> {
    let component = prop_oneof![
        6 => good_component(),
        1 => Just(String::new()),
        1 => Just(".".to_string()),
        1 => Just("..".to_string()),
        1 => "\\.[a-z.]{0,4}",
        1 => "[a-z]{0,3}\\\\[a-z]{0,3}",
        1 => "[a-z]{0,2}[\\x00-\\x1f\\x7f][a-z]{0,2}",
        1 => "[a-z]{0,2}[\\u{80}-\\u{9f}][a-z]{0,2}",
        1 => "[ a-z]{0,4}",
        1 => "[a-z]{250,260}",
        1 => "\\PC{1,4}",
    ];
    prop_oneof![
        8 => prop::collection::vec(component, 1..8).prop_map(|c| c.join("/")),
        1 => any::<String>(),
        1 => good_path().prop_map(|p| format!("/{p}")),
        1 => (good_path(), 2..80usize).prop_map(|(p, n)| format!("{p}/").repeat(n) + &p),
    ]
}

fn sha256() -> impl Strategy<Value = Sha256> {
    any::<[u8; 32]>().prop_map(Sha256)
}

/// A reader whose `read`s end at the given cut points (absolute offsets), so a handful of reads
/// put the refill boundaries anywhere: inside `\n\n`, between `\r` and `\n`, in a field name.
/// (Each `read` may cost the reader a buffer resize, so the number of reads stays small.)
struct Cuts<'a> {
    data: &'a [u8],
    cuts: Vec<usize>,
    pos: usize,
}

impl<'a> Cuts<'a> {
    fn new(data: &'a [u8], fractions: &[u16]) -> Cuts<'a> {
        let mut cuts: Vec<usize> = fractions
            .iter()
            .map(|f| data.len() * usize::from(*f) / usize::from(u16::MAX))
            .collect();
        cuts.sort_unstable();
        Cuts { data, cuts, pos: 0 }
    }

    fn every_byte(data: &'a [u8]) -> Cuts<'a> {
        Cuts {
            data,
            cuts: (1..data.len()).collect(),
            pos: 0,
        }
    }
}

impl Read for Cuts<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let next = self
            .cuts
            .iter()
            .copied()
            .find(|&c| c > self.pos)
            .unwrap_or(self.data.len());
        let n = (next - self.pos).min(out.len());
        out[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Every stanza of `data` read through `reader`, or the error text.
fn read_stanzas(reader: impl Read) -> Result<Vec<Vec<u8>>, String> {
    let mut r = StanzaReader::new(reader);
    let mut out = Vec::new();
    while let Some(s) = r.next_stanza().map_err(|e| e.to_string())? {
        // Whatever a stanza holds, the line scanner must cope.
        for (name, value) in field_lines(s) {
            assert!(!name.contains(&b':'));
            assert_eq!(value, value.trim_ascii());
        }
        out.push(s.to_vec());
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// No panics on hostile input
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn deb822_never_panics(text in prop_oneof![any::<String>(), deb822_text()]) {
        if let Ok(paragraphs) = parse_paragraphs(&text) {
            for p in paragraphs {
                prop_assert!(!p.is_empty());
                for (name, value) in p.fields() {
                    prop_assert!(!name.is_empty() && !name.contains(':'));
                    prop_assert!(!name.contains(char::is_whitespace));
                    prop_assert_eq!(*value, value.trim());
                }
            }
        }
    }

    #[test]
    fn stanza_reader_is_independent_of_read_sizes(
        data in stanza_bytes(),
        cuts in prop::collection::vec(any::<u16>(), 0..12),
    ) {
        let whole = read_stanzas(&data[..]);
        let chunked = read_stanzas(Cuts::new(&data, &cuts));
        prop_assert_eq!(&whole, &chunked);
        if data.len() <= 48 {
            prop_assert_eq!(&whole, &read_stanzas(Cuts::every_byte(&data)));
        }
        for s in whole.unwrap() {
            prop_assert!(!s.is_empty());
            prop_assert!(!s.ends_with(b"\n") && !s.ends_with(b"\r"));
        }
    }

    #[test]
    fn release_parse_never_panics(text in prop_oneof![any::<String>(), deb822_text(), release_ish()]) {
        let _ = Release::parse(&text);
    }

    #[test]
    fn pool_file_never_panics(raw in stanza_bytes()) {
        let _ = pool_file(&raw, 1);
        if let Ok(stanzas) = read_stanzas(&raw[..]) {
            for (i, s) in stanzas.iter().enumerate() {
                let _ = pool_file(s, i as u64);
            }
        }
    }

    #[test]
    fn source_files_never_panics(raw in prop_oneof![stanza_bytes(), sources_ish()]) {
        let _ = source_files(&raw, 1);
    }

    #[test]
    fn release_dates_never_panic(
        day in prop_oneof![any::<i64>().prop_map(|n| n.to_string()), "[0-9]{1,2}"],
        month in select(vec!["Jan", "feb", "Dec", "Foo"]),
        year in prop_oneof![any::<i64>().prop_map(|n| n.to_string()), "[0-9]{4}"],
        hms in prop::collection::vec(prop_oneof![any::<i64>().prop_map(|n| n.to_string()), "[0-9]{2}"], 1..4),
        zone in prop_oneof![
            select(vec!["UTC", "GMT", "UT", "Z", "", "+0000"]).prop_map(str::to_string),
            "[+-][0-9]{4}", "[+-]\\PC{2}", any::<String>(),
        ],
    ) {
        // Each number stays small enough to parse as i64 but anything else goes: negative
        // hours, year 9e18, a 100-hour offset.
        let date = format!("Sat, {day} {month} {year} {} {zone}", hms.join(":"));
        let text = format!("Date: {date}\nValid-Until: {date}\nSHA256:\n");
        let _ = Release::parse(&text);
    }
}

/// Release-shaped text with hostile values in the fields the parser interprets.
fn release_ish() -> impl Strategy<Value = String> {
    let entry = prop_oneof![
        (sha256(), any::<u64>(), any_path())
            .prop_map(|(h, s, p)| format!(" {} {s} {p}", h.to_hex())),
        "[ -~]{0,80}".prop_map(|l| format!(" {l}")),
        "[0-9a-fA-F]{64} [0-9]{1,25} [ -~]{0,20}".prop_map(|l| format!(" {l}")),
    ];
    (
        prop::collection::vec(entry, 0..10),
        "[ -~]{0,40}",
        select(vec!["SHA256", "SHA512", "sha256", "MD5Sum"]),
    )
        .prop_map(|(entries, date, list)| {
            format!(
                "Origin: x\nDate: {date}\n{list}:\n{}\nSHA512:\n {} 1 a\n",
                entries.join("\n"),
                "a".repeat(128)
            )
        })
}

/// Sources-shaped stanzas with hostile `Directory` and `Checksums-Sha256` values.
fn sources_ish() -> impl Strategy<Value = Vec<u8>> {
    let entry = prop_oneof![
        (sha256(), any::<u64>(), any_path())
            .prop_map(|(h, s, p)| format!(" {} {s} {p}", h.to_hex())),
        "[ -~]{0,80}".prop_map(|l| format!(" {l}")),
    ];
    (any_path(), prop::collection::vec(entry, 0..6)).prop_map(|(dir, entries)| {
        format!(
            "Package: p\nDirectory: {dir}\nChecksums-Sha256:\n{}\n",
            entries.join("\n")
        )
        .into_bytes()
    })
}

/// Mutations of the real bookworm `InRelease`: cuts, byte flips, inserted lines.
fn inrelease_mutation() -> impl Strategy<Value = Vec<u8>> {
    let len = INRELEASE.len();
    prop_oneof![
        (0..len).prop_map(|cut| INRELEASE.as_bytes()[..cut].to_vec()),
        (0..len).prop_map(|cut| INRELEASE.as_bytes()[cut..].to_vec()),
        prop::collection::vec((0..len, any::<u8>()), 1..4).prop_map(|flips| {
            let mut b = INRELEASE.as_bytes().to_vec();
            for (at, byte) in flips {
                b[at] = byte;
            }
            b
        }),
        // Flips inside the armored signature hit the packet parsers, not just the hash.
        (0..2000usize, any::<u8>()).prop_map(|(back, byte)| {
            let mut b = INRELEASE.as_bytes().to_vec();
            let at = b.len() - 1 - back.min(b.len() - 1);
            b[at] = byte;
            b
        }),
        (0..len, "[ -~]{0,40}").prop_map(|(at, line)| {
            let at = INRELEASE[..at].rfind('\n').map_or(0, |i| i + 1);
            format!("{}{line}\n{}", &INRELEASE[..at], &INRELEASE[at..]).into_bytes()
        }),
    ]
}

fn signature_block() -> &'static str {
    let at = INRELEASE.find("-----BEGIN PGP SIGNATURE-----").unwrap();
    &INRELEASE[at..]
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn verify_inrelease_never_panics(
        bytes in prop_oneof![
            any::<Vec<u8>>(),
            any::<String>().prop_map(String::into_bytes),
            deb822_text().prop_map(|t| format!(
                "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n{t}\n{}",
                signature_block()
            ).into_bytes()),
            inrelease_mutation(),
        ],
    ) {
        // A mutation can only verify if it left the signed text and signature intact.
        if let Ok(v) = verify_inrelease(&bytes, &KEYRING, "prop") {
            prop_assert_eq!(v.release().codename.as_deref(), Some("bookworm"));
        }
    }

    #[test]
    fn verify_detached_never_panics(
        release in prop_oneof![any::<Vec<u8>>(), deb822_text().prop_map(String::into_bytes)],
        signature in prop_oneof![
            any::<Vec<u8>>(),
            (0..signature_block().len()).prop_map(|cut| signature_block().as_bytes()[..cut].to_vec()),
            Just(signature_block().as_bytes().to_vec()),
        ],
    ) {
        prop_assert!(verify_detached(&release, &signature, &KEYRING, "prop").is_err());
    }
}

// ---------------------------------------------------------------------------------------------
// ArchivePath
// ---------------------------------------------------------------------------------------------

/// The rule `ArchivePath::new` implements, written from its documentation.
fn path_model(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 1024
        && !p.chars().any(|c| c == '\\' || c.is_control())
        && p.split('/')
            .all(|c| !c.is_empty() && !c.starts_with('.') && c.len() <= 255)
}

/// Lexical normalisation: `..` pops, `.` vanishes, a root restarts.
fn normalise(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

proptest! {
    #![proptest_config(config(2048))]

    #[test]
    fn archive_path_accepts_exactly_the_model(p in any_path()) {
        let got = ArchivePath::new(&p);
        prop_assert_eq!(got.is_ok(), path_model(&p), "{:?} -> {:?}", p, got);
        if let Ok(ap) = got {
            prop_assert_eq!(ap.as_str(), p.as_str());
            let base = Path::new("/srv/mirror/debian");
            let joined = normalise(&base.join(ap.as_path()));
            prop_assert!(joined.starts_with(base) && joined != base, "{:?} escapes: {:?}", p, joined);
            prop_assert!(ap.as_path().components().all(|c| matches!(c, Component::Normal(_))));
            let rebuilt = format!("{}/{}", ap.parent(), ap.file_name());
            prop_assert_eq!(rebuilt.trim_start_matches('/'), ap.as_str());
        }
    }

    #[test]
    fn archive_path_join_keeps_the_rule(a in good_path(), rest in any_path()) {
        let base = ArchivePath::new(&a).unwrap();
        let joined = base.join(&rest);
        let whole = format!("{a}/{rest}");
        prop_assert_eq!(joined.is_ok(), path_model(&whole), "{:?} + {:?}", a, rest);
    }

    #[test]
    fn good_paths_are_accepted(p in good_path()) {
        prop_assert!(ArchivePath::new(&p).is_ok(), "{:?}", p);
    }
}

// ---------------------------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------------------------

/// A generated `Packages` entry and the stanza text that carries it.
#[derive(Debug, Clone)]
struct GenStanza {
    want: (String, u64, Sha256),
    text: String,
}

fn packages_stanza() -> impl Strategy<Value = GenStanza> {
    let other_field = (
        select(vec![
            "Version",
            "Architecture",
            "Maintainer",
            "Depends",
            "Description",
            "Tag",
            "MD5sum",
            "SHA1",
            "SHA512",
            "Section",
            "Priority",
            "Homepage",
            "Installed-Size",
        ]),
        "[ -~]{0,30}",
        // Continuation lines, including ones that look like the fields that matter.
        prop::collection::vec(
            prop_oneof![
                "[ -~]{0,30}",
                Just(".".to_string()),
                Just("SHA256: 0000".to_string()),
                Just("Filename: ../../etc/passwd".to_string()),
                Just("Size: 1".to_string()),
            ],
            0..3,
        ),
    );
    (
        "[a-z0-9][a-z0-9+.-]{1,20}",
        good_path(),
        size(),
        sha256(),
        prop::collection::vec(other_field, 0..6),
        any::<bool>(),                           // upper-case hex
        prop::collection::vec(any::<bool>(), 3), // lower-case field names
        any::<u64>(),                            // field order
        select(vec![" ", "  ", "\t", ""]),       // separator after the colon
    )
        .prop_map(|(pkg, path, size, sha, others, upper, lower, order, sep)| {
            let hex = if upper {
                sha.to_hex().to_uppercase()
            } else {
                sha.to_hex()
            };
            let name = |n: &str, lower: bool| {
                if lower {
                    n.to_lowercase()
                } else {
                    n.to_string()
                }
            };
            let mut lines = vec![
                format!("{}:{sep}{path}", name("Filename", lower[0])),
                format!("{}:{sep}{size}", name("Size", lower[1])),
                format!("{}:{sep}{hex}", name("SHA256", lower[2])),
            ];
            for (field, value, cont) in others {
                let mut l = format!("{field}: {value}");
                for c in cont {
                    l.push_str("\n ");
                    l.push_str(&c);
                }
                lines.push(l);
            }
            // A deterministic shuffle from one random number.
            let mut order = order;
            for i in (1..lines.len()).rev() {
                lines.swap(i, (order % (i as u64 + 1)) as usize);
                order /= i as u64 + 1;
            }
            lines.insert(0, format!("Package: {pkg}"));
            GenStanza {
                want: (path, size, sha),
                text: lines.join("\n"),
            }
        })
}

fn file_ref_tuple(f: &FileRef) -> (String, u64, Sha256) {
    (f.path.as_str().to_string(), f.size, f.sha256)
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn packages_stanza_round_trips(s in packages_stanza()) {
        let got = pool_file(s.text.as_bytes(), 1);
        prop_assert!(got.is_ok(), "{:?}\n{}", got, s.text);
        prop_assert_eq!(file_ref_tuple(&got.unwrap()), s.want);
    }

    #[test]
    fn packages_index_round_trips_through_the_reader(
        stanzas in prop::collection::vec(packages_stanza(), 0..12),
        gaps in prop::collection::vec(select(vec!["\n\n", "\n\n\n", "\n\n\n\n"]), 12),
        cuts in prop::collection::vec(any::<u16>(), 0..12),
    ) {
        let mut text = String::new();
        for (s, gap) in stanzas.iter().zip(&gaps) {
            text.push_str(&s.text);
            text.push_str(gap);
        }
        let got = read_stanzas(Cuts::new(text.as_bytes(), &cuts)).unwrap();
        prop_assert_eq!(got.len(), stanzas.len());
        for (i, (raw, s)) in got.iter().zip(&stanzas).enumerate() {
            let f = pool_file(raw, i as u64);
            prop_assert!(f.is_ok(), "{:?}", f);
            prop_assert_eq!(file_ref_tuple(&f.unwrap()), s.want.clone());
        }
    }

    #[test]
    fn sources_stanza_round_trips(
        dir in good_path(),
        files in prop::collection::vec((good_component(), size(), sha256()), 0..6),
        widths in prop::collection::vec(0..20usize, 6),
    ) {
        let mut text = format!("Package: p\nBinary: p\nDirectory: {dir}\nChecksums-Sha256:\n");
        for ((name, size, sha), w) in files.iter().zip(&widths) {
            text.push_str(&format!(" {} {size:>w$} {name}\n", sha.to_hex()));
        }
        text.push_str("Files:\n d41d8cd98f00b204e9800998ecf8427e 0 x.dsc\n");
        let got = source_files(text.as_bytes(), 1);
        prop_assert!(got.is_ok(), "{:?}\n{}", got, text);
        let got: Vec<_> = got.unwrap().iter().map(file_ref_tuple).collect();
        let want: Vec<_> = files.iter().map(|(n, s, h)| (format!("{dir}/{n}"), *s, *h)).collect();
        prop_assert_eq!(got, want);
    }
}

/// A generated Release: its values, and the text apt-ftparchive would write for them.
#[derive(Debug, Clone)]
struct GenRelease {
    text: String,
    origin: String,
    suite: String,
    codename: String,
    date: i64,
    valid_until: Option<i64>,
    architectures: Vec<String>,
    components: Vec<String>,
    by_hash: bool,
    files: Vec<(String, u64, Sha256)>,
}

fn release_text() -> impl Strategy<Value = GenRelease> {
    let word = "[A-Za-z0-9][A-Za-z0-9._+-]{0,12}";
    (
        (word, word, word),
        // Up to year 9999: what HTTP dates (and Release files) can spell.
        0..253_402_300_799i64,
        prop::option::of(0..253_402_300_799i64),
        prop::collection::vec("[a-z0-9-]{1,10}", 0..5),
        prop::collection::vec("[a-z0-9/-]{1,12}", 0..4),
        any::<bool>(),
        prop::collection::vec((good_path(), size(), sha256()), 0..20),
        any::<bool>(), // GMT or UTC
    )
        .prop_map(
            |((origin, suite, codename), date, valid_until, architectures, components, by_hash, files, gmt)| {
                let fmt = |t: i64| {
                    let s = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(t as u64));
                    if gmt { s } else { s.replace("GMT", "UTC") }
                };
                let mut text = format!(
                    "Origin: {origin}\nLabel: {origin}\nSuite: {suite}\nCodename: {codename}\nDate: {}\n",
                    fmt(date)
                );
                if let Some(v) = valid_until {
                    text.push_str(&format!("Valid-Until: {}\n", fmt(v)));
                }
                text.push_str(&format!(
                    "Acquire-By-Hash: {}\nArchitectures: {}\nComponents: {}\nDescription: generated\n",
                    if by_hash { "yes" } else { "no" },
                    architectures.join(" "),
                    components.join(" ")
                ));
                // Right-aligned sizes, as apt-ftparchive writes them; an MD5Sum list first
                // with the same paths, which the parser must ignore.
                let width = files.iter().map(|f| f.1.to_string().len()).max().unwrap_or(1);
                text.push_str("MD5Sum:\n");
                for (path, size, _) in &files {
                    text.push_str(&format!(" d41d8cd98f00b204e9800998ecf8427e {size:>width$} {path}\n"));
                }
                text.push_str("SHA256:\n");
                for (path, size, sha) in &files {
                    text.push_str(&format!(" {} {size:>width$} {path}\n", sha.to_hex()));
                }
                GenRelease {
                    text,
                    origin,
                    suite,
                    codename,
                    date,
                    valid_until,
                    architectures,
                    components,
                    by_hash,
                    files,
                }
            },
        )
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn release_round_trips(g in release_text()) {
        let r = Release::parse(&g.text);
        prop_assert!(r.is_ok(), "{:?}\n{}", r, g.text);
        let r = r.unwrap();
        prop_assert_eq!(r.origin.as_deref(), Some(g.origin.as_str()));
        prop_assert_eq!(r.label.as_deref(), Some(g.origin.as_str()));
        prop_assert_eq!(r.suite.as_deref(), Some(g.suite.as_str()));
        prop_assert_eq!(r.codename.as_deref(), Some(g.codename.as_str()));
        prop_assert_eq!(r.date, Some(g.date));
        prop_assert_eq!(r.valid_until, g.valid_until);
        prop_assert_eq!(&r.architectures, &g.architectures);
        prop_assert_eq!(&r.components, &g.components);
        prop_assert_eq!(r.acquire_by_hash, g.by_hash);
        let files: Vec<_> = r.files.iter().map(file_ref_tuple).collect();
        prop_assert_eq!(&files, &g.files);
        for (path, size, sha) in &g.files {
            let f = r.file(path);
            prop_assert!(f.is_some());
            // The first entry for a path wins when a generated list repeats one.
            let first = g.files.iter().find(|f| &f.0 == path).unwrap();
            prop_assert_eq!(file_ref_tuple(f.unwrap()), first.clone());
            let _ = (size, sha);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Fixed inputs
// ---------------------------------------------------------------------------------------------

#[test]
fn real_inrelease_still_verifies() {
    let v = verify_inrelease(INRELEASE.as_bytes(), &KEYRING, "fixture").unwrap();
    assert_eq!(v.release().codename.as_deref(), Some("bookworm"));
}

#[test]
fn sizes_beyond_u64_are_refused() {
    let h = "00".repeat(32);
    let stanza = |size: &str| format!("Package: p\nFilename: a/b.deb\nSize: {size}\nSHA256: {h}\n");
    let max = pool_file(stanza("18446744073709551615").as_bytes(), 1).unwrap();
    assert_eq!(max.size, u64::MAX);
    for size in [
        "18446744073709551616",
        "99999999999999999999",
        "100000000000000000000",
        "-1",
        "+1",
        "1 2",
        "",
    ] {
        assert!(pool_file(stanza(size).as_bytes(), 1).is_err(), "{size:?}");
    }
}

/// Found by `release_dates_never_panic` (fixed in aa9fef5): `parse_rfc2822` multiplied and
/// added the parsed `i64`s unchecked, so a `Date:`/`Valid-Until:` with a huge or negative hour,
/// minute, second or year panicked with an overflow in debug builds and wrapped to a garbage
/// time in release builds.
#[test]
fn release_date_overflow_is_an_error() {
    let dates = [
        "Sat, 1 Jan 0 -2562047770746544:00 UTC",
        "Sat, 1 Jan 2000 -9223372036854775808:00 UTC",
        "Sat, 1 Jan 2000 00:-9223372036854775808 UTC",
        "Sat, 1 Jan 2000 00:00:-9223372036854775808 UTC",
        "Sat, 1 Jan 9223372036854775807 00:00 UTC",
        "Sat, 1 Jan -9223372036854775808 00:00 UTC",
        "Sat, 1 Mar 99999999999999999 00:00 UTC",
    ];
    let mut panicked = Vec::new();
    for date in dates {
        let text = format!("Date: {date}\nSHA256:\n");
        if std::panic::catch_unwind(|| Release::parse(&text)).is_err() {
            panicked.push(date);
        }
    }
    assert!(
        panicked.is_empty(),
        "Release::parse panicked on Date: {panicked:#?}"
    );
}
