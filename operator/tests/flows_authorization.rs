//! The x402 `authorization` payment flow (charge, then refund) and `exact` through a started
//! operator on anvil: over the REST API, and end to end through the SDK's merchant layer paid by
//! the SDK's buyer client. Every balance is checked exactly; the database agrees with the chain
//! and no nonce is skipped at the end.

mod operator_support;
mod store_support;

use std::time::Duration;

use alloy::primitives::{Address, B256};
use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use operator_support::*;
use serde_json::{Value, json};
use x402_escrow_operator::runtime::RunningOperator;
use x402_escrow_operator::store::Backend;
use x402_escrow_sdk::buyer::{
    AssetLimits, BuyerClient, PaymentStatus as Spent, RetryPolicy, SpendLedger, SpendPolicy,
};
use x402_escrow_sdk::facilitator::{SettleResponse, VerifyRequest};
use x402_escrow_sdk::merchant::{PaymentFlow, PaymentRoute, PaymentsConfig};
use x402_escrow_sdk::random_b256;
use x402_escrow_sdk::schemes::auth_capture;
use x402_escrow_sdk::wire::codec;
use x402_escrow_sdk::wire::extensions::set_payment_id;
use x402_escrow_sdk::wire::{PaymentPayload, PaymentRequirements};
use x402_escrow_sdk::{Amount, EscrowRegistry};

const T: Duration = Duration::from_secs(30);

/// The fee the operator takes (`FEE_BPS`) of `amount`.
fn fee(amount: u64) -> u128 {
    u128::from(amount) * u128::from(FEE_BPS) / 10_000
}

