//! The merchant layer against a fake operator (an axum server on 127.0.0.1:0 implementing
//! `/v1/payments/authorize` (a hold, or a charge for the `authorization` flow), `/{id}/capture`,
//! `/{id}/void`, `/{id}/refund` with idempotency-key replay, and the facilitator's `/verify` and
//! `/settle` for `exact`), paid by the SDK's BuyerClient or by hand-built payloads.

#![allow(clippy::result_large_err)]

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256, address};
use alloy::signers::local::PrivateKeySigner;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::{Value, json};
use support::serve;
use x402_escrow_sdk::buyer::receipt::ReceiptInfo;
use x402_escrow_sdk::buyer::{
    AssetLimits, BuyerClient, PaymentStatus, RetryPolicy, SpendLedger, SpendPolicy,
};
use x402_escrow_sdk::escrows::ESCROW_V1_0;
use x402_escrow_sdk::merchant::PAYMENT_IDENTIFIER_REQUIRED;
use x402_escrow_sdk::merchant::{
    AssetConfig, CaptureMode, EPOCH_SECS, OperatorClient, OperatorRetry, PaymentContext,
    PaymentFlow, PaymentRoute, PaymentsConfig, Price, RequestId, X402Layer,
};
use x402_escrow_sdk::schemes::auth_capture;
use x402_escrow_sdk::wire::codec;
use x402_escrow_sdk::wire::{
    Extra, PaymentPayload, PaymentPayloadV1, PaymentRequired, PaymentRequirements,
    PaymentRequirementsV1,
};
use x402_escrow_sdk::{EscrowRegistry, Network, random_b256};

