//! Shared by the `api_*` suites: an in-memory fake [`PaymentService`] (and facilitator), the
//! router the operator serves over a real store, and request helpers.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use alloy::primitives::{Address, B256};
use axum::Router;
use axum::body::{Body, Bytes, to_bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode};
use serde_json::{Value, json};
use tokio::sync::{Mutex, Semaphore};
use tower::ServiceExt;
use uuid::Uuid;
use x402_escrow_operator::api::facilitator::{Facilitator, FacilitatorSettings};
use x402_escrow_operator::api::{ApiState, router_with_facilitator};
use x402_escrow_operator::lifecycle::{Flow, PaymentStatus};
use x402_escrow_operator::service::{
    AmountsView, AuthorizeRequest, CaptureRequest, ErrorCode, PaymentList, PaymentQuery,
    PaymentService, PaymentView, RefundRequest, ServiceError,
};
use x402_escrow_operator::store::{Merchant, NewMerchant, Store};
use x402_escrow_sdk::Network;
use x402_escrow_sdk::facilitator::{
    SettleResponse, SupportedKind, SupportedResponse, VerifyRequest, VerifyResponse,
};
use x402_escrow_types::PageCursor;

/// An in-memory payment service. `authorize` of a request whose `requestId` is `"fail"` answers
/// `insufficient_funds`; `"boom"` answers `chain_unavailable` (503); `"pending"` stays
/// `authorizing`. When `gate` is set, authorize waits for a permit first.
pub struct FakeService {
    payments: Mutex<HashMap<Uuid, PaymentView>>,
    /// Calls to `authorize`, `capture`, `void`, `refund`.
    pub calls: AtomicUsize,
    /// Blocks authorize until a permit is added.
    pub gate: Option<Arc<Semaphore>>,
    /// Signalled when an authorize call has entered (before the gate).
    pub entered: Arc<Semaphore>,
    /// The `wait` and idempotency key of the last authorize call.
    pub last_authorize: std::sync::Mutex<Option<(Option<std::time::Duration>, Option<String>)>>,
    /// The `wait` of the last `get` call.
    pub last_get_wait: std::sync::Mutex<Option<Option<std::time::Duration>>>,
}

impl Default for FakeService {
    fn default() -> Self {
        FakeService {
            payments: Mutex::new(HashMap::new()),
            calls: AtomicUsize::new(0),
            gate: None,
            entered: Arc::new(Semaphore::new(0)),
            last_authorize: std::sync::Mutex::new(None),
            last_get_wait: std::sync::Mutex::new(None),
        }
    }
}

