//! The fixture every sync test starts from: a signed upstream archive served on
//! `127.0.0.1:0`, a keyring holding its key, a `mirror.toml`, and helpers to run
//! `debsync sync` and compare the served tree before and after.

use std::path::Path;

pub use crate::common::Fixture;
use crate::common::*;

/// Size of every pool file the fixtures make.
pub const DEB_LEN: usize = 4096;

/// `pool/<component>/<prefix>/<name>/<name>_<version>_<arch>.deb`, as the kit lays it out.
pub fn pool_path(component: &str, name: &str, version: &str, arch: &str) -> String {
    let prefix = if name.starts_with("lib") && name.len() > 3 {
        &name[..4]
    } else {
        &name[..1]
    };
    let version = version.split_once(':').map_or(version, |(_, v)| v);
    format!("pool/{component}/{prefix}/{name}/{name}_{version}_{arch}.deb")
}

/// Adds a package whose content is [`noise`] of its name and version.
pub fn add(a: &mut TestArchive, name: &str, version: &str, arch: &str) {
    a.add_package(
        name,
        version,
        arch,
        "main",
        &noise(&format!("{name}_{version}"), DEB_LEN),
    );
}

pub const HELLO: &str = "pool/main/h/hello/hello_1.0-1_amd64.deb";
pub const DATA: &str = "pool/main/d/data/data_0.5_all.deb";
pub const LIBFOO: &str = "pool/main/libf/libfoo1/libfoo1_3.1_amd64.deb";

/// A signed archive with `hello` (amd64), `data` (arch all, epoch 2) and `libfoo1` (amd64).
pub fn sample_archive(dir: &Path) -> TestArchive {
    let mut a = TestArchive::new(dir.join("upstream"));
    add(&mut a, "hello", "1.0-1", "amd64");
    add(&mut a, "data", "2:0.5", "all");
    add(&mut a, "libfoo1", "3.1", "amd64");
    a.suite("stable").architectures.push("all".into());
    a
}

pub const FLAT_HELLO: &str = "hello_1.0-1_amd64.deb";
pub const FLAT_DATA: &str = "data_0.5_all.deb";
pub const FLAT_LIBFOO: &str = "libfoo1_3.1_amd64.deb";

impl Fixture {
    /// [`sample_archive`], edited by `edit`, built and served; `extra_toml` is merged into the
    /// default config (see `write_config`).
    pub fn new(edit: impl FnOnce(&mut TestArchive), extra_toml: &str) -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let mut archive = sample_archive(tmp.path());
        edit(&mut archive);
        Fixture::from_archive(tmp, archive, extra_toml)
    }

    /// A flat repository ([`TestArchive::new_flat`]) with the packages of [`sample_archive`]
    /// (pool files at its root: [`FLAT_HELLO`], [`FLAT_DATA`], [`FLAT_LIBFOO`]), edited by
    /// `edit`, built and served; the mirror has `flat = true` and no suites, components or
    /// architectures. `extra_toml` as for [`Fixture::new`].
    pub fn flat(edit: impl FnOnce(&mut TestArchive), extra_toml: &str) -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let mut archive = TestArchive::new_flat(tmp.path().join("upstream"));
        add(&mut archive, "hello", "1.0-1", "amd64");
        add(&mut archive, "data", "2:0.5", "all");
        add(&mut archive, "libfoo1", "3.1", "amd64");
        edit(&mut archive);
        let mut f = Fixture::from_archive(tmp, archive, extra_toml);
        let config = &f.config;
        let mut doc: toml::Table = std::fs::read_to_string(config).unwrap().parse().unwrap();
        let mirror = doc["mirror"].as_array_mut().unwrap()[0]
            .as_table_mut()
            .unwrap();
        for key in ["suites", "components", "architectures"] {
            mirror.remove(key);
        }
        mirror.insert("flat".into(), true.into());
        std::fs::write(config, toml::to_string(&doc).unwrap()).unwrap();
        f.flat = true;
        f
    }
}
