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

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use alloy::primitives::B256;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::amount::Amount;

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

type HmacSha256 = Hmac<Sha256>;

/// Why a secret could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The text does not start with `whsec_`.
    #[error("webhook secret must start with \"whsec_\"")]
    MissingPrefix,
    /// The part after the prefix is not standard base64.
    #[error("webhook secret is not valid base64 after \"whsec_\"")]
    Base64,
    /// The decoded key is shorter or longer than allowed.
    #[error(
        "webhook secret is {0} bytes long; it must be {MIN_SECRET_LEN} to {MAX_SECRET_LEN} bytes"
    )]
    Length(usize),
}

/// A webhook signing secret (the raw HMAC key).
///
/// Neither `Display` nor `Debug` prints the key: they show `whsec_…` with the key elided, so a
/// secret that ends up in a log or an error message does not leak.
/// [`expose_secret`](Self::expose_secret) returns the full `whsec_<base64>` text, for the one
/// place that needs it (showing it to the merchant once, storing it). Equality is constant-time.
#[derive(Clone)]
pub struct WebhookSecret {
    key: Vec<u8>,
}

impl WebhookSecret {
    /// Parses `whsec_<base64>` (standard alphabet, padding optional).
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let encoded = text
            .trim()
            .strip_prefix(SECRET_PREFIX)
            .ok_or(SecretError::MissingPrefix)?;
        let lenient = base64::engine::GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            base64::engine::GeneralPurposeConfig::new()
                .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
        );
        let key = lenient.decode(encoded).map_err(|_| SecretError::Base64)?;
        Self::from_bytes(key)
    }

    /// A secret from raw key bytes ([`MIN_SECRET_LEN`]..=[`MAX_SECRET_LEN`]).
    pub fn from_bytes(key: impl Into<Vec<u8>>) -> Result<Self, SecretError> {
        let key = key.into();
        if !(MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&key.len()) {
            return Err(SecretError::Length(key.len()));
        }
        Ok(Self { key })
    }

    /// A fresh random secret of [`GENERATED_SECRET_LEN`] bytes from the OS CSPRNG.
    pub fn generate() -> Self {
        Self {
            key: rand::random::<[u8; GENERATED_SECRET_LEN]>().to_vec(),
        }
    }

    /// The full secret, `whsec_<base64>`. Only call this to hand the secret over or store it.
    pub fn expose_secret(&self) -> String {
        format!("{SECRET_PREFIX}{}", BASE64.encode(&self.key))
    }

    /// The raw key bytes. Only call this to hand the secret over or store it.
    pub fn expose_bytes(&self) -> &[u8] {
        &self.key
    }

    /// The HMAC-SHA256 of `content` under this key.
    ///
    /// Keys are at most one SHA-256 block long (checked on construction), so the block-sized
    /// key HMAC expects is the key padded with zeros, exactly as HMAC defines it.
    fn mac(&self, content: &[&[u8]]) -> [u8; 32] {
        let mut block = [0u8; MAX_SECRET_LEN];
        if self.key.len() <= MAX_SECRET_LEN {
            block[..self.key.len()].copy_from_slice(&self.key);
        } else {
            // Unreachable through the constructors; HMAC's rule for keys longer than a block.
            let digest = Sha256::digest(&self.key);
            block[..digest.len()].copy_from_slice(&digest);
        }
        let mut mac = <HmacSha256 as hmac::digest::KeyInit>::new(&block.into());
        for part in content {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }
}

impl fmt::Display for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SECRET_PREFIX}…")
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "WebhookSecret({SECRET_PREFIX}…, {} bytes)",
            self.key.len()
        )
    }
}

impl PartialEq for WebhookSecret {
    fn eq(&self, other: &Self) -> bool {
        self.key.ct_eq(&other.key).into()
    }
}

impl Eq for WebhookSecret {}

