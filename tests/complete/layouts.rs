//! Layouts beyond deb.debian.org's: a suite alias symlink, security.debian.org,
//! archive.ubuntu.com, pdiffs across an upstream update, and ftpsync traces.

use crate::*;

/// `stable` is a symlink to `dists/bookworm` upstream; clients use either name.
fn alias() -> Up {
    Up::new(|a| {
        a.add_package("hello", "1.0-1", "amd64", "main", &[b'h'; 2048]);
        a.suite("stable").with_alias_symlink();
    })
}

fn alias_client(c: &Client) -> AptOutput {
    let apt = c.apt();
    let out = update(&apt);
    assert_eq!(apt.fetch_package("hello"), c.archive.read(HELLO));
    let line = c.deb_line("deb", "bookworm", "main");
    let by_codename = Apt::with_sources_line(&c.dir.join("codename"), &line);
    assert_eq!(by_codename.fetch_package("hello"), c.archive.read(HELLO));
    out
}

const HELLO: &str = "pool/main/h/hello/hello_1.0-1_amd64.deb";

/// security.debian.org: `bookworm-security`, `Components: updates/main`, files under `main/`.
pub(crate) fn security() -> Up {
    Up::new(|a| {
        a.suites.clear();
        let s = a.suite("bookworm-security");
        s.add_package("hello", "1.0-1", "amd64", "main", &[b'h'; 2048]);
        s.add_source("hello", "1.0-1", "main", &[b's'; 2048]);
        s.write_uncompressed = false;
        s.debian_security_layout();
    })
}

fn security_client(c: &Client) -> AptOutput {
    let line = c.deb_line("deb", "bookworm-security", "main");
    let apt = Apt::with_sources_line(&c.dir, &line).with_request_log();
    let out = update(&apt);
    assert_listed(c, &apt, "bookworm-security", "main/binary-amd64/Packages");
    assert_listed(c, &apt, "bookworm-security", "main/i18n/Translation-en");
    assert_eq!(apt.fetch_package("hello"), c.archive.read(HELLO));
    out
}

/// archive.ubuntu.com: `jammy` and `jammy-backports` (NotAutomatic), main and universe.
pub(crate) fn ubuntu() -> Up {
    Up::new(|a| {
        a.suites.clear();
        for name in ["jammy", "jammy-backports"] {
            let s = a.suite(name);
            s.codename = "jammy".into();
            s.add_package("hello", "1.0-1", "amd64", "main", &[b'h'; 2048]);
            s.add_package("libfoo1", "3.1", "amd64", "universe", &[b'l'; 2048]);
            s.write_uncompressed = false;
            s.ubuntu_layout();
        }
        a.suite("jammy-backports").not_automatic();
        a.suite("jammy-backports").packages[0].version = "1.1-1~bpo".into();
    })
}

const UBUNTU_TOML: &str = "[[mirror]]\nsuites = [\"jammy\", \"jammy-backports\"]\ncomponents = [\"main\", \"universe\"]\n";

/// An Ubuntu desktop: apt-file, appstream and command-not-found targets, both suites.
fn ubuntu_client(c: &Client) -> AptOutput {
    let lines = c.deb_line("deb", "jammy", "main universe")
        + &c.deb_line("deb", "jammy-backports", "main universe");
    let apt = Apt::with_sources_line(&c.dir, &lines)
        .with_request_log()
        .with_apt_file()
        .with_appstream()
        .with_command_not_found();
    let out = update(&apt);
    for suite in ["jammy", "jammy-backports"] {
        assert_listed(c, &apt, suite, "Contents-amd64");
        assert_listed(c, &apt, suite, "universe/cnf/Commands-amd64");
        assert_listed(c, &apt, suite, "main/dep11/Components-amd64.yml");
        assert_listed(c, &apt, suite, "main/dep11/icons-64x64.tar");
        assert_listed(c, &apt, suite, "main/i18n/Translation-en");
    }
    // NotAutomatic: the backport is not the candidate.
    let (dl, file) = apt.download("hello");
    dl.assert_clean();
    assert_eq!(std::fs::read(file.unwrap()).unwrap(), c.archive.read(HELLO));
    out
}

