//! `[[cache]]` in `mirror.toml`: the schema of one edge cache and its validation. The table
//! sits beside `[[mirror]]`; [`crate::config::Config::parse`] calls [`validate`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::config::{ConfigError, MirrorConfig, RESERVED_NAMES, parse_upstream, valid_name};

/// What the cache does with a pool file no cached verified index lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unlisted {
    /// Streamed from upstream to the client, never stored (`X-Debsync-Cache: PASS`).
    Pass,
    /// Refused with `403`.
    Refuse,
}

/// One verified pull-through cache, served at `/<name>/` from `<root>/<name>`.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    pub name: String,
    /// Upstream base URL, ending in `/`.
    pub upstream: reqwest::Url,
    pub keyrings: Vec<PathBuf>,
    /// Bytes the cache may hold; `None`: no limit.
    pub max_size: Option<u64>,
    /// How long a verified InRelease is served before it is revalidated upstream.
    pub release_ttl: Duration,
    pub unlisted: Unlisted,
    /// apt's `auth.conf` format (`machine host/path login U password P`): HTTP basic.
    pub auth_file: Option<PathBuf>,
    /// A file holding a bearer token for upstream (`Authorization: Bearer …`).
    pub bearer_token_file: Option<PathBuf>,
    /// A file holding the token `POST /-/preheat/<name>` must present; no file: endpoint off.
    pub preheat_token_file: Option<PathBuf>,
}

