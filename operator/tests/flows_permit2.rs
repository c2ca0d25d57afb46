//! Permit2 payments (`extra.assetTransferMethod: "permit2"`) through a started operator on
//! anvil with our contracts and Uniswap Permit2 (the testkit's): over the REST API (authorize →
//! capture, authorize → void, charge), through the SDK's merchant layer paid by the SDK's buyer
//! client, and through the facilitator `/verify` and `/settle`. Refusals (no Permit2 allowance,
//! a bad signature, a wrong spender, an expired deadline, a deployment without a Permit2
//! collector) each have their own code and change nothing. Balances are checked exactly; the
//! database agrees with the chain and no nonce is skipped at the end.

mod operator_support;
mod store_support;

use std::time::Duration;

use alloy::primitives::{Address, B256, U256};
use alloy::signers::local::PrivateKeySigner;
use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use operator_support::*;
use serde_json::{Value, json};
use x402_escrow_bindings::TestUSDC;
use x402_escrow_bindings::deploy::PERMIT2;
use x402_escrow_operator::runtime::RunningOperator;
use x402_escrow_operator::store::Backend;
use x402_escrow_sdk::buyer::{
    AssetLimits, BuyerClient, BuyerError, PaymentStatus as Spent, SpendLedger, SpendPolicy,
};
use x402_escrow_sdk::facilitator::{VerifyRequest, reasons};
use x402_escrow_sdk::merchant::{AssetTransferMethod, PaymentRoute, PaymentsConfig};
use x402_escrow_sdk::random_b256;
use x402_escrow_sdk::schemes::auth_capture;
use x402_escrow_sdk::wire::{PaymentPayload, PaymentRequirements};

const T: Duration = Duration::from_secs(30);

/// `payer` approves Permit2 for `amount` of the test token.
async fn approve_permit2(chain: &Chain, payer: &PrivateKeySigner, amount: U256) {
    let token = TestUSDC::new(chain.token(), chain.provider_for(payer));
    let receipt = mined(token.approve(PERMIT2, amount)).await;
    assert!(receipt.status(), "approve(Permit2)");
}

/// The chain's requirements for `amount`, asking for Permit2 (and for `flow`, when given).
async fn permit2_requirements(
    chain: &Chain,
    amount: u64,
    operator: Address,
    flow: Option<&str>,
) -> Value {
    let mut req = chain.requirements(amount, operator, chain.receiver).await;
    req["extra"]["assetTransferMethod"] = json!("permit2");
    if let Some(flow) = flow {
        req["extra"]["paymentFlow"] = json!(flow);
    }
    req
}

/// `payer`'s Permit2 payload for `requirements`, signed at `now`.
fn permit2_payment(
    chain: &Chain,
    requirements: &Value,
    payer: &PrivateKeySigner,
    now: u64,
) -> (PaymentRequirements, auth_capture::AuthCapturePermit2Payload) {
    let requirements: PaymentRequirements =
        serde_json::from_value(requirements.clone()).expect("requirements");
    let payload = auth_capture::build_permit2_payload(
        &requirements,
        payer,
        now,
        random_b256(),
        &registry(chain),
    )
    .expect("permit2 payload");
    (requirements, payload)
}

/// The body of `POST /v1/payments/authorize` for a Permit2 payload.
fn authorize_body(
    requirements: &PaymentRequirements,
    payload: auth_capture::AuthCapturePermit2Payload,
    request_id: &str,
) -> Value {
    json!({
        "paymentPayload": PaymentPayload::new(requirements.clone(), payload),
        "paymentRequirements": requirements,
        "requestId": request_id,
    })
}

/// A Permit2 payment of `payer`, signed now, as an authorize body.
async fn signed_body(chain: &Chain, requirements: &Value, payer: &PrivateKeySigner) -> Value {
    let (req, payload) = permit2_payment(chain, requirements, payer, chain.now().await);
    authorize_body(&req, payload, "req-permit2")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permit2_hold_capture_void_and_charge() {
    permit2_lifecycle(TestEscrow::Ours).await;
}

/// The same through the public Commerce Payments v1.0 contracts themselves (their own
/// `Permit2PaymentCollector`) and through an escrow with the v1.1 fee interface.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permit2_on_the_reference_and_v1_1_escrows() {
    for escrow in [TestEscrow::ReferenceV1_0, TestEscrow::OursV1_1] {
        permit2_lifecycle(escrow).await;
    }
}

