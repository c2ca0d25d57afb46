//! Merchant webhook delivery: the persistent, at-least-once [`WebhookWorker`].
//!
//! The database is the queue. The engine writes a `webhook_events` row and its
//! `webhook_deliveries` row in the same transaction as the payment transition that causes it
//! ([`crate::store::StoreTx::enqueue_webhook`] / `TransitionExtras::webhook`), then wakes the
//! worker through the shared [`Notify`] ([`WebhookWorker::notifier`]). Workers (several per
//! process, several processes on one PostgreSQL) claim due deliveries with a lease
//! ([`Store::claim_due_deliveries`]), POST them and record the outcome
//! ([`Store::record_delivery`]):
//!
//! | answer | outcome |
//! |---|---|
//! | any 2xx | [`DeliveryOutcome::Delivered`] |
//! | 410 Gone | [`DeliveryOutcome::Gone`]: the merchant's endpoint is disabled, no more attempts |
//! | other status, timeout, connection error | [`DeliveryOutcome::Retry`] at the next step of the schedule (± jitter), [`DeliveryOutcome::GiveUp`] after the last attempt |
//!
//! Each request is signed in the Standard Webhooks format by the SDK
//! ([`x402_escrow_sdk::webhooks::headers`]): `webhook-id` is the event id (the same on every
//! attempt, so receivers deduplicate on it), `webhook-timestamp` the attempt time (the store's
//! clock: the wall clock in production), and
//! `webhook-signature` `v1,<base64 HMAC-SHA256 over id.timestamp.body>` under the merchant's
//! secret. The body is the stored event payload, serialized once per attempt and signed as sent.
//!
//! Guarantees: a crashed worker's claims come back when their lock expires (the attempt still
//! counts); a delivery that succeeded but whose result was not recorded is sent again with the
//! same `webhook-id` (at-least-once). Two live workers never hold the same delivery, and the
//! lock outlasts the request timeout, so one attempt is never sent twice concurrently.
//!
//! Deliveries for a merchant without a webhook endpoint, or whose endpoint was disabled by an
//! earlier 410, are not sent: they are recorded as given up ([`DeliveryOutcome::GiveUp`]).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::Rng;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tracing::Instrument;
use uuid::Uuid;
use x402_escrow_sdk::webhooks::{self as sdk, WebhookSecret};

use crate::config::WebhookConfig;
use crate::store::{
    ClaimedDelivery, DeliveryOutcome, Merchant, NewWebhookEvent, Store, StoreError,
};

/// Default number of deliveries one worker sends at the same time.
pub const DEFAULT_CONCURRENCY: usize = 8;
/// Default jitter: each retry delay is multiplied by a random factor in `1 ± 0.2`.
pub const DEFAULT_JITTER: f64 = 0.2;