impl CacheConfig {
    /// The cache's tree: `<root>/<name>`.
    pub fn tree(&self, root: &Path) -> PathBuf {
        root.join(&self.name)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCache {
    name: String,
    upstream: String,
    keyring: KeyringPaths,
    max_size: Option<SizeValue>,
    #[serde(default = "default_ttl")]
    release_ttl_secs: u64,
    #[serde(default = "default_unlisted")]
    unlisted: Unlisted,
    auth_file: Option<PathBuf>,
    bearer_token_file: Option<PathBuf>,
    preheat_token_file: Option<PathBuf>,
}

fn default_ttl() -> u64 {
    60
}

fn default_unlisted() -> Unlisted {
    Unlisted::Pass
}

#[derive(Deserialize)]
#[serde(untagged)]
enum KeyringPaths {
    One(PathBuf),
    Many(Vec<PathBuf>),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum SizeValue {
    Bytes(u64),
    Text(String),
}

/// `"50G"`, `"512M"`, `"2T"`, `"100K"` (powers of 1024) or a plain byte count.
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let (num, mult) = match t.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => {
            let mult: u64 = match c.to_ascii_uppercase() {
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                _ => return None,
            };
            (&t[..i], mult)
        }
        _ => (t, 1),
    };
    num.trim().parse::<u64>().ok()?.checked_mul(mult)
}

/// Validates every `[[cache]]`; `mirrors` are the validated mirrors (names must not collide).
pub(crate) fn validate(
    raw: Vec<RawCache>,
    mirrors: &[MirrorConfig],
    base: &Path,
    invalid: &dyn Fn(String, String) -> ConfigError,
) -> Result<Vec<CacheConfig>, ConfigError> {
    let mut out: Vec<CacheConfig> = Vec::with_capacity(raw.len());
    for (i, c) in raw.into_iter().enumerate() {
        let key = |k: &str| format!("cache[{i}].{k}");
        if !valid_name(&c.name) || RESERVED_NAMES.contains(&c.name.as_str()) {
            return Err(invalid(
                key("name"),
                format!(
                    "{:?} must be [A-Za-z0-9._-], not starting with '.', and not one of {RESERVED_NAMES:?}",
                    c.name
                ),
            ));
        }
        if mirrors.iter().any(|m| m.name == c.name) || out.iter().any(|o| o.name == c.name) {
            return Err(invalid(
                key("name"),
                format!(
                    "{:?} is already a mirror or cache name: each is served at /<name>/",
                    c.name
                ),
            ));
        }
        let upstream = parse_upstream(&c.upstream).map_err(|m| invalid(key("upstream"), m))?;
        let keyrings: Vec<PathBuf> = match c.keyring {
            KeyringPaths::One(p) => vec![p],
            KeyringPaths::Many(v) => v,
        }
        .into_iter()
        .map(|p| base.join(p))
        .collect();
        if keyrings.is_empty() {
            return Err(invalid(
                key("keyring"),
                "at least one keyring is required".into(),
            ));
        }
        for k in &keyrings {
            if !k.is_file() {
                return Err(invalid(
                    key("keyring"),
                    format!("{}: no such file", k.display()),
                ));
            }
        }
        let max_size = match c.max_size {
            None => None,
            Some(SizeValue::Bytes(n)) => Some(n),
            Some(SizeValue::Text(t)) => Some(parse_size(&t).ok_or_else(|| {
                invalid(
                    key("max_size"),
                    format!("{t:?}: expected bytes or a size like \"50G\", \"512M\""),
                )
            })?),
        };
        if max_size == Some(0) {
            return Err(invalid(key("max_size"), "must be more than 0".into()));
        }
        if c.release_ttl_secs > 86_400 {
            return Err(invalid(
                key("release_ttl_secs"),
                format!("must be at most 86400 (a day), got {}", c.release_ttl_secs),
            ));
        }
        let file = |name: &str, p: Option<PathBuf>| -> Result<Option<PathBuf>, ConfigError> {
            match p.map(|p| base.join(p)) {
                Some(p) if !p.is_file() => {
                    Err(invalid(key(name), format!("{}: no such file", p.display())))
                }
                other => Ok(other),
            }
        };
        out.push(CacheConfig {
            upstream,
            keyrings,
            max_size,
            release_ttl: Duration::from_secs(c.release_ttl_secs),
            unlisted: c.unlisted,
            auth_file: file("auth_file", c.auth_file)?,
            bearer_token_file: file("bearer_token_file", c.bearer_token_file)?,
            preheat_token_file: file("preheat_token_file", c.preheat_token_file)?,
            name: c.name,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("k.gpg"), b"x").unwrap();
        Config::parse(text, Path::new("mirror.toml"), dir.path())
    }

    const CACHE: &str = r#"
root = "srv"
[[cache]]
name = "ubuntu-cache"
upstream = "http://127.0.0.1:1/ubuntu"
keyring = "k.gpg"
max_size = "2G"
"#;

    #[test]
    fn a_cache_alone_is_a_config() {
        let c = parse(CACHE).unwrap();
        assert!(c.mirrors.is_empty());
        let cache = &c.caches[0];
        assert_eq!(cache.upstream.as_str(), "http://127.0.0.1:1/ubuntu/");
        assert_eq!(cache.max_size, Some(2 << 30));
        assert_eq!(cache.release_ttl, Duration::from_secs(60));
        assert_eq!(cache.unlisted, Unlisted::Pass);
    }

    #[test]
    fn errors_name_the_key() {
        let mirror = "[[mirror]]\nname = \"ubuntu-cache\"\nupstream = \"http://x/\"\nsuites = [\"s\"]\ncomponents = [\"main\"]\narchitectures = [\"amd64\"]\nkeyring = \"k.gpg\"\n";
        let cases = [
            (format!("{CACHE}{mirror}"), "cache[0].name"),
            (CACHE.replace("ubuntu-cache", "-"), "cache[0].name"),
            (CACHE.replace("\"2G\"", "\"2Q\""), "cache[0].max_size"),
            (CACHE.replace("k.gpg", "nope.gpg"), "cache[0].keyring"),
            (CACHE.replace("http://", "ftp://"), "cache[0].upstream"),
            (format!("{CACHE}unlisted = \"maybe\"\n"), "unlisted"),
            (
                format!("{CACHE}auth_file = \"none\"\n"),
                "cache[0].auth_file",
            ),
            (format!("{CACHE}colour = 1\n"), "colour"),
        ];
        for (text, key) in cases {
            let err = parse(&text).unwrap_err().to_string();
            assert!(err.contains(key), "{err:?} should name {key}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("1k"), Some(1024));
        assert_eq!(parse_size("512M"), Some(512 << 20));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size("99999999999T"), None);
    }
}
