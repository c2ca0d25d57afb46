//! Pushed receipts (`[chain] receipts = "push"`, the default) against a real anvil, on SQLite
//! and PostgreSQL: new transactions go out with `eth_sendRawTransactionSync`, the node's answers
//! settle each group in one write and wake the relayer (no poll interval between "mined" and the
//! outcome); a crash between the node's answer and the write loses nothing; a node without the
//! method turns push off and the relayer polls.

mod operator_support;
mod store_support;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use alloy::providers::ext::AnvilApi;
use alloy::sol_types::SolCall;
use operator_support::*;
use serde_json::{Value, json};
use store_support::*;
use tokio::sync::broadcast;
use x402_escrow_bindings::TestUSDC;
use x402_escrow_operator::config::ReceiptSource;
use x402_escrow_operator::relayer::{
    CrashPoint, Relayer, RelayerError, RelayerHandle, RelayerOptions, TxOutcome, http_provider,
};
use x402_escrow_operator::store::{NewChainTx, Store, TxKind, TxStatus};

store_tests!(
    pushed_receipts_wake_the_relayer_without_polling,
    pushed_receipts_under_interval_mining,
    crash_between_the_pushed_answer_and_the_write,
    a_node_without_the_method_is_polled,
    a_call_behind_an_unmined_one_waits_for_it,
);

fn push_opts() -> RelayerOptions {
    RelayerOptions {
        // Far longer than any wait below: only a pushed receipt can settle a row in time.
        poll_interval: Duration::from_secs(60),
        receipts: ReceiptSource::Push,
        ..opts(1)
    }
}

/// Waits until the relayer has announced an outcome for every row in `ids`, without mining or
/// ticking (the relayer runs on its own), for `within` at most; then the rows as stored.
/// `outcomes` must be subscribed before the rows can settle.
///
/// The announcement, not the stored status, is what a test may wait for before reading the
/// relayer's counters: a row is announced after its write and after the counters moved, while
/// the write is visible to the test's own reads a moment before the relayer has counted it
/// (under load the test then read `pushed` one group short).
async fn settled_within(
    outcomes: &mut broadcast::Receiver<TxOutcome>,
    store: &Store,
    chain: &Chain,
    ids: &[uuid::Uuid],
    within: Duration,
) -> Vec<x402_escrow_operator::store::ChainTx> {
    let mut waiting: HashSet<uuid::Uuid> = ids.iter().copied().collect();
    let deadline = tokio::time::Instant::now() + within;
    while !waiting.is_empty() {
        match tokio::time::timeout_at(deadline, outcomes.recv()).await {
            Ok(Ok(outcome)) => {
                waiting.remove(&outcome.chain_tx_id);
            }
            Ok(Err(e)) => panic!("relayer outcomes: {e}"),
            Err(_) => panic!(
                "not settled within {within:?}: {:?}\n{}",
                rows(store, ids).await,
                node_view(chain).await
            ),
        }
    }
    rows(store, ids).await
}

/// The node's side of the signer's transactions, for a failure message: its nonces and its
/// pool. (anvil 1.7 can leave a transaction `queued` although its nonce is the account's next
/// one, when it read the account's nonce before the predecessor's block and added the
/// transaction to its pool after that block: no answer comes for it, nor for the later ones.)
async fn node_view(chain: &Chain) -> String {
    let signer = chain.operator.address();
    let latest = chain.plain.get_transaction_count(signer).latest().await;
    let pending = chain.plain.get_transaction_count(signer).pending().await;
    let pool: Result<Value, _> = chain.plain.raw_request("txpool_inspect".into(), ()).await;
    format!("node: nonce latest {latest:?}, pending {pending:?}; txpool_inspect {pool:?}")
}

fn pushed(handle: &RelayerHandle) -> u64 {
    handle.metrics().pushed.load(Ordering::Relaxed)
}

/// With a 60 s poll interval, six rows enqueued one by one are all final within seconds: every
/// receipt came from the node's answer (`pushed` counts them), nonces are consecutive, and the
/// stored receipts are the chain's.
async fn pushed_receipts_wake_the_relayer_without_polling(ctx: Ctx) {
    let chain = Chain::start().await;
    let store = system_store(&ctx.url).await;
    let relayer = relayer(&store, &chain, "op-a", push_opts());
    let handle = relayer.handle();
    let mut outcomes = handle.subscribe();
    let (stop_tx, task) = spawn_relayer(relayer);
    // The first pass takes the lease; later wake-ups find it held.
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(store.enqueue_tx(&chain.approve(i)).await.unwrap().id);
        handle.wake();
    }
    let rows = settled_within(&mut outcomes, &store, &chain, &ids, Duration::from_secs(20)).await;
    assert!(all_status(&rows, TxStatus::Final), "{rows:?}");
    assert_eq!(pushed(&handle), 6, "every receipt pushed");
    let nonces: Vec<u64> = rows.iter().map(|r| r.nonce.unwrap()).collect();
    assert_eq!(nonces, (0..6).collect::<Vec<_>>());
    for r in &rows {
        let receipt = chain
            .plain
            .get_transaction_receipt(hash_of(r))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(receipt.block_hash, r.block_hash);
        assert_eq!(Some(receipt.gas_used), r.gas_used);
    }
    assert_nonces_clean(&store, &chain).await;
    stop_tx.send(()).unwrap();
    task.await.unwrap();
}

