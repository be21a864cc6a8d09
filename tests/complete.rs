//! Issue 11, "a complete mirror": every client set-up real users have, against archives shaped
//! like deb.debian.org, security.debian.org and archive.ubuntu.com.
//!
//! Each case is a module with two tests over one client set-up (`fn(&Client) -> AptOutput`):
//! - `control`: the set-up against the kit's upstream. It must be clean (exit 0, no
//!   `Err:`/`W:`/`E:`); this proves the archive shape and the client set-up are right.
//! - `mirror`: the same set-up against `debsync serve` of a `debsync sync` of that upstream:
//!   clean, and no `Ign:` the control run lacks.
//!
//! Here: deb.debian.org's shape and one case per client set-up. `layouts`: suite aliases, the
//! security and Ubuntu layouts, pdiffs, traces. `tree`: the mirror's tree and the config
//! knobs. `kit`: the shapes themselves, without apt.

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};

use common::*;

/// One signed upstream archive, served by the kit, and a keyring for it.
struct Up {
    tmp: tempfile::TempDir,
    archive: TestArchive,
    upstream: Upstream,
    keyring: PathBuf,
}

/// Where a client points: the base URL of an archive and what the archive holds.
struct Client<'a> {
    dir: PathBuf,
    url: String,
    keyring: &'a Path,
    archive: &'a TestArchive,
}

type Setup = fn(&Client) -> AptOutput;

/// A synced mirror served by `debsync serve`.
struct Mirror {
    config: PathBuf,
    server: DebsyncServer,
}

impl Mirror {
    /// A mirror of `upstream_url` configured in `dir`, synced once and served.
    fn sync_and_serve(dir: &Path, upstream_url: &str, keyring: &Path, extra_toml: &str) -> Mirror {
        let config = write_config(dir, upstream_url, keyring, extra_toml);
        assert_success(&run_sync(&config));
        let args = [
            "--config",
            &*config.to_string_lossy(),
            "--listen",
            "127.0.0.1:0",
        ];
        let server = spawn_serve(&args).unwrap();
        Mirror { config, server }
    }

    fn url(&self) -> String {
        format!("{}{MIRROR_NAME}/", self.server.url)
    }

    fn resync(&self) {
        assert_success(&run_sync(&self.config));
    }
}

impl Up {
    fn new(edit: impl FnOnce(&mut TestArchive)) -> Up {
        let tmp = tempfile::tempdir().unwrap();
        let mut archive = TestArchive::new(tmp.path().join("upstream"));
        edit(&mut archive);
        archive.build();
        let upstream = Upstream::serve(archive.dir());
        let keyring = tmp.path().join("keys/archive.gpg");
        archive.key().write_keyring(&keyring);
        Up {
            tmp,
            archive,
            upstream,
            keyring,
        }
    }

    fn client(&self, name: &str, url: &str) -> Client<'_> {
        Client {
            dir: self.tmp.path().join(name),
            url: url.to_string(),
            keyring: &self.keyring,
            archive: &self.archive,
        }
    }

    /// Syncs upstream into `<tmp>/root/debian` with `extra_toml` and serves the mirror.
    fn mirror(&self, extra_toml: &str) -> Mirror {
        Mirror::sync_and_serve(
            self.tmp.path(),
            &self.upstream.base_url(),
            &self.keyring,
            extra_toml,
        )
    }
}

impl Client<'_> {
    fn deb_line(&self, kind: &str, suite: &str, components: &str) -> String {
        let k = self.keyring.display();
        format!("{kind} [signed-by={k}] {} {suite} {components}\n", self.url)
    }

    /// `deb <url> stable main`, with the request log on.
    fn apt(&self) -> Apt {
        Apt::with_sources_line(&self.dir, &self.deb_line("deb", "stable", "main"))
            .with_request_log()
    }

    /// The upstream bytes of `dists/…` path `rel`, uncompressed (from whichever variant exists).
    fn upstream_plain(&self, rel: &str) -> Vec<u8> {
        for ext in ["", ".xz", ".gz", ".bz2"] {
            if let Ok(bytes) = std::fs::read(self.archive.path(&format!("{rel}{ext}"))) {
                return decompress(&format!("x{ext}"), &bytes);
            }
        }
        panic!("upstream has no {rel}[.xz|.gz|.bz2]");
    }
}

