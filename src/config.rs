//! `mirror.toml`: the schema and its validation.
//!
//! Every table rejects unknown keys, so a typo (`architecture = …`) is an error that names the
//! key instead of a mirror that silently syncs nothing. Paths are resolved against the config
//! file's directory so a config can be moved together with its keyrings.
//!
//! Planned growth (Translation, Contents, dep11, filters, schedule) lands as new optional keys
//! on [`MirrorConfig`] and new tables beside `[sync]`, never as positional flags.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Errors found while reading `mirror.toml`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read config: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("no mirror named {0:?} in the config")]
    UnknownMirror(String),
    #[error("{path}: {key}: {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
}

/// The whole configuration file, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// Directory holding every mirror's tree.
    pub root: PathBuf,
    pub sync: SyncConfig,
    pub serve: ServeConfig,
    pub mirrors: Vec<MirrorConfig>,
    /// `debsync daemon`: jitter, retry backoff and each mirror's schedule.
    pub daemon: DaemonConfig,
    /// `[[cache]]`: verified pull-through caches served beside the mirrors.
    pub caches: Vec<crate::cache::CacheConfig>,
    /// `[push]`: the token `POST /-/sync/<mirror>` must carry (`debsync daemon`).
    pub push: crate::push::PushConfig,
}

/// The schedule every mirror without a `schedule` key gets: every 6 hours, on the hour
/// (seconds first: the `cron` crate's syntax).
pub const DEFAULT_SCHEDULE: &str = "0 0 */6 * * *";

/// `[daemon]` plus each mirror's `schedule`; only `debsync daemon` reads them.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// Upper bound of the random delay added to each firing.
    pub jitter_secs: u64,
    /// First retry delay after a failed run; doubled per failure in a row.
    pub retry_min_secs: u64,
    /// Cap of the retry delay.
    pub retry_max_secs: u64,
    /// Mirror name → its parsed `schedule` (or [`DEFAULT_SCHEDULE`]).
    pub schedules: std::collections::BTreeMap<String, cron::Schedule>,
}

impl DaemonConfig {
    /// The schedule of a mirror of this config ([`DEFAULT_SCHEDULE`] for an unknown name).
    pub fn schedule(&self, mirror: &str) -> cron::Schedule {
        self.schedules
            .get(mirror)
            .cloned()
            .unwrap_or_else(default_schedule)
    }
}

fn default_schedule() -> cron::Schedule {
    DEFAULT_SCHEDULE
        .parse()
        .expect("DEFAULT_SCHEDULE is a valid cron expression")
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawDaemon {
    jitter_secs: u64,
    retry_min_secs: u64,
    retry_max_secs: u64,
}

impl Default for RawDaemon {
    fn default() -> Self {
        RawDaemon {
            jitter_secs: 300,
            retry_min_secs: 60,
            retry_max_secs: 3600,
        }
    }
}

/// A mirror's `schedule` key: six or seven fields, seconds first (`cron` crate syntax), or
/// `@hourly`/`@daily`/`@weekly`/`@monthly`/`@yearly`; it must fire at least once more.
fn parse_schedule(text: &str) -> Result<cron::Schedule, String> {
    let schedule: cron::Schedule = text.parse().map_err(|e| {
        let fields = text.split_whitespace().count();
        let hint = if fields == 5 {
            " (5 fields: this is classic crontab syntax; add the seconds field first, \
             e.g. \"0 0 */6 * * *\")"
        } else {
            " (expected: sec min hour day-of-month month day-of-week [year], \
             e.g. \"0 0 */6 * * *\")"
        };
        format!("{text:?}: {e}{hint}")
    })?;
    if schedule.upcoming(chrono::Utc).next().is_none() {
        return Err(format!("{text:?} never fires again"));
    }
    Ok(schedule)
}

/// Tuning of the sync engine; shared by every mirror of one config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncConfig {
    pub concurrency: usize,
    /// Requests in flight on one connection to a plain `http://` upstream (HTTP/1.1
    /// pipelining, as apt does by default with 10); 0 or 1 sends one request at a time.
    pub pipeline_depth: usize,
    pub retries: u32,
    pub retry_delay_ms: u64,
    pub timeout_secs: u64,
    pub max_delete: MaxDelete,
    pub by_hash_generations: usize,
    /// Slowest average transfer rate (bytes/s) tolerated once a request has run for
    /// `timeout_secs`: a drip-feeding upstream cannot hold a run (and its lock) for hours.
    /// 0 disables the check.
    pub min_rate: u64,
    /// ftpsync's UIPSLEEP: how long to wait when upstream is mid-update (its
    /// `Archive-Update-in-Progress-*` flag, or a file its Release lists is missing) before
    /// trying again; doubled per wait.
    pub upstream_update_wait_secs: u64,
    /// ftpsync's UIPRETRIES: waits before the run fails (the served tree unchanged).
    pub upstream_update_retries: u32,
    /// Per-run changelogs kept in `project/debsync/changes/` (oldest deleted first); 0 records
    /// none.
    pub changes_kept: usize,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            concurrency: 8,
            pipeline_depth: 10,
            retries: 4,
            retry_delay_ms: 500,
            timeout_secs: 60,
            max_delete: MaxDelete::Percent(10),
            by_hash_generations: 3,
            min_rate: 1024,
            upstream_update_wait_secs: 1200,
            upstream_update_retries: 3,
            changes_kept: 30,
        }
    }
}

