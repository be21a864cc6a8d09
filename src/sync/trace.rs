//! Debian's trace files, so mirror checkers and downstream mirrors read debsync like any
//! other Debian mirror:
//! - upstream's `project/trace/` (dak's `master`, every mirror's trace on the way, and the
//!   `_hierarchy`/`_traces` lists) copied as they are;
//! - ours, `project/trace/<hostname>`, in ftpsync's format and field names, but honest about
//!   what wrote it (`Creator: debsync <version>`), with the `Archive serial` of upstream's
//!   `master`;
//! - our line appended to `_hierarchy` and `_traces`, so a mirror of this mirror shows the
//!   chain.

use std::path::Path;

use futures_util::StreamExt;

use super::Ctx;

use crate::archive::date::{format_ctime, format_rfc2822};

pub(crate) struct TraceInfo<'a> {
    pub hostname: &'a str,
    pub started: i64,
    pub finished: i64,
    pub serial: &'a str,
    pub architectures: Vec<String>,
    pub suites: &'a [String],
    pub upstream: &'a str,
    pub bytes_received: u64,
    pub stage1_secs: u64,
    pub stage2_secs: u64,
}

impl<'a> TraceInfo<'a> {
    /// What our trace says about a run of `mirror` that started at `started`.
    pub(crate) fn of(
        mirror: &'a crate::config::MirrorConfig,
        hostname: &'a str,
        state: &'a super::state::State,
        report: &super::SyncReport,
        started: i64,
        finished: i64,
    ) -> TraceInfo<'a> {
        let mut architectures = mirror.architectures.clone();
        if !architectures.iter().any(|a| a == "all") {
            architectures.push("all".into());
        }
        if mirror.sources {
            architectures.push("source".into());
        }
        TraceInfo {
            hostname,
            started,
            finished,
            serial: state.archive_serial.as_deref().unwrap_or(""),
            architectures,
            suites: &mirror.suites,
            upstream: mirror.upstream.host_str().unwrap_or("unknown"),
            bytes_received: report.bytes_received,
            stage1_secs: (report.stage1_ms / 1000) as u64,
            stage2_secs: (report.stage2_ms / 1000) as u64,
        }
    }
}

/// Largest trace file accepted, and how many of upstream's are copied.
const MAX_TRACE: u64 = 1 << 20;
const MAX_TRACES: usize = 256;
/// Trace requests in flight at once.
const TRACE_REQUESTS: usize = 8;

/// Upstream's `project/trace/` as fetched at the end of a run: (name, bytes).
#[derive(Debug, Default)]
pub(crate) struct UpstreamTraces {
    pub files: Vec<(String, Vec<u8>)>,
}

impl UpstreamTraces {
    /// Fetches `master`, `_hierarchy`, `_traces` and every trace `_traces` names. Traces are
    /// informational and unsigned: a missing or failing one is skipped, never fatal.
    pub(crate) async fn fetch(ctx: &Ctx<'_>, own_name: &str) -> UpstreamTraces {
        // Two rounds of concurrent requests, not one round trip per file: the lists first,
        // then every trace `_traces` names.
        let (master, hierarchy, traces) = tokio::join!(
            get(ctx, "master"),
            get(ctx, "_hierarchy"),
            get(ctx, "_traces")
        );
        let listed: Vec<String> = traces
            .as_deref()
            .map(trace_names)
            .unwrap_or_default()
            .into_iter()
            .filter(|n| n != own_name && n != "master")
            .take(MAX_TRACES)
            .collect();
        let fetched = futures_util::stream::iter(&listed)
            .map(|name| async move { get(ctx, name).await.map(|b| (name.clone(), b)) })
            .buffered(TRACE_REQUESTS)
            .collect::<Vec<_>>()
            .await;
        let lists = [
            ("master", master),
            ("_hierarchy", hierarchy),
            ("_traces", traces),
        ];
        let files = lists
            .into_iter()
            .filter_map(|(n, b)| Some((n.to_string(), b?)))
            .chain(fetched.into_iter().flatten())
            .collect();
        UpstreamTraces { files }
    }