impl FromStr for WebhookSecret {
    type Err = SecretError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl<'de> Deserialize<'de> for WebhookSecret {
    /// From the `whsec_<base64>` string (configuration files). There is deliberately no
    /// `Serialize`: write [`WebhookSecret::expose_secret`] explicitly.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The raw signature bytes of one delivery under one secret.
fn signature_bytes(secret: &WebhookSecret, msg_id: &str, timestamp: u64, body: &[u8]) -> [u8; 32] {
    let ts = timestamp.to_string();
    secret.mac(&[msg_id.as_bytes(), b".", ts.as_bytes(), b".", body])
}

/// The signature of one delivery: `v1,<base64(HMAC-SHA256(secret, "{msg_id}.{timestamp}.{body}"))>`.
pub fn sign(secret: &WebhookSecret, msg_id: &str, timestamp: u64, body: &[u8]) -> String {
    format!(
        "{SIGNATURE_VERSION},{}",
        BASE64.encode(signature_bytes(secret, msg_id, timestamp, body))
    )
}

/// The three headers of one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookHeaders {
    /// `webhook-id`.
    pub id: String,
    /// `webhook-timestamp` (Unix seconds).
    pub timestamp: u64,
    /// `webhook-signature` (one or more `v1,<base64>` separated by spaces).
    pub signature: String,
}

impl WebhookHeaders {
    /// `(name, value)` pairs, for any HTTP client.
    pub fn pairs(&self) -> [(&'static str, String); 3] {
        [
            (HEADER_ID, self.id.clone()),
            (HEADER_TIMESTAMP, self.timestamp.to_string()),
            (HEADER_SIGNATURE, self.signature.clone()),
        ]
    }

    /// The headers as an [`http::HeaderMap`] (what reqwest and axum use). Fails only when the
    /// id contains characters that are not allowed in a header value.
    pub fn to_header_map(&self) -> Result<http::HeaderMap, http::header::InvalidHeaderValue> {
        let mut map = http::HeaderMap::with_capacity(3);
        for (name, value) in self.pairs() {
            map.insert(name, http::HeaderValue::from_str(&value)?);
        }
        Ok(map)
    }
}

/// The headers of one delivery signed with `secret`.
pub fn headers(
    secret: &WebhookSecret,
    msg_id: &str,
    timestamp: u64,
    body: &[u8],
) -> WebhookHeaders {
    headers_rotating(std::slice::from_ref(secret), msg_id, timestamp, body)
}

/// The headers of one delivery signed with every secret in `secrets` (during a rotation the
/// sender signs with the new and the old secret, and receivers accept either).
pub fn headers_rotating(
    secrets: &[WebhookSecret],
    msg_id: &str,
    timestamp: u64,
    body: &[u8],
) -> WebhookHeaders {
    let signature = secrets
        .iter()
        .map(|s| sign(s, msg_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ");
    WebhookHeaders {
        id: msg_id.to_owned(),
        timestamp,
        signature,
    }
}

/// Read access to request headers by (case-insensitive) name, so [`verify`] accepts whatever
/// the receiving framework hands over.
pub trait HeaderLookup {
    /// The value of header `name`, if present and valid UTF-8.
    fn header(&self, name: &str) -> Option<&str>;
}

impl HeaderLookup for http::HeaderMap {
    fn header(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| v.to_str().ok())
    }
}

impl<K: AsRef<str>, V: AsRef<str>, const N: usize> HeaderLookup for [(K, V); N] {
    fn header(&self, name: &str) -> Option<&str> {
        self.as_slice().header(name)
    }
}

impl<K: AsRef<str>, V: AsRef<str>> HeaderLookup for [(K, V)] {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.as_ref().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }
}

impl<K: AsRef<str>, V: AsRef<str>> HeaderLookup for Vec<(K, V)> {
    fn header(&self, name: &str) -> Option<&str> {
        self.as_slice().header(name)
    }
}

impl<V: AsRef<str>, S: std::hash::BuildHasher> HeaderLookup for HashMap<String, V, S> {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }
}

/// Why a delivery was rejected. Answer it with a 4xx (400 or 401); the `Display` text names
/// the problem without revealing anything about the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookVerifyError {
    /// No secret was given to verify with.
    #[error("no webhook secret configured")]
    NoSecrets,
    /// A required header is absent or empty.
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// `webhook-id` is too long or holds control characters.
    #[error("webhook-id is malformed")]
    BadId,
    /// `webhook-timestamp` is not a decimal integer of Unix seconds.
    #[error("webhook-timestamp {0:?} is not a Unix time in seconds")]
    BadTimestamp(String),
    /// The timestamp is older than the tolerance allows (a replay, or a very late delivery).
    #[error("webhook-timestamp {timestamp} is more than {tolerance_secs}s before now ({now})")]
    TooOld {
        /// The delivery's timestamp.
        timestamp: u64,
        /// The receiver's clock.
        now: u64,
        /// The tolerance, in seconds.
        tolerance_secs: u64,
    },
    /// The timestamp is further in the future than the tolerance allows.
    #[error("webhook-timestamp {timestamp} is more than {tolerance_secs}s after now ({now})")]
    TooNew {
        /// The delivery's timestamp.
        timestamp: u64,
        /// The receiver's clock.
        now: u64,
        /// The tolerance, in seconds.
        tolerance_secs: u64,
    },
    /// The signature header holds no `v1,<base64>` entry at all.
    #[error("webhook-signature holds no v1 signature")]
    NoV1Signature,
    /// No signature matches any of the secrets.
    #[error("no webhook signature matches")]
    NoMatchingSignature,
    /// The body is not the expected JSON event ([`verify_event`] only).
    #[error("webhook body is not a valid event: {0}")]
    Payload(String),
}

