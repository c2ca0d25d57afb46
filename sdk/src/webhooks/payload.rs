//! The JSON body of a delivery: [`WebhookEvent`], its type and its payment data.

use std::fmt;

use alloy::primitives::B256;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::amount::Amount;

/// The event types the operator sends.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WebhookEventType {
    /// `payment.authorized`: funds are held in escrow.
    PaymentAuthorized,
    /// `payment.captured`: (part of) the hold went to the merchant.
    PaymentCaptured,
    /// `payment.voided`: the hold was released to the payer.
    PaymentVoided,
    /// `payment.refunded`: (part of) a captured amount went back to the payer.
    PaymentRefunded,
    /// `payment.reclaimed`: the payer took the hold back after the authorization expired.
    PaymentReclaimed,
    /// `payment.failed`: the payment could not be completed.
    PaymentFailed,
    /// A type this version does not know (receivers should accept and ignore it, not fail).
    Other(String),
}

impl WebhookEventType {
    /// The wire name (`payment.captured`, …).
    pub fn as_str(&self) -> &str {
        match self {
            Self::PaymentAuthorized => "payment.authorized",
            Self::PaymentCaptured => "payment.captured",
            Self::PaymentVoided => "payment.voided",
            Self::PaymentRefunded => "payment.refunded",
            Self::PaymentReclaimed => "payment.reclaimed",
            Self::PaymentFailed => "payment.failed",
            Self::Other(name) => name,
        }
    }

    /// The known types.
    pub const ALL: [Self; 6] = [
        Self::PaymentAuthorized,
        Self::PaymentCaptured,
        Self::PaymentVoided,
        Self::PaymentRefunded,
        Self::PaymentReclaimed,
        Self::PaymentFailed,
    ];
}

impl From<&str> for WebhookEventType {
    fn from(name: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == name)
            .unwrap_or_else(|| Self::Other(name.to_owned()))
    }
}

impl fmt::Display for WebhookEventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for WebhookEventType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for WebhookEventType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Ok(Self::from(name.as_str()))
    }
}

/// Amounts of a payment at the time of the event, in the token's atomic units (decimal
/// strings on the wire).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PaymentAmounts {
    /// Held by the authorization (or charged).
    pub authorized: Amount,
    /// Captured so far (sent to the merchant).
    pub captured: Amount,
    /// Refunded so far (back to the payer).
    pub refunded: Amount,
    /// Still capturable (held and neither captured nor released).
    #[serde(default)]
    pub capturable: Amount,
    /// Still refundable (captured and not yet refunded).
    #[serde(default)]
    pub refundable: Amount,
}

/// The payment an event is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentEventData {
    /// The operator's payment id.
    pub payment_id: String,
    /// The request id of the HTTP request that created the payment (`X-Request-Id`).
    pub request_id: String,
    /// The escrow's payment hash (`paymentState` key).
    pub payment_hash: B256,
    /// The payment's state after the event, in the operator's snake_case spelling
    /// (`authorized`, `captured`, `partially_refunded`, `refunded`, `voided`, `reclaimed`,
    /// `expired`, `failed`, …).
    pub status: String,
    /// The amount this event moved (captured, voided, refunded, …), when it moved one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Amount>,
    /// Amounts after the event.
    pub amounts: PaymentAmounts,
    /// Why the payment failed (`payment.failed`): a stable code or the escrow's error name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// The transaction that caused the event, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_hash: Option<B256>,
    /// The `Idempotency-Key` of the API request that caused the event, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

/// The JSON body of a webhook delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEvent {
    /// The event id; also the `webhook-id` header, identical on every retry.
    pub id: String,
    /// The event type.
    #[serde(rename = "type")]
    pub event_type: WebhookEventType,
    /// When the event happened (RFC 3339, UTC).
    pub created_at: DateTime<Utc>,
    /// The event's number among its payment's events: 1, 2, … in the order the operator wrote
    /// them. Receivers that may see deliveries out of order (a retried event, several
    /// receivers) order a payment's events by it. Absent from older operators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u64>,
    /// The payment.
    pub data: PaymentEventData,
}

impl WebhookEvent {
    /// An event created at `created_at_unix_ms` (milliseconds since the Unix epoch; an
    /// out-of-range value becomes the epoch).
    pub fn new(
        id: impl Into<String>,
        event_type: WebhookEventType,
        created_at_unix_ms: i64,
        data: PaymentEventData,
    ) -> Self {
        Self {
            id: id.into(),
            event_type,
            created_at: DateTime::from_timestamp_millis(created_at_unix_ms).unwrap_or_default(),
            sequence: None,
            data,
        }
    }

    /// The JSON body to send (sign exactly these bytes).
    pub fn to_body(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }

    /// A fresh event id: `evt_` and 32 random hex digits.
    pub fn new_id() -> String {
        let bytes: [u8; 16] = rand::random();
        let mut id = String::with_capacity(36);
        id.push_str("evt_");
        for b in bytes {
            id.push_str(&format!("{b:02x}"));
        }
        id
    }
}
