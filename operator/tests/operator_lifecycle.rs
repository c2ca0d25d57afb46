//! The whole payment lifecycle through the HTTP API of a started operator, against anvil:
//! authorize → partial capture → capture the rest → refund half; authorize → void. Every
//! balance and `paymentState` is checked after each step, webhooks are received and verified
//! with the SDK, and the database agrees with the chain at the end. SQLite and PostgreSQL.

mod operator_support;
mod store_support;

use std::time::Duration;

use operator_support::*;
use serde_json::json;
use x402_escrow_operator::store::Backend;

const T: Duration = Duration::from_secs(30);

both_backends!(lifecycle);

async fn lifecycle(backend: Backend) {
    with_db(backend, |url| async move {
        let hooks = Hooks::start().await;
        let (chain, store, _m, key) = open_shop(&url, Some(&hooks)).await;
        let op = start(&config(&url, &chain)).await;
        assert_eq!(op.signer, chain.operator.address());
        let api = Api::new(&op, &key);

        // The operator's refund float.
        chain.mint(op.signer, 50 * USDC).await;

        let payer = chain.payer.address();
        let [payer0, recv0, fee0, float0] = chain.balances(op.signer).await;

        // ---- payment 1: authorize 10 USDC ------------------------------------------------
        let amount = 10 * USDC;
        let (body, p1) = api
            .authorize_payment(&chain, amount, op.signer, "req-life-1", "auth-1")
            .await;
        assert_eq!(p1["status"], "authorized", "{p1}");
        assert_eq!(p1["requestId"], "req-life-1");
        assert_eq!(amount_of(&p1, "authorized"), amount as u128);
        assert_eq!(amount_of(&p1, "capturable"), amount as u128);
        let id1 = p1["id"].as_str().unwrap().to_owned();
        let hash1 = p1["paymentHash"].as_str().unwrap().parse().unwrap();
        assert_eq!(chain.state(hash1).await, (true, amount as u128, 0));
        assert_eq!(chain.balance(payer).await, payer0 - amount as u128);

        // Replaying the authorize with the same key returns the same payment.
        let (status, again) = api.post("/v1/payments/authorize", &body, "auth-1").await;
        assert_eq!(status, 201, "{again}");
        assert_eq!(again["id"], p1["id"]);

        // ---- capture 4 USDC ------------------------------------------------------------------
        let part = 4 * USDC;
        let (status, c1) = api.act_amount(&id1, "capture", part, "cap-1").await;
        assert_eq!(status, 200, "{c1}");
        assert_eq!(c1["status"], "partially_captured", "{c1}");
        assert_eq!(amount_of(&c1, "captured"), part as u128);
        assert_eq!(amount_of(&c1, "capturable"), (amount - part) as u128);
        assert_eq!(
            chain.state(hash1).await,
            (true, (amount - part) as u128, part as u128)
        );
        let fee = |x: u64| (x as u128) * FEE_BPS as u128 / 10_000;
        assert_eq!(
            chain.balance(chain.receiver).await,
            recv0 + part as u128 - fee(part)
        );
        assert_eq!(chain.balance(chain.fee_receiver).await, fee0 + fee(part));

        // ---- capture the rest ----------------------------------------------------------------
        let (status, c2) = api.act(&id1, "capture", &json!({}), "cap-2").await;
        assert_eq!(status, 200, "{c2}");
        assert_eq!(c2["status"], "captured", "{c2}");
        assert_eq!(amount_of(&c2, "captured"), amount as u128);
        assert_eq!(amount_of(&c2, "capturable"), 0);
        assert_eq!(chain.state(hash1).await, (true, 0, amount as u128));
        assert_eq!(
            chain.balance(chain.receiver).await,
            recv0 + amount as u128 - fee(part) - fee(amount - part)
        );
        assert_eq!(
            chain.balance(chain.fee_receiver).await,
            fee0 + fee(part) + fee(amount - part)
        );

        // ---- refund half ---------------------------------------------------------------------
        let half = amount / 2;
        let (status, r1) = api.act_amount(&id1, "refund", half, "ref-1").await;
        assert_eq!(status, 200, "{r1}");
        assert_eq!(r1["status"], "partially_refunded", "{r1}");
        assert_eq!(amount_of(&r1, "refunded"), half as u128);
        assert_eq!(amount_of(&r1, "refundable"), (amount - half) as u128);
        assert_eq!(chain.state(hash1).await, (true, 0, (amount - half) as u128));
        assert_eq!(
            chain.balance(payer).await,
            payer0 - amount as u128 + half as u128
        );
        assert_eq!(chain.balance(op.signer).await, float0 - half as u128);

        // ---- payment 2: authorize then void --------------------------------------------------
        let amount2 = 3 * USDC;
        let (_, p2) = api
            .authorize_payment(&chain, amount2, op.signer, "req-life-2", "auth-2")
            .await;
        assert_eq!(p2["status"], "authorized", "{p2}");
        let id2 = p2["id"].as_str().unwrap().to_owned();
        let hash2 = p2["paymentHash"].as_str().unwrap().parse().unwrap();
        assert_eq!(chain.state(hash2).await, (true, amount2 as u128, 0));
        let payer_before_void = chain.balance(payer).await;
        let (status, v) = api.act(&id2, "void", &json!({}), "void-2").await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["status"], "voided", "{v}");
        assert_eq!(chain.state(hash2).await, (true, 0, 0));
        assert_eq!(
            chain.balance(payer).await,
            payer_before_void + amount2 as u128
        );
        // Nothing more to do on a voided payment.
        let (status, e) = api.act(&id2, "capture", &json!({}), "cap-void").await;
        assert_eq!(status, 409, "{e}");
        assert_eq!(error_code(&e), "invalid_state");

        // ---- reads -----------------------------------------------------------------------------
        let g1 = api.payment(&id1).await;
        assert_eq!(g1["status"], "partially_refunded");
        assert_eq!(g1["paymentHash"], p1["paymentHash"]);
        let kinds: Vec<_> = g1["transactions"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t["kind"].as_str())
            .collect();
        for k in ["authorize", "capture", "refund"] {
            assert!(kinds.contains(&k), "transactions of payment 1: {g1}");
        }
        let (status, list) = api.get("/v1/payments?request_id=req-life-1").await;
        assert_eq!(status, 200, "{list}");
        let items = list["payments"].as_array().expect("payments");
        assert_eq!(items.len(), 1, "{list}");
        assert_eq!(items[0]["id"], p1["id"]);
        let (_, list2) = api.get("/v1/payments?request_id=req-life-2").await;
        assert_eq!(list2["payments"][0]["id"], p2["id"], "{list2}");

        // ---- webhooks ---------------------------------------------------------------------------
        hooks
            .wait_for(
                &id1,
                &[
                    "payment.authorized",
                    "payment.captured",
                    "payment.captured",
                    "payment.refunded",
                ],
                T,
            )
            .await;
        hooks
            .wait_for(&id2, &["payment.authorized", "payment.voided"], T)
            .await;
        assert!(hooks.rejected().is_empty(), "{:?}", hooks.rejected());
        for e in hooks.events() {
            let want = if e.data.payment_id == id1 {
                "req-life-1"
            } else {
                "req-life-2"
            };
            assert_eq!(e.data.request_id, want, "{e:?}");
        }
        assert_eq!(
            hooks.types_for(&id1).len(),
            4,
            "{:?}",
            hooks.types_for(&id1)
        );
        assert_eq!(
            hooks.types_for(&id2).len(),
            2,
            "{:?}",
            hooks.types_for(&id2)
        );

        // ---- database == chain ------------------------------------------------------------------
        settle(&store, T).await;
        wind_down(op, store, &chain).await;
    })
    .await
}

fn amount_of(view: &serde_json::Value, field: &str) -> u128 {
    amount(view, field)
}
