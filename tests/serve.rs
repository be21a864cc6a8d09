//! Black-box tests of `debsync serve`: the built binary (or the library with injected limits
//! and shutdown) against real clients — curl and raw TCP.

#[path = "serve/support.rs"]
mod support;

mod common;

#[path = "serve/apt.rs"]
mod apt;
#[path = "serve/example.rs"]
mod example;
#[path = "serve/files.rs"]
mod files;
#[path = "serve/lifecycle.rs"]
mod lifecycle;
#[path = "serve/limits.rs"]
mod limits;
#[path = "serve/listing.rs"]
mod listing;
#[path = "serve/ops.rs"]
mod ops;
#[path = "serve/pages.rs"]
mod pages;
#[path = "serve/safety.rs"]
mod safety;

use support::{Tree, noise};

pub const DEB: &str = "pool/main/h/hello/hello_2.10-3_amd64.deb";
pub const DEB_LEN: usize = 1024 * 1024 + 123;

/// A small archive tree with the private bits a sync leaves around.
pub fn archive() -> Tree {
    let t = Tree::new();
    t.file(DEB, &noise(DEB_LEN, 1));
    t.file(
        "pool/main/h/hello/hello_2.10-3.dsc",
        b"Format: 3.0 (quilt)\n",
    );
    t.file(
        "dists/stable/InRelease",
        b"-----BEGIN PGP SIGNED MESSAGE-----\n",
    );
    t.file("dists/stable/Release", b"Origin: Debian\nSuite: stable\n");
    t.file(
        "dists/stable/main/binary-amd64/Packages.xz",
        &noise(3000, 2),
    );
    t.file(
        "dists/stable/main/binary-amd64/Packages",
        b"Package: hello\n",
    );
    t.file(
        "dists/stable/main/binary-amd64/by-hash/SHA256/0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0",
        &noise(100, 3),
    );
    t.file(
        ".debsync/state.json",
        br#"{"last_success": 1700000000, "last_result": "ok", "archive_serial": "2024060101"}"#,
    );
    t.file(
        ".debsync/staging/dists/stable/Release",
        b"next generation\n",
    );
    t.file("Archive-Update-in-Progress-mirrorhost", b"");
    t.file(
        "pool/main/h/hello/.hello_2.11-1_amd64.deb.debsync-tmp",
        b"partial",
    );
    t
}
