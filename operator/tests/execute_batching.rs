//! The general batch path (`[batch]` with the deployment's `OperatorBatchExecutor`): the
//! operator's signer delegates to the executor (EIP-7702), and queued escrow calls of several
//! payments, any kind mixed, go out as one `execute` transaction from the signer to itself. On
//! SQLite and PostgreSQL, against anvil (post-Prague, EIP-7702):
//!
//! * delegation: one `delegate` row (two nonces: its own and the authorization's), after which
//!   the signer's code designates the executor;
//! * six authorizations queued together go out as one `execute`; then captures, a partial
//!   capture and voids mixed in one `execute`; then refunds in one `execute`; every payment
//!   settles exactly once, balances are exact, nonces have no gap;
//! * a member whose call reverts only in company (two holds of one payer whose balance covers
//!   one): each member alone passes the simulation, so both are merged into one `execute`; its
//!   gas is estimated as `executeAll`, which reverts, so the `execute` is never sent and both
//!   members are re-sent alone: the first is authorized, the second fails with its own error;
//! * calls queued while an `execute` is in flight (mining paused) form the next `execute` during
//!   the flight, simulated and given its gas limit then, and none goes out alone beside it: the
//!   signer never has two transactions in flight; the next one goes once the first is mined;
//! * `exact` transfers (`/settle`, no payment) ride an `execute` with escrow calls: each
//!   settle answers success with the `execute`'s hash, the outcome is written back on the
//!   `transfer` row, a retried settle answers the same without a second transfer; two transfers
//!   of one payer whose balance covers one: the `execute` is refused at its estimate, both are
//!   queued again alone, one moves the tokens and the other fails with `transaction_reverted`;
//! * a batch whose simulated gas limit would not fit in a block (the block gas limit lowered to
//!   700,000) is halved: eight authorizations go out as two `execute`s of four, none alone;
//! * with `use_executor = false` nothing is delegated and authorizations go out one by one.
//!
//! Deterministic: the relayer is started only once every row of a round is queued (the engine
//! writes outbox rows without a relayer running), so each round's rows are merged together.

mod operator_support;
mod store_support;

use std::time::Duration;

use alloy::primitives::{Address, B256};
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use operator_support::*;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use uuid::Uuid;
use x402_escrow_operator::config::Config;
use x402_escrow_operator::relayer::Relayer;
use x402_escrow_operator::runtime::{self, Core};
use x402_escrow_operator::service::{
    AuthorizeRequest, CaptureRequest, PaymentService, RefundRequest,
};
use x402_escrow_operator::store::{Backend, Merchant, Store};
use x402_escrow_sdk::facilitator::VerifyRequest;
use x402_escrow_sdk::random_b256;
use x402_escrow_sdk::schemes::exact;
use x402_escrow_sdk::wire::{PaymentPayload, PaymentRequirements};

const AMOUNT: u64 = 4 * USDC;

both_backends!(
    every_kind_goes_out_in_execute,
    calls_queued_in_flight_form_the_next_batch,
    member_reverting_in_company_fails_alone,
    exact_transfers_ride_an_execute,
    a_batch_too_big_for_a_block_is_split,
    executor_off_sends_singly
);

/// Batches of up to 16, and a long wait: a round's rows go out together because they are all
/// queued before the relayer starts.
fn execute_config(url: &str, chain: &Chain) -> Config {
    let mut c = config(url, chain);
    c.batch.max_size = 16;
    c.batch.max_wait_ms = 60_000;
    c.batch.use_executor = true;
    c
}

/// A fresh chain, the store on `url` with one merchant, the executor configuration and the
/// operator's core opened on it (no relayer running).
async fn shop(url: &str) -> (Chain, Store, Merchant, Config, Core) {
    let chain = Chain::start().await;
    let store = test_store(url).await;
    let (m, _key) = merchant(&store, "shop", chain.receiver, None).await;
    let cfg = execute_config(url, &chain);
    let core = runtime::open(&cfg).await.expect("open");
    (chain, store, m, cfg, core)
}

