//! What one fuzz input does to the operator's HTTP API, shared by the cargo-fuzz target
//! `api_bodies` and the stable replay test `operator/tests/fuzz_corpus.rs`.
//!
//! The input is sent through the operator's real axum router (request id, body limit, bearer
//! authentication against a real in-memory SQLite store, `Idempotency-Key`, the handlers' body
//! parsing and the facilitator's `payment-identifier` handling). Behind the router sits a
//! [`FuzzService`] whose `authorize`, `/verify` and `/settle` run the operator's real
//! [`Verifier`] (every offline check; its chain reads hit a mocked RPC that answers nothing, so
//! a payment passing every offline check ends as `chain_unavailable`), at the fixed time
//! [`NOW`]. Properties checked on every response: never `500`, always JSON, every error is
//! `{"error": {"code", "message"}}` with a published code, and a payment the verifier let
//! through to the chain also passes the SDK's own derivation and time-window checks.
//!
//! Needs `crate::sdk_harness` (include both files with `#[path]`).
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use alloy::primitives::{Address, B256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{Method, Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;
use uuid::Uuid;
use x402_escrow_operator::api::facilitator::{self, Facilitator, FacilitatorSettings};
use x402_escrow_operator::api::{ApiState, router};
use x402_escrow_operator::lifecycle::{Flow, PaymentStatus};
use x402_escrow_operator::service::{
    AmountsView, AuthorizeRequest, CaptureRequest, ErrorCode, PaymentService, PaymentView,
    RefundRequest, ServiceError,
};
use x402_escrow_operator::store::{Merchant, NewMerchant, Store};
use x402_escrow_operator::verify::{Verifier, VerifierConfig, VerifyError};
use x402_escrow_sdk::Network;
use x402_escrow_sdk::facilitator::{
    SettleResponse, SupportedResponse, VerifyRequest, VerifyResponse, reasons,
};
use x402_escrow_sdk::schemes::auth_capture;

use crate::sdk_harness::{self, CHAIN_ID, FEE_RECEIVER, NOW, OPERATOR, PAY_TO, TOKEN};

/// Merchant A's API key (the fixture merchant every request authenticates as).
pub const KEY_A: &str = "x402_sk_fuzz_merchant_a";
/// Merchant B's API key.
pub const KEY_B: &str = "x402_sk_fuzz_merchant_b";

/// Codes the API may answer besides the service's ([`ErrorCode::ALL`]): the HTTP layer's two
/// and the facilitator's one.
pub const HTTP_LAYER_CODES: &[&str] = &[
    "payload_too_large",
    "method_not_allowed",
    "payment_identifier_conflict",
];

/// Whether `code` is published and acceptable for a fuzzed input: any service code but
/// `internal` (an unexpected failure is a finding), or one of [`HTTP_LAYER_CODES`].
pub fn known_code(code: &str) -> bool {
    ErrorCode::ALL
        .iter()
        .any(|c| *c != ErrorCode::Internal && c.as_str() == code)
        || HTTP_LAYER_CODES.contains(&code)
}

/// The payment service behind the fuzzed router: the real verifier, a fixed payment of
/// merchant A, no state changes.
pub struct FuzzService {
    verifier: Verifier,
    /// Merchant A's one payment (authorized, 1 USDC, 0.4 captured).
    pub payment: PaymentView,
}

fn verifier_config() -> VerifierConfig {
    VerifierConfig {
        chain_id: CHAIN_ID,
        operator: OPERATOR,
        lanes: Vec::new(),
        registry: sdk_harness::registry(),
        assets: vec![TOKEN],
        fee_bps: 100,
        fee_receiver: FEE_RECEIVER,
        expiry_margin_secs: 60,
        default_capture_deadline_secs: 600,
    }
}

/// A provider over a mocked transport with no answers: every chain read fails at once.
fn offline_provider() -> DynProvider {
    ProviderBuilder::new()
        .disable_recommended_fillers()
        .connect_mocked_client(alloy::providers::mock::Asserter::new())
        .erased()
}

fn payment_of(merchant: &Merchant) -> PaymentView {
    PaymentView {
        id: Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_00a1),
        merchant_id: merchant.id,
        request_id: Some("req-fuzz".into()),
        payment_hash: B256::repeat_byte(0xa1),
        status: PaymentStatus::PartiallyCaptured,
        flow: Flow::Authorize,
        chain_id: CHAIN_ID,
        escrow: Address::repeat_byte(0xe5),
        payment_info: Value::Null,
        amounts: AmountsView {
            authorized: 1_000_000,
            captured: 400_000,
            refunded: 0,
            capturable: 600_000,
            refundable: 400_000,
        },
        transactions: vec![],
        last_error: None,
        capture_deadline: None,
        created_at: 0,
        updated_at: 0,
    }
}

impl FuzzService {
    fn mine(&self, merchant: &Merchant, id: Uuid) -> Result<PaymentView, ServiceError> {
        if id == self.payment.id && merchant.id == self.payment.merchant_id {
            Ok(self.payment.clone())
        } else {
            Err(ServiceError::new(
                ErrorCode::NotFound,
                format!("no payment {id}"),
            ))
        }
    }

    /// The verifier on `request`, with the cross-check against the SDK.
    async fn verify(
        &self,
        merchant: &Merchant,
        request: &VerifyRequest,
    ) -> Result<(), VerifyError> {
        let derived = auth_capture::derive_from_payment_payload(
            &request.payment_requirements,
            &request.payment_payload,
            &self.verifier.config().registry,
        );
        let outcome = self
            .verifier
            .verify(
                merchant,
                &request.payment_requirements,
                &request.payment_payload,
                derived,
                NOW,
            )
            .await
            .map(|_| ());
        if let Err(VerifyError::ChainUnavailable(_)) = &outcome {
            // Every offline check passed: so must the SDK's derivation and time window.
            let derived = auth_capture::derive_from_payment_payload(
                &request.payment_requirements,
                &request.payment_payload,
                &self.verifier.config().registry,
            )
            .expect("the verifier reached the chain with a payment the SDK cannot derive");
            auth_capture::check_timing(&request.payment_requirements, &derived, NOW)
                .expect("the verifier reached the chain outside the SDK's time window");
        }
        outcome
    }
}

impl PaymentService for FuzzService {
    async fn authorize(
        &self,
        merchant: &Merchant,
        request: AuthorizeRequest,
        _idempotency_key: Option<&str>,
    ) -> Result<PaymentView, ServiceError> {
        if let Some(wait) = request.wait {
            assert!(
                wait <= Duration::from_secs(50),
                "wait above the limit got through"
            );
        }
        let request = VerifyRequest::new(request.payment_payload, request.payment_requirements);
        self.verify(merchant, &request).await?;
        Err(ServiceError::new(
            ErrorCode::Internal,
            "verified offline payments cannot exist",
        ))
    }

    async fn capture(
        &self,
        merchant: &Merchant,
        id: Uuid,
        request: CaptureRequest,
    ) -> Result<PaymentView, ServiceError> {
        let p = self.mine(merchant, id)?;
        let amount = request.amount.unwrap_or(p.amounts.capturable);
        if amount == 0 {
            return Err(ServiceError::new(ErrorCode::InvalidAmount, "zero"));
        }
        if amount > p.amounts.capturable {
            return Err(ServiceError::new(ErrorCode::ExceedsCapturable, "too much"));
        }
        Ok(p)
    }

    async fn void(&self, merchant: &Merchant, id: Uuid) -> Result<PaymentView, ServiceError> {
        self.mine(merchant, id)
    }

    async fn refund(
        &self,
        merchant: &Merchant,
        id: Uuid,
        request: RefundRequest,
    ) -> Result<PaymentView, ServiceError> {
        let p = self.mine(merchant, id)?;
        if request.amount == 0 {
            return Err(ServiceError::new(ErrorCode::InvalidAmount, "zero"));
        }
        if request.amount > p.amounts.refundable {
            return Err(ServiceError::new(ErrorCode::ExceedsRefundable, "too much"));
        }
        Ok(p)
    }

    async fn get(
        &self,
        merchant: &Merchant,
        id: Uuid,
        wait: Option<Duration>,
    ) -> Result<PaymentView, ServiceError> {
        if let Some(wait) = wait {
            assert!(
                wait <= Duration::from_secs(50),
                "wait above the limit got through"
            );
        }
        self.mine(merchant, id)
    }

    fn terms(&self, merchant: &Merchant) -> x402_escrow_sdk::merchant::MerchantTerms {
        self.verifier.config().merchant_terms(merchant, Vec::new())
    }

    async fn by_request_id(
        &self,
        merchant: &Merchant,
        request_id: &str,
    ) -> Result<Vec<PaymentView>, ServiceError> {
        assert!(
            !request_id.is_empty() && request_id.len() <= 255,
            "request_id let through"
        );
        Ok(self
            .mine(merchant, self.payment.id)
            .into_iter()
            .filter(|p| p.request_id.as_deref() == Some(request_id))
            .collect())
    }

    async fn list_payments(
        &self,
        merchant: &Merchant,
        query: &x402_escrow_operator::service::PaymentQuery,
    ) -> Result<x402_escrow_operator::service::PaymentList, ServiceError> {
        assert!(
            (1..=x402_escrow_operator::api::routes::MAX_PAGE_LIMIT).contains(&query.limit),
            "limit let through"
        );
        let payments = self
            .mine(merchant, self.payment.id)
            .into_iter()
            .filter(|p| query.statuses.is_empty() || query.statuses.contains(&p.status))
            .filter(|p| query.request_id.is_none() || p.request_id == query.request_id)
            .collect();
        Ok(x402_escrow_operator::service::PaymentList {
            payments,
            next_cursor: None,
        })
    }
}

impl Facilitator for FuzzService {
    fn supported(&self) -> SupportedResponse {
        SupportedResponse {
            kinds: vec![],
            extensions: vec![],
            signers: Default::default(),
        }
    }

    async fn verify(&self, merchant: &Merchant, request: &VerifyRequest) -> VerifyResponse {
        match FuzzService::verify(self, merchant, request).await {
            Ok(()) => VerifyResponse::valid(Address::ZERO),
            Err(e) => VerifyResponse::invalid(e.code().as_str(), e.to_string(), None),
        }
    }

    async fn settle(
        &self,
        merchant: &Merchant,
        request: &VerifyRequest,
        _wait: Duration,
    ) -> SettleResponse {
        let reason = match FuzzService::verify(self, merchant, request).await {
            Ok(()) => reasons::UNEXPECTED_SETTLE_ERROR.to_owned(),
            Err(e) => e.code().as_str().to_owned(),
        };
        SettleResponse {
            success: false,
            error_reason: Some(reason),
            error_message: None,
            payer: None,
            transaction: None,
            network: Network::eip155(CHAIN_ID),
            amount: None,
            extensions: None,
        }
    }
}

/// The runtime, store and service, made once per process.
pub struct Fixture {
    pub runtime: tokio::runtime::Runtime,
    pub store: Store,
    pub service: Arc<FuzzService>,
    /// Merchant B's payment id (for "someone else's payment" requests).
    pub foreign_id: Uuid,
    counter: AtomicU64,
}

/// The process-wide fixture.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let (store, service) = runtime.block_on(async {
            sqlx::any::install_default_drivers();
            let store = Store::connect("sqlite::memory:").await.expect("store");
            store.migrate().await.expect("migrate");
            let new = |name: &str| NewMerchant {
                name: name.to_owned(),
                receivers: vec![PAY_TO],
                webhook_url: None,
                webhook_secret: None,
                capture_deadline_secs: 600,
            };
            let a = store
                .create_merchant_with_key(&new("a"), KEY_A)
                .await
                .expect("merchant a");
            store
                .create_merchant_with_key(&new("b"), KEY_B)
                .await
                .expect("merchant b");
            let service = FuzzService {
                verifier: Verifier::new(offline_provider(), verifier_config()),
                payment: payment_of(&a),
            };
            (store, Arc::new(service))
        });
        Fixture {
            runtime,
            store,
            service,
            foreign_id: Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_00b2),
            counter: AtomicU64::new(0),
        }
    })
}

