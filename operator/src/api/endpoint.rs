//! The merchant's own settings: its webhook endpoint (`GET`/`PATCH /v1/webhook`), signing-secret
//! rotation (`POST /v1/webhook/secret/rotate`), the delivery log and redelivery
//! (`GET /v1/webhook/deliveries`, `POST /v1/webhook/deliveries/{id}/redeliver`) and API key
//! rotation (`POST /v1/merchant/api-key/rotate`). Read and written straight through the store:
//! nothing here moves money, so none of it reaches the engine.
//!
//! Rotations are not idempotent by key: each call makes a new secret (shown once, and never
//! written to the idempotency table, which keeps responses in clear). The previous secret or key
//! stays valid for the grace period, so a retried rotation leaves the caller with a working
//! secret either way.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use uuid::Uuid;
use x402_escrow_types::endpoint::{
    ApiKeyRotated, DEFAULT_ROTATION_GRACE_SECS, MAX_DELIVERY_PAGE, MAX_ROTATION_GRACE_SECS,
    MAX_WEBHOOK_URL_LEN, RotateRequest, UpdateWebhookEndpoint, WebhookDeliveryList,
    WebhookDeliveryView, WebhookEndpointView, WebhookSecretRotated,
};

use super::ApiState;
use super::auth::CurrentMerchant;
use super::errors::{ApiBody, ApiError, ApiPath, ApiQuery, json};
use super::routes::parse_json;
use crate::service::{ErrorCode, PaymentService};
use crate::store::{DeliveryLogEntry, DeliveryStatus, Merchant, StoreError};

/// Delivery log page size when `limit` is not given.
pub const DEFAULT_DELIVERY_PAGE: u32 = 50;

/// The view of the merchant's endpoint at `now`.
pub fn endpoint_view(merchant: &Merchant, now: i64) -> WebhookEndpointView {
    WebhookEndpointView {
        url: merchant.webhook_url.clone(),
        enabled: merchant.webhook_disabled_at.is_none(),
        disabled_at: merchant.webhook_disabled_at,
        secret_set: merchant.webhook_secret.is_some(),
        previous_secret_expires_at: merchant
            .webhook_previous_secret_expires_at
            .filter(|at| *at > now),
    }
}

/// The view of one delivery.
pub fn delivery_view(entry: &DeliveryLogEntry) -> WebhookDeliveryView {
    let d = &entry.delivery;
    WebhookDeliveryView {
        id: d.id.to_string(),
        event_id: d.event_id.to_string(),
        event_type: entry.event_type.clone(),
        payment_id: entry.payment_id.map(|p| p.to_string()),
        sequence: entry.sequence,
        status: d.status.as_str().to_owned(),
        attempts: d.attempts,
        next_attempt_at: d.next_attempt_at,
        response_status: d.response_status,
        last_error: d.last_error.clone(),
        created_at: d.created_at,
        updated_at: d.updated_at,
        delivered_at: d.delivered_at,
    }
}

/// A webhook URL the operator will post to: absolute `http(s)`, with a host, within
/// [`MAX_WEBHOOK_URL_LEN`] bytes.
pub fn check_webhook_url(url: &str) -> Result<(), ApiError> {
    let refuse = |why: &str| {
        Err(ApiError::new(
            ErrorCode::InvalidWebhookUrl,
            format!("webhook url {why}"),
        ))
    };
    if url.len() > MAX_WEBHOOK_URL_LEN {
        return refuse(&format!("is longer than {MAX_WEBHOOK_URL_LEN} bytes"));
    }
    match reqwest::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.host().is_some() => {
            Ok(())
        }
        Ok(_) => refuse("must be an absolute http or https URL with a host"),
        Err(e) => refuse(&format!("does not parse: {e}")),
    }
}

/// The grace period of a rotation, in ms (400 `invalid_request` above the maximum).
fn grace_ms(request: &RotateRequest) -> Result<i64, ApiError> {
    let secs = request.grace_seconds.unwrap_or(DEFAULT_ROTATION_GRACE_SECS);
    if secs > MAX_ROTATION_GRACE_SECS {
        return Err(ApiError::invalid_request(format!(
            "graceSeconds must be at most {MAX_ROTATION_GRACE_SECS}"
        )));
    }
    // At most seven days: always fits.
    Ok(i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX))
}

fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound { entity, key } => ApiError::not_found(format!("no {entity} {key}")),
        StoreError::Conflict { detail, .. } => ApiError::new(ErrorCode::InvalidState, detail),
        other => ApiError::from(other),
    }
}

/// `GET /v1/webhook` → [`WebhookEndpointView`].
pub async fn get_webhook<S: PaymentService>(
    State(state): State<ApiState<S>>,
    CurrentMerchant(merchant): CurrentMerchant,
) -> Response {
    json(
        StatusCode::OK,
        &endpoint_view(&merchant, state.store.now_ms()),
    )
}

/// `PATCH /v1/webhook` [`UpdateWebhookEndpoint`] → [`WebhookEndpointView`].
pub async fn update_webhook<S: PaymentService>(
    State(state): State<ApiState<S>>,
    CurrentMerchant(merchant): CurrentMerchant,
    headers: HeaderMap,
    ApiBody(body): ApiBody,
) -> Response {
    let request: UpdateWebhookEndpoint = match parse_json(&headers, &body, false) {
        Ok(request) => request,
        Err(e) => return e.into_response(),
    };
    if request.url.is_none() && request.enabled.is_none() {
        return ApiError::invalid_request("name a url, enabled, or both").into_response();
    }
    if let Some(url) = &request.url
        && let Err(e) = check_webhook_url(url)
    {
        return e.into_response();
    }
    match state
        .store
        .update_webhook_endpoint(merchant.id, request.url, request.enabled)
        .await
    {
        Ok(updated) => {
            tracing::info!(
                enabled = updated.webhook_disabled_at.is_none(),
                "webhook endpoint updated"
            );
            json(
                StatusCode::OK,
                &endpoint_view(&updated, state.store.now_ms()),
            )
        }
        Err(e) => store_error(e).into_response(),
    }
}

