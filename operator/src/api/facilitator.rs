//! The x402 facilitator API (`GET /supported`, `POST /verify`, `POST /settle`) beside the
//! merchant REST API, so middleware written for x402 facilitators can use this operator. See the
//! spec's "Facilitator API" and "Idempotency in the ecosystem" sections.
//!
//! Mount with [`routes`] (merge into the main router before its `with_state`); every route is
//! authenticated with the merchant's Bearer API key, like `/v1/*`. Bodies may be v1 or v2
//! (`x402Version`); v1 bodies get v1-shaped settle responses.
//!
//! `payment-identifier` (`paymentPayload.extensions["payment-identifier"].info.id`): per merchant
//! and endpoint, the same id with the same payload answers the cached result; the same id with a
//! different payload is refused with 409. Pending settlements are not cached (a retry looks
//! again). Answers are stored in the `idempotency_keys` table under a reserved key namespace
//! ([`payment_identifier_key`]), so they survive restarts and are shared by instances on one
//! database.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Extension, FromRequest, FromRequestParts, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;
use x402_escrow_sdk::facilitator::{
    FacilitatorRequest, SettleResponse, SupportedResponse, VerifyRequest, VerifyResponse, reasons,
};
use x402_escrow_sdk::wire::extensions::validate_payment_id;
use x402_escrow_types::ErrorEnvelope;

use super::ApiState;
use super::auth::{self, CurrentMerchant};
use super::errors::{ApiError, json_response};
use super::idempotency::REPLAYED_HEADER;
use crate::service::{ErrorCode, PaymentService};
use crate::store::{IdempotencyBegin, Merchant, Store};

/// What a facilitator backend offers (implemented by the engine).
pub trait Facilitator: Send + Sync + 'static {
    /// `GET /supported`.
    fn supported(&self) -> SupportedResponse;

    /// `POST /verify` (no gas, no state).
    fn verify(
        &self,
        merchant: &Merchant,
        request: &VerifyRequest,
    ) -> impl Future<Output = VerifyResponse> + Send;

    /// `POST /settle`, waiting up to `wait` before answering `settlement_pending`.
    fn settle(
        &self,
        merchant: &Merchant,
        request: &VerifyRequest,
        wait: Duration,
    ) -> impl Future<Output = SettleResponse> + Send;
}

impl Facilitator for crate::engine::Engine {
    fn supported(&self) -> SupportedResponse {
        self.facilitator_supported()
    }

    async fn verify(&self, merchant: &Merchant, request: &VerifyRequest) -> VerifyResponse {
        self.facilitator_verify(merchant, request).await
    }

    async fn settle(
        &self,
        merchant: &Merchant,
        request: &VerifyRequest,
        wait: Duration,
    ) -> SettleResponse {
        self.facilitator_settle(merchant, request, wait).await
    }
}

/// Settings of the facilitator routes (an `Extension` layer on them).
#[derive(Debug, Clone)]
pub struct FacilitatorSettings {
    /// How long `/settle` waits for the chain before answering `settlement_pending`.
    pub settle_wait: Duration,
    /// How long a `payment-identifier` is remembered.
    pub retention: Duration,
}

impl FacilitatorSettings {
    /// Settings with the given settle wait (and a 24 h retention).
    pub fn new(settle_wait: Duration) -> FacilitatorSettings {
        FacilitatorSettings {
            settle_wait,
            retention: Duration::from_secs(24 * 3600),
        }
    }

    /// How long a call may stay in flight before a retry takes its identifier over: the settle
    /// wait plus a margin (a process that died mid-call leaves its record behind).
    fn in_flight_lock(&self) -> Duration {
        self.settle_wait + Duration::from_secs(30)
    }
}

impl Default for FacilitatorSettings {
    fn default() -> Self {
        FacilitatorSettings::new(Duration::from_secs(30))
    }
}

/// The facilitator routes, authenticated with the merchant API key through `store`. Merge
/// into the main router before its `with_state`:
/// `.merge(facilitator::routes::<S>(state.store.clone(), FacilitatorSettings::default()))`.
pub fn routes<S: PaymentService + Facilitator>(
    store: Store,
    settings: FacilitatorSettings,
) -> Router<ApiState<S>> {
    Router::new()
        .route("/supported", get(supported::<S>))
        .route("/verify", post(verify::<S>))
        .route("/settle", post(settle::<S>))
        .route_layer(from_fn_with_state(store, auth::require_merchant))
        .layer(Extension(settings))
}