impl SyncConfig {
    pub fn retry_delay(&self) -> Duration {
        Duration::from_millis(self.retry_delay_ms)
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }

    pub fn upstream_update_wait(&self) -> Duration {
        Duration::from_secs(self.upstream_update_wait_secs)
    }
}

/// The most files one run may delete without `--force-delete`: guards against an upstream that
/// suddenly lists nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxDelete {
    Percent(u8),
    Count(u64),
}

impl MaxDelete {
    /// How many deletions are allowed out of `total` files known before the run.
    pub fn limit(self, total: u64) -> u64 {
        match self {
            MaxDelete::Count(n) => n,
            MaxDelete::Percent(p) => total * u64::from(p) / 100,
        }
    }
}

impl fmt::Display for MaxDelete {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MaxDelete::Percent(p) => write!(f, "{p}%"),
            MaxDelete::Count(n) => write!(f, "{n}"),
        }
    }
}

impl<'de> Deserialize<'de> for MaxDelete {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Count(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Count(n) => Ok(MaxDelete::Count(n)),
            Raw::Text(s) => parse_max_delete(&s).map_err(serde::de::Error::custom),
        }
    }
}

fn parse_max_delete(s: &str) -> Result<MaxDelete, String> {
    let bad = || format!("expected a count (500) or a percentage (\"10%\"), got {s:?}");
    if let Some(p) = s.trim().strip_suffix('%') {
        let p: u8 = p.trim().parse().map_err(|_| bad())?;
        if p > 100 {
            return Err(bad());
        }
        Ok(MaxDelete::Percent(p))
    } else {
        s.trim().parse().map(MaxDelete::Count).map_err(|_| bad())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    pub listen: String,
    /// `/healthz` is 503 for a mirror whose last successful sync is older than this; 0: no
    /// age limit (a mirror never synced is 503 either way).
    pub max_age_secs: u64,
    /// Access log file (nginx combined format), reopened on SIGHUP; `None`: access lines go
    /// to the `debsync::access` log target.
    pub access_log: Option<PathBuf>,
}

/// Default `[serve] max_age_secs`: two days, four missed runs of the default 6-hour schedule.
pub const DEFAULT_MAX_AGE_SECS: u64 = 2 * 86_400;

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: "127.0.0.1:8080".to_string(),
            max_age_secs: DEFAULT_MAX_AGE_SECS,
            access_log: None,
        }
    }
}