/// A relayer for `core`, its outcomes applied by the engine, running until aborted.
fn run_relayer(core: &Core, cfg: &Config, owner: &str) -> (JoinHandle<()>, JoinHandle<()>) {
    let relayer = Relayer::from_config(
        core.store.clone(),
        cfg,
        &core.deployment,
        core.signer.clone(),
        owner,
    )
    .expect("relayer")
    .with_notify(core.relayer_notify.clone());
    let mut outcomes = relayer.handle().subscribe();
    let engine = core.engine.clone();
    let applier = tokio::spawn(async move {
        while let Ok(o) = outcomes.recv().await {
            let _ = engine.on_tx_outcome(o.chain_tx_id).await;
        }
    });
    (
        tokio::spawn(relayer.run(std::future::pending::<()>())),
        applier,
    )
}

/// `n` authorizations by the payer queued, then a round (see [`run_round`]); each is
/// `authorized` with its hold on chain. Returns the payment views.
async fn authorized_round(
    chain: &Chain,
    core: &Core,
    cfg: &Config,
    merchant: &Merchant,
    tag: &str,
    n: usize,
) -> Vec<Value> {
    let tasks = authorize_tasks(chain, core, merchant, &chain.payer, tag, n).await;
    let queued = "chain_txs WHERE kind = 'authorize' AND status = 'queued'";
    let views = run_round(core, cfg, tasks, queued, i64::try_from(n).expect("n")).await;
    for v in &views {
        assert_eq!(v["status"], "authorized", "{v}");
        assert_eq!(chain.state(hash_of(v)).await, (true, AMOUNT as u128, 0));
    }
    views
}

