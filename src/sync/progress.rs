//! Progress of the pool stage, the long part of a first sync: on a terminal a live bar
//! (files, bytes, rate, ETA), elsewhere one log line every [`LINE_EVERY`] (journald and cron
//! mails stay short). Shown only when info-level logging is on, so `-q` silences it.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::fetch::Fetcher;
use crate::status::size;

/// How often a non-terminal progress line is logged.
pub(crate) const LINE_EVERY: Duration = Duration::from_secs(10);

/// What the planner and the workers count as they go.
#[derive(Default)]
pub(crate) struct Counts {
    /// Files the planner queued for the workers.
    pub queued: AtomicU64,
    /// The planner has read every index: `queued` is the total.
    pub planned: AtomicBool,
    /// Files fetched from upstream.
    pub fetched: AtomicU64,
    /// Files found right on disk (no download).
    pub local: AtomicU64,
}

impl Counts {
    fn done(&self) -> u64 {
        self.fetched.load(Ordering::Relaxed) + self.local.load(Ordering::Relaxed)
    }
}

/// One progress report, rendered the same way for the bar and the log line.
pub(crate) fn line(done: u64, queued: u64, planned: bool, bytes: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(0.001);
    let rate = bytes as f64 / secs;
    let total = if planned {
        queued.to_string()
    } else {
        format!("{queued}+")
    };
    let eta = if planned && done > 0 && done < queued {
        let left = (queued - done) as f64 * secs / done as f64;
        format!(", ETA {}", crate::status::age(left.ceil() as i64))
    } else {
        String::new()
    };
    format!(
        "pool: {done}/{total} files, {} received, {}/s{eta}",
        size(bytes),
        size(rate as u64)
    )
}

/// Reports until dropped.
pub(crate) struct Reporter {
    task: tokio::task::JoinHandle<()>,
    bar: Option<indicatif::ProgressBar>,
}

impl Reporter {
    pub(crate) fn start(mirror: &str, counts: Arc<Counts>, fetcher: Fetcher) -> Option<Reporter> {
        if !tracing::enabled!(tracing::Level::INFO) {
            return None;
        }
        let started = Instant::now();
        let base = fetcher.bytes_received();
        let mirror = mirror.to_string();
        let report = move || {
            line(
                counts.done(),
                counts.queued.load(Ordering::Relaxed),
                counts.planned.load(Ordering::Relaxed),
                fetcher.bytes_received() - base,
                started.elapsed(),
            )
        };
        if std::io::stderr().is_terminal() {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_prefix(mirror);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {prefix}: {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            let shown = bar.clone();
            let task = tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(200));
                loop {
                    tick.tick().await;
                    shown.set_message(report());
                    shown.tick();
                }
            });
            return Some(Reporter {
                task,
                bar: Some(bar),
            });
        }
        let every = std::env::var("DEBSYNC_PROGRESS_SECS")
            .ok()
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|s| *s > 0.0)
            .map_or(LINE_EVERY, Duration::from_secs_f64);
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                tracing::info!("{mirror}: {}", report());
            }
        });
        Some(Reporter { task, bar: None })
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_say_files_bytes_rate_and_eta() {
        let s = Duration::from_secs;
        assert_eq!(
            line(250, 1000, true, 10 << 20, s(10)),
            "pool: 250/1000 files, 10.0 MiB received, 1.0 MiB/s, ETA 30s"
        );
        assert_eq!(
            line(10, 400, false, 2048, s(1)),
            "pool: 10/400+ files, 2.0 KiB received, 2.0 KiB/s"
        );
        assert_eq!(
            line(0, 0, true, 0, s(0)),
            "pool: 0/0 files, 0 B received, 0 B/s"
        );
    }
}
