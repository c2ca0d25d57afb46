//! The operator driving the public Commerce Payments v1.0 contracts themselves (compiled, from
//! `../shared/canonical/v1.0/`, deployed on anvil by the testkit), not our escrow: its
//! deployments file names the reference `AuthCaptureEscrow` and collectors (version `1.0`, no
//! batch calls). Through the HTTP API of a started operator: authorize, partial capture,
//! capture the rest, refund, void; charge and refund; the auto-void at the merchant's capture
//! deadline; the payer's reclaim seen by the indexer; the indexer's events and `paymentState`
//! reads; and reconcile (the database agrees with the reference escrow). Payments go through the
//! batch executor (`execute`, the default), and without it the relayer never merges the
//! reference escrow's captures into a `captureBatch` it does not have.

mod operator_support;
mod store_support;

use std::time::{Duration, Instant};

use alloy::primitives::B256;
use operator_support::*;
use serde_json::json;
use x402_escrow_bindings::{AuthCaptureEscrow, EscrowVersion};
use x402_escrow_operator::indexer::{EscrowEvent, EventFee, read_payment_states};
use x402_escrow_operator::store::{Backend, NewMerchant, Store};

const T: Duration = Duration::from_secs(30);

both_backends!(reference_lifecycle);

/// The escrow the chain's record names is the reference one: other code than ours, without
/// our additions (`captureBatch`, `getPaymentStates`).
async fn assert_reference(chain: &Chain) {
    use alloy::providers::Provider;
    assert_eq!(chain.deployment.version, EscrowVersion::V1_0);
    assert!(!chain.deployment.batch_calls);
    let ours = chain.plain.get_code_at(
        x402_escrow_bindings::predict_addresses(
            x402_escrow_bindings::deploy::DEFAULT_SALT,
            chain.deployer.address(),
            true,
            true,
        )
        .auth_capture_escrow,
    );
    let reference = chain.plain.get_code_at(chain.escrow());
    let (ours, reference) = (ours.await.expect("code"), reference.await.expect("code"));
    assert!(!reference.is_empty());
    assert_ne!(
        ours, reference,
        "the record must name the reference escrow, not ours"
    );
}

