//! Batching of captures and voids (`[batch]`): the whole operator against anvil, on SQLite and
//! PostgreSQL.
//!
//! * captures ready together go out as one `captureBatch` transaction, voids (asked for by the
//!   merchant, or the auto-void sweep's at the capture deadline) as one `voidBatch`; every payment
//!   settles exactly once and balances are exact;
//! * one bad member (its authorization expired): found when the batch is formed, it is sent
//!   alone and fails with its own error code while the others go out together; found only when
//!   the batch reverts on chain, every member is re-sent alone: the others are captured, the bad
//!   one fails with its own error code;
//! * a crash right after the batch row was claimed (merged, nonce reserved) and one after it was
//!   signed (before broadcast) are recovered from the database; nothing is captured twice;
//! * `max_size = 1` sends every capture on its own, as without batching.
//!
//! Batches are made deterministic by a long `max_wait_ms` and a `max_size` equal to the number
//! of captures requested: the batch goes out exactly when the last one is queued.

mod operator_support;
mod store_support;

use std::time::{Duration, Instant};

use alloy::primitives::B256;
use alloy::providers::ext::AnvilApi;
use operator_support::*;
use serde_json::{Value, json};
use uuid::Uuid;
use x402_escrow_operator::config::Config;
use x402_escrow_operator::relayer::{CrashPoint, Relayer};
use x402_escrow_operator::runtime;
use x402_escrow_operator::service::{CaptureRequest, PaymentService};
use x402_escrow_operator::store::{Backend, NewMerchant, Store};

const AMOUNT: u64 = 3 * USDC;

both_backends!(
    captures_and_voids_batched,
    auto_voids_batched,
    bad_member_fails_alone,
    batch_reverted_on_chain,
    crash_after_merge,
    max_size_one_sends_singly
);

mod sqlite_only {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn crash_after_signing_batch() {
        super::crash_after_signing_batch(x402_escrow_operator::store::Backend::Sqlite).await
    }
}

fn batching_config(url: &str, chain: &Chain, max_size: usize) -> Config {
    let mut c = config(url, chain);
    c.batch.max_size = max_size;
    // Long enough that a batch only ever goes out because it is full (deterministic tests).
    c.batch.max_wait_ms = 60_000;
    // These tests drive the escrow's own `captureBatch` / `voidBatch`; the executor's
    // `execute` path (the default when the deployment has an executor) is `execute_batching.rs`.
    c.batch.use_executor = false;
    c
}

