//! Waiting for a payment or an outbox row: in-process notifications keyed by payment id (or
//! outbox row id), with a fallback poll of the row.
//!
//! A caller waiting for a payment registers (getting a [`WaitGuard`]), and the engine wakes
//! every waiter of a payment after applying something to it (and every waiter of an outbox row
//! once the row has settled). Waiters also re-read the row on a timer, so a notification that
//! never comes (another instance applied the outcome) only costs latency. [`Engine::wait_for`]
//! is that wait, the one mechanism every caller in the engine (and its facilitator) waits with.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use uuid::Uuid;

use super::{Engine, EngineError, OutcomeApplied};
use crate::service::ServiceError;
use crate::store::Payment;

/// Payment id → (its notification, how many waiters hold it).
type Registry = Arc<Mutex<HashMap<Uuid, (Arc<Notify>, usize)>>>;

/// The registry of waiters.
#[derive(Debug, Default)]
pub struct Waiters {
    map: Registry,
}

/// One registered waiter; unregisters on drop.
#[derive(Debug)]
pub struct WaitGuard {
    map: Registry,
    id: Uuid,
    notify: Arc<Notify>,
}

impl Waiters {
    /// Registers a waiter for payment `id`.
    pub fn register(&self, id: Uuid) -> WaitGuard {
        let notify = match self.map.lock() {
            Ok(mut map) => {
                let entry = map
                    .entry(id)
                    .or_insert_with(|| (Arc::new(Notify::new()), 0));
                entry.1 += 1;
                entry.0.clone()
            }
            // A poisoned map only loses the in-process wake-up; polling still works.
            Err(_) => Arc::new(Notify::new()),
        };
        WaitGuard {
            map: self.map.clone(),
            id,
            notify,
        }
    }

    /// Wakes every waiter of payment `id`.
    pub fn wake(&self, id: Uuid) {
        if let Ok(map) = self.map.lock()
            && let Some((notify, _)) = map.get(&id)
        {
            notify.notify_waiters();
        }
    }
}

impl WaitGuard {
    /// The notification to wait on.
    pub fn notify(&self) -> &Notify {
        &self.notify
    }
}

impl Drop for WaitGuard {
    fn drop(&mut self) {
        if let Ok(mut map) = self.map.lock()
            && let Some(entry) = map.get_mut(&self.id)
        {
            entry.1 = entry.1.saturating_sub(1);
            if entry.1 == 0 {
                map.remove(&self.id);
            }
        }
    }
}

impl Engine {
    /// [`Engine::wait_settled`] for a request: `wait`, else the configured default.
    pub(super) async fn wait(
        &self,
        id: Uuid,
        wait: Option<Duration>,
    ) -> Result<Payment, ServiceError> {
        let wait = wait.unwrap_or(self.inner.config.default_wait);
        Ok(self.wait_settled(id, wait).await?)
    }

    /// Waits up to `wait` for the payment to leave its in-flight status (through
    /// [`Engine::wait_for`]), applying the outcome itself when it finds the pending transaction
    /// settled (so it does not depend on who observed it). Returns the payment as it is then.
    pub async fn wait_settled(&self, id: Uuid, wait: Duration) -> Result<Payment, EngineError> {
        let deadline = tokio::time::Instant::now() + wait;
        let settled = self
            .wait_for(
                id,
                deadline,
                Fallback::backing_off(self.inner.config.poll_interval, SETTLED_POLL_MAX),
                || async move {
                    loop {
                        let payment = self.store().get_payment(id).await?;
                        if !payment.status.is_in_flight() {
                            return Ok::<_, EngineError>(Some(payment));
                        }
                        if let Some(tx_id) = payment.pending_tx_id
                            && self.store().get_tx(tx_id).await?.status.is_terminal()
                        {
                            // Being applied by another task: its wake-up comes when it is done.
                            if self.on_tx_outcome(tx_id).await? == OutcomeApplied::InProgress {
                                return Ok(None);
                            }
                            continue;
                        }
                        return Ok(None);
                    }
                },
            )
            .await?;
        match settled {
            Some(payment) => Ok(payment),
            None => Ok(self.store().get_payment(id).await?),
        }
    }

    /// The one way the engine waits for something to happen to a payment or an outbox row
    /// (`key`: the payment's id or the row's id). `check` reads the row and answers `Some` once
    /// it is there; it runs at once, again whenever this process wakes `key` (the push path: an
    /// outcome applied to the payment, the row settled, see [`Waiters::wake`]), and after each
    /// `fallback` interval with no wake-up (another instance may have observed it), until
    /// `deadline`. `None` when the deadline came first.
    pub(super) async fn wait_for<T, E, F, Fut>(
        &self,
        key: Uuid,
        deadline: tokio::time::Instant,
        fallback: Fallback,
        mut check: F,
    ) -> Result<Option<T>, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Option<T>, E>>,
    {
        let guard = self.inner.waiters.register(key);
        let mut poll = fallback.first;
        loop {
            let notified = guard.notify().notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(found) = check().await? {
                return Ok(Some(found));
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            if tokio::time::timeout((deadline - now).min(poll), notified)
                .await
                .is_err()
            {
                poll = fallback.after_silence(poll);
            }
        }
    }
}

/// The longest a request waiting for its payment to settle goes without re-reading it. The
/// outcome wakes it (in this process; on PostgreSQL every instance through `NOTIFY`), so the
/// re-read is only the fallback for a wake-up that did not come (the `LISTEN` connection down).
/// Backing off matters under load: re-reading every 100 ms cost a waiting request about twenty
/// payment and outbox reads per second of its wait, which grew with the queue it waited in
/// (BENCHMARKS.md, "The waiters' re-reads").
pub(super) const SETTLED_POLL_MAX: Duration = Duration::from_secs(1);

/// How often a waiter re-reads its row when no wake-up comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Fallback {
    /// The first interval.
    first: Duration,
    /// The longest interval, reached by doubling after each re-read that no wake-up preceded.
    max: Duration,
}

impl Fallback {
    /// Every `poll`: for waits no wake-up covers, which learn only by re-reading.
    pub(super) fn every(poll: Duration) -> Fallback {
        Fallback {
            first: poll,
            max: poll,
        }
    }

    /// From `poll`, doubling up to `max` (never below `poll`): for waits the wake-up path
    /// covers, where the re-read is a safety net.
    pub(super) fn backing_off(poll: Duration, max: Duration) -> Fallback {
        Fallback {
            first: poll,
            max: max.max(poll),
        }
    }

    /// The interval after one of `current` passed with no wake-up.
    fn after_silence(&self, current: Duration) -> Duration {
        current.saturating_mul(2).clamp(self.first, self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallback_re_reads_back_off_to_their_cap_or_stay_fixed() {
        let ms = Duration::from_millis;
        let backing = Fallback::backing_off(ms(100), SETTLED_POLL_MAX);
        let mut poll = backing.first;
        let mut seen = vec![poll];
        for _ in 0..6 {
            poll = backing.after_silence(poll);
            seen.push(poll);
        }
        assert_eq!(
            seen,
            [100, 200, 400, 800, 1000, 1000, 1000].map(ms).to_vec()
        );
        let fixed = Fallback::every(ms(300));
        assert_eq!(fixed.after_silence(ms(300)), ms(300));
        // A cap below the first interval never shortens it.
        let slow = Fallback::backing_off(ms(2000), SETTLED_POLL_MAX);
        assert_eq!(slow.after_silence(ms(2000)), ms(2000));
    }
}
