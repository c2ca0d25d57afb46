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
//! again). The cache is in-process ([`FacilitatorSettings::cache`]).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;
use x402_escrow_sdk::facilitator::{
    FacilitatorRequest, SettleResponse, SupportedResponse, VerifyRequest, VerifyResponse, reasons,
};
use x402_escrow_sdk::wire::extensions::validate_payment_id;

use super::ApiState;
use super::auth::{self, CurrentMerchant};
use super::errors::{ApiError, json_response};
use crate::service::PaymentService;
use crate::store::{Merchant, Store};

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

/// A cached answer for a `payment-identifier`: the payload fingerprint, and the response once
/// it is final.
#[derive(Debug, Clone)]
struct Cached {
    fingerprint: [u8; 32],
    response: Option<Value>,
    at: Instant,
}

/// Cache key: (merchant, endpoint, payment id).
type CacheKey = (Uuid, &'static str, String);

/// Settings of the facilitator routes (an `Extension` layer on them).
#[derive(Debug, Clone)]
pub struct FacilitatorSettings {
    /// How long `/settle` waits for the chain before answering `settlement_pending`.
    pub settle_wait: Duration,
    /// How long a `payment-identifier` is remembered.
    pub retention: Duration,
    /// `payment-identifier` results, in process.
    cache: Arc<Mutex<HashMap<CacheKey, Cached>>>,
}

impl FacilitatorSettings {
    /// Settings with the given settle wait.
    pub fn new(settle_wait: Duration) -> FacilitatorSettings {
        FacilitatorSettings {
            settle_wait,
            retention: Duration::from_secs(24 * 3600),
            cache: Arc::default(),
        }
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

enum Lookup {
    Hit(Value),
    Conflict,
    Miss,
}

fn lookup(settings: &FacilitatorSettings, key: &CacheKey, fingerprint: [u8; 32]) -> Lookup {
    let mut cache = settings.cache.lock().unwrap_or_else(|p| p.into_inner());
    match cache.get(key) {
        Some(c) if c.fingerprint != fingerprint => Lookup::Conflict,
        Some(Cached {
            response: Some(r), ..
        }) => Lookup::Hit(r.clone()),
        Some(_) => Lookup::Miss,
        None => {
            prune(&mut cache, settings.retention);
            cache.insert(
                key.clone(),
                Cached {
                    fingerprint,
                    response: None,
                    at: Instant::now(),
                },
            );
            Lookup::Miss
        }
    }
}

fn remember(settings: &FacilitatorSettings, key: CacheKey, fingerprint: [u8; 32], response: Value) {
    let mut cache = settings.cache.lock().unwrap_or_else(|p| p.into_inner());
    cache.insert(
        key,
        Cached {
            fingerprint,
            response: Some(response),
            at: Instant::now(),
        },
    );
}

/// Forgets ids older than `retention` (checked once the cache has some size).
fn prune(cache: &mut HashMap<CacheKey, Cached>, retention: Duration) {
    if cache.len() >= 1024 {
        cache.retain(|_, c| c.at.elapsed() < retention);
    }
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
    let body = json!({"error": {
        "code": "payment_identifier_conflict",
        "message": format!("payment-identifier {id:?} was already used with a different payload"),
    }});
    json_response(
        StatusCode::CONFLICT,
        serde_json::to_vec(&body).unwrap_or_default(),
    )
}

fn ok_json(value: Value) -> Response {
    (StatusCode::OK, Json(value)).into_response()
}

/// Runs one facilitator call under the `payment-identifier` extension: the same id with the
/// same body replays the cached answer, the same id with another body is 409, and otherwise
/// `run` answers (its JSON and whether that answer is definitive), which is cached if so.
async fn with_payment_identifier<F>(
    settings: &FacilitatorSettings,
    merchant: Uuid,
    call: &'static str,
    parsed: &Parsed,
    run: F,
) -> Response
where
    F: Future<Output = (Value, bool)>,
{
    let key = parsed.payment_id.clone().map(|id| (merchant, call, id));
    if let Some(key) = &key {
        match lookup(settings, key, parsed.fingerprint) {
            Lookup::Hit(v) => return ok_json(v),
            Lookup::Conflict => return conflict(&key.2),
            Lookup::Miss => {}
        }
    }
    let (value, definitive) = run.await;
    if let Some(key) = key
        && definitive
    {
        remember(settings, key, parsed.fingerprint, value.clone());
    }
    ok_json(value)
}

async fn verify<S: PaymentService + Facilitator>(
    State(state): State<ApiState<S>>,
    Extension(settings): Extension<FacilitatorSettings>,
    CurrentMerchant(merchant): CurrentMerchant,
    body: axum::body::Bytes,
) -> Response {
    let parsed = match parse(&body) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    with_payment_identifier(&settings, merchant.id, "verify", &parsed, async {
        let response = state.service.verify(&merchant, &parsed.request).await;
        let value = serde_json::to_value(&response).unwrap_or(Value::Null);
        (value, cacheable(response.invalid_reason.as_deref()))
    })
    .await
}

async fn settle<S: PaymentService + Facilitator>(
    State(state): State<ApiState<S>>,
    Extension(settings): Extension<FacilitatorSettings>,
    CurrentMerchant(merchant): CurrentMerchant,
    body: axum::body::Bytes,
) -> Response {
    let parsed = match parse(&body) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    with_payment_identifier(&settings, merchant.id, "settle", &parsed, async {
        let response = state
            .service
            .settle(&merchant, &parsed.request, settings.settle_wait)
            .await;
        let value = if parsed.v1 {
            response.to_v1_json()
        } else {
            serde_json::to_value(&response).unwrap_or(Value::Null)
        };
        (value, cacheable(response.error_reason.as_deref()))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payment_identifier_cache() {
        let settings = FacilitatorSettings::default();
        let key: CacheKey = (Uuid::nil(), "settle", "pay_0123456789abcdef".into());
        assert!(matches!(lookup(&settings, &key, [1; 32]), Lookup::Miss));
        // In flight (no answer yet): same payload runs again, another payload conflicts.
        assert!(matches!(lookup(&settings, &key, [1; 32]), Lookup::Miss));
        assert!(matches!(lookup(&settings, &key, [2; 32]), Lookup::Conflict));
        remember(&settings, key.clone(), [1; 32], json!({"success": true}));
        assert!(matches!(lookup(&settings, &key, [1; 32]), Lookup::Hit(v) if v["success"] == true));
        assert!(matches!(lookup(&settings, &key, [2; 32]), Lookup::Conflict));
        // Another merchant or endpoint is another key.
        let other: CacheKey = (Uuid::max(), "settle", key.2.clone());
        assert!(matches!(lookup(&settings, &other, [2; 32]), Lookup::Miss));
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
