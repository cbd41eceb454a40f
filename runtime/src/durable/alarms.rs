//! Alarms: each object may have one, stored with its data; the host calls the object's
//! `alarm()` method at that time, even if the object was evicted or the host restarted in
//! between.
//!
//! As on Cloudflare, the alarm is cleared before `alarm()` runs (so that the handler may
//! set the next one); if the handler fails, the alarm is put back and retried with
//! exponential backoff (after 1 s, 2 s, 4 s, ...), at most [`MAX_RETRIES`] times.

use super::{ObjectKey, Registry, lock};
use crate::error::RpcError;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, SystemTime};
use tokio::sync::Notify;

/// Retries of a failing alarm before it is given up (and logged).
pub(crate) const MAX_RETRIES: u32 = 6;

/// The first retry's delay; each next one doubles it.
const FIRST_RETRY: Duration = Duration::from_secs(1);

/// The alarms of a host's objects, in time order.
#[derive(Default)]
pub(crate) struct Alarms {
    state: Mutex<State>,
    wake: Arc<Notify>,
    running: OnceLock<()>,
}

#[derive(Default)]
struct State {
    due: BTreeSet<(SystemTime, ObjectKey)>,
    /// Each object's alarm time and the retries it has had.
    by_object: HashMap<ObjectKey, (SystemTime, u32)>,
}

impl State {
    fn set(&mut self, key: &ObjectKey, at: Option<SystemTime>, retries: u32) -> bool {
        if let Some((old, _)) = self.by_object.remove(key) {
            self.due.remove(&(old, key.clone()));
        }
        match at {
            Some(at) => {
                self.due.insert((at, key.clone()));
                self.by_object.insert(key.clone(), (at, retries));
                true
            }
            None => false,
        }
    }
}

impl Registry {
    /// Schedules `key`'s alarm at `at` (`None`: it has none), as its storage now says.
    pub(crate) fn schedule(self: &Arc<Self>, key: &ObjectKey, at: Option<SystemTime>) {
        let changed = {
            let mut state = lock(&self.alarms.state);
            if state.by_object.get(key).map(|(t, _)| *t) == at {
                false
            } else {
                state.set(key, at, 0);
                true
            }
        };
        if changed {
            self.alarms.wake.notify_one();
            self.start_alarms();
        }
    }

    /// Schedules a retry of a failed alarm.
    fn schedule_retry(self: &Arc<Self>, key: &ObjectKey, at: SystemTime, retries: u32) {
        lock(&self.alarms.state).set(key, Some(at), retries);
        self.alarms.wake.notify_one();
    }

    /// Starts the task that fires alarms (once, when a runtime runs).
    fn start_alarms(self: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.alarms.running.set(()).is_err() {
            return;
        }
        runtime.spawn(fire_alarms(Arc::downgrade(self)));
    }

    /// The alarms due at `now`, taken off the schedule, with their retries so far.
    fn take_due(&self, now: SystemTime) -> Vec<(ObjectKey, u32)> {
        let mut state = lock(&self.alarms.state);
        let mut taken = Vec::new();
        while let Some((at, key)) = state.due.first().cloned() {
            if at > now {
                break;
            }
            state.due.remove(&(at, key.clone()));
            let retries = state.by_object.remove(&key).map_or(0, |(_, r)| r);
            taken.push((key, retries));
        }
        taken
    }

    fn next_alarm(&self) -> Option<SystemTime> {
        lock(&self.alarms.state).due.first().map(|(at, _)| *at)
    }
}

/// Fires alarms as they come due, while the registry lives.
async fn fire_alarms(registry: Weak<Registry>) {
    loop {
        let Some(r) = registry.upgrade() else {
            return;
        };
        let wake = r.alarms.wake.clone();
        let notified = wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let wait = r
            .next_alarm()
            .map(|at| at.duration_since(SystemTime::now()).unwrap_or_default());
        drop(r);
        match wait {
            Some(wait) if wait.is_zero() => {}
            Some(wait) => {
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = &mut notified => {}
                }
            }
            None => notified.await,
        }
        let Some(r) = registry.upgrade() else {
            return;
        };
        for (key, retries) in r.take_due(SystemTime::now()) {
            tokio::spawn(fire(r.clone(), key, retries));
        }
    }
}

/// Runs one object's alarm: clears it, calls `alarm()`, and on failure puts it back and
/// schedules a retry.
async fn fire(registry: Arc<Registry>, key: ObjectKey, retries: u32) {
    let Some(namespace) = registry.namespace(&key.0) else {
        return;
    };
    let retry_at = SystemTime::now() + FIRST_RETRY * 2u32.pow(retries.min(MAX_RETRIES));
    let outcome: Result<(), RpcError> = async {
        let instance = registry.instance(&namespace, key.1)?;
        // The storage is the truth: the alarm may have been moved or deleted meanwhile.
        match instance.storage.get_alarm()? {
            Some(stored) if stored <= SystemTime::now() => {}
            other => {
                registry.schedule(&key, other);
                return Ok(());
            }
        }
        instance.storage.delete_alarm()?;
        let result = instance
            .run(|object| object.call("alarm", Vec::new()))
            .await;
        if let Err(e) = result {
            // The retry goes in storage (unless the handler set another alarm), so that a
            // restart retries too.
            if instance.storage.get_alarm()?.is_none() {
                instance.storage.set_alarm(retry_at)?;
            }
            return Err(e);
        }
        Ok(())
    }
    .await;
    if let Err(e) = outcome {
        if retries >= MAX_RETRIES {
            tracing::error!(object = %key.1, error = %e, "capwire: a Durable Object's alarm failed {MAX_RETRIES} retries; given up");
            return;
        }
        tracing::warn!(object = %key.1, error = %e, retry = retries + 1, "capwire: a Durable Object's alarm failed; retrying");
        registry.schedule_retry(&key, retry_at, retries + 1);
    }
}