/// A delivery whose signature and timestamp checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedEvent {
    /// `webhook-id` (deduplicate on it).
    pub id: String,
    /// `webhook-timestamp`.
    pub timestamp: u64,
    /// Index, in the `secrets` given to [`verify`], of the secret that matched (a receiver can
    /// tell when senders have moved to the new secret of a rotation).
    pub secret_index: usize,
}

fn required<'a, H: HeaderLookup + ?Sized>(
    headers: &'a H,
    name: &'static str,
) -> Result<&'a str, WebhookVerifyError> {
    headers
        .header(name)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or(WebhookVerifyError::MissingHeader(name))
}

fn parse_timestamp(text: &str) -> Result<u64, WebhookVerifyError> {
    let bad = || WebhookVerifyError::BadTimestamp(text.chars().take(32).collect());
    if text.len() > 20 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    text.parse::<u64>().map_err(|_| bad())
}

/// Verifies one delivery: headers present, timestamp within `tolerance` of `now` (Unix
/// seconds, either direction), and at least one `v1` signature in the (space-separated)
/// `webhook-signature` list equal, in constant time, to the HMAC under one of `secrets`.
/// Entries of other versions are ignored. `body` must be the raw bytes as received.
pub fn verify<H: HeaderLookup + ?Sized>(
    secrets: &[WebhookSecret],
    headers: &H,
    body: &[u8],
    now: u64,
    tolerance: Duration,
) -> Result<VerifiedEvent, WebhookVerifyError> {
    if secrets.is_empty() {
        return Err(WebhookVerifyError::NoSecrets);
    }
    let id = required(headers, HEADER_ID)?;
    if id.len() > MAX_ID_LEN || id.chars().any(char::is_control) {
        return Err(WebhookVerifyError::BadId);
    }
    let timestamp = parse_timestamp(required(headers, HEADER_TIMESTAMP)?)?;
    let signatures = required(headers, HEADER_SIGNATURE)?;

    let tolerance_secs = tolerance.as_secs();
    if now.saturating_sub(timestamp) > tolerance_secs {
        return Err(WebhookVerifyError::TooOld {
            timestamp,
            now,
            tolerance_secs,
        });
    }
    if timestamp.saturating_sub(now) > tolerance_secs {
        return Err(WebhookVerifyError::TooNew {
            timestamp,
            now,
            tolerance_secs,
        });
    }

    let candidates: Vec<Vec<u8>> = signatures
        .split_ascii_whitespace()
        .take(MAX_SIGNATURES)
        .filter_map(|entry| entry.split_once(','))
        .filter(|(version, _)| *version == SIGNATURE_VERSION)
        .filter_map(|(_, encoded)| BASE64.decode(encoded).ok())
        .collect();
    if candidates.is_empty() {
        return Err(WebhookVerifyError::NoV1Signature);
    }
    for (secret_index, secret) in secrets.iter().enumerate() {
        let expected = signature_bytes(secret, id, timestamp, body);
        // Every candidate is compared (no early exit inside a secret's comparisons).
        let matched = candidates.iter().fold(subtle::Choice::from(0u8), |acc, c| {
            acc | expected.as_slice().ct_eq(c.as_slice())
        });
        if bool::from(matched) {
            return Ok(VerifiedEvent {
                id: id.to_owned(),
                timestamp,
                secret_index,
            });
        }
    }
    Err(WebhookVerifyError::NoMatchingSignature)
}

