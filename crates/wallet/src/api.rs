//! The wallet's HTTP API (see `crates/wallet/openapi.yaml`).
//!
//! Payment keys authenticate with `Authorization: Bearer x402_wk_…`; the owner with the owner
//! token. Bodies are JSON, at most `max_request_body` bytes (`413 body_too_large`); every error
//! is `{"error": {"code", "message", "rule"?, "paymentId"?}}`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tracing::Instrument as _;
use x402_escrow_sdk::types::wallet::{
    AuditList, CreateKeyRequest, FetchRequest, KeyList, SignRequest, UpdateKeyRequest,
    WalletPaymentList,
};

use crate::error::WalletError;
use crate::keys;
use crate::metrics::CONTENT_TYPE;
use crate::service::{FetchOutcome, SignOutcome, Wallet};
use crate::store::KeyRow;

impl IntoResponse for WalletError {
    fn into_response(self) -> Response {
        if matches!(
            self,
            WalletError::Store(_) | WalletError::Internal(_) | WalletError::InjectedCrash(_)
        ) {
            tracing::error!(error = %self, "request failed");
        }
        let status =
            StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(self.envelope())).into_response()
    }
}

/// The router over `wallet`: the REST API and the owner's page ([`crate::owner`]).
pub fn router(wallet: Wallet) -> Router {
    let limit = wallet.config().max_request_body;
    Router::new()
        .route("/v1/fetch", post(fetch))
        .route("/v1/sign", post(sign))
        .route("/v1/payments", get(list_payments))
        .route("/v1/payments/{id}", get(get_payment))
        .route("/v1/payments/{id}/approve", post(approve))
        .route("/v1/payments/{id}/reject", post(reject))
        .route("/v1/keys", post(create_key).get(list_keys))
        .route("/v1/keys/{id}", get(get_key).patch(update_key))
        .route("/v1/keys/{id}/rotate", post(rotate_key))
        .route("/v1/keys/{id}/revoke", post(revoke_key))
        .route("/v1/keys/{id}/usage", get(usage))
        .route("/v1/audit", get(audit))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(wallet.clone())
        .merge(crate::owner::router(
            wallet.clone(),
            wallet.config().owner_page,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(wallet, observe))
}

/// A span per request carrying its request id, and the HTTP counter.
async fn observe(State(wallet): State<Wallet>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 128)
        .map_or_else(crate::store::new_id, str::to_owned);
    let span = tracing::info_span!("wallet_http", %request_id, method = %request.method(), %route);
    let response = next.run(request).instrument(span).await;
    wallet.metrics().http(&route, response.status().as_u16());
    response
}

fn bearer(headers: &HeaderMap) -> Result<&str, WalletError> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| WalletError::Unauthorized("missing Authorization: Bearer token".to_owned()))
}

/// Who is calling.
enum Caller {
    Owner,
    Key(Box<KeyRow>),
}

async fn caller(wallet: &Wallet, headers: &HeaderMap) -> Result<Caller, WalletError> {
    let token = bearer(headers)?;
    if wallet.is_owner(token) {
        return Ok(Caller::Owner);
    }
    Ok(Caller::Key(Box::new(wallet.authenticate(token).await?)))
}

async fn owner(wallet: &Wallet, headers: &HeaderMap) -> Result<(), WalletError> {
    match caller(wallet, headers).await? {
        Caller::Owner => Ok(()),
        Caller::Key(_) => Err(WalletError::Forbidden(
            "this endpoint needs the owner token".to_owned(),
        )),
    }
}

async fn payment_key(wallet: &Wallet, headers: &HeaderMap) -> Result<KeyRow, WalletError> {
    match caller(wallet, headers).await? {
        Caller::Key(key) => Ok(*key),
        Caller::Owner => Err(WalletError::Forbidden(
            "payments are made with a payment key, not the owner token".to_owned(),
        )),
    }
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, WalletError> {
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(value) => {
            let text = value
                .to_str()
                .ok()
                .map(|v| v.trim().trim_matches('"').to_owned())
                .filter(|v| !v.is_empty() && v.len() <= 255)
                .ok_or_else(|| {
                    WalletError::invalid(
                        "invalid_header",
                        "Idempotency-Key must be 1-255 visible characters".to_owned(),
                    )
                })?;
            Ok(Some(text))
        }
    }
}

