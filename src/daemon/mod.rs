//! `debsync daemon`: serve and sync in one process, each mirror on its own cron schedule.
//!
//! # A tour
//! - [`schedule`]: when a mirror runs next, a pure function of (schedule, policy, now, last
//!   run, failures in a row, jitter sample); table-tested without a clock.
//! - [`scheduler`]: one task per mirror (plan → sleep → sync → repeat), so one mirror never
//!   runs twice at once; reload and stop.
//! - [`push`]: pushes (`POST /-/sync/<mirror>`) into the mirror tasks: "sync now", merged
//!   per run.
//! - [`stats`]: the schedule's figures for `/metrics` and `.debsync/schedule.json` (read by
//!   `debsync status`).
//! - This file: the process. Signals are installed before the address is announced; then
//!
//!   1. **serve**: the server of `debsync serve` over the config's mirrors, with the daemon's
//!      samples appended to its `/metrics`;
//!   2. **schedule**: the mirror tasks, which also wake on a push (`[push]` token read now);
//!   3. **SIGHUP**: reopen the access log (`[serve] access_log`, for logrotate), then read
//!      the config again (and the push token). A bad one is one error line and changes
//!      nothing.
//!      A good one goes to the scheduler; if the set of mirrors changed, a new server
//!      generation starts accepting on the same socket and the old one drains its
//!      connections (a download in flight finishes);
//!   4. **SIGTERM/SIGINT**: no new runs; running syncs are abandoned (state `interrupted`,
//!      tree as it was); the listener closes and open connections finish their response;
//!      exit 0. Whatever is still running after the grace period is dropped.
//!
//! The daemon passes its own stop future to [`crate::sync::sync_mirror_until`]: the signals
//! of the process are the daemon's, and a sync must not see a SIGHUP or race the daemon for a
//! SIGTERM.

pub mod push;
pub mod schedule;
pub mod scheduler;
pub mod stats;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::serve::{self, Limits, ServeError, Server, Site};
use push::Pushes;
use scheduler::{Clock, Scheduler, SyncRunner};
use stats::Stats;

/// How long a stopping daemon waits for syncs to end and connections to drain.
pub const STOP_GRACE: Duration = Duration::from_secs(30);

/// Runs the daemon until SIGTERM or SIGINT (see the module doc). `listen` overrides
/// `[serve] listen`. Prints `listening on http://ADDR` once bound.
pub async fn run(config_path: &Path, listen: Option<String>) -> Result<(), crate::Error> {
    let config = Arc::new(Config::load(config_path)?);
    let mut signals = Signals::install()?;
    let listen = listen.unwrap_or_else(|| config.serve.listen.clone());
    let listener = serve::bind(&listen).await?;
    let addr = listener.local_addr().map_err(ServeError::LocalAddr)?;
    let socket = listener.into_std()?;
    let stats = Arc::new(Stats::default());
    let pushes = Arc::new(Pushes::default());
    pushes.set_token(push_token(config_path, &config)?);
    let access_log = match &config.serve.access_log {
        Some(path) => Some(serve::AccessLog::open(path)?),
        None => None,
    };
    let mut http = Http::start(
        socket,
        &config,
        stats.clone(),
        pushes.clone(),
        access_log.clone(),
    )?;
    println!("listening on http://{addr}");
    let mut scheduler = Scheduler::start(
        config.clone(),
        Arc::new(SyncRunner),
        Clock::System,
        stats.clone(),
        pushes.clone(),
    );
    tracing::info!(
        "daemon: {} mirror(s) scheduled: {}",
        config.mirrors.len(),
        scheduler.mirrors().join(", ")
    );
    let mut running = config;
    while let Event::Reload = signals.next().await {
        if let Some(log) = &access_log {
            log.reopen();
        }
        let loaded = Config::load(config_path)
            .and_then(|c| push_token(config_path, &c).map(|token| (Arc::new(c), token)));
        let (new, token) = match loaded {
            Ok(both) => both,
            Err(e) => {
                tracing::error!("SIGHUP: keeping the running config: {e}");
                continue;
            }
        };
        if new.serve.listen != running.serve.listen {
            tracing::warn!(
                "SIGHUP: [serve] listen changed to {}; restart the daemon to apply it",
                new.serve.listen
            );
        }
        if new.serve.access_log != running.serve.access_log {
            tracing::warn!("SIGHUP: [serve] access_log changed; restart the daemon to apply it");
        }
        if let Err(e) = http.reload(&running, &new, stats.clone()) {
            tracing::error!(
                "SIGHUP: cannot serve the new mirrors, keeping the running config: {e}"
            );
            continue;
        }
        pushes.set_token(token);
        let (added, removed) = scheduler.reload(new.clone());
        tracing::info!(
            "SIGHUP: reloaded {}: {} mirror(s); added [{}], removed [{}]",
            config_path.display(),
            new.mirrors.len(),
            added.join(", "),
            removed.join(", ")
        );
        running = new;
    }
    tracing::info!(
        "shutdown requested: no new runs, abandoning running syncs, draining connections"
    );
    let stopped = async {
        tokio::join!(scheduler.shutdown(), http.shutdown());
    };
    if tokio::time::timeout(STOP_GRACE, stopped).await.is_err() {
        tracing::warn!("stop grace period ({STOP_GRACE:?}) over; exiting anyway");
    }
    Ok(())
}