/// Waits until `n` rows match `filter` (a `chain_txs WHERE …` clause).
async fn wait_rows(store: &Store, filter: &str, n: i64) {
    let deadline = std::time::Instant::now() + WAIT;
    while count(store, filter).await < n {
        assert!(
            std::time::Instant::now() < deadline,
            "{filter}: fewer than {n} rows"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts `n` authorizations of `amount` by `payer` through the engine (no relayer needed to
/// queue them); each task returns the payment view once the engine's wait ends.
async fn authorize_tasks(
    chain: &Chain,
    core: &Core,
    merchant: &Merchant,
    payer: &PrivateKeySigner,
    tag: &str,
    n: usize,
) -> Vec<JoinHandle<Value>> {
    let mut tasks = Vec::new();
    for i in 0..n {
        let req = chain
            .requirements(AMOUNT, core.signer.address(), chain.receiver)
            .await;
        let body = chain
            .authorize_body(req, payer, &format!("{tag}-{i}"))
            .await;
        let request: AuthorizeRequest = serde_json::from_value(body).expect("authorize body");
        let engine = core.engine.clone();
        let merchant = merchant.clone();
        tasks.push(tokio::spawn(async move {
            let view = engine
                .authorize(&merchant, request, None)
                .await
                .expect("authorize");
            serde_json::to_value(view).expect("view json")
        }));
    }
    tasks
}

async fn join_all(tasks: Vec<JoinHandle<Value>>) -> Vec<Value> {
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("task"));
    }
    out
}

/// One round: waits until `n` rows match `queued` (everything the round writes is queued
/// before any relayer runs), runs a relayer until the round's `tasks` have answered and the
/// store has settled, then stops it. Returns the tasks' answers, in order.
async fn run_round(
    core: &Core,
    cfg: &Config,
    tasks: Vec<JoinHandle<Value>>,
    queued: &str,
    n: i64,
) -> Vec<Value> {
    wait_rows(&core.store, queued, n).await;
    let (relayer, applier) = run_relayer(core, cfg, "round");
    let views = join_all(tasks).await;
    settle(&core.store, WAIT).await;
    relayer.abort();
    applier.abort();
    views
}

fn id_of(view: &Value) -> Uuid {
    view["id"].as_str().expect("id").parse().expect("uuid")
}

fn hash_of(view: &Value) -> B256 {
    view["paymentHash"]
        .as_str()
        .expect("paymentHash")
        .parse()
        .expect("hash")
}

/// Every outbox row as `kind status (reason)`, for failure messages.
async fn rows(store: &Store) -> Vec<String> {
    let sql = "SELECT kind, status, revert_reason FROM chain_txs ORDER BY created_at";
    rendered_rows(store, sql, |r| {
        format!(
            "{} {} ({})",
            column::<String>(r, "kind"),
            column::<String>(r, "status"),
            column::<Option<String>>(r, "revert_reason").unwrap_or_default()
        )
    })
    .await
}

async fn assert_delegates(chain: &Chain, signer: Address, executor: Address) {
    let code = chain.plain.get_code_at(signer).await.expect("code");
    let mut want = vec![0xef, 0x01, 0x00];
    want.extend_from_slice(executor.as_slice());
    assert_eq!(code.as_ref(), want.as_slice(), "signer code");
}

async fn every_kind_goes_out_in_execute(backend: Backend) {
    with_db(backend, |url| async move {
        let chain = Chain::start().await;
        let store = test_store(&url).await;
        let (m, _key) = merchant(&store, "shop", chain.receiver, None).await;
        credit_reserve(&store, m.id, &chain).await;
        let cfg = execute_config(&url, &chain);
        let core = runtime::open(&cfg).await.expect("open");
        let executor = core
            .deployment
            .batch_executor
            .expect("deployment has an executor");
        chain.mint(core.signer.address(), 50 * USDC).await; // the refund float
        let payer0 = chain.balance(chain.payer.address()).await;
        let recv0 = chain.balance(chain.receiver).await;

        // ---- round 1: six authorizations, one execute ------------------------------------
        let views = authorized_round(&chain, &core, &cfg, &m, "ex", 6).await;
        assert_delegates(&chain, core.signer.address(), executor).await;
        assert_eq!(
            count(
                &store,
                "chain_txs WHERE kind = 'delegate' AND status = 'final'"
            )
            .await,
            1
        );
        assert_eq!(
            count(
                &store,
                "chain_txs WHERE kind = 'execute' AND status = 'final'"
            )
            .await,
            1
        );
        assert_eq!(
            sent_alone(&store, "'authorize'").await,
            0,
            "no authorization went out alone"
        );
        assert_eq!(count(&store, "chain_tx_members").await, 6);

        // ---- round 2: three full captures, one partial capture, two voids: one execute ----
        let ids: Vec<Uuid> = views.iter().map(id_of).collect();
        let mut tasks: Vec<JoinHandle<Value>> = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let engine = core.engine.clone();
            let merchant = m.clone();
            let id = *id;
            tasks.push(tokio::spawn(async move {
                let view = match i {
                    0..=2 => {
                        engine
                            .capture(&merchant, id, CaptureRequest { amount: None })
                            .await
                    }
                    3 => {
                        engine
                            .capture(
                                &merchant,
                                id,
                                CaptureRequest {
                                    amount: Some((AMOUNT / 2).into()),
                                },
                            )
                            .await
                    }
                    _ => engine.void(&merchant, id).await,
                };
                serde_json::to_value(view.expect("action")).expect("view json")
            }));
        }
        let views2 = run_round(
            &core,
            &cfg,
            tasks,
            "chain_txs WHERE kind IN ('capture', 'void') AND status = 'queued'",
            6,
        )
        .await;
        for (i, v) in views2.iter().enumerate() {
            let want = match i {
                0..=2 => "captured",
                3 => "partially_captured",
                _ => "voided",
            };
            assert_eq!(v["status"], want, "{v}");
        }
        assert_eq!(
            count(
                &store,
                "chain_txs WHERE kind = 'execute' AND status = 'final'"
            )
            .await,
            2
        );
        assert_eq!(
            sent_alone(&store, "'capture', 'void'").await,
            0,
            "no capture or void went out alone"
        );
        for (i, v) in views.iter().enumerate() {
            let want = match i {
                0..=2 => (true, 0, AMOUNT as u128),
                3 => (true, (AMOUNT / 2) as u128, (AMOUNT / 2) as u128),
                _ => (true, 0, 0),
            };
            assert_eq!(chain.state(hash_of(v)).await, want, "payment {i}");
        }

        // ---- round 3: two refunds in one execute (their approve, if any, goes alone) -----
        let mut tasks: Vec<JoinHandle<Value>> = Vec::new();
        for id in &ids[..2] {
            let engine = core.engine.clone();
            let merchant = m.clone();
            let id = *id;
            tasks.push(tokio::spawn(async move {
                let view = engine
                    .refund(
                        &merchant,
                        id,
                        RefundRequest {
                            amount: (USDC).into(),
                        },
                    )
                    .await
                    .expect("refund");
                serde_json::to_value(view).expect("view json")
            }));
        }
        for v in run_round(
            &core,
            &cfg,
            tasks,
            "chain_txs WHERE kind = 'refund' AND status = 'queued'",
            2,
        )
        .await
        {
            assert_eq!(v["status"], "partially_refunded", "{v}");
        }
        assert_eq!(
            count(
                &store,
                "chain_txs WHERE kind = 'execute' AND status = 'final'"
            )
            .await,
            3
        );
        assert_eq!(
            sent_alone(&store, "'refund'").await,
            0,
            "no refund went out alone"
        );

        // Money: the payer paid 3 full + 1 half, got back two refunds; the receiver got the
        // captures net of fees.
        let captured = 3 * AMOUNT as u128 + (AMOUNT / 2) as u128;
        assert_eq!(
            chain.balance(chain.payer.address()).await,
            payer0 - captured - (AMOUNT / 2) as u128 + 2 * USDC as u128
        );
        let net = |x: u128| x - fee(x);
        assert_eq!(
            chain.balance(chain.receiver).await,
            recv0 + 3 * net(AMOUNT as u128) + net((AMOUNT / 2) as u128)
        );
        assert_nonces(&store, &chain).await;
        let diffs = core.engine.reconcile_all(1000).await.expect("reconcile");
        assert!(diffs.is_empty(), "reconcile differences: {diffs:#?}");
        store.close().await;
    })
    .await
}

/// `evm_setAutomine` on the test chain.
async fn set_automine(chain: &Chain, on: bool) {
    let _: Value = chain
        .plain
        .raw_request("evm_setAutomine".into(), (on,))
        .await
        .expect("evm_setAutomine");
}

async fn calls_queued_in_flight_form_the_next_batch(backend: Backend) {
    with_db(backend, |url| async move {
        let (chain, store, m, cfg, core) = shop(&url).await;
        let queued = "chain_txs WHERE kind = 'authorize' AND status = 'queued'";

        // Delegation and a first execute, mined as they come.
        let first = authorize_tasks(&chain, &core, &m, &chain.payer, "a", 2).await;
        for v in run_round(&core, &cfg, first, queued, 2).await {
            assert_eq!(v["status"], "authorized", "{v}");
        }

        // Mining paused: the next execute stays in flight.
        set_automine(&chain, false).await;
        let second = authorize_tasks(&chain, &core, &m, &chain.payer, "b", 2).await;
        wait_rows(&store, queued, 2).await;
        let (relayer, applier) = run_relayer(&core, &cfg, "flight");
        let in_flight =
            "chain_txs WHERE nonce IS NOT NULL AND status IN ('reserved', 'signed', 'broadcast')";
        wait_rows(&store, in_flight, 1).await;
        relayer.abort();
        applier.abort();

        // Calls queued meanwhile: merged into the next execute during the flight, with the
        // gas limit their simulation gave; none claimed alone, nothing else in flight.
        let third = authorize_tasks(&chain, &core, &m, &chain.payer, "c", 3).await;
        wait_rows(&store, queued, 3).await;
        let (relayer, applier) = run_relayer(&core, &cfg, "flight");
        wait_rows(
            &store,
            "chain_txs WHERE kind = 'execute' AND status = 'queued' AND gas_limit IS NOT NULL",
            1,
        )
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            count(&store, in_flight).await,
            1,
            "one transaction in flight: {:#?}",
            rows(&store).await
        );
        assert_eq!(
            count(
                &store,
                "chain_txs WHERE kind = 'authorize' AND nonce IS NOT NULL"
            )
            .await,
            0,
            "no authorization went out alone: {:#?}",
            rows(&store).await
        );

        // Mining again: the first goes through, then the one formed during its flight.
        set_automine(&chain, true).await;
        let _: Value = chain
            .plain
            .raw_request("evm_mine".into(), ())
            .await
            .expect("evm_mine");
        let views: Vec<Value> = join_all(second)
            .await
            .into_iter()
            .chain(join_all(third).await)
            .collect();
        for v in &views {
            assert_eq!(v["status"], "authorized", "{v}");
            assert_eq!(chain.state(hash_of(v)).await, (true, AMOUNT as u128, 0));
        }
        settle(&store, WAIT).await;
        relayer.abort();
        applier.abort();
        assert_eq!(
            count(
                &store,
                "chain_txs WHERE kind = 'execute' AND status = 'final'"
            )
            .await,
            3,
            "{:#?}",
            rows(&store).await
        );
        assert_eq!(sent_alone(&store, "'authorize'").await, 0);
        assert_eq!(count(&store, "chain_tx_members").await, 7);
        assert_nonces(&store, &chain).await;
        store.close().await;
    })
    .await
}