client_case!(alias, alias, "", alias_client);
client_case!(
    security,
    security,
    "[[mirror]]\nsuites = [\"bookworm-security\"]\nsources = true\n",
    security_client
);
client_case!(ubuntu, ubuntu, UBUNTU_TOML, ubuntu_client);

/// Eight packages (so a one-package change is a small patch next to Packages.xz), by-hash,
/// Translation-en, pdiffs on.
pub(crate) fn pdiff_archive() -> Up {
    Up::new(|a| {
        for n in [
            "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hello",
        ] {
            a.add_package(n, "1.0-1", "amd64", "main", n.repeat(300).as_bytes());
        }
        let s = a.suite("stable");
        s.acquire_by_hash = true;
        s.write_uncompressed = false;
        s.shape.translations = vec!["en".into()];
        s.with_pdiffs();
    })
}

/// The next upstream generation: `hello` 1.0-2.
pub(crate) fn next_generation(up: &mut Up) {
    up.archive.suite("stable").package_mut("hello").version = "1.0-2".into();
    up.archive.build();
}

/// An update of lists one generation old: apt fetched `Packages.diff/Index` and a patch and
/// applied it, and never the full Packages.
fn assert_pdiff_used(c: &Client, apt: &Apt, out: &AptOutput) {
    eprintln!("{}\n{:#?}", out.stdout, out.requested_paths());
    out.assert_clean();
    let paths = out.requested_paths();
    let pdiffs: Vec<&String> = paths
        .iter()
        .filter(|p| p.contains("binary-amd64/Packages.diff/"))
        .collect();
    assert!(
        pdiffs
            .iter()
            .any(|p| p.contains("/Packages.diff/T-") && p.ends_with(".gz")),
        "no patch fetched: {paths:#?}"
    );
    let full: Vec<&String> = paths
        .iter()
        .filter(|p| p.contains("binary-amd64/by-hash/") || p.contains("binary-amd64/Packages."))
        .filter(|p| !p.contains("Packages.diff/"))
        .collect();
    assert!(
        full.is_empty(),
        "full Packages fetched: {full:?}\n{}",
        out.stdout
    );
    assert!(
        out.gets().iter().any(|g| g.ends_with(".pdiff")),
        "{}",
        out.stdout
    );
    assert_listed(c, apt, "stable", "main/binary-amd64/Packages");
}

fn pdiff_client(c: &Client) -> Apt {
    let apt = c.apt().with_pdiffs(true);
    apt.update().assert_clean();
    apt.age_lists(3600);
    apt
}

mod pdiffs {
    use super::*;

    #[test]
    fn control() {
        let mut up = pdiff_archive();
        let url = up.upstream.base_url();
        let apt = pdiff_client(&up.client("control", &url));
        next_generation(&mut up);
        let out = apt.update();
        assert_pdiff_used(&up.client("control", &url), &apt, &out);
    }

    /// A mirror with `pdiffs = false` serves the signed Release that lists
    /// `Packages.diff/Index` but not the Index: apt falls back to the full Packages, cleanly,
    /// with one `Ign:` for the Index (so `pdiffs = false` is the one knob that adds an `Ign:`).
    #[test]
    fn missing_index_falls_back_to_the_full_index() {
        let mut up = pdiff_archive();
        let url = up.upstream.base_url();
        let apt = pdiff_client(&up.client("control", &url));
        next_generation(&mut up);
        let dir = up
            .archive
            .path("dists/stable/main/binary-amd64/Packages.diff");
        std::fs::remove_dir_all(&dir).unwrap();
        let out = apt.update();
        eprintln!("{}\n{:#?}", out.stdout, out.requested_paths());
        out.assert_clean();
        assert_listed(
            &up.client("control", &url),
            &apt,
            "stable",
            "main/binary-amd64/Packages",
        );
    }