async fn supported<S: PaymentService + Facilitator>(
    State(state): State<ApiState<S>>,
    _merchant: CurrentMerchant,
) -> Json<SupportedResponse> {
    Json(state.service.supported())
}

/// A parsed body: the v2 request, whether it came as v1, and the payload fingerprint.
struct Parsed {
    request: VerifyRequest,
    v1: bool,
    payment_id: Option<String>,
    fingerprint: [u8; 32],
}

fn parse(body: &[u8]) -> Result<Parsed, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid_request(format!("body is not JSON: {e}")))?;
    let fingerprint: [u8; 32] = Sha256::digest(
        serde_json::to_vec(value.get("paymentPayload").unwrap_or(&Value::Null)).unwrap_or_default(),
    )
    .into();
    let request: FacilitatorRequest = serde_json::from_value(value)
        .map_err(|e| ApiError::invalid_request(format!("invalid facilitator request: {e}")))?;
    let v1 = request.version() == 1;
    let request = request
        .into_v2()
        .map_err(|e| ApiError::invalid_request(format!("invalid v1 request: {e}")))?;
    let payment_id = request.payment_payload.payment_id();
    if let Some(id) = &payment_id {
        validate_payment_id(id)
            .map_err(|e| ApiError::invalid_request(format!("payment-identifier id {id:?}: {e}")))?;
    }
    Ok(Parsed {
        request,
        v1,
        payment_id,
        fingerprint,
    })
}

/// The `idempotency_keys` key of a `payment-identifier` id on one endpoint. The namespace is
/// reserved: its tabs cannot occur in an `Idempotency-Key` of the REST API (visible ASCII and
/// spaces only), so the two never collide within a merchant.
pub fn payment_identifier_key(call: &str, id: &str) -> String {
    format!("x402\tpayment-identifier\t{call}\t{id}")
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Whether an answer is final enough to replay: not pending, not an unexpected (transient)
/// error, which a retry should try again.
fn cacheable(reason: Option<&str>) -> bool {
    !matches!(
        reason,
        Some(
            reasons::SETTLEMENT_PENDING
                | reasons::UNEXPECTED_SETTLE_ERROR
                | reasons::UNEXPECTED_VERIFY_ERROR
        )
    )
}

fn conflict(id: &str) -> Response {
    let body = ErrorEnvelope::new(
        ErrorCode::PaymentIdentifierConflict,
        format!("payment-identifier {id:?} was already used with a different payload"),
    );
    json_response(
        StatusCode::CONFLICT,
        serde_json::to_vec(&body).unwrap_or_default(),
    )
}

fn ok_json(value: Value) -> Response {
    (StatusCode::OK, Json(value)).into_response()
}

/// Runs one facilitator call under the `payment-identifier` extension, persisted in the
/// `idempotency_keys` table (so a retry after a restart, or on another instance, still gets the
/// original answer): the same id with the same payload replays the stored answer (with
/// `Idempotent-Replayed: true`), the same id with another payload is 409, and otherwise `run`
/// answers (its JSON and whether that answer is definitive), which is stored if so. A transient
/// answer releases the id so that a retry runs again; a retry while the first call is still
/// running runs too (the engine's actions are idempotent per payment and per authorization).
async fn with_payment_identifier<F>(
    store: &Store,
    settings: &FacilitatorSettings,
    merchant: Uuid,
    call: &'static str,
    parsed: &Parsed,
    run: F,
) -> Response
where
    F: Future<Output = (Value, bool)>,
{
    let Some(id) = parsed.payment_id.as_deref() else {
        return ok_json(run.await.0);
    };
    let key = payment_identifier_key(call, id);
    let fingerprint = hex::encode(parsed.fingerprint);
    let begun = store
        .idempotency_begin(
            merchant,
            &key,
            &fingerprint,
            ms(settings.retention),
            ms(settings.in_flight_lock()),
        )
        .await;
    let owned = match begun {
        Ok(IdempotencyBegin::Completed { response_body, .. }) => {
            match serde_json::from_str::<Value>(&response_body) {
                Ok(value) => {
                    let mut response = ok_json(value);
                    response
                        .headers_mut()
                        .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
                    return response;
                }
                Err(e) => {
                    tracing::error!(error = %e, "stored payment-identifier answer is not JSON");
                    return ApiError::internal().into_response();
                }
            }
        }
        Ok(IdempotencyBegin::Mismatch) => return conflict(id),
        Ok(IdempotencyBegin::InFlight) => false,
        Ok(IdempotencyBegin::Started) => true,
        Err(e) => {
            tracing::error!(error = %e, "payment-identifier lookup failed");
            return ApiError::internal().into_response();
        }
    };
    let (value, definitive) = run.await;
    if owned {
        let outcome = if definitive {
            let body = serde_json::to_string(&value).unwrap_or_default();
            store
                .idempotency_complete(merchant, &key, 200, &body)
                .await
                .map(|_| ())
        } else {
            store.idempotency_release(merchant, &key).await.map(|_| ())
        };
        if let Err(e) = outcome {
            tracing::warn!(error = %e, "storing the payment-identifier answer failed");
        }
    }
    ok_json(value)
}

/// What `/verify` and `/settle` extract, in this order: the route settings, the calling
/// merchant and the parsed body (with the router's state).
struct FacilitatorCall<S> {
    state: ApiState<S>,
    settings: FacilitatorSettings,
    merchant: Arc<Merchant>,
    parsed: Parsed,
}

impl<S: PaymentService + Facilitator> FromRequest<ApiState<S>> for FacilitatorCall<S> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &ApiState<S>) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let Extension(settings) =
            Extension::<FacilitatorSettings>::from_request_parts(&mut parts, state)
                .await
                .map_err(IntoResponse::into_response)?;
        let CurrentMerchant(merchant) = CurrentMerchant::from_request_parts(&mut parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let body = axum::body::Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        let parsed = parse(&body).map_err(IntoResponse::into_response)?;
        Ok(FacilitatorCall {
            state: state.clone(),
            settings,
            merchant,
            parsed,
        })
    }
}

