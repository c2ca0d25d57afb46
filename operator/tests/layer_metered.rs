//! Pay for what you use, through the SDK's merchant layer and a started operator on anvil: a
//! metered route's buyer authorizes a maximum, the handler prices the request after the work
//! (`MeteredPrice`), and the layer captures exactly that and releases the rest in the same
//! step (flow `authorization`: refunds the rest of the charge). A price of zero releases
//! everything; a price above the authorization is refused before any capture (`500
//! metered_price_exceeds_authorization`, the whole hold voided); a route that is not metered
//! ignores the extension; `exact` is not offered on a metered route. Balances, `paymentState`
//! and the receipts' amounts are checked exactly.

mod operator_support;
mod store_support;

use std::time::Duration;

use axum::extract::Query;
use axum::routing::get;
use axum::{Extension, Router};
use operator_support::*;
use serde::Deserialize;
use serde_json::Value;
use x402_escrow_operator::store::Backend;
use x402_escrow_sdk::Amount;
use x402_escrow_sdk::merchant::{
    METERED_PRICE_TOO_HIGH, MeteredPrice, PaymentFlow, PaymentRoute, Price,
};
use x402_escrow_sdk::schemes::{AUTH_CAPTURE, EXACT};
use x402_escrow_sdk::wire::codec;

const T: Duration = Duration::from_secs(30);
const MAX: u64 = 2 * USDC;

#[derive(Deserialize)]
struct Used {
    units: u64,
}

/// The work: prices itself at `?units=` atomic units.
async fn work(Query(used): Query<Used>) -> (Extension<MeteredPrice>, String) {
    (
        Extension(MeteredPrice(Amount::from(used.units))),
        format!("used {}", used.units),
    )
}

/// A paid GET of `path` by the payer; (status, body, receipt extension, receipt amount).
async fn pay(chain: &Chain, shop: &Shop, path: &str) -> (u16, String, Value, Option<Amount>) {
    let url = format!("{}{path}", shop.base);
    let header = signed_payment(chain, &url).await;
    let response = reqwest::Client::new()
        .get(&url)
        .header(codec::PAYMENT_SIGNATURE, header)
        .send()
        .await
        .expect("paid request");
    let status = response.status().as_u16();
    let receipt = receipt_of(&response);
    assert!(receipt.success, "{receipt:?}");
    let info = receipt.extensions.as_ref().expect("extensions")["x402-escrow"].clone();
    (status, response.text().await.unwrap(), info, receipt.amount)
}

/// The offered schemes of `path`'s challenge.
async fn schemes(shop: &Shop, path: &str) -> Vec<String> {
    let response = reqwest::get(format!("{}{path}", shop.base)).await.unwrap();
    assert_eq!(response.status(), 402);
    let challenge = codec::decode_payment_required(
        response
            .headers()
            .get(codec::PAYMENT_REQUIRED)
            .unwrap()
            .as_bytes(),
    )
    .unwrap();
    challenge.accepts.iter().map(|a| a.scheme.clone()).collect()
}

