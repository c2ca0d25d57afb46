//! A reorg (`anvil_reorg`) of a mined-but-not-final transaction: `mined` → `broadcast`
//! (unmined) → re-broadcast from stored bytes → `mined` again → `final`, once.

mod operator_support;
mod store_support;

use std::time::Duration;

use alloy::providers::Provider;
use operator_support::*;
use x402_escrow_operator::store::{Backend, TxStatus};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reorged_tx_is_unmined_then_final() {
    store_support::run(Backend::Sqlite, |ctx| async move {
        let chain = Chain::start().await;
        let store = system_store(&ctx.url).await;
        let mut r = relayer(&store, &chain, "op-a", opts(5));
        let mut outcomes = r.handle().subscribe();
        let id = store.enqueue_tx(&chain.approve(1)).await.unwrap().id;
        for _ in 0..50 {
            r.tick().await.unwrap();
            if store.get_tx(id).await.unwrap().status == TxStatus::Mined {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let first = store.get_tx(id).await.unwrap();
        assert_eq!(first.status, TxStatus::Mined);
        chain.mine(1).await.expect("mine"); // one block on top: still short of 5 confirmations

        chain.reorg(3).await;
        let old_block = chain
            .plain
            .get_block_by_number(first.block_number.unwrap().into())
            .await
            .unwrap();
        assert_ne!(
            old_block.map(|b| b.header.hash),
            first.block_hash,
            "block replaced"
        );

        let mut saw_unmined = false;
        for _ in 0..50 {
            r.tick().await.unwrap();
            let row = store.get_tx(id).await.unwrap();
            if row.status == TxStatus::Broadcast {
                saw_unmined = true;
            }
            if row.status == TxStatus::Mined && row.block_hash != first.block_hash {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let handle = r.handle();
        let metrics = handle.metrics();
        assert!(saw_unmined, "went back to broadcast");
        assert_eq!(
            metrics.unmined.load(std::sync::atomic::Ordering::Relaxed),
            1
        );
        assert!(
            metrics
                .rebroadcasts
                .load(std::sync::atomic::Ordering::Relaxed)
                >= 1,
            "dropped by the reorg: re-broadcast from stored bytes"
        );
        let rows = tick_until_settled(&mut r, &chain, &store, &[id], true).await;
        let last = &rows[0];
        assert_eq!(last.status, TxStatus::Final);
        assert_ne!(last.block_hash, first.block_hash);
        assert_eq!(last.mined_tx_hash, first.mined_tx_hash, "same signed bytes");
        let canonical = chain
            .plain
            .get_block_by_number(last.block_number.unwrap().into())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(Some(canonical.header.hash), last.block_hash);
        let o = outcomes.try_recv().expect("one outcome");
        assert_eq!((o.chain_tx_id, o.status), (id, TxStatus::Final));
        assert!(outcomes.try_recv().is_err(), "announced once");
        assert_nonces_clean(&store, &chain).await;
    })
    .await;
}