/// One block a second: the answers arrive when the block is mined, and a group sent together
/// (more than one row per block) settles from them.
async fn pushed_receipts_under_interval_mining(ctx: Ctx) {
    let chain = Chain::start().await;
    chain.plain.anvil_set_auto_mine(false).await.unwrap();
    chain.plain.anvil_set_interval_mining(1).await.unwrap();
    let store = system_store(&ctx.url).await;
    let relayer = relayer(&store, &chain, "op-a", push_opts());
    let handle = relayer.handle();
    let mut outcomes = handle.subscribe();
    let (stop_tx, task) = spawn_relayer(relayer);
    let mut ids = Vec::new();
    for i in 0..8 {
        ids.push(store.enqueue_tx(&chain.approve(i)).await.unwrap().id);
    }
    handle.wake();
    let rows = settled_within(&mut outcomes, &store, &chain, &ids, Duration::from_secs(20)).await;
    assert!(all_status(&rows, TxStatus::Final), "{rows:?}");
    assert_eq!(pushed(&handle), 8);
    let blocks: std::collections::BTreeSet<u64> =
        rows.iter().map(|r| r.block_number.unwrap()).collect();
    assert!(
        blocks.len() < rows.len(),
        "rows sent together share blocks: {blocks:?}"
    );
    assert_nonces_clean(&store, &chain).await;
    stop_tx.send(()).unwrap();
    task.await.unwrap();
}

/// The node answered with the receipt, the process died before writing it: the rows are
/// `signed` (a pushed send is never marked broadcast), the transactions are mined. A restarted
/// relayer finds the receipts by hash and never signs again.
async fn crash_between_the_pushed_answer_and_the_write(ctx: Ctx) {
    let chain = Chain::start().await;
    let store = system_store(&ctx.url).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(store.enqueue_tx(&chain.approve(i)).await.unwrap().id);
    }
    {
        let mut crashing = relayer(&store, &chain, "op-a", push_opts())
            .with_crash_point(CrashPoint::AfterBroadcast);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let err = loop {
            match crashing.tick().await {
                Ok(_) => {
                    assert!(tokio::time::Instant::now() < deadline, "no crash");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => break e,
            }
        };
        assert!(
            matches!(err, RelayerError::InjectedCrash(CrashPoint::AfterBroadcast)),
            "{err}"
        );
    }
    for r in rows(&store, &ids).await {
        assert_eq!(r.status, TxStatus::Signed, "state left by the crash: {r:?}");
        let attempt = store.attempts_for(r.id).await.unwrap().remove(0);
        assert!(
            chain
                .plain
                .get_transaction_receipt(attempt.tx_hash)
                .await
                .unwrap()
                .is_some(),
            "mined on chain"
        );
    }
    let mut fresh = relayer(&store, &chain, "op-a", push_opts());
    let settled = tick_until_settled(&mut fresh, &chain, &store, &ids, false).await;
    assert!(all_status(&settled, TxStatus::Final), "{settled:?}");
    for r in &settled {
        assert_eq!(r.attempts, 1, "never re-signed: {r:?}");
    }
    assert_nonces_clean(&store, &chain).await;
    assert_eq!(chain.nonce_latest().await, 3);
}

/// What the JSON-RPC front does with `eth_sendRawTransactionSync`.
#[derive(Clone, Copy)]
enum SyncMethod {
    /// Answers `-32601 Method not found` (as many providers do).
    Refuse,
    /// Forwards it after a delay (a slow path to the node).
    Delay(Duration),
}

/// A JSON-RPC front for anvil: everything is forwarded, `eth_sendRawTransactionSync` as
/// [`SyncMethod`] says.
struct SyncFront {
    url: String,
    seen: Arc<AtomicU64>,
}