impl FakeService {
    pub fn gated() -> (FakeService, Arc<Semaphore>) {
        let gate = Arc::new(Semaphore::new(0));
        (
            FakeService {
                gate: Some(gate.clone()),
                ..FakeService::default()
            },
            gate,
        )
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    async fn mine(&self, merchant: &Merchant, id: Uuid) -> Result<PaymentView, ServiceError> {
        self.payments
            .lock()
            .await
            .get(&id)
            .filter(|p| p.merchant_id == merchant.id)
            .cloned()
            .ok_or_else(|| ServiceError::new(ErrorCode::NotFound, format!("no payment {id}")))
    }

    async fn put(&self, view: PaymentView) -> PaymentView {
        self.payments.lock().await.insert(view.id, view.clone());
        view
    }
}

fn view(
    merchant: &Merchant,
    request_id: Option<String>,
    amount: u128,
    status: PaymentStatus,
) -> PaymentView {
    let id = Uuid::now_v7();
    PaymentView {
        id,
        merchant_id: merchant.id,
        request_id,
        payment_hash: B256::from_slice(
            &[id.as_bytes().as_slice(), id.as_bytes().as_slice()].concat(),
        ),
        status,
        flow: Flow::Authorize,
        chain_id: 31337,
        escrow: Address::repeat_byte(0xE5),
        payment_info: json!({"maxAmount": amount.to_string()}),
        amounts: AmountsView {
            authorized: amount,
            captured: 0,
            refunded: 0,
            capturable: amount,
            refundable: 0,
        },
        transactions: vec![],
        last_error: None,
        capture_deadline: Some(1_700_000_000_000),
        created_at: 1_700_000_000_000,
        updated_at: 1_700_000_000_000,
    }
}

/// `whole` once nothing is `left`, else `part`.
fn whole_or_part(left: u128, whole: PaymentStatus, part: PaymentStatus) -> PaymentStatus {
    if left == 0 { whole } else { part }
}

impl PaymentService for FakeService {
    async fn authorize(
        &self,
        merchant: &Merchant,
        request: AuthorizeRequest,
        idempotency_key: Option<&str>,
    ) -> Result<PaymentView, ServiceError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut last) = self.last_authorize.lock() {
            *last = Some((request.wait, idempotency_key.map(str::to_owned)));
        }
        self.entered.add_permits(1);
        if let Some(gate) = &self.gate {
            let permit = gate
                .acquire()
                .await
                .map_err(|e| ServiceError::new(ErrorCode::Internal, e.to_string()))?;
            permit.forget();
        }
        match request.request_id.as_deref() {
            Some("fail") => {
                return Err(ServiceError::new(
                    ErrorCode::InsufficientFunds,
                    "payer balance 5 < 1000",
                ));
            }
            Some("boom") => {
                return Err(ServiceError::new(ErrorCode::ChainUnavailable, "rpc down"));
            }
            _ => {}
        }
        let amount: u128 = request
            .payment_requirements
            .amount
            .to_string()
            .parse()
            .unwrap_or(0);
        let status = if request.request_id.as_deref() == Some("pending") {
            PaymentStatus::Authorizing
        } else {
            PaymentStatus::Authorized
        };
        Ok(self
            .put(view(merchant, request.request_id, amount, status))
            .await)
    }

    async fn capture(
        &self,
        merchant: &Merchant,
        id: Uuid,
        request: CaptureRequest,
    ) -> Result<PaymentView, ServiceError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let mut p = self.mine(merchant, id).await?;
        let amount = request.amount.unwrap_or(p.amounts.capturable);
        if amount > p.amounts.capturable {
            return Err(ServiceError::new(
                ErrorCode::ExceedsCapturable,
                format!("{amount} > {}", p.amounts.capturable),
            ));
        }
        p.amounts.captured += amount;
        p.amounts.capturable -= amount;
        p.amounts.refundable += amount;
        p.status = whole_or_part(
            p.amounts.capturable,
            PaymentStatus::Captured,
            PaymentStatus::PartiallyCaptured,
        );
        Ok(self.put(p).await)
    }

    async fn refund(
        &self,
        merchant: &Merchant,
        id: Uuid,
        request: RefundRequest,
    ) -> Result<PaymentView, ServiceError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let mut p = self.mine(merchant, id).await?;
        if request.amount > p.amounts.refundable {
            return Err(ServiceError::new(ErrorCode::ExceedsRefundable, "too much"));
        }
        p.amounts.refunded += request.amount;
        p.amounts.refundable -= request.amount;
        p.status = whole_or_part(
            p.amounts.refundable,
            PaymentStatus::Refunded,
            PaymentStatus::PartiallyRefunded,
        );
        Ok(self.put(p).await)
    }

    async fn void(&self, merchant: &Merchant, id: Uuid) -> Result<PaymentView, ServiceError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let mut p = self.mine(merchant, id).await?;
        if p.status != PaymentStatus::Authorized {
            return Err(ServiceError::new(
                ErrorCode::InvalidState,
                format!("cannot void a {:?} payment", p.status),
            ));
        }
        p.status = PaymentStatus::Voided;
        p.amounts.capturable = 0;
        Ok(self.put(p).await)
    }

    async fn get(
        &self,
        merchant: &Merchant,
        id: Uuid,
        wait: Option<std::time::Duration>,
    ) -> Result<PaymentView, ServiceError> {
        if let Ok(mut last) = self.last_get_wait.lock() {
            *last = Some(wait);
        }
        self.mine(merchant, id).await
    }

    fn terms(&self, merchant: &Merchant) -> x402_escrow_sdk::merchant::MerchantTerms {
        // Fixed terms: the API tests check the route's auth and shape, not the engine's values.
        x402_escrow_sdk::merchant::MerchantTerms {
            merchant_id: merchant.id.to_string(),
            name: merchant.name.clone(),
            network: x402_escrow_sdk::Network::eip155(31337),
            receivers: merchant.receivers.clone(),
            capture_authorizer: alloy::primitives::Address::repeat_byte(0x0a),
            capture_authorizers: Vec::new(),
            fee_recipient: alloy::primitives::Address::repeat_byte(0x0a),
            fee_bps: 100,
            capture_deadline_seconds: 3600,
            expiry_margin_seconds: 60,
            clock_skew_seconds: 60,
            escrows: Vec::new(),
            assets: Vec::new(),
        }
    }

    async fn by_request_id(
        &self,
        merchant: &Merchant,
        request_id: &str,
    ) -> Result<Vec<PaymentView>, ServiceError> {
        let mut out: Vec<PaymentView> = self
            .payments
            .lock()
            .await
            .values()
            .filter(|p| p.merchant_id == merchant.id && p.request_id.as_deref() == Some(request_id))
            .cloned()
            .collect();
        out.sort_by_key(|p| std::cmp::Reverse(p.id));
        Ok(out)
    }

    async fn list_payments(
        &self,
        merchant: &Merchant,
        query: &PaymentQuery,
    ) -> Result<PaymentList, ServiceError> {
        let payer = |p: &PaymentView| {
            p.payment_info["payer"]
                .as_str()
                .and_then(|a| a.parse::<Address>().ok())
        };
        let mut out: Vec<PaymentView> = self
            .payments
            .lock()
            .await
            .values()
            .filter(|p| p.merchant_id == merchant.id)
            .filter(|p| query.statuses.is_empty() || query.statuses.contains(&p.status))
            .filter(|p| query.created_after.is_none_or(|t| p.created_at > t))
            .filter(|p| query.created_before.is_none_or(|t| p.created_at < t))
            .filter(|p| query.request_id.is_none() || p.request_id == query.request_id)
            .filter(|p| query.payer.is_none() || payer(p) == query.payer)
            .filter(|p| query.min_amount.is_none_or(|a| p.amounts.authorized >= a))
            .filter(|p| query.max_amount.is_none_or(|a| p.amounts.authorized <= a))
            .filter(|p| {
                query
                    .cursor
                    .is_none_or(|c| (p.created_at, p.id) < (c.created_at, c.id))
            })
            .cloned()
            .collect();
        out.sort_by_key(|p| std::cmp::Reverse((p.created_at, p.id)));
        let limit = query.limit as usize;
        let next_cursor = (out.len() > limit).then(|| {
            let last = &out[limit - 1];
            PageCursor {
                created_at: last.created_at,
                id: last.id,
            }
            .encode()
        });
        out.truncate(limit);
        Ok(PaymentList {
            payments: out,
            next_cursor,
        })
    }
}