/// Requirements of the `authorization` flow (charge, then refund).
async fn charge_requirements(chain: &Chain, amount: u64, operator: Address) -> Value {
    let mut req = chain.requirements(amount, operator, chain.receiver).await;
    req["extra"]["paymentFlow"] = json!("authorization");
    req
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn charge_then_refund_in_two_parts() {
    with_db(Backend::Sqlite, |url| async move {
        let hooks = Hooks::start().await;
        let (chain, _store, _m, key) = open_shop(&url, Some(&hooks)).await;
        let op = start(&config(&url, &chain)).await;
        let api = Api::new(&op, &key);
        // The refund float.
        chain.mint(op.signer, 20 * USDC).await;

        let payer = chain.payer.address();
        let [payer0, recv0, fee0, float0] = chain.balances(op.signer).await;

        // ---- charge 10 USDC: captured at once ---------------------------------------------
        let amount = 10 * USDC;
        let req = charge_requirements(&chain, amount, op.signer).await;
        let body = chain
            .authorize_body(req, &chain.payer, "req-charge-1")
            .await;
        let (status, p) = api.post("/v1/payments/authorize", &body, "charge-1").await;
        assert_eq!(status, 201, "{p}");
        assert_eq!(p["status"], "captured", "{p}");
        assert_eq!(p["flow"], "charge", "{p}");
        assert_eq!(amount_of(&p, "captured"), amount as u128);
        assert_eq!(amount_of(&p, "capturable"), 0);
        assert_eq!(amount_of(&p, "refundable"), amount as u128);
        let kinds: Vec<&str> = p["transactions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["charge"], "{p}");
        let id = p["id"].as_str().unwrap().to_owned();
        let hash: B256 = p["paymentHash"].as_str().unwrap().parse().unwrap();
        assert_eq!(chain.state(hash).await, (true, 0, amount as u128));
        assert_eq!(chain.balance(payer).await, payer0 - amount as u128);
        assert_eq!(
            chain.balance(chain.receiver).await,
            recv0 + amount as u128 - fee(amount)
        );
        assert_eq!(chain.balance(chain.fee_receiver).await, fee0 + fee(amount));

        // A retry of the same payment answers with the same charge.
        let (status, again) = api.post("/v1/payments/authorize", &body, "charge-1b").await;
        assert_eq!(status, 201, "{again}");
        assert_eq!(again["id"], p["id"]);

        // ---- capture and void make no sense for a charge ----------------------------------
        let (status, e) = api.act(&id, "capture", &json!({}), "cap-1").await;
        assert_eq!(status, 409, "{e}");
        assert_eq!(error_code(&e), "invalid_state", "{e}");
        let (status, e) = api.act(&id, "void", &json!({}), "void-1").await;
        assert_eq!(status, 409, "{e}");
        assert_eq!(error_code(&e), "invalid_state", "{e}");
        assert_eq!(chain.state(hash).await, (true, 0, amount as u128));

        // ---- refund 3, then the remaining 7 -----------------------------------------------
        let (status, r1) = api.act_amount(&id, "refund", 3 * USDC, "refund-1").await;
        assert_eq!(status, 200, "{r1}");
        assert_eq!(r1["status"], "partially_refunded", "{r1}");
        assert_eq!(amount_of(&r1, "refunded"), 3 * USDC as u128);
        assert_eq!(chain.state(hash).await, (true, 0, 7 * USDC as u128));
        assert_eq!(
            chain.balance(payer).await,
            payer0 - amount as u128 + 3 * USDC as u128
        );
        let (status, r2) = api.act_amount(&id, "refund", 7 * USDC, "refund-2").await;
        assert_eq!(status, 200, "{r2}");
        assert_eq!(r2["status"], "refunded", "{r2}");
        assert_eq!(amount_of(&r2, "refundable"), 0);
        assert_eq!(chain.state(hash).await, (true, 0, 0));
        // The payer has everything back; the merchant keeps what it got, the float paid.
        assert_eq!(chain.balance(payer).await, payer0);
        assert_eq!(
            chain.balance(chain.receiver).await,
            recv0 + amount as u128 - fee(amount)
        );
        assert_eq!(chain.balance(op.signer).await, float0 - amount as u128);
        // Nothing is left to refund.
        let (status, e) = api
            .act(&id, "refund", &json!({"amount": "1"}), "refund-3")
            .await;
        assert_eq!(status, 409, "{e}");

        // The merchant heard of the charge as a capture, then of both refunds.
        hooks
            .wait_for(
                &id,
                &["payment.captured", "payment.refunded", "payment.refunded"],
                T,
            )
            .await;
        assert!(
            !hooks
                .types_for(&id)
                .iter()
                .any(|t| t == "payment.authorized")
        );

        settle(&op.store, T).await;
        assert_nonces(&op.store, &chain).await;
        assert_reconciled(&op).await;
        op.shutdown().await;
    })
    .await;
}

// ---- the merchant layer, paid by the SDK buyer --------------------------------------------

/// A merchant app behind the x402 layer: `/ok` answers 200, `/fail` 500, both cost `price`.
async fn shop(
    chain: &Chain,
    op: &RunningOperator,
    key: &str,
    price: u64,
    tweak: impl FnOnce(&mut PaymentsConfig),
) -> Shop {
    let mut config = payments_config(chain, op);
    tweak(&mut config);
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

/// The buyer (key 2) with no amount limits; `registry` is the escrows it can pay.
fn buyer(chain: &Chain, registry: EscrowRegistry, dir: &std::path::Path) -> BuyerClient {
    let policy = SpendPolicy::new(vec![AssetLimits::new(network(chain), chain.token())]);
    let ledger = SpendLedger::open(dir.join("spend.json")).expect("ledger");
    BuyerClient::new(reqwest::Client::new(), chain.payer.clone(), policy, ledger)
        .with_registry(registry)
}

fn receipt_of(response: &reqwest::Response) -> SettleResponse {
    let header = response
        .headers()
        .get(codec::PAYMENT_RESPONSE)
        .expect("PAYMENT-RESPONSE header");
    codec::decode_payment_response(header.as_bytes()).expect("receipt")
}

fn receipt_status(receipt: &SettleResponse) -> String {
    receipt
        .extensions
        .as_ref()
        .and_then(|e| e.get("x402-escrow"))
        .and_then(|i| i.get("status"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layer_authorization_flow_charges_and_refunds_failures() {
    with_db(Backend::Sqlite, |url| async move {
        let (chain, _store, _m, key) = open_shop(&url, None).await;
        let op = start(&config(&url, &chain)).await;
        chain.mint(op.signer, 20 * USDC).await;
        let price = 2 * USDC;
        let shop = shop(&chain, &op, &key, price, |c| {
            c.payment_flow = PaymentFlow::Authorization;
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let buyer = buyer(&chain, registry(&chain), dir.path());
        let payer = chain.payer.address();
        let payer0 = chain.balance(payer).await;
        let recv0 = chain.balance(chain.receiver).await;

        // The challenge offers the authorization flow.
        let challenge = reqwest::get(format!("{}/ok", shop.base)).await.unwrap();
        assert_eq!(challenge.status(), 402);
        let required = codec::decode_payment_required(
            challenge
                .headers()
                .get(codec::PAYMENT_REQUIRED)
                .unwrap()
                .as_bytes(),
        )
        .unwrap();
        let extra = required.accepts[0].auth_capture_extra().expect("extra");
        assert_eq!(extra.flow(), PaymentFlow::Authorization);

        // Success: charged, nothing more to do; the receipt names the charge.
        let paid = buyer.get(format!("{}/ok", shop.base)).await.expect("paid");
        assert_eq!(paid.response.status(), 200);
        let receipt = receipt_of(&paid.response);
        assert!(receipt.success, "{receipt:?}");
        assert_eq!(receipt_status(&receipt), "captured", "{receipt:?}");
        let outcome = paid.payment.expect("payment outcome");
        assert_eq!(outcome.status, Spent::Paid);
        let hash = outcome.payment_hash.expect("payment hash");
        assert_eq!(chain.state(hash).await, (true, 0, price as u128));
        let charge_tx = receipt.transaction.expect("charge tx");
        assert_eq!(chain.balance(payer).await, payer0 - price as u128);
        assert_eq!(
            chain.balance(chain.receiver).await,
            recv0 + price as u128 - fee(price)
        );

        // Failure: the whole charge is refunded; the receipt says so.
        let failed = buyer
            .get(format!("{}/fail", shop.base))
            .await
            .expect("paid");
        assert_eq!(failed.response.status(), 500);
        let receipt = receipt_of(&failed.response);
        assert!(receipt.success, "{receipt:?}");
        assert_eq!(receipt_status(&receipt), "refunded", "{receipt:?}");
        assert_ne!(receipt.transaction, Some(charge_tx));
        let outcome = failed.payment.expect("payment outcome");
        assert_eq!(
            outcome.status,
            Spent::Refunded {
                amount: Amount::from(u128::from(price))
            }
        );
        let hash2 = outcome.payment_hash.expect("payment hash");
        assert_eq!(chain.state(hash2).await, (true, 0, 0));
        // The payer paid for the one success only; the merchant keeps that one.
        assert_eq!(chain.balance(payer).await, payer0 - price as u128);
        assert_eq!(
            chain.balance(chain.receiver).await,
            recv0 + 2 * price as u128 - 2 * fee(price)
        );

        settle(&op.store, T).await;
        assert_nonces(&op.store, &chain).await;
        assert_reconciled(&op).await;
        drop(shop);
        op.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layer_exact_settles_after_success_only() {
    with_db(Backend::Sqlite, |url| async move {
        let (chain, _store, _m, key) = open_shop(&url, None).await;
        let op = start(&config(&url, &chain)).await;
        let price = USDC;
        let shop = shop(&chain, &op, &key, price, |c| c.offer_exact = true).await;
        let dir = tempfile::tempdir().unwrap();
        // A buyer that knows no escrow of this chain can pay `exact` only.
        let buyer =
            buyer(&chain, EscrowRegistry::canonical(), dir.path()).with_retry(RetryPolicy {
                max_retries: 1,
                initial_backoff: Duration::from_millis(50),
                max_backoff: Duration::from_millis(50),
            });
        let payer = chain.payer.address();
        let payer0 = chain.balance(payer).await;
        let recv0 = chain.balance(chain.receiver).await;

        // A failing handler costs nothing: nothing is settled, no receipt (the buyer retries the
        // same signed payment once, which fails the same way).
        let failed = buyer
            .get(format!("{}/fail", shop.base))
            .await
            .expect("paid");
        assert_eq!(failed.response.status(), 500);
        assert!(
            failed
                .response
                .headers()
                .get(codec::PAYMENT_RESPONSE)
                .is_none()
        );
        assert_eq!(failed.payment.as_ref().expect("outcome").scheme, "exact");
        assert_eq!(chain.balance(payer).await, payer0);

        // Success: settled with transferWithAuthorization; the receipt carries its hash.
        let paid = buyer.get(format!("{}/ok", shop.base)).await.expect("paid");
        assert_eq!(paid.response.status(), 200);
        let receipt = receipt_of(&paid.response);
        assert!(receipt.success, "{receipt:?}");
        assert_eq!(receipt.amount, Some(Amount::from(u128::from(price))));
        let tx = receipt.transaction.expect("transfer tx");
        let mined = alloy::providers::Provider::get_transaction_receipt(&chain.plain, tx)
            .await
            .unwrap()
            .expect("mined");
        assert!(mined.status());
        assert_eq!(mined.from, op.signer);
        let outcome = paid.payment.expect("outcome");
        assert_eq!(outcome.scheme, "exact");
        assert_eq!(chain.balance(payer).await, payer0 - price as u128);
        assert_eq!(chain.balance(chain.receiver).await, recv0 + price as u128);

        settle(&op.store, T).await;
        assert_nonces(&op.store, &chain).await;
        drop(shop);
        op.shutdown().await;
    })
    .await;
}

// ---- payment-identifier replay survives a restart ------------------------------------------

both_backends!(payment_identifier_survives_restart);

/// A `/settle` body for a fresh auth-capture payment of `amount`, carrying payment-identifier
/// `id`.
async fn settle_body(chain: &Chain, operator: Address, amount: u64, id: &str) -> Value {
    let requirements: PaymentRequirements =
        serde_json::from_value(chain.requirements(amount, operator, chain.receiver).await)
            .expect("requirements");
    let payload = auth_capture::build_payload(
        &requirements,
        &chain.payer,
        chain.now().await,
        random_b256(),
        &registry(chain),
    )
    .expect("payload");
    let mut payment = PaymentPayload::new(requirements.clone(), payload);
    let mut extensions = serde_json::Map::new();
    set_payment_id(&mut extensions, None, id);
    payment.extensions = Some(extensions);
    serde_json::to_value(VerifyRequest::new(payment, requirements)).expect("body")
}

/// `POST /settle` on `op`: (status, replayed header, body).
async fn post_settle(op: &RunningOperator, key: &str, body: &Value) -> (u16, bool, Value) {
    let response = reqwest::Client::new()
        .post(format!("http://{}/settle", op.address))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .expect("POST /settle");
    let status = response.status().as_u16();
    let replayed = response
        .headers()
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true");
    let body = response.json::<Value>().await.expect("JSON answer");
    (status, replayed, body)
}

async fn payment_identifier_survives_restart(backend: Backend) {
    with_db(backend, |url| async move {
        let (chain, store, _m, key) = open_shop(&url, None).await;
        let config = config(&url, &chain);
        let op = start(&config).await;
        let id = "order_0123456789abcdef";
        let body = settle_body(&chain, op.signer, 3 * USDC, id).await;
        let (status, replayed, first) = post_settle(&op, &key, &body).await;
        assert_eq!(status, 200, "{first}");
        assert!(!replayed);
        assert_eq!(first["success"], true, "{first}");
        // Same instance: the stored answer.
        let (status, replayed, again) = post_settle(&op, &key, &body).await;
        assert_eq!((status, replayed), (200, true), "{again}");
        assert_eq!(again, first);
        settle(&op.store, T).await;
        op.shutdown().await;

        // A new process on the same database: still the original success, replayed from the
        // database, and the id stays bound to its payload.
        let op = start(&config).await;
        let (status, replayed, after) = post_settle(&op, &key, &body).await;
        assert_eq!((status, replayed), (200, true), "{after}");
        assert_eq!(after, first);
        let other = settle_body(&chain, op.signer, 3 * USDC, id).await;
        let (status, _, conflict) = post_settle(&op, &key, &other).await;
        assert_eq!(status, 409, "{conflict}");
        assert_eq!(error_code(&conflict), "payment_identifier_conflict");
        // The same id on another merchant is another identifier.
        let (_m2, key2) = merchant(&store, "other", chain.other_receiver, None).await;
        let (status, replayed, _) = post_settle(&op, &key2, &body).await;
        assert_eq!(status, 200);
        assert!(!replayed);
        // Only the one authorization ever happened.
        assert_eq!(count(&op.store, "payments").await, 1);
        settle(&op.store, T).await;
        assert_nonces(&op.store, &chain).await;
        op.shutdown().await;
    })
    .await;
}

fn amount_of(view: &Value, field: &str) -> u128 {
    amount(view, field)
}
