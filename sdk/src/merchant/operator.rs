//! A client of the operator's REST API (`/v1/payments/…`), as a merchant uses it, and of its
//! x402 facilitator endpoints (`/verify`, `/settle`), which the layer uses for the `exact` scheme
//! (a plain transfer, not an escrow payment, so it has no place in the payments API).
//!
//! Every POST carries an `Idempotency-Key` (a structured-field string) derived deterministically
//! from what the call is about and the action, so a retry after a lost response replays the
//! operator's first answer instead of acting twice. Transient failures (connection errors, 5xx,
//! `409 idempotency_key_in_flight`) are retried with bounded exponential backoff; other 4xx never.

use std::time::Duration;

use alloy::primitives::Address;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use x402_escrow_types::{
    AuthorizeRequest, CaptureRequest, ErrorCode, ErrorEnvelope, EventList, EventQuery, PaymentList,
    PaymentQuery, PaymentView, RefundRequest, VoidRequest,
};

use crate::amount::Amount;
use crate::facilitator::{SettleResponse, VerifyRequest, VerifyResponse};
use crate::wire::codec::IDEMPOTENCY_KEY;
use crate::wire::{PaymentPayload, PaymentRequirements};

/// The operator's code for "same key, first request still running" (retried).
pub const IDEMPOTENCY_KEY_IN_FLIGHT: &str = ErrorCode::IdempotencyKeyInFlight.as_str();
/// The operator's code for "same key, different request".
pub const IDEMPOTENCY_KEY_REUSED: &str = ErrorCode::IdempotencyKeyReused.as_str();

/// The longest long poll the operator accepts on `GET /v1/payments/{id}?wait=`
/// ([`x402_escrow_types::api::MAX_WAIT_SECS`]); [`OperatorClient::get_settled`] caps its wait here.
pub const MAX_GET_WAIT: Duration = Duration::from_secs(x402_escrow_types::api::MAX_WAIT_SECS);

/// Why an operator call failed.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// The operator answered with an error (after any retries); `code` is its stable code
    /// (`invalid_signature`, `insufficient_funds`, …).
    #[error("operator refused ({status}): {code}: {message}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// Stable machine-readable code.
        code: String,
        /// Human-readable detail.
        message: String,
        /// The x402 reason of a refused payment (`invalid_auth_capture_evm_*`), when given.
        reason: Option<String>,
    },
    /// The operator could not be reached or the connection failed (after retries).
    #[error("operator unreachable: {0}")]
    Transport(String),
    /// The operator's answer was not the expected JSON.
    #[error("cannot decode the operator's answer: {0}")]
    Decode(String),
}

impl OperatorError {
    /// The operator's stable code, when it answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Rejected { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Whether a retry may succeed (transport errors, 5xx, idempotency key in flight).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Transport(_) => true,
            Self::Rejected { status, code, .. } => {
                *status >= 500 || (*status == 409 && code == IDEMPOTENCY_KEY_IN_FLIGHT)
            }
            Self::Decode(_) => false,
        }
    }
}

/// A payment as the operator shows it: the API's [`PaymentView`] (unknown fields are ignored;
/// fields an older operator did not send take their defaults).
pub type OperatorPayment = PaymentView;

/// `POST /v1/payments/authorize`.
#[derive(Debug, Clone)]
pub struct AuthorizeCall {
    /// The buyer's payment (v2 shape).
    pub payment_payload: PaymentPayload,
    /// The requirements it answers.
    pub payment_requirements: PaymentRequirements,
    /// The merchant's request id.
    pub request_id: Option<String>,
    /// What the idempotency key is derived from (the payment-identifier id, else the request id).
    pub idempotency_scope: String,
    /// Seconds the operator may wait for the hold to be on chain (`None`: its default).
    pub wait_seconds: Option<u64>,
}

/// Bounded exponential backoff for transient failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OperatorRetry {
    /// Total attempts (1 = no retry).
    pub attempts: u32,
    /// Delay before the first retry; doubled each time.
    pub base_delay: Duration,
    /// Largest delay.
    pub max_delay: Duration,
}

impl Default for OperatorRetry {
    fn default() -> Self {
        Self {
            attempts: 4,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
        }
    }
}