pub const KEY_A: &str = "x402_sk_merchant_a_test_key";
pub const KEY_B: &str = "x402_sk_merchant_b_test_key";

pub fn new_merchant(name: &str) -> NewMerchant {
    NewMerchant {
        name: name.to_owned(),
        receivers: vec![Address::repeat_byte(0xAA)],
        webhook_url: None,
        webhook_secret: None,
        capture_deadline_secs: 3600,
    }
}

/// The facilitator answers with the real response types (the engine's checks are tested in
/// `facilitator_api`; here only their JSON matters).
impl Facilitator for FakeService {
    fn supported(&self) -> SupportedResponse {
        SupportedResponse {
            kinds: vec![SupportedKind {
                x402_version: 2,
                scheme: "auth-capture".into(),
                network: "eip155:31337".into(),
                extra: Some(json!({"captureAuthorizer": Address::repeat_byte(0x0A)})),
            }],
            extensions: vec!["payment-identifier".into()],
            signers: [("eip155:*".to_owned(), vec![Address::repeat_byte(0x0A)])]
                .into_iter()
                .collect(),
        }
    }

    async fn verify(&self, _merchant: &Merchant, _request: &VerifyRequest) -> VerifyResponse {
        VerifyResponse::valid(Address::repeat_byte(1))
    }

    async fn settle(
        &self,
        _merchant: &Merchant,
        _request: &VerifyRequest,
        _wait: std::time::Duration,
    ) -> SettleResponse {
        SettleResponse::pending(
            B256::repeat_byte(9),
            Network::eip155(31337),
            Address::repeat_byte(1),
        )
    }
}

/// A router over `store` (migrated) with merchants A and B.
pub struct App {
    pub router: Router,
    pub service: Arc<FakeService>,
    pub store: Store,
    pub merchant_a: Merchant,
    pub merchant_b: Merchant,
}