async fn member_reverting_in_company_fails_alone(backend: Backend) {
    with_db(backend, |url| async move {
        let (chain, store, m, cfg, core) = shop(&url).await;
        // A payer whose balance covers one hold and a half.
        let payer = PrivateKeySigner::random();
        chain.mint(payer.address(), AMOUNT + AMOUNT / 2).await;

        let tasks = authorize_tasks(&chain, &core, &m, &payer, "poor", 2).await;
        let views = run_round(
            &core,
            &cfg,
            tasks,
            "chain_txs WHERE kind = 'authorize' AND status = 'queued'",
            2,
        )
        .await;

        let mut statuses: Vec<String> = Vec::new();
        for v in &views {
            let latest = serde_json::to_value(
                core.engine
                    .get(&m, id_of(v), None)
                    .await
                    .expect("get payment"),
            )
            .expect("view json");
            statuses.push(latest["status"].as_str().expect("status").to_owned());
            if latest["status"] == "failed" {
                let code = latest["lastError"]["code"].as_str().expect("error code");
                assert_ne!(code, "abandoned", "{latest}");
                assert_eq!(chain.state(hash_of(v)).await, (false, 0, 0));
            } else {
                assert_eq!(chain.state(hash_of(v)).await, (true, AMOUNT as u128, 0));
            }
        }
        statuses.sort();
        assert_eq!(statuses, ["authorized", "failed"]);
        // The execute was refused at its estimate (never sent); both went out alone.
        assert_eq!(
            count(
                &store,
                "chain_txs WHERE kind = 'execute' AND status = 'reverted' AND mined_tx_hash IS NULL"
            )
            .await,
            1,
            "{:#?}",
            rows(&store).await
        );
        assert_eq!(
            count(&store, "chain_tx_members WHERE fallback_tx_id IS NOT NULL").await,
            2
        );
        assert_eq!(chain.balance(payer.address()).await, (AMOUNT / 2) as u128);
        assert_nonces(&store, &chain).await;
        store.close().await;
    })
    .await
}