    #[test]
    fn mirror() {
        let mut up = pdiff_archive();
        // The next generation drops one of 8 packages: more than 10 % of so small a pool.
        let m = up.mirror("[sync]\nmax_delete = 5\n");
        let apt = pdiff_client(&up.client("mirror", &m.url()));
        next_generation(&mut up);
        m.resync();
        let out = apt.update();
        assert_pdiff_used(&up.client("mirror", &m.url()), &apt, &out);
    }
}

/// An upstream push mirror with ftpsync traces.
fn traced() -> Up {
    Up::new(|a| {
        a.add_package("hello", "1.0-1", "amd64", "main", &[b'h'; 2048]);
        a.trace_host = Some("deb.test.invalid".into());
    })
}

fn trace(base: &str, name: &str) -> String {
    String::from_utf8(get_ok(&format!("{base}project/trace/{name}"))).unwrap()
}

fn serial(trace: &str) -> String {
    let line = trace
        .lines()
        .find_map(|l| l.strip_prefix("Archive serial: "));
    line.unwrap_or_else(|| panic!("no Archive serial in {trace}"))
        .to_string()
}

mod traces {
    use super::*;

    #[test]
    fn control() {
        let up = traced();
        let base = up.upstream.base_url();
        let master = trace(&base, "master");
        assert_eq!(serial(&master).len(), 10, "{master}");
        assert_eq!(serial(&trace(&base, "deb.test.invalid")), serial(&master));
        assert!(trace(&base, "_traces").lines().any(|l| l == "master"));
        assert!(trace(&base, "_hierarchy").contains("deb.test.invalid"));
    }

    /// The mirror serves upstream's traces as they are, adds its own with the same serial,
    /// and names itself in `_hierarchy` and `_traces`.
    #[test]
    fn mirror() {
        let up = traced();
        let m = up.mirror("");
        let (ours, theirs) = (m.url(), up.upstream.base_url());
        for name in ["master", "deb.test.invalid"] {
            assert_eq!(trace(&ours, name), trace(&theirs, name), "{name}");
        }
        let host = rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned();
        assert_eq!(
            serial(&trace(&ours, &host)),
            serial(&trace(&theirs, "master"))
        );
        assert!(trace(&ours, "_traces").lines().any(|l| l == host), "{host}");
        assert!(trace(&ours, "_hierarchy").contains(&host), "{host}");
    }
}

/// A mirror of a debsync mirror (hub → leaf): the leaf syncs from the hub's `debsync serve`
/// and its clients are as clean as upstream's, with every target of the complete mirror; the
/// leaf's trace hierarchy names both hops.
mod chain {
    use super::*;

    #[test]
    fn mirror_of_a_debsync_mirror() {
        let up = crate::debian();
        let hub = up.mirror(crate::DEBIAN_TOML);
        let leaf_dir = up.tmp.path().join("leaf");
        let leaf =
            crate::Mirror::sync_and_serve(&leaf_dir, &hub.url(), &up.keyring, crate::DEBIAN_TOML);
        let leaf_url = leaf.url();
        let setups: [crate::Setup; 3] = [crate::apt_file, crate::default_languages, crate::udebs];
        for (i, setup) in setups.into_iter().enumerate() {
            let control = crate::control(&up, setup);
            let out = setup(&up.client(&format!("leaf{i}"), &leaf_url));
            crate::assert_like_control(&out, &control);
        }
        let hierarchy = trace(&leaf_url, "_hierarchy");
        let host = hostname();
        assert_eq!(
            hierarchy.lines().filter(|l| l.starts_with(&host)).count(),
            2,
            "the hub's hop and the leaf's: {hierarchy}"
        );
        // The leaf is byte for byte the hub for every index.
        let hub_tree = mirror_dir(up.tmp.path());
        let leaf_tree = mirror_dir(&leaf_dir);
        let snap = |t: &std::path::Path| {
            served_snapshot(t)
                .into_iter()
                .filter(|(p, _)| p.starts_with("dists/") && !p.contains("/by-hash/"))
                .collect::<std::collections::BTreeMap<_, _>>()
        };
        assert_eq!(snap(&leaf_tree), snap(&hub_tree));
    }
}
