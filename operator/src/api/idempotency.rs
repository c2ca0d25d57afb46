//! `Idempotency-Key` on every POST (IETF httpapi draft), scoped per merchant.
//!
//! The header is a structured-field string (`Idempotency-Key: "8e03978e-…"`); a bare token
//! (`Idempotency-Key: 8e03978e-…`) is accepted too. Keys are 1–255 visible ASCII characters.
//! The fingerprint of a request is its method, path (with query) and body bytes.
//!
//! | state of the key | answer |
//! |---|---|
//! | header missing | `400 idempotency_key_missing` |
//! | malformed (empty, too long, bad characters) | `400 invalid_request` |
//! | new (or expired) | the request runs; its response is stored |
//! | completed, same fingerprint | the stored status and body, byte for byte, with `Idempotent-Replayed: true` |
//! | completed or in flight, other fingerprint | `422 idempotency_key_reused` |
//! | in flight, same fingerprint | `409 idempotency_key_in_flight` |
//!
//! What is stored: every 2xx and 4xx response, errors included, as the draft asks. A 5xx is
//! **not** stored: the key is released so a retry runs again. 5xx answers are transient
//! (`chain_unavailable`: nothing was sent; `internal`: an unexpected failure) and the engine's
//! actions are themselves idempotent per payment, so re-running is safe and more useful than
//! replaying an outage for the key's whole retention.
//!
//! The handler runs in its own task: a client that hangs up does not cancel an action half way,
//! and its response is still stored for the retry. A process that dies mid-request leaves the key
//! in flight until `idempotency.in_flight_timeout_secs` (at least [`MIN_IN_FLIGHT_LOCK`], 60 s,
//! which outlasts the longest authorize `wait`), after which a retry takes it over.
//! Keys are kept `idempotency.retention_hours` (≥ 24 h) after first use, then forgotten
//! ([`Store::idempotency_expire`], run by [`expire_task`]).

use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use super::auth::CurrentMerchant;
use super::errors::{ApiError, json_response};
use crate::service::ErrorCode;
use crate::store::{IdempotencyBegin, Store, request_fingerprint};

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// The response header set on replays.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// Longest key accepted.
pub const MAX_KEY_LEN: usize = 255;
/// The shortest in-flight lock used, whatever the configuration says: longer than the longest
/// authorize `wait` ([`super::routes::MAX_WAIT_SECS`]) plus a margin.
pub const MIN_IN_FLIGHT_LOCK: Duration = Duration::from_secs(super::routes::MAX_WAIT_SECS + 10);

/// How keys are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdempotencySettings {
    /// How long a key (and its stored response) is kept after first use.
    pub retention: Duration,
    /// How long a request may stay in flight before a retry may take its key over.
    pub in_flight_timeout: Duration,
}

impl Default for IdempotencySettings {
    fn default() -> Self {
        IdempotencySettings {
            retention: Duration::from_secs(24 * 3600),
            in_flight_timeout: Duration::from_secs(60),
        }
    }
}

impl From<&crate::config::IdempotencyConfig> for IdempotencySettings {
    fn from(c: &crate::config::IdempotencyConfig) -> Self {
        IdempotencySettings {
            retention: Duration::from_secs(c.retention_hours.saturating_mul(3600)),
            in_flight_timeout: Duration::from_secs(c.in_flight_timeout_secs),
        }
    }
}