/// A Permit2 hold captured, another voided, a Permit2 charge: balances and escrow state exact.
async fn permit2_lifecycle(escrow: TestEscrow) {
    with_db(Backend::Sqlite, |url| async move {
        let (chain, store, _m, key) = open_shop_on(&url, None, escrow).await;
        let op = start(&config(&url, &chain)).await;
        let api = Api::new(&op, &key);
        approve_permit2(&chain, &chain.payer, U256::MAX).await;
        let payer = chain.payer.address();
        let [payer0, recv0, fee0, _] = chain.balances(op.signer).await;

        // ---- authorize 5 USDC through the Permit2 collector, then capture it ---------------
        let amount = 5 * USDC;
        let req = permit2_requirements(&chain, amount, op.signer, None).await;
        let body = signed_body(&chain, &req, &chain.payer).await;
        let (status, p) = api.post("/v1/payments/authorize", &body, "p2-1").await;
        assert_eq!(status, 201, "{p}");
        assert_eq!(p["status"], "authorized", "{p}");
        let hash: B256 = p["paymentHash"].as_str().unwrap().parse().unwrap();
        assert_eq!(chain.state(hash).await, (true, amount as u128, 0));
        assert_eq!(chain.balance(payer).await, payer0 - amount as u128);
        let id = p["id"].as_str().unwrap().to_owned();
        // The authorize named the Permit2 collector.
        let collector = chain
            .deployment
            .permit2_payment_collector
            .expect("collector");
        let transactions = store
            .txs_for_payment(id.parse().unwrap())
            .await
            .expect("txs");
        let request = &transactions[0].inserted.request;
        assert_eq!(request["tokenCollector"], json!(collector), "{request}");
        // A retry of the same signed payment answers with the same payment.
        let (status, again) = api.post("/v1/payments/authorize", &body, "p2-1b").await;
        assert_eq!(status, 201, "{again}");
        assert_eq!(again["id"], p["id"]);
        let (status, c) = api.act(&id, "capture", &json!({}), "p2-cap").await;
        assert_eq!(status, 200, "{c}");
        assert_eq!(c["status"], "captured", "{c}");
        assert_eq!(chain.state(hash).await, (true, 0, amount as u128));
        let fee5 = fee(amount as u128);
        assert_eq!(
            chain.balance(chain.receiver).await,
            recv0 + amount as u128 - fee5
        );
        assert_eq!(chain.balance(chain.fee_receiver).await, fee0 + fee5);

        // ---- authorize 3 USDC, then void it: the payer has it back -------------------------
        let amount3 = 3 * USDC;
        let req = permit2_requirements(&chain, amount3, op.signer, None).await;
        let body = signed_body(&chain, &req, &chain.payer).await;
        let (status, p) = api.post("/v1/payments/authorize", &body, "p2-2").await;
        assert_eq!(status, 201, "{p}");
        let hash3: B256 = p["paymentHash"].as_str().unwrap().parse().unwrap();
        assert_eq!(chain.state(hash3).await, (true, amount3 as u128, 0));
        let id3 = p["id"].as_str().unwrap().to_owned();
        let (status, v) = api.act(&id3, "void", &json!({}), "p2-void").await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["status"], "voided", "{v}");
        assert_eq!(chain.state(hash3).await, (true, 0, 0));
        assert_eq!(chain.balance(payer).await, payer0 - amount as u128);

        // ---- charge 2 USDC (flow `authorization`): captured at once -------------------------
        let amount2 = 2 * USDC;
        let req = permit2_requirements(&chain, amount2, op.signer, Some("authorization")).await;
        let body = signed_body(&chain, &req, &chain.payer).await;
        let (status, p) = api.post("/v1/payments/authorize", &body, "p2-3").await;
        assert_eq!(status, 201, "{p}");
        assert_eq!(p["status"], "captured", "{p}");
        assert_eq!(p["flow"], "charge", "{p}");
        let hash2: B256 = p["paymentHash"].as_str().unwrap().parse().unwrap();
        assert_eq!(chain.state(hash2).await, (true, 0, amount2 as u128));
        assert_eq!(
            chain.balance(payer).await,
            payer0 - amount as u128 - amount2 as u128
        );
        assert_eq!(
            chain.balance(chain.receiver).await,
            recv0 + amount as u128 - fee5 + amount2 as u128 - fee(amount2 as u128)
        );

        settle(&op.store, T).await;
        wind_down(op, store, &chain).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permit2_refusals_change_nothing() {
    with_db(Backend::Sqlite, |url| async move {
        let (chain, store, _m, key) = open_shop(&url, None).await;
        let config = config(&url, &chain);
        let op = start(&config).await;
        let api = Api::new(&op, &key);
        let payer = chain.payer.address();
        let payer0 = chain.balance(payer).await;
        let amount = 4 * USDC;
        let req = permit2_requirements(&chain, amount, op.signer, None).await;

        // No allowance to Permit2 yet: refused, the payer told to approve.
        let body = signed_body(&chain, &req, &chain.payer).await;
        let (status, e) = api.post("/v1/payments/authorize", &body, "r-1").await;
        assert_eq!(status, 402, "{e}");
        assert_eq!(error_code(&e), "permit2_allowance_missing", "{e}");
        assert_eq!(e["error"]["reason"], reasons::PERMIT2_ALLOWANCE_MISSING);
        // An allowance below the amount is refused the same way.
        approve_permit2(&chain, &chain.payer, U256::from(amount - 1)).await;
        let (status, e) = api.post("/v1/payments/authorize", &body, "r-2").await;
        assert_eq!(status, 402, "{e}");
        assert_eq!(error_code(&e), "permit2_allowance_missing", "{e}");
        approve_permit2(&chain, &chain.payer, U256::MAX).await;

        // Someone else's signature over the payer's permit.
        let now = chain.now().await;
        let (r, mut payload) = permit2_payment(&chain, &req, &chain.payer, now);
        let stranger = PrivateKeySigner::random();
        let prepared =
            auth_capture::prepare_permit2(&r, payer, now, payload.salt, &registry(&chain))
                .expect("prepare");
        payload.signature =
            x402_escrow_sdk::signing::sign_hash(&stranger, &prepared.signing_hash).expect("sign");
        let (status, e) = api
            .post(
                "/v1/payments/authorize",
                &authorize_body(&r, payload, "x"),
                "r-3",
            )
            .await;
        assert_eq!(status, 400, "{e}");
        assert_eq!(error_code(&e), "invalid_signature", "{e}");
        assert_eq!(e["error"]["reason"], reasons::AUTH_CAPTURE_SIGNATURE);

        // A permit for another spender than the escrow's Permit2 collector.
        let (r, mut payload) = permit2_payment(&chain, &req, &chain.payer, now);
        payload.permit2_authorization.spender = chain.deployment.erc3009_payment_collector;
        let (status, e) = api
            .post(
                "/v1/payments/authorize",
                &authorize_body(&r, payload, "x"),
                "r-4",
            )
            .await;
        assert_eq!(status, 400, "{e}");
        assert_eq!(error_code(&e), "wrong_escrow", "{e}");

        // A permit whose deadline has passed (signed 1000 s ago for 900 s).
        let (r, payload) = permit2_payment(&chain, &req, &chain.payer, now - 1000);
        let (status, e) = api
            .post(
                "/v1/payments/authorize",
                &authorize_body(&r, payload, "x"),
                "r-5",
            )
            .await;
        assert_eq!(status, 400, "{e}");
        assert_eq!(error_code(&e), "expired", "{e}");
        assert_eq!(
            e["error"]["reason"],
            reasons::AUTH_CAPTURE_AUTHORIZATION_EXPIRED
        );

        // Nothing happened: no payment, no transaction, the payer's balance untouched.
        assert_eq!(count(&op.store, "payments").await, 0);
        assert_eq!(
            count(&op.store, "chain_txs WHERE kind IN ('authorize', 'charge')").await,
            0
        );
        assert_eq!(chain.balance(payer).await, payer0);
        op.shutdown().await;

        // A deployment record without a Permit2 collector: Permit2 payments are refused with
        // the x402 name for an unsupported transfer method.
        let text = std::fs::read_to_string(&chain.deployments_file).expect("deployments");
        let mut record: Value = serde_json::from_str(&text).expect("json");
        let removed = record
            .as_object_mut()
            .expect("deployment record")
            .remove("permit2PaymentCollector");
        assert!(removed.is_some(), "{text}");
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir
            .path()
            .join(format!("{}.json", chain.deployment.chain_id));
        std::fs::write(&file, serde_json::to_string(&record).unwrap()).expect("write");
        let mut without = config.clone();
        without.chain.deployments = Some(file);
        let op = start(&without).await;
        let api = Api::new(&op, &key);
        let body = signed_body(&chain, &req, &chain.payer).await;
        let (status, e) = api.post("/v1/payments/authorize", &body, "r-6").await;
        assert_eq!(status, 400, "{e}");
        assert_eq!(error_code(&e), "wrong_escrow", "{e}");
        assert_eq!(
            e["error"]["reason"],
            reasons::AUTH_CAPTURE_UNSUPPORTED_TRANSFER_METHOD
        );
        let (status, v) = facilitator(&op, &key, "/verify", &verify_body(&body)).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["isValid"], false, "{v}");
        assert_eq!(
            v["invalidReason"],
            reasons::AUTH_CAPTURE_UNSUPPORTED_TRANSFER_METHOD
        );
        let (status, s) = facilitator(&op, &key, "/settle", &verify_body(&body)).await;
        assert_eq!(status, 200, "{s}");
        assert_eq!(s["success"], false, "{s}");
        assert_eq!(
            s["errorReason"],
            reasons::AUTH_CAPTURE_UNSUPPORTED_TRANSFER_METHOD
        );
        assert_eq!(count(&op.store, "payments").await, 0);
        assert_eq!(chain.balance(payer).await, payer0);
        op.shutdown().await;
        store.close().await;
    })
    .await;
}

/// `/verify` or `/settle` body of an authorize body.
fn verify_body(authorize: &Value) -> Value {
    let payment: PaymentPayload =
        serde_json::from_value(authorize["paymentPayload"].clone()).expect("payload");
    let requirements: PaymentRequirements =
        serde_json::from_value(authorize["paymentRequirements"].clone()).expect("requirements");
    serde_json::to_value(VerifyRequest::new(payment, requirements)).expect("body")
}

/// `POST {path}` (`/verify`, `/settle`) on `op` as the merchant: (status, body).
async fn facilitator(op: &RunningOperator, key: &str, path: &str, body: &Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("http://{}{path}", op.address))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .expect("POST");
    let status = response.status().as_u16();
    (status, response.json::<Value>().await.expect("JSON answer"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn facilitator_verifies_and_settles_permit2() {
    with_db(Backend::Sqlite, |url| async move {
        let (chain, store, _m, key) = open_shop(&url, None).await;
        let op = start(&config(&url, &chain)).await;
        let payer = chain.payer.address();
        let amount = 6 * USDC;
        let req = permit2_requirements(&chain, amount, op.signer, None).await;
        let body = verify_body(&signed_body(&chain, &req, &chain.payer).await);

        // Without the allowance: invalid, with our reason; settling refuses the same way.
        let (status, v) = facilitator(&op, &key, "/verify", &body).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["isValid"], false, "{v}");
        assert_eq!(
            v["invalidReason"],
            reasons::PERMIT2_ALLOWANCE_MISSING,
            "{v}"
        );
        let (_, s) = facilitator(&op, &key, "/settle", &body).await;
        assert_eq!(s["success"], false, "{s}");
        assert_eq!(s["errorReason"], reasons::PERMIT2_ALLOWANCE_MISSING, "{s}");
        assert_eq!(count(&op.store, "payments").await, 0);

        approve_permit2(&chain, &chain.payer, U256::MAX).await;
        let payer0 = chain.balance(payer).await;
        let (status, v) = facilitator(&op, &key, "/verify", &body).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["isValid"], true, "{v}");
        assert_eq!(v["payer"], json!(payer.to_checksum(None)), "{v}");

        // Settled: the hold is on chain; a retried /settle answers with the same transaction.
        let (status, s) = facilitator(&op, &key, "/settle", &body).await;
        assert_eq!(status, 200, "{s}");
        assert_eq!(s["success"], true, "{s}");
        assert_eq!(s["payer"], json!(payer.to_checksum(None)), "{s}");
        let tx = s["transaction"].as_str().expect("transaction").to_owned();
        let (_, again) = facilitator(&op, &key, "/settle", &body).await;
        assert_eq!(again["success"], true, "{again}");
        assert_eq!(again["transaction"], json!(tx));
        assert_eq!(chain.balance(payer).await, payer0 - amount as u128);
        let payment: PaymentPayload =
            serde_json::from_value(body["paymentPayload"].clone()).expect("payload");
        let requirements: PaymentRequirements =
            serde_json::from_value(body["paymentRequirements"].clone()).expect("requirements");
        let hash =
            auth_capture::derive_from_payment_payload(&requirements, &payment, &registry(&chain))
                .expect("derive")
                .payment_info_hash;
        assert_eq!(chain.state(hash).await, (true, amount as u128, 0));
        // A spent permit is not accepted again for another payment of the same signature.
        let (_, v) = facilitator(&op, &key, "/verify", &body).await;
        assert_eq!(v["isValid"], false, "{v}");

        settle(&op.store, T).await;
        wind_down(op, store, &chain).await;
    })
    .await;
}

// ---- the merchant layer, paid by the SDK buyer --------------------------------------------

/// A merchant app behind the x402 layer offering only Permit2: `/ok` answers 200, `/fail` 500,
/// both cost `price`.
async fn permit2_shop(chain: &Chain, op: &RunningOperator, key: &str, price: u64) -> Shop {
    let mut config: PaymentsConfig = payments_config(chain, op);
    config.asset_transfer_methods = vec![AssetTransferMethod::Permit2];
    let route = PaymentRoute::new(x402_escrow_sdk::merchant::Price::atomic(u128::from(price)));
    let app: Router = Router::new()
        .route("/ok", get(|| async { "paid content" }))
        .route(
            "/fail",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "broken") }),
        )
        .layer(layer(op, key, config).paid(route));
    serve(app).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layer_buyer_pays_with_permit2() {
    with_db(Backend::Sqlite, |url| async move {
        let (chain, store, _m, key) = open_shop(&url, None).await;
        let op = start(&config(&url, &chain)).await;
        let price = 2 * USDC;
        let shop = permit2_shop(&chain, &op, &key, price).await;
        let dir = tempfile::tempdir().unwrap();
        let policy = SpendPolicy::new(vec![AssetLimits::new(network(&chain), chain.token())]);
        let ledger = SpendLedger::open(dir.path().join("spend.json")).expect("ledger");
        let buyer = BuyerClient::new(reqwest::Client::new(), chain.payer.clone(), policy, ledger)
            .with_registry(registry(&chain));
        let payer = chain.payer.address();
        let payer0 = chain.balance(payer).await;
        let recv0 = chain.balance(chain.receiver).await;

        // No approval yet: the buyer is told exactly that, and nothing was taken.
        let error = buyer
            .get(format!("{}/ok", shop.base))
            .await
            .expect_err("no allowance");
        match &error {
            BuyerError::Permit2ApprovalMissing { token, .. } => assert_eq!(*token, chain.token()),
            other => panic!("expected Permit2ApprovalMissing, got {other}"),
        }
        assert!(error.to_string().contains("approve"), "{error}");
        assert_eq!(chain.balance(payer).await, payer0);

        approve_permit2(&chain, &chain.payer, U256::MAX).await;
        // Success: held through the Permit2 collector, then captured.
        let paid = buyer.get(format!("{}/ok", shop.base)).await.expect("paid");
        assert_eq!(paid.response.status(), 200);
        let outcome = paid.payment.expect("payment outcome");
        assert_eq!(outcome.status, Spent::Paid);
        let hash = outcome.payment_hash.expect("payment hash");
        assert_eq!(chain.state(hash).await, (true, 0, price as u128));
        assert_eq!(chain.balance(payer).await, payer0 - price as u128);
        assert_eq!(
            chain.balance(chain.receiver).await,
            recv0 + price as u128 - fee(price as u128)
        );

        // Failure: the hold is voided, the payer keeps its money.
        let failed = buyer
            .get(format!("{}/fail", shop.base))
            .await
            .expect("paid");
        assert_eq!(failed.response.status(), 500);
        let hash2 = failed
            .payment
            .expect("payment outcome")
            .payment_hash
            .expect("payment hash");
        assert_eq!(chain.state(hash2).await, (true, 0, 0));
        assert_eq!(chain.balance(payer).await, payer0 - price as u128);

        settle(&op.store, T).await;
        drop(shop);
        wind_down(op, store, &chain).await;
    })
    .await;
}
