//! BuyerClient against a local axum merchant on 127.0.0.1:0 that verifies every payment the
//! way an operator would (decode, derive the PaymentInfo, check signature and timing).

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alloy::primitives::{Address, B256, address};
use alloy::signers::local::PrivateKeySigner;
use alloy::signers::{Signature, Signer, SignerSync};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use x402_escrow_sdk::buyer::receipt::{Disposition, RECEIPT_EXTENSION, classify};
use x402_escrow_sdk::buyer::{
    AssetLimits, BuyerClient, BuyerError, LedgerRecord, PaidResponse, PaymentStatus,
    PolicyViolation, RejectionReason, RetryPolicy, SpendLedger, SpendPolicy,
};
use x402_escrow_sdk::escrows::ESCROW_V1_0;
use x402_escrow_sdk::facilitator::SettleResponse;
use x402_escrow_sdk::schemes::{auth_capture, exact};
use x402_escrow_sdk::wire::codec;
use x402_escrow_sdk::wire::extensions::advertise_payment_identifier;
use x402_escrow_sdk::wire::{
    PaymentPayload, PaymentRequired, PaymentRequiredV1, PaymentRequirements, PaymentRequirementsV1,
    ResourceInfo, SchemePayload,
};
use x402_escrow_sdk::{Amount, EscrowRegistry, Network};

const USDC: Address = address!("0x036CbD53842c5426634e7929541eC2318f3dCF7e");
const SHOP: Address = address!("0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
const OPERATOR: Address = address!("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC");
const FEES: Address = address!("0x90F79bf6EB2c4f870365E785982E1f101E93b906");
const TX: B256 = B256::repeat_byte(0x7a);

fn now() -> u64 {
    x402_escrow_sdk::buyer::unix_now()
}

fn auth_capture_option(amount: u64, escrow: Address) -> PaymentRequirements {
    serde_json::from_value(json!({
        "scheme": "auth-capture",
        "network": "eip155:84532",
        "amount": amount.to_string(),
        "asset": USDC.to_checksum(None),
        "payTo": SHOP.to_checksum(None),
        "maxTimeoutSeconds": 120,
        "extra": {
            "name": "USDC",
            "version": "2",
            "captureAuthorizer": OPERATOR.to_checksum(None),
            "captureDeadline": now() + 3600,
            "refundDeadline": now() + 86_400,
            "feeRecipient": FEES.to_checksum(None),
            "minFeeBps": 0,
            "maxFeeBps": 100,
            "authCaptureEscrow": escrow.to_checksum(None)
        }
    }))
    .expect("auth-capture requirements")
}

fn exact_option(amount: u64) -> PaymentRequirements {
    serde_json::from_value(json!({
        "scheme": "exact",
        "network": "eip155:84532",
        "amount": amount.to_string(),
        "asset": USDC.to_checksum(None),
        "payTo": SHOP.to_checksum(None),
        "maxTimeoutSeconds": 120,
        "extra": {"name": "USDC", "version": "2"}
    }))
    .expect("exact requirements")
}

/// How a route answers a paid request.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Behaviour {
    /// 200 with a success receipt.
    Ok,
    /// 500 without a receipt for the first `n` paid attempts, then `Ok`.
    FailFirst(usize),
    /// 503 with a `settlement_pending` receipt first, then `Ok`.
    PendingFirst,
    /// The handler failed; the layer voided: 500 + success receipt saying `voided`.
    HandlerFailedVoided,
    /// The handler failed; 500 + success receipt without our extension.
    HandlerFailedPlain,
    /// 402 again: the payment was refused.
    Refuse,
}

/// What the merchant saw.
#[derive(Debug, Clone, Default)]
struct Seen {
    unpaid: usize,
    /// (payment header bytes, Idempotency-Key) of every paid request.
    paid: Vec<(String, String)>,
    /// Scheme and amount of each verified payment, the escrow payment hash for auth-capture.
    verified: Vec<(String, Amount, Option<B256>)>,
}