/// The idempotency key of `action` on `scope`: `"x402m-<action>-<hex>"` quoted as a
/// structured-field string, where `<hex>` is a SHA-256 prefix of the scope (so any scope text
/// yields a valid key).
pub fn idempotency_key(action: &str, scope: &str) -> String {
    let digest = Sha256::digest(scope.as_bytes());
    let mut hex = String::with_capacity(40);
    for b in &digest[..20] {
        hex.push_str(&format!("{b:02x}"));
    }
    format!("\"x402m-{action}-{hex}\"")
}

/// A client of the operator's merchant API (cheap to clone).
#[derive(Debug, Clone)]
pub struct OperatorClient {
    http: reqwest::Client,
    base_url: String,
    api_key: String,
    retry: OperatorRetry,
}

impl OperatorClient {
    /// A client for the operator at `base_url` (e.g. `http://127.0.0.1:8402`) with the
    /// merchant's API key.
    pub fn new(base_url: impl Into<String>, api_key: impl Into<String>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap_or_default();
        Self::with_http(http, base_url, api_key)
    }

    /// The same with a caller-built reqwest client.
    pub fn with_http(
        http: reqwest::Client,
        base_url: impl Into<String>,
        api_key: impl Into<String>,
    ) -> Self {
        Self {
            http,
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            api_key: api_key.into(),
            retry: OperatorRetry::default(),
        }
    }

    /// Replaces the retry policy.
    pub fn with_retry(mut self, retry: OperatorRetry) -> Self {
        self.retry = retry;
        self
    }

    /// The operator's base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Verifies the payment and places the hold (`POST /v1/payments/authorize`).
    pub async fn authorize(&self, call: &AuthorizeCall) -> Result<OperatorPayment, OperatorError> {
        let body = AuthorizeRequest {
            payment_payload: &call.payment_payload,
            payment_requirements: &call.payment_requirements,
            request_id: call.request_id.clone(),
            wait: None,
        };
        let body = serde_json::to_vec(&body).map_err(|e| OperatorError::Decode(e.to_string()))?;
        let mut path = "/v1/payments/authorize".to_owned();
        if let Some(wait) = call.wait_seconds {
            path.push_str(&format!("?wait={wait}"));
        }
        let key = idempotency_key("authorize", &call.idempotency_scope);
        self.post(&path, body, &key).await
    }

    /// Captures `amount` (all that is capturable when `None`).
    pub async fn capture(
        &self,
        payment_id: &str,
        amount: Option<Amount>,
    ) -> Result<OperatorPayment, OperatorError> {
        let body = CaptureRequest {
            amount: amount.map(api_amount).transpose()?,
        };
        self.action(payment_id, "capture", &body).await
    }

    /// Releases the hold to the payer.
    pub async fn void(&self, payment_id: &str) -> Result<OperatorPayment, OperatorError> {
        self.action(payment_id, "void", &VoidRequest::default())
            .await
    }

    /// Refunds `amount` of a captured payment. The key covers the amount, so refunding the
    /// same amount twice needs distinct calls of [`refund_with_key`](Self::refund_with_key).
    pub async fn refund(
        &self,
        payment_id: &str,
        amount: Amount,
    ) -> Result<OperatorPayment, OperatorError> {
        self.refund_with_key(payment_id, amount, &format!("{payment_id}/{amount}"))
            .await
    }

    /// Refunds with a caller-chosen idempotency scope.
    pub async fn refund_with_key(
        &self,
        payment_id: &str,
        amount: Amount,
        scope: &str,
    ) -> Result<OperatorPayment, OperatorError> {
        let body = serde_json::to_vec(&RefundRequest {
            amount: api_amount(amount)?,
        })
        .map_err(|e| OperatorError::Decode(e.to_string()))?;
        let key = idempotency_key("refund", scope);
        self.post(&payment_path(payment_id, "refund"), body, &key)
            .await
    }

    /// Checks a payment without spending gas (`POST /verify`, the x402 facilitator API).
    pub async fn verify(&self, request: &VerifyRequest) -> Result<VerifyResponse, OperatorError> {
        self.facilitator("/verify", request).await
    }

    /// Settles a payment (`POST /settle`, the x402 facilitator API); for `exact` this is the
    /// `transferWithAuthorization`. Retrying the same body is safe: the operator answers a
    /// settled authorization with its original transaction. `settlement_pending` comes back as
    /// an answer (with the transaction hash), not as an error.
    pub async fn settle(&self, request: &VerifyRequest) -> Result<SettleResponse, OperatorError> {
        self.facilitator("/settle", request).await
    }