/// Waits (bounded) until the indexer stored `n` events of `hash`; returns them.
async fn indexed(store: &Store, hash: B256, n: usize) -> Vec<EscrowEvent> {
    let deadline = Instant::now() + T;
    loop {
        let events = store.events_for_payment(hash).await.expect("events");
        if events.len() >= n {
            return events
                .iter()
                .map(|e| EscrowEvent::from_stored(e).expect("typed event"))
                .collect();
        }
        assert!(Instant::now() < deadline, "indexed {events:#?}, want {n}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn id_and_hash(view: &serde_json::Value) -> (String, B256) {
    (
        view["id"].as_str().expect("id").to_owned(),
        view["paymentHash"]
            .as_str()
            .expect("hash")
            .parse()
            .expect("hash"),
    )
}

async fn reference_lifecycle(backend: Backend) {
    with_db(backend, |url| async move {
        let hooks = Hooks::start().await;
        let (chain, store, _m, key) =
            open_shop_on(&url, Some(&hooks), TestEscrow::ReferenceV1_0).await;
        assert_reference(&chain).await;
        let op = start(&config(&url, &chain)).await;
        let api = Api::new(&op, &key);
        chain.mint(op.signer, 50 * USDC).await;
        let payer = chain.payer.address();
        let [payer0, recv0, fee0, float0] = chain.balances(op.signer).await;

        // ---- authorize 10, capture 4, capture the rest, refund half -------------------------
        let amount = 10 * USDC;
        let (_, p1) = api
            .authorize_payment(&chain, amount, op.signer, "ref-1", "auth-1")
            .await;
        assert_eq!(p1["status"], "authorized", "{p1}");
        assert_eq!(p1["escrow"], json!(chain.escrow()), "{p1}");
        let (id1, hash1) = id_and_hash(&p1);
        assert_eq!(chain.state(hash1).await, (true, amount as u128, 0));
        assert_eq!(chain.balance(payer).await, payer0 - amount as u128);

        let part = 4 * USDC;
        let (status, c1) = api.act_amount(&id1, "capture", part, "cap-1").await;
        assert_eq!(status, 200, "{c1}");
        assert_eq!(c1["status"], "partially_captured", "{c1}");
        assert_eq!(
            chain.state(hash1).await,
            (true, (amount - part) as u128, part as u128)
        );
        let (status, c2) = api.act(&id1, "capture", &json!({}), "cap-2").await;
        assert_eq!(status, 200, "{c2}");
        assert_eq!(c2["status"], "captured", "{c2}");
        assert_eq!(chain.state(hash1).await, (true, 0, amount as u128));
        let fees = fee(part as u128) + fee((amount - part) as u128);
        assert_eq!(
            chain.balance(chain.receiver).await,
            recv0 + amount as u128 - fees
        );
        assert_eq!(chain.balance(chain.fee_receiver).await, fee0 + fees);

        let half = amount / 2;
        let (status, r1) = api.act_amount(&id1, "refund", half, "ref-1").await;
        assert_eq!(status, 200, "{r1}");
        assert_eq!(r1["status"], "partially_refunded", "{r1}");
        assert_eq!(chain.state(hash1).await, (true, 0, (amount - half) as u128));
        assert_eq!(
            chain.balance(payer).await,
            payer0 - amount as u128 + half as u128
        );
        assert_eq!(chain.balance(op.signer).await, float0 - half as u128);

        // ---- authorize 3, void ----------------------------------------------------------------
        let amount2 = 3 * USDC;
        let (_, p2) = api
            .authorize_payment(&chain, amount2, op.signer, "ref-2", "auth-2")
            .await;
        let (id2, hash2) = id_and_hash(&p2);
        let before_void = chain.balance(payer).await;
        let (status, v) = api.act(&id2, "void", &json!({}), "void-2").await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["status"], "voided", "{v}");
        assert_eq!(chain.state(hash2).await, (true, 0, 0));
        assert_eq!(chain.balance(payer).await, before_void + amount2 as u128);

        // ---- the indexer read the reference escrow's events -----------------------------------
        let events = indexed(&store, hash1, 4).await;
        let names: Vec<_> = events.iter().map(EscrowEvent::name).collect();
        assert_eq!(
            names,
            [
                "PaymentAuthorized",
                "PaymentCaptured",
                "PaymentCaptured",
                "PaymentRefunded"
            ]
        );
        for e in &events[1..3] {
            let EscrowEvent::Captured {
                fee, fee_receiver, ..
            } = e
            else {
                panic!("{e:?}")
            };
            assert_eq!(
                (*fee, *fee_receiver),
                (EventFee::Bps(FEE_BPS as u16), chain.fee_receiver)
            );
        }
        let voided = indexed(&store, hash2, 2).await;
        assert_eq!(voided[1].name(), "PaymentVoided");
        assert_eq!(voided[1].amount(), Some(amount2 as u128));

        // The batch read falls back to `paymentState` (the reference has no getPaymentStates).
        let states = read_payment_states(&chain.plain, chain.escrow(), &[hash1, hash2])
            .await
            .expect("payment states");
        let read: Vec<_> = states
            .iter()
            .map(|s| (s.has_collected_payment, s.capturable, s.refundable))
            .collect();
        assert_eq!(
            read,
            [chain.state(hash1).await, chain.state(hash2).await],
            "{states:?}"
        );

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

        // ---- database == reference escrow -------------------------------------------------------
        settle(&store, T).await;
        wind_down(op, store, &chain).await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_charge_then_refund() {
    with_db(Backend::Sqlite, |url| async move {
        let (chain, store, _m, key) = open_shop_on(&url, None, TestEscrow::ReferenceV1_0).await;
        let op = start(&config(&url, &chain)).await;
        let api = Api::new(&op, &key);
        chain.mint(op.signer, 20 * USDC).await;
        let [payer0, recv0, fee0, _] = chain.balances(op.signer).await;

        let amount = 10 * USDC;
        let mut req = chain.requirements(amount, op.signer, chain.receiver).await;
        req["extra"]["paymentFlow"] = json!("authorization");
        let body = chain.authorize_body(req, &chain.payer, "ref-charge").await;
        let (status, p) = api.post("/v1/payments/authorize", &body, "charge-1").await;
        assert_eq!(status, 201, "{p}");
        assert_eq!(p["status"], "captured", "{p}");
        assert_eq!(p["flow"], "charge", "{p}");
        let (id, hash) = id_and_hash(&p);
        assert_eq!(chain.state(hash).await, (true, 0, amount as u128));
        assert_eq!(
            chain.balance(chain.receiver).await,
            recv0 + amount as u128 - fee(amount as u128)
        );
        assert_eq!(
            chain.balance(chain.fee_receiver).await,
            fee0 + fee(amount as u128)
        );

        let (status, r) = api.act_amount(&id, "refund", 3 * USDC, "refund-1").await;
        assert_eq!(status, 200, "{r}");
        assert_eq!(r["status"], "partially_refunded", "{r}");
        assert_eq!(chain.state(hash).await, (true, 0, 7 * USDC as u128));
        assert_eq!(
            chain.balance(chain.payer.address()).await,
            payer0 - 7 * USDC as u128
        );

        let events = indexed(&store, hash, 2).await;
        let EscrowEvent::Charged {
            amount: charged,
            fee,
            ..
        } = &events[0]
        else {
            panic!("{events:?}")
        };
        assert_eq!(
            (*charged, *fee),
            (amount as u128, EventFee::Bps(FEE_BPS as u16))
        );
        assert_eq!(events[1].name(), "PaymentRefunded");

        settle(&store, T).await;
        wind_down(op, store, &chain).await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_auto_void_and_payer_reclaim() {
    with_db(Backend::Sqlite, |url| async move {
        let (chain, store, _m, key) = open_shop_on(&url, None, TestEscrow::ReferenceV1_0).await;
        // A merchant whose holds are voided one second after they are placed.
        let (_, quick_key) = store
            .create_merchant(&NewMerchant {
                name: "quick".into(),
                receivers: vec![chain.receiver],
                webhook_url: None,
                webhook_secret: None,
                capture_deadline_secs: 1,
            })
            .await
            .expect("merchant");
        let op = start(&config(&url, &chain)).await;
        let api = Api::new(&op, &key);
        let quick = Api::new(&op, quick_key.expose());
        let payer = chain.payer.address();

        // ---- auto-void at the capture deadline ------------------------------------------------
        let before = chain.balance(payer).await;
        let (_, p1) = quick
            .authorize_payment(&chain, 2 * USDC, op.signer, "quick-1", "auth-q")
            .await;
        let (id1, hash1) = id_and_hash(&p1);
        let voided = quick.wait_status(&id1, &["voided"], T).await;
        assert_eq!(amount(&voided, "capturable"), 0, "{voided}");
        assert_eq!(chain.state(hash1).await, (true, 0, 0));
        assert_eq!(chain.balance(payer).await, before);

        // ---- the payer reclaims after authorizationExpiry ----------------------------------------
        let (_, p2) = api
            .authorize_payment(&chain, 3 * USDC, op.signer, "reclaim-1", "auth-r")
            .await;
        let (id2, hash2) = id_and_hash(&p2);
        let payment = store
            .payment_by_hash(hash2)
            .await
            .expect("read")
            .expect("payment");
        let now = chain.now().await;
        chain
            .advance_clock(payment.info.authorization_expiry - now)
            .await
            .expect("advance the clock");
        let info = x402_escrow_operator::service::to_payment_info(&payment.info);
        let payer_provider = chain.provider_for(&chain.payer);
        let receipt =
            mined(AuthCaptureEscrow::new(chain.escrow(), payer_provider).reclaim(info)).await;
        assert!(receipt.status(), "reclaim on the reference escrow");
        let reclaimed = api.wait_status(&id2, &["reclaimed"], T).await;
        assert_eq!(amount(&reclaimed, "capturable"), 0, "{reclaimed}");
        assert_eq!(chain.state(hash2).await, (true, 0, 0));
        assert_eq!(chain.balance(payer).await, before);
        let events = indexed(&store, hash2, 2).await;
        assert_eq!(events[1].name(), "PaymentReclaimed");

        settle(&store, T).await;
        wind_down(op, store, &chain).await;
    })
    .await
}

/// Without the executor, ready captures of our escrow would be merged into `captureBatch`; the
/// reference escrow has none, so its captures go out one by one (and succeed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_captures_are_never_merged_into_capture_batch() {
    with_db(Backend::Sqlite, |url| async move {
        let (chain, store, _m, key) = open_shop_on(&url, None, TestEscrow::ReferenceV1_0).await;
        let mut cfg = config(&url, &chain);
        cfg.batch.use_executor = false;
        cfg.batch.max_size = 10;
        cfg.batch.max_wait_ms = 300;
        let op = start(&cfg).await;
        let api = Api::new(&op, &key);
        let mut ids = Vec::new();
        for i in 0..3 {
            let (_, p) = api
                .authorize_payment(
                    &chain,
                    USDC,
                    op.signer,
                    &format!("b-{i}"),
                    &format!("auth-{i}"),
                )
                .await;
            ids.push(id_and_hash(&p));
        }
        // All three captures requested at once: they are ready together.
        let mut captures = tokio::task::JoinSet::new();
        for (i, (id, _)) in ids.iter().enumerate() {
            let (api, id) = (api.clone(), id.clone());
            captures.spawn(async move {
                api.act(&id, "capture", &json!({}), &format!("cap-{i}"))
                    .await
            });
        }
        while let Some(answer) = captures.join_next().await {
            let (status, view) = answer.expect("capture task");
            assert_eq!(status, 200, "{view}");
            assert_eq!(view["status"], "captured", "{view}");
        }
        for (_, hash) in &ids {
            assert_eq!(chain.state(*hash).await, (true, 0, USDC as u128));
        }
        assert_eq!(
            count(
                &store,
                "chain_txs WHERE kind IN ('capture_batch', 'execute')"
            )
            .await,
            0
        );
        assert_eq!(sent_alone(&store, "'capture'").await, 3);
        assert_eq!(
            count(&store, "chain_txs WHERE status = 'reverted'").await,
            0
        );

        settle(&store, T).await;
        wind_down(op, store, &chain).await;
    })
    .await
}
