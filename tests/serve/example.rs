//! `example/run.sh`, the README's first command, leaves nothing running: both of its
//! `debsync serve` processes are gone when it exits, after success and after a failure.
//! Offline: the upstream's three packages are built with dpkg-deb and put where
//! `make-upstream.sh` caches downloads. Skipped when apt, apt-ftparchive, gpg or dpkg-deb is
//! missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::Tree;

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `<name>_1.0_amd64.deb` in `debs`, built with dpkg-deb.
fn build_deb(work: &Path, debs: &Path, name: &str) {
    let root = work.join(format!("pkg-{name}"));
    std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
    std::fs::create_dir_all(root.join("usr/share/doc").join(name)).unwrap();
    std::fs::write(root.join("usr/share/doc").join(name).join("README"), name).unwrap();
    std::fs::write(
        root.join("DEBIAN/control"),
        format!(
            "Package: {name}\nVersion: 1.0\nArchitecture: amd64\nMaintainer: t <t@example.org>\n\
             Description: test package {name}\n"
        ),
    )
    .unwrap();
    let out = Command::new("dpkg-deb")
        .args(["--root-owner-group", "--build"])
        .arg(&root)
        .arg(debs.join(format!("{name}_1.0_amd64.deb")))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Live processes (not zombies) whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let zombie = std::fs::read_to_string(entry.path().join("stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .map(|(_, rest)| rest.trim_start().starts_with('Z'))
            })
            .unwrap_or(true);
        if cmdline.contains(needle) && !zombie {
            found.push((pid, cmdline));
        }
    }
    found
}

/// Runs `bash example/run.sh --check` in a fresh work dir with `path_prefix` first on PATH;
/// returns whether it succeeded, its output and the work dir.
fn run_example(t: &Tree, path_prefix: Option<&Path>) -> (bool, String, PathBuf) {
    let work = t.dir("work");
    let debs = t.dir("work/upstream/debs");
    for name in ["hello", "sl", "cowsay"] {
        build_deb(&t.dir("build"), &debs, name);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("example/run.sh");
    let mut path = std::env::var("PATH").unwrap_or_default();
    if let Some(prefix) = path_prefix {
        path = format!("{}:{path}", prefix.display());
    }
    let out = Command::new("timeout")
        .arg("300")
        .arg("bash")
        .arg(&script)
        .arg("--check")
        .env("DEBSYNC_EXAMPLE_DIR", &work)
        .env("DEBSYNC_BIN", env!("CARGO_BIN_EXE_debsync"))
        .env("PATH", path)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text, work)
}

/// Both servers did start (so their absence afterwards means something), and none is left.
fn assert_servers_started_and_gone(work: &Path, output: &str) {
    for log in ["upstream.log", "mirror.log"] {
        let text = std::fs::read_to_string(work.join(log)).unwrap_or_default();
        assert!(
            text.starts_with("listening on "),
            "{log}: {text:?}\n{output}"
        );
    }
    let left: Vec<_> = processes_mentioning(work.to_str().unwrap())
        .into_iter()
        .filter(|(_, cmd)| cmd.contains(" serve "))
        .collect();
    for (pid, _) in &left {
        // Not ours to leave behind either way.
        let _ = Command::new("kill").arg(pid.to_string()).status();
    }
    assert!(
        left.is_empty(),
        "still running after run.sh exited: {left:?}\n{output}"
    );
}

fn skip() -> bool {
    let missing: Vec<_> = ["apt-get", "apt-ftparchive", "gpg", "dpkg-deb", "xz"]
        .into_iter()
        .filter(|t| !have(t))
        .collect();
    if !missing.is_empty() {
        eprintln!("skipped: {missing:?} missing");
    }
    !missing.is_empty()
}

#[test]
fn example_check_leaves_no_server_running() {
    if skip() {
        return;
    }
    let t = Tree::new();
    let (ok, output, work) = run_example(&t, None);
    assert!(ok, "run.sh --check failed:\n{output}");
    assert!(
        output.contains("download against the mirror: OK"),
        "{output}"
    );
    assert_servers_started_and_gone(&work, &output);
}

#[test]
fn example_failing_after_both_servers_started_leaves_none_running() {
    if skip() {
        return;
    }
    let t = Tree::new();
    // An apt-get that fails: the script dies at `apt-get update`, both servers up.
    let bin = t.dir("fake-bin");
    let fake = bin.join("apt-get");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'E: broken on purpose' >&2\nexit 100\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (ok, output, work) = run_example(&t, Some(&bin));
    assert!(!ok, "run.sh should have failed:\n{output}");
    assert_servers_started_and_gone(&work, &output);
}