pub async fn app_with(
    store: Store,
    service: FakeService,
    tweak: impl FnOnce(&mut ApiState<FakeService>),
) -> App {
    let merchant_a = store
        .create_merchant_with_key(&new_merchant("a"), KEY_A)
        .await
        .expect("merchant a");
    let merchant_b = store
        .create_merchant_with_key(&new_merchant("b"), KEY_B)
        .await
        .expect("merchant b");
    let service = Arc::new(service);
    let mut state = ApiState::new(service.clone(), store.clone());
    tweak(&mut state);
    App {
        router: router_with_facilitator(state, FacilitatorSettings::default()),
        service,
        store,
        merchant_a,
        merchant_b,
    }
}

/// A fresh migrated SQLite store in `dir`.
pub async fn sqlite_store(dir: &tempfile::TempDir) -> Store {
    sqlx::any::install_default_drivers();
    let url = format!("sqlite://{}/api.db?mode=rwc", dir.path().display());
    let store = Store::connect(&url).await.expect("connect");
    store.migrate().await.expect("migrate");
    store
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The error code of an error body.
    pub fn code(&self) -> String {
        let v = self.json();
        assert!(
            v["error"]["message"].is_string(),
            "error without message: {v}"
        );
        v["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error code in {v}"))
            .to_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A request builder.
pub struct Call {
    method: Method,
    uri: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Call {
    pub fn new(method: Method, uri: impl Into<String>) -> Call {
        Call {
            method,
            uri: uri.into(),
            headers: vec![],
            body: vec![],
        }
    }
    pub fn get(uri: impl Into<String>) -> Call {
        Call::new(Method::GET, uri)
    }
    pub fn post(uri: impl Into<String>) -> Call {
        Call::new(Method::POST, uri)
    }
    pub fn header(mut self, name: &str, value: &str) -> Call {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
    pub fn key(self, api_key: &str) -> Call {
        self.header("authorization", &format!("Bearer {api_key}"))
    }
    pub fn idem(self, key: &str) -> Call {
        self.header("idempotency-key", &format!("\"{key}\""))
    }
    pub fn json(mut self, value: &Value) -> Call {
        self.body = serde_json::to_vec(value).expect("json");
        self.header("content-type", "application/json")
    }
    pub fn raw(mut self, body: impl Into<Vec<u8>>) -> Call {
        self.body = body.into();
        self
    }
    pub async fn send(self, router: &Router) -> Reply {
        let mut req = Request::builder().method(self.method).uri(self.uri);
        for (k, v) in &self.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let req = req.body(Body::from(self.body)).expect("request");
        let response = router.clone().oneshot(req).await.expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let body = to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        Reply {
            status,
            headers,
            body,
        }
    }
}

/// A JSON requirements object.
pub fn requirements(amount: &str) -> Value {
    json!({
        "scheme": "test-scheme",
        "network": "eip155:31337",
        "amount": amount,
        "asset": "0x7070707070707070707070707070707070707070",
        "payTo": "0xaAaAaAaaAaAaAaaAaAAAAAAAAaaaAaAaAaaAaaAa",
        "maxTimeoutSeconds": 600
    })
}

/// An authorize body.
pub fn authorize_body(amount: &str, request_id: &str) -> Value {
    json!({
        "paymentPayload": {
            "x402Version": 2,
            "accepted": requirements(amount),
            "payload": {"signature": "0x01"}
        },
        "paymentRequirements": requirements(amount),
        "requestId": request_id
    })
}

/// Authorizes a payment as `api_key`; returns its id.
pub async fn authorize(
    app: &App,
    api_key: &str,
    idem: &str,
    amount: &str,
    request_id: &str,
) -> String {
    let reply = Call::post("/v1/payments/authorize")
        .key(api_key)
        .idem(idem)
        .json(&authorize_body(amount, request_id))
        .send(&app.router)
        .await;
    assert_eq!(
        reply.status,
        StatusCode::CREATED,
        "{:?}",
        String::from_utf8_lossy(&reply.body)
    );
    reply.json()["id"].as_str().expect("id").to_owned()
}

/// `POST /v1/payments/{id}/{action}` as `api_key` with the `Idempotency-Key` `idem` and `body`
/// as JSON (`None`: no body).
pub async fn act(
    app: &App,
    api_key: &str,
    id: &str,
    action: &str,
    idem: &str,
    body: Option<Value>,
) -> Reply {
    let call = Call::post(format!("/v1/payments/{id}/{action}"))
        .key(api_key)
        .idem(idem);
    match body {
        Some(body) => call.json(&body),
        None => call,
    }
    .send(&app.router)
    .await
}