    async fn facilitator<T: DeserializeOwned>(
        &self,
        path: &str,
        request: &VerifyRequest,
    ) -> Result<T, OperatorError> {
        let body = serde_json::to_vec(request).map_err(|e| OperatorError::Decode(e.to_string()))?;
        let url = format!("{}{}", self.base_url, path);
        self.with_retries(|| {
            self.http
                .post(&url)
                .bearer_auth(&self.api_key)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
        })
        .await
    }

    /// What the operator accepts from this merchant (`GET /v1/merchant`): network, assets,
    /// escrows, signer, fee, the merchant's receivers and capture deadline, the operator's
    /// expiry margin. [`PaymentsConfig::from_terms`](super::PaymentsConfig::from_terms) turns it
    /// into a layer configuration.
    pub async fn terms(&self) -> Result<super::terms::MerchantTerms, OperatorError> {
        let url = format!("{}/v1/merchant", self.base_url);
        self.with_retries(|| self.http.get(&url).bearer_auth(&self.api_key))
            .await
    }

    /// The merchant's refund reserve (`GET /v1/reserve`): refunds are charged to it, and a
    /// refund it cannot cover is refused (`refund_reserve_insufficient`).
    pub async fn reserve(&self) -> Result<x402_escrow_types::ReserveView, OperatorError> {
        let url = format!("{}/v1/reserve", self.base_url);
        self.with_retries(|| self.http.get(&url).bearer_auth(&self.api_key))
            .await
    }