/// Signed `exact` payments by `payer` to the receiver, one for each of `amounts`.
async fn exact_requests(
    chain: &Chain,
    core: &Core,
    payer: &PrivateKeySigner,
    amounts: &[u64],
) -> Vec<VerifyRequest> {
    let token = chain.token_info().expect("token");
    let mut requests = Vec::new();
    for amount in amounts {
        let requirements: PaymentRequirements = serde_json::from_value(json!({
            "scheme": "exact",
            "network": format!("eip155:{}", core.deployment.chain_id),
            "amount": amount.to_string(),
            "asset": token.address,
            "payTo": chain.receiver,
            "maxTimeoutSeconds": 300,
            "extra": {"name": token.name, "version": token.version},
        }))
        .expect("requirements");
        let payload = exact::build_payload(&requirements, payer, chain.now().await, random_b256())
            .expect("payload");
        requests.push(VerifyRequest::new(
            PaymentPayload::new(requirements.clone(), payload),
            requirements,
        ));
    }
    requests
}

/// Starts an `exact` `/settle` through the engine for each of `amounts`, paid by `payer` to the
/// receiver; each task returns the request and the settle answer (JSON).
async fn exact_tasks(
    chain: &Chain,
    core: &Core,
    merchant: &Merchant,
    payer: &PrivateKeySigner,
    amounts: &[u64],
) -> Vec<JoinHandle<(VerifyRequest, Value)>> {
    let mut tasks = Vec::new();
    for request in exact_requests(chain, core, payer, amounts).await {
        let engine = core.engine.clone();
        let merchant = merchant.clone();
        tasks.push(tokio::spawn(async move {
            let answer = engine.facilitator_settle(&merchant, &request, WAIT).await;
            (request, serde_json::to_value(answer).expect("answer json"))
        }));
    }
    tasks
}

