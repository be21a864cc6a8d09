//! The mirror's tree itself: everything Release lists is there byte for byte, and the config
//! knobs (`languages`, `contents`, `dep11`, `cnf`, `installer`, `pdiffs`) leave out what they
//! turn off while clients stay clean.

use crate::*;

/// Every regular file under `dir` (following symlinked directories, like a client would).
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let path = e.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).unwrap();
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

/// With the defaults, the mirror has every file upstream serves under `dists/stable/` (minus
/// by-hash generations it may prune) and `pool/`, with the same bytes.
#[test]
fn mirror_holds_everything_upstream_serves() {
    let up = debian();
    let _m = up.mirror(DEBIAN_TOML);
    let tree = mirror_dir(up.tmp.path());
    for top in ["dists/stable", "pool"] {
        for rel in files_under(&up.archive.path(top)) {
            if rel.contains("by-hash/") {
                continue;
            }
            let p = format!("{top}/{rel}");
            let got = std::fs::read(tree.join(&p)).unwrap_or_else(|e| panic!("mirror {p}: {e}"));
            assert_eq!(got, up.archive.read(&p), "{p}");
        }
    }
    let current = tree.join("dists/stable/main/installer-amd64/current/images/SHA256SUMS");
    assert!(current.is_file(), "{}", current.display());
    // `current` is a link to the dated build, as upstream: the images are stored once.
    let link = tree.join("dists/stable/main/installer-amd64/current");
    assert!(link.is_symlink(), "{} is not a link", link.display());
    assert!(
        std::fs::read_link(&link).unwrap().components().count() == 1,
        "relative link to a sibling"
    );
}

/// Only English, no Contents, DEP-11, cnf, installer images or pdiffs: the mirror lacks them,
/// keeps the rest, and apt with its default languages is as clean as against upstream.
#[test]
fn config_knobs_leave_out_what_they_turn_off() {
    let up = debian();
    let toml = format!(
        "{DEBIAN_TOML}languages = [\"en\"]\ncontents = false\ndep11 = false\ncnf = false\n\
         installer = false\npdiffs = false\n"
    );
    let m = up.mirror(&toml);
    let tree = mirror_dir(up.tmp.path()).join("dists/stable/main");
    let have = files_under(&tree);
    for gone in [
        "i18n/Translation-de",
        "Contents-",
        "dep11/",
        "cnf/",
        "installer-amd64/",
    ] {
        let left: Vec<&String> = have.iter().filter(|p| p.starts_with(gone)).collect();
        assert!(left.is_empty(), "{gone} should be left out: {left:?}");
    }
    for kept in [
        "i18n/Translation-en.xz",
        "binary-amd64/Packages.xz",
        "source/Sources.xz",
    ] {
        assert!(have.iter().any(|p| p == kept), "{kept} missing: {have:#?}");
    }
    let control = control(&up, default_languages);
    let out = default_languages(&up.client("mirror", &m.url()));
    assert_like_control(&out, &control);
}

/// `debsync verify` checks what the listings name too: the pdiff patches and the installer
/// images, not only the files Release lists itself.
#[test]
fn verify_checks_patches_and_installer_images() {
    let mut up = crate::layouts::pdiff_archive();
    up.archive.suite("stable").shape.installer = vec!["20230607".into()];
    up.archive.build();
    let m = up.mirror("[sync]\nmax_delete = 5\n");
    crate::layouts::next_generation(&mut up);
    m.resync();
    let config = m.config.to_string_lossy().into_owned();
    assert_success(&run_debsync(&["verify", "--config", &config]));
    let tree = mirror_dir(up.tmp.path()).join("dists/stable/main");
    let patch = files_under(&tree.join("binary-amd64/Packages.diff"))
        .into_iter()
        .find(|p| p.ends_with(".gz") && !p.contains("by-hash"))
        .expect("a patch on the mirror");
    let images = tree.join("installer-amd64/20230607/images");
    let image = files_under(&images)
        .into_iter()
        .find(|p| !p.ends_with("SUMS") && !p.contains("by-hash"))
        .expect("an installer image on the mirror");
    for damaged in [
        tree.join("binary-amd64/Packages.diff").join(&patch),
        images.join(&image),
    ] {
        // Replace, not write through: the file is a hard link shared with other generations.
        std::fs::remove_file(&damaged).unwrap();
        std::fs::write(&damaged, b"rot").unwrap();
    }
    let out = run_debsync(&["verify", "--config", &config]);
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        assert_failure(&out)
    );
    assert!(shown.contains(&patch), "{shown}");
    assert!(shown.contains(&image), "{shown}");
}
