//! Webhooks in the [Standard Webhooks] format: the operator signs, merchants verify.
//!
//! Every delivery carries three headers:
//!
//! | header | value |
//! |---|---|
//! | `webhook-id` | the event id ([`WebhookEvent::id`]); the same on every retry of one event |
//! | `webhook-timestamp` | Unix seconds of the delivery attempt |
//! | `webhook-signature` | `v1,<base64(HMAC-SHA256(secret, "{id}.{timestamp}.{body}"))>`, several separated by spaces while a secret is being rotated |
//!
//! Secrets are written `whsec_<base64>` ([`WebhookSecret`]).
//!
//! Receiving, in order:
//! 1. [`verify`] (or [`verify_event`]) against the raw body bytes, with every secret that is
//!    currently valid for the endpoint (the new and the old during a rotation). It checks the
//!    timestamp against [`DEFAULT_TOLERANCE`] and compares signatures in constant time.
//! 2. Deduplicate on the webhook id: deliveries are at-least-once (see [`Deduplicator`]).
//! 3. Answer any 2xx quickly; do slow work afterwards. A non-2xx answer is retried for days;
//!    `410 Gone` disables the endpoint.
//!
//! [Standard Webhooks]: https://www.standardwebhooks.com/
//!
//! # Layout
//!
//! - `secret`: [`WebhookSecret`] (`whsec_…`), parsing and generation;
//! - `sign`: the sender's side: [`sign`], [`headers`], [`headers_rotating`];
//! - `verify`: the receiver's side: [`verify`], [`verify_event`], [`HeaderLookup`];
//! - `payload`: the JSON body: [`WebhookEvent`], [`WebhookEventType`], [`PaymentEventData`];
//! - `dedup`: receivers' deduplication on the webhook id ([`Deduplicator`]).

use std::time::Duration;

mod dedup;
mod payload;
mod secret;
mod sign;
mod verify;

pub use dedup::{Deduplicator, MemoryDeduplicator};
pub use payload::{PaymentAmounts, PaymentEventData, WebhookEvent, WebhookEventType};
pub use secret::{SecretError, WebhookSecret};
pub use sign::{WebhookHeaders, headers, headers_rotating, sign};
pub use verify::{HeaderLookup, VerifiedEvent, WebhookVerifyError, verify, verify_event};

/// Header carrying the message (event) id.
pub const HEADER_ID: &str = "webhook-id";
/// Header carrying the delivery time, Unix seconds.
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// Header carrying the space-separated signature list.
pub const HEADER_SIGNATURE: &str = "webhook-signature";
/// Prefix of a serialized secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// Version tag of an HMAC-SHA256 signature.
pub const SIGNATURE_VERSION: &str = "v1";
/// How far a delivery's timestamp may be from the receiver's clock (either way): 5 minutes.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);
/// Shortest secret accepted, in bytes.
pub const MIN_SECRET_LEN: usize = 16;
/// Longest secret accepted, in bytes (the SHA-256 block size; the specification's maximum).
pub const MAX_SECRET_LEN: usize = 64;
/// Length of a generated secret, in bytes.
pub const GENERATED_SECRET_LEN: usize = 32;
/// Most entries read from a `webhook-signature` header.
pub const MAX_SIGNATURES: usize = 16;
/// Longest `webhook-id` accepted.
pub const MAX_ID_LEN: usize = 256;
