//! Mirror pushes: the `[push]` table, bearer tokens, and notifying downstream mirrors.
//!
//! Debian's mirror network is a tree: the archive pushes its hubs, which push their leaves,
//! so a leaf is minutes behind instead of hours. ftpsync does it with ssh; debsync with one
//! HTTP request, `POST /-/sync/<mirror>` and `Authorization: Bearer <token>`:
//!
//! 1. **receive** (`debsync daemon` only; the endpoint is in `serve/push.rs`, the run in
//!    `daemon/scheduler.rs`): a valid push starts a sync now (`202`), or, during a run, makes
//!    the run loop once more when it ends (`409`; pushes during one run are merged);
//! 2. **notify**: after every successful run, each of the mirror's `notify` targets gets the
//!    same request, retried on network errors and 5xx ([`notify_downstream`]).
//!
//! A token comes from a file or an environment variable, read when it is needed (a rotated
//! file applies without a restart); it is compared in constant time and never logged.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::config::{MirrorConfig, SyncConfig};

/// Where a bearer token is read from. Exactly one of the two keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// The file's content, surrounding whitespace trimmed.
    File(PathBuf),
    /// The environment variable's value, surrounding whitespace trimmed.
    Env(String),
}

/// A bearer token. Its `Debug` is redacted, and it has no `Display`: it cannot end up in a
/// log line by accident.
#[derive(Clone)]
pub struct Token(Vec<u8>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Token {
    /// Whether `presented` is this token, in time that depends on neither's content: both
    /// are hashed to 32 bytes first, so the comparison does not even leak the length.
    pub fn matches(&self, presented: &[u8]) -> bool {
        use sha2::Digest;
        let a = sha2::Sha256::digest(&self.0);
        let b = sha2::Sha256::digest(presented);
        let diff = a
            .iter()
            .zip(b.iter())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y));
        std::hint::black_box(diff) == 0
    }

    fn header_value(&self) -> Result<reqwest::header::HeaderValue, String> {
        let mut v = b"Bearer ".to_vec();
        v.extend_from_slice(&self.0);
        let mut value = reqwest::header::HeaderValue::from_bytes(&v)
            .map_err(|_| "the token has bytes a header cannot carry".to_string())?;
        value.set_sensitive(true);
        Ok(value)
    }
}

impl TokenSource {
    /// Reads the token now. Errors name the file or variable, never the content.
    pub fn read(&self) -> Result<Token, String> {
        let raw = match self {
            TokenSource::File(path) => {
                std::fs::read(path).map_err(|e| format!("token file {}: {e}", path.display()))?
            }
            TokenSource::Env(name) => std::env::var_os(name)
                .ok_or_else(|| format!("token variable {name} is not set"))?
                .into_encoded_bytes(),
        };
        let trimmed = raw.trim_ascii();
        if trimmed.is_empty() {
            return Err(format!("{}: the token is empty", self.describe()));
        }
        if !trimmed.iter().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "{}: the token must be printable ASCII without spaces",
                self.describe()
            ));
        }
        Ok(Token(trimmed.to_vec()))
    }

    fn describe(&self) -> String {
        match self {
            TokenSource::File(p) => format!("token file {}", p.display()),
            TokenSource::Env(n) => format!("token variable {n}"),
        }
    }
}

/// `[push]`: whether this server takes pushes (`debsync daemon` only), and with which token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushConfig {
    /// `None`: pushes are off and `/-/sync/…` answers 404.
    pub token: Option<TokenSource>,
}