/// One `/settle` of `request` through the engine, as JSON.
async fn settle_exact(core: &Core, merchant: &Merchant, request: &VerifyRequest) -> Value {
    let answer = core
        .engine
        .facilitator_settle(merchant, request, WAIT)
        .await;
    serde_json::to_value(answer).expect("answer json")
}

async fn exact_transfers_ride_an_execute(backend: Backend) {
    with_db(backend, |url| async move {
        let (chain, store, m, cfg, core) = shop(&url).await;
        let payer0 = chain.balance(chain.payer.address()).await;
        let recv0 = chain.balance(chain.receiver).await;
        let transfers = "chain_txs WHERE kind = 'transfer' AND status = 'queued'";

        // ---- two authorizations and two transfers, queued together: one execute ----------
        let auths = authorize_tasks(&chain, &core, &m, &chain.payer, "ex", 2).await;
        let settles = exact_tasks(&chain, &core, &m, &chain.payer, &[USDC, 2 * USDC]).await;
        wait_rows(&store, transfers, 2).await;
        let views = run_round(
            &core,
            &cfg,
            auths,
            "chain_txs WHERE kind = 'authorize' AND status = 'queued'",
            2,
        )
        .await;
        for v in &views {
            assert_eq!(v["status"], "authorized", "{v}");
        }
        let (relayer, applier) = run_relayer(&core, &cfg, "exact");
        let mut answered = Vec::new();
        for task in settles {
            answered.push(task.await.expect("settle task"));
        }
        settle(&store, WAIT).await;
        relayer.abort();
        applier.abort();
        let all_rows = rows(&store).await;
        let execute: String = sqlx::query_scalar(
            "SELECT mined_tx_hash FROM chain_txs WHERE kind = 'execute' AND status = 'final'",
        )
        .fetch_one(store.pool())
        .await
        .unwrap_or_else(|e| panic!("one final execute ({e}): {all_rows:#?}"));
        for (_, answer) in &answered {
            assert_eq!(answer["success"], true, "{answer}");
            assert_eq!(answer["transaction"], execute.as_str(), "{answer}");
        }
        assert_eq!(count(&store, "chain_tx_members WHERE payment_id IS NULL").await, 2);
        assert_eq!(count(&store, "chain_tx_members").await, 4);
        assert_eq!(
            count(&store, "chain_txs WHERE kind = 'transfer' AND status = 'final' AND nonce IS NULL AND mined_tx_hash IS NULL").await,
            2,
            "written back on the rows, which took no nonce: {:#?}",
            rows(&store).await
        );
        assert_eq!(sent_alone(&store, "'authorize', 'transfer'").await, 2, "only the written-back transfers are not abandoned");
        assert_eq!(chain.balance(chain.payer.address()).await, payer0 - 2 * AMOUNT as u128 - 3 * USDC as u128);
        assert_eq!(chain.balance(chain.receiver).await, recv0 + 3 * USDC as u128);
        // Retried: the same answer from the row, no second transfer.
        for (request, _) in &answered {
            let again = settle_exact(&core, &m, request).await;
            assert_eq!(again["success"], true, "{again}");
            assert_eq!(again["transaction"], execute.as_str(), "{again}");
        }
        assert_eq!(count(&store, "chain_txs WHERE kind = 'transfer'").await, 2);
        assert_eq!(chain.balance(chain.receiver).await, recv0 + 3 * USDC as u128);

        // ---- two transfers of a payer whose balance covers one ----------------------------
        let poor = PrivateKeySigner::random();
        chain.mint(poor.address(), AMOUNT + AMOUNT / 2).await;
        let settles = exact_tasks(&chain, &core, &m, &poor, &[AMOUNT, AMOUNT]).await;
        wait_rows(&store, transfers, 2).await;
        let (relayer, applier) = run_relayer(&core, &cfg, "exact-poor");
        let mut outcomes = Vec::new();
        for task in settles {
            let (_, answer) = task.await.expect("settle task");
            outcomes.push(answer);
        }
        settle(&store, WAIT).await;
        relayer.abort();
        applier.abort();
        let ok: Vec<_> = outcomes.iter().filter(|a| a["success"] == true).collect();
        let failed: Vec<_> = outcomes.iter().filter(|a| a["success"] == false).collect();
        assert_eq!((ok.len(), failed.len()), (1, 1), "{outcomes:#?}");
        assert_eq!(failed[0]["errorReason"], "transaction_reverted", "{outcomes:#?}");
        assert_eq!(chain.balance(poor.address()).await, (AMOUNT / 2) as u128);
        assert_eq!(chain.balance(chain.receiver).await, recv0 + 3 * USDC as u128 + AMOUNT as u128);
        assert_eq!(
            count(&store, "chain_tx_members WHERE payment_id IS NULL AND fallback_tx_id = source_tx_id").await,
            2,
            "both queued again alone as themselves: {:#?}",
            rows(&store).await
        );
        assert_eq!(count(&store, "chain_txs WHERE kind = 'transfer'").await, 4);

        // ---- the execute settles while nobody applies its outcome (the requests gone, the
        // process restarted): the outcome sweep writes it back, a retried settle answers it ----
        let requests = exact_requests(&chain, &core, &chain.payer, &[USDC, USDC]).await;
        let mut settles = Vec::new();
        for request in requests.clone() {
            let (engine, merchant) = (core.engine.clone(), m.clone());
            settles.push(tokio::spawn(async move {
                engine.facilitator_settle(&merchant, &request, WAIT).await
            }));
        }
        wait_rows(&store, transfers, 2).await;
        for task in &settles {
            task.abort();
        }
        let executed = "chain_txs WHERE kind = 'execute' AND status = 'final'";
        let before = count(&store, executed).await;
        let (relayer, applier) = run_relayer(&core, &cfg, "no-applier");
        applier.abort();
        wait_rows(&store, executed, before + 1).await;
        relayer.abort();
        let open = "chain_txs WHERE kind = 'transfer' AND status = 'abandoned'";
        assert_eq!(count(&store, open).await, 2, "{:#?}", rows(&store).await);
        let applied = core.engine.process_outcomes().await.expect("outcome sweep");
        assert_eq!(applied, 2);
        assert_eq!(count(&store, open).await, 0, "{:#?}", rows(&store).await);
        assert_eq!(
            count(&store, "chain_txs WHERE kind = 'transfer' AND status = 'final'").await,
            5
        );
        assert_eq!(
            chain.balance(chain.receiver).await,
            recv0 + 5 * USDC as u128 + AMOUNT as u128
        );
        let last: String = sqlx::query_scalar(
            "SELECT mined_tx_hash FROM chain_txs WHERE kind = 'execute' AND status = 'final' \
             ORDER BY created_at DESC LIMIT 1",
        )
        .fetch_one(store.pool())
        .await
        .expect("the last execute");
        for request in &requests {
            let again = settle_exact(&core, &m, request).await;
            assert_eq!(again["success"], true, "{again}");
            assert_eq!(again["transaction"], last.as_str(), "{again}");
        }
        assert_eq!(count(&store, "chain_txs WHERE kind = 'transfer'").await, 6);
        assert_nonces(&store, &chain).await;
        store.close().await;
    })
    .await
}