/// The file in apt's lists whose name (after the host part) ends with `suffix` plus an
/// optional compression extension, decompressed; `None` if apt did not keep one.
fn list_file(apt: &Apt, suffix: &str) -> Option<Vec<u8>> {
    let suffix = suffix.replace('/', "_");
    for e in std::fs::read_dir(apt.lists_dir()).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        let base = [".lz4", ".gz", ".xz", ".zst"]
            .iter()
            .find_map(|x| name.strip_suffix(x))
            .unwrap_or(&name);
        if base.ends_with(&suffix) {
            let bytes = std::fs::read(apt.lists_dir().join(&name)).unwrap();
            return Some(decompress(&name, &bytes));
        }
    }
    None
}

fn decompress(name: &str, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let r: Box<dyn Read + '_> = match name.rsplit('.').next() {
        Some("gz") => Box::new(flate2::read::MultiGzDecoder::new(bytes)),
        Some("xz") => Box::new(liblzma::read::XzDecoder::new(bytes)),
        Some("bz2") => Box::new(bzip2::read::MultiBzDecoder::new(bytes)),
        Some("lz4") => Box::new(lz4_flex::frame::FrameDecoder::new(bytes)),
        Some("zst") => Box::new(zstd::stream::read::Decoder::new(bytes).unwrap()),
        _ => Box::new(bytes),
    };
    let mut r = r;
    r.read_to_end(&mut out).unwrap();
    out
}

/// `apt-get update`, asserted clean at once (a setup's own checks would hide apt's errors).
fn update(apt: &Apt) -> AptOutput {
    let out = apt.update();
    out.assert_clean();
    out
}

/// Asserts apt keeps `dists/<suite>/<rel>` in its lists with upstream's content.
fn assert_listed(c: &Client, apt: &Apt, suite: &str, rel: &str) {
    let want = c.upstream_plain(&format!("dists/{suite}/{rel}"));
    let got = list_file(apt, &format!("dists/{suite}/{rel}"))
        .unwrap_or_else(|| panic!("apt has no list for {rel}: {:?}", lists(apt)));
    assert_eq!(got, want, "{rel}");
}

fn assert_not_listed(apt: &Apt, suite: &str, rel: &str) {
    let got = list_file(apt, &format!("dists/{suite}/{rel}"));
    assert!(got.is_none(), "apt fetched {rel}: {:?}", lists(apt));
}