impl SyncFront {
    async fn start(upstream: String, method: SyncMethod) -> SyncFront {
        let seen = Arc::new(AtomicU64::new(0));
        let client = reqwest::Client::new();
        let count = seen.clone();
        let app = axum::Router::new().route(
            "/",
            axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
                let client = client.clone();
                let upstream = upstream.clone();
                let count = count.clone();
                async move {
                    if body["method"] == "eth_sendRawTransactionSync" {
                        count.fetch_add(1, Ordering::SeqCst);
                        match method {
                            SyncMethod::Refuse => {
                                return axum::Json(json!({
                                    "jsonrpc": "2.0",
                                    "id": body["id"],
                                    "error": {"code": -32601, "message": "Method not found"}
                                }));
                            }
                            SyncMethod::Delay(d) => tokio::time::sleep(d).await,
                        }
                    }
                    let answer: Value = client
                        .post(&upstream)
                        .json(&body)
                        .send()
                        .await
                        .expect("forward")
                        .json()
                        .await
                        .expect("answer");
                    axum::Json(answer)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        SyncFront { url, seen }
    }

    fn relayer(&self, store: &Store, chain: &Chain, opts: RelayerOptions) -> Relayer {
        Relayer::new(
            store.clone(),
            http_provider(self.url.parse().unwrap()),
            chain.operator.clone(),
            "op-a",
            opts,
        )
    }
}

/// The first group's sends are refused as an unknown method: push turns off, those rows are
/// sent the plain way at once and settle by polling, and later rows never try the method again.
async fn a_node_without_the_method_is_polled(ctx: Ctx) {
    let chain = Chain::start().await;
    let node = SyncFront::start(chain.anvil.endpoint(), SyncMethod::Refuse).await;
    let store = system_store(&ctx.url).await;
    let relayer = node.relayer(
        &store,
        &chain,
        RelayerOptions {
            receipts: ReceiptSource::Push,
            ..opts(1)
        },
    );
    let handle = relayer.handle();
    let mut outcomes = handle.subscribe();
    let (stop_tx, task) = spawn_relayer(relayer);
    let first: Vec<_> = {
        let mut ids = Vec::new();
        for i in 0..3 {
            ids.push(store.enqueue_tx(&chain.approve(i)).await.unwrap().id);
        }
        ids
    };
    handle.wake();
    let rows = settled_within(
        &mut outcomes,
        &store,
        &chain,
        &first,
        Duration::from_secs(20),
    )
    .await;
    assert!(all_status(&rows, TxStatus::Final), "{rows:?}");
    let refused = node.seen.load(Ordering::SeqCst);
    assert!((1..=3).contains(&refused), "refused {refused}");
    let mut later = Vec::new();
    for i in 3..6 {
        later.push(store.enqueue_tx(&chain.approve(i)).await.unwrap().id);
        handle.wake();
    }
    let rows = settled_within(
        &mut outcomes,
        &store,
        &chain,
        &later,
        Duration::from_secs(20),
    )
    .await;
    assert!(all_status(&rows, TxStatus::Final), "{rows:?}");
    assert_eq!(
        node.seen.load(Ordering::SeqCst),
        refused,
        "never asked again"
    );
    assert_eq!(pushed(&handle), 0);
    assert_nonces_clean(&store, &chain).await;
    stop_tx.send(()).unwrap();
    task.await.unwrap();
}

/// A token call of the signer's with `calldata` (plumbing, like `Chain::approve`).
fn token_call(chain: &Chain, calldata: Vec<u8>) -> NewChainTx {
    NewChainTx {
        chain_id: CHAIN,
        signer: chain.operator.address(),
        kind: TxKind::Capture,
        payment_id: None,
        request: json!({ "test": "token call" }),
        to: chain.token(),
        calldata: calldata.into(),
        value: U256::ZERO,
        gas_limit: None,
    }
}

/// The signer approves itself and, in the same group, spends the allowance with
/// `transferFrom`: the spend's estimate reverts (it ran before the approve), so it waits while
/// the approve is sent. The pushed send reaches the node only after a delay, so when the pass
/// estimates the spend again the approve is signed but not yet in the node: the spend must
/// wait for it to be mined and then go through — not be rejected as reverting (the refund
/// behind the refund float's `approve`).
async fn a_call_behind_an_unmined_one_waits_for_it(ctx: Ctx) {
    let chain = Chain::start().await;
    let op = chain.operator.address();
    chain.mint(op, 5).await;
    let node = SyncFront::start(
        chain.anvil.endpoint(),
        SyncMethod::Delay(Duration::from_millis(500)),
    )
    .await;
    let store = system_store(&ctx.url).await;
    let approve = store
        .enqueue_tx(&token_call(
            &chain,
            TestUSDC::approveCall {
                spender: op,
                amount: U256::from(5),
            }
            .abi_encode(),
        ))
        .await
        .unwrap()
        .id;
    let to = Address::repeat_byte(0x77);
    let spend = store
        .enqueue_tx(&token_call(
            &chain,
            TestUSDC::transferFromCall {
                from: op,
                to,
                amount: U256::from(5),
            }
            .abi_encode(),
        ))
        .await
        .unwrap()
        .id;
    let relayer = node.relayer(&store, &chain, push_opts());
    let handle = relayer.handle();
    let mut outcomes = handle.subscribe();
    let (stop_tx, task) = spawn_relayer(relayer);
    let rows = settled_within(
        &mut outcomes,
        &store,
        &chain,
        &[approve, spend],
        Duration::from_secs(20),
    )
    .await;
    assert!(all_status(&rows, TxStatus::Final), "{rows:?}");
    assert_eq!(rows[1].attempts, 1, "{rows:?}");
    assert_eq!(chain.balance(to).await, 5);
    assert_eq!(pushed(&handle), 2);
    assert_nonces_clean(&store, &chain).await;
    stop_tx.send(()).unwrap();
    task.await.unwrap();
}
