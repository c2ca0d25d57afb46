//! Stuck and dropped transactions (anvil with automine off): a dropped transaction is
//! re-broadcast from its stored bytes; a stale one is re-broadcast, then replaced with ≥ 10%
//! higher max fee and tip at the same nonce, and ends final exactly once.

mod operator_support;
mod store_support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use alloy::providers::Provider;
use alloy::providers::ext::AnvilApi;
use operator_support::*;
use store_support::Ctx;
use x402_escrow_operator::store::TxStatus;

store_tests!(
    sqlite: [
        stuck_tx_is_replaced_with_bumped_fees,
        dropped_tx_is_rebroadcast_from_stored_bytes,
        nonce_used_elsewhere_is_abandoned,
    ],
    postgres: [],
);

async fn stuck_tx_is_replaced_with_bumped_fees(ctx: Ctx) {
    let chain = Chain::start().await;
    let store = system_store(&ctx.url).await;
    let mut o = opts(1);
    o.bump_after = Duration::from_millis(700);
    let mut r = relayer(&store, &chain, "op-a", o);
    chain.plain.anvil_set_auto_mine(false).await.unwrap();
    let id = store.enqueue_tx(&chain.approve(1)).await.unwrap().id;
    // Sit in the pool until at least one replacement was signed and sent.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        r.tick().await.unwrap();
        if store.attempts_for(id).await.unwrap().len() >= 2 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never replaced");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let attempts = store.attempts_for(id).await.unwrap();
    let (a, b) = (&attempts[0], &attempts[1]);
    assert!(
        b.max_fee_per_gas * 100 >= a.max_fee_per_gas * 110,
        "{a:?} {b:?}"
    );
    assert!(b.max_priority_fee_per_gas * 100 >= a.max_priority_fee_per_gas * 110);
    assert!(
        r.handle().metrics().rebroadcasts.load(Ordering::Relaxed) >= 1,
        "re-broadcast first"
    );
    assert_eq!(
        r.handle().metrics().replacements.load(Ordering::Relaxed),
        attempts.len() as u64 - 1
    );

    chain.plain.anvil_set_auto_mine(true).await.unwrap();
    chain.mine(1).await.expect("mine");
    let rows = tick_until_settled(&mut r, &chain, &store, &[id], true).await;
    assert_eq!(rows[0].status, TxStatus::Final);
    let attempts = store.attempts_for(id).await.unwrap();
    let mined = rows[0].mined_tx_hash.unwrap();
    assert!(attempts.iter().any(|a| a.tx_hash == mined));
    // Exactly one of the attempts is on chain.
    let mut on_chain = 0;
    for a in &attempts {
        if chain
            .plain
            .get_transaction_receipt(a.tx_hash)
            .await
            .unwrap()
            .is_some()
        {
            on_chain += 1;
        }
    }
    assert_eq!(on_chain, 1);
    assert_nonces_clean(&store, &chain).await;
}

async fn dropped_tx_is_rebroadcast_from_stored_bytes(ctx: Ctx) {
    let chain = Chain::start().await;
    let store = system_store(&ctx.url).await;
    let mut r = relayer(&store, &chain, "op-a", opts(1));
    chain.plain.anvil_set_auto_mine(false).await.unwrap();
    let id = store.enqueue_tx(&chain.approve(1)).await.unwrap().id;
    r.tick().await.unwrap();
    let row = store.get_tx(id).await.unwrap();
    assert_eq!(row.status, TxStatus::Broadcast);
    let hash = store.attempts_for(id).await.unwrap()[0].tx_hash;
    chain.plain.anvil_drop_transaction(hash).await.unwrap();
    let known = || async { chain.plain.get_transaction_by_hash(hash).await.unwrap() };
    assert!(known().await.is_none());
    r.tick().await.unwrap();
    assert!(known().await.is_some(), "re-broadcast");
    chain.plain.anvil_set_auto_mine(true).await.unwrap();
    chain.mine(1).await.expect("mine");
    let rows = tick_until_settled(&mut r, &chain, &store, &[id], true).await;
    assert_eq!(rows[0].status, TxStatus::Final);
    assert_eq!(rows[0].mined_tx_hash, Some(hash), "same bytes, same hash");
    assert_eq!(store.attempts_for(id).await.unwrap().len(), 1);
    assert_nonces_clean(&store, &chain).await;
}

/// The key's nonce was used by another transaction (sent from elsewhere) while ours sat signed:
/// none of our hashes can ever be mined, so the row is abandoned (the engine reconciles from
/// `paymentState`) and later rows continue at the next nonce.
async fn nonce_used_elsewhere_is_abandoned(ctx: Ctx) {
    use alloy::network::TransactionBuilder;
    use alloy::rpc::types::TransactionRequest;
    let chain = Chain::start().await;
    let store = system_store(&ctx.url).await;
    let id = store.enqueue_tx(&chain.approve(1)).await.unwrap().id;
    sign_then_crash(&store, &chain).await;
    // Someone else spends nonce 0 of the same key.
    let other = chain.provider_for(&chain.operator);
    let tx = TransactionRequest::default()
        .with_to(chain.operator.address())
        .with_nonce(0);
    let receipt = mined_tx(&other, tx).await;
    assert!(receipt.status());
    let mut r = relayer(&store, &chain, "op-a", opts(1));
    let mut heard = r.handle().subscribe();
    let next = store.enqueue_tx(&chain.approve(2)).await.unwrap().id;
    let rows = tick_until_settled(&mut r, &chain, &store, &[id, next], true).await;
    assert_eq!(rows[0].status, TxStatus::Abandoned);
    assert!(
        rows[0]
            .revert_reason
            .as_deref()
            .unwrap()
            .contains("nonce 0")
    );
    assert_eq!((rows[1].status, rows[1].nonce), (TxStatus::Final, Some(1)));
    let o = heard.recv().await.unwrap();
    assert_eq!((o.chain_tx_id, o.status), (id, TxStatus::Abandoned));
    assert_eq!(chain.nonce_latest().await, 2);
}
