//! The cache's HTTP client for its upstream: timeouts from `[sync]`, credentials from apt's
//! `auth.conf` format or a bearer token file. Credentials travel only as sensitive header
//! values (hyper never prints them) and no message names them: errors show URLs through
//! [`crate::fetch::shown`].

use std::path::Path;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use reqwest::{StatusCode, Url};

use super::{CacheConfig, CacheError};
use crate::config::SyncConfig;
use crate::fetch::{error_chain, shown};

/// Connecting may not take longer: a client waits for the answer, and an upstream that does
/// not answer must leave time to serve the cached copy (stale-if-error) within the server's
/// response timeout.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

pub(super) struct Upstream {
    client: reqwest::Client,
    base: Url,
    auth: Option<HeaderValue>,
}

/// A response with a success status (2xx or 304).
pub(super) type Reply = reqwest::Response;

impl Upstream {
    pub(super) fn new(cfg: &CacheConfig, sync: &SyncConfig) -> Result<Upstream, CacheError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder();
        if cfg.upstream.scheme() != "https" {
            builder = builder.tls_certs_only([]);
        }
        let client = builder
            .user_agent(concat!("debsync/", env!("CARGO_PKG_VERSION"), " (cache)"))
            .connect_timeout(sync.timeout().min(CONNECT_TIMEOUT))
            .read_timeout(sync.timeout())
            .no_proxy()
            .build()
            .map_err(|e| CacheError::Setup(format!("HTTP client: {e}")))?;
        let auth = credentials(cfg)?;
        Ok(Upstream {
            client,
            base: cfg.upstream.clone(),
            auth,
        })
    }

    pub(super) fn url(&self, rel: &str) -> Url {
        crate::sync::join_url(&self.base, rel)
    }

    /// GET `rel` with `headers`. 404/410 is [`CacheError::NotFound`]; other non-success
    /// statuses (but 304) and network errors are [`CacheError::Upstream`].
    pub(super) async fn get(&self, rel: &str, headers: HeaderMap) -> Result<Reply, CacheError> {
        let url = self.url(rel);
        let mut req = self.client.get(url.clone()).headers(headers);
        if let Some(auth) = &self.auth {
            req = req.header(AUTHORIZATION, auth.clone());
        }
        let resp = req.send().await.map_err(|e| {
            CacheError::Upstream(format!(
                "{}: {}",
                shown(&url),
                error_chain(&e.without_url())
            ))
        })?;
        let status = resp.status();
        if status == StatusCode::NOT_FOUND || status == StatusCode::GONE {
            return Err(CacheError::NotFound);
        }
        if !status.is_success() && status != StatusCode::NOT_MODIFIED {
            return Err(CacheError::Upstream(format!(
                "{}: HTTP {status}",
                shown(&url)
            )));
        }
        Ok(resp)
    }
}

/// The `Authorization` value for the upstream, from `bearer_token_file` or `auth_file`.
fn credentials(cfg: &CacheConfig) -> Result<Option<HeaderValue>, CacheError> {
    let read = |p: &Path| {
        std::fs::read_to_string(p)
            .map_err(|e| CacheError::Setup(format!("{}: cannot read: {e}", p.display())))
    };
    let value = if let Some(p) = &cfg.bearer_token_file {
        let token = read(p)?.trim().to_string();
        if token.is_empty() {
            return Err(CacheError::Setup(format!("{}: empty token", p.display())));
        }
        format!("Bearer {token}")
    } else if let Some(p) = &cfg.auth_file {
        match auth_conf_lookup(&read(p)?, &cfg.upstream) {
            Some((login, password)) => {
                use base64_lite::encode;
                format!("Basic {}", encode(format!("{login}:{password}").as_bytes()))
            }
            None => {
                tracing::warn!(
                    "{}: no machine entry matches {}; upstream requests go without credentials",
                    p.display(),
                    shown(&cfg.upstream)
                );
                return Ok(None);
            }
        }
    } else {
        return Ok(None);
    };
    let mut header = HeaderValue::from_str(&value)
        .map_err(|_| CacheError::Setup("credentials hold characters a header cannot".into()))?;
    header.set_sensitive(true);
    Ok(Some(header))
}