/// One downstream mirror to push after a successful run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyTarget {
    /// The downstream's push URL, e.g. `https://leaf.example.org/-/sync/debian`.
    pub url: reqwest::Url,
    pub token: TokenSource,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPush {
    token_file: Option<PathBuf>,
    token_env: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNotify {
    url: String,
    token_file: Option<PathBuf>,
    token_env: Option<String>,
}

/// A bad key: (key relative to its table, message).
type KeyError = (String, String);

fn token_source(
    file: Option<PathBuf>,
    env: Option<String>,
    base: &Path,
) -> Result<Option<TokenSource>, KeyError> {
    match (file, env) {
        (Some(_), Some(_)) => Err((
            "token_file".into(),
            "set token_file or token_env, not both".into(),
        )),
        (Some(f), None) => Ok(Some(TokenSource::File(base.join(f)))),
        (None, Some(e)) if e.is_empty() || e.contains(['=', '\0']) => Err((
            "token_env".into(),
            format!("{e:?} is not an environment variable name"),
        )),
        (None, Some(e)) => Ok(Some(TokenSource::Env(e))),
        (None, None) => Ok(None),
    }
}

impl PushConfig {
    pub(crate) fn from_raw(raw: RawPush, base: &Path) -> Result<PushConfig, KeyError> {
        Ok(PushConfig {
            token: token_source(raw.token_file, raw.token_env, base)?,
        })
    }
}

impl NotifyTarget {
    pub(crate) fn from_raw(raw: RawNotify, base: &Path) -> Result<NotifyTarget, KeyError> {
        let url = reqwest::Url::parse(&raw.url).map_err(|e| ("url".into(), format!("{e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.fragment().is_some() {
            return Err((
                "url".into(),
                format!(
                    "{}: must be an http:// or https:// URL",
                    crate::fetch::shown(&url)
                ),
            ));
        }
        let token = token_source(raw.token_file, raw.token_env, base)?.ok_or_else(|| {
            (
                "token_file".into(),
                "a notify target needs token_file or token_env".into(),
            )
        })?;
        Ok(NotifyTarget { url, token })
    }
}

/// Pushes every `notify` target of `mirror`, concurrently; each is retried on network errors
/// and 5xx like a download (`[sync] retries`, `retry_delay_ms`). A failure is logged, not
/// returned: the mirror itself is fine, and the downstream catches up on its own schedule.
pub async fn notify_downstream(cfg: &SyncConfig, mirror: &MirrorConfig) {
    if mirror.notify.is_empty() {
        return;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = match reqwest::Client::builder()
        .user_agent(concat!("debsync/", env!("CARGO_PKG_VERSION")))
        .timeout(cfg.timeout())
        .no_proxy()
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("{}: cannot notify downstream: {e}", mirror.name);
            return;
        }
    };
    let pushes = mirror.notify.iter().map(|t| notify_one(&client, cfg, t));
    for (target, result) in mirror
        .notify
        .iter()
        .zip(futures_util::future::join_all(pushes).await)
    {
        let url = crate::fetch::shown(&target.url);
        match result {
            Ok(status) => tracing::info!("{}: pushed {url}: {status}", mirror.name),
            Err(e) => tracing::error!("{}: push to {url} failed: {e}", mirror.name),
        }
    }
}

/// What a downstream's answer means to the pusher.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    /// 202 (started) or 409 (queued behind the running sync): done.
    Taken,
    /// Network error or 5xx/429: try again.
    Retry(String),
    /// Anything else (401, 403, 404…): trying again will not help.
    Refused(String),
}

fn answer(status: reqwest::StatusCode) -> Answer {
    use reqwest::StatusCode as S;
    match status {
        S::ACCEPTED | S::CONFLICT => Answer::Taken,
        s if s.is_server_error() || s == S::TOO_MANY_REQUESTS => Answer::Retry(format!("HTTP {s}")),
        s => Answer::Refused(format!("HTTP {s}")),
    }
}

async fn notify_one(
    client: &reqwest::Client,
    cfg: &SyncConfig,
    target: &NotifyTarget,
) -> Result<&'static str, String> {
    let auth = target.token.read()?.header_value()?;
    let mut attempt = 0u32;
    loop {
        let sent = client
            .post(target.url.clone())
            .header(reqwest::header::AUTHORIZATION, auth.clone())
            .send()
            .await;
        let verdict = match sent {
            Ok(resp) if resp.status() == reqwest::StatusCode::CONFLICT => {
                return Ok("queued behind its running sync (409)");
            }
            Ok(resp) => answer(resp.status()),
            Err(e) => Answer::Retry(crate::fetch::error_chain(&e.without_url())),
        };
        match verdict {
            Answer::Taken => return Ok("sync started (202)"),
            Answer::Refused(why) => return Err(why),
            Answer::Retry(why) if attempt < cfg.retries => {
                let delay = backoff(cfg.retry_delay(), attempt);
                tracing::warn!(
                    "push to {}: {why}; retrying in {delay:?}",
                    crate::fetch::shown(&target.url)
                );
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
            Answer::Retry(why) => return Err(format!("{why} after {} attempt(s)", attempt + 1)),
        }
    }
}

/// `base` doubled per attempt, capped at a minute.
fn backoff(base: Duration, attempt: u32) -> Duration {
    base.saturating_mul(1u32 << attempt.min(16))
        .min(Duration::from_secs(60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_exactly_and_hide_in_debug() {
        let t = Token(b"s3cret".to_vec());
        assert!(t.matches(b"s3cret"));
        for wrong in [&b""[..], b"s3cre", b"s3cret ", b"S3cret", b"s3cret-longer"] {
            assert!(!t.matches(wrong), "{wrong:?}");
        }
        assert_eq!(format!("{t:?}"), "Token(<redacted>)");
    }

    #[test]
    fn token_sources_read_and_refuse() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("token");
        std::fs::write(&f, "  abc123\n").unwrap();
        assert!(
            TokenSource::File(f.clone())
                .read()
                .unwrap()
                .matches(b"abc123")
        );
        std::fs::write(&f, "\n").unwrap();
        let err = TokenSource::File(f.clone()).read().unwrap_err();
        assert!(err.contains("empty") && err.contains("token file"), "{err}");
        std::fs::write(&f, "two words").unwrap();
        let err = TokenSource::File(f).read().unwrap_err();
        assert!(
            !err.contains("two words"),
            "the token is never shown: {err}"
        );
        let err = TokenSource::Env("DEBSYNC_TEST_UNSET_VARIABLE".into())
            .read()
            .unwrap_err();
        assert!(err.contains("DEBSYNC_TEST_UNSET_VARIABLE"), "{err}");
        let base = Path::new("/etc/debsync");
        assert!(token_source(Some("a".into()), Some("B".into()), base).is_err());
        assert_eq!(
            token_source(Some("t".into()), None, base).unwrap(),
            Some(TokenSource::File(base.join("t")))
        );
    }

    #[test]
    fn answers_of_a_downstream() {
        use reqwest::StatusCode as S;
        assert_eq!(answer(S::ACCEPTED), Answer::Taken);
        assert_eq!(answer(S::CONFLICT), Answer::Taken);
        assert!(matches!(answer(S::BAD_GATEWAY), Answer::Retry(_)));
        assert!(matches!(answer(S::TOO_MANY_REQUESTS), Answer::Retry(_)));
        for s in [S::UNAUTHORIZED, S::FORBIDDEN, S::NOT_FOUND] {
            assert!(matches!(answer(s), Answer::Refused(_)), "{s}");
        }
        assert_eq!(
            backoff(Duration::from_millis(500), 2),
            Duration::from_secs(2)
        );
        assert_eq!(backoff(Duration::from_secs(50), 3), Duration::from_secs(60));
    }
}