struct Merchant {
    v2_accepts: Vec<PaymentRequirements>,
    v1_accepts: Vec<PaymentRequirementsV1>,
    behaviour: Behaviour,
    seen: Mutex<Seen>,
    registry: EscrowRegistry,
}

type Shared = Arc<Merchant>;

impl Merchant {
    fn seen(&self) -> Seen {
        self.seen.lock().expect("lock").clone()
    }
}

/// Verifies a v2 payment like an operator would; returns (scheme, amount, payment hash, payer).
fn verify(
    merchant: &Merchant,
    offered: &[PaymentRequirements],
    payment: &PaymentPayload,
) -> Result<(String, Amount, Option<B256>, Address), String> {
    let requirements = offered
        .iter()
        .find(|r| r.check_matches(&payment.accepted).is_ok())
        .ok_or("accepted matches no offer")?;
    match &payment.payload {
        SchemePayload::AuthCapture(payload) => {
            let derived = auth_capture::derive_from_payment_payload(
                requirements,
                payment,
                &merchant.registry,
            )
            .map_err(|e| e.to_string())?;
            auth_capture::check_signature(requirements, payload).map_err(|e| e.to_string())?;
            auth_capture::check_timing(requirements, &derived, now()).map_err(|e| e.to_string())?;
            Ok((
                requirements.scheme.clone(),
                requirements.amount,
                Some(derived.payment_info_hash),
                derived.payer,
            ))
        }
        SchemePayload::Exact(payload) => {
            let payer =
                exact::verify_payload(requirements, payload, now()).map_err(|e| e.to_string())?;
            Ok((
                requirements.scheme.clone(),
                requirements.amount,
                None,
                payer,
            ))
        }
        other => Err(format!("unexpected payload {other:?}")),
    }
}

fn receipt_extension(status: &str, id: &str) -> serde_json::Map<String, serde_json::Value> {
    let mut ext = serde_json::Map::new();
    ext.insert(
        RECEIPT_EXTENSION.to_owned(),
        json!({"paymentId": format!("op_{id}"), "status": status}),
    );
    ext
}

async fn v2_route(State(m): State<Shared>, uri: Uri, headers: HeaderMap) -> Response {
    let Some(header) = headers.get(codec::PAYMENT_SIGNATURE) else {
        m.seen.lock().expect("lock").unpaid += 1;
        let mut challenge = PaymentRequired::new(
            ResourceInfo::new(format!("http://merchant.test{}", uri.path())),
            m.v2_accepts.clone(),
        );
        let mut ext = serde_json::Map::new();
        ext.insert(
            "payment-identifier".into(),
            advertise_payment_identifier(false),
        );
        challenge.extensions = Some(ext);
        return payment_required(&challenge, "payment required");
    };
    let idempotency = idempotency_key(&headers);
    let attempt = {
        let mut seen = m.seen.lock().expect("lock");
        seen.paid.push((
            header.to_str().expect("ascii").to_owned(),
            idempotency.clone(),
        ));
        seen.paid.len()
    };
    let payment = match codec::decode_payment_signature(header.as_bytes()) {
        Ok(p) => p,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    // The payment-identifier id is the Idempotency-Key (a structured-field string).
    assert_eq!(
        payment.payment_id().map(|id| format!("\"{id}\"")),
        Some(idempotency.clone())
    );
    let (scheme, amount, hash, payer) = match verify(&m, &m.v2_accepts, &payment) {
        Ok(v) => v,
        Err(e) => return (StatusCode::BAD_REQUEST, e).into_response(),
    };
    let id = idempotency.trim_matches('"').to_owned();
    let mut receipt = SettleResponse::success(TX, Network::BASE_SEPOLIA, payer, Some(amount));
    let respond = |status: StatusCode, receipt: &SettleResponse, body: &'static str| {
        let encoded = codec::encode_payment_response(receipt).expect("receipt");
        (status, [(codec::PAYMENT_RESPONSE, encoded)], body).into_response()
    };
    match m.behaviour {
        Behaviour::FailFirst(n) if attempt <= n => {
            return (StatusCode::INTERNAL_SERVER_ERROR, "upstream hiccup").into_response();
        }
        Behaviour::PendingFirst if attempt == 1 => {
            let pending = SettleResponse::pending(TX, Network::BASE_SEPOLIA, payer);
            return respond(StatusCode::SERVICE_UNAVAILABLE, &pending, "pending");
        }
        Behaviour::Refuse => {
            let mut challenge = PaymentRequired::new(
                ResourceInfo::new("http://merchant.test/"),
                m.v2_accepts.clone(),
            );
            challenge.error = Some("insufficient_funds".into());
            return payment_required(&challenge, "");
        }
        _ => {}
    }
    m.seen
        .lock()
        .expect("lock")
        .verified
        .push((scheme, amount, hash));
    match m.behaviour {
        Behaviour::HandlerFailedVoided => {
            receipt.extensions = Some(receipt_extension("voided", &id));
            respond(
                StatusCode::INTERNAL_SERVER_ERROR,
                &receipt,
                "handler failed",
            )
        }
        Behaviour::HandlerFailedPlain => respond(
            StatusCode::INTERNAL_SERVER_ERROR,
            &receipt,
            "handler failed",
        ),
        _ => {
            receipt.extensions = Some(receipt_extension("captured", &id));
            respond(StatusCode::OK, &receipt, "the paid content")
        }
    }
}