const USDC: Address = address!("0x036CbD53842c5426634e7929541eC2318f3dCF7e");
const SHOP: Address = address!("0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
const OPERATOR: Address = address!("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC");
const AUTH_TX: B256 = B256::repeat_byte(0xa1);
const CAPTURE_TX: B256 = B256::repeat_byte(0xc2);
const VOID_TX: B256 = B256::repeat_byte(0xd3);
const CHARGE_TX: B256 = B256::repeat_byte(0xe4);
const REFUND_TX: B256 = B256::repeat_byte(0xf5);
const TRANSFER_TX: B256 = B256::repeat_byte(0x3e);
const PAYMENT_HASH: B256 = B256::repeat_byte(0x44);

// ---------------------------------------------------------------- fake operator

#[derive(Default)]
struct FakeOperator {
    /// Every HTTP call: (action, idempotency key).
    calls: Mutex<Vec<(String, String)>>,
    /// Calls that acted (not replayed): action names.
    executed: Mutex<Vec<String>>,
    /// key → (request body, status, answer).
    replay: Mutex<HashMap<String, (Value, u16, Value)>>,
    /// Refuse every authorize with this code.
    reject: Mutex<Option<String>>,
    /// Delay of capture answers, in ms.
    capture_delay_ms: AtomicU64,
    /// Answer authorize with `202 authorizing`; `GET` then shows it authorized.
    authorizing_first: AtomicBool,
    /// `GET /v1/payments/{id}` calls.
    gets: AtomicUsize,
    /// The `wait` query of the last `GET /v1/payments/{id}` (the layer's long poll).
    get_waits: Mutex<Vec<Option<u64>>>,
    next_id: AtomicUsize,
    /// `exact` nonces settled (`/verify` then says `authorization_used`).
    settled: Mutex<Vec<String>>,
    /// The `wait` query of every authorize.
    authorize_waits: Mutex<Vec<Option<u64>>>,
    /// The hold stays in flight: authorize answers `202 authorizing` and every long poll waits
    /// until [`FakeOperator::finish_hold`] names the final status (or its `wait` runs out).
    hold_gated: AtomicBool,
    /// The final status of a gated hold, once decided.
    hold_outcome: Mutex<Option<String>>,
    /// Wakes the long polls waiting on a gated hold.
    hold_decided: tokio::sync::Notify,
    /// What happened, in order: `handler hold_final=…` (the `/ok` and `/fail` handlers started),
    /// `final <status>` (a long poll answered with a final status).
    events: Mutex<Vec<String>>,
}

impl FakeOperator {
    fn executed(&self) -> Vec<String> {
        self.executed.lock().expect("lock").clone()
    }
    fn calls(&self) -> Vec<(String, String)> {
        self.calls.lock().expect("lock").clone()
    }
    fn events(&self) -> Vec<String> {
        self.events.lock().expect("lock").clone()
    }
    fn event(&self, event: String) {
        self.events.lock().expect("lock").push(event);
    }
    fn authorize_waits(&self) -> Vec<Option<u64>> {
        self.authorize_waits.lock().expect("lock").clone()
    }
    /// Decides a gated hold: `authorized` or `failed`.
    fn finish_hold(&self, status: &str) {
        *self.hold_outcome.lock().expect("lock") = Some(status.to_owned());
        self.hold_decided.notify_waiters();
    }
}

fn payment_json(id: &str, status: &str, txs: &[(&str, B256)], request_id: Option<&str>) -> Value {
    json!({
        "id": id,
        "merchantId": "00000000-0000-0000-0000-000000000001",
        "requestId": request_id,
        "paymentHash": PAYMENT_HASH,
        "status": status,
        "flow": "authorize",
        "chainId": 84532,
        "amounts": {
            "authorized": "10000",
            "captured": if status == "captured" { "10000" } else { "0" },
            "refunded": "0",
            "capturable": if status == "authorized" { "10000" } else { "0" },
            "refundable": if status == "captured" { "10000" } else { "0" },
        },
        "transactions": txs.iter().map(|(kind, hash)| json!({
            "kind": kind, "hash": hash, "status": "final", "blockNumber": 7
        })).collect::<Vec<_>>(),
        "lastError": null,
        "createdAt": 1, "updatedAt": 2
    })
}

/// A charged payment (x402 flow `authorization`): `captured` at once, or `refunded` in full.
fn charge_json(id: &str, refunded: bool, request_id: Option<&str>) -> Value {
    let mut txs = vec![("charge", CHARGE_TX)];
    if refunded {
        txs.push(("refund", REFUND_TX));
    }
    let status = if refunded { "refunded" } else { "captured" };
    let mut payment = payment_json(id, "captured", &txs, request_id);
    payment["status"] = json!(status);
    payment["flow"] = json!("charge");
    if refunded {
        payment["amounts"]["refunded"] = json!("10000");
        payment["amounts"]["refundable"] = json!("0");
    }
    payment
}

type Fake = Arc<FakeOperator>;

/// Records the call; replays a known key (same body) or refuses it (other body).
fn begin(
    fake: &FakeOperator,
    action: &str,
    headers: &HeaderMap,
    body: &Value,
) -> Result<String, Response> {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    assert_eq!(auth, Some("Bearer test-key"));
    let Some(key) = key else {
        return Err(error(400, "idempotency_key_missing", "missing"));
    };
    assert!(
        key.starts_with('"') && key.ends_with('"'),
        "structured-field string: {key}"
    );
    fake.calls
        .lock()
        .expect("lock")
        .push((action.to_owned(), key.clone()));
    if let Some((first_body, status, answer)) = fake.replay.lock().expect("lock").get(&key) {
        if first_body != body {
            return Err(error(422, "idempotency_key_reused", "other request"));
        }
        let status = StatusCode::from_u16(*status).expect("status");
        return Err((status, Json(answer.clone())).into_response());
    }
    fake.executed.lock().expect("lock").push(action.to_owned());
    Ok(key)
}

fn remember(fake: &FakeOperator, key: String, body: Value, status: u16, answer: Value) -> Response {
    fake.replay
        .lock()
        .expect("lock")
        .insert(key, (body, status, answer.clone()));
    (StatusCode::from_u16(status).expect("status"), Json(answer)).into_response()
}

fn error(status: u16, code: &str, message: &str) -> Response {
    (
        StatusCode::from_u16(status).expect("status"),
        Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

/// Query of `POST /v1/payments/authorize`.
#[derive(serde::Deserialize)]
struct AuthorizeQuery {
    wait: Option<u64>,
}

async fn op_authorize(
    State(fake): State<Fake>,
    Query(query): Query<AuthorizeQuery>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    fake.authorize_waits
        .lock()
        .expect("lock")
        .push(query.wait);
    let key = match begin(&fake, "authorize", &headers, &body) {
        Ok(key) => key,
        Err(response) => return response,
    };
    // The body is the operator's AuthorizeRequest.
    assert!(body["paymentPayload"]["accepted"].is_object());
    assert!(body["paymentRequirements"]["extra"]["captureAuthorizer"].is_string());
    let rejected = fake.reject.lock().expect("lock").clone();
    if let Some(code) = rejected {
        // As the operator does: an expiry refusal names its x402 reason and its numbers.
        let answer = if code == "expired" {
            json!({"error": {
                "code": code,
                "message": "captureDeadline (authorizationExpiry) 1796410140 is 35 s short of the capture window",
                "reason": "invalid_auth_capture_evm_capture_deadline_expired",
            }})
        } else {
            json!({"error": {"code": code, "message": "refused by the fake"}})
        };
        return remember(&fake, key, body, 400, answer);
    }
    let n = fake.next_id.fetch_add(1, Ordering::SeqCst);
    let id = format!("00000000-0000-4000-8000-{n:012}");
    let request_id = body["requestId"].as_str().map(str::to_owned);
    if body["paymentRequirements"]["extra"]["paymentFlow"] == "authorization" {
        let answer = charge_json(&id, false, request_id.as_deref());
        return remember(&fake, key, body, 201, answer);
    }
    if fake.authorizing_first.load(Ordering::SeqCst) || fake.hold_gated.load(Ordering::SeqCst) {
        let answer = payment_json(
            &id,
            "authorizing",
            &[("authorize", AUTH_TX)],
            request_id.as_deref(),
        );
        return remember(&fake, key, body, 202, answer);
    }
    let answer = payment_json(
        &id,
        "authorized",
        &[("authorize", AUTH_TX)],
        request_id.as_deref(),
    );
    remember(&fake, key, body, 201, answer)
}

/// Runs `action` once per idempotency key (see [`begin`]): `answer` gives the status and body of
/// the first execution, which every replay gets again.
fn once(
    fake: &FakeOperator,
    action: &str,
    headers: &HeaderMap,
    body: Value,
    answer: impl FnOnce(&Value) -> (u16, Value),
) -> Response {
    match begin(fake, action, headers, &body) {
        Ok(key) => {
            let (status, answer) = answer(&body);
            remember(fake, key, body, status, answer)
        }
        Err(response) => response,
    }
}

async fn op_capture(
    State(fake): State<Fake>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let delay = fake.capture_delay_ms.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(delay)).await;
    let txs = [("authorize", AUTH_TX), ("capture", CAPTURE_TX)];
    once(&fake, "capture", &headers, body, |_| {
        (200, payment_json(&id, "captured", &txs, None))
    })
}

async fn op_void(
    State(fake): State<Fake>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let txs = [("authorize", AUTH_TX), ("void", VOID_TX)];
    once(&fake, "void", &headers, body, |_| {
        (200, payment_json(&id, "voided", &txs, None))
    })
}

async fn op_refund(
    State(fake): State<Fake>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    once(&fake, "refund", &headers, body, |body| {
        assert_eq!(body["amount"], "10000", "the whole charge is refunded");
        (200, charge_json(&id, true, None))
    })
}

/// `POST /verify`: valid unless the fake refuses payments.
async fn op_verify(
    State(fake): State<Fake>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    assert_eq!(auth, Some("Bearer test-key"));
    assert_eq!(body["paymentRequirements"]["scheme"], "exact");
    fake.executed
        .lock()
        .expect("lock")
        .push("verify".to_owned());
    let payer = body["paymentPayload"]["payload"]["authorization"]["from"].clone();
    let nonce = body["paymentPayload"]["payload"]["authorization"]["nonce"].to_string();
    if fake.settled.lock().expect("lock").contains(&nonce) {
        let answer =
            json!({"isValid": false, "invalidReason": "authorization_used", "payer": payer});
        return Json(answer).into_response();
    }
    if let Some(code) = fake.reject.lock().expect("lock").clone() {
        return Json(json!({"isValid": false, "invalidReason": code, "payer": payer}))
            .into_response();
    }
    Json(json!({"isValid": true, "payer": payer})).into_response()
}

/// `POST /settle`: the transfer succeeded.
async fn op_settle(State(fake): State<Fake>, Json(body): Json<Value>) -> Response {
    assert_eq!(body["paymentRequirements"]["scheme"], "exact");
    fake.executed
        .lock()
        .expect("lock")
        .push("settle".to_owned());
    let nonce = body["paymentPayload"]["payload"]["authorization"]["nonce"].to_string();
    fake.settled.lock().expect("lock").push(nonce);
    Json(json!({
        "success": true,
        "payer": body["paymentPayload"]["payload"]["authorization"]["from"],
        "transaction": TRANSFER_TX,
        "network": body["paymentRequirements"]["network"],
        "amount": body["paymentRequirements"]["amount"],
    }))
    .into_response()
}

/// Query of `GET /v1/payments/{id}`.
#[derive(serde::Deserialize)]
struct GetQuery {
    wait: Option<u64>,
}

async fn op_get(
    State(fake): State<Fake>,
    Path(id): Path<String>,
    Query(query): Query<GetQuery>,
) -> Response {
    fake.gets.fetch_add(1, Ordering::SeqCst);
    fake.get_waits.lock().expect("lock").push(query.wait);
    if fake.hold_gated.load(Ordering::SeqCst) {
        return gated_hold(&fake, &id, query.wait.unwrap_or(0)).await;
    }
    Json(payment_json(
        &id,
        "authorized",
        &[("authorize", AUTH_TX)],
        None,
    ))
    .into_response()
}

/// A long poll of a gated hold: answered with the final status once decided, or `authorizing`
/// when `wait` seconds run out first.
async fn gated_hold(fake: &FakeOperator, id: &str, wait: u64) -> Response {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    loop {
        let decided = fake.hold_decided.notified();
        tokio::pin!(decided);
        decided.as_mut().enable();
        let outcome = fake.hold_outcome.lock().expect("lock").clone();
        if let Some(status) = outcome {
            fake.event(format!("final {status}"));
            let mut payment = payment_json(id, &status, &[("authorize", AUTH_TX)], None);
            if status == "failed" {
                payment["lastError"] = json!({
                    "code": "authorize_reverted",
                    "message": "ERC20: transfer amount exceeds balance"
                });
                payment["amounts"]["authorized"] = json!("0");
            }
            return Json(payment).into_response();
        }
        if tokio::time::timeout_at(deadline, decided).await.is_err() {
            let payment = payment_json(id, "authorizing", &[("authorize", AUTH_TX)], None);
            return Json(payment).into_response();
        }
    }
}

async fn start_operator() -> (Fake, String) {
    let fake: Fake = Arc::default();
    let app = Router::new()
        .route("/v1/payments/authorize", post(op_authorize))
        .route("/v1/payments/{id}/capture", post(op_capture))
        .route("/v1/payments/{id}/void", post(op_void))
        .route("/v1/payments/{id}/refund", post(op_refund))
        .route("/verify", post(op_verify))
        .route("/settle", post(op_settle))
        .route("/v1/payments/{id}", get(op_get))
        .with_state(fake.clone());
    let url = serve(app).await;
    (fake, url)
}

// ---------------------------------------------------------------- merchant

struct Env {
    fake: Fake,
    url: String,
    handled: Arc<AtomicUsize>,
}

fn config() -> PaymentsConfig {
    let mut config = PaymentsConfig::new(
        Network::BASE_SEPOLIA,
        AssetConfig::new(USDC, "USDC", "2", 6),
        SHOP,
        OPERATOR,
    );
    config.escrow = Some(ESCROW_V1_0);
    config.max_fee_bps = 100;
    config.max_timeout_seconds = 120;
    config.handler_timeout = Duration::from_millis(500);
    config
}

async fn start(tweak: impl FnOnce(&mut PaymentsConfig)) -> Env {
    start_route(tweak, PaymentRoute::new("$0.01")).await
}

/// [`start`] with the paid routes charged as `route` (described `test resource`).
async fn start_route(tweak: impl FnOnce(&mut PaymentsConfig), route: PaymentRoute) -> Env {
    let (fake, operator_url) = start_operator().await;
    let operator = OperatorClient::new(operator_url, "test-key").with_retry(OperatorRetry {
        attempts: 3,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
    });
    let mut cfg = config();
    tweak(&mut cfg);
    let payments = X402Layer::new(operator, cfg);
    let handled = Arc::new(AtomicUsize::new(0));
    let count = |h: &Arc<AtomicUsize>| {
        h.fetch_add(1, Ordering::SeqCst);
    };
    let (h1, h2, h3, h4, h5) = (
        handled.clone(),
        handled.clone(),
        handled.clone(),
        handled.clone(),
        handled.clone(),
    );
    let (f1, f2) = (fake.clone(), fake.clone());
    let app = Router::new()
        .route(
            "/ok",
            get(
                move |Extension(ctx): Extension<PaymentContext>,
                      Extension(rid): Extension<RequestId>| async move {
                    f1.event(format!("handler hold_final={}", ctx.hold_final));
                    count(&h1);
                    format!("paid content {} {} {}", ctx.payment_id, ctx.amount, rid)
                },
            ),
        )
        .route(
            "/fail",
            get(move |Extension(ctx): Extension<PaymentContext>| async move {
                f2.event(format!("handler hold_final={}", ctx.hold_final));
                count(&h2);
                (StatusCode::INTERNAL_SERVER_ERROR, "broken")
            }),
        )
        .route(
            "/slow",
            get(move || async move {
                count(&h3);
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        )
        .route(
            "/panic",
            get(move || async move {
                count(&h4);
                if h4.load(Ordering::SeqCst) < 1000 {
                    panic!("handler bug");
                }
                "unreachable"
            }),
        )
        .route(
            "/hang",
            get(move || async move {
                count(&h5);
                tokio::time::sleep(Duration::from_secs(3)).await;
                "hung"
            }),
        )
        .route_layer(payments.paid(route.description("test resource")))
        .route("/free", get(|| async { "free" }));
    let url = serve(app).await;
    Env { fake, url, handled }
}

fn key() -> PrivateKeySigner {
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
        .parse()
        .expect("key")
}

fn now() -> u64 {
    x402_escrow_sdk::buyer::unix_now()
}

async fn challenge(url: &str) -> PaymentRequired {
    let response = reqwest::get(url).await.expect("get");
    assert_eq!(response.status(), 402);
    let header = response
        .headers()
        .get(codec::PAYMENT_REQUIRED)
        .expect("PAYMENT-REQUIRED")
        .as_bytes()
        .to_vec();
    codec::decode_payment_required(header).expect("decodes")
}

/// A signed v2 payment for the first option of `url`'s challenge.
async fn signed_payment(url: &str, payment_id: Option<&str>) -> String {
    let challenge = challenge(url).await;
    let requirements = challenge.accepts[0].clone();
    let payload = auth_capture::build_payload(
        &requirements,
        &key(),
        now(),
        random_b256(),
        &EscrowRegistry::canonical(),
    )
    .expect("sign");
    let payment = PaymentPayload::answering(&challenge, requirements, payload, payment_id);
    codec::encode_payment_signature(&payment).expect("encode")
}

async fn pay(url: &str, header: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(url)
        .header(codec::PAYMENT_SIGNATURE, header)
        .header("x-request-id", "req-test-1")
        .send()
        .await
        .expect("send")
}

fn receipt(
    response: &reqwest::Response,
) -> (x402_escrow_sdk::facilitator::SettleResponse, ReceiptInfo) {
    let header = response
        .headers()
        .get(codec::PAYMENT_RESPONSE)
        .expect("PAYMENT-RESPONSE");
    let settle = codec::decode_payment_response(header.as_bytes()).expect("receipt decodes");
    let info = ReceiptInfo::from_receipt(&settle);
    (settle, info)
}

async fn wait_for(fake: &FakeOperator, action: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if fake.executed().iter().any(|a| a == action) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn unpaid_request_gets_402_with_header_and_v1_body() {
    let env = start(|_| {}).await;
    let response = reqwest::get(format!("{}/ok", env.url)).await.expect("get");
    assert_eq!(response.status(), 402);
    assert_eq!(
        response
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    assert!(response.headers().get("x-request-id").is_some());
    let header = response
        .headers()
        .get(codec::PAYMENT_REQUIRED)
        .expect("header")
        .clone();
    let v2 = codec::decode_payment_required(header.as_bytes()).expect("v2 decodes");
    assert_eq!(v2.resource.url, format!("{}/ok", env.url));
    assert_eq!(v2.resource.description.as_deref(), Some("test resource"));
    assert_eq!(v2.accepts.len(), 1);
    let offer = &v2.accepts[0];
    assert_eq!(offer.scheme, "auth-capture");
    assert_eq!(offer.amount.to_string(), "10000");
    assert_eq!(offer.pay_to, SHOP);
    let extra = offer.auth_capture_extra().expect("extra");
    assert_eq!(extra.capture_authorizer, OPERATOR);
    assert_eq!(extra.auth_capture_escrow, Some(ESCROW_V1_0));
    assert!(extra.capture_deadline > now() && extra.refund_deadline > extra.capture_deadline);
    assert!(
        v2.payment_identifier().is_some(),
        "payment-identifier advertised"
    );
    let body = response.bytes().await.expect("body");
    let v1 = codec::decode_payment_required_v1_body(&body).expect("v1 body decodes");
    assert_eq!(v1.accepts[0].max_amount_required.to_string(), "10000");
    assert_eq!(v1.accepts[0].resource, format!("{}/ok", env.url));
    assert!(env.fake.calls().is_empty());
    assert_eq!(env.handled.load(Ordering::SeqCst), 0);
    // Unpaid routes are untouched.
    let free = reqwest::get(format!("{}/free", env.url))
        .await
        .expect("free");
    assert_eq!(free.status(), 200);
}

#[tokio::test]
async fn buyer_client_pays_and_the_payment_is_captured() {
    let env = start(|_| {}).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = SpendLedger::open(dir.path().join("ledger.json")).expect("ledger");
    let policy = SpendPolicy::new(vec![AssetLimits::new(Network::BASE_SEPOLIA, USDC)]);
    let buyer =
        BuyerClient::new(reqwest::Client::new(), key(), policy, ledger).with_retry(RetryPolicy {
            max_retries: 1,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(10),
        });
    let paid = buyer.get(format!("{}/ok", env.url)).await.expect("paid");
    assert_eq!(paid.response.status(), 200);
    let outcome = paid.payment.clone().expect("a payment was made");
    assert_eq!(outcome.status, PaymentStatus::Paid);
    assert_eq!(outcome.transaction, Some(CAPTURE_TX));
    let receipt = outcome.receipt.expect("receipt");
    let info = ReceiptInfo::from_receipt(&receipt);
    assert_eq!(info.status.as_deref(), Some("captured"));
    assert_eq!(info.payment_hash, Some(PAYMENT_HASH));
    assert_eq!(outcome.merchant_payment_id, info.payment_id);
    let body = paid.response.text().await.expect("body");
    assert!(
        body.starts_with("paid content 00000000-0000-4000-8000-"),
        "{body}"
    );
    assert!(
        body.ends_with(" 10000 ") || body.contains(" 10000 "),
        "{body}"
    );
    assert_eq!(env.fake.executed(), vec!["authorize", "capture"]);
}

#[tokio::test]
async fn paid_request_is_authorized_then_captured() {
    let env = start(|_| {}).await;
    let url = format!("{}/ok", env.url);
    let header = signed_payment(&url, None).await;
    let response = pay(&url, &header).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("req-test-1")
    );
    let (settle, info) = receipt(&response);
    assert!(settle.success);
    assert_eq!(settle.transaction, Some(CAPTURE_TX));
    assert_eq!(settle.network, Network::BASE_SEPOLIA);
    assert_eq!(settle.payer, Some(key().address()));
    assert_eq!(
        settle.amount.map(|a| a.to_string()).as_deref(),
        Some("10000")
    );
    assert_eq!(info.status.as_deref(), Some("captured"));
    let body = response.text().await.expect("body");
    assert!(
        body.ends_with("req-test-1"),
        "request id reaches the handler: {body}"
    );
    assert_eq!(env.fake.executed(), vec!["authorize", "capture"]);
}

#[tokio::test]
async fn handler_error_status_voids() {
    let env = start(|_| {}).await;
    let url = format!("{}/fail", env.url);
    let response = pay(&url, &signed_payment(&url, None).await).await;
    assert_eq!(response.status(), 500);
    let (settle, info) = receipt(&response);
    assert_eq!(info.status.as_deref(), Some("voided"));
    assert_eq!(settle.transaction, Some(VOID_TX));
    assert_eq!(env.fake.executed(), vec!["authorize", "void"]);
}

#[tokio::test]
async fn handler_timeout_voids_with_504() {
    let env = start(|_| {}).await;
    let url = format!("{}/slow", env.url);
    let response = pay(&url, &signed_payment(&url, None).await).await;
    assert_eq!(response.status(), 504);
    let (_, info) = receipt(&response);
    assert_eq!(info.status.as_deref(), Some("voided"));
    assert_eq!(env.fake.executed(), vec!["authorize", "void"]);
}

#[tokio::test]
async fn handler_panic_voids_with_500() {
    let env = start(|_| {}).await;
    let url = format!("{}/panic", env.url);
    let response = pay(&url, &signed_payment(&url, None).await).await;
    assert_eq!(response.status(), 500);
    let (_, info) = receipt(&response);
    assert_eq!(info.status.as_deref(), Some("voided"));
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"], "handler_panicked");
    assert_eq!(env.handled.load(Ordering::SeqCst), 1);
    assert_eq!(env.fake.executed(), vec!["authorize", "void"]);
}

#[tokio::test]
async fn client_disconnect_mid_handler_voids() {
    let env = start(|c| c.handler_timeout = Duration::from_secs(30)).await;
    let url = format!("{}/hang", env.url);
    let header = signed_payment(&url, None).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(400))
        .build()
        .expect("client");
    let result = client
        .get(&url)
        .header(codec::PAYMENT_SIGNATURE, header)
        .send()
        .await;
    assert!(result.is_err(), "the client gave up");
    assert!(wait_for(&env.fake, "void").await, "voided after disconnect");
    assert_eq!(env.fake.executed(), vec!["authorize", "void"]);
    assert_eq!(env.handled.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn operator_rejection_is_a_402_with_its_code() {
    let env = start(|_| {}).await;
    *env.fake.reject.lock().expect("lock") = Some("invalid_signature".to_owned());
    let url = format!("{}/ok", env.url);
    let response = pay(&url, &signed_payment(&url, None).await).await;
    let expected = "invalid_signature: refused by the fake";
    assert_eq!(
        refusal_errors(response).await,
        (expected.into(), expected.into())
    );
    assert_eq!(env.handled.load(Ordering::SeqCst), 0);
    assert_eq!(env.fake.executed(), vec!["authorize"]);
}

#[tokio::test]
async fn operator_refusal_names_its_x402_reason_and_numbers() {
    let env = start(|_| {}).await;
    *env.fake.reject.lock().expect("lock") = Some("expired".to_owned());
    let url = format!("{}/ok", env.url);
    let response = pay(&url, &signed_payment(&url, None).await).await;
    let expected = "invalid_auth_capture_evm_capture_deadline_expired: captureDeadline \
                    (authorizationExpiry) 1796410140 is 35 s short of the capture window";
    assert_eq!(
        refusal_errors(response).await,
        (expected.into(), expected.into())
    );
    assert_eq!(env.handled.load(Ordering::SeqCst), 0);
}

/// The `error` of a 402: from the v2 `PAYMENT-REQUIRED` header and from the v1 body.
async fn refusal_errors(response: reqwest::Response) -> (String, String) {
    assert_eq!(response.status(), 402);
    let header = response
        .headers()
        .get(codec::PAYMENT_REQUIRED)
        .expect("header")
        .as_bytes()
        .to_vec();
    let challenge = codec::decode_payment_required(header).expect("decodes");
    let body = response.bytes().await.expect("body");
    let v1 = codec::decode_payment_required_v1_body(&body).expect("v1");
    (
        challenge.error.expect("v2 error"),
        v1.error.expect("v1 error"),
    )
}

#[tokio::test]
async fn malformed_headers_are_400_and_never_reach_the_operator() {
    let env = start(|_| {}).await;
    let url = format!("{}/ok", env.url);
    // A valid v1 payment in the v2 header: wrong version.
    let challenge = challenge(&url).await;
    let requirements = challenge.accepts[0].clone();
    let payload = auth_capture::build_payload(
        &requirements,
        &key(),
        now(),
        random_b256(),
        &EscrowRegistry::canonical(),
    )
    .expect("sign");
    let v1 =
        x402_escrow_sdk::wire::PaymentRequirementsV1::from_v2(&requirements, &challenge.resource);
    let wrong_version =
        codec::encode_x_payment(&PaymentPayloadV1::new(&v1, payload)).expect("encode");
    let cases = [
        ("!!!not base64!!!".to_owned(), "invalid_base64"),
        ("A".repeat(9000), "too_large"),
        (wrong_version, "unsupported_x402_version"),
        (
            codec::encode_header(&json!({"x402Version": 2})).expect("enc"),
            "missing_field",
        ),
    ];
    for (header, code) in cases {
        let response = pay(&url, &header).await;
        assert_eq!(response.status(), 400, "{code}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["error"], code, "{body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    assert!(env.fake.calls().is_empty());
    assert_eq!(env.handled.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn v1_x_payment_is_accepted_and_answered_in_v1() {
    let env = start(|_| {}).await;
    let url = format!("{}/ok", env.url);
    let response = reqwest::get(&url).await.expect("get");
    let body = response.bytes().await.expect("body");
    let v1 = codec::decode_payment_required_v1_body(&body).expect("v1");
    let offer = v1.accepts[0].clone();
    let (requirements, _) = offer.to_v2();
    let payload = auth_capture::build_payload(
        &requirements,
        &key(),
        now(),
        random_b256(),
        &EscrowRegistry::canonical(),
    )
    .expect("sign");
    let header = codec::encode_x_payment(&PaymentPayloadV1::new(&offer, payload)).expect("encode");
    let response = reqwest::Client::new()
        .get(&url)
        .header(codec::X_PAYMENT, header)
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    assert!(response.headers().get(codec::PAYMENT_RESPONSE).is_none());
    let header = response
        .headers()
        .get(codec::X_PAYMENT_RESPONSE)
        .expect("v1 receipt");
    let settle = codec::decode_x_payment_response(header.as_bytes()).expect("decodes");
    assert_eq!(
        ReceiptInfo::from_receipt(&settle).status.as_deref(),
        Some("captured")
    );
    assert_eq!(env.fake.executed(), vec!["authorize", "capture"]);
}

#[tokio::test]
async fn queued_capture_answers_first_and_captures_after() {
    let env = start(|c| c.capture_mode = CaptureMode::Queued).await;
    env.fake.capture_delay_ms.store(800, Ordering::SeqCst);
    let url = format!("{}/ok", env.url);
    let header = signed_payment(&url, None).await;
    let started = Instant::now();
    let response = pay(&url, &header).await;
    assert!(
        started.elapsed() < Duration::from_millis(700),
        "answered before capture"
    );
    assert_eq!(response.status(), 200);
    let (settle, info) = receipt(&response);
    assert_eq!(info.status.as_deref(), Some("authorized"));
    assert_eq!(settle.transaction, Some(AUTH_TX));
    assert!(!env.fake.executed().contains(&"capture".to_owned()));
    assert!(wait_for(&env.fake, "capture").await, "captured afterwards");
}

#[tokio::test]
async fn retry_with_same_payment_identifier_authorizes_once() {
    let env = start(|_| {}).await;
    let url = format!("{}/ok", env.url);
    let id = "pay_0123456789abcdef0123";
    let header = signed_payment(&url, Some(id)).await;
    let first = pay(&url, &header).await;
    assert_eq!(first.status(), 200);
    let (_, first_info) = receipt(&first);
    let second = pay(&url, &header).await;
    assert_eq!(second.status(), 200);
    let (_, second_info) = receipt(&second);
    assert_eq!(first_info.payment_id, second_info.payment_id);
    let calls = env.fake.calls();
    let authorizes: Vec<_> = calls.iter().filter(|(a, _)| a == "authorize").collect();
    assert_eq!(authorizes.len(), 2, "two HTTP calls");
    assert_eq!(authorizes[0].1, authorizes[1].1, "same idempotency key");
    assert_eq!(
        env.fake.executed(),
        vec!["authorize", "capture"],
        "replayed, not repeated"
    );
    // Same id, another payment: conflict, nothing authorized.
    let other = signed_payment(&url, Some(id)).await;
    let third = pay(&url, &other).await;
    assert_eq!(third.status(), 409);
    let body: Value = third.json().await.expect("json");
    assert_eq!(body["error"], "payment_identifier_reused");
    assert_eq!(env.fake.executed(), vec!["authorize", "capture"]);
}

#[tokio::test]
async fn router_wide_layer_charges_only_listed_routes() {
    let (fake, operator_url) = start_operator().await;
    let layer = X402Layer::new(OperatorClient::new(operator_url, "test-key"), config())
        .route("GET /paid", "$0.02")
        .expect("route spec");
    assert!(
        X402Layer::new(OperatorClient::new("http://x", "k"), config())
            .route("nonsense", "1")
            .is_err()
    );
    let app = Router::new()
        .route("/paid", get(|| async { "paid" }))
        .route("/open", get(|| async { "open" }))
        .layer(layer);
    let url = serve(app).await;
    assert_eq!(
        reqwest::get(format!("{url}/open"))
            .await
            .expect("get")
            .status(),
        200
    );
    let challenge = challenge(&format!("{url}/paid")).await;
    assert_eq!(challenge.accepts[0].amount.to_string(), "20000");
    let header = signed_payment(&format!("{url}/paid"), None).await;
    let response = pay(&format!("{url}/paid"), &header).await;
    assert_eq!(response.status(), 200);
    assert_eq!(fake.executed(), vec!["authorize", "capture"]);
}

/// Signs `requirements` (possibly altered from the challenge) as a v2 payment.
fn sign_v2(challenge: &PaymentRequired, requirements: PaymentRequirements) -> String {
    let payload = auth_capture::build_payload(
        &requirements,
        &key(),
        now(),
        random_b256(),
        &EscrowRegistry::canonical(),
    )
    .expect("sign");
    let payment = PaymentPayload::answering(challenge, requirements, payload, None);
    codec::encode_payment_signature(&payment).expect("encode")
}

fn shift_deadlines(requirements: &mut PaymentRequirements, by: u64) {
    if let Some(Extra::AuthCapture(extra)) = requirements.extra.as_mut() {
        extra.capture_deadline -= by;
        extra.refund_deadline -= by;
    }
}

#[tokio::test]
async fn payments_against_an_earlier_challenge_still_match() {
    let env = start(|_| {}).await;
    let url = format!("{}/ok", env.url);
    let challenge = challenge(&url).await;
    // A challenge issued one epoch earlier (deadlines 60 s earlier) is still honoured.
    let mut earlier = challenge.accepts[0].clone();
    shift_deadlines(&mut earlier, EPOCH_SECS);
    let response = pay(&url, &sign_v2(&challenge, earlier.clone())).await;
    assert_eq!(response.status(), 200);
    // Deadlines this merchant never issued are not.
    let mut forged = challenge.accepts[0].clone();
    shift_deadlines(&mut forged, 1);
    let response = pay(&url, &sign_v2(&challenge, forged)).await;
    assert_eq!(response.status(), 402);
    let header = response
        .headers()
        .get(codec::PAYMENT_REQUIRED)
        .expect("header");
    let again = codec::decode_payment_required(header.as_bytes()).expect("decodes");
    assert!(
        again
            .error
            .as_deref()
            .is_some_and(|e| e.contains("accepted.extra")),
        "{:?}",
        again.error
    );
    // A v1 payment (no echoed requirements) signed against the earlier epoch is found too.
    let v1 = PaymentRequirementsV1::from_v2(&earlier, &challenge.resource);
    let payload = auth_capture::build_payload(
        &earlier,
        &key(),
        now(),
        random_b256(),
        &EscrowRegistry::canonical(),
    )
    .expect("sign");
    let header = codec::encode_x_payment(&PaymentPayloadV1::new(&v1, payload)).expect("encode");
    let response = reqwest::Client::new()
        .get(&url)
        .header(codec::X_PAYMENT, header)
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    assert_eq!(
        env.fake.executed(),
        vec!["authorize", "capture", "authorize", "capture"]
    );
}

#[tokio::test]
async fn unreachable_operator_is_503_and_the_handler_does_not_run() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let operator = OperatorClient::new(dead, "test-key").with_retry(OperatorRetry {
        attempts: 2,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(5),
    });
    let handled = Arc::new(AtomicUsize::new(0));
    let h = handled.clone();
    let app = Router::new()
        .route(
            "/ok",
            get(move || async move {
                h.fetch_add(1, Ordering::SeqCst);
                "content"
            }),
        )
        .route_layer(X402Layer::new(operator, config()).paid(Price::atomic(10_000)));
    let url = format!("{}/ok", serve(app).await);
    let response = pay(&url, &signed_payment(&url, None).await).await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"], "operator_unavailable");
    assert_eq!(handled.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn an_authorizing_hold_is_polled_until_authorized() {
    let env = start(|_| {}).await;
    env.fake.authorizing_first.store(true, Ordering::SeqCst);
    let url = format!("{}/ok", env.url);
    let response = pay(&url, &signed_payment(&url, None).await).await;
    assert_eq!(response.status(), 200);
    // One long poll (`?wait=`, within the layer's 30 s default), answered once authorized.
    assert_eq!(env.fake.gets.load(Ordering::SeqCst), 1);
    let waits = env.fake.get_waits.lock().expect("lock").clone();
    assert!(
        matches!(waits.as_slice(), [Some(w)] if (1..=30).contains(w)),
        "{waits:?}"
    );
    assert_eq!(env.fake.executed(), vec!["authorize", "capture"]);
}

#[tokio::test]
async fn exact_is_offered_beside_auth_capture_when_configured() {
    let env = start(|c| c.offer_exact = true).await;
    let challenge = challenge(&format!("{}/ok", env.url)).await;
    let schemes: Vec<_> = challenge
        .accepts
        .iter()
        .map(|a| a.scheme.as_str())
        .collect();
    assert_eq!(schemes, vec!["auth-capture", "exact"]);
    assert_eq!(challenge.accepts[1].amount.to_string(), "10000");
}

#[tokio::test]
async fn a_required_payment_identifier_must_be_sent() {
    let env = start(|c| c.payment_identifier_required = true).await;
    let url = format!("{}/ok", env.url);
    let challenge = challenge(&url).await;
    assert_eq!(
        challenge.payment_identifier().map(|info| info.required),
        Some(true)
    );
    let response = pay(&url, &signed_payment(&url, None).await).await;
    assert_eq!(response.status(), 402);
    let header = response
        .headers()
        .get(codec::PAYMENT_REQUIRED)
        .expect("header");
    let again = codec::decode_payment_required(header.as_bytes()).expect("decodes");
    assert_eq!(again.error.as_deref(), Some(PAYMENT_IDENTIFIER_REQUIRED));
    assert!(env.fake.calls().is_empty());
    let response = pay(
        &url,
        &signed_payment(&url, Some("pay_required_id_0001")).await,
    )
    .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn authorization_flow_charges_and_keeps_the_charge_on_success() {
    let env = start(|c| c.payment_flow = PaymentFlow::Authorization).await;
    let url = format!("{}/ok", env.url);
    let offered = challenge(&url).await;
    let extra = offered.accepts[0].auth_capture_extra().expect("extra");
    assert_eq!(extra.flow(), PaymentFlow::Authorization);
    let header = signed_payment(&url, None).await;
    let response = pay(&url, &header).await;
    assert_eq!(response.status(), 200);
    let (settle, info) = receipt(&response);
    assert!(settle.success);
    assert_eq!(settle.transaction, Some(CHARGE_TX));
    assert_eq!(info.status.as_deref(), Some("captured"));
    assert_eq!(info.refunded_amount, None);
    // Charged before the handler ran: nothing to capture afterwards.
    assert_eq!(env.fake.executed(), vec!["authorize"]);
    assert_eq!(env.handled.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn authorization_flow_refunds_the_whole_charge_when_the_handler_fails() {
    let env = start(|c| c.payment_flow = PaymentFlow::Authorization).await;
    for path in ["/fail", "/panic"] {
        let url = format!("{}{path}", env.url);
        let header = signed_payment(&url, None).await;
        let response = reqwest::Client::new()
            .get(&url)
            .header(codec::PAYMENT_SIGNATURE, header)
            .header("x-request-id", format!("req-charge{path}"))
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 500, "{path}");
        let (settle, info) = receipt(&response);
        assert!(settle.success, "{path}");
        assert_eq!(settle.transaction, Some(REFUND_TX), "{path}");
        assert_eq!(info.status.as_deref(), Some("refunded"), "{path}");
        assert_eq!(
            info.refunded_amount.map(|a| a.to_string()).as_deref(),
            Some("10000")
        );
    }
    assert_eq!(
        env.fake.executed(),
        vec!["authorize", "refund", "authorize", "refund"]
    );
    // Never a void or a capture.
    assert!(
        env.fake
            .calls()
            .iter()
            .all(|(a, _)| a != "void" && a != "capture")
    );
}

#[tokio::test]
async fn a_route_can_choose_its_own_flow() {
    let env = start(|_| {}).await;
    let config = config();
    let route = PaymentRoute::new("$0.01").flow(PaymentFlow::Authorization);
    assert_eq!(route.effective_flow(&config), PaymentFlow::Authorization);
    assert_eq!(
        PaymentRoute::new("$0.01").effective_flow(&config),
        PaymentFlow::Escrow
    );
    // The default route of this env stays on the escrow flow (no paymentFlow key at all).
    let offered = challenge(&format!("{}/ok", env.url)).await;
    let extra = offered.accepts[0].auth_capture_extra().expect("extra");
    assert_eq!(extra.payment_flow, None);
}

/// A signed `exact` payment for the `exact` option of `url`'s challenge.
async fn signed_exact_payment(url: &str) -> String {
    let challenge = challenge(url).await;
    let requirements = challenge
        .accepts
        .iter()
        .find(|r| r.scheme == "exact")
        .expect("exact offered")
        .clone();
    let payload =
        x402_escrow_sdk::schemes::exact::build_payload(&requirements, &key(), now(), random_b256())
            .expect("sign");
    let payment = PaymentPayload::answering(&challenge, requirements, payload, None);
    codec::encode_payment_signature(&payment).expect("encode")
}

#[tokio::test]
async fn exact_is_verified_then_settled_only_after_success() {
    let env = start(|c| c.offer_exact = true).await;
    // Success: verify, handler, settle; the receipt carries the transfer.
    let url = format!("{}/ok", env.url);
    let header = signed_exact_payment(&url).await;
    let response = pay(&url, &header).await;
    assert_eq!(response.status(), 200);
    let (settle, _) = receipt(&response);
    assert!(settle.success);
    assert_eq!(settle.transaction, Some(TRANSFER_TX));
    assert_eq!(env.fake.executed(), vec!["verify", "settle"]);
    assert_eq!(env.handled.load(Ordering::SeqCst), 1);

    // The same payment again (its response was lost): the operator's /verify says the
    // authorization is used, its /settle answers with the original transfer, and the buyer is
    // served with that receipt.
    let response = pay(&url, &header).await;
    assert_eq!(response.status(), 200);
    let (again, _) = receipt(&response);
    assert!(again.success);
    assert_eq!(again.transaction, Some(TRANSFER_TX));
    assert_eq!(
        env.fake.executed(),
        vec!["verify", "settle", "verify", "settle"]
    );

    // Failure: verified, the handler fails, nothing is settled and no receipt is sent.
    let url = format!("{}/fail", env.url);
    let response = pay(&url, &signed_exact_payment(&url).await).await;
    assert_eq!(response.status(), 500);
    assert!(response.headers().get(codec::PAYMENT_RESPONSE).is_none());
    assert_eq!(
        env.fake.executed(),
        vec!["verify", "settle", "verify", "settle", "verify"]
    );

    // Refused by the operator: 402 with the reason; the handler never runs.
    *env.fake.reject.lock().expect("lock") = Some("insufficient_funds".to_owned());
    let url = format!("{}/ok", env.url);
    let response = pay(&url, &signed_exact_payment(&url).await).await;
    assert_eq!(response.status(), 402);
    let header = response
        .headers()
        .get(codec::PAYMENT_REQUIRED)
        .expect("challenge")
        .as_bytes()
        .to_vec();
    let challenge = codec::decode_payment_required(header).expect("decodes");
    assert_eq!(challenge.error.as_deref(), Some("insufficient_funds"));
    assert_eq!(env.handled.load(Ordering::SeqCst), 3);
    // No escrow call at all.
    assert!(env.fake.calls().is_empty());
}

// ---------------------------------------------------------------- latency mode

/// A route of $0.01 in latency mode for payments up to `cap`.
fn latency_route(cap: &str) -> PaymentRoute {
    PaymentRoute::new("$0.01").latency_mode(cap)
}

/// Sends the paid request in a task of its own, so the test can act while it is in flight.
fn pay_in_background(url: &str, header: String) -> tokio::task::JoinHandle<reqwest::Response> {
    let url = url.to_owned();
    tokio::spawn(async move { pay(&url, &header).await })
}

/// Polls `done` every 10 ms for up to 5 s.
async fn until(done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// The 402 challenge's `error`.
fn challenge_error(response: &reqwest::Response) -> String {
    let header = response
        .headers()
        .get(codec::PAYMENT_REQUIRED)
        .expect("PAYMENT-REQUIRED");
    codec::decode_payment_required(header.as_bytes())
        .expect("decodes")
        .error
        .unwrap_or_default()
}

#[tokio::test]
async fn latency_mode_runs_the_handler_while_the_hold_is_in_flight_and_captures_once_authorized() {
    let env = start_route(|_| {}, latency_route("$0.01")).await;
    env.fake.hold_gated.store(true, Ordering::SeqCst);
    let url = format!("{}/ok", env.url);
    let request = pay_in_background(&url, signed_payment(&url, None).await);
    assert!(
        until(|| env.handled.load(Ordering::SeqCst) == 1).await,
        "the handler runs while the hold is in flight"
    );
    // The handler is done, the hold is not: the response is held back.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!request.is_finished(), "released before the hold is final");
    assert_eq!(env.fake.executed(), vec!["authorize"]);
    env.fake.finish_hold("authorized");
    let response = request.await.expect("join");
    assert_eq!(response.status(), 200);
    let (settle, info) = receipt(&response);
    assert_eq!(info.status.as_deref(), Some("captured"));
    assert_eq!(settle.transaction, Some(CAPTURE_TX));
    let body = response.text().await.expect("body");
    assert!(body.starts_with("paid content "), "{body}");
    assert_eq!(
        env.fake.events(),
        vec!["handler hold_final=false", "final authorized"]
    );
    // Asked without waiting, then one long poll.
    assert_eq!(env.fake.authorize_waits(), vec![Some(0)]);
    assert_eq!(env.fake.gets.load(Ordering::SeqCst), 1);
    assert_eq!(env.fake.executed(), vec!["authorize", "capture"]);
}

#[tokio::test]
async fn latency_mode_withholds_the_response_when_the_hold_fails() {
    let env = start_route(|_| {}, latency_route("$0.01")).await;
    env.fake.hold_gated.store(true, Ordering::SeqCst);
    let url = format!("{}/ok", env.url);
    let request = pay_in_background(&url, signed_payment(&url, None).await);
    assert!(until(|| env.handled.load(Ordering::SeqCst) == 1).await);
    env.fake.finish_hold("failed");
    let response = request.await.expect("join");
    assert_eq!(response.status(), 402);
    assert!(
        response.headers().get(codec::PAYMENT_RESPONSE).is_none(),
        "no receipt: nothing was paid"
    );
    let error = challenge_error(&response);
    assert!(
        error.starts_with("hold_failed: ") && error.contains("authorize_reverted"),
        "{error}"
    );
    let body = response.text().await.expect("body");
    assert!(!body.contains("paid content"), "the handler's body leaked: {body}");
    assert_eq!(
        env.fake.events(),
        vec!["handler hold_final=false", "final failed"]
    );
    // Nothing held, so nothing captured and nothing to void.
    assert_eq!(env.fake.executed(), vec!["authorize"]);
}

#[tokio::test]
async fn latency_mode_stops_a_running_handler_when_the_hold_fails() {
    let env = start_route(
        |c| c.handler_timeout = Duration::from_secs(30),
        latency_route("$0.01"),
    )
    .await;
    env.fake.hold_gated.store(true, Ordering::SeqCst);
    let url = format!("{}/hang", env.url);
    let request = pay_in_background(&url, signed_payment(&url, None).await);
    assert!(until(|| env.handled.load(Ordering::SeqCst) == 1).await);
    let failed_at = Instant::now();
    env.fake.finish_hold("failed");
    let response = request.await.expect("join");
    // The handler would take 3 s; the buyer gets the refusal without waiting for it.
    assert!(
        failed_at.elapsed() < Duration::from_secs(2),
        "{:?}",
        failed_at.elapsed()
    );
    assert_eq!(response.status(), 402);
    assert!(challenge_error(&response).starts_with("hold_failed: "));
    assert_eq!(env.fake.executed(), vec!["authorize"]);
}

#[tokio::test]
async fn latency_mode_voids_a_failed_handler_once_authorized() {
    let env = start_route(|_| {}, latency_route("$0.01")).await;
    env.fake.hold_gated.store(true, Ordering::SeqCst);
    let url = format!("{}/fail", env.url);
    let request = pay_in_background(&url, signed_payment(&url, None).await);
    assert!(until(|| env.handled.load(Ordering::SeqCst) == 1).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(env.fake.executed(), vec!["authorize"], "no void before final");
    env.fake.finish_hold("authorized");
    let response = request.await.expect("join");
    assert_eq!(response.status(), 500);
    let (settle, info) = receipt(&response);
    assert_eq!(info.status.as_deref(), Some("voided"));
    assert_eq!(settle.transaction, Some(VOID_TX));
    assert_eq!(env.fake.executed(), vec!["authorize", "void"]);
}

#[tokio::test]
async fn latency_mode_client_disconnect_voids_once_the_hold_is_final() {
    let env = start_route(
        |c| c.handler_timeout = Duration::from_secs(30),
        latency_route("$0.01"),
    )
    .await;
    env.fake.hold_gated.store(true, Ordering::SeqCst);
    let url = format!("{}/hang", env.url);
    let header = signed_payment(&url, None).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(400))
        .build()
        .expect("client");
    let result = client
        .get(&url)
        .header(codec::PAYMENT_SIGNATURE, header)
        .send()
        .await;
    assert!(result.is_err(), "the client gave up");
    assert_eq!(env.handled.load(Ordering::SeqCst), 1);
    // The hold is in flight: a void now would be refused (`payment_busy`), and that refusal
    // replayed to every later void with the same key. The guard waits.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(env.fake.executed(), vec!["authorize"]);
    env.fake.finish_hold("authorized");
    assert!(wait_for(&env.fake, "void").await, "voided once final");
    assert_eq!(env.fake.executed(), vec!["authorize", "void"]);
}

/// The normal path under a gated hold: the handler waits for `authorized`, then runs.
async fn assert_normal_path(env: &Env) {
    env.fake.hold_gated.store(true, Ordering::SeqCst);
    let url = format!("{}/ok", env.url);
    let request = pay_in_background(&url, signed_payment(&url, None).await);
    assert!(
        until(|| env.fake.gets.load(Ordering::SeqCst) == 1).await,
        "the layer long-polls the hold"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        env.handled.load(Ordering::SeqCst),
        0,
        "the handler ran before the hold was final"
    );
    env.fake.finish_hold("authorized");
    let response = request.await.expect("join");
    assert_eq!(response.status(), 200);
    let (_, info) = receipt(&response);
    assert_eq!(info.status.as_deref(), Some("captured"));
    assert_eq!(
        env.fake.events(),
        vec!["final authorized", "handler hold_final=true"]
    );
    // The operator's own wait, not latency mode's zero.
    assert_eq!(env.fake.authorize_waits(), vec![None]);
    assert_eq!(env.fake.executed(), vec!["authorize", "capture"]);
}

#[tokio::test]
async fn latency_mode_above_its_cap_takes_the_normal_path() {
    // The route costs $0.01; latency mode covers payments up to half a cent.
    let env = start_route(|_| {}, latency_route("$0.005")).await;
    assert_normal_path(&env).await;
}

#[tokio::test]
async fn latency_mode_is_off_by_default() {
    assert_eq!(PaymentRoute::new("$0.01").latency_cap, None);
    let env = start(|_| {}).await;
    assert_normal_path(&env).await;
}

#[tokio::test]
async fn latency_mode_verification_refusal_never_runs_the_handler() {
    let env = start_route(|_| {}, latency_route("$0.01")).await;
    *env.fake.reject.lock().expect("lock") = Some("invalid_signature".to_owned());
    let url = format!("{}/ok", env.url);
    let response = pay(&url, &signed_payment(&url, None).await).await;
    assert_eq!(response.status(), 402);
    assert_eq!(
        challenge_error(&response),
        "invalid_signature: refused by the fake"
    );
    assert_eq!(env.handled.load(Ordering::SeqCst), 0);
    assert!(env.fake.events().is_empty(), "{:?}", env.fake.events());
    assert_eq!(env.fake.authorize_waits(), vec![Some(0)]);
    assert_eq!(env.fake.executed(), vec!["authorize"]);
}
