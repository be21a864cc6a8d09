//! Pushes into the scheduler: one [`Trigger`] per mirror, shared by the server (which pulls
//! it) and the mirror's task (which waits on it beside its schedule).
//!
//! A trigger is a [`Notify`] permit: a push while the task sleeps wakes it at once; pushes
//! during a run leave one permit, so the task loops once more when the run ends, however
//! many pushes came (ftpsync's `Archive-Update-Required`). That keeps a leaf at most one
//! push behind its hub, and a burst of pushes costs one extra run, not one each.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use tokio::sync::Notify;

use crate::push::Token;
use crate::serve::{Pushed, SyncPush};

/// One mirror's "sync now" bell.
#[derive(Default)]
pub struct Trigger {
    wake: Notify,
    running: AtomicBool,
}

impl Trigger {
    /// Resolves once a push is pending (consuming it).
    pub(super) async fn pushed(&self) {
        self.wake.notified().await;
    }

    /// Rings the bell: what a push does, and what a push-started run that found the lock
    /// held does to try again later.
    pub(super) fn ring(&self) {
        self.wake.notify_one();
    }

    pub(super) fn set_running(&self, running: bool) {
        self.running.store(running, Ordering::SeqCst);
    }
}

/// Every mirror's trigger, and the token pushes must carry.
#[derive(Default)]
pub struct Pushes {
    triggers: Mutex<BTreeMap<String, Arc<Trigger>>>,
    token: RwLock<Option<Token>>,
}

impl Pushes {
    /// The trigger of `mirror`, made on first use.
    pub(super) fn trigger(&self, mirror: &str) -> Arc<Trigger> {
        let mut map = self.triggers.lock().unwrap_or_else(PoisonError::into_inner);
        map.entry(mirror.to_string()).or_default().clone()
    }

    pub(super) fn remove(&self, mirror: &str) {
        let mut map = self.triggers.lock().unwrap_or_else(PoisonError::into_inner);
        map.remove(mirror);
    }

    /// Sets (or, with `None`, turns off) the token pushes must carry.
    pub fn set_token(&self, token: Option<Token>) {
        *self.token.write().unwrap_or_else(PoisonError::into_inner) = token;
    }
}

impl SyncPush for Pushes {
    fn token(&self) -> Option<Token> {
        self.token
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn push(&self, mirror: &str) -> Option<Pushed> {
        let trigger = self
            .triggers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(mirror)?
            .clone();
        let running = trigger.running.load(Ordering::SeqCst);
        trigger.ring();
        Some(if running {
            Pushed::Queued
        } else {
            Pushed::Started
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A push while idle starts a run; any number during a run leave exactly one more.
    #[tokio::test(start_paused = true)]
    async fn pushes_during_a_run_merge_into_one() {
        let pushes = Pushes::default();
        assert_eq!(pushes.push("a"), None, "no such mirror");
        let trigger = pushes.trigger("a");
        let rung = |t: Arc<Trigger>| async move {
            tokio::time::timeout(Duration::from_secs(1), t.pushed())
                .await
                .is_ok()
        };
        assert_eq!(pushes.push("a"), Some(Pushed::Started));
        assert!(rung(trigger.clone()).await);
        trigger.set_running(true);
        for _ in 0..3 {
            assert_eq!(pushes.push("a"), Some(Pushed::Queued));
        }
        trigger.set_running(false);
        assert!(rung(trigger.clone()).await, "one more run");
        assert!(!rung(trigger.clone()).await, "and only one");
        pushes.remove("a");
        assert_eq!(pushes.push("a"), None);
    }
}
