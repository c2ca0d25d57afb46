//! The merchant's own settings over the REST API: its webhook endpoint (`GET`/`PATCH
//! /v1/webhook`), signing-secret rotation, the delivery log and redelivery
//! (`/v1/webhook/deliveries`), and API key rotation (`POST /v1/merchant/api-key/rotate`). The
//! operator serializes these; clients read the same definitions.
//!
//! Rotation keeps the previous secret (or key) valid for a grace period, so a merchant can roll
//! its receivers and callers over without a gap: during it every webhook carries two
//! signatures (Standard Webhooks lists them space-separated), and both API keys authenticate.

use serde::{Deserialize, Serialize};

/// Longest webhook URL accepted, in bytes.
pub const MAX_WEBHOOK_URL_LEN: usize = 2048;
/// Grace period of a rotation when the request names none: one day.
pub const DEFAULT_ROTATION_GRACE_SECS: u64 = 86_400;
/// Longest grace period of a rotation: seven days.
pub const MAX_ROTATION_GRACE_SECS: u64 = 7 * 86_400;
/// Largest page of `GET /v1/webhook/deliveries`.
pub const MAX_DELIVERY_PAGE: u32 = 100;

/// `GET /v1/webhook`: where the merchant's webhooks go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEndpointView {
    /// The endpoint (`null`: events are recorded, not delivered).
    pub url: Option<String>,
    /// Whether deliveries are made (`false` after `PATCH {"enabled": false}` or a `410 Gone`).
    pub enabled: bool,
    /// When deliveries were stopped (unix ms).
    pub disabled_at: Option<i64>,
    /// Whether a signing secret is set (the secret itself is shown only when rotated).
    pub secret_set: bool,
    /// Until when (unix ms) the previous secret still signs too, after a rotation.
    pub previous_secret_expires_at: Option<i64>,
}

/// `PATCH /v1/webhook`: a new endpoint, and deliveries on or off.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateWebhookEndpoint {
    /// An absolute `http(s)` URL (at most [`MAX_WEBHOOK_URL_LEN`] bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `false` stops deliveries (events are still recorded and listed); `true` resumes them,
    /// also after a `410 Gone` stopped them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// `POST /v1/webhook/secret/rotate` and `POST /v1/merchant/api-key/rotate`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RotateRequest {
    /// How long the previous secret or key stays valid, 0..=[`MAX_ROTATION_GRACE_SECS`]
    /// (default [`DEFAULT_ROTATION_GRACE_SECS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_seconds: Option<u64>,
}

/// The answer of a webhook secret rotation: the new secret, shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookSecretRotated {
    /// The new Standard Webhooks secret (`whsec_…`).
    pub secret: String,
    /// Until when (unix ms) the previous secret signs too (`null`: there was none, or no grace).
    pub previous_secret_expires_at: Option<i64>,
}

/// The answer of an API key rotation: the new key, shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyRotated {
    /// The new API key (`x402_sk_…`); only its SHA-256 is stored.
    pub api_key: String,
    /// Until when (unix ms) the previous key still authenticates (`null`: no grace).
    pub previous_key_expires_at: Option<i64>,
}

/// One webhook event's delivery, as the log shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookDeliveryView {
    /// The delivery's id (for redelivery).
    pub id: String,
    /// The event (`webhook-id`).
    pub event_id: String,
    /// `payment.authorized`, `payment.captured`, …
    pub event_type: String,
    /// The payment it is about.
    pub payment_id: Option<String>,
    /// The event's number among its payment's events.
    pub sequence: Option<i64>,
    /// `pending`, `delivered`, `failed` or `disabled`.
    pub status: String,
    /// Attempts made.
    pub attempts: i64,
    /// When the next attempt is due (unix ms; meaningful while `pending`).
    pub next_attempt_at: i64,
    /// The HTTP status of the last attempt.
    pub response_status: Option<u16>,
    /// What went wrong in the last attempt.
    pub last_error: Option<String>,
    /// When the event was written (unix ms).
    pub created_at: i64,
    /// When the delivery last changed (unix ms).
    pub updated_at: i64,
    /// When a 2xx came back (unix ms).
    pub delivered_at: Option<i64>,
}

/// `GET /v1/webhook/deliveries` → the delivery log, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookDeliveryList {
    /// Newest first.
    pub deliveries: Vec<WebhookDeliveryView>,
    /// Pass as `cursor` for the next page (`null`: this was the last).
    pub next_cursor: Option<String>,
}