/// One upstream archive mirrored into `<root>/<name>`.
#[derive(Debug, Clone)]
pub struct MirrorConfig {
    pub name: String,
    /// Upstream base URL, always ending in `/` so joins append.
    pub upstream: reqwest::Url,
    pub suites: Vec<String>,
    pub components: Vec<String>,
    pub architectures: Vec<String>,
    pub keyrings: Vec<PathBuf>,
    pub sources: bool,
    /// Which of the optional index families Release lists are mirrored.
    pub select: Selection,
    /// Accept a Release without `Date` (then nothing guards against a rollback to an older
    /// signed Release). Off by default.
    pub allow_missing_date: bool,
    /// A flat repository (`deb URL ./`): Release and `Packages` at the upstream root, no
    /// suites or components. Synced as the one suite [`crate::sync::layout::FLAT_SUITE`].
    pub flat: bool,
    /// Downstream mirrors pushed after every successful run.
    pub notify: Vec<crate::push::NotifyTarget>,
}

/// The keys that trim a full mirror. The default is everything Release lists for the chosen
/// components and architectures; a trimmed family stays listed in the signed Release, so a
/// client that asks for it gets a 404 (documented in the README).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// `i18n/Translation-<lang>` to keep; `None`: every language Release lists.
    pub languages: Option<Vec<String>>,
    /// `Contents-<arch>` and `Contents-udeb-<arch>` (apt-file).
    pub contents: bool,
    /// `dep11/` (AppStream metadata and icons).
    pub dep11: bool,
    /// `cnf/` (command-not-found).
    pub cnf: bool,
    /// `debian-installer/` udeb indices (and their udebs) and `installer-<arch>/` images.
    pub installer: bool,
    /// `*.diff/Index` and the patches they list.
    pub pdiffs: bool,
}

impl Default for Selection {
    fn default() -> Self {
        Selection {
            languages: None,
            contents: true,
            dep11: true,
            cnf: true,
            installer: true,
            pdiffs: true,
        }
    }
}

impl MirrorConfig {
    /// The mirror's tree: `<root>/<name>`.
    pub fn tree(&self, root: &Path) -> PathBuf {
        root.join(&self.name)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    root: PathBuf,
    #[serde(default)]
    sync: SyncConfig,
    #[serde(default)]
    serve: ServeConfig,
    #[serde(default)]
    daemon: RawDaemon,
    #[serde(default)]
    push: crate::push::RawPush,
    #[serde(default)]
    mirror: Vec<RawMirror>,
    #[serde(default)]
    cache: Vec<crate::cache::config::RawCache>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMirror {
    name: String,
    upstream: String,
    suites: Option<Vec<String>>,
    components: Option<Vec<String>>,
    architectures: Option<Vec<String>>,
    #[serde(default)]
    flat: bool,
    keyring: OneOrMany,
    #[serde(default)]
    sources: bool,
    languages: Option<Vec<String>>,
    #[serde(default = "yes")]
    contents: bool,
    #[serde(default = "yes")]
    dep11: bool,
    #[serde(default = "yes")]
    cnf: bool,
    #[serde(default = "yes")]
    installer: bool,
    #[serde(default = "yes")]
    pdiffs: bool,
    #[serde(default)]
    allow_missing_date: bool,
    schedule: Option<String>,
    #[serde(default)]
    notify: Vec<crate::push::RawNotify>,
}

/// Whether loading a config checks that its keyring files exist.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Keyrings {
    Required,
    NotNeeded,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(PathBuf),
    Many(Vec<PathBuf>),
}

impl Config {
    /// The mirrors a command acts on: all of them, or the one named (`--mirror NAME`).
    pub fn select(&self, only: Option<&str>) -> Result<Vec<&MirrorConfig>, ConfigError> {
        match only {
            None => Ok(self.mirrors.iter().collect()),
            Some(name) => self
                .mirrors
                .iter()
                .find(|m| m.name == name)
                .map(|m| vec![m])
                .ok_or_else(|| ConfigError::UnknownMirror(name.to_string())),
        }
    }

    /// Reads and validates a config file, keyring files included: for the commands that
    /// verify signatures (sync, check, verify, daemon).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::read(path, Keyrings::Required)
    }

    /// [`Config::load`] without requiring the keyring files: `serve` and `status` never
    /// verify a signature, so a server needs no keyring (the Debian package's default config
    /// names Ubuntu's, which Debian does not ship); `check` loads them per mirror itself and
    /// reports the one that fails.
    pub fn load_without_keyrings(path: &Path) -> Result<Config, ConfigError> {
        Config::read(path, Keyrings::NotNeeded)
    }