/// The grace period a rotation's body asks for (an empty body: the default).
fn rotation_grace(headers: &HeaderMap, body: &[u8]) -> Result<i64, ApiError> {
    parse_json::<RotateRequest>(headers, body, true).and_then(|r| grace_ms(&r))
}

/// `POST /v1/webhook/secret/rotate` [`RotateRequest`] → [`WebhookSecretRotated`] (the new
/// secret, shown once).
pub async fn rotate_webhook_secret<S: PaymentService>(
    State(state): State<ApiState<S>>,
    CurrentMerchant(merchant): CurrentMerchant,
    headers: HeaderMap,
    ApiBody(body): ApiBody,
) -> Response {
    let grace = match rotation_grace(&headers, &body) {
        Ok(grace) => grace,
        Err(e) => return e.into_response(),
    };
    match state.store.rotate_webhook_secret(merchant.id, grace).await {
        Ok((secret, previous_secret_expires_at)) => {
            tracing::info!(?previous_secret_expires_at, "webhook secret rotated");
            json(
                StatusCode::OK,
                &WebhookSecretRotated {
                    secret: secret.expose().to_owned(),
                    previous_secret_expires_at,
                },
            )
        }
        Err(e) => store_error(e).into_response(),
    }
}

/// `POST /v1/merchant/api-key/rotate` [`RotateRequest`] → [`ApiKeyRotated`] (the new key,
/// shown once).
pub async fn rotate_api_key<S: PaymentService>(
    State(state): State<ApiState<S>>,
    CurrentMerchant(merchant): CurrentMerchant,
    headers: HeaderMap,
    ApiBody(body): ApiBody,
) -> Response {
    let grace = match rotation_grace(&headers, &body) {
        Ok(grace) => grace,
        Err(e) => return e.into_response(),
    };
    match state.store.rotate_api_key(merchant.id, grace).await {
        Ok((key, previous_key_expires_at)) => {
            tracing::info!(?previous_key_expires_at, "API key rotated");
            json(
                StatusCode::OK,
                &ApiKeyRotated {
                    api_key: key.expose().to_owned(),
                    previous_key_expires_at,
                },
            )
        }
        Err(e) => store_error(e).into_response(),
    }
}

/// Query of `GET /v1/webhook/deliveries`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    /// `pending`, `delivered`, `failed` or `disabled`.
    pub status: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1..=[`MAX_DELIVERY_PAGE`] (default [`DEFAULT_DELIVERY_PAGE`]).
    pub limit: Option<u32>,
}

/// `GET /v1/webhook/deliveries[?status=&cursor=&limit=]` → [`WebhookDeliveryList`], newest
/// first.
pub async fn list_deliveries<S: PaymentService>(
    State(state): State<ApiState<S>>,
    CurrentMerchant(merchant): CurrentMerchant,
    ApiQuery(query): ApiQuery<DeliveryQuery>,
) -> Response {
    let limit = query.limit.unwrap_or(DEFAULT_DELIVERY_PAGE);
    if limit == 0 || limit > MAX_DELIVERY_PAGE {
        return ApiError::new(
            ErrorCode::InvalidLimit,
            format!("limit must be between 1 and {MAX_DELIVERY_PAGE}"),
        )
        .into_response();
    }
    let status = match query.status.as_deref().map(str::parse::<DeliveryStatus>) {
        None => None,
        Some(Ok(status)) => Some(status),
        Some(Err(_)) => {
            return ApiError::new(
                ErrorCode::InvalidStatusFilter,
                "status must be pending, delivered, failed or disabled",
            )
            .into_response();
        }
    };
    let cursor = match query.cursor.as_deref().map(Uuid::parse_str) {
        None => None,
        Some(Ok(c)) => Some(c),
        Some(Err(_)) => {
            return ApiError::new(
                ErrorCode::InvalidCursor,
                "cursor is not one this API gave out",
            )
            .into_response();
        }
    };
    // One more than asked tells whether another page follows.
    match state
        .store
        .page_deliveries(merchant.id, status, cursor, limit + 1)
        .await
    {
        Ok(mut entries) => {
            let more = entries.len() > limit as usize;
            entries.truncate(limit as usize);
            let next_cursor = more
                .then(|| entries.last().map(|e| e.delivery.id.to_string()))
                .flatten();
            json(
                StatusCode::OK,
                &WebhookDeliveryList {
                    deliveries: entries.iter().map(delivery_view).collect(),
                    next_cursor,
                },
            )
        }
        Err(e) => store_error(e).into_response(),
    }
}

/// `POST /v1/webhook/deliveries/{id}/redeliver` → `202` [`WebhookDeliveryView`]: queued again,
/// due now, with a fresh retry schedule (the same event and `webhook-id`: receivers that
/// deduplicate by id see it as a repeat).
pub async fn redeliver<S: PaymentService>(
    State(state): State<ApiState<S>>,
    CurrentMerchant(merchant): CurrentMerchant,
    ApiPath(id): ApiPath<Uuid>,
) -> Response {
    match state.store.redeliver(merchant.id, id).await {
        Ok(entry) => {
            tracing::info!(delivery_id = %id, "webhook redelivery queued");
            json(StatusCode::ACCEPTED, &delivery_view(&entry))
        }
        Err(e) => store_error(e).into_response(),
    }
}
