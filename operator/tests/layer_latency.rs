//! The merchant layer's latency mode against a started operator on anvil: with automine off the
//! authorize waits in the mempool, so the handler provably runs while the hold is not on chain;
//! the response comes out only once a block makes the hold final (captured), and a hold that
//! reverts (the payer emptied its wallet first) withholds it (402 `hold_failed`, nothing held,
//! nothing captured). Balances and `paymentState` are checked exactly.

mod operator_support;
mod store_support;

use std::time::{Duration, Instant};

use alloy::primitives::{B256, U256};
use alloy::providers::ext::AnvilApi;
use axum::routing::get;
use axum::{Extension, Router};
use operator_support::*;
use tokio::sync::mpsc;
use x402_escrow_bindings::TestUSDC;
use x402_escrow_operator::runtime::RunningOperator;
use x402_escrow_operator::store::Backend;
use x402_escrow_sdk::merchant::{HOLD_FAILED, PaymentContext, PaymentRoute, Price};
use x402_escrow_sdk::wire::codec;

const T: Duration = Duration::from_secs(30);

/// What the handler saw: payment id, payment hash, whether the hold was final.
type Seen = (String, B256, bool);

/// A merchant app whose `/ok` costs `price` in latency mode up to `cap`; the handler reports
/// its payment on `seen` and answers "paid content".
async fn shop(
    chain: &Chain,
    op: &RunningOperator,
    key: &str,
    price: u64,
    cap: u64,
    seen: mpsc::UnboundedSender<Seen>,
) -> Shop {
    let route = PaymentRoute::new(Price::atomic(u128::from(price)))
        .latency_mode(Price::atomic(u128::from(cap)));
    let app: Router = Router::new()
        .route(
            "/ok",
            get(
                move |Extension(ctx): Extension<PaymentContext>| async move {
                    let _ = seen.send((ctx.payment_id, ctx.payment_hash, ctx.hold_final));
                    "paid content"
                },
            ),
        )
        .layer(layer(op, key, payments_config(chain, op)).paid(route));
    serve(app).await
}

fn pay_in_background(url: String, header: String) -> tokio::task::JoinHandle<reqwest::Response> {
    tokio::spawn(async move {
        reqwest::Client::new()
            .get(url)
            .header(codec::PAYMENT_SIGNATURE, header)
            .send()
            .await
            .expect("send")
    })
}