async fn a_batch_too_big_for_a_block_is_split(backend: Backend) {
    with_db(backend, |url| async move {
        let (chain, store, m, cfg, core) = shop(&url).await;
        // Blocks of 700,000 gas: eight authorizations (~87,000 gas each in an `execute`, a
        // limit of their gas used plus a third) do not fit in one, four do.
        let _: Value = chain
            .plain
            .raw_request("evm_setBlockGasLimit".into(), (format!("{:#x}", 700_000u64),))
            .await
            .expect("evm_setBlockGasLimit");
        let _: Value = chain
            .plain
            .raw_request("evm_mine".into(), ())
            .await
            .expect("evm_mine");
        authorized_round(&chain, &core, &cfg, &m, "big", 8).await;
        let sizes: Vec<i64> = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM chain_tx_members m WHERE m.batch_tx_id = t.id) \
             FROM chain_txs t WHERE t.kind = 'execute' AND t.status = 'final' ORDER BY t.created_at",
        )
        .fetch_all(store.pool())
        .await
        .expect("execute sizes");
        assert_eq!(sizes, [4, 4], "{:#?}", rows(&store).await);
        assert_eq!(sent_alone(&store, "'authorize'").await, 0);
        assert_nonces(&store, &chain).await;
        store.close().await;
    })
    .await
}

