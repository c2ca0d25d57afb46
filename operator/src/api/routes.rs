//! Handlers of the merchant endpoints and of the operational ones (`/healthz`, `/readyz`,
//! `/metrics`).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRequest, FromRequestParts, RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::ApiState;
use super::auth::CurrentMerchant;
use super::errors::{ApiBody, ApiError, ApiPath, ApiQuery, json, service_json};
use crate::lifecycle::PaymentStatus;
use crate::service::{AuthorizeRequest, CaptureRequest, PaymentService, RefundRequest};
use crate::store::Merchant;

/// Longest `wait` accepted on authorize, in seconds. Kept below the idempotency in-flight lock
/// ([`super::idempotency::MIN_IN_FLIGHT_LOCK`]) so a retry cannot take over the key of a request
/// that is still legitimately waiting.
pub use x402_escrow_types::api::MAX_WAIT_SECS;

/// Every route the router serves, as `(method, path template)`; the OpenAPI file documents each.
pub const ROUTES: &[(&str, &str)] = &[
    ("post", "/v1/payments/authorize"),
    ("post", "/v1/payments/{id}/capture"),
    ("post", "/v1/payments/{id}/void"),
    ("post", "/v1/payments/{id}/refund"),
    ("get", "/v1/payments/{id}"),
    ("get", "/v1/payments"),
    ("get", "/v1/reserve"),
    ("get", "/v1/reserve/statement"),
    ("get", "/v1/events"),
    ("get", "/v1/merchant"),
    ("post", "/v1/merchant/api-key/rotate"),
    ("get", "/v1/webhook"),
    ("patch", "/v1/webhook"),
    ("post", "/v1/webhook/secret/rotate"),
    ("get", "/v1/webhook/deliveries"),
    ("post", "/v1/webhook/deliveries/{id}/redeliver"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
];

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| {
            let mime = mime.trim();
            mime.eq_ignore_ascii_case("application/json")
                || (mime.len() > 5
                    && mime[..mime.len() - 5].contains('/')
                    && mime.to_ascii_lowercase().ends_with("+json"))
        })
}

/// Parses a JSON body. `empty_ok`: an empty body (with or without a content type) reads as `{}`.
pub(super) fn parse_json<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: &[u8],
    empty_ok: bool,
) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) && empty_ok {
        return serde_json::from_slice(b"{}")
            .map_err(|e| ApiError::invalid_request(format!("invalid JSON body: {e}")));
    }
    if !is_json(headers) {
        return Err(ApiError::invalid_request(
            "expected Content-Type: application/json",
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid_request(format!("invalid JSON body: {e}")))
}

/// Query of `POST /v1/payments/authorize`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeQuery {
    /// Seconds to wait for the hold to be on chain (overrides the body's `wait`).
    pub wait: Option<u64>,
}

/// A `wait` in seconds, refused above [`MAX_WAIT_SECS`].
fn wait_param(seconds: Option<u64>) -> Result<Option<Duration>, ApiError> {
    match seconds {
        Some(s) if s > MAX_WAIT_SECS => Err(ApiError::invalid_request(format!(
            "wait must be at most {MAX_WAIT_SECS} seconds"
        ))),
        other => Ok(other.map(Duration::from_secs)),
    }
}

#[derive(Deserialize)]
struct WaitField {
    #[serde(default)]
    wait: Option<u64>,
}

/// `POST /v1/payments/authorize` → `201` Payment (`authorized`, or any settled status) or `202`
/// Payment (`authorizing` / `charging`: the wait ran out).
pub async fn authorize<S: PaymentService>(
    State(state): State<ApiState<S>>,
    CurrentMerchant(merchant): CurrentMerchant,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<AuthorizeQuery>,
    ApiBody(body): ApiBody,
) -> Response {
    let mut request: AuthorizeRequest = match parse_json(&headers, &body, false) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let body_wait = serde_json::from_slice::<WaitField>(&body)
        .ok()
        .and_then(|w| w.wait);
    request.wait = match wait_param(query.wait.or(body_wait)) {
        Ok(wait) => wait,
        Err(e) => return e.into_response(),
    };
    let key = super::idempotency::parse_key(&headers).ok();
    match state
        .service
        .authorize(&merchant, request, key.as_deref())
        .await
    {
        Ok(view) => {
            let status = match view.status {
                PaymentStatus::Authorizing | PaymentStatus::Charging => StatusCode::ACCEPTED,
                _ => StatusCode::CREATED,
            };
            json(status, &view)
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// What an action on one payment (`capture`, `void`, `refund`) extracts, in this order: the
/// service, the calling merchant, the payment id of the path, and the JSON body `T` (see
/// [`parse_json`]; with `EMPTY_OK`, an empty body reads as `{}`).
pub struct PaymentCall<S, T, const EMPTY_OK: bool> {
    /// The service.
    pub service: Arc<S>,
    /// The calling merchant.
    pub merchant: Arc<Merchant>,
    /// The payment (`{id}` of the path).
    pub id: Uuid,
    /// The request body.
    pub body: T,
}

impl<S, T, const EMPTY_OK: bool> FromRequest<ApiState<S>> for PaymentCall<S, T, EMPTY_OK>
where
    S: PaymentService,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &ApiState<S>) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let CurrentMerchant(merchant) =
            CurrentMerchant::from_request_parts(&mut parts, state).await?;
        let ApiPath(id) = ApiPath::<Uuid>::from_request_parts(&mut parts, state).await?;
        let headers = parts.headers.clone();
        let ApiBody(bytes) = ApiBody::from_request(Request::from_parts(parts, body), state).await?;
        Ok(PaymentCall {
            service: Arc::clone(&state.service),
            merchant,
            id,
            body: parse_json(&headers, &bytes, EMPTY_OK)?,
        })
    }
}