/// Waits until the operator has broadcast a transaction (it sits in anvil's mempool).
async fn until_broadcast(op: &RunningOperator) {
    let deadline = Instant::now() + T;
    while tx_statuses(&op.store)
        .await
        .get("broadcast")
        .copied()
        .unwrap_or(0)
        == 0
    {
        assert!(Instant::now() < deadline, "the authorize was not broadcast");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Mines the held-back transactions and turns automine on again.
async fn mine_held(chain: &Chain) {
    chain.plain.anvil_mine(Some(1), None).await.unwrap();
    chain.plain.anvil_set_auto_mine(true).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_mode_runs_the_handler_before_the_hold_is_on_chain_and_captures_after() {
    with_db(Backend::Sqlite, |url| async move {
        let (chain, _store, _m, key) = open_shop(&url, None).await;
        let op = start(&config(&url, &chain)).await;
        let api = Api::new(&op, &key);
        let price = 2 * USDC;
        let (tx, mut seen) = mpsc::unbounded_channel();
        let shop = shop(&chain, &op, &key, price, price, tx).await;
        let payer = chain.payer.address();
        let payer0 = chain.balance(payer).await;
        let url = format!("{}/ok", shop.base);
        let header = signed_payment(&chain, &url).await;

        chain.plain.anvil_set_auto_mine(false).await.unwrap();
        let request = pay_in_background(url, header);
        let (id, hash, hold_final) = tokio::time::timeout(T, seen.recv())
            .await
            .expect("the handler ran")
            .expect("seen");
        assert!(!hold_final, "the handler was told the hold is final");
        // The handler has run; the hold is not on chain and the buyer has nothing yet.
        until_broadcast(&op).await;
        let (_, p) = api.get(&format!("/v1/payments/{id}")).await;
        assert_eq!(p["status"], "authorizing", "{p}");
        assert_eq!(chain.state(hash).await, (false, 0, 0));
        assert_eq!(chain.balance(payer).await, payer0);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!request.is_finished(), "released before the hold was final");

        mine_held(&chain).await;
        let response = tokio::time::timeout(T, request)
            .await
            .expect("answered")
            .unwrap();
        assert_eq!(response.status(), 200);
        let receipt = receipt_of(&response);
        assert!(receipt.success, "{receipt:?}");
        let info = &receipt.extensions.as_ref().unwrap()["x402-escrow"];
        assert_eq!(info["status"], "captured", "{receipt:?}");
        assert_eq!(response.text().await.unwrap(), "paid content");
        let p = api.wait_status(&id, &["captured"], T).await;
        assert_eq!(amount(&p, "captured"), u128::from(price));
        assert_eq!(chain.state(hash).await, (true, 0, u128::from(price)));
        assert_eq!(chain.balance(payer).await, payer0 - u128::from(price));

        settle(&op.store, T).await;
        assert_nonces(&op.store, &chain).await;
        assert_reconciled(&op).await;
        drop(shop);
        op.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_mode_withholds_the_response_when_the_hold_reverts() {
    with_db(Backend::Sqlite, |url| async move {
        let (chain, _store, _m, key) = open_shop(&url, None).await;
        let op = start(&config(&url, &chain)).await;
        let api = Api::new(&op, &key);
        let price = 2 * USDC;
        let (tx, mut seen) = mpsc::unbounded_channel();
        let shop = shop(&chain, &op, &key, price, price, tx).await;
        let payer = chain.payer.address();
        let payer0 = chain.balance(payer).await;
        let recv0 = chain.balance(chain.receiver).await;
        let url = format!("{}/ok", shop.base);
        let header = signed_payment(&chain, &url).await;

        chain.plain.anvil_set_auto_mine(false).await.unwrap();
        let request = pay_in_background(url, header);
        let (id, hash, hold_final) = tokio::time::timeout(T, seen.recv())
            .await
            .expect("the handler ran")
            .expect("seen");
        assert!(!hold_final);
        until_broadcast(&op).await;
        // Simulation passed; now the payer empties its wallet, tipping above the operator so
        // its transfer comes first in the block and the authorize reverts.
        let away = chain.other_receiver;
        let away0 = chain.balance(away).await;
        let token = TestUSDC::new(chain.token(), chain.provider_for(&chain.payer));
        let _pending = token
            .transfer(away, U256::from(payer0))
            // No estimate: against the pending block, which holds the authorize, it reverts.
            .gas(100_000)
            .max_priority_fee_per_gas(500_000_000_000)
            .max_fee_per_gas(1_000_000_000_000)
            .send()
            .await
            .expect("transfer sent");
        mine_held(&chain).await;

        let response = tokio::time::timeout(T, request)
            .await
            .expect("answered")
            .unwrap();
        assert_eq!(response.status(), 402);
        assert!(response.headers().get(codec::PAYMENT_RESPONSE).is_none());
        let challenge = codec::decode_payment_required(
            response
                .headers()
                .get(codec::PAYMENT_REQUIRED)
                .unwrap()
                .as_bytes(),
        )
        .unwrap();
        let error = challenge.error.unwrap_or_default();
        assert!(error.starts_with(&format!("{HOLD_FAILED}: ")), "{error}");
        let body = response.text().await.unwrap();
        assert!(!body.contains("paid content"), "{body}");
        let p = api.wait_status(&id, &["failed"], T).await;
        assert_eq!(amount(&p, "captured"), 0, "{p}");
        let kinds: Vec<&str> = p["transactions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["authorize"], "nothing after the failed hold: {p}");
        // Nothing held, nothing moved to the merchant; the payer's tokens went where it sent them.
        assert_eq!(chain.state(hash).await, (false, 0, 0));
        assert_eq!(chain.balance(payer).await, 0);
        assert_eq!(chain.balance(away).await, away0 + payer0);
        assert_eq!(chain.balance(chain.receiver).await, recv0);

        settle(&op.store, T).await;
        assert_nonces(&op.store, &chain).await;
        assert_reconciled(&op).await;
        drop(shop);
        op.shutdown().await;
    })
    .await;
}
