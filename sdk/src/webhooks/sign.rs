//! The sender's side: the `v1` signature of one delivery and the three headers that carry it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::{HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, SIGNATURE_VERSION, WebhookSecret};

/// The raw signature bytes of one delivery under one secret.
pub(super) fn signature_bytes(
    secret: &WebhookSecret,
    msg_id: &str,
    timestamp: u64,
    body: &[u8],
) -> [u8; 32] {
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
