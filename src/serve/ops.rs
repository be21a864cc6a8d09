//! Operations endpoints: `/healthz` and `/metrics`. What they say about syncs comes from each
//! mirror's `.debsync/state.json`, read through [`State::read`] (the sync side owns the file).
//!
//! `/healthz` of a config site, per mirror: the tree must open, the mirror must have synced
//! once, and (with `[serve] max_age_secs` > 0) its last success must be younger than that.
//! 200 lists every mirror's last success; 503 lists only the mirrors that fail. A bare tree
//! (`serve --root`) is only checked for being servable.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::State as AxumState;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::App;
use super::metrics::{family, label};
use super::path::open_tree;
use crate::sync::state::{RunSummary, State};

/// What `/healthz` and `/metrics` know of one mirror, read off the async threads.
struct Observed {
    name: String,
    servable: Result<(), String>,
    /// Whether the tree comes from a config (and so must have been synced).
    synced_tree: bool,
    state: Option<State>,
    /// A state file exists but cannot be read.
    state_unreadable: bool,
}

async fn observe(app: &App) -> Vec<Observed> {
    let mounts: Vec<(String, PathBuf, bool)> = app
        .site
        .mounts
        .iter()
        .map(|m| (m.name.clone(), m.tree.clone(), m.info.is_some()))
        .collect();
    tokio::task::spawn_blocking(move || {
        mounts
            .into_iter()
            .map(|(name, tree, synced_tree)| {
                let state = State::read(&tree);
                Observed {
                    servable: open_tree(&tree)
                        .map(drop)
                        .map_err(|e| format!("{}: {e}", tree.display())),
                    state_unreadable: state.is_none() && crate::tree::state_file(&tree).exists(),
                    state,
                    name,
                    synced_tree,
                }
            })
            .collect()
    })
    .await
    .unwrap_or_default()
}

/// `GET /healthz`: see the module doc.
pub(super) async fn healthz(AxumState(app): AxumState<Arc<App>>) -> Response {
    let mirrors = observe(&app).await;
    let (healthy, body) = health(&mirrors, app.site.max_age_secs, crate::sync::now_unix());
    let status = match healthy {
        true => StatusCode::OK,
        false => StatusCode::SERVICE_UNAVAILABLE,
    };
    plain(status, body, "text/plain; charset=utf-8")
}

/// (healthy, body) of `/healthz`.
fn health(mirrors: &[Observed], max_age_secs: u64, now: i64) -> (bool, String) {
    let mut problems = String::new();
    let mut fine = String::from("ok\n");
    let max_age = i64::try_from(max_age_secs).unwrap_or(i64::MAX);
    for m in mirrors {
        let name = &m.name;
        if let Err(e) = &m.servable {
            let _ = writeln!(problems, "{name}: {e}");
            continue;
        }
        if !m.synced_tree {
            continue;
        }
        let Some(last) = m.state.as_ref().and_then(|s| s.last_success) else {
            let _ = writeln!(problems, "{name}: never synced");
            continue;
        };
        let age = now.saturating_sub(last);
        let when = format!(
            "last successful sync {} ago ({})",
            crate::status::age(age),
            crate::archive::date::format_rfc2822(last)
        );
        if max_age > 0 && age > max_age {
            let _ = writeln!(
                problems,
                "{name}: {when}, older than max_age_secs = {max_age_secs}"
            );
        } else {
            let _ = writeln!(fine, "{name}: {when}");
        }
    }
    match problems.is_empty() {
        true if mirrors.iter().all(|m| !m.synced_tree) => (true, "ok\n".to_string()),
        true => (true, fine),
        false => (false, problems),
    }
}

