//! Upstream mid-update: ftpsync's `Archive-Update-in-Progress` waits (UIPSLEEP, UIPRETRIES).
//!
//! A mirror that syncs while its upstream is itself updating can meet a Release that lists
//! files upstream has not written yet, or has just deleted. So, in a run with work to do:
//!
//! 1. **flag**: upstream's top directory listing names an `Archive-Update-in-Progress-*` file
//!    (ftpsync's, or a debsync upstream's run lock, which it serves): upstream is mid-update.
//! 2. **gap**: a file the verified Release or an index lists is missing upstream (404) or has
//!    other bytes than listed (after the fetcher's own retries): the same, seen late.
//! 3. Either way, fetch the Release files again. Changed: re-plan with the new ones at once;
//!    what was downloaded stays (pool files are in place and the planner finds them there).
//!    Unchanged: wait `upstream_update_wait_secs`, doubled per wait, and try again; after
//!    `upstream_update_retries` waits the run fails. Nothing of a failed attempt went live.
//!
//! The flag is looked for only when a Release changed: a no-op run costs no extra request.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use super::generation::UpstreamRelease;
use super::{Ctx, SyncError};
use crate::fetch::FetchError;

/// Largest top-directory listing read when looking for the flag.
const MAX_LISTING: u64 = 1024 * 1024;

/// Re-plans (upstream published a new Release during the run) allowed in one run: an upstream
/// that changes faster than we can fetch is an error, not a loop.
const MAX_REPLANS: u32 = 10;

impl SyncError {
    /// Whether the error is what an upstream mid-update looks like (see the module doc).
    pub(crate) fn is_upstream_gap(&self) -> bool {
        match self {
            SyncError::UpstreamFlag { .. }
            | SyncError::MissingIndex { .. }
            | SyncError::ListedMissing { .. } => true,
            SyncError::Fetch(e) => is_gap(e),
            SyncError::Pool(errors) => errors.iter().any(is_gap),
            _ => false,
        }
    }
}

fn is_gap(e: &FetchError) -> bool {
    matches!(
        e,
        FetchError::NotFound { .. } | FetchError::HashMismatch { .. }
    )
}

/// Step 1: `Err(UpstreamFlag)` when upstream's top directory lists an in-progress flag. No
/// listing (404, 403, too big, unreachable) reads as no flag: many upstreams list nothing,
/// and a dead one fails the Release fetch anyway.
pub(crate) async fn check_flag(ctx: &Ctx<'_>) -> Result<(), SyncError> {
    let url = ctx.url("");
    match ctx.fetcher.get_small(&url, MAX_LISTING).await {
        Ok(Some(body)) if crate::tree::mentions_update_flag(&String::from_utf8_lossy(&body)) => {
            Err(SyncError::UpstreamFlag {
                url: crate::fetch::shown(&url),
            })
        }
        Ok(_) => Ok(()),
        Err(e) => {
            tracing::debug!("no upstream listing to look for an update flag in: {e}");
            Ok(())
        }
    }
}

/// `fut`, unless `stop` resolves first: then `Err(Interrupted)`.
pub(crate) async fn until<T>(
    stop: &mut Pin<&mut impl Future<Output = ()>>,
    fut: impl Future<Output = Result<T, SyncError>>,
) -> Result<T, SyncError> {
    tokio::select! {
        r = fut => r,
        () = stop.as_mut() => Err(SyncError::Interrupted),
    }
}

/// The Release files to plan the next attempt with.
pub(crate) struct NextAttempt {
    pub changed: Vec<UpstreamRelease>,
    pub unchanged: Vec<UpstreamRelease>,
    /// Upstream published a new Release since the last attempt.
    pub replanned: bool,
}

/// Step 3 after `gap`: fetch the Release files again, then re-plan at once, or wait and try
/// again, or give up (`Err`).
pub(crate) async fn recover(
    ctx: &Ctx<'_>,
    waits: &mut Waits,
    stop: &mut Pin<&mut impl Future<Output = ()>>,
    gap: SyncError,
    changed: &[UpstreamRelease],
    unchanged: &[UpstreamRelease],
) -> Result<NextAttempt, SyncError> {
    let (again_changed, again_unchanged) = until(stop, super::fetch_releases(ctx)).await?;
    let before: Vec<&UpstreamRelease> = changed.iter().chain(unchanged).collect();
    let now: Vec<&UpstreamRelease> = again_changed.iter().chain(&again_unchanged).collect();
    let replanned = !same_releases(&before, &now);
    let name = &ctx.mirror.name;
    match waits.next(&gap, replanned) {
        Next::Replan => tracing::info!("{name}: {gap}; upstream's Release changed: re-planning"),
        Next::Wait(wait) => {
            tracing::warn!(
                "{name}: {gap}; upstream looks mid-update: waiting {} s before trying again",
                wait.as_secs()
            );
            until(stop, async {
                tokio::time::sleep(wait).await;
                Ok(())
            })
            .await?;
        }
        Next::GiveUp(e) => return Err(e),
    }
    Ok(NextAttempt {
        changed: again_changed,
        unchanged: again_unchanged,
        replanned,
    })
}