/// What the middleware needs.
#[derive(Clone)]
pub struct IdempotencyState {
    /// Where keys live.
    pub store: Store,
    /// Retention and lock.
    pub settings: IdempotencySettings,
    /// Largest body read.
    pub body_limit: usize,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Parses the `Idempotency-Key` header: a structured-field string (`"…"`, with `\"` and `\\`
/// escapes) or, leniently, a bare token.
pub fn parse_key(headers: &HeaderMap) -> Result<String, ApiError> {
    let mut values = headers.get_all(HEADER).iter();
    let Some(value) = values.next() else {
        return Err(ApiError::new(
            ErrorCode::IdempotencyKeyMissing,
            "Idempotency-Key header is required on POST",
        ));
    };
    if values.next().is_some() {
        return Err(ApiError::invalid_request(
            "more than one Idempotency-Key header",
        ));
    }
    let text = value
        .to_str()
        .map_err(|_| ApiError::invalid_request("Idempotency-Key must be visible ASCII"))?
        .trim();
    let key = if let Some(quoted) = text.strip_prefix('"') {
        parse_sf_string(quoted)?
    } else {
        if !text.bytes().all(is_token_byte) {
            return Err(ApiError::invalid_request(
                "Idempotency-Key must be a quoted string (\"…\") or a token of visible ASCII",
            ));
        }
        text.to_owned()
    };
    if key.is_empty() {
        return Err(ApiError::invalid_request("Idempotency-Key is empty"));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(ApiError::invalid_request(format!(
            "Idempotency-Key is longer than {MAX_KEY_LEN} characters"
        )));
    }
    Ok(key)
}

/// The rest of a structured-field string after its opening quote.
fn parse_sf_string(rest: &str) -> Result<String, ApiError> {
    let bad =
        || ApiError::invalid_request("Idempotency-Key is not a valid structured-field string");
    let mut out = String::with_capacity(rest.len());
    let mut chars = rest.chars();
    loop {
        match chars.next() {
            None => return Err(bad()),
            Some('"') => break,
            Some('\\') => match chars.next() {
                Some(c @ ('"' | '\\')) => out.push(c),
                _ => return Err(bad()),
            },
            Some(c) if (' '..='~').contains(&c) => out.push(c),
            Some(_) => return Err(bad()),
        }
    }
    if chars.next().is_some() {
        return Err(bad());
    }
    Ok(out)
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_graphic() && !matches!(b, b'"' | b'\\' | b',' | b';')
}

fn replay(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = json_response(status, body.into_bytes());
    response
        .headers_mut()
        .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    response
}

/// Middleware for POST routes (after authentication): see the module docs.
pub async fn idempotent(
    State(state): State<IdempotencyState>,
    req: Request,
    next: Next,
) -> Response {
    let Some(CurrentMerchant(merchant)) = req.extensions().get::<CurrentMerchant>().cloned() else {
        return ApiError::new(ErrorCode::Unauthorized, "not authenticated").into_response();
    };
    let key = match parse_key(req.headers()) {
        Ok(key) => key,
        Err(e) => return e.into_response(),
    };
    let (parts, body) = req.into_parts();
    // Any failure to read the body within the limit is answered 413: it is nearly always the
    // limit, and a client whose connection broke does not read the answer.
    let bytes = match to_bytes(body, state.body_limit).await {
        Ok(bytes) => bytes,
        Err(_) => return ApiError::payload_too_large(state.body_limit).into_response(),
    };
    let path = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned());
    let fingerprint = request_fingerprint(parts.method.as_str(), &path, &bytes);
    let begun = state
        .store
        .idempotency_begin(
            merchant.id,
            &key,
            &fingerprint,
            ms(state.settings.retention),
            ms(state.settings.in_flight_timeout.max(MIN_IN_FLIGHT_LOCK)),
        )
        .await;
    match begun {
        Err(e) => ApiError::from(e).into_response(),
        Ok(IdempotencyBegin::InFlight) => ApiError::new(
            ErrorCode::IdempotencyKeyInFlight,
            "a request with this Idempotency-Key is still being processed; retry later",
        )
        .into_response(),
        Ok(IdempotencyBegin::Mismatch) => ApiError::new(
            ErrorCode::IdempotencyKeyReused,
            "this Idempotency-Key was used for a different request",
        )
        .into_response(),
        Ok(IdempotencyBegin::Completed {
            response_status,
            response_body,
        }) => {
            tracing::debug!(key = %key, "idempotent replay");
            replay(response_status, response_body)
        }
        Ok(IdempotencyBegin::Started) => {
            let req = Request::from_parts(parts, Body::from(bytes));
            let store = state.store.clone();
            let merchant_id = merchant.id;
            let task_key = key.clone();
            let task = tokio::spawn(
                async move {
                    let response = next.run(req).await;
                    finish(&store, merchant_id, &task_key, response).await
                }
                .instrument(tracing::Span::current()),
            );
            match task.await {
                Ok(response) => response,
                Err(e) => {
                    tracing::error!(error = %e, "handler task failed");
                    if let Err(e) = state.store.idempotency_release(merchant.id, &key).await {
                        tracing::error!(error = %e, "cannot release idempotency key");
                    }
                    ApiError::internal().into_response()
                }
            }
        }
    }
}

/// Stores (or releases) the key for `response` and gives the response back.
async fn finish(store: &Store, merchant_id: uuid::Uuid, key: &str, response: Response) -> Response {
    let (parts, body) = response.into_parts();
    let bytes = match to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::error!(error = %e, "cannot read response body");
            release(store, merchant_id, key).await;
            return ApiError::internal().into_response();
        }
    };
    let text = std::str::from_utf8(&bytes).ok();
    match text {
        Some(text) if !parts.status.is_server_error() => {
            if let Err(e) = store
                .idempotency_complete(merchant_id, key, parts.status.as_u16(), text)
                .await
            {
                // The action happened; the key stays in flight until its lock runs out.
                tracing::error!(error = %e, "cannot store idempotent response");
            }
        }
        _ => release(store, merchant_id, key).await,
    }
    Response::from_parts(parts, Body::from(bytes))
}

async fn release(store: &Store, merchant_id: uuid::Uuid, key: &str) {
    if let Err(e) = store.idempotency_release(merchant_id, key).await {
        tracing::error!(error = %e, "cannot release idempotency key");
    }
}

/// Deletes expired keys every `every` until `shutdown` resolves.
pub async fn expire_task(
    store: Store,
    every: Duration,
    shutdown: impl std::future::Future<Output = ()> + Send,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tick.tick() => match store.idempotency_expire().await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(expired = n, "idempotency keys expired"),
                Err(e) => tracing::warn!(error = %e, "idempotency expiry failed"),
            },
        }
    }
}