    fn get_file(&self, name: &str) -> Option<&[u8]> {
        self.files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.as_slice())
    }

    /// `Archive serial` of upstream's `master` (dak's serial, `YYYYMMDDNN`).
    pub(crate) fn archive_serial(&self) -> Option<String> {
        serial_of_master(self.get_file("master")?)
    }
}

/// Upstream's archive serial right now, from its `master` trace alone (names the changelog
/// before the swap; the full traces are fetched after it).
pub(crate) async fn upstream_serial(ctx: &Ctx<'_>) -> Option<String> {
    serial_of_master(&get(ctx, "master").await?)
}

fn serial_of_master(master: &[u8]) -> Option<String> {
    let master = std::str::from_utf8(master).ok()?;
    field(master, "Archive serial")
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_string)
}

async fn get(ctx: &Ctx<'_>, name: &str) -> Option<Vec<u8>> {
    let url = ctx.url(&format!("project/trace/{name}"));
    match ctx.fetcher.get_small(&url, MAX_TRACE).await {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!("{}: skipped: {e}", crate::fetch::shown(&url));
            None
        }
    }
}

/// The names in a `_traces` list that are safe single file names.
fn trace_names(list: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(list)
        .lines()
        .map(str::trim)
        .filter(|n| {
            !n.is_empty()
                && !n.starts_with(['.', '_'])
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-+".contains(&b))
        })
        .map(str::to_string)
        .collect()
}

/// A `Field: value` of a trace file.
pub(crate) fn field<'t>(text: &'t str, name: &str) -> Option<&'t str> {
    text.lines().find_map(|l| {
        l.strip_prefix(name)
            .and_then(|r| r.strip_prefix(':'))
            .map(str::trim)
    })
}

pub(crate) fn render(t: &TraceInfo<'_>) -> String {
    let total = (t.finished - t.started).max(0) as u64;
    let rate = t.bytes_received / total.max(1);
    let mut archs: Vec<&str> = t.architectures.iter().map(String::as_str).collect();
    archs.sort_unstable();
    archs.dedup();
    format!(
        "{}\n\
         Date: {}\n\
         Date-Started: {}\n\
         Archive serial: {}\n\
         Creator: debsync {}\n\
         Running on host: {}\n\
         Architectures: {}\n\
         Architectures-Configuration: INCLUDE {}\n\
         Suites: {}\n\
         Upstream-mirror: {}\n\
         Total bytes received in rsync: {}\n\
         Total time spent in stage1 rsync: {}\n\
         Total time spent in stage2 rsync: {}\n\
         Total time spent in rsync: {}\n\
         Average rate: {} B/s\n",
        format_ctime(t.finished),
        format_rfc2822(t.finished),
        format_rfc2822(t.started),
        t.serial,
        env!("CARGO_PKG_VERSION"),
        t.hostname,
        archs.join(" "),
        archs.join(" "),
        t.suites.join(" "),
        t.upstream,
        t.bytes_received,
        t.stage1_secs,
        t.stage2_secs,
        total,
        rate,
    )
}

/// Writes upstream's traces, ours, and the `_hierarchy`/`_traces` lists with our line last,
/// each atomically (informational: the kernel's writeback makes them durable, no barrier).
pub(crate) fn write(
    tree: &Path,
    upstream: &UpstreamTraces,
    t: &TraceInfo<'_>,
) -> std::io::Result<()> {
    let dir = crate::tree::trace_dir(tree);
    std::fs::create_dir_all(&dir)?;
    for (name, bytes) in &upstream.files {
        if name != "_hierarchy" && name != "_traces" && name != t.hostname {
            super::write_replace(&dir.join(name), bytes)?;
        }
    }
    write_own(tree, t)?;
    let hierarchy = hierarchy(upstream.get_file("_hierarchy"), t);
    super::write_replace(&dir.join("_hierarchy"), hierarchy.as_bytes())?;
    super::write_replace(&dir.join("_hierarchy.mirror"), hierarchy.as_bytes())?;
    let mut traces = upstream
        .get_file("_traces")
        .map(trace_names)
        .unwrap_or_default();
    traces.retain(|n| n != t.hostname);
    traces.push(t.hostname.to_string());
    super::write_replace(&dir.join("_traces"), (traces.join("\n") + "\n").as_bytes())
}