fn lists(apt: &Apt) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(apt.lists_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// `GET url` over HTTP/1.1 (`Connection: close`): (status, body). Handles chunked bodies.
fn http_get(url: &str) -> (u16, Vec<u8>) {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_once('/').unwrap();
    let mut s = TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(COMMAND_TIMEOUT)).unwrap();
    write!(
        s,
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status = head[9..12].parse().unwrap();
    let mut body = raw[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        let (mut out, mut at) = (Vec::new(), 0);
        loop {
            let eol = at + body[at..].windows(2).position(|w| w == b"\r\n").unwrap();
            let len = usize::from_str_radix(std::str::from_utf8(&body[at..eol]).unwrap(), 16);
            let len = len.unwrap();
            if len == 0 {
                break;
            }
            out.extend_from_slice(&body[eol + 2..eol + 2 + len]);
            at = eol + 4 + len;
        }
        body = out;
    }
    (status, body)
}

fn get_ok(url: &str) -> Vec<u8> {
    let (status, body) = http_get(url);
    assert_eq!(status, 200, "GET {url}");
    body
}

/// The control run: the set-up against upstream must be clean. Returns its output.
fn control(up: &Up, setup: Setup) -> AptOutput {
    let out = setup(&up.client("control", &up.upstream.base_url()));
    eprintln!("{}", out.stdout);
    out.assert_clean();
    eprintln!("control Ign: {:?}", out.ign_set());
    out
}

/// Asserts a run against the mirror is clean and has no `Ign:` the control lacks.
fn assert_like_control(out: &AptOutput, control: &AptOutput) {
    out.assert_clean();
    let extra: BTreeSet<String> = out
        .ign_set()
        .difference(&control.ign_set())
        .cloned()
        .collect();
    assert!(
        extra.is_empty(),
        "Ign: beyond the control run: {extra:#?}\n{}",
        out.stdout
    );
}

fn mirror_case(up: &Up, extra_toml: &str, setup: Setup) {
    let control = control(up, setup);
    let m = up.mirror(extra_toml);
    let out = setup(&up.client("mirror", &m.url()));
    assert_like_control(&out, &control);
}

macro_rules! client_case {
    ($(#[$doc:meta])* $name:ident, $up:expr, $toml:expr, $setup:expr) => {
        $(#[$doc])*
        mod $name {
            use super::*;

            #[test]
            fn control() {
                super::control(&$up(), $setup);
            }

            #[test]
                    fn mirror() {
                super::mirror_case(&$up(), $toml, $setup);
            }
        }
    };
}

/// deb.debian.org's shape: `stable` (bookworm) with hello (amd64), data (all), libfoo1,
/// hello's source, every index of [`Suite::with_full_indices`], by-hash, and the uncompressed
/// indices listed but not served.
fn debian() -> Up {
    Up::new(|a| {
        a.add_package("hello", "1.0-1", "amd64", "main", &[b'h'; 2048]);
        a.add_package("data", "2:0.5", "all", "main", &[b'd'; 2048]);
        a.add_package("libfoo1", "3.1", "amd64", "main", &[b'l'; 2048]);
        let s = a.suite("stable");
        s.architectures.push("all".into());
        s.add_source("hello", "1.0-1", "main", &[b's'; 2048]);
        s.acquire_by_hash = true;
        s.write_uncompressed = false;
        s.with_full_indices();
    })
}

const DEBIAN_TOML: &str = "[[mirror]]\nsources = true\n";

/// apt's default languages (`LC_ALL=C`: en): Translation-en, not -de.
fn default_languages(c: &Client) -> AptOutput {
    let apt = c.apt();
    assert_eq!(apt.languages(), ["en"]);
    let out = update(&apt);
    assert_listed(c, &apt, "stable", "main/i18n/Translation-en");
    assert_not_listed(&apt, "stable", "main/i18n/Translation-de");
    assert_listed(c, &apt, "stable", "main/binary-amd64/Packages");
    out
}

fn languages_en(c: &Client) -> AptOutput {
    let apt = c.apt().with_languages("en");
    assert_eq!(apt.languages(), ["en"]);
    let out = update(&apt);
    assert_listed(c, &apt, "stable", "main/i18n/Translation-en");
    assert_not_listed(&apt, "stable", "main/i18n/Translation-de");
    out
}

fn languages_de(c: &Client) -> AptOutput {
    let apt = c.apt().with_languages("de");
    assert_eq!(apt.languages(), ["de"]);
    let out = update(&apt);
    assert_listed(c, &apt, "stable", "main/i18n/Translation-de");
    out
}

/// apt-file: Contents-amd64, Contents-all and Contents-udeb-amd64.
fn apt_file(c: &Client) -> AptOutput {
    let apt = c.apt().with_apt_file();
    let dump = apt.config_dump();
    assert!(
        dump.contains("Acquire::IndexTargets::deb::Contents-deb::MetaKey"),
        "{dump}"
    );
    let out = update(&apt);
    for rel in ["Contents-amd64", "Contents-all", "Contents-udeb-amd64"] {
        assert_listed(c, &apt, "stable", &format!("main/{rel}"));
    }
    out
}

/// appstream: DEP-11 metadata and the 64x64 icons.
fn appstream(c: &Client) -> AptOutput {
    let apt = c.apt().with_appstream();
    assert_eq!(
        apt.config_values("Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled"),
        ["true"]
    );
    let out = update(&apt);
    assert_listed(c, &apt, "stable", "main/dep11/Components-amd64.yml");
    assert_listed(c, &apt, "stable", "main/dep11/icons-64x64.tar");
    out
}

fn command_not_found(c: &Client) -> AptOutput {
    let apt = c.apt().with_command_not_found();
    let out = update(&apt);
    assert_listed(c, &apt, "stable", "main/cnf/Commands-amd64");
    out
}

/// `deb-src` + `apt-get source --download-only hello`.
fn deb_src(c: &Client) -> AptOutput {
    let lines = c.deb_line("deb", "stable", "main") + &c.deb_line("deb-src", "stable", "main");
    let apt = Apt::with_sources_line(&c.dir, &lines);
    let out = update(&apt);
    apt.run(&["source", "--download-only", "hello"])
        .assert_clean();
    let orig = "hello_1.0.orig.tar.gz";
    assert_eq!(
        std::fs::read(apt.download_dir().join(orig)).unwrap(),
        c.archive.read(&format!("pool/main/h/hello/{orig}"))
    );
    out
}

/// The d-i udeb index, and a udeb from the pool it names.
fn udebs(c: &Client) -> AptOutput {
    let apt = c.apt().with_di_packages();
    let out = update(&apt);
    let rel = "main/debian-installer/binary-amd64/Packages";
    assert_listed(c, &apt, "stable", rel);
    let index = String::from_utf8(list_file(&apt, &format!("dists/stable/{rel}")).unwrap());
    let filename = index
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Filename: "))
        .expect("a udeb")
        .to_string();
    assert!(filename.ends_with(".udeb"), "{filename}");
    assert_eq!(
        get_ok(&format!("{}{filename}", c.url)),
        c.archive.read(&filename)
    );
    out
}

/// A d-i netboot user: `current/images/SHA256SUMS` (a symlinked dir) and the files it lists.
fn installer(c: &Client) -> AptOutput {
    let out = update(&c.apt());
    for dir in ["current", "20230607+deb12u5", "20230607"] {
        let base = format!("dists/stable/main/installer-amd64/{dir}/images/");
        let sums = get_ok(&format!("{}{base}SHA256SUMS", c.url));
        assert_eq!(sums, c.archive.read(&format!("{base}SHA256SUMS")), "{dir}");
        for line in String::from_utf8(sums).unwrap().lines() {
            let (hash, file) = line.split_once("  ./").unwrap();
            let bytes = get_ok(&format!("{}{base}{file}", c.url));
            assert_eq!(sha256_hex(&bytes), hash, "{base}{file}");
        }
    }
    out
}

client_case!(default_languages, debian, DEBIAN_TOML, default_languages);
client_case!(languages_en, debian, DEBIAN_TOML, languages_en);
client_case!(languages_de, debian, DEBIAN_TOML, languages_de);
client_case!(apt_file, debian, DEBIAN_TOML, apt_file);
client_case!(appstream, debian, DEBIAN_TOML, appstream);
client_case!(command_not_found, debian, DEBIAN_TOML, command_not_found);
client_case!(deb_src, debian, DEBIAN_TOML, deb_src);
client_case!(udebs, debian, DEBIAN_TOML, udebs);
client_case!(installer, debian, DEBIAN_TOML, installer);

#[path = "complete/kit.rs"]
mod kit;
#[path = "complete/layouts.rs"]
mod layouts;
#[path = "complete/tree.rs"]
mod tree;