/// `POST /v1/payments/{id}/capture` `{amount?}` → Payment.
pub async fn capture<S: PaymentService>(req: PaymentCall<S, CaptureRequest, true>) -> Response {
    let result = req.service.capture(&req.merchant, req.id, req.body).await;
    service_json(StatusCode::OK, result)
}

pub use x402_escrow_types::VoidRequest;

/// `POST /v1/payments/{id}/void` (empty or `{}`) → Payment.
pub async fn void<S: PaymentService>(req: PaymentCall<S, VoidRequest, true>) -> Response {
    let result = req.service.void(&req.merchant, req.id).await;
    service_json(StatusCode::OK, result)
}

/// `POST /v1/payments/{id}/refund` `{amount}` → Payment.
pub async fn refund<S: PaymentService>(req: PaymentCall<S, RefundRequest, false>) -> Response {
    let result = req.service.refund(&req.merchant, req.id, req.body).await;
    service_json(StatusCode::OK, result)
}

/// Query of `GET /v1/payments/{id}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetQuery {
    /// Seconds to wait for an in-flight payment to settle (a long poll).
    pub wait: Option<u64>,
}

/// `GET /v1/payments/{id}[?wait=s]` → Payment; with `wait`, answered once an in-flight payment
/// settles or the wait runs out.
pub async fn get_payment<S: PaymentService>(
    State(state): State<ApiState<S>>,
    CurrentMerchant(merchant): CurrentMerchant,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<GetQuery>,
) -> Response {
    let wait = match wait_param(query.wait) {
        Ok(wait) => wait,
        Err(e) => return e.into_response(),
    };
    service_json(StatusCode::OK, state.service.get(&merchant, id, wait).await)
}

/// `GET /v1/merchant` → what the operator accepts from the calling merchant.
pub async fn get_merchant<S: PaymentService>(
    State(state): State<ApiState<S>>,
    CurrentMerchant(merchant): CurrentMerchant,
) -> Response {
    json(StatusCode::OK, &state.service.terms(&merchant))
}

pub use x402_escrow_types::query::{DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT};
pub use x402_escrow_types::{EventList, EventQuery, PaymentList, PaymentQuery, QueryError};

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> ApiError {
        ApiError::new(e.code, e.message)
    }
}

/// `GET /v1/payments[?cursor&limit&status&created_after&created_before&request_id&payer&
/// min_amount&max_amount]` → `{payments: [...], next_cursor}`, newest first (see
/// [`PaymentQuery`]). `?request_id=` alone is the old lookup by request id (its first page).
pub async fn list_payments<S: PaymentService>(
    State(state): State<ApiState<S>>,
    CurrentMerchant(merchant): CurrentMerchant,
    RawQuery(raw): RawQuery,
) -> Response {
    let query = match PaymentQuery::parse(raw.as_deref().unwrap_or("")) {
        Ok(query) => query,
        Err(e) => return ApiError::from(e).into_response(),
    };
    service_json(
        StatusCode::OK,
        state.service.list_payments(&merchant, &query).await,
    )
}

/// `GET /v1/events[?after&limit&payment_id&type]` → `{events: [...], next_cursor}`: the
/// merchant's webhook events, oldest first, each exactly as its webhook body (see
/// [`EventQuery`]).
pub async fn list_events<S: PaymentService>(
    State(state): State<ApiState<S>>,
    CurrentMerchant(merchant): CurrentMerchant,
    RawQuery(raw): RawQuery,
) -> Response {
    let query = match EventQuery::parse(raw.as_deref().unwrap_or("")) {
        Ok(query) => query,
        Err(e) => return ApiError::from(e).into_response(),
    };
    match state.store.page_webhook_events(merchant.id, &query).await {
        Ok(page) => json(
            StatusCode::OK,
            &EventList {
                events: page.items.into_iter().map(|e| e.payload).collect(),
                next_cursor: page.next.map(|c| c.encode()),
            },
        ),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// `GET /healthz`: the process is up.
pub async fn healthz() -> Response {
    json(StatusCode::OK, &serde_json::json!({ "status": "ok" }))
}

/// `GET /readyz`: `200` when every readiness check passes, `503` otherwise; the body lists each
/// check as `"ok"` or its error.
pub async fn readyz<S: PaymentService>(State(state): State<ApiState<S>>) -> Response {
    let report = state.readiness.check().await;
    let status = if report.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json(status, &report)
}

/// `GET /metrics`: refreshes the store-backed gauges, then renders every metric.
pub async fn metrics<S: PaymentService>(State(state): State<ApiState<S>>) -> Response {
    if let Err(e) = state
        .metrics
        .refresh(&state.store, state.tx_queue_signer)
        .await
    {
        tracing::warn!(error = %e, "metrics refresh failed; serving the last values");
    }
    state.metrics.response()
}