/// Finds the `login`/`password` of apt's `auth.conf` (netrc syntax: `machine`, `login`,
/// `password`, optional `port`; `#` comments) for `url`: the machine is `host[:port][/path]`
/// (a scheme prefix is allowed) and must match the URL's host, its port when given, and be a
/// path prefix of the URL's path. The longest matching machine wins.
pub(super) fn auth_conf_lookup(text: &str, url: &Url) -> Option<(String, String)> {
    let tokens: Vec<&str> = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .flat_map(str::split_whitespace)
        .collect();
    let mut best: Option<(usize, String, String)> = None;
    let mut i = 0;
    while i < tokens.len() {
        if tokens[i] != "machine" {
            i += 1;
            continue;
        }
        let Some(machine) = tokens.get(i + 1) else {
            break;
        };
        let (mut login, mut password, mut port) = (None, None, None);
        let mut j = i + 2;
        while j + 1 < tokens.len() && tokens[j] != "machine" {
            match tokens[j] {
                "login" => login = Some(tokens[j + 1]),
                "password" => password = Some(tokens[j + 1]),
                "port" => port = Some(tokens[j + 1]),
                _ => {}
            }
            j += 2;
        }
        if let (Some(l), Some(p)) = (login, password)
            && machine_matches(machine, port, url)
            && best.as_ref().is_none_or(|(len, _, _)| machine.len() > *len)
        {
            best = Some((machine.len(), l.to_string(), p.to_string()));
        }
        i = j;
    }
    best.map(|(_, l, p)| (l, p))
}

fn machine_matches(machine: &str, port: Option<&str>, url: &Url) -> bool {
    let machine = machine
        .strip_prefix("https://")
        .or_else(|| machine.strip_prefix("http://"))
        .unwrap_or(machine);
    let (hostport, path) = match machine.split_once('/') {
        Some((h, p)) => (h, format!("/{}", p.trim_end_matches('/'))),
        None => (machine, String::new()),
    };
    let (host, machine_port) = match hostport.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => (h, Some(p)),
        _ => (hostport, None),
    };
    let url_port = url.port_or_known_default().map(|p| p.to_string());
    let want_port = machine_port.or(port);
    url.host_str() == Some(host)
        && want_port.is_none_or(|p| url_port.as_deref() == Some(p))
        && (path.is_empty() || url.path().starts_with(&path))
}

/// Base64 (standard alphabet, padded) for the basic credentials: 20 lines instead of a crate.
mod base64_lite {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub(super) fn encode(data: &[u8]) -> String {
        let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
        for chunk in data.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    #[cfg(test)]
    #[test]
    fn rfc4648_vectors() {
        for (plain, coded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("Aladdin:open sesame", "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
        ] {
            assert_eq!(encode(plain.as_bytes()), coded);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_conf_machines() {
        let conf = "# apt auth.conf\nmachine example.org/debian login a password b\n\
                    machine example.org login c password d\n\
                    machine other.org:8080 login e password f\n\
                    machine https://secure.org/x/ login g password h port 443\n";
        let look = |u: &str| auth_conf_lookup(conf, &Url::parse(u).unwrap());
        let pair = |l: &str, p: &str| Some((l.to_string(), p.to_string()));
        assert_eq!(look("http://example.org/debian/"), pair("a", "b"));
        assert_eq!(look("http://example.org/ubuntu/"), pair("c", "d"));
        assert_eq!(look("http://other.org:8080/"), pair("e", "f"));
        assert_eq!(look("http://other.org/"), None);
        assert_eq!(look("https://secure.org/x/y/"), pair("g", "h"));
        assert_eq!(look("http://secure.org/x/"), None, "port 443 only");
        assert_eq!(look("http://nobody.org/"), None);
    }
}
