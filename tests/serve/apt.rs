//! The real client: `apt-get update` and `apt-get download` against `debsync serve` of a tiny
//! unsigned archive (`[trusted=yes]`), with by-hash indices. Skipped when apt or dpkg-deb is
//! missing. All apt state lives in a temp dir; nothing of the host's apt is touched.

use std::path::Path;
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::support::{Proc, Tree};

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Builds `hello_1.0_all.deb` with dpkg-deb and returns its bytes.
fn build_deb(work: &Path) -> Vec<u8> {
    let root = work.join("pkg");
    std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
    std::fs::create_dir_all(root.join("usr/share/hello")).unwrap();
    std::fs::write(
        root.join("usr/share/hello/greeting"),
        b"hello from debsync\n",
    )
    .unwrap();
    std::fs::write(
        root.join("DEBIAN/control"),
        "Package: hello\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@example.org>\n\
         Description: test package\n",
    )
    .unwrap();
    let deb = work.join("hello_1.0_all.deb");
    let out = Command::new("dpkg-deb")
        .args(["--root-owner-group", "--build"])
        .arg(&root)
        .arg(&deb)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(deb).unwrap()
}

#[test]
fn apt_get_update_and_download() {
    if !have("apt-get") || !have("dpkg-deb") || !have("gzip") {
        eprintln!("skipped: apt-get, dpkg-deb or gzip missing");
        return;
    }
    let t = Tree::new();
    let work = t.dir("work");
    let deb = build_deb(&work);
    let archive = t.dir("archive");
    let pool = "pool/main/h/hello/hello_1.0_all.deb";
    std::fs::create_dir_all(archive.join("pool/main/h/hello")).unwrap();
    std::fs::write(archive.join(pool), &deb).unwrap();
    let packages = format!(
        "Package: hello\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@example.org>\n\
         Filename: {pool}\nSize: {}\nSHA256: {}\nDescription: test package\n\n",
        deb.len(),
        sha256(&deb)
    );
    let dist = archive.join("dists/stable/main/binary-all");
    std::fs::create_dir_all(dist.join("by-hash/SHA256")).unwrap();
    std::fs::write(dist.join("Packages"), &packages).unwrap();
    let gz = Command::new("gzip")
        .args(["-9nc"])
        .arg(dist.join("Packages"))
        .output()
        .unwrap();
    assert!(gz.status.success());
    std::fs::write(dist.join("Packages.gz"), &gz.stdout).unwrap();
    // Only by-hash copies are read when Acquire-By-Hash is set; the plain names stay too.
    for body in [packages.as_bytes(), &gz.stdout[..]] {
        std::fs::write(dist.join("by-hash/SHA256").join(sha256(body)), body).unwrap();
    }
    let mut release = String::from(
        "Origin: debsync-test\nLabel: debsync-test\nSuite: stable\nCodename: stable\n\
         Date: Sat, 01 Jun 2024 00:00:00 UTC\nArchitectures: amd64 all\nComponents: main\n\
         Acquire-By-Hash: yes\nSHA256:\n",
    );
    for (name, body) in [
        ("main/binary-all/Packages", packages.as_bytes()),
        ("main/binary-all/Packages.gz", &gz.stdout[..]),
    ] {
        release.push_str(&format!(" {} {} {name}\n", sha256(body), body.len()));
    }
    std::fs::write(archive.join("dists/stable/Release"), release).unwrap();
    // What a sync leaves around must not bother apt.
    std::fs::create_dir_all(archive.join(".debsync")).unwrap();
    std::fs::write(archive.join(".debsync/state.json"), b"{}").unwrap();

    let mut p = Proc::spawn_env(
        &["--root", archive.to_str().unwrap()],
        &[("RUST_LOG", "info")],
    );
    let state = t.dir("apt");
    for d in [
        "lists/partial",
        "cache/archives/partial",
        "etc/apt.conf.d",
        "etc/preferences.d",
    ] {
        std::fs::create_dir_all(state.join(d)).unwrap();
    }
    let sources = state.join("etc/sources.list");
    let apt_conf = state.join("etc/apt.conf");
    std::fs::write(&apt_conf, b"").unwrap();
    std::fs::write(
        &sources,
        format!("deb [trusted=yes] {}/ stable main\n", p.base),
    )
    .unwrap();
    let s = |rel: &str| state.join(rel).to_str().unwrap().to_string();
    let opts = [
        format!("Dir::Etc={}", s("etc")),
        format!("Dir::Etc::SourceList={}", sources.display()),
        "Dir::Etc::SourceParts=/nonexistent".to_string(),
        format!("Dir::State={}", s("")),
        format!("Dir::State::Lists={}", s("lists")),
        "Dir::State::status=/dev/null".to_string(),
        format!("Dir::Cache={}", s("cache")),
        "APT::Architecture=amd64".to_string(),
        "APT::Architectures=amd64".to_string(),
        "APT::Sandbox::User=root".to_string(),
        "Debug::NoLocking=1".to_string(),
        "Acquire::Retries=0".to_string(),
        "Acquire::http::Timeout=10".to_string(),
        "Acquire::Languages=none".to_string(),
    ];
    let apt = |args: &[&str], cwd: &Path| {
        let mut cmd = Command::new("timeout");
        cmd.arg("60").arg("apt-get").arg("-q");
        for o in &opts {
            cmd.arg("-o").arg(o);
        }
        let out = cmd
            .args(args)
            .current_dir(cwd)
            .env("APT_CONFIG", &apt_conf)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    let (ok, out) = apt(&["update"], &work);
    assert!(ok, "apt-get update failed:\n{out}");
    assert!(
        !out.contains("Err:") && !out.contains("W: "),
        "apt-get update complained:\n{out}"
    );
    let dl = t.dir("download");
    let (ok, out) = apt(&["download", "hello"], &dl);
    assert!(ok, "apt-get download failed:\n{out}");
    assert_eq!(std::fs::read(dl.join("hello_1.0_all.deb")).unwrap(), deb);
    assert!(p.terminate().success());
    let log = p.stderr();
    assert!(
        log.contains("by-hash/SHA256/"),
        "apt should have used by-hash:\n{log}"
    );
    assert!(
        log.contains(&format!("\"GET /{pool} HTTP/1.1\" 200 {}", deb.len())),
        "{log}"
    );
}