impl<S> FacilitatorCall<S> {
    /// Answers `call` under the `payment-identifier` extension (see
    /// [`with_payment_identifier`]).
    async fn answer(
        &self,
        call: &'static str,
        run: impl Future<Output = (Value, bool)>,
    ) -> Response {
        let (store, merchant) = (&self.state.store, self.merchant.id);
        with_payment_identifier(store, &self.settings, merchant, call, &self.parsed, run).await
    }
}

async fn verify<S: PaymentService + Facilitator>(call: FacilitatorCall<S>) -> Response {
    let run = async {
        let request = &call.parsed.request;
        let response = call.state.service.verify(&call.merchant, request).await;
        let value = serde_json::to_value(&response).unwrap_or(Value::Null);
        (value, cacheable(response.invalid_reason.as_deref()))
    };
    call.answer("verify", run).await
}

async fn settle<S: PaymentService + Facilitator>(call: FacilitatorCall<S>) -> Response {
    let run = async {
        let (request, wait) = (&call.parsed.request, call.settings.settle_wait);
        let response = call
            .state
            .service
            .settle(&call.merchant, request, wait)
            .await;
        let value = if call.parsed.v1 {
            response.to_v1_json()
        } else {
            serde_json::to_value(&response).unwrap_or(Value::Null)
        };
        (value, cacheable(response.error_reason.as_deref()))
    };
    call.answer("settle", run).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payment_identifier_keys_cannot_collide_with_rest_keys() {
        let key = payment_identifier_key("settle", "pay_0123456789abcdef");
        assert!(key.contains('\t'));
        assert_ne!(
            key,
            payment_identifier_key("verify", "pay_0123456789abcdef")
        );
        // The REST API refuses any key with a tab, quoted or bare.
        for header in [format!("\"{key}\""), key.clone()] {
            let mut headers = axum::http::HeaderMap::new();
            if let Ok(value) = HeaderValue::from_str(&header) {
                headers.insert(super::super::idempotency::HEADER, value);
                assert!(super::super::idempotency::parse_key(&headers).is_err());
            }
        }
    }

    #[test]
    fn transient_answers_are_not_replayed() {
        assert!(cacheable(None));
        assert!(cacheable(Some("invalid_payload")));
        assert!(!cacheable(Some(reasons::SETTLEMENT_PENDING)));
        assert!(!cacheable(Some(reasons::UNEXPECTED_SETTLE_ERROR)));
    }

    #[test]
    fn parses_v2_and_rejects_garbage() {
        assert!(parse(b"not json").is_err());
        assert!(parse(br#"{"x402Version":2}"#).is_err());
    }
}
