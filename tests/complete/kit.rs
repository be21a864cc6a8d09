//! The shapes themselves, checked without apt: what Release lists, what is (not) on disk, and
//! that the formats are what the real tools read (tar, `ed` for pdiffs).

use std::process::Command;

use crate::*;

fn release_paths(up: &Up, suite: &str) -> BTreeSet<String> {
    let release = String::from_utf8(up.archive.read(&format!("dists/{suite}/Release"))).unwrap();
    let sha256 = release.split("\nSHA256:\n").nth(1).unwrap();
    sha256
        .lines()
        .take_while(|l| l.starts_with(' '))
        .map(|l| l.split_whitespace().nth(2).unwrap().to_string())
        .collect()
}

#[test]
fn debian_shape_lists_what_deb_debian_org_lists() {
    let up = debian();
    let listed = release_paths(&up, "stable");
    for p in [
        "main/binary-amd64/Packages",
        "main/binary-amd64/Release",
        "main/i18n/Translation-en",
        "main/i18n/Translation-en.xz",
        "main/i18n/Translation-de.bz2",
        "main/Contents-amd64.gz",
        "main/Contents-all",
        "main/Contents-udeb-amd64.gz",
        "main/dep11/Components-amd64.yml.xz",
        "main/dep11/icons-64x64.tar.gz",
        "main/cnf/Commands-amd64.xz",
        "main/debian-installer/binary-amd64/Packages.xz",
        "main/installer-amd64/20230607/images/SHA256SUMS",
        "main/installer-amd64/current/images/MD5SUMS",
        "main/source/Sources.xz",
    ] {
        assert!(listed.contains(p), "Release lacks {p}: {listed:#?}");
    }
    // Listed, not served (deb.debian.org 404s them).
    for p in [
        "main/i18n/Translation-en",
        "main/Contents-amd64",
        "main/dep11/icons-64x64.tar",
    ] {
        assert!(
            !up.archive.path(&format!("dists/stable/{p}")).exists(),
            "{p}"
        );
    }
    let current = up.archive.path("dists/stable/main/installer-amd64/current");
    assert_eq!(
        std::fs::read_link(current).unwrap(),
        Path::new("20230607+deb12u5")
    );
    let release = String::from_utf8(up.archive.read("dists/stable/Release")).unwrap();
    assert!(
        release.contains("\nNo-Support-for-Architecture-all: Packages\n"),
        "{release}"
    );

    let icons = up
        .archive
        .path("dists/stable/main/dep11/icons-64x64.tar.gz");
    let out = Command::new("tar")
        .arg("-tzf")
        .arg(&icons)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello_hello.png\ndata_data.png\nlibfoo1_libfoo1.png\n"
    );

    let contents = decompress(
        "x.gz",
        &up.archive.read("dists/stable/main/Contents-amd64.gz"),
    );
    let contents = String::from_utf8(contents).unwrap();
    assert!(
        contents
            .lines()
            .any(|l| l.starts_with("usr/bin/hello ") && l.ends_with(" misc/hello"))
    );
    eprintln!("{release}");
}

#[test]
fn ubuntu_and_security_release_fields() {
    let up = layouts::ubuntu();
    let release = String::from_utf8(up.archive.read("dists/jammy-backports/Release")).unwrap();
    for field in [
        "\nMD5Sum:\n",
        "\nSHA1:\n",
        "\nSHA256:\n",
        "\nNotAutomatic: yes\n",
    ] {
        assert!(release.contains(field), "{field:?}\n{release}");
    }
    assert!(!release.contains("Valid-Until"), "{release}");
    let listed = release_paths(&up, "jammy");
    assert!(listed.contains("Contents-amd64.gz"), "{listed:#?}");
    assert!(listed.contains("universe/i18n/Index"), "{listed:#?}");

    let up = layouts::security();
    let release = String::from_utf8(up.archive.read("dists/bookworm-security/Release")).unwrap();
    assert!(
        release.contains("\nComponents: updates/main\n"),
        "{release}"
    );
    assert!(!release.contains("MD5Sum:"), "{release}");
    let listed = release_paths(&up, "bookworm-security");
    assert!(
        listed.contains("main/binary-amd64/Packages.xz"),
        "{listed:#?}"
    );
    assert!(
        !listed.contains("main/binary-amd64/Packages.gz"),
        "{listed:#?}"
    );
}

/// Every merged patch `Index` names turns its History file into the current one with `ed`
/// (what apt's rred implements), and the unmerged chain does so step by step.
#[test]
fn pdiffs_apply_with_ed() {
    let mut up = layouts::pdiff_archive();
    let gen1 = up
        .archive
        .read("dists/stable/main/binary-amd64/Packages.xz");
    layouts::next_generation(&mut up);
    let gen2 = up
        .archive
        .read("dists/stable/main/binary-amd64/Packages.xz");
    up.archive.suite("stable").package_mut("alpha").version = "1.0-3".into();
    up.archive.build();
    let gen3 = up
        .archive
        .read("dists/stable/main/binary-amd64/Packages.xz");
    let (gen1, gen2, gen3) = (
        decompress("x.xz", &gen1),
        decompress("x.xz", &gen2),
        decompress("x.xz", &gen3),
    );
    let dir = "dists/stable/main/binary-amd64/Packages.diff";
    let index = String::from_utf8(up.archive.read(&format!("{dir}/Index"))).unwrap();
    assert!(index.contains("\nX-Patch-Precedence: merged\n"), "{index}");
    let field = |name: &str| -> Vec<String> {
        let body = index.split(&format!("{name}:\n")).nth(1).unwrap();
        let lines = body.lines().take_while(|l| l.starts_with(' '));
        lines
            .map(|l| l.split_whitespace().nth(2).unwrap().to_string())
            .collect()
    };
    let merged = field("SHA256-Download");
    assert_eq!(merged.len(), 2, "{index}");
    for (old, patch) in [(&gen1, &merged[0]), (&gen2, &merged[1])] {
        let patch = decompress("x.gz", &up.archive.read(&format!("{dir}/{patch}")));
        assert_eq!(&ed(old, &patch), &gen3, "{index}");
    }
    let unmerged = field("X-Unmerged-SHA256-Download");
    let step = decompress("x.gz", &up.archive.read(&format!("{dir}/{}", unmerged[0])));
    assert_eq!(ed(&gen1, &step), gen2);
}

fn ed(old: &[u8], patch: &[u8]) -> Vec<u8> {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("f");
    std::fs::write(&file, old).unwrap();
    let mut script = patch.to_vec();
    script.extend_from_slice(b"w\nq\n");
    let script_path = tmp.path().join("script");
    std::fs::write(&script_path, &script).unwrap();
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(format!(
        "ed -s {} < {}",
        file.display(),
        script_path.display()
    ));
    let out = run_with_timeout(&mut cmd, COMMAND_TIMEOUT);
    assert_success(&out);
    std::fs::read(&file).unwrap()
}
