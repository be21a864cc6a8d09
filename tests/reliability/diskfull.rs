//! A full disk: the mirror root is a 2 MiB tmpfs the test mounts (root only; otherwise the
//! tests print why and pass). A run that hits `ENOSPC` must fail with a clear error, leave the
//! served tree as it was and clean its staging; with space again, the next run converges.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::*;
use crate::support::*;

/// A size-limited tmpfs mounted on a directory; unmounted on drop.
struct Tmpfs {
    dir: PathBuf,
}

fn run(args: &[&str]) -> Result<(), String> {
    let out = run_with_timeout(
        Command::new(args[0]).args(&args[1..]),
        Duration::from_secs(30),
    );
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Result<Tmpfs, String> {
        if !rustix::process::geteuid().is_root() {
            return Err("not running as root".into());
        }
        std::fs::create_dir_all(dir).unwrap();
        let d = dir.to_string_lossy();
        run(&[
            "mount",
            "-t",
            "tmpfs",
            "-o",
            &format!("size={size}"),
            "tmpfs",
            &d,
        ])?;
        Ok(Tmpfs {
            dir: dir.to_path_buf(),
        })
    }

    fn resize(&self, size: &str) {
        run(&[
            "mount",
            "-o",
            &format!("remount,size={size}"),
            &self.dir.to_string_lossy(),
        ])
        .unwrap();
    }

    fn free_bytes(&self) -> u64 {
        let s = rustix::fs::statvfs(&self.dir).unwrap();
        s.f_bavail * s.f_frsize
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let d = self.dir.to_string_lossy().into_owned();
        if run(&["umount", &d]).is_err() {
            let _ = run(&["umount", "-l", &d]);
        }
    }
}

/// A synced mirror on a fresh 2 MiB tmpfs, or `None` (with the reason printed).
fn on_small_fs() -> Option<(Fixture, Tmpfs)> {
    let f = Fixture::new(|_| {}, "");
    let fs = match Tmpfs::mount(&f.tmp.path().join("root"), "2m") {
        Ok(fs) => fs,
        Err(why) => {
            eprintln!("SKIPPED: cannot mount a tmpfs ({why})");
            return None;
        }
    };
    f.sync_ok();
    Some((f, fs))
}

fn assert_fails_for_space(f: &Fixture, before: &std::collections::BTreeMap<String, String>) {
    let line = f.assert_fails(before, &["No space left on device"]);
    eprintln!("disk full: {line}");
    assert_eq!(
        temp_files(&f.tree()),
        Vec::<String>::new(),
        "partial downloads left on the full disk"
    );
}

#[test]
fn disk_full_while_fetching_the_pool() {
    let Some((mut f, fs)) = on_small_fs() else {
        return;
    };
    let before = f.served();
    f.change(|a| a.suites[0].packages.push(package("big", "1.0", 3 << 20)));
    assert_fails_for_space(&f, &before);
    fs.resize("16m");
    f.assert_converges();
}

#[test]
fn disk_full_while_staging_indices() {
    let Some((mut f, fs)) = on_small_fs() else {
        return;
    };
    let before = f.served();
    // 150 small packages: a Packages index of ~50 KB, more than the space left.
    f.change(|a| {
        for i in 0..150 {
            a.suites[0]
                .packages
                .push(package(&format!("many{i:03}"), "1.0", 64));
        }
    });
    let filler = fs.dir.join("filler");
    let leave = 24 * 1024;
    let fill = fs.free_bytes().saturating_sub(leave);
    std::fs::write(&filler, vec![0u8; fill as usize]).unwrap();
    eprintln!("{} bytes left on the tmpfs", fs.free_bytes());
    f.upstream.clear_log();
    assert_fails_for_space(&f, &before);
    assert!(
        f.upstream
            .requests()
            .iter()
            .all(|r| !r.path.starts_with("/pool/")),
        "failed while staging, before the pool"
    );
    std::fs::remove_file(&filler).unwrap();
    f.assert_converges();
}