    fn read(path: &Path, keyrings: Keyrings) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::parse_with(&text, path, base, keyrings)
    }

    /// Parses config text; `path` is only used in messages, `base` resolves relative paths.
    pub fn parse(text: &str, path: &Path, base: &Path) -> Result<Config, ConfigError> {
        Config::parse_with(text, path, base, Keyrings::Required)
    }

    fn parse_with(
        text: &str,
        path: &Path,
        base: &Path,
        keyrings_needed: Keyrings,
    ) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().replace('\n', " "),
        })?;
        let invalid = |key: String, message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            key,
            message,
        };
        let sync = raw.sync;
        if sync.concurrency == 0 || sync.concurrency > 256 {
            return Err(invalid(
                "sync.concurrency".into(),
                format!("must be 1..=256, got {}", sync.concurrency),
            ));
        }
        if sync.pipeline_depth > 100 {
            return Err(invalid(
                "sync.pipeline_depth".into(),
                format!("must be 0..=100, got {}", sync.pipeline_depth),
            ));
        }
        // Upper bounds keep deadline arithmetic (now + timeout) far from overflow.
        if sync.timeout_secs == 0 || sync.timeout_secs > 86_400 {
            return Err(invalid(
                "sync.timeout_secs".into(),
                format!("must be 1..=86400 (a day), got {}", sync.timeout_secs),
            ));
        }
        if sync.retry_delay_ms > 3_600_000 {
            return Err(invalid(
                "sync.retry_delay_ms".into(),
                format!(
                    "must be at most 3600000 (an hour), got {}",
                    sync.retry_delay_ms
                ),
            ));
        }
        if sync.retries > 100 {
            return Err(invalid(
                "sync.retries".into(),
                format!("must be at most 100, got {}", sync.retries),
            ));
        }
        if sync.upstream_update_wait_secs > 86_400 {
            return Err(invalid(
                "sync.upstream_update_wait_secs".into(),
                format!(
                    "must be at most 86400 (a day), got {}",
                    sync.upstream_update_wait_secs
                ),
            ));
        }
        if sync.upstream_update_retries > 100 {
            return Err(invalid(
                "sync.upstream_update_retries".into(),
                format!("must be at most 100, got {}", sync.upstream_update_retries),
            ));
        }
        if sync.by_hash_generations == 0 {
            return Err(invalid(
                "sync.by_hash_generations".into(),
                "must be >= 1 (the current generation)".into(),
            ));
        }
        if raw.mirror.is_empty() && raw.cache.is_empty() {
            return Err(invalid(
                "mirror".into(),
                "no [[mirror]] or [[cache]] entries: nothing to do".into(),
            ));
        }
        let daemon = raw.daemon;
        if daemon.jitter_secs > 86_400 {
            return Err(invalid(
                "daemon.jitter_secs".into(),
                format!("must be at most 86400 (a day), got {}", daemon.jitter_secs),
            ));
        }
        if daemon.retry_min_secs == 0 || daemon.retry_min_secs > daemon.retry_max_secs {
            return Err(invalid(
                "daemon.retry_min_secs".into(),
                format!(
                    "must be 1..=retry_max_secs ({}), got {}",
                    daemon.retry_max_secs, daemon.retry_min_secs
                ),
            ));
        }
        if daemon.retry_max_secs > 7 * 86_400 {
            return Err(invalid(
                "daemon.retry_max_secs".into(),
                format!(
                    "must be at most 604800 (a week), got {}",
                    daemon.retry_max_secs
                ),
            ));
        }
        let mut schedules = std::collections::BTreeMap::new();
        let mut mirrors = Vec::with_capacity(raw.mirror.len());
        for (i, m) in raw.mirror.into_iter().enumerate() {
            let key = |k: &str| format!("mirror[{i}].{k}");
            if !valid_name(&m.name) {
                return Err(invalid(
                    key("name"),
                    format!(
                        "{:?} must be non-empty [A-Za-z0-9._-], not starting with '.'",
                        m.name
                    ),
                ));
            }
            // `-`: the server's namespace of operations (`/-/sync/<mirror>`, `/-/preheat/<cache>`).
            if RESERVED_NAMES.contains(&m.name.as_str()) {
                return Err(invalid(
                    key("name"),
                    format!("{:?} is reserved for the server's ops endpoints", m.name),
                ));
            }
            if mirrors.iter().any(|o: &MirrorConfig| o.name == m.name) {
                return Err(invalid(key("name"), format!("{:?} is used twice", m.name)));
            }
            let upstream =
                parse_upstream(&m.upstream).map_err(|msg| invalid(key("upstream"), msg))?;
            // A flat repository is one Release at the upstream root: nothing to choose from,
            // and its Packages mixes architectures under one signature.
            let list = |name: &str, value: Option<Vec<String>>, ok: fn(&str) -> bool| match (
                m.flat, value,
            ) {
                (true, Some(_)) => Err(invalid(
                    key(name),
                    "not used with flat = true: a flat repository is one Release at the \
                         upstream root, mirrored whole"
                        .into(),
                )),
                (true, None) => Ok(Vec::new()),
                (false, None) => Err(invalid(key(name), "missing (or set flat = true)".into())),
                (false, Some(list)) => check_list(&list, &key(name), ok)
                    .map(|()| list)
                    .map_err(|msg| invalid(key(name), msg)),
            };
            let mut suites = list("suites", m.suites, valid_suite)?;
            let components = list("components", m.components, valid_suite)?;
            let architectures = list("architectures", m.architectures, valid_name)?;
            if m.flat {
                suites = vec![crate::sync::layout::FLAT_SUITE.to_string()];
            }
            // An empty list is allowed: no translations at all.
            if let Some(bad) = m.languages.iter().flatten().find(|l| !valid_language(l)) {
                return Err(invalid(
                    key("languages"),
                    format!("{bad:?} is not a language code (en, de, pt_BR)"),
                ));
            }
            let keyrings: Vec<PathBuf> = match m.keyring {
                OneOrMany::One(p) => vec![p],
                OneOrMany::Many(v) => v,
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
            for k in keyrings
                .iter()
                .filter(|_| keyrings_needed == Keyrings::Required)
            {
                if !k.is_file() {
                    return Err(invalid(
                        key("keyring"),
                        format!("{}: no such file", k.display()),
                    ));
                }
            }
            let schedule = match &m.schedule {
                Some(text) => parse_schedule(text).map_err(|msg| invalid(key("schedule"), msg))?,
                None => default_schedule(),
            };
            schedules.insert(m.name.clone(), schedule);
            let notify = m
                .notify
                .into_iter()
                .enumerate()
                .map(|(j, n)| {
                    crate::push::NotifyTarget::from_raw(n, base)
                        .map_err(|(k, msg)| invalid(key(&format!("notify[{j}].{k}")), msg))
                })
                .collect::<Result<Vec<_>, _>>()?;
            mirrors.push(MirrorConfig {
                name: m.name,
                upstream,
                suites,
                components,
                architectures,
                keyrings,
                sources: m.sources,
                select: Selection {
                    languages: m.languages,
                    contents: m.contents,
                    dep11: m.dep11,
                    cnf: m.cnf,
                    installer: m.installer,
                    pdiffs: m.pdiffs,
                },
                allow_missing_date: m.allow_missing_date,
                flat: m.flat,
                notify,
            });
        }
        let caches = crate::cache::config::validate(raw.cache, &mirrors, base, &invalid)?;
        let push = crate::push::PushConfig::from_raw(raw.push, base)
            .map_err(|(k, msg)| invalid(format!("push.{k}"), msg))?;
        let mut serve = raw.serve;
        serve.access_log = serve.access_log.map(|p| base.join(p));
        Ok(Config {
            caches,
            push,
            root: base.join(raw.root),
            sync,
            serve,
            mirrors,
            daemon: DaemonConfig {
                jitter_secs: daemon.jitter_secs,
                retry_min_secs: daemon.retry_min_secs,
                retry_max_secs: daemon.retry_max_secs,
                schedules,
            },
        })
    }
}

