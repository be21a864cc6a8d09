//! Operations endpoints: `/healthz` and `/metrics`, plus the lenient reader of each mirror's
//! `.debsync/state.json` (written by `debsync sync`).

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use super::App;
use super::metrics::{family, label};
use super::path::open_tree;

/// What `/metrics` reads from `<tree>/.debsync/state.json`. Every field is optional and a field
/// of the wrong type reads as absent, so a schema change on the sync side degrades to
/// "unknown" instead of breaking the scrape.
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub(super) struct SyncState {
    /// Unix seconds of the last successful sync.
    #[serde(deserialize_with = "lenient")]
    pub last_success: Option<i64>,
    /// `ok`, `failed` or `running`.
    #[serde(deserialize_with = "lenient")]
    pub last_result: Option<String>,
    #[serde(deserialize_with = "lenient")]
    pub archive_serial: Option<String>,
}

fn lenient<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Option<T>, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(serde_json::from_value(v).ok())
}

/// The state file of a tree: `None` when absent, unreadable or not JSON.
pub(super) fn read_state(tree: &Path) -> Option<SyncState> {
    let bytes = std::fs::read(crate::tree::state_file(tree)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// `GET /healthz`: 200 when every mirror's tree can be opened, else 503 naming the ones that
/// cannot.
pub(super) async fn healthz(State(app): State<Arc<App>>) -> Response {
    let mounts: Vec<_> = app
        .site
        .mounts
        .iter()
        .map(|m| (m.name.clone(), m.tree.clone()))
        .collect();
    let problems = tokio::task::spawn_blocking(move || {
        let mut problems = String::new();
        for (name, tree) in mounts {
            if let Err(e) = open_tree(&tree) {
                let _ = writeln!(problems, "{name}: {}: {e}", tree.display());
            }
        }
        problems
    })
    .await
    .unwrap_or_else(|e| format!("health check failed: {e}\n"));
    let (status, body) = if problems.is_empty() {
        (StatusCode::OK, "ok\n".to_string())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, problems)
    };
    plain(status, body, "text/plain; charset=utf-8")
}

/// `GET /metrics`: Prometheus text exposition format 0.0.4.
pub(super) async fn metrics(State(app): State<Arc<App>>) -> Response {
    let mut out = String::with_capacity(4096);
    app.metrics.render(&mut out);
    let mounts: Vec<_> = app
        .site
        .mounts
        .iter()
        .map(|m| (m.name.clone(), m.tree.clone()))
        .collect();
    let mirrors = tokio::task::spawn_blocking(move || {
        mounts
            .into_iter()
            .map(|(name, tree)| {
                let servable = open_tree(&tree).is_ok();
                (name, servable, read_state(&tree))
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    render_mirrors(&mut out, &mirrors);
    crate::cache::Cache::render_metrics(app.site.caches(), &mut out);
    if let Some(extra) = &app.extra_metrics {
        extra(&mut out);
    }
    plain(
        StatusCode::OK,
        out,
        "text/plain; version=0.0.4; charset=utf-8",
    )
}

fn render_mirrors(out: &mut String, mirrors: &[(String, bool, Option<SyncState>)]) {
    family(
        out,
        "debsync_mirror_servable",
        "gauge",
        "1 when the mirror's tree can be opened.",
    );
    for (name, ok, _) in mirrors {
        let _ = writeln!(
            out,
            "debsync_mirror_servable{{mirror=\"{}\"}} {}",
            label(name),
            u8::from(*ok)
        );
    }
    family(
        out,
        "debsync_mirror_last_success_timestamp_seconds",
        "gauge",
        "Unix time of the last successful sync (absent when unknown).",
    );
    for (name, _, state) in mirrors {
        if let Some(t) = state.as_ref().and_then(|s| s.last_success) {
            let _ = writeln!(
                out,
                "debsync_mirror_last_success_timestamp_seconds{{mirror=\"{}\"}} {t}",
                label(name)
            );
        }
    }
    family(
        out,
        "debsync_mirror_last_result",
        "gauge",
        "Result of the last sync: ok, failed, running; never when no state file exists.",
    );
    for (name, _, state) in mirrors {
        let result = match state {
            None => "never".to_string(),
            Some(s) => s
                .last_result
                .clone()
                .unwrap_or_else(|| "unknown".to_string()),
        };
        let _ = writeln!(
            out,
            "debsync_mirror_last_result{{mirror=\"{}\",result=\"{}\"}} 1",
            label(name),
            label(&result)
        );
    }
    family(
        out,
        "debsync_mirror_archive_serial_info",
        "gauge",
        "Archive serial of the served tree, as a label (absent when unknown).",
    );
    for (name, _, state) in mirrors {
        if let Some(serial) = state.as_ref().and_then(|s| s.archive_serial.as_deref()) {
            let _ = writeln!(
                out,
                "debsync_mirror_archive_serial_info{{mirror=\"{}\",serial=\"{}\"}} 1",
                label(name),
                label(serial)
            );
        }
    }
}

fn plain(status: StatusCode, body: String, content_type: &'static str) -> Response {
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_is_read_leniently() {
        let parse = |s: &str| serde_json::from_str::<SyncState>(s).unwrap();
        assert_eq!(parse("{}"), SyncState::default());
        assert_eq!(
            parse(
                r#"{"last_success": 1700000000, "last_result": "ok", "archive_serial": "2024060101", "future": [1]}"#
            ),
            SyncState {
                last_success: Some(1_700_000_000),
                last_result: Some("ok".into()),
                archive_serial: Some("2024060101".into()),
            }
        );
        // A field of the wrong type is unknown; the others survive.
        assert_eq!(
            parse(r#"{"last_success": "yesterday", "last_result": "failed"}"#),
            SyncState {
                last_result: Some("failed".into()),
                ..SyncState::default()
            }
        );
    }

    #[test]
    fn mirror_samples() {
        let mut out = String::new();
        let state = SyncState {
            last_success: Some(5),
            last_result: Some("ok".into()),
            archive_serial: Some("7".into()),
        };
        render_mirrors(
            &mut out,
            &[
                ("debian".into(), true, Some(state)),
                ("ubuntu".into(), false, None),
            ],
        );
        for line in [
            "debsync_mirror_servable{mirror=\"debian\"} 1\n",
            "debsync_mirror_servable{mirror=\"ubuntu\"} 0\n",
            "debsync_mirror_last_success_timestamp_seconds{mirror=\"debian\"} 5\n",
            "debsync_mirror_last_result{mirror=\"debian\",result=\"ok\"} 1\n",
            "debsync_mirror_last_result{mirror=\"ubuntu\",result=\"never\"} 1\n",
            "debsync_mirror_archive_serial_info{mirror=\"debian\",serial=\"7\"} 1\n",
        ] {
            assert!(out.contains(line), "missing {line:?} in\n{out}");
        }
        assert!(!out.contains("timestamp_seconds{mirror=\"ubuntu\"}"));
    }
}