/// The `[push]` token, read now; an unreadable one is a config error naming its source.
fn push_token(
    config_path: &Path,
    config: &Config,
) -> Result<Option<crate::push::Token>, crate::config::ConfigError> {
    let Some(source) = &config.push.token else {
        return Ok(None);
    };
    source
        .read()
        .map(Some)
        .map_err(|message| crate::config::ConfigError::Invalid {
            path: config_path.to_path_buf(),
            key: "push".into(),
            message,
        })
}

enum Event {
    Reload,
    Stop,
}

/// SIGHUP, SIGTERM and SIGINT, installed together: from then on none of them kills the
/// process outright.
struct Signals {
    hup: Signal,
    term: Signal,
    int: Signal,
}

impl Signals {
    fn install() -> Result<Signals, ServeError> {
        Ok(Signals {
            hup: signal(SignalKind::hangup()).map_err(ServeError::Signal)?,
            term: signal(SignalKind::terminate()).map_err(ServeError::Signal)?,
            int: signal(SignalKind::interrupt()).map_err(ServeError::Signal)?,
        })
    }

    async fn next(&mut self) -> Event {
        tokio::select! {
            _ = self.hup.recv() => Event::Reload,
            _ = self.term.recv() => Event::Stop,
            _ = self.int.recv() => Event::Stop,
        }
    }
}

/// One [`Server`] over one set of mirrors, accepting on a duplicate of the daemon's socket.
struct Generation {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), ServeError>>,
}

/// The serving side: the current generation and the older ones still draining.
struct Http {
    socket: std::net::TcpListener,
    current: Generation,
    draining: Vec<JoinHandle<Result<(), ServeError>>>,
    /// Shared by every generation.
    pushes: Arc<Pushes>,
    access_log: Option<serve::AccessLog>,
}

impl Http {
    fn start(
        socket: std::net::TcpListener,
        config: &Config,
        stats: Arc<Stats>,
        pushes: Arc<Pushes>,
        access_log: Option<serve::AccessLog>,
    ) -> std::io::Result<Http> {
        let current = Self::generation(&socket, config, stats, pushes.clone(), access_log.clone())?;
        Ok(Http {
            socket,
            current,
            draining: Vec::new(),
            pushes,
            access_log,
        })
    }

    fn generation(
        socket: &std::net::TcpListener,
        config: &Config,
        stats: Arc<Stats>,
        pushes: Arc<Pushes>,
        access_log: Option<serve::AccessLog>,
    ) -> std::io::Result<Generation> {
        let listener = tokio::net::TcpListener::from_std(socket.try_clone()?)?;
        // A generation replaced by a reload drains for as long as its downloads take; the
        // process-wide stop is bounded by STOP_GRACE instead.
        let limits = Limits {
            shutdown_grace: Duration::from_secs(24 * 3600),
            ..Limits::default()
        };
        let mut server = Server::new(Site::from_config(config), limits)
            .with_metrics(Arc::new(move |out: &mut String| stats.render(out)))
            .with_push(pushes);
        if let Some(log) = access_log {
            server = server.with_access_log(log);
        }
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(listener, async move {
            let _ = stopped.await;
        }));
        Ok(Generation { stop, task })
    }

    /// A new generation when what is served changed (mirrors, what their pages show,
    /// `[serve] max_age_secs`, caches); the old one drains.
    fn reload(&mut self, old: &Config, new: &Config, stats: Arc<Stats>) -> std::io::Result<()> {
        if Site::serves_same(old, new) {
            return Ok(());
        }
        let next = Self::generation(
            &self.socket,
            new,
            stats,
            self.pushes.clone(),
            self.access_log.clone(),
        )?;
        let old = std::mem::replace(&mut self.current, next);
        let _ = old.stop.send(());
        self.draining.retain(|t| !t.is_finished());
        self.draining.push(old.task);
        Ok(())
    }

    async fn shutdown(self) {
        let _ = self.current.stop.send(());
        drop(self.socket);
        for task in std::iter::once(self.current.task).chain(self.draining) {
            match task.await {
                Ok(Err(e)) => tracing::warn!("server: {e}"),
                Err(e) => tracing::warn!("server task: {e}"),
                Ok(Ok(())) => {}
            }
        }
    }
}