fn app(fixture: &Fixture) -> Router {
    let state = ApiState::new(fixture.service.clone(), fixture.store.clone());
    let facilitator = facilitator::routes::<FuzzService>(
        fixture.store.clone(),
        FacilitatorSettings::new(Duration::from_millis(10)),
    );
    // Same assembly as `runtime::start`.
    router_with(state, facilitator)
}

fn router_with(state: ApiState<FuzzService>, facilitator: Router<ApiState<FuzzService>>) -> Router {
    router(state.clone()).merge(facilitator.with_state(state))
}

/// The endpoints an input can address (first byte, modulo the count).
const ENDPOINTS: usize = 9;

/// `api_bodies`: byte 0 picks the endpoint, byte 1 the variations (content type, whose payment,
/// which key, `Idempotency-Key` or not), the rest is the body (for `GET /v1/payments` the query
/// string; for authorize-with-query, the query up to the first newline, then the body). Every
/// response must satisfy [`check_response`].
pub fn api_bodies(data: &[u8]) {
    if let Some((uri, status, body)) = api_request(data) {
        check_response(&uri, status, &body);
    }
}

/// Sends the request `data` describes (see [`api_bodies`]); `None` when it is not a valid HTTP
/// request at all (nothing to send).
pub fn api_request(data: &[u8]) -> Option<(String, StatusCode, Vec<u8>)> {
    let fixture = fixture();
    let (head, body) = data.split_at(data.len().min(2));
    let endpoint = head.first().copied().unwrap_or(0) as usize % ENDPOINTS;
    let flags = head.get(1).copied().unwrap_or(0);
    let id = if flags & 0b10 == 0 {
        fixture.service.payment.id
    } else {
        fixture.foreign_id
    };
    let n = fixture.counter.fetch_add(1, Ordering::Relaxed);
    let (method, uri, body) = match endpoint {
        0 => (
            Method::POST,
            "/v1/payments/authorize".to_owned(),
            body.to_vec(),
        ),
        1 => (
            Method::POST,
            format!("/v1/payments/{id}/capture"),
            body.to_vec(),
        ),
        2 => (
            Method::POST,
            format!("/v1/payments/{id}/void"),
            body.to_vec(),
        ),
        3 => (
            Method::POST,
            format!("/v1/payments/{id}/refund"),
            body.to_vec(),
        ),
        4 => (Method::POST, "/verify".to_owned(), body.to_vec()),
        5 => (Method::POST, "/settle".to_owned(), body.to_vec()),
        6 => (Method::GET, format!("/v1/payments?{}", query(body)), vec![]),
        7 => {
            let split = body.iter().position(|b| *b == b'\n').unwrap_or(0);
            (
                Method::POST,
                format!("/v1/payments/authorize?{}", query(&body[..split])),
                body[split..].to_vec(),
            )
        }
        _ => (Method::GET, format!("/v1/payments/{id}"), vec![]),
    };
    let mut request = Request::builder().method(method).uri(uri.as_str());
    if flags & 0b1 == 0 {
        request = request.header("content-type", "application/json");
    }
    let key = if flags & 0b100 == 0 { KEY_A } else { KEY_B };
    request = request.header("authorization", format!("Bearer {key}"));
    if flags & 0b1000 == 0 {
        request = request.header("idempotency-key", format!("fuzz-{n}"));
    }
    let request = request.body(Body::from(body)).ok()?;
    let (status, bytes) = fixture.runtime.block_on(async {
        let response = app(fixture).oneshot(request).await.expect("infallible");
        let status = response.status();
        let bytes = to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        (status, bytes.to_vec())
    });
    if n % 4096 == 4095 {
        // Keep the idempotency table (one row per input) from growing without bound.
        fixture.runtime.block_on(async {
            sqlx::query("DELETE FROM idempotency_keys")
                .execute(fixture.store.pool())
                .await
                .expect("purge idempotency keys");
        });
    }
    Some((uri, status, bytes))
}

