//! Reorg under load: while paid requests flow through the real `x402-escrow serve` process,
//! anvil reorganises the last 3 blocks (`anvil_reorg` depth 3) five times, each time right after
//! a block holding one of the operator's transactions. The operator runs with
//! `confirmations = 4` (deeper than the reorg, as a deployment must be configured), so every
//! dropped transaction was mined but not final: the relayer must notice, re-send it (same signed
//! bytes or a replacement) and the indexer must drop and re-read the events of the replaced
//! blocks. A second merchant settles `exact` transfers through `/settle` meanwhile (a quarter as
//! many, riding the same `execute` batches). Afterwards: the full ledger check
//! (`fault_support::assert_ledger`), every transfer once and as answered
//! (`fault_support::assert_exact_ledger`), every dropped transaction's nonce settled, and the
//! indexed events equal the chain's.
//!
//! `X402_FAULT_N` (default 300) payments, `X402_FAULT_EXACT` (default a quarter of them) transfers:
//!
//! ```sh
//! X402_FAULT_N=1000 cargo test -p x402-escrow-operator --test fault_reorg -- --nocapture
//! ```

mod fault_support;
mod operator_support;
mod store_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use alloy::eips::BlockId;
use alloy::primitives::B256;
use alloy::providers::Provider;
use alloy::providers::ext::AnvilApi;
use fault_support::*;
use operator_support::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use x402_escrow_operator::store::Backend;

const DEPTH: u64 = 3;
/// Reorgs during the run, evenly spread.
const REORGS: u64 = 5;