/// An upstream base URL: http(s), no query or fragment, always ending in `/` so joins append.
pub(crate) fn parse_upstream(text: &str) -> Result<reqwest::Url, String> {
    let mut upstream = reqwest::Url::parse(text).map_err(|e| format!("{text:?}: {e}"))?;
    if !matches!(upstream.scheme(), "http" | "https") {
        return Err(format!("{text:?}: only http:// and https:// are supported"));
    }
    if upstream.query().is_some() || upstream.fragment().is_some() {
        return Err(format!("{text:?}: must not have a query or fragment"));
    }
    if !upstream.path().ends_with('/') {
        let p = format!("{}/", upstream.path());
        upstream.set_path(&p);
    }
    Ok(upstream)
}

fn check_list(items: &[String], _key: &str, ok: fn(&str) -> bool) -> Result<(), String> {
    if items.is_empty() {
        return Err("must list at least one entry".into());
    }
    for item in items {
        if !ok(item) {
            return Err(format!("{item:?} is not a valid name"));
        }
    }
    Ok(())
}

/// Names a mirror or cache cannot take: the server's own paths (`/healthz`, `/metrics`, and
/// `/-/` for its POST endpoints).
pub(crate) const RESERVED_NAMES: [&str; 3] = ["healthz", "metrics", "-"];