async fn executor_off_sends_singly(backend: Backend) {
    with_db(backend, |url| async move {
        let chain = Chain::start().await;
        let store = test_store(&url).await;
        let (m, _key) = merchant(&store, "shop", chain.receiver, None).await;
        let mut cfg = execute_config(&url, &chain);
        cfg.batch.use_executor = false;
        let core = runtime::open(&cfg).await.expect("open");

        let tasks = authorize_tasks(&chain, &core, &m, &chain.payer, "off", 3).await;
        for v in run_round(
            &core,
            &cfg,
            tasks,
            "chain_txs WHERE kind = 'authorize' AND status = 'queued'",
            3,
        )
        .await
        {
            assert_eq!(v["status"], "authorized", "{v}");
        }
        assert_eq!(
            count(&store, "chain_txs WHERE kind IN ('execute', 'delegate')").await,
            0
        );
        assert_eq!(
            count(
                &store,
                "chain_txs WHERE kind = 'authorize' AND status = 'final'"
            )
            .await,
            3
        );
        let code = chain
            .plain
            .get_code_at(core.signer.address())
            .await
            .expect("code");
        assert!(code.is_empty(), "the signer was not delegated: {code}");
        assert_nonces(&store, &chain).await;
        store.close().await;
    })
    .await
}