/// A 402 carrying `challenge` in the `PAYMENT-REQUIRED` header.
fn payment_required(challenge: &PaymentRequired, body: &'static str) -> Response {
    let encoded = codec::encode_payment_required(challenge).expect("encode");
    (
        StatusCode::PAYMENT_REQUIRED,
        [(codec::PAYMENT_REQUIRED, encoded)],
        body,
    )
        .into_response()
}

/// The request's `Idempotency-Key` (empty when absent).
fn idempotency_key(headers: &HeaderMap) -> String {
    headers
        .get(codec::IDEMPOTENCY_KEY)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

async fn v1_route(State(m): State<Shared>, headers: HeaderMap) -> Response {
    let Some(header) = headers.get(codec::X_PAYMENT) else {
        m.seen.lock().expect("lock").unpaid += 1;
        let body =
            serde_json::to_string(&PaymentRequiredV1::new(m.v1_accepts.clone())).expect("v1 body");
        return (
            StatusCode::PAYMENT_REQUIRED,
            [("content-type", "application/json")],
            body,
        )
            .into_response();
    };
    let idempotency = idempotency_key(&headers);
    m.seen
        .lock()
        .expect("lock")
        .paid
        .push((header.to_str().expect("ascii").to_owned(), idempotency));
    let v1 = match codec::decode_x_payment(header.as_bytes()) {
        Ok(p) => p,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let Some(offer) = m
        .v1_accepts
        .iter()
        .find(|o| o.scheme == v1.scheme && o.network == v1.network)
    else {
        return (StatusCode::BAD_REQUEST, "no such offer").into_response();
    };
    let payment = match v1.into_v2(offer) {
        Ok(p) => p,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let offered: Vec<PaymentRequirements> = m.v1_accepts.iter().map(|o| o.to_v2().0).collect();
    let (scheme, amount, hash, payer) = match verify(&m, &offered, &payment) {
        Ok(v) => v,
        Err(e) => return (StatusCode::BAD_REQUEST, e).into_response(),
    };
    m.seen
        .lock()
        .expect("lock")
        .verified
        .push((scheme, amount, hash));
    let receipt = SettleResponse::success(TX, Network::BASE_SEPOLIA, payer, Some(amount));
    let encoded = codec::encode_x_payment_response(&receipt).expect("receipt");
    (
        StatusCode::OK,
        [(codec::X_PAYMENT_RESPONSE, encoded)],
        "v1 content",
    )
        .into_response()
}

async fn free_route() -> &'static str {
    "free"
}

/// A merchant offering `accepts` and answering as `behaviour`, and a buyer with a budget of
/// 100: the merchant's base URL, the merchant, and the buyer.
async fn shop_and_buyer(
    accepts: Vec<PaymentRequirements>,
    behaviour: Behaviour,
) -> (String, Shared, Buyer) {
    let (base, m) = start(merchant(accepts, behaviour)).await;
    (base, m, buyer(policy(100)))
}

/// A shop offering one auth-capture option of `amount` (escrow v1.0) and behaving as
/// `behaviour`, a buyer with [`shop_and_buyer`]'s policy, and the buyer's `GET /paid`.
async fn buy_one(
    amount: u64,
    behaviour: Behaviour,
) -> (Shared, Buyer, Result<PaidResponse, BuyerError>) {
    let accepts = vec![auth_capture_option(amount, ESCROW_V1_0)];
    let (base, m, b) = shop_and_buyer(accepts, behaviour).await;
    let result = b.get_paid(&base).await;
    (m, b, result)
}

async fn start(merchant: Merchant) -> (String, Shared) {
    let shared = Arc::new(merchant);
    let app = Router::new()
        .route("/paid", axum::routing::get(v2_route).post(v2_route))
        .route("/v1", axum::routing::get(v1_route))
        .route("/free", axum::routing::get(free_route))
        .with_state(Arc::clone(&shared));
    (support::serve(app).await, shared)
}

fn merchant(v2_accepts: Vec<PaymentRequirements>, behaviour: Behaviour) -> Merchant {
    Merchant {
        v2_accepts,
        v1_accepts: Vec::new(),
        behaviour,
        seen: Mutex::new(Seen::default()),
        registry: EscrowRegistry::canonical(),
    }
}

fn policy(max_per_payment: u64) -> SpendPolicy {
    SpendPolicy::new(vec![AssetLimits {
        max_per_payment: Some(Amount::from(max_per_payment)),
        daily_cap: Some(Amount::from(1_000u64)),
        total_budget: Some(Amount::from(10_000u64)),
        ..AssetLimits::new(Network::BASE_SEPOLIA, USDC)
    }])
}

/// Wraps a key and counts every signature it makes.
struct CountingSigner {
    inner: PrivateKeySigner,
    signatures: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl Signer for CountingSigner {
    async fn sign_hash(&self, hash: &B256) -> alloy::signers::Result<Signature> {
        self.signatures.fetch_add(1, Ordering::SeqCst);
        self.inner.sign_hash(hash).await
    }
    fn address(&self) -> Address {
        self.inner.address()
    }
    fn chain_id(&self) -> Option<u64> {
        Signer::chain_id(&self.inner)
    }
    fn set_chain_id(&mut self, chain_id: Option<u64>) {
        Signer::set_chain_id(&mut self.inner, chain_id);
    }
}

impl SignerSync for CountingSigner {
    fn sign_hash_sync(&self, hash: &B256) -> alloy::signers::Result<Signature> {
        self.signatures.fetch_add(1, Ordering::SeqCst);
        self.inner.sign_hash_sync(hash)
    }
    fn chain_id_sync(&self) -> Option<u64> {
        self.inner.chain_id_sync()
    }
}

fn key() -> PrivateKeySigner {
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
        .parse()
        .expect("key")
}

struct Buyer {
    client: BuyerClient<CountingSigner>,
    signatures: Arc<AtomicUsize>,
    _dir: tempfile::TempDir,
}

impl Buyer {
    /// `GET {base}/paid` through the buyer's client.
    async fn get_paid(&self, base: &str) -> Result<PaidResponse, BuyerError> {
        self.client.get(format!("{base}/paid")).await
    }

    /// The ledger's record of payment `id`, which must exist.
    fn record(&self, id: &str) -> LedgerRecord {
        let record = self.client.ledger().get(id).expect("ledger");
        record.expect("recorded")
    }
}

fn buyer(policy: SpendPolicy) -> Buyer {
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = SpendLedger::open(dir.path().join("ledger.json")).expect("ledger");
    let signatures = Arc::new(AtomicUsize::new(0));
    let signer = CountingSigner {
        inner: key(),
        signatures: Arc::clone(&signatures),
    };
    let client =
        BuyerClient::new(reqwest::Client::new(), signer, policy, ledger).with_retry(RetryPolicy {
            max_retries: 3,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
        });
    Buyer {
        client,
        signatures,
        _dir: dir,
    }
}

#[tokio::test]
async fn pays_the_cheapest_auth_capture_option_and_records_it() {
    let (base, m, b) = shop_and_buyer(
        vec![
            exact_option(10),
            auth_capture_option(100, ESCROW_V1_0),
            auth_capture_option(80, ESCROW_V1_0),
        ],
        Behaviour::Ok,
    )
    .await;
    let paid = b.get_paid(&base).await.expect("paid");
    assert_eq!(paid.response.status(), 200);
    let payment = paid.payment.expect("a payment was made");
    assert_eq!(
        paid.response.text().await.expect("body"),
        "the paid content"
    );

    let seen = m.seen();
    assert_eq!(seen.unpaid, 1);
    assert_eq!(seen.paid.len(), 1);
    // auth-capture preferred over the cheaper exact; the cheapest auth-capture chosen.
    assert_eq!(seen.verified.len(), 1);
    let (scheme, amount, hash) = seen.verified[0].clone();
    assert_eq!(
        (scheme.as_str(), amount),
        ("auth-capture", Amount::from(80u64))
    );

    assert_eq!(payment.scheme, "auth-capture");
    assert_eq!(payment.amount, Amount::from(80u64));
    assert_eq!(payment.status, PaymentStatus::Paid);
    assert_eq!(payment.transaction, Some(TX));
    assert_eq!(payment.payment_hash, hash);
    assert_eq!(payment.attempts, 1);
    assert_eq!(
        payment.merchant_payment_id,
        Some(format!("op_{}", payment.payment_id))
    );
    assert_eq!(seen.paid[0].1, format!("\"{}\"", payment.payment_id));
    assert_eq!(b.signatures.load(Ordering::SeqCst), 1);

    let record = b.record(&payment.payment_id);
    assert_eq!(record.status, PaymentStatus::Paid);
    assert_eq!(record.payment_hash, hash);
    assert_eq!(record.escrow, Some(ESCROW_V1_0));
    assert_eq!(record.transaction, Some(TX));
    assert!(record.valid_before.is_some() && record.authorization_expiry.is_some());
    assert_eq!(record.host, "127.0.0.1");
}

#[tokio::test]
async fn retries_resend_the_identical_payment() {
    let (base, m, b) = shop_and_buyer(
        vec![auth_capture_option(50, ESCROW_V1_0)],
        Behaviour::FailFirst(2),
    )
    .await;
    // A POST with a body: the body is replayed too.
    let request = b
        .client
        .http()
        .post(format!("{base}/paid"))
        .body("{\"q\":1}")
        .build()
        .expect("request");
    let paid = b.client.send(request).await.expect("paid");
    assert_eq!(paid.response.status(), 200);
    let payment = paid.payment.expect("payment");
    assert_eq!(payment.attempts, 3);
    assert_eq!(payment.status, PaymentStatus::Paid);

    let seen = m.seen();
    assert_eq!(seen.unpaid, 1);
    assert_eq!(seen.paid.len(), 3);
    assert!(
        seen.paid.iter().all(|p| *p == seen.paid[0]),
        "every retry carries the same header bytes and Idempotency-Key"
    );
    assert_eq!(b.signatures.load(Ordering::SeqCst), 1, "signed once");
    assert_eq!(b.client.ledger().records().expect("records").len(), 1);
}

#[tokio::test]
async fn settlement_pending_is_retried_with_the_same_payment() {
    let (m, b, paid) = buy_one(50, Behaviour::PendingFirst).await;
    let paid = paid.expect("paid");
    let payment = paid.payment.expect("payment");
    assert_eq!(payment.attempts, 2);
    assert_eq!(payment.status, PaymentStatus::Paid);
    let seen = m.seen();
    assert_eq!(seen.paid.len(), 2);
    assert_eq!(seen.paid[0], seen.paid[1]);
    assert_eq!(b.signatures.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn retries_stop_and_the_payment_stays_reserved() {
    let (m, _b, paid) = buy_one(50, Behaviour::FailFirst(100)).await;
    let paid = paid.expect("answer");
    assert_eq!(paid.response.status(), 500);
    let payment = paid.payment.expect("payment");
    assert_eq!(payment.attempts, 4);
    // Unknown outcome: the amount stays counted until reconciled.
    assert_eq!(payment.status, PaymentStatus::Reserved);
    assert_eq!(m.seen().paid.len(), 4);
}

#[tokio::test]
async fn v1_challenge_in_the_body_is_paid_with_x_payment() {
    let (base, m) = start(Merchant {
        v1_accepts: vec![PaymentRequirementsV1::from_v2(
            &exact_option(25),
            &ResourceInfo::new("http://merchant.test/v1"),
        )],
        ..merchant(Vec::new(), Behaviour::Ok)
    })
    .await;
    let b = buyer(policy(100));
    let paid = b.client.get(format!("{base}/v1")).await.expect("paid");
    assert_eq!(paid.response.status(), 200);
    let payment = paid.payment.expect("payment");
    assert_eq!(payment.scheme, "exact");
    assert_eq!(payment.status, PaymentStatus::Paid);
    assert_eq!(payment.transaction, Some(TX));
    assert_eq!(payment.payment_hash, None);
    let seen = m.seen();
    assert_eq!(
        seen.verified,
        vec![("exact".to_owned(), Amount::from(25u64), None)]
    );
    assert_eq!(seen.paid[0].1, format!("\"{}\"", payment.payment_id));
}

#[tokio::test]
async fn a_policy_refusal_signs_and_sends_nothing() {
    let (base, m, b) = shop_and_buyer(
        vec![auth_capture_option(500, ESCROW_V1_0), exact_option(400)],
        Behaviour::Ok,
    )
    .await;
    let err = b.get_paid(&base).await.expect_err("refused");
    match err {
        // The refusal of the most preferred option (auth-capture) is reported.
        BuyerError::Policy(PolicyViolation::MaxPerPaymentExceeded {
            limit, requested, ..
        }) => {
            assert_eq!(limit, Amount::from(100u64));
            assert_eq!(requested, Amount::from(500u64));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(b.signatures.load(Ordering::SeqCst), 0, "nothing signed");
    let seen = m.seen();
    assert_eq!(seen.unpaid, 1);
    assert!(seen.paid.is_empty(), "no request carried a payment");
    assert!(b.client.ledger().records().expect("records").is_empty());
}

#[tokio::test]
async fn a_voided_receipt_returns_the_budget() {
    let (_m, b, paid) = buy_one(60, Behaviour::HandlerFailedVoided).await;
    let paid = paid.expect("answer");
    assert_eq!(paid.response.status(), 500);
    let payment = paid.payment.expect("payment");
    assert_eq!(payment.status, PaymentStatus::Voided);
    assert_eq!(payment.attempts, 1, "a settled payment is not retried");
    let usage = b
        .client
        .ledger()
        .usage(Network::BASE_SEPOLIA, USDC, now())
        .expect("usage");
    assert_eq!(usage.spent_total, Amount::ZERO);
}

#[tokio::test]
async fn a_failed_handler_without_evidence_keeps_the_amount_counted() {
    let (_m, b, paid) = buy_one(60, Behaviour::HandlerFailedPlain).await;
    let paid = paid.expect("answer");
    let payment = paid.payment.expect("payment");
    assert_eq!(payment.status, PaymentStatus::Paid);
    assert!(payment.void_expected);
    let record = b.record(&payment.payment_id);
    assert!(record.void_expected);
    assert_eq!(record.spent(), Amount::from(60u64));
}

#[tokio::test]
async fn a_refused_payment_releases_the_reservation() {
    let (m, b, err) = buy_one(60, Behaviour::Refuse).await;
    let err = err.expect_err("refused");
    match err {
        BuyerError::PaymentRejected { status, reason } => {
            assert_eq!(status, 402);
            assert_eq!(reason.as_deref(), Some("insufficient_funds"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(m.seen().paid.len(), 1, "not retried");
    let records = b.client.ledger().records().expect("records");
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].status, PaymentStatus::Failed);
    assert_eq!(records[0].spent(), Amount::ZERO);
}

#[tokio::test]
async fn unpayable_options_are_listed() {
    let unknown_escrow = Address::repeat_byte(0x42);
    let (base, m, b) =
        shop_and_buyer(vec![auth_capture_option(10, unknown_escrow)], Behaviour::Ok).await;
    let err = b.get_paid(&base).await.expect_err("unpayable");
    match &err {
        BuyerError::NoAcceptableRequirement { reasons } => {
            assert_eq!(reasons.len(), 1);
            assert!(
                matches!(&reasons[0].reason, RejectionReason::Unpayable(r) if r.contains("not a known")),
                "{reasons:?}"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("accepts[0]"), "{err}");
    assert!(m.seen().paid.is_empty());
    assert_eq!(b.signatures.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn free_resources_pass_through() {
    let (base, m, b) = shop_and_buyer(vec![exact_option(1)], Behaviour::Ok).await;
    let paid = b.client.get(format!("{base}/free")).await.expect("free");
    assert!(paid.payment.is_none());
    assert_eq!(paid.response.text().await.expect("body"), "free");
    assert_eq!(m.seen().unpaid, 0);
}

#[test]
fn client_futures_are_send_and_the_client_is_shareable() {
    fn assert_send<T: Send>(_: &T) {}
    fn assert_send_sync<T: Send + Sync + Clone>(_: &T) {}
    let b = buyer(policy(1));
    assert_send_sync(&b.client);
    let future = b.client.get("http://127.0.0.1:9/");
    assert_send(&future);
}

#[test]
fn receipt_classification_table() {
    let payer = SHOP;
    let success = SettleResponse::success(TX, Network::BASE, payer, None);
    let pending = SettleResponse::pending(TX, Network::BASE, payer);
    let failure = SettleResponse::failure("insufficient_funds", "low", Network::BASE, None);
    let mut voided = success.clone();
    voided.extensions = Some(receipt_extension("voided", "x"));
    let mut refunded = success.clone();
    let mut ext = serde_json::Map::new();
    ext.insert(
        RECEIPT_EXTENSION.into(),
        json!({"status": "refunded", "refundedAmount": "40"}),
    );
    refunded.extensions = Some(ext);
    let paid = |void_expected| Disposition::Settled {
        status: PaymentStatus::Paid,
        void_expected,
    };
    let cases: Vec<(u16, Option<&SettleResponse>, Disposition)> = vec![
        (200, Some(&success), paid(false)),
        (500, Some(&success), paid(true)),
        (
            500,
            Some(&voided),
            Disposition::Settled {
                status: PaymentStatus::Voided,
                void_expected: false,
            },
        ),
        (
            200,
            Some(&refunded),
            Disposition::Settled {
                status: PaymentStatus::Refunded {
                    amount: Amount::from(40u64),
                },
                void_expected: false,
            },
        ),
        (503, Some(&pending), Disposition::Retry),
        (200, Some(&pending), Disposition::Unknown),
        (402, Some(&failure), Disposition::Rejected),
        (200, None, paid(false)),
        (402, None, Disposition::Rejected),
        (400, None, Disposition::Rejected),
        (422, None, Disposition::Rejected),
        (500, None, Disposition::Retry),
        (409, None, Disposition::Retry),
        (429, None, Disposition::Retry),
        (404, None, Disposition::Unknown),
    ];
    for (status, receipt, expected) in cases {
        assert_eq!(
            classify(StatusCode::from_u16(status).expect("status"), receipt),
            expected,
            "{status} {receipt:?}"
        );
    }
}
