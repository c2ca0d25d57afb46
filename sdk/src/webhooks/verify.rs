//! The receiver's side: headers, timestamp tolerance and constant-time signature checks.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use subtle::ConstantTimeEq;

use super::sign::signature_bytes;
use super::{
    HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, MAX_ID_LEN, MAX_SIGNATURES, SIGNATURE_VERSION,
    WebhookEvent, WebhookSecret,
};

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