/// The operator's transactions (hash, nonce) in the newest `depth` blocks.
async fn ours_in_last_blocks(chain: &Chain, depth: u64) -> Vec<(B256, u64)> {
    let head = chain.plain.get_block_number().await.expect("head");
    let mut out = Vec::new();
    for b in head.saturating_sub(depth - 1)..=head {
        let receipts = chain
            .plain
            .get_block_receipts(BlockId::number(b))
            .await
            .expect("receipts")
            .unwrap_or_default();
        for r in receipts {
            if r.from == chain.operator.address() {
                let tx = chain
                    .plain
                    .get_transaction_by_hash(r.transaction_hash)
                    .await
                    .expect("tx")
                    .expect("tx known");
                use alloy::consensus::Transaction as _;
                out.push((r.transaction_hash, tx.nonce()));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reorg_depth_three_under_load() {
    let test = "fault_reorg";
    let n: usize = knob("X402_FAULT_N", 300);
    let m: usize = knob("X402_FAULT_EXACT", n / 4);
    let seed = seed(test, 0x4E06);
    with_db(Backend::Sqlite, move |url| async move {
        let started = Instant::now();
        let mut rng = StdRng::seed_from_u64(seed);
        let chain = Chain::start().await;
        let setup = OperatorSetup::new(test, &url, &chain, &chain.url, |t| {
            set(t, "chain", "confirmations", toml::Value::Integer(DEPTH as i64 + 1));
        });
        let (key, _) = setup.add_merchant("shop", chain.receiver, None).await;
        let store = test_store(&url).await;
        let orders = orders(&chain, chain.operator.address(), "reorg", n, &mut rng, 0.7).await;
        let before = balances(&chain).await;
        let mut exact = ExactLoad::prepare(&setup, &chain, "reorg", m, &mut rng).await;

        // Blocks keep coming even when no transaction arrives (confirmations need them).
        // (The lock keeps the miner's blocks out of a reorg in progress: see below.)
        let mining = Arc::new(tokio::sync::Mutex::new(()));
        let stop = Arc::new(AtomicBool::new(false));
        let miner = {
            let (plain, mining, stop) = (chain.plain.clone(), mining.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    {
                        let _turn = mining.lock().await;
                        let _ = plain.anvil_mine(Some(1), None).await;
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            })
        };

        let op = setup.start().await;
        let client = Client::new(setup.addr, &key, Duration::from_secs(180));
        let (done, load) = spawn_orders(&client, orders, 8);
        let exact_load = exact.spawn(4, done.clone(), n);

        let mut dropped: Vec<(B256, u64)> = Vec::new();
        for k in 1..=REORGS {
            let deadline = Instant::now() + Duration::from_secs(120);
            while done.load(Ordering::SeqCst) < n as u64 * k / (REORGS + 1) {
                assert!(Instant::now() < deadline && !load.is_finished(), "no progress");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            // Strike right after one of our transactions was mined.
            let turn = mining.lock().await;
            let deadline = Instant::now() + Duration::from_secs(20);
            let ours = loop {
                let ours = ours_in_last_blocks(&chain, DEPTH).await;
                if !ours.is_empty() {
                    break ours;
                }
                assert!(
                    Instant::now() < deadline,
                    "no operator transaction mined"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            };
            // anvil's reorg is not atomic against blocks mined while it runs: the two interleave
            // and leave the node with a hole in its block numbers (`eth_getBlockByNumber` answers
            // null below the head, for good) and inconsistent state reads. So no block is mined
            // during it: the miner waits for the lock, arriving transactions wait in the pool
            // (as on a real chain, a transaction sent during a reorg lands on the new branch),
            // and a block being automined when automine goes off is given time to finish.
            chain.plain.anvil_set_auto_mine(false).await.expect("automine off");
            tokio::time::sleep(Duration::from_millis(100)).await;
            let mut ours = [ours, ours_in_last_blocks(&chain, DEPTH).await].concat();
            ours.sort();
            ours.dedup();
            chain.reorg(DEPTH).await;
            chain.plain.anvil_set_auto_mine(true).await.expect("automine on");
            // The dropped ones are gone from the canonical chain.
            let mut gone = Vec::new();
            for (hash, nonce) in &ours {
                let r = chain
                    .plain
                    .get_transaction_receipt(*hash)
                    .await
                    .expect("receipt");
                if r.is_none() {
                    gone.push((*hash, *nonce));
                }
            }
            eprintln!(
                "[{test}] reorg at {} done: {} of ours in the last {DEPTH} blocks, {} dropped",
                done.load(Ordering::SeqCst),
                ours.len(),
                gone.len()
            );
            dropped.extend(gone);
            drop(turn);
        }
        assert!(!dropped.is_empty(), "the reorgs dropped none of our transactions");

        let paid = setup.joined(load).await;
        let transferred = setup.joined(exact_load).await;
        settle_all(&store, Duration::from_secs(60)).await;
        // Let the indexer read to the head.
        let head = chain.plain.get_block_number().await.expect("head");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            use sqlx::Row;
            let row = sqlx::query("SELECT MAX(next_block) AS b FROM indexer_cursors")
                .fetch_one(store.pool())
                .await
                .expect("cursor");
            let next: Option<i64> = row.try_get("b").ok();
            if next.is_some_and(|b| b as u64 > head) {
                break;
            }
            assert!(Instant::now() < deadline, "indexer behind: {next:?} vs {head}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        stop.store(true, Ordering::SeqCst);
        let _ = miner.await;

        // Each dropped transaction's nonce is now used by a final row of ours, mined on the
        // canonical chain.
        let mut same_bytes = 0;
        for (hash, nonce) in &dropped {
            use sqlx::Row;
            let row = sqlx::query(
                "SELECT status, mined_tx_hash, block_hash FROM chain_txs WHERE nonce = $1 AND status <> 'abandoned'",
            )
            .bind(*nonce as i64)
            .fetch_one(store.pool())
            .await
            .expect("row of the dropped nonce");
            let status: String = row.try_get("status").expect("status");
            assert_eq!(status, "final", "nonce {nonce}");
            let mined: B256 = row
                .try_get::<String, _>("mined_tx_hash")
                .expect("mined hash")
                .parse()
                .expect("hash");
            let receipt = chain
                .plain
                .get_transaction_receipt(mined)
                .await
                .expect("receipt")
                .expect("mined on the canonical chain");
            let block_hash: B256 = row
                .try_get::<String, _>("block_hash")
                .expect("block hash")
                .parse()
                .expect("hash");
            assert_eq!(receipt.block_hash, Some(block_hash), "nonce {nonce}");
            if mined == *hash {
                same_bytes += 1;
            }
        }
        let on_chain = escrow_log_count(&chain).await;
        let indexed = count(&store, "chain_events WHERE removed = 0").await;
        let removed = count(&store, "chain_events WHERE removed = 1").await;
        eprintln!(
            "[{test}] {n} payments in {:.1} s; {} dropped transactions ({same_bytes} re-mined with the \
             same bytes); events: {on_chain} on chain, {indexed} indexed, {removed} marked removed; \
             client saw {:?}; txs {:?}",
            started.elapsed().as_secs_f64(),
            dropped.len(),
            client.stats.summary(),
            tx_statuses(&store).await
        );
        assert_eq!(indexed, on_chain as i64, "the index equals the chain's events");
        assert_eq!(paid.len(), n);
        assert_ledger(&setup, &chain, &store, &paid, before).await;
        exact.check(test, &chain, &store, &transferred).await;
        drop(op);
        store.close().await;
    })
    .await
}
