//! What the layer puts into request extensions for handlers.

use alloy::primitives::{Address, B256};
use axum::http::HeaderMap;

use crate::amount::Amount;
use crate::network::Network;

/// The request id header (read from the request, set on every response).
pub const X_REQUEST_ID: &str = "x-request-id";

/// The id of the HTTP request being paid for: the client's `X-Request-Id` when it is 1–128
/// visible ASCII characters, otherwise a generated UUID.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestId(pub String);

impl RequestId {
    /// From the request headers, or a new UUID.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let given = headers
            .get(X_REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()));
        match given {
            Some(id) => Self(id.to_owned()),
            None => Self(uuid::Uuid::new_v4().to_string()),
        }
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

/// The authorized payment of the current request (in request extensions while the handler
/// runs: `Extension<PaymentContext>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentContext {
    /// The operator's payment id.
    pub payment_id: String,
    /// The escrow's payment hash.
    pub payment_hash: B256,
    /// The amount held, in atomic units.
    pub amount: Amount,
    /// The payer (ERC-3009 `from`).
    pub payer: Option<Address>,
    /// `auth-capture` or `exact`.
    pub scheme: String,
    /// The network.
    pub network: Network,
    /// The request id.
    pub request_id: RequestId,
}