/// Writes our own trace file, atomically but not synced (a no-op run's is not made durable at
/// all: the next run writes the file again, and an idle run must stay cheap).
pub(crate) fn write_own(tree: &Path, t: &TraceInfo<'_>) -> std::io::Result<()> {
    let dir = crate::tree::trace_dir(tree);
    std::fs::create_dir_all(&dir)?;
    super::write_replace(&dir.join(t.hostname), render(t).as_bytes())
}

/// Upstream's hierarchy plus our hop: `<trace file> <mirror name> <host> <upstream>`.
fn hierarchy(upstream: Option<&[u8]>, t: &TraceInfo<'_>) -> String {
    let mut out: String = upstream
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| format!("{l}\n"))
        .collect();
    out.push_str(&format!("{0} {0} {0} {1}\n", t.hostname, t.upstream));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_ftpsync_fields() {
        let archs = vec!["amd64".to_string(), "source".to_string()];
        let suites = vec!["bookworm".to_string()];
        let text = render(&TraceInfo {
            hostname: "mirror1",
            started: 1686387276,
            finished: 1686387286,
            serial: "2023061001",
            architectures: archs.clone(),
            suites: &suites,
            upstream: "deb.debian.org",
            bytes_received: 1000,
            stage1_secs: 8,
            stage2_secs: 2,
        });
        assert!(text.starts_with("Sat Jun 10 08:54:46 UTC 2023\n"), "{text}");
        for line in [
            "Date: Sat, 10 Jun 2023 08:54:46 +0000",
            "Date-Started: Sat, 10 Jun 2023 08:54:36 +0000",
            "Archive serial: 2023061001",
            "Architectures: amd64 source",
            "Upstream-mirror: deb.debian.org",
            "Total bytes received in rsync: 1000",
            "Total time spent in rsync: 10",
            "Average rate: 100 B/s",
        ] {
            assert!(text.contains(line), "missing {line:?} in {text}");
        }
        assert!(text.contains("Creator: debsync "));
        assert_eq!(field(&text, "Archive serial"), Some("2023061001"));
    }

    #[test]
    fn hierarchy_and_traces_append_our_hop() {
        let dir = tempfile::tempdir().unwrap();
        let upstream = UpstreamTraces {
            files: vec![
                (
                    "master".into(),
                    b"Mon Sep 18 20:49:48 UTC 2017\nArchive serial: 2017091804\n".to_vec(),
                ),
                (
                    "_hierarchy".into(),
                    b"ftp-master.debian.org ftp-master.debian.org fasolo fasolo\n".to_vec(),
                ),
                (
                    "_traces".into(),
                    b"ftp-master.debian.org\n../evil\nhub.example\n".to_vec(),
                ),
                ("hub.example".into(), b"hub trace\n".to_vec()),
            ],
        };
        assert_eq!(upstream.archive_serial().as_deref(), Some("2017091804"));
        let archs = vec!["amd64".to_string()];
        let info = TraceInfo {
            hostname: "leaf",
            started: 0,
            finished: 1,
            serial: "2017091804",
            architectures: archs.clone(),
            suites: &archs,
            upstream: "hub.example",
            bytes_received: 0,
            stage1_secs: 0,
            stage2_secs: 0,
        };
        write(dir.path(), &upstream, &info).unwrap();
        let read =
            |n: &str| std::fs::read_to_string(dir.path().join("project/trace").join(n)).unwrap();
        assert_eq!(
            read("_hierarchy"),
            "ftp-master.debian.org ftp-master.debian.org fasolo fasolo\nleaf leaf leaf hub.example\n"
        );
        assert_eq!(
            read("_traces"),
            "ftp-master.debian.org\nhub.example\nleaf\n"
        );
        assert_eq!(read("hub.example"), "hub trace\n");
        assert!(read("master").contains("2017091804"));
        assert!(read("leaf").contains("Archive serial: 2017091804"));
    }
}
