//! The [`WebhookWorker`] loop: wake-ups, claims, bounded concurrency, and recording each
//! attempt's outcome.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tracing::Instrument;

use super::{WebhookBacklog, WebhookError, WebhookMetrics, WebhookWorkerConfig, backlog};
use crate::store::{ClaimedDelivery, DeliveryOutcome, Store, StoreError};

pub(super) struct Inner {
    pub(super) store: Store,
    pub(super) config: WebhookWorkerConfig,
    pub(super) worker_id: String,
    pub(super) client: reqwest::Client,
    pub(super) notify: Arc<Notify>,
    pub(super) metrics: Arc<WebhookMetrics>,
}

/// Delivers merchant webhooks from the database queue. Clones share everything (one worker).
///
/// ```ignore
/// let worker = WebhookWorker::new(store.clone(), WebhookWorkerConfig::from_config(&cfg.webhooks),
///                                 format!("{instance_id}-webhooks"))?;
/// let waker = worker.notifier();          // give to the engine: waker.notify_one() after commit
/// tokio::spawn(worker.clone().run(shutdown_signal));
/// ```
#[derive(Clone)]
pub struct WebhookWorker {
    pub(super) inner: Arc<Inner>,
}

impl std::fmt::Debug for WebhookWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookWorker")
            .field("worker_id", &self.inner.worker_id)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl WebhookWorker {
    /// A worker named `worker_id` (unique among live workers: it is the lock owner in the
    /// database; e.g. the instance id plus a suffix). Validates `config`.
    pub fn new(
        store: Store,
        config: WebhookWorkerConfig,
        worker_id: impl Into<String>,
    ) -> Result<WebhookWorker, WebhookError> {
        config.validate()?;
        let client = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout)
            // A redirect is a failed attempt (no blind re-POSTs to wherever it points).
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(config.user_agent.clone())
            .build()
            .map_err(|e| WebhookError::Client(e.without_url()))?;
        Ok(WebhookWorker {
            inner: Arc::new(Inner {
                store,
                config,
                worker_id: worker_id.into(),
                client,
                notify: Arc::new(Notify::new()),
                metrics: Arc::new(WebhookMetrics::default()),
            }),
        })
    }

    /// Uses `notify` as the wake-up signal (to share one with the engine or other workers).
    /// Call before cloning or starting the worker.
    pub fn with_notifier(mut self, notify: Arc<Notify>) -> WebhookWorker {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.notify = notify,
            None => {
                let old = &self.inner;
                self.inner = Arc::new(Inner {
                    store: old.store.clone(),
                    config: old.config.clone(),
                    worker_id: old.worker_id.clone(),
                    client: old.client.clone(),
                    notify,
                    metrics: old.metrics.clone(),
                });
            }
        }
        self
    }

    /// The wake-up signal. The engine calls `notify_one()` after committing a transaction that
    /// enqueued a webhook (a wake-up while the worker is busy is kept, not lost); without it
    /// the worker still finds the delivery at its next poll.
    pub fn notifier(&self) -> Arc<Notify> {
        self.inner.notify.clone()
    }

    /// This worker's counters.
    pub fn metrics(&self) -> Arc<WebhookMetrics> {
        self.inner.metrics.clone()
    }

    /// The lock owner name.
    pub fn worker_id(&self) -> &str {
        &self.inner.worker_id
    }

    /// The settings.
    pub fn config(&self) -> &WebhookWorkerConfig {
        &self.inner.config
    }

    /// The queue's size and lag ([`backlog`]).
    pub async fn backlog(&self) -> Result<WebhookBacklog, WebhookError> {
        backlog(&self.inner.store).await
    }

    /// Delivers until `shutdown` completes: claims due deliveries (at most as many as there are
    /// free delivery slots), sends them concurrently, and waits for a wake-up, the poll
    /// interval or a free slot. On shutdown it stops claiming and waits for the attempts in
    /// flight (each bounded by the request timeout). Dropping the future instead abandons them:
    /// their locks expire and another worker retries them.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let config = &self.inner.config;
        let slots = Arc::new(Semaphore::new(config.concurrency));
        let mut tasks: JoinSet<()> = JoinSet::new();
        tracing::info!(worker = %self.inner.worker_id, "webhook worker started");
        loop {
            while let Some(done) = tasks.try_join_next() {
                log_join(done);
            }
            let free = slots.available_permits();
            let mut more_due = false;
            if free > 0 {
                let limit = config
                    .batch_size
                    .min(u32::try_from(free).unwrap_or(u32::MAX));
                match self.claim(limit).await {
                    Ok(batch) => {
                        more_due = batch.len() == usize::try_from(limit).unwrap_or(usize::MAX)
                            && free > batch.len();
                        for claimed in batch {
                            let Ok(permit) = slots.clone().try_acquire_owned() else {
                                // Unreachable: only this loop takes slots, and it claimed no
                                // more than were free. The lock expires and it is retried.
                                tracing::error!("no free delivery slot for a claimed delivery");
                                break;
                            };
                            let worker = self.clone();
                            let span = delivery_span(&claimed);
                            tasks.spawn(
                                async move {
                                    worker.deliver(claimed).await;
                                    drop(permit);
                                }
                                .instrument(span),
                            );
                        }
                    }
                    Err(e) => {
                        WebhookMetrics::inc(&self.inner.metrics.store_errors);
                        tracing::warn!(error = %e, "claiming webhook deliveries failed");
                    }
                }
            }
            if more_due {
                // A full batch: there may be more due right away; only stop for shutdown.
                tokio::select! {
                    biased;
                    _ = &mut shutdown => break,
                    _ = std::future::ready(()) => continue,
                }
            }
            tokio::select! {
                _ = &mut shutdown => break,
                _ = self.inner.notify.notified() => {}
                _ = tokio::time::sleep(config.poll_interval) => {}
                Some(done) = tasks.join_next(), if !tasks.is_empty() => log_join(done),
            }
        }
        tracing::info!(
            worker = %self.inner.worker_id,
            in_flight = tasks.len(),
            "webhook worker stopping"
        );
        while let Some(done) = tasks.join_next().await {
            log_join(done);
        }
    }

    /// Claims one batch of due deliveries and sends them (concurrently, up to the configured
    /// concurrency), returning how many were attempted. For CLI commands and tests; services
    /// use [`run`](Self::run).
    pub async fn run_once(&self) -> Result<usize, WebhookError> {
        let limit = self
            .inner
            .config
            .batch_size
            .min(u32::try_from(self.inner.config.concurrency).unwrap_or(u32::MAX));
        let batch = self.claim(limit).await?;
        let n = batch.len();
        let mut tasks = JoinSet::new();
        for claimed in batch {
            let worker = self.clone();
            let span = delivery_span(&claimed);
            tasks.spawn(async move { worker.deliver(claimed).await }.instrument(span));
        }
        while let Some(done) = tasks.join_next().await {
            log_join(done);
        }
        Ok(n)
    }

    async fn claim(&self, limit: u32) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let lock_ms = i64::try_from(self.inner.config.lock.as_millis()).unwrap_or(i64::MAX);
        self.inner
            .store
            .claim_due_deliveries(&self.inner.worker_id, limit, lock_ms)
            .await
    }

    /// One attempt of a claimed delivery, then its outcome recorded.
    async fn deliver(&self, claimed: ClaimedDelivery) {
        let outcome = self.attempt(&claimed).await;
        let metrics = &self.inner.metrics;
        match &outcome {
            DeliveryOutcome::Delivered { response_status } => {
                WebhookMetrics::inc(&metrics.delivered);
                tracing::info!(status = response_status, "webhook delivered");
            }
            DeliveryOutcome::Retry {
                response_status,
                error,
                next_attempt_at,
            } => {
                WebhookMetrics::inc(&metrics.retried);
                tracing::info!(
                    status = ?response_status,
                    error = %error,
                    retry_in_ms = next_attempt_at.saturating_sub(self.inner.store.now_ms()),
                    "webhook attempt failed; will retry"
                );
            }
            DeliveryOutcome::GiveUp {
                response_status,
                error,
            } => {
                WebhookMetrics::inc(&metrics.given_up);
                tracing::warn!(status = ?response_status, error = %error, "webhook given up");
            }
            DeliveryOutcome::Gone => {
                WebhookMetrics::inc(&metrics.gone);
                tracing::warn!("webhook endpoint answered 410 Gone; endpoint disabled");
            }
        }
        match self
            .inner
            .store
            .record_delivery(claimed.delivery.id, &self.inner.worker_id, &outcome)
            .await
        {
            Ok(_) => {}
            Err(StoreError::ClaimLost { .. }) => {
                // Our lock expired and another worker took the delivery: it decides now.
                WebhookMetrics::inc(&metrics.claim_lost);
                tracing::warn!("webhook claim expired before the result was recorded");
            }
            Err(e) => {
                // The lock expires and the delivery is attempted again (at-least-once).
                WebhookMetrics::inc(&metrics.store_errors);
                tracing::error!(error = %e, "recording a webhook attempt failed");
            }
        }
    }
}

/// The request id the payload carries (`data.requestId`, or a top-level `request_id` /
/// `requestId`), for the tracing span.
pub(super) fn request_id(payload: &serde_json::Value) -> Option<&str> {
    payload
        .pointer("/data/requestId")
        .or_else(|| payload.get("request_id"))
        .or_else(|| payload.get("requestId"))
        .and_then(|v| v.as_str())
}

fn delivery_span(claimed: &ClaimedDelivery) -> tracing::Span {
    let event = &claimed.event;
    tracing::info_span!(
        "webhook_delivery",
        event_id = %event.id,
        event_type = %event.event_type,
        payment_id = %event.payment_id.map(|p| p.to_string()).unwrap_or_default(),
        request_id = %request_id(&event.payload).unwrap_or(""),
        merchant_id = %event.merchant_id,
        delivery_id = %claimed.delivery.id,
        attempt = claimed.delivery.attempts,
    )
}

fn log_join(result: Result<(), tokio::task::JoinError>) {
    if let Err(e) = result
        && e.is_panic()
    {
        tracing::error!(error = %e, "a webhook delivery task panicked");
    }
}