/// Seed inputs of `api_bodies`: `(file name, bytes, expected status)`.
pub fn seeds() -> Vec<(String, Vec<u8>, u16)> {
    let payment = sdk_harness::valid_payment(false);
    let authorize = serde_json::to_vec(&serde_json::json!({
        "paymentPayload": payment,
        "paymentRequirements": payment.accepted,
        "requestId": "req-fuzz",
    }))
    .expect("authorize body");
    let facilitator = serde_json::to_vec(&VerifyRequest::new(
        payment.clone(),
        payment.accepted.clone(),
    ))
    .expect("facilitator body");
    let with = |endpoint: u8, flags: u8, body: &[u8]| [&[endpoint, flags][..], body].concat();
    vec![
        // Valid payment: every offline check passes, the (mocked) chain is unreachable.
        ("seed-authorize".into(), with(0, 0, &authorize), 503),
        (
            "seed-authorize-wait".into(),
            with(7, 0, &[&b"wait=5\n"[..], &authorize].concat()),
            503,
        ),
        (
            "seed-capture".into(),
            with(1, 0, br#"{"amount":"100000"}"#),
            200,
        ),
        ("seed-capture-all".into(), with(1, 0, b""), 200),
        (
            "seed-capture-foreign".into(),
            with(1, 2, br#"{"amount":"1"}"#),
            404,
        ),
        ("seed-void".into(), with(2, 0, b"{}"), 200),
        ("seed-refund".into(), with(3, 0, br#"{"amount":"1"}"#), 200),
        ("seed-verify".into(), with(4, 0, &facilitator), 200),
        ("seed-settle".into(), with(5, 0, &facilitator), 200),
        ("seed-list".into(), with(6, 0, b"request_id=req-fuzz"), 200),
        ("seed-get".into(), with(8, 0, b""), 200),
        ("seed-get-other-merchant".into(), with(8, 4, b""), 404),
    ]
}

/// Percent-encodes `raw` for a query string (bytes outside `[A-Za-z0-9=&_.-]`).
fn query(raw: &[u8]) -> String {
    let mut out = String::with_capacity(raw.len());
    for b in raw {
        if b.is_ascii_alphanumeric() || b"=&_.-".contains(b) {
            out.push(*b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The properties of every response.
pub fn check_response(uri: &str, status: StatusCode, body: &[u8]) {
    assert_ne!(
        status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{uri}: 500 {}",
        String::from_utf8_lossy(body)
    );
    let value: Value = serde_json::from_slice(body).unwrap_or_else(|e| {
        panic!(
            "{uri}: {status} body is not JSON ({e}): {:?}",
            String::from_utf8_lossy(body)
        )
    });
    if status.is_client_error() || status.is_server_error() {
        let code = value["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("{uri}: {status} without error.code: {value}"));
        assert!(known_code(code), "{uri}: unpublished code {code:?}");
        assert!(
            value["error"]["message"].is_string(),
            "{uri}: error without message: {value}"
        );
    } else if uri == "/verify" {
        assert!(value["isValid"].is_boolean(), "{uri}: {value}");
        assert_ne!(
            value["isValid"], true,
            "{uri}: an offline verifier said valid: {value}"
        );
    } else if uri == "/settle" {
        assert_eq!(value["success"], false, "{uri}: {value}");
    }
}