/// A JSON body within the limit (`413 body_too_large`), strictly decoded (`400 invalid_body`).
fn json_body<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> Result<T, WalletError> {
    let bytes = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            WalletError::invalid("body_too_large", "the request body is too large".to_owned())
        } else {
            WalletError::invalid("invalid_body", rejection.body_text())
        }
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| WalletError::invalid("invalid_body", format!("request body: {e}")))
}

async fn fetch(
    State(wallet): State<Wallet>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, WalletError> {
    let key = payment_key(&wallet, &headers).await?;
    let idempotency = idempotency_key(&headers)?;
    let request: FetchRequest = json_body(body)?;
    Ok(match wallet.fetch(&key, idempotency, request).await? {
        FetchOutcome::Done(answer) => (StatusCode::OK, Json(*answer)).into_response(),
        FetchOutcome::Pending(payment) => pending_response(*payment),
    })
}

fn pending_response(payment: x402_escrow_sdk::types::wallet::WalletPaymentView) -> Response {
    let id = payment.id.clone();
    (
        StatusCode::ACCEPTED,
        Json(serde_json::json!({
            "error": {
                "code": "approval_pending",
                "message": format!(
                    "payment {id} of {} waits for the owner's approval; retry with the same \
                     Idempotency-Key once approved",
                    payment.amount
                ),
                "rule": "approval_threshold",
                "paymentId": id,
            },
            "payment": payment,
        })),
    )
        .into_response()
}

async fn sign(
    State(wallet): State<Wallet>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, WalletError> {
    let key = payment_key(&wallet, &headers).await?;
    let idempotency = idempotency_key(&headers)?;
    let request: SignRequest = json_body(body)?;
    Ok(match wallet.sign(&key, idempotency, request).await? {
        SignOutcome::Signed(answer) => (StatusCode::OK, Json(*answer)).into_response(),
        SignOutcome::Pending(payment) => pending_response(*payment),
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PageQuery {
    cursor: Option<String>,
    limit: Option<u32>,
    state: Option<String>,
    key_id: Option<String>,
    payment_id: Option<String>,
}

fn page_limit(limit: Option<u32>) -> Result<u32, WalletError> {
    match limit.unwrap_or(50) {
        n @ 1..=500 => Ok(n),
        n => Err(WalletError::invalid(
            "invalid_request",
            format!("limit {n} is not within 1..=500"),
        )),
    }
}

async fn list_payments(
    State(wallet): State<Wallet>,
    headers: HeaderMap,
    Query(query): Query<PageQuery>,
) -> Result<Json<WalletPaymentList>, WalletError> {
    let key_filter = match caller(&wallet, &headers).await? {
        Caller::Owner => query.key_id.clone(),
        Caller::Key(key) => {
            if query.key_id.as_ref().is_some_and(|k| *k != key.id) {
                return Err(WalletError::Forbidden(
                    "a payment key sees only its own payments".to_owned(),
                ));
            }
            Some(key.id)
        }
    };
    if let Some(state) = &query.state
        && state.parse::<crate::store::State>().is_err()
    {
        return Err(WalletError::invalid(
            "invalid_request",
            format!("unknown state {state:?}"),
        ));
    }
    let limit = page_limit(query.limit)?;
    let mut rows = wallet
        .store()
        .payments_page(
            key_filter.as_deref(),
            query.state.as_deref(),
            query.cursor.as_deref(),
            limit + 1,
        )
        .await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = more.then(|| rows.last().map(|r| r.id.clone())).flatten();
    Ok(Json(WalletPaymentList {
        payments: rows.iter().map(|r| r.view()).collect(),
        next_cursor,
    }))
}

async fn get_payment(
    State(wallet): State<Wallet>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, WalletError> {
    let who = caller(&wallet, &headers).await?;
    let row = wallet
        .store()
        .payment(&id)
        .await?
        .ok_or_else(|| WalletError::NotFound(format!("payment {id}")))?;
    if let Caller::Key(key) = who
        && key.id != row.key_id
    {
        return Err(WalletError::NotFound(format!("payment {id}")));
    }
    Ok(Json(row.view()).into_response())
}

async fn approve(
    State(wallet): State<Wallet>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, WalletError> {
    owner(&wallet, &headers).await?;
    Ok(Json(wallet.approve(&id).await?.view()).into_response())
}

async fn reject(
    State(wallet): State<Wallet>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, WalletError> {
    owner(&wallet, &headers).await?;
    Ok(Json(wallet.reject(&id).await?.view()).into_response())
}

async fn create_key(
    State(wallet): State<Wallet>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, WalletError> {
    owner(&wallet, &headers).await?;
    let request: CreateKeyRequest = json_body(body)?;
    if wallet.buyers().get(&request.buyer).is_none() {
        return Err(WalletError::invalid(
            "invalid_request",
            format!("buyer key {:?} is not loaded in this wallet", request.buyer),
        ));
    }
    let created = keys::create(wallet.store(), request).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

async fn list_keys(
    State(wallet): State<Wallet>,
    headers: HeaderMap,
) -> Result<Json<KeyList>, WalletError> {
    owner(&wallet, &headers).await?;
    let keys = wallet.store().keys().await?;
    Ok(Json(KeyList {
        keys: keys.iter().map(KeyRow::view).collect(),
    }))
}

async fn load_key(wallet: &Wallet, id: &str) -> Result<KeyRow, WalletError> {
    wallet
        .store()
        .key(id)
        .await?
        .ok_or_else(|| WalletError::NotFound(format!("key {id}")))
}

async fn get_key(
    State(wallet): State<Wallet>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, WalletError> {
    owner(&wallet, &headers).await?;
    Ok(Json(load_key(&wallet, &id).await?.view()).into_response())
}

async fn update_key(
    State(wallet): State<Wallet>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, WalletError> {
    owner(&wallet, &headers).await?;
    let request: UpdateKeyRequest = json_body(body)?;
    Ok(Json(keys::update(wallet.store(), &id, request).await?.view()).into_response())
}

async fn rotate_key(
    State(wallet): State<Wallet>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, WalletError> {
    owner(&wallet, &headers).await?;
    Ok(Json(keys::rotate(wallet.store(), &id).await?).into_response())
}

async fn revoke_key(
    State(wallet): State<Wallet>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, WalletError> {
    owner(&wallet, &headers).await?;
    Ok(Json(keys::revoke(wallet.store(), &id).await?.view()).into_response())
}

async fn usage(
    State(wallet): State<Wallet>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, WalletError> {
    let key = match caller(&wallet, &headers).await? {
        Caller::Owner => load_key(&wallet, &id).await?,
        Caller::Key(key) if key.id == id => *key,
        Caller::Key(_) => return Err(WalletError::NotFound(format!("key {id}"))),
    };
    Ok(Json(wallet.usage(&key).await?).into_response())
}

async fn audit(
    State(wallet): State<Wallet>,
    headers: HeaderMap,
    Query(query): Query<PageQuery>,
) -> Result<Json<AuditList>, WalletError> {
    owner(&wallet, &headers).await?;
    let limit = page_limit(query.limit)?;
    let mut entries = wallet
        .store()
        .audit_page(
            query.payment_id.as_deref(),
            query.cursor.as_deref(),
            limit + 1,
        )
        .await?;
    let more = entries.len() > limit as usize;
    entries.truncate(limit as usize);
    let next_cursor = more.then(|| entries.last().map(|e| e.id.clone())).flatten();
    Ok(Json(AuditList {
        entries,
        next_cursor,
    }))
}

async fn metrics(State(wallet): State<Wallet>) -> Result<Response, WalletError> {
    let text = wallet.metrics().render(wallet.store()).await?;
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response())
}