    /// One page of the reserve's ledger (`GET /v1/reserve/statement`), newest first: pass the
    /// previous page's `next_cursor` for the next one; `limit` 1..=200 (the operator's default
    /// is 50).
    pub async fn reserve_statement(
        &self,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<x402_escrow_types::ReserveStatement, OperatorError> {
        let mut query = Vec::new();
        if let Some(cursor) = cursor {
            // A cursor is an id the operator gave out; anything else is escaped byte by byte.
            let escaped: String = cursor
                .bytes()
                .map(|b| match b {
                    b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z' | b'-' => char::from(b).to_string(),
                    _ => format!("%{b:02X}"),
                })
                .collect();
            query.push(format!("cursor={escaped}"));
        }
        if let Some(limit) = limit {
            query.push(format!("limit={limit}"));
        }
        let url = match query.is_empty() {
            true => format!("{}/v1/reserve/statement", self.base_url),
            false => format!("{}/v1/reserve/statement?{}", self.base_url, query.join("&")),
        };
        self.with_retries(|| self.http.get(&url).bearer_auth(&self.api_key))
            .await
    }

    /// One payment.
    pub async fn get(&self, payment_id: &str) -> Result<OperatorPayment, OperatorError> {
        let url = format!("{}{}", self.base_url, payment_path(payment_id, ""));
        self.with_retries(|| self.http.get(&url).bearer_auth(&self.api_key))
            .await
    }

    /// `GET /v1/payments?…`: one page of this merchant's payments matching `filter`, newest
    /// first. To read on, call again with `filter.cursor` set from the page's `next_cursor`
    /// ([`x402_escrow_types::PageCursor::decode`]); `None` there means this was the last page.
    pub async fn list_payments(&self, filter: &PaymentQuery) -> Result<PaymentList, OperatorError> {
        let url = with_query(
            format!("{}/v1/payments", self.base_url),
            filter.to_query_string(),
        );
        self.with_retries(|| self.http.get(&url).bearer_auth(&self.api_key))
            .await
    }

    /// `GET /v1/events?…`: one page of this merchant's webhook events matching `filter`,
    /// oldest first, each as its webhook body.
    pub async fn list_events(&self, filter: &EventQuery) -> Result<EventList, OperatorError> {
        let url = with_query(
            format!("{}/v1/events", self.base_url),
            filter.to_query_string(),
        );
        self.with_retries(|| self.http.get(&url).bearer_auth(&self.api_key))
            .await
    }

    /// `GET /v1/payments/{id}?wait=…`: a long poll. The operator answers as soon as an in-flight
    /// payment settles, or once `wait` (whole seconds, at most [`MAX_GET_WAIT`]) runs out.
    pub async fn get_settled(
        &self,
        payment_id: &str,
        wait: Duration,
    ) -> Result<OperatorPayment, OperatorError> {
        let seconds = wait.min(MAX_GET_WAIT).as_secs();
        let url = format!(
            "{}{}?wait={seconds}",
            self.base_url,
            payment_path(payment_id, "")
        );
        self.with_retries(|| self.http.get(&url).bearer_auth(&self.api_key))
            .await
    }

    async fn action(
        &self,
        payment_id: &str,
        action: &str,
        body: &impl serde::Serialize,
    ) -> Result<OperatorPayment, OperatorError> {
        let body = serde_json::to_vec(body).map_err(|e| OperatorError::Decode(e.to_string()))?;
        let key = idempotency_key(action, payment_id);
        self.post(&payment_path(payment_id, action), body, &key)
            .await
    }

    async fn post(
        &self,
        path: &str,
        body: Vec<u8>,
        key: &str,
    ) -> Result<OperatorPayment, OperatorError> {
        let url = format!("{}{}", self.base_url, path);
        self.with_retries(|| {
            self.http
                .post(&url)
                .bearer_auth(&self.api_key)
                .header(IDEMPOTENCY_KEY, key)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
        })
        .await
    }

    async fn with_retries<T: DeserializeOwned>(
        &self,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<T, OperatorError> {
        let mut delay = self.retry.base_delay;
        let attempts = self.retry.attempts.max(1);
        let mut attempt = 1;
        loop {
            match send_once(request()).await {
                Err(error) if error.is_transient() && attempt < attempts => {
                    tracing::debug!(%error, attempt, "retrying operator call");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(self.retry.max_delay);
                    attempt += 1;
                }
                result => return result,
            }
        }
    }
}

/// The API's amount (`u128`: escrow amounts are `uint120`) of an x402 amount. A larger one is
/// refused as the operator would refuse it (`400 invalid_request`), without a round trip.
fn api_amount(amount: Amount) -> Result<x402_escrow_types::Amount, OperatorError> {
    x402_escrow_types::api::decimal::parse(&amount.to_string()).map_err(|message| {
        OperatorError::Rejected {
            status: ErrorCode::InvalidRequest.http_status(),
            code: ErrorCode::InvalidRequest.as_str().to_owned(),
            message,
            reason: None,
        }
    })
}

/// `url` with `?query` when the query is not empty.
fn with_query(url: String, query: String) -> String {
    if query.is_empty() {
        url
    } else {
        format!("{url}?{query}")
    }
}

fn payment_path(payment_id: &str, action: &str) -> String {
    // Payment ids are UUIDs; anything else is percent-encoded byte-wise to stay in the path.
    let mut id = String::with_capacity(payment_id.len());
    for b in payment_id.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            id.push(char::from(b));
        } else {
            id.push_str(&format!("%{b:02X}"));
        }
    }
    if action.is_empty() {
        format!("/v1/payments/{id}")
    } else {
        format!("/v1/payments/{id}/{action}")
    }
}

async fn send_once<T: DeserializeOwned>(
    request: reqwest::RequestBuilder,
) -> Result<T, OperatorError> {
    let response = request
        .send()
        .await
        .map_err(|e| OperatorError::Transport(e.to_string()))?;
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| OperatorError::Transport(e.to_string()))?;
    if status.is_success() {
        return serde_json::from_slice(&bytes).map_err(|e| OperatorError::Decode(e.to_string()));
    }
    let (code, message, reason) = match serde_json::from_slice::<ErrorEnvelope>(&bytes) {
        Ok(envelope) => (
            envelope.error.code,
            envelope.error.message,
            envelope.error.reason,
        ),
        Err(_) => (
            format!("http_{}", status.as_u16()),
            String::from_utf8_lossy(&bytes[..bytes.len().min(256)]).into_owned(),
            None,
        ),
    };
    Err(OperatorError::Rejected {
        status: status.as_u16(),
        code,
        message,
        reason,
    })
}

/// The payer of a payment payload (ERC-3009 or Permit2 `from`), when the scheme carries one.
pub(crate) fn payer_of(payload: &PaymentPayload) -> Option<Address> {
    payload.payload.payer()
}