/// `GET /metrics`: Prometheus text exposition format 0.0.4.
pub(super) async fn metrics(AxumState(app): AxumState<Arc<App>>) -> Response {
    let mut out = String::with_capacity(8192);
    app.metrics.render(&mut out);
    if let Some(log) = &app.access_log {
        family(
            &mut out,
            "debsync_access_log_dropped_lines_total",
            "counter",
            "Access log lines dropped because the log writer fell behind.",
        );
        let _ = writeln!(
            out,
            "debsync_access_log_dropped_lines_total {}",
            log.dropped()
        );
    }
    let mirrors = observe(&app).await;
    render_mirrors(&mut out, &mirrors, crate::sync::now_unix());
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

/// One per-mirror family: `# HELP`/`# TYPE`, then a sample per mirror that has a value.
fn per_mirror(
    out: &mut String,
    mirrors: &[Observed],
    (name, kind, help): (&str, &str, &str),
    value: impl Fn(&Observed) -> Option<f64>,
) {
    family(out, name, kind, help);
    for m in mirrors {
        if let Some(v) = value(m) {
            let _ = writeln!(out, "{name}{{mirror=\"{}\"}} {v}", label(&m.name));
        }
    }
}

/// (metric, help, value) of one figure of the last run.
type Figure = (&'static str, &'static str, fn(&RunSummary) -> f64);

fn render_mirrors(out: &mut String, mirrors: &[Observed], now: i64) {
    per_mirror(
        out,
        mirrors,
        (
            "debsync_mirror_servable",
            "gauge",
            "1 when the mirror's tree can be opened.",
        ),
        |m| Some(if m.servable.is_ok() { 1.0 } else { 0.0 }),
    );
    per_mirror(
        out,
        mirrors,
        (
            "debsync_mirror_last_success_timestamp_seconds",
            "gauge",
            "Unix time of the last successful sync (absent when unknown).",
        ),
        |m| Some(m.state.as_ref()?.last_success? as f64),
    );
    family(
        out,
        "debsync_mirror_last_result",
        "gauge",
        "Result of the last sync: ok, failed, running, interrupted; never without a state \
         file, unknown when it cannot be read.",
    );
    for m in mirrors {
        let result = match &m.state {
            Some(s) => s.last_result.as_str(),
            None if m.state_unreadable => "unknown",
            None if m.synced_tree => "never",
            None => continue,
        };
        let _ = writeln!(
            out,
            "debsync_mirror_last_result{{mirror=\"{}\",result=\"{result}\"}} 1",
            label(&m.name),
        );
    }
    let last_run: [Figure; 5] = [
        (
            "debsync_mirror_last_sync_duration_seconds",
            "How long the last finished sync took.",
            |r| r.duration_ms as f64 / 1000.0,
        ),
        (
            "debsync_mirror_last_sync_fetched_files",
            "Files the last finished sync downloaded.",
            |r| r.fetched_files as f64,
        ),
        (
            "debsync_mirror_last_sync_fetched_bytes",
            "Bytes the last finished sync downloaded.",
            |r| r.bytes_received as f64,
        ),
        (
            "debsync_mirror_last_sync_deleted_files",
            "Files the last finished sync deleted.",
            |r| r.deleted_files as f64,
        ),
        (
            "debsync_mirror_last_sync_start_timestamp_seconds",
            "Unix time the last finished sync started.",
            |r| r.started as f64,
        ),
    ];
    for (metric, help, pick) in last_run {
        per_mirror(out, mirrors, (metric, "gauge", help), |m| {
            m.state.as_ref()?.last_run.as_ref().map(pick)
        });
    }
    per_mirror(
        out,
        mirrors,
        (
            "debsync_mirror_sync_failures_total",
            "counter",
            "Syncs that ended failed, as recorded in the state file.",
        ),
        |m| Some(m.state.as_ref()?.failed_runs as f64),
    );
    per_mirror(
        out,
        mirrors,
        (
            "debsync_mirror_pool_files",
            "gauge",
            "Pool files of the served tree.",
        ),
        |m| Some(m.state.as_ref()?.pool_files as f64),
    );
    per_mirror(
        out,
        mirrors,
        (
            "debsync_mirror_pool_bytes",
            "gauge",
            "Bytes of pool files of the served tree.",
        ),
        |m| Some(m.state.as_ref()?.pool_bytes as f64),
    );
    for (metric, help, age) in [
        (
            "debsync_mirror_release_timestamp_seconds",
            "The Date of each served suite's Release (Unix time).",
            false,
        ),
        (
            "debsync_mirror_release_age_seconds",
            "Seconds since the Date of each served suite's Release (freshness).",
            true,
        ),
    ] {
        family(out, metric, "gauge", help);
        for m in mirrors {
            let Some(state) = &m.state else { continue };
            for (suite, s) in &state.suites {
                if let Some(date) = s.date {
                    let v = if age { now.saturating_sub(date) } else { date };
                    let _ = writeln!(
                        out,
                        "{metric}{{mirror=\"{}\",suite=\"{}\"}} {v}",
                        label(&m.name),
                        label(suite)
                    );
                }
            }
        }
    }
    family(
        out,
        "debsync_mirror_archive_serial_info",
        "gauge",
        "Archive serial of the served tree, as a label (absent when unknown).",
    );
    for m in mirrors {
        if let Some(serial) = m.state.as_ref().and_then(|s| s.archive_serial.as_deref()) {
            let _ = writeln!(
                out,
                "debsync_mirror_archive_serial_info{{mirror=\"{}\",serial=\"{}\"}} 1",
                label(&m.name),
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
    use crate::sync::state::{RunResult, SuiteState};

    fn mirror(name: &str, state: Option<State>) -> Observed {
        Observed {
            name: name.into(),
            servable: Ok(()),
            synced_tree: true,
            state,
            state_unreadable: false,
        }
    }

    fn synced(last_success: i64) -> State {
        State {
            last_result: RunResult::Ok,
            last_success: Some(last_success),
            ..State::default()
        }
    }

    #[test]
    fn health_needs_a_sync_younger_than_max_age() {
        let now = 1_000_000;
        let fresh = mirror("fresh", Some(synced(now - 3600)));
        let (ok, body) = health(std::slice::from_ref(&fresh), 7200, now);
        assert!(ok, "{body}");
        assert!(
            body.starts_with("ok\nfresh: last successful sync 1h 0m ago ("),
            "{body}"
        );

        let old = mirror("old", Some(synced(now - 7201)));
        let never = mirror("never", None);
        let failed_first = mirror(
            "failed-first",
            Some(State {
                last_result: RunResult::Failed,
                ..State::default()
            }),
        );
        let broken = Observed {
            servable: Err("/srv/broken: No such file".into()),
            ..mirror("broken", None)
        };
        let (ok, body) = health(&[fresh, old, never, failed_first, broken], 7200, now);
        assert!(!ok);
        let lines: Vec<&str> = body.lines().collect();
        assert_eq!(lines.len(), 4, "{body}");
        assert!(
            lines[0].starts_with("old: last successful sync 2h 0m ago"),
            "{body}"
        );
        assert!(
            lines[0].ends_with("older than max_age_secs = 7200"),
            "{body}"
        );
        assert_eq!(lines[1], "never: never synced");
        assert_eq!(lines[2], "failed-first: never synced");
        assert_eq!(lines[3], "broken: /srv/broken: No such file");

        // max_age_secs = 0: any age will do, but a sync is still needed.
        let (ok, _) = health(&[mirror("old", Some(synced(0)))], 0, now);
        assert!(ok);
        // A bare tree only has to be servable.
        let bare = Observed {
            synced_tree: false,
            ..mirror("tree", None)
        };
        assert_eq!(health(&[bare], 60, now), (true, "ok\n".to_string()));
    }

    #[test]
    fn mirror_samples() {
        let mut state = synced(5);
        state.archive_serial = Some("7".into());
        state.failed_runs = 2;
        state.pool_files = 3;
        state.last_run = Some(RunSummary {
            started: 4,
            duration_ms: 1500,
            unchanged: false,
            fetched_files: 12,
            deleted_files: 1,
            bytes_received: 4096,
        });
        state.suites.insert(
            "stable".into(),
            SuiteState {
                date: Some(100),
                ..SuiteState::default()
            },
        );
        let unreadable = Observed {
            state_unreadable: true,
            ..mirror("broken", None)
        };
        let unservable = Observed {
            servable: Err("gone".into()),
            ..mirror("ubuntu", None)
        };
        let mut out = String::new();
        render_mirrors(
            &mut out,
            &[mirror("debian", Some(state)), unservable, unreadable],
            160,
        );
        for line in [
            "debsync_mirror_servable{mirror=\"debian\"} 1\n",
            "debsync_mirror_servable{mirror=\"ubuntu\"} 0\n",
            "debsync_mirror_last_success_timestamp_seconds{mirror=\"debian\"} 5\n",
            "debsync_mirror_last_result{mirror=\"debian\",result=\"ok\"} 1\n",
            "debsync_mirror_last_result{mirror=\"ubuntu\",result=\"never\"} 1\n",
            "debsync_mirror_last_result{mirror=\"broken\",result=\"unknown\"} 1\n",
            "debsync_mirror_archive_serial_info{mirror=\"debian\",serial=\"7\"} 1\n",
            "debsync_mirror_last_sync_duration_seconds{mirror=\"debian\"} 1.5\n",
            "debsync_mirror_last_sync_fetched_files{mirror=\"debian\"} 12\n",
            "debsync_mirror_last_sync_fetched_bytes{mirror=\"debian\"} 4096\n",
            "debsync_mirror_last_sync_deleted_files{mirror=\"debian\"} 1\n",
            "debsync_mirror_last_sync_start_timestamp_seconds{mirror=\"debian\"} 4\n",
            "debsync_mirror_sync_failures_total{mirror=\"debian\"} 2\n",
            "debsync_mirror_pool_files{mirror=\"debian\"} 3\n",
            "debsync_mirror_release_timestamp_seconds{mirror=\"debian\",suite=\"stable\"} 100\n",
            "debsync_mirror_release_age_seconds{mirror=\"debian\",suite=\"stable\"} 60\n",
        ] {
            assert!(out.contains(line), "missing {line:?} in\n{out}");
        }
        assert!(!out.contains("timestamp_seconds{mirror=\"ubuntu\"}"));
    }
}