/// Why a worker could not be built or a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The settings are inconsistent (see [`WebhookWorkerConfig::validate`]).
    #[error("invalid webhook worker config: {0}")]
    Config(String),
    /// The HTTP client could not be built.
    #[error("cannot build the webhook HTTP client: {0}")]
    Client(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The worker's settings. [`WebhookWorkerConfig::from_config`] takes them from the `[webhooks]`
/// section; tests build one directly (millisecond schedules).
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookWorkerConfig {
    /// Timeout of one HTTP request (connect + answer).
    pub request_timeout: Duration,
    /// How long a claimed delivery stays locked to this worker. Must be longer than
    /// `request_timeout` (plus the time to record the result), or another worker could send the
    /// same attempt while this one is still waiting.
    pub lock: Duration,
    /// How often to look for due deliveries without a wake-up.
    pub poll_interval: Duration,
    /// Attempts in all (the first included); after the last failure the delivery is given up.
    pub max_attempts: u32,
    /// Delay before attempt `n + 1` after attempt `n` failed: `retry_schedule[n - 1]`; the last
    /// entry repeats. Must not be empty.
    pub retry_schedule: Vec<Duration>,
    /// Relative jitter on each delay, `0.0..=1.0` (0.2: ±20 %), so retries of many deliveries
    /// that failed together do not arrive together.
    pub jitter: f64,
    /// Deliveries in flight at once (per worker).
    pub concurrency: usize,
    /// Most deliveries claimed by one query.
    pub batch_size: u32,
    /// The `User-Agent` header.
    pub user_agent: String,
}

impl Default for WebhookWorkerConfig {
    /// The defaults of [`WebhookConfig`] (the Standard Webhooks schedule: immediately, 5 s,
    /// 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h).
    fn default() -> Self {
        WebhookWorkerConfig::from_config(&WebhookConfig::default())
    }
}

impl WebhookWorkerConfig {
    /// From the `[webhooks]` configuration section (concurrency and jitter use their defaults).
    pub fn from_config(config: &WebhookConfig) -> WebhookWorkerConfig {
        WebhookWorkerConfig {
            request_timeout: Duration::from_secs(config.timeout_secs),
            lock: Duration::from_secs(config.lock_secs),
            poll_interval: Duration::from_millis(config.poll_interval_ms),
            max_attempts: config.max_attempts,
            retry_schedule: config
                .retry_schedule_secs
                .iter()
                .map(|s| Duration::from_secs(*s))
                .collect(),
            jitter: DEFAULT_JITTER,
            concurrency: DEFAULT_CONCURRENCY,
            batch_size: u32::try_from(DEFAULT_CONCURRENCY).unwrap_or(u32::MAX),
            user_agent: format!("x402-escrow-operator/{}", env!("CARGO_PKG_VERSION")),
        }
    }

    /// Checks the settings: positive timeout, poll interval, attempts, concurrency and batch
    /// size; a non-empty schedule; jitter within `0..=1`; a lock longer than the timeout.
    pub fn validate(&self) -> Result<(), WebhookError> {
        let bad = |m: &str| Err(WebhookError::Config(m.to_owned()));
        if self.request_timeout.is_zero() {
            return bad("request timeout must be positive");
        }
        if self.lock <= self.request_timeout {
            return bad("lock must be longer than the request timeout");
        }
        if self.poll_interval.is_zero() {
            return bad("poll interval must be positive");
        }
        if self.max_attempts == 0 {
            return bad("max_attempts must be at least 1");
        }
        if self.retry_schedule.is_empty() {
            return bad("retry schedule must not be empty");
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return bad("jitter must be within 0.0..=1.0");
        }
        if self.concurrency == 0 || self.batch_size == 0 {
            return bad("concurrency and batch size must be positive");
        }
        Ok(())
    }

    /// The delay before the next attempt after attempt `attempt` (1-based) failed, before
    /// jitter; `None` when `attempt` was the last one.
    pub fn base_delay(&self, attempt: i64) -> Option<Duration> {
        if attempt >= i64::from(self.max_attempts) {
            return None;
        }
        let index = usize::try_from(attempt.saturating_sub(1)).unwrap_or(0);
        self.retry_schedule
            .get(index)
            .or(self.retry_schedule.last())
            .copied()
    }

    /// [`base_delay`](Self::base_delay) with jitter applied.
    pub fn retry_delay(&self, attempt: i64) -> Option<Duration> {
        let base = self.base_delay(attempt)?;
        if self.jitter <= 0.0 || base.is_zero() {
            return Some(base);
        }
        let factor = rand::rng().random_range((1.0 - self.jitter)..=(1.0 + self.jitter));
        Some(base.mul_f64(factor.max(0.0)))
    }
}

/// Counters of one worker since it was built (for `/metrics`). Cheap to share.
#[derive(Debug, Default)]
pub struct WebhookMetrics {
    attempts: AtomicU64,
    delivered: AtomicU64,
    retried: AtomicU64,
    given_up: AtomicU64,
    gone: AtomicU64,
    claim_lost: AtomicU64,
    store_errors: AtomicU64,
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

    fn inc(counter: &AtomicU64) {
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

struct Inner {
    store: Store,
    config: WebhookWorkerConfig,
    worker_id: String,
    client: reqwest::Client,
    notify: Arc<Notify>,
    metrics: Arc<WebhookMetrics>,
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
    inner: Arc<Inner>,
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
            .map_err(|e| WebhookError::Client(e.without_url().to_string()))?;
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

    /// Sends one attempt and classifies the answer.
    async fn attempt(&self, claimed: &ClaimedDelivery) -> DeliveryOutcome {
        let store = &self.inner.store;
        let merchant = match store.get_merchant(claimed.delivery.merchant_id).await {
            Ok(m) => m,
            Err(e) => return self.failed(claimed, None, format!("cannot load merchant: {e}")),
        };
        let (url, secret) = match endpoint(&merchant) {
            Endpoint::Ready { url, secret } => (url, secret),
            Endpoint::Missing(reason) => {
                return DeliveryOutcome::GiveUp {
                    response_status: None,
                    error: reason.to_owned(),
                };
            }
            Endpoint::BadSecret(reason) => return self.failed(claimed, None, reason),
        };
        let body = match serde_json::to_vec(&claimed.event.payload) {
            Ok(b) => b,
            Err(e) => {
                return DeliveryOutcome::GiveUp {
                    response_status: None,
                    error: format!("cannot serialize the payload: {e}"),
                };
            }
        };
        let msg_id = claimed.event.id.to_string();
        let timestamp = u64::try_from(store.now_ms().max(0) / 1000).unwrap_or(0);
        let signed = sdk::headers(&secret, &msg_id, timestamp, &body);
        let mut request = self
            .inner
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        for (name, value) in signed.pairs() {
            request = request.header(name, value);
        }
        WebhookMetrics::inc(&self.inner.metrics.attempts);
        match request.body(body).send().await {
            Ok(response) => {
                let status = response.status();
                // The body is not read: the answer is the status alone.
                drop(response);
                if status.is_success() {
                    DeliveryOutcome::Delivered {
                        response_status: status.as_u16(),
                    }
                } else if status == reqwest::StatusCode::GONE {
                    DeliveryOutcome::Gone
                } else {
                    self.failed(
                        claimed,
                        Some(status.as_u16()),
                        format!("HTTP {}", status.as_u16()),
                    )
                }
            }
            Err(e) => self.failed(claimed, None, describe(e)),
        }
    }

    /// A failed attempt: retry at the next step of the schedule, or give up after the last.
    fn failed(
        &self,
        claimed: &ClaimedDelivery,
        response_status: Option<u16>,
        error: String,
    ) -> DeliveryOutcome {
        match self.inner.config.retry_delay(claimed.delivery.attempts) {
            Some(delay) => {
                let delay_ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
                DeliveryOutcome::Retry {
                    response_status,
                    error,
                    next_attempt_at: self.inner.store.now_ms().saturating_add(delay_ms),
                }
            }
            None => DeliveryOutcome::GiveUp {
                response_status,
                error,
            },
        }
    }
}

enum Endpoint {
    Ready { url: String, secret: WebhookSecret },
    Missing(&'static str),
    BadSecret(String),
}

fn endpoint(merchant: &Merchant) -> Endpoint {
    if merchant.webhook_disabled_at.is_some() {
        return Endpoint::Missing("the merchant's webhook endpoint is disabled (410 Gone)");
    }
    let Some(url) = merchant.webhook_url.clone().filter(|u| !u.is_empty()) else {
        return Endpoint::Missing("the merchant has no webhook endpoint");
    };
    let Some(secret) = &merchant.webhook_secret else {
        return Endpoint::Missing("the merchant has no webhook secret");
    };
    match WebhookSecret::parse(secret.expose()) {
        Ok(secret) => Endpoint::Ready { url, secret },
        // The error text never contains the secret.
        Err(e) => Endpoint::BadSecret(format!("unusable webhook secret: {e}")),
    }
}

/// An error text without the URL (it may carry credentials) but with its causes.
fn describe(error: reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connection failed"
    } else if error.is_redirect() {
        "redirect"
    } else {
        "request failed"
    };
    let error = error.without_url();
    let mut text = format!("{kind}: {error}");
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The request id the payload carries (`data.requestId`, or a top-level `request_id` /
/// `requestId`), for the tracing span.
fn request_id(payload: &serde_json::Value) -> Option<&str> {
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

/// A webhook event for the engine to enqueue (with the payment transition that causes it): a
/// fresh UUIDv7 id, which is both the `webhook-id` header and the `id` of the SDK-shaped JSON
/// body, so receivers' [`x402_escrow_sdk::webhooks::verify_event`] accepts it.
pub fn new_webhook_event(
    event_type: sdk::WebhookEventType,
    created_at_unix_ms: i64,
    data: sdk::PaymentEventData,
) -> Result<NewWebhookEvent, serde_json::Error> {
    let id = Uuid::now_v7();
    let body = sdk::WebhookEvent::new(id.to_string(), event_type.clone(), created_at_unix_ms, data);
    Ok(NewWebhookEvent {
        id,
        event_type: event_type.as_str().to_owned(),
        payload: serde_json::to_value(&body)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(schedule_ms: &[u64], max_attempts: u32, jitter: f64) -> WebhookWorkerConfig {
        WebhookWorkerConfig {
            retry_schedule: schedule_ms
                .iter()
                .map(|m| Duration::from_millis(*m))
                .collect(),
            max_attempts,
            jitter,
            ..WebhookWorkerConfig::default()
        }
    }

    #[test]
    fn default_schedule_is_the_standard_one() {
        let c = WebhookWorkerConfig::default();
        c.validate().unwrap();
        let secs: Vec<u64> = (1..=9)
            .map(|n| c.base_delay(n).unwrap().as_secs())
            .collect();
        assert_eq!(
            secs,
            vec![5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400]
        );
        assert_eq!(c.base_delay(10), None, "ten attempts in all");
    }

    #[test]
    fn last_step_repeats_and_attempts_are_bounded() {
        let c = config(&[10, 20], 5, 0.0);
        let d: Vec<_> = (1..=5).map(|n| c.retry_delay(n)).collect();
        assert_eq!(
            d,
            vec![
                Some(Duration::from_millis(10)),
                Some(Duration::from_millis(20)),
                Some(Duration::from_millis(20)),
                Some(Duration::from_millis(20)),
                None
            ]
        );
        // Extra attempts after a crash still end in a give-up.
        assert_eq!(c.retry_delay(7), None);
    }

    #[test]
    fn jitter_stays_within_bounds() {
        let c = config(&[1000], 3, 0.2);
        for _ in 0..1000 {
            let d = c.retry_delay(1).unwrap().as_millis();
            assert!((800..=1200).contains(&d), "{d}");
        }
    }

    #[test]
    fn validation() {
        let ok = WebhookWorkerConfig::default();
        ok.validate().unwrap();
        let mut c = ok.clone();
        c.lock = c.request_timeout;
        assert!(c.validate().is_err());
        let mut c = ok.clone();
        c.retry_schedule.clear();
        assert!(c.validate().is_err());
        let mut c = ok.clone();
        c.jitter = 1.5;
        assert!(c.validate().is_err());
        let mut c = ok;
        c.max_attempts = 0;
        assert!(c.validate().is_err());
    }

    #[test]
    fn request_id_is_found_in_either_shape() {
        let sdk_shape = serde_json::json!({"id": "e", "data": {"requestId": "r1"}});
        let flat = serde_json::json!({"request_id": "r2"});
        assert_eq!(request_id(&sdk_shape), Some("r1"));
        assert_eq!(request_id(&flat), Some("r2"));
        assert_eq!(request_id(&serde_json::json!({})), None);
    }
}