/// Whether two fetches of every suite's Release files got the same bytes.
pub(crate) fn same_releases(a: &[&UpstreamRelease], b: &[&UpstreamRelease]) -> bool {
    let key = |u: &&UpstreamRelease| {
        (
            u.suite.clone(),
            u.inrelease.clone(),
            u.release.clone(),
            u.release_gpg.clone(),
        )
    };
    let mut a: Vec<_> = a.iter().map(key).collect();
    let mut b: Vec<_> = b.iter().map(key).collect();
    a.sort();
    b.sort();
    a == b
}

/// What to do after a gap (step 3).
#[derive(Debug)]
pub(crate) enum Next {
    Replan,
    Wait(Duration),
    GiveUp(SyncError),
}

/// The waits and re-plans of one run, as a pure decision.
pub(crate) struct Waits {
    base: Duration,
    retries: u32,
    waited: u32,
    replans: u32,
}

impl Waits {
    pub(crate) fn new(cfg: &crate::config::SyncConfig) -> Waits {
        Waits {
            base: cfg.upstream_update_wait(),
            retries: cfg.upstream_update_retries,
            waited: 0,
            replans: 0,
        }
    }

    /// After `gap`: re-plan when upstream's Release changed, else wait (or give up).
    pub(crate) fn next(&mut self, gap: &SyncError, release_changed: bool) -> Next {
        if release_changed {
            self.replans += 1;
            if self.replans > MAX_REPLANS {
                return Next::GiveUp(self.exhausted(gap, "its Release changed too often"));
            }
            return Next::Replan;
        }
        if self.waited >= self.retries {
            return Next::GiveUp(self.exhausted(gap, "still mid-update"));
        }
        let wait = self
            .base
            .saturating_mul(1u32 << self.waited.min(16))
            .min(Duration::from_secs(86_400));
        self.waited += 1;
        Next::Wait(wait)
    }

    fn exhausted(&self, gap: &SyncError, how: &str) -> SyncError {
        SyncError::UpstreamUpdating {
            detail: format!(
                "{how} after {} wait(s) of sync.upstream_update_retries = {}: {gap}",
                self.waited, self.retries
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waits(wait_secs: u64, retries: u32) -> Waits {
        let cfg = crate::config::SyncConfig {
            upstream_update_wait_secs: wait_secs,
            upstream_update_retries: retries,
            ..Default::default()
        };
        Waits::new(&cfg)
    }

    fn gap() -> SyncError {
        SyncError::MissingIndex {
            what: "http://up/dists/stable/main/binary-amd64/Packages".into(),
        }
    }

    #[test]
    fn waits_double_then_give_up_naming_the_cause() {
        let mut w = waits(10, 3);
        let secs = |n: Next| match n {
            Next::Wait(d) => d.as_secs(),
            other => panic!("{other:?}"),
        };
        assert_eq!(secs(w.next(&gap(), false)), 10);
        assert_eq!(secs(w.next(&gap(), false)), 20);
        assert!(
            matches!(w.next(&gap(), true), Next::Replan),
            "a new Release costs no wait"
        );
        assert_eq!(secs(w.next(&gap(), false)), 40);
        let Next::GiveUp(e) = w.next(&gap(), false) else {
            panic!("a fourth wait");
        };
        let msg = e.to_string();
        assert!(msg.contains("upstream_update_retries = 3"), "{msg}");
        assert!(msg.contains("binary-amd64/Packages"), "{msg}");
        assert!(msg.contains("served tree is unchanged"), "{msg}");
    }

    #[test]
    fn replans_are_bounded() {
        let mut w = waits(0, 0);
        for _ in 0..MAX_REPLANS {
            assert!(matches!(w.next(&gap(), true), Next::Replan));
        }
        assert!(matches!(w.next(&gap(), true), Next::GiveUp(_)));
        assert!(matches!(waits(0, 0).next(&gap(), false), Next::GiveUp(_)));
    }

    #[test]
    fn gaps_are_missing_or_different_files() {
        let nf = || FetchError::NotFound { url: "u".into() };
        assert!(gap().is_upstream_gap());
        assert!(SyncError::Pool(vec![nf()]).is_upstream_gap());
        assert!(SyncError::Fetch(nf()).is_upstream_gap());
        assert!(
            !SyncError::Pool(vec![FetchError::UpstreamDown { failures: 16 }]).is_upstream_gap()
        );
        assert!(!SyncError::Interrupted.is_upstream_gap());
    }
}