/// Authorizes `n` payments of `AMOUNT` (each waits for its hold on chain); `deadlines[i]`, when
/// set, replaces payment i's `captureDeadline` (authorizationExpiry). Returns (id, hash).
async fn authorize_n(
    chain: &Chain,
    api: &Api,
    signer: alloy::primitives::Address,
    tag: &str,
    deadlines: &[Option<u64>],
) -> Vec<(String, B256)> {
    let mut tasks = Vec::new();
    for (i, deadline) in deadlines.iter().enumerate() {
        let mut req = chain.requirements(AMOUNT, signer, chain.receiver).await;
        if let Some(d) = deadline {
            req["extra"]["captureDeadline"] = json!(d);
        }
        let rid = format!("{tag}-{i}");
        let body = chain.authorize_body(req, &chain.payer, &rid).await;
        let api = api.clone();
        tasks.push(tokio::spawn(async move {
            let (status, p) = api
                .post("/v1/payments/authorize", &body, &format!("auth-{rid}"))
                .await;
            assert_eq!(status, 201, "{p}");
            assert_eq!(p["status"], "authorized", "{p}");
            (
                p["id"].as_str().unwrap().to_owned(),
                p["paymentHash"].as_str().unwrap().parse::<B256>().unwrap(),
            )
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("authorize task"));
    }
    out
}

/// Posts `/v1/payments/{id}/{action}` for each id concurrently; returns the answers.
async fn act_all(api: &Api, ids: &[String], action: &str) -> Vec<(u16, Value)> {
    let mut tasks = Vec::new();
    for id in ids {
        let api = api.clone();
        let path = format!("/v1/payments/{id}/{action}");
        let idem = format!("{action}-{id}");
        tasks.push(tokio::spawn(async move {
            api.post(&path, &json!({}), &idem).await
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("action task"));
    }
    out
}

/// The `transactions` of a payment view with this kind and status.
fn txs<'a>(view: &'a Value, kind: &str, status: &str) -> Vec<&'a Value> {
    view["transactions"]
        .as_array()
        .expect("transactions")
        .iter()
        .filter(|t| t["kind"] == kind && t["status"] == status)
        .collect()
}

async fn batch_member_count(store: &Store) -> i64 {
    count(store, "chain_tx_members").await
}

async fn captures_and_voids_batched(backend: Backend) {
    with_db(backend, |url| async move {
        let chain = Chain::start().await;
        let store = test_store(&url).await;
        let hooks = Hooks::start().await;
        let (_m, key) = merchant(&store, "shop", chain.receiver, Some(&hooks)).await;
        // Eight holds: four are captured together (a full batch of 4), four voided together.
        let op = start(&batching_config(&url, &chain, 4)).await;
        let api = Api::new(&op, &key);
        let payer0 = chain.balance(chain.payer.address()).await;
        let recv0 = chain.balance(chain.receiver).await;
        let fee0 = chain.balance(chain.fee_receiver).await;

        let payments = authorize_n(&chain, &api, op.signer, "bv", &[None; 8]).await;
        let (to_capture, to_void) = payments.split_at(4);
        let ids = |ps: &[(String, B256)]| ps.iter().map(|p| p.0.clone()).collect::<Vec<_>>();

        for (status, p) in act_all(&api, &ids(to_capture), "capture").await {
            assert_eq!(status, 200, "{p}");
            assert_eq!(p["status"], "captured", "{p}");
        }
        for (status, p) in act_all(&api, &ids(to_void), "void").await {
            assert_eq!(status, 200, "{p}");
            assert_eq!(p["status"], "voided", "{p}");
        }
        settle(&store, WAIT).await;

        // One transaction each way, carrying four payments.
        assert_eq!(
            count(&store, "chain_txs WHERE kind = 'capture_batch'").await,
            1
        );
        assert_eq!(
            count(&store, "chain_txs WHERE kind = 'void_batch'").await,
            1
        );
        assert_eq!(
            count(
                &store,
                "chain_txs WHERE kind IN ('capture_batch', 'void_batch') AND status = 'final'"
            )
            .await,
            2
        );
        assert_eq!(
            sent_alone(&store, "'capture', 'void'").await,
            0,
            "no single capture or void was sent"
        );
        assert_eq!(batch_member_count(&store).await, 8);
        let mut batch_hashes = Vec::new();
        for (id, hash) in to_capture {
            let p = api.payment(id).await;
            assert_eq!(p["status"], "captured", "{p}");
            assert_eq!(amount(&p, "captured"), AMOUNT as u128);
            let b = txs(&p, "capture_batch", "final");
            assert_eq!(b.len(), 1, "{p}");
            assert!(
                txs(&p, "capture", "abandoned").is_empty(),
                "merged rows are not shown: {p}"
            );
            batch_hashes.push(b[0]["hash"].clone());
            assert_eq!(chain.state(*hash).await, (true, 0, AMOUNT as u128));
        }
        assert!(
            batch_hashes
                .iter()
                .all(|h| h == &batch_hashes[0] && h.is_string())
        );
        // Each member's webhook names the batch transaction.
        for (id, _) in to_capture {
            hooks
                .wait_for(id, &["payment.authorized", "payment.captured"], WAIT)
                .await;
            let captured: Vec<_> = hooks
                .events()
                .into_iter()
                .filter(|e| &e.data.payment_id == id && e.event_type.as_str() == "payment.captured")
                .collect();
            assert_eq!(captured.len(), 1);
            assert_eq!(
                captured[0].data.transaction_hash.map(|h| json!(h)),
                Some(batch_hashes[0].clone())
            );
        }
        for (id, hash) in to_void {
            let p = api.payment(id).await;
            assert_eq!(p["status"], "voided", "{p}");
            assert_eq!(txs(&p, "void_batch", "final").len(), 1, "{p}");
            assert_eq!(chain.state(*hash).await, (true, 0, 0));
        }
        // Balances exact: four captures paid out (minus fees), four holds back to the payer.
        let captured = 4 * AMOUNT as u128;
        chain.assert_payer_spent(payer0, captured).await;
        assert_eq!(
            chain.balance(chain.receiver).await,
            recv0 + captured - 4 * fee(AMOUNT as u128)
        );
        assert_eq!(
            chain.balance(chain.fee_receiver).await,
            fee0 + 4 * fee(AMOUNT as u128)
        );
        wind_down(op, store, &chain).await;
    })
    .await
}

async fn auto_voids_batched(backend: Backend) {
    with_db(backend, |url| async move {
        let chain = Chain::start().await;
        let store = test_store(&url).await;
        // Holds of this merchant are voided one second after they are authorized.
        let (_m, key) = store
            .create_merchant(&NewMerchant {
                name: "hasty".into(),
                receivers: vec![chain.receiver],
                webhook_url: None,
                webhook_secret: None,
                capture_deadline_secs: 1,
            })
            .await
            .expect("merchant");
        let key = key.expose().to_owned();
        let op = start(&batching_config(&url, &chain, 4)).await;
        let api = Api::new(&op, &key);
        let payer0 = chain.balance(chain.payer.address()).await;

        let payments = authorize_n(&chain, &api, op.signer, "auto", &[None; 4]).await;
        for (id, hash) in &payments {
            let p = api.wait_status(id, &["voided"], WAIT).await;
            assert_eq!(txs(&p, "void_batch", "final").len(), 1, "{p}");
            assert_eq!(chain.state(*hash).await, (true, 0, 0));
        }
        settle(&store, WAIT).await;
        assert_eq!(
            count(&store, "chain_txs WHERE kind = 'void_batch'").await,
            1
        );
        assert_eq!(sent_alone(&store, "'void'").await, 0);
        assert_eq!(chain.balance(chain.payer.address()).await, payer0);
        wind_down(op, store, &chain).await;
    })
    .await
}

/// Four payments whose captures will be batched; payment 1's authorization expires 4000 s from
/// now (just over the merchant's capture deadline plus margin, the least the operator accepts),
/// the others' in two hours.
async fn four_with_one_short(
    chain: &Chain,
    api: &Api,
    signer: alloy::primitives::Address,
    tag: &str,
) -> Vec<(String, B256)> {
    let now = chain.now().await;
    authorize_n(
        chain,
        api,
        signer,
        tag,
        &[None, Some(now + 4000), None, None],
    )
    .await
}

/// Payment 1 failed alone with its own error; the three others are captured exactly once.
async fn check_one_bad(
    chain: &Chain,
    api: &Api,
    payments: &[(String, B256)],
    recv0: u128,
    good_kind: &str,
) {
    for (i, (id, hash)) in payments.iter().enumerate() {
        let p = api.payment(id).await;
        if i == 1 {
            assert!(
                p["status"] == "authorized" || p["status"] == "expired",
                "the bad member is not captured: {p}"
            );
            assert_eq!(p["lastError"]["code"], "AfterAuthorizationExpiry", "{p}");
            assert_eq!(amount(&p, "captured"), 0);
            assert_eq!(chain.state(*hash).await, (true, AMOUNT as u128, 0));
        } else {
            assert_eq!(p["status"], "captured", "{p}");
            assert_eq!(txs(&p, good_kind, "final").len(), 1, "{p}");
            assert_eq!(chain.state(*hash).await, (true, 0, AMOUNT as u128));
        }
    }
    assert_eq!(
        chain.balance(chain.receiver).await,
        recv0 + 3 * (AMOUNT as u128 - fee(AMOUNT as u128))
    );
}

/// The batch would revert when it is formed: the relayer's simulation finds the bad member,
/// sends it alone (it fails with its own error) and batches the three others.
async fn bad_member_fails_alone(backend: Backend) {
    with_db(backend, |url| async move {
        let (chain, store, _m, key) = open_shop(&url, None).await;
        let op = start(&batching_config(&url, &chain, 4)).await;
        let api = Api::new(&op, &key);
        let recv0 = chain.balance(chain.receiver).await;
        let payments = four_with_one_short(&chain, &api, op.signer, "bad").await;
        let ids: Vec<String> = payments.iter().map(|p| p.0.clone()).collect();

        // Three captures queued (1 among them, still valid): the batch is not full yet.
        let first = {
            let api = api.clone();
            let ids = ids[..3].to_vec();
            tokio::spawn(async move { act_all(&api, &ids, "capture").await })
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while count(&store, "chain_txs WHERE kind = 'capture'").await < 3 {
            assert!(Instant::now() < deadline, "captures not queued");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            count(&store, "chain_txs WHERE kind = 'capture_batch'").await,
            0
        );
        // Payment 1's authorization expires; the fourth capture fills the batch.
        chain
            .plain
            .anvil_increase_time(4100)
            .await
            .expect("increase time");
        chain.plain.anvil_mine(Some(1), None).await.expect("mine");
        let (status, p) = api
            .post(
                &format!("/v1/payments/{}/capture", ids[3]),
                &json!({}),
                "capture-last",
            )
            .await;
        assert_eq!(status, 200, "{p}");
        for (status, p) in first.await.expect("captures") {
            assert_eq!(status, 200, "{p}");
        }
        settle(&store, WAIT).await;

        // One batch of the three good ones; the bad one alone, refused at its gas estimate.
        assert_eq!(
            count(
                &store,
                "chain_txs WHERE kind = 'capture_batch' AND status = 'final'"
            )
            .await,
            1
        );
        assert_eq!(
            count(&store, "chain_txs WHERE kind = 'capture_batch'").await,
            1
        );
        assert_eq!(count(&store, "chain_tx_members").await, 3);
        assert_eq!(
            count(
                &store,
                "chain_txs WHERE kind = 'capture' AND status = 'reverted'"
            )
            .await,
            1
        );
        check_one_bad(&chain, &api, &payments, recv0, "capture_batch").await;
        op.shutdown().await;
        store.close().await;
    })
    .await
}

/// The batch passes every check when it is sent but reverts on chain (payment 1 expires before
/// the block): the engine re-sends every member alone; the bad one fails with its own error.
async fn batch_reverted_on_chain(backend: Backend) {
    with_db(backend, |url| async move {
        let (chain, store, _m, key) = open_shop(&url, None).await;
        let op = start(&batching_config(&url, &chain, 4)).await;
        let api = Api::new(&op, &key);
        let recv0 = chain.balance(chain.receiver).await;
        let payments = four_with_one_short(&chain, &api, op.signer, "onchain").await;
        let ids: Vec<String> = payments.iter().map(|p| p.0.clone()).collect();

        chain.plain.anvil_set_auto_mine(false).await.expect("automine off");
        let captures = {
            let api = api.clone();
            let ids = ids.clone();
            tokio::spawn(async move { act_all(&api, &ids, "capture").await })
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while count(&store, "chain_txs WHERE kind = 'capture_batch' AND status = 'broadcast'").await == 0 {
            assert!(Instant::now() < deadline, "batch not broadcast");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The block that includes the batch comes after payment 1's authorization expiry.
        chain.plain.anvil_increase_time(4100).await.expect("increase time");
        chain.plain.anvil_mine(Some(1), None).await.expect("mine");
        chain.plain.anvil_set_auto_mine(true).await.expect("automine on");
        for (status, p) in captures.await.expect("captures") {
            assert_eq!(status, 200, "{p}");
        }
        settle(&store, WAIT).await;

        // The batch was mined and reverted; its members went out again one by one.
        assert_eq!(
            count(&store, "chain_txs WHERE kind = 'capture_batch' AND status = 'reverted' AND mined_tx_hash IS NOT NULL").await,
            1
        );
        assert_eq!(count(&store, "chain_tx_members WHERE fallback_tx_id IS NOT NULL").await, 4);
        check_one_bad(&chain, &api, &payments, recv0, "capture").await;
        op.shutdown().await;
        store.close().await;
    })
    .await
}

/// Authorizes three payments with a normal operator, stops it, then runs an engine with a
/// relayer that "crashes" at `point` while the three captures are batched; a new operator
/// finishes the work. Nothing is captured twice.
async fn crash_at(backend: Backend, point: CrashPoint) {
    with_db(backend, |url| async move {
        let (chain, store, m, key) = open_shop(&url, None).await;
        let cfg = batching_config(&url, &chain, 3);
        let recv0 = chain.balance(chain.receiver).await;
        let fee0 = chain.balance(chain.fee_receiver).await;

        let op = start(&cfg).await;
        let payments =
            authorize_n(&chain, &Api::new(&op, &key), op.signer, "crash", &[None; 3]).await;
        op.shutdown().await;
        let nonce_before = chain.nonce(chain.operator.address()).await;

        // The engine and a relayer that stops dead at `point`.
        let core = runtime::open(&cfg).await.expect("open");
        let relayer = Relayer::from_config(
            core.store.clone(),
            &cfg,
            &core.deployment,
            core.signer.clone(),
            "crashy",
        )
        .expect("relayer")
        .with_notify(core.relayer_notify.clone())
        .with_crash_point(point);
        let crashed = tokio::spawn(relayer.run(std::future::pending::<()>()));
        let mut captures = Vec::new();
        for (id, _) in &payments {
            let engine = core.engine.clone();
            let merchant = m.clone();
            let id: Uuid = id.parse().unwrap();
            captures.push(tokio::spawn(async move {
                let _ = engine
                    .capture(&merchant, id, CaptureRequest { amount: None })
                    .await;
            }));
        }
        tokio::time::timeout(Duration::from_secs(20), crashed)
            .await
            .expect("the relayer reached its crash point")
            .expect("relayer task");
        for c in captures {
            c.abort();
        }
        // What the crash left: one batch row, the singles merged, nothing mined.
        assert_eq!(
            count(&store, "chain_txs WHERE kind = 'capture_batch'").await,
            1
        );
        assert_eq!(
            count(
                &store,
                "chain_txs WHERE kind = 'capture' AND status = 'abandoned'"
            )
            .await,
            3
        );
        assert_eq!(
            count(&store, "payments WHERE status = 'capturing'").await,
            3
        );
        let batch_status = if point == CrashPoint::AfterClaim {
            "reserved"
        } else {
            "signed"
        };
        assert_eq!(
            count(
                &store,
                &format!("chain_txs WHERE kind = 'capture_batch' AND status = '{batch_status}'")
            )
            .await,
            1
        );
        assert_eq!(chain.nonce(chain.operator.address()).await, nonce_before);
        core.store.close().await;
        drop(core);

        // Restart: the new operator takes the lease once the crashed one's runs out.
        let op = start(&cfg).await;
        let api = Api::new(&op, &key);
        for (id, _) in &payments {
            api.wait_status(id, &["captured"], WAIT).await;
        }
        settle(&store, WAIT).await;
        for (id, hash) in &payments {
            let p = api.payment(id).await;
            assert_eq!(amount(&p, "captured"), AMOUNT as u128, "{p}");
            assert_eq!(txs(&p, "capture_batch", "final").len(), 1, "{p}");
            assert_eq!(chain.state(*hash).await, (true, 0, AMOUNT as u128));
        }
        assert_eq!(sent_alone(&store, "'capture'").await, 0);
        assert_eq!(
            chain.balance(chain.receiver).await,
            recv0 + 3 * (AMOUNT as u128 - fee(AMOUNT as u128)),
            "captured exactly once"
        );
        assert_eq!(
            chain.balance(chain.fee_receiver).await,
            fee0 + 3 * fee(AMOUNT as u128)
        );
        wind_down(op, store, &chain).await;
    })
    .await
}

async fn crash_after_merge(backend: Backend) {
    // The first row claimed after the authorizations is the batch: the crash leaves it merged,
    // its nonce reserved, nothing signed.
    crash_at(backend, CrashPoint::AfterClaim).await
}

async fn crash_after_signing_batch(backend: Backend) {
    crash_at(backend, CrashPoint::AfterRecordAttempt).await
}

async fn max_size_one_sends_singly(backend: Backend) {
    with_db(backend, |url| async move {
        let (chain, store, _m, key) = open_shop(&url, None).await;
        let op = start(&batching_config(&url, &chain, 1)).await;
        let api = Api::new(&op, &key);
        let recv0 = chain.balance(chain.receiver).await;

        let payments = authorize_n(&chain, &api, op.signer, "one", &[None; 3]).await;
        let ids: Vec<String> = payments.iter().map(|p| p.0.clone()).collect();
        // With max_size 1 the (long) max_wait does not apply: each capture goes at once.
        for (status, p) in act_all(&api, &ids, "capture").await {
            assert_eq!(status, 200, "{p}");
            assert_eq!(p["status"], "captured", "{p}");
            assert_eq!(txs(&p, "capture", "final").len(), 1, "{p}");
        }
        settle(&store, WAIT).await;
        assert_eq!(
            count(
                &store,
                "chain_txs WHERE kind IN ('capture_batch', 'void_batch')"
            )
            .await,
            0
        );
        assert_eq!(
            count(
                &store,
                "chain_txs WHERE kind = 'capture' AND status = 'final'"
            )
            .await,
            3
        );
        assert_eq!(batch_member_count(&store).await, 0);
        assert_eq!(
            chain.balance(chain.receiver).await,
            recv0 + 3 * (AMOUNT as u128 - fee(AMOUNT as u128))
        );
        assert_nonces(&store, &chain).await;
        op.shutdown().await;
        store.close().await;
    })
    .await
}
