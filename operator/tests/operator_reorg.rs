//! A reorg drops the block holding an authorize (confirmations = 2, so it was mined but not
//! final): the relayer re-broadcasts it, and the payment ends authorized, final, exactly once.

mod operator_support;
mod store_support;

use std::time::{Duration, Instant};

use alloy::primitives::B256;
use alloy::providers::Provider;
use alloy::providers::ext::AnvilApi;
use operator_support::*;
use x402_escrow_operator::store::Backend;

const AMOUNT: u64 = 5 * USDC;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reorg_drops_the_authorize() {
    with_db(Backend::Sqlite, |url| async move {
        let hooks = Hooks::start().await;
        let (chain, store, _m, key) = open_shop(&url, Some(&hooks)).await;
        let mut cfg = config(&url, &chain);
        cfg.chain.confirmations = 2;
        let payer0 = chain.balance(chain.payer.address()).await;
        let op = start(&cfg).await;
        let api = Api::new(&op, &key);

        // Empty blocks first, so the reorg below drops only the authorize (not the set-up: the
        // payer's mint is in the blocks just before).
        chain.plain.anvil_mine(Some(3), None).await.expect("mine");
        let req = chain.requirements(AMOUNT, op.signer, chain.receiver).await;
        let body = chain.authorize_body(req, &chain.payer, "reorg-1").await;
        let (status, p) = api
            .post("/v1/payments/authorize?wait=0", &body, "reorg-auth")
            .await;
        assert!(status == 202 || status == 201, "{p}");
        let id = p["id"].as_str().unwrap().to_owned();
        let hash: B256 = p["paymentHash"].as_str().unwrap().parse().unwrap();

        // Mined (automine), not final: nothing mines the confirmations.
        let deadline = Instant::now() + Duration::from_secs(20);
        let tx_hash: B256 = loop {
            use sqlx::Row;
            let row =
                sqlx::query("SELECT status, mined_tx_hash FROM chain_txs WHERE kind = 'authorize'")
                    .fetch_one(store.pool())
                    .await
                    .expect("authorize row");
            let status: String = row.try_get("status").unwrap();
            if status == "mined" {
                let h: String = row.try_get("mined_tx_hash").unwrap();
                break h.parse().unwrap();
            }
            assert!(status != "final", "final before the reorg");
            assert!(Instant::now() < deadline, "authorize not mined: {status}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let receipt = chain.plain.get_transaction_receipt(tx_hash).await.unwrap();
        let mined_in = receipt.expect("receipt").block_number.unwrap();
        let head = chain.plain.get_block_number().await.unwrap();
        assert!(
            head - mined_in < 3,
            "the authorize's block is within the reorg depth"
        );
        assert_eq!(api.payment(&id).await["status"], "authorizing");

        chain.reorg(3).await;
        assert_eq!(
            chain.state(hash).await,
            (false, 0, 0),
            "the hold is gone after the reorg"
        );

        // Keep producing blocks until the payment is authorized and its transaction final.
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            let p = api.payment(&id).await;
            let final_tx = p["transactions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t["kind"] == "authorize" && t["status"] == "final");
            if p["status"] == "authorized" && final_tx {
                break;
            }
            assert!(p["status"] != "failed", "{p}");
            assert!(
                Instant::now() < deadline,
                "not authorized after the reorg: {p}"
            );
            chain.plain.anvil_mine(Some(1), None).await.expect("mine");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // A few more blocks so the indexer and the relayer see it deep enough.
        chain.plain.anvil_mine(Some(3), None).await.expect("mine");
        settle(&store, Duration::from_secs(30)).await;

        assert_eq!(chain.state(hash).await, (true, AMOUNT as u128, 0));
        chain.assert_payer_spent(payer0, AMOUNT as u128).await;
        assert_eq!(count(&store, "chain_txs WHERE kind = 'authorize'").await, 1);
        let p = api.payment(&id).await;
        assert_eq!(p["status"], "authorized", "{p}");
        assert_eq!(amount(&p, "authorized"), AMOUNT as u128);
        hooks
            .wait_for(&id, &["payment.authorized"], Duration::from_secs(20))
            .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            hooks.types_for(&id),
            vec!["payment.authorized"],
            "announced once"
        );
        wind_down(op, store, &chain).await;
    })
    .await
}
