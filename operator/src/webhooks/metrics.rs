//! What a worker counts ([`WebhookMetrics`]) and what the queue holds ([`backlog`]).

use std::sync::atomic::{AtomicU64, Ordering};

use super::WebhookError;
use crate::store::Store;

/// Counters of one worker since it was built (for `/metrics`). Cheap to share.
#[derive(Debug, Default)]
pub struct WebhookMetrics {
    pub(super) attempts: AtomicU64,
    pub(super) delivered: AtomicU64,
    pub(super) retried: AtomicU64,
    pub(super) given_up: AtomicU64,
    pub(super) gone: AtomicU64,
    pub(super) claim_lost: AtomicU64,
    pub(super) store_errors: AtomicU64,
}

/// A copy of [`WebhookMetrics`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WebhookMetricsSnapshot {
    /// HTTP attempts made.
    pub attempts: u64,
    /// Deliveries answered with a 2xx.
    pub delivered: u64,
    /// Failed attempts scheduled for a retry.
    pub retried: u64,
    /// Deliveries given up (retries exhausted, or no usable endpoint).
    pub given_up: u64,
    /// 410 answers (endpoint disabled).
    pub gone: u64,
    /// Results not recorded because the claim had expired (another worker owns the delivery).
    pub claim_lost: u64,
    /// Database errors while claiming or recording.
    pub store_errors: u64,
}

impl WebhookMetrics {
    /// The current values.
    pub fn snapshot(&self) -> WebhookMetricsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        WebhookMetricsSnapshot {
            attempts: get(&self.attempts),
            delivered: get(&self.delivered),
            retried: get(&self.retried),
            given_up: get(&self.given_up),
            gone: get(&self.gone),
            claim_lost: get(&self.claim_lost),
            store_errors: get(&self.store_errors),
        }
    }

    pub(super) fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// The delivery queue as the database sees it (shared by every worker and instance).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookBacklog {
    /// Deliveries still pending (due now or scheduled for a retry).
    pub pending: i64,
    /// How long the oldest due delivery has been waiting (ms); 0 when nothing is due.
    pub lag_ms: i64,
}

/// Reads the queue's size and lag (for `/metrics` and `/readyz`).
pub async fn backlog(store: &Store) -> Result<WebhookBacklog, WebhookError> {
    let pending = store.pending_delivery_count().await?;
    let lag_ms = store
        .oldest_due_delivery_at()
        .await?
        .map(|t| store.now_ms().saturating_sub(t).max(0))
        .unwrap_or(0);
    Ok(WebhookBacklog { pending, lag_ms })
}
