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
//! Order per payment: an event about a payment carries `sequence` (1, 2, … per payment, written
//! by the store), and the claim skips it while an earlier event of the same payment is still
//! pending, so a payment's events are sent one at a time in that order (the next once the
//! previous one is delivered, given up or its endpoint disabled); other payments' events are
//! not held back.
//!
//! Deliveries for a merchant without a webhook endpoint, or whose endpoint was disabled by an
//! earlier 410, are not sent: they are recorded as given up ([`DeliveryOutcome::GiveUp`]).
//!
//! # Layout
//!
//! - this file: [`WebhookError`] and [`new_webhook_event`] (what the engine enqueues);
//! - `settings`: [`WebhookWorkerConfig`], the retry schedule and its jitter;
//! - `metrics`: [`WebhookMetrics`] and the queue's [`backlog`];
//! - `worker`: the [`WebhookWorker`] loop: wake-ups, claims, concurrency, recording outcomes;
//! - `attempt`: one attempt: the merchant's endpoint and secret, the signed request, and the
//!   answer classified into a [`DeliveryOutcome`].

use uuid::Uuid;
use x402_escrow_sdk::webhooks as sdk;

#[cfg(doc)]
use crate::store::{DeliveryOutcome, Store};
use crate::store::{NewWebhookEvent, StoreError};
#[cfg(doc)]
use tokio::sync::Notify;

mod attempt;
mod metrics;
mod settings;
mod worker;

#[cfg(test)]
mod tests;

pub use metrics::{WebhookBacklog, WebhookMetrics, WebhookMetricsSnapshot, backlog};
pub use settings::{DEFAULT_CONCURRENCY, DEFAULT_JITTER, WebhookWorkerConfig};
pub use worker::WebhookWorker;

/// Why a worker could not be built or a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The settings are inconsistent (see [`WebhookWorkerConfig::validate`]).
    #[error("invalid webhook worker config: {0}")]
    Config(String),
    /// The HTTP client could not be built.
    #[error("cannot build the webhook HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
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