/// Mirror names and architectures: one safe path component.
pub(crate) fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-+".contains(&b))
}

/// Translation languages as Debian names them: `en`, `pt_BR`, `ca@valencia`.
fn valid_language(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_@-".contains(&b))
}

/// Suites and components may hold a `/` (`bookworm/updates`, `updates/main`) but each part must
/// be a safe component.
fn valid_suite(s: &str) -> bool {
    s.split('/').all(valid_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("k.gpg"), b"x").unwrap();
        Config::parse(text, Path::new("mirror.toml"), dir.path())
    }

    const GOOD: &str = r#"
root = "srv"
[[mirror]]
name = "debian"
upstream = "http://127.0.0.1:1/debian"
suites = ["bookworm"]
components = ["main"]
architectures = ["amd64"]
keyring = "k.gpg"
"#;

    #[test]
    fn good_config_has_defaults() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.sync.concurrency, 8);
        assert_eq!(c.sync.max_delete, MaxDelete::Percent(10));
        assert_eq!(c.mirrors[0].upstream.as_str(), "http://127.0.0.1:1/debian/");
        assert!(c.root.ends_with("srv"));
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            (GOOD.replace("suites", "suite"), "suite"),
            (GOOD.replace("k.gpg", "missing.gpg"), "mirror[0].keyring"),
            (
                GOOD.replace("http://127.0.0.1:1/debian", "ftp://x/"),
                "mirror[0].upstream",
            ),
            (GOOD.replace("\"debian\"", "\"../x\""), "mirror[0].name"),
            (
                GOOD.replace("[\"main\"]", "[\"../main\"]"),
                "mirror[0].components",
            ),
            (
                format!("{GOOD}\n[sync]\nconcurrency = 0\n"),
                "sync.concurrency",
            ),
            (
                format!("{GOOD}\n[sync]\npipeline_depth = 101\n"),
                "sync.pipeline_depth",
            ),
            (
                format!("{GOOD}\n[sync]\ntimeout_secs = 18446744073709551615\n"),
                "sync.timeout_secs",
            ),
            (
                format!("{GOOD}\n[sync]\nretry_delay_ms = 18446744073709551615\n"),
                "sync.retry_delay_ms",
            ),
            (
                GOOD.replace("keyring =", "languages = [\"../x\"]\nkeyring ="),
                "mirror[0].languages",
            ),
            (
                format!("{GOOD}\n[sync]\nmax_delete = \"lots\"\n"),
                "max_delete",
            ),
            (
                GOOD.replace("keyring =", "schedule = \"0 */6 * * *\"\nkeyring ="),
                "mirror[0].schedule",
            ),
            (
                GOOD.replace("keyring =", "schedule = \"0 0 0 1 1 * 2001\"\nkeyring ="),
                "mirror[0].schedule",
            ),
            (
                format!("{GOOD}\n[daemon]\nretry_min_secs = 0\n"),
                "daemon.retry_min_secs",
            ),
            (
                format!("{GOOD}\n[daemon]\nretry_min_secs = 10\nretry_max_secs = 5\n"),
                "daemon.retry_min_secs",
            ),
            (format!("{GOOD}\n[daemon]\njitter = 5\n"), "jitter"),
            (GOOD.replace("\"debian\"", "\"-\""), "mirror[0].name"),
            (
                format!("{GOOD}\n[push]\ntoken_file = \"t\"\ntoken_env = \"T\"\n"),
                "push.token_file",
            ),
            (
                format!("{GOOD}notify = [{{ url = \"ftp://x/\", token_env = \"T\" }}]\n"),
                "mirror[0].notify[0].url",
            ),
            (
                format!("{GOOD}notify = [{{ url = \"http://leaf/-/sync/debian\" }}]\n"),
                "mirror[0].notify[0].token_file",
            ),
            (
                format!("{GOOD}\n[sync]\nupstream_update_retries = 101\n"),
                "sync.upstream_update_retries",
            ),
        ];
        for (text, key) in cases {
            let err = parse(&text).unwrap_err().to_string();
            assert!(err.contains(key), "{err:?} should name {key}");
        }
    }

    /// `serve` and `status` load a config whose keyring is missing; sync's load refuses it.
    #[test]
    fn serving_needs_no_keyring_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mirror.toml");
        std::fs::write(&path, GOOD.replace("k.gpg", "absent.gpg")).unwrap();
        let err = Config::load(&path).unwrap_err().to_string();
        assert!(err.contains("absent.gpg: no such file"), "{err}");
        let c = Config::load_without_keyrings(&path).unwrap();
        assert!(c.mirrors[0].keyrings[0].ends_with("absent.gpg"));
    }

    #[test]
    fn flat_mirror_has_one_internal_suite_and_no_lists() {
        let flat = GOOD
            .replace("suites = [\"bookworm\"]\n", "flat = true\n")
            .replace("components = [\"main\"]\n", "")
            .replace("architectures = [\"amd64\"]\n", "");
        let m = &parse(&flat).unwrap().mirrors[0];
        assert!(m.flat);
        assert_eq!(m.suites, [crate::sync::layout::FLAT_SUITE]);
        assert!(m.components.is_empty() && m.architectures.is_empty());
        for key in ["suites", "components", "architectures"] {
            let text = format!("{flat}{key} = [\"x\"]\n");
            let err = parse(&text).unwrap_err().to_string();
            assert!(err.contains(&format!("mirror[0].{key}")), "{err}");
            assert!(err.contains("flat = true"), "{err}");
        }
        let err = parse(&GOOD.replace("components = [\"main\"]\n", ""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("mirror[0].components: missing"), "{err}");
    }

    #[test]
    fn schedules_default_and_parse() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.daemon.schedule("debian").source(), DEFAULT_SCHEDULE);
        assert_eq!(c.daemon.jitter_secs, 300);
        let c = parse(&GOOD.replace("keyring =", "schedule = \"0 30 2 * * Mon-Fri\"\nkeyring ="))
            .unwrap();
        assert_eq!(c.daemon.schedule("debian").source(), "0 30 2 * * Mon-Fri");
        let err = parse(&GOOD.replace("keyring =", "schedule = \"0 */6 * * *\"\nkeyring ="))
            .unwrap_err()
            .to_string();
        assert!(err.contains("classic crontab syntax"), "{err}");
    }

    #[test]
    fn max_delete_forms() {
        assert_eq!(parse_max_delete("5%"), Ok(MaxDelete::Percent(5)));
        assert_eq!(parse_max_delete("42"), Ok(MaxDelete::Count(42)));
        assert!(parse_max_delete("101%").is_err());
        assert_eq!(MaxDelete::Percent(10).limit(1000), 100);
    }
}