/// [`verify`], then parses the body as a [`WebhookEvent`] and checks that its `id` is the
/// `webhook-id` (so a valid signature over one event cannot be presented as another).
pub fn verify_event<H: HeaderLookup + ?Sized>(
    secrets: &[WebhookSecret],
    headers: &H,
    body: &[u8],
    now: u64,
    tolerance: Duration,
) -> Result<(VerifiedEvent, WebhookEvent), WebhookVerifyError> {
    let verified = verify(secrets, headers, body, now, tolerance)?;
    let event: WebhookEvent =
        serde_json::from_slice(body).map_err(|e| WebhookVerifyError::Payload(e.to_string()))?;
    if event.id != verified.id {
        return Err(WebhookVerifyError::Payload(format!(
            "event id {:?} is not the webhook-id {:?}",
            event.id, verified.id
        )));
    }
    Ok((verified, event))
}

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

/// Receivers' deduplication on the webhook id.
///
/// Deliveries are at-least-once: the operator retries until it sees a 2xx, and a 2xx that is
/// lost on the way back means the same event arrives again (same `webhook-id`, new timestamp
/// and signature). Process an id once:
///
/// 1. [`verify`] first (never record unverified ids);
/// 2. [`first_seen`](Self::first_seen): `false` → answer 2xx and do nothing;
/// 3. process; if processing fails, [`forget`](Self::forget) the id and answer non-2xx so that
///    the retry is processed.
///
/// Keep ids for at least as long as the sender retries (days); a database table with a unique
/// key on the id, written in the same transaction as the event's effects, is the robust
/// implementation. [`MemoryDeduplicator`] suits a single process and tests.
pub trait Deduplicator {
    /// Records `id` at `now` (Unix seconds); `true` when it was not recorded before.
    fn first_seen(&self, id: &str, now: u64) -> bool;
    /// Removes `id` (its processing failed and a retry must be processed).
    fn forget(&self, id: &str);
}

/// An in-memory [`Deduplicator`] that keeps ids for a retention period.
#[derive(Debug)]
pub struct MemoryDeduplicator {
    retention_secs: u64,
    seen: Mutex<HashMap<String, u64>>,
}

impl MemoryDeduplicator {
    /// Keeps ids for `retention` (at least the sender's retry horizon).
    pub fn new(retention: Duration) -> Self {
        Self {
            retention_secs: retention.as_secs(),
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Ids currently remembered.
    pub fn len(&self) -> usize {
        self.seen.lock().map(|s| s.len()).unwrap_or(0)
    }

    /// Whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for MemoryDeduplicator {
    /// Three days of retention (the operator retries for about 24 hours).
    fn default() -> Self {
        Self::new(Duration::from_secs(3 * 86_400))
    }
}

impl Deduplicator for MemoryDeduplicator {
    fn first_seen(&self, id: &str, now: u64) -> bool {
        let mut seen = match self.seen.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let retention = self.retention_secs;
        seen.retain(|_, at| now.saturating_sub(*at) <= retention);
        match seen.entry(id.to_owned()) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(now);
                true
            }
        }
    }

    fn forget(&self, id: &str) {
        let mut seen = match self.seen.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        seen.remove(id);
    }
}
