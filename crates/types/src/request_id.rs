//! The id of an HTTP request, carried from the merchant's request through the operator to its
//! events, webhooks and logs.

use http::HeaderMap;

/// The request id header (read from a request, set on every response).
pub const X_REQUEST_ID: &str = "x-request-id";

/// The id of an HTTP request: the client's `X-Request-Id` when it is 1–128 visible ASCII
/// characters, otherwise a generated UUID. Put in request extensions by the operator's API and
/// by the merchant layer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestId(pub String);

impl RequestId {
    /// `text` as a request id, when it is 1–128 visible ASCII characters (no spaces).
    pub fn parse(text: &str) -> Option<Self> {
        (!text.is_empty() && text.len() <= 128 && text.bytes().all(|b| b.is_ascii_graphic()))
            .then(|| Self(text.to_owned()))
    }

    /// The merchant layer's rule: the request's `X-Request-Id` (surrounding whitespace
    /// trimmed) when it is acceptable, or a new random (v4) UUID.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        headers
            .get(X_REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .and_then(Self::parse)
            .unwrap_or_else(|| Self(uuid::Uuid::new_v4().to_string()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