fn hash_of(info: &Value) -> alloy::primitives::B256 {
    info["paymentHash"].as_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metered_routes_capture_what_the_handler_used_and_release_the_rest() {
    with_db(Backend::Sqlite, |url| async move {
        let (chain, _store, _m, key) = open_shop(&url, None).await;
        let op = start(&config(&url, &chain)).await;
        // The refund float (the charge flow's unused part goes back as a refund).
        chain.mint(op.signer, 20 * USDC).await;
        let api = Api::new(&op, &key);
        let mut config = payments_config(&chain, &op);
        config.offer_exact = true;
        let payments = layer(&op, &key, config);
        let max = || Price::atomic(u128::from(MAX));
        let app: Router = Router::new()
            .route(
                "/metered",
                get(work).layer(payments.paid(PaymentRoute::new(max()).metered())),
            )
            .route(
                "/metered-charge",
                get(work).layer(
                    payments.paid(
                        PaymentRoute::new(max())
                            .metered()
                            .flow(PaymentFlow::Authorization),
                    ),
                ),
            )
            .route(
                "/fixed",
                get(work).layer(payments.paid(PaymentRoute::new(Price::atomic(u128::from(USDC))))),
            );
        let shop = serve(app).await;
        let payer = chain.payer.address();
        let payer0 = chain.balance(payer).await;

        // A transfer cannot give back the unused part: no `exact` on a metered route.
        assert_eq!(schemes(&shop, "/metered?units=1").await, [AUTH_CAPTURE]);
        assert_eq!(
            schemes(&shop, "/fixed?units=1").await,
            [AUTH_CAPTURE, EXACT]
        );

        // Used a quarter: 0.5 USDC captured, 1.5 USDC back to the payer, in one request.
        let used = MAX / 4;
        let (status, body, info, amount) =
            pay(&chain, &shop, &format!("/metered?units={used}")).await;
        assert_eq!(
            (status, body.as_str()),
            (200, format!("used {used}").as_str())
        );
        assert_eq!(info["status"], "captured", "{info}");
        assert_eq!(info["capturedAmount"], used.to_string(), "{info}");
        assert_eq!(info["releasedAmount"], (MAX - used).to_string(), "{info}");
        assert_eq!(amount, Some(Amount::from(used)));
        let id = info["paymentId"].as_str().unwrap().to_owned();
        let (_, p) = api.get(&format!("/v1/payments/{id}")).await;
        assert_eq!(p["status"], "captured", "{p}");
        assert_eq!(operator_support::amount(&p, "authorized"), u128::from(MAX));
        assert_eq!(operator_support::amount(&p, "captured"), u128::from(used));
        assert_eq!(operator_support::amount(&p, "capturable"), 0);
        assert_eq!(
            chain.state(hash_of(&info)).await,
            (true, 0, u128::from(used))
        );
        let mut spent = u128::from(used);
        assert_eq!(chain.balance(payer).await, payer0 - spent);

        // Used nothing: the whole hold goes back.
        let (status, body, info, amount) = pay(&chain, &shop, "/metered?units=0").await;
        assert_eq!((status, body.as_str()), (200, "used 0"));
        assert_eq!(info["status"], "voided", "{info}");
        assert_eq!(info["releasedAmount"], MAX.to_string(), "{info}");
        assert_eq!(amount, Some(Amount::ZERO));
        let (_, _, capturable) = chain.state(hash_of(&info)).await;
        assert_eq!(capturable, 0);
        assert_eq!(chain.balance(payer).await, payer0 - spent);

        // Priced above the authorization: refused before any capture, everything back.
        let (status, body, info, _) =
            pay(&chain, &shop, &format!("/metered?units={}", MAX + 1)).await;
        assert_eq!(status, 500);
        assert!(body.contains(METERED_PRICE_TOO_HIGH), "{body}");
        assert!(
            !body.contains("used"),
            "the handler's response is withheld: {body}"
        );
        assert_eq!(info["status"], "voided", "{info}");
        let id = info["paymentId"].as_str().unwrap().to_owned();
        let (_, p) = api.get(&format!("/v1/payments/{id}")).await;
        assert_eq!(operator_support::amount(&p, "captured"), 0, "{p}");
        assert_eq!(chain.state(hash_of(&info)).await.2, 0);
        assert_eq!(chain.balance(payer).await, payer0 - spent);

        // A fixed-price route charges its price whatever the handler says.
        let (status, _, info, _) = pay(&chain, &shop, "/fixed?units=1").await;
        assert_eq!(status, 200);
        assert_eq!(info["status"], "captured", "{info}");
        assert!(info.get("capturedAmount").is_none(), "{info}");
        spent += u128::from(USDC);
        assert_eq!(chain.balance(payer).await, payer0 - spent);

        // Flow `authorization`: charged the maximum, the unused part refunded at once.
        let used = MAX / 2;
        let (status, _, info, amount) =
            pay(&chain, &shop, &format!("/metered-charge?units={used}")).await;
        assert_eq!(status, 200);
        assert_eq!(info["status"], "partially_refunded", "{info}");
        assert_eq!(info["refundedAmount"], (MAX - used).to_string(), "{info}");
        assert_eq!(info["capturedAmount"], MAX.to_string(), "{info}");
        assert_eq!(amount, Some(Amount::from(used)));
        assert_eq!(
            chain.state(hash_of(&info)).await,
            (true, 0, u128::from(used))
        );
        spent += u128::from(used);
        assert_eq!(chain.balance(payer).await, payer0 - spent);

        settle(&op.store, T).await;
        assert_nonces(&op.store, &chain).await;
        assert_reconciled(&op).await;
        drop(shop);
        op.shutdown().await;
    })
    .await;
}
