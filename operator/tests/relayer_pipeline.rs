//! Relayer against a real anvil, on SQLite and PostgreSQL: enqueued calls all reach `final` with
//! consecutive nonces; crashes at every step recover from the database alone; reverts (on chain
//! and at estimation) record the decoded custom error; nonce gaps are filled.

mod operator_support;
mod store_support;

use std::time::Duration;

use operator_support::*;
use store_support::*;
use x402_escrow_operator::relayer::{CrashPoint, RelayerError};
use x402_escrow_operator::store::{TxKind, TxStatus};

store_tests!(
    enqueued_calls_all_final_with_consecutive_nonces,
    crash_recovery_at_every_step,
    crash_after_send_before_mark_broadcast,
    reverts_record_decoded_errors,
    outcomes_reannounced_while_a_payment_points_at_them,
);

async fn enqueued_calls_all_final_with_consecutive_nonces(ctx: Ctx) {
    let chain = Chain::start().await;
    let store = system_store(&ctx.url).await;
    let relayer = relayer(&store, &chain, "op-a", opts(2));
    let handle = relayer.handle();
    let mut outcomes = handle.subscribe();
    let (stop_tx, task) = spawn_relayer(relayer);

    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(store.enqueue_tx(&chain.approve(i)).await.unwrap().id);
        handle.wake();
    }
    // Confirmations need blocks on top: mine while waiting.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let rows = rows(&store, &ids).await;
        if rows.iter().all(|r| r.status.is_terminal()) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not final: {rows:?}"
        );
        chain.mine(1).await.expect("mine");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let rows = rows(&store, &ids).await;
    assert!(all_status(&rows, TxStatus::Final), "{rows:?}");
    let nonces: Vec<u64> = rows.iter().map(|r| r.nonce.unwrap()).collect();
    assert_eq!(nonces, (0..6).collect::<Vec<_>>());
    for r in &rows {
        assert_eq!(r.succeeded, Some(true));
        assert!(r.block_hash.is_some() && r.gas_used.is_some());
        let receipt = chain
            .plain
            .get_transaction_receipt(hash_of(r))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(Some(receipt.block_hash.unwrap()), r.block_hash);
    }
    // One outcome per row.
    let mut seen = std::collections::HashSet::new();
    while seen.len() < ids.len() {
        let o = tokio::time::timeout(Duration::from_secs(10), outcomes.recv())
            .await
            .expect("outcome")
            .expect("channel");
        assert_eq!(o.status, TxStatus::Final);
        assert!(seen.insert(o.chain_tx_id), "outcome announced twice");
    }
    let health = handle.health();
    assert!(health.lease_held && health.rpc_ok, "{health:?}");
    assert_nonces_clean(&store, &chain).await;
    stop_tx.send(()).unwrap();
    task.await.unwrap();
    // A clean shutdown released the lease.
    let signer = store
        .get_signer(CHAIN, chain.operator.address())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(signer.lease_owner, None);
}

use alloy::providers::Provider;
use alloy::providers::ext::AnvilApi;

/// Stops a relayer dead at `point` on its first claimed row, then lets a fresh one (a restarted
/// process: same instance id, new memory) finish from the database.
async fn crash_then_resume(ctx: &Ctx, chain: &Chain, point: CrashPoint, n: u64, offset: u64) {
    let store = system_store(&ctx.url).await;
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(
            store
                .enqueue_tx(&chain.approve(offset + i))
                .await
                .unwrap()
                .id,
        );
    }
    {
        let mut crashing = relayer(&store, chain, "op-a", opts(1)).with_crash_point(point);
        let err = crashing.tick().await.expect_err("crash");
        assert!(
            matches!(err, RelayerError::InjectedCrash(p) if p == point),
            "{err}"
        );
        // Dead: it does nothing more.
        assert!(crashing.tick().await.is_err());
    }
    let first = store.get_tx(ids[0]).await.unwrap();
    let expected = match point {
        CrashPoint::AfterClaim => TxStatus::Reserved,
        CrashPoint::AfterRecordAttempt => TxStatus::Signed,
        CrashPoint::AfterBroadcast => TxStatus::Broadcast,
    };
    assert_eq!(first.status, expected, "state left by the crash");
    let mut fresh = relayer(&store, chain, "op-a", opts(1));
    let settled = tick_until_settled(&mut fresh, chain, &store, &ids, true).await;
    assert!(all_status(&settled, TxStatus::Final), "{settled:?}");
    for r in &settled {
        assert_eq!(r.attempts, 1, "no re-sign needed: {r:?}");
    }
}

async fn crash_recovery_at_every_step(ctx: Ctx) {
    let chain = Chain::start().await;
    crash_then_resume(&ctx, &chain, CrashPoint::AfterClaim, 3, 0).await;
    crash_then_resume(&ctx, &chain, CrashPoint::AfterRecordAttempt, 3, 10).await;
    crash_then_resume(&ctx, &chain, CrashPoint::AfterBroadcast, 3, 20).await;
    let store = system_store(&ctx.url).await;
    assert_nonces_clean(&store, &chain).await;
    assert_eq!(chain.nonce_latest().await, 9);
}

async fn reverts_record_decoded_errors(ctx: Ctx) {
    let chain = Chain::start().await;
    let store = system_store(&ctx.url).await;
    let mut r = relayer(&store, &chain, "op-a", opts(1));
    let before = store.enqueue_tx(&chain.approve(1)).await.unwrap().id;
    // Fixed gas limit: no estimate, so it is sent and reverts on chain.
    let on_chain = store
        .enqueue_tx(&chain.void_unknown(Some(300_000)))
        .await
        .unwrap()
        .id;
    // Estimated: the estimate reverts, nothing is sent, the nonce goes to a fill.
    let at_estimate = store
        .enqueue_tx(&chain.void_unknown(None))
        .await
        .unwrap()
        .id;
    let after = store.enqueue_tx(&chain.approve(2)).await.unwrap().id;
    let ids = [before, on_chain, at_estimate, after];
    let rows = tick_until_settled(&mut r, &chain, &store, &ids, true).await;
    assert_eq!(rows[0].status, TxStatus::Final);
    assert_eq!(rows[3].status, TxStatus::Final);

    let reverted = &rows[1];
    assert_eq!(reverted.status, TxStatus::Reverted);
    assert_eq!(reverted.succeeded, Some(false));
    assert!(reverted.mined_tx_hash.is_some());
    let reason = reverted.revert_reason.clone().unwrap();
    assert!(reason.starts_with("ZeroAuthorization(0x"), "{reason}");

    let rejected = &rows[2];
    assert_eq!(rejected.status, TxStatus::Reverted);
    assert_eq!(rejected.mined_tx_hash, None, "never sent");
    assert_eq!(rejected.nonce, None, "gave its nonce away");
    assert_eq!(rejected.revert_reason.as_deref(), Some(reason.as_str()));
    assert_eq!(store.attempts_for(at_estimate).await.unwrap().len(), 0);

    // The fill used the rejected row's nonce; everything is mined in nonce order without gaps.
    let fills: Vec<_> = {
        use sqlx::Row;
        sqlx::query("SELECT id FROM chain_txs WHERE kind = 'nonce_fill'")
            .fetch_all(store.pool())
            .await
            .unwrap()
            .iter()
            .map(|r| r.try_get::<String, _>("id").unwrap().parse().unwrap())
            .collect()
    };
    assert_eq!(fills.len(), 1);
    let fill = store.get_tx(fills[0]).await.unwrap();
    assert_eq!(
        (fill.kind, fill.status, fill.nonce),
        (TxKind::NonceFill, TxStatus::Final, Some(2))
    );
    assert_eq!(rows[3].nonce, Some(3));

    // A reserved row abandoned before it was sent (e.g. by an operator) leaves a gap: filled.
    let ghost = store.enqueue_tx(&chain.approve(3)).await.unwrap().id;
    let claimed = store
        .claim_next_tx(CHAIN, chain.operator.address(), "op-a")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((claimed.id, claimed.nonce), (ghost, Some(4)));
    store
        .mark_abandoned(ghost, "given up by hand")
        .await
        .unwrap();
    let later = store.enqueue_tx(&chain.approve(4)).await.unwrap().id;
    let rows = tick_until_settled(&mut r, &chain, &store, &[later], true).await;
    assert_eq!((rows[0].status, rows[0].nonce), (TxStatus::Final, Some(5)));
    for _ in 0..50 {
        if store
            .txs_in_flight(CHAIN, chain.operator.address())
            .await
            .unwrap()
            .is_empty()
        {
            break;
        }
        r.tick().await.unwrap();
        chain.mine(1).await.expect("mine");
    }
    assert_nonces_clean(&store, &chain).await;
    assert_eq!(
        r.handle()
            .metrics()
            .nonce_fills
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
}

/// The process sent the bytes but died before `mark_broadcast`: the row says `signed`, the node
/// already has it. The fresh relayer's re-send gets a maybe-sent answer ("already known"),
/// looks receipts up, marks it broadcast, and later final; it never signs again.
async fn crash_after_send_before_mark_broadcast(ctx: Ctx) {
    let chain = Chain::start().await;
    let store = system_store(&ctx.url).await;
    let id = store.enqueue_tx(&chain.approve(1)).await.unwrap().id;
    sign_then_crash(&store, &chain).await;
    let attempt = store.attempts_for(id).await.unwrap().remove(0);
    // What the dead process had handed to the node (still pending: automine off).
    chain.plain.anvil_set_auto_mine(false).await.unwrap();
    let _ = chain
        .plain
        .send_raw_transaction(&attempt.raw_tx)
        .await
        .unwrap();
    assert_eq!(store.get_tx(id).await.unwrap().status, TxStatus::Signed);
    // A restart on the same instance id: re-sending gets "already known" (maybe sent), no
    // receipt yet, so the row is simply marked broadcast.
    let mut fresh = relayer(&store, &chain, "op-a", opts(1));
    fresh.tick().await.unwrap();
    assert_eq!(store.get_tx(id).await.unwrap().status, TxStatus::Broadcast);
    assert_eq!(store.attempts_for(id).await.unwrap().len(), 1);
    chain.plain.anvil_set_auto_mine(true).await.unwrap();
    chain.mine(1).await.expect("mine");
    let rows = tick_until_settled(&mut fresh, &chain, &store, &[id], true).await;
    assert_eq!(rows[0].status, TxStatus::Final);
    assert_eq!(rows[0].mined_tx_hash, Some(attempt.tx_hash));
    assert_eq!(
        store.attempts_for(id).await.unwrap().len(),
        1,
        "never re-signed"
    );
    assert_nonces_clean(&store, &chain).await;
}

/// Settled rows a payment still points at are announced again when a relayer takes the lease
/// (the engine may have died before handling them).
async fn outcomes_reannounced_while_a_payment_points_at_them(ctx: Ctx) {
    let chain = Chain::start().await;
    let store = system_store(&ctx.url).await;
    let merchant_id = store_support::merchant(&store).await;
    let (payment, tx) = store
        .insert_payment(&new_payment(merchant_id, 1), Some(&chain.approve(1)))
        .await
        .unwrap();
    let tx = tx.unwrap();
    assert_eq!(payment.pending_tx_id, Some(tx.id));
    let mut first = relayer(&store, &chain, "op-a", opts(1));
    let mut heard = first.handle().subscribe();
    tick_until_settled(&mut first, &chain, &store, &[tx.id], true).await;
    let o = heard.try_recv().unwrap();
    assert_eq!(
        (o.chain_tx_id, o.payment_id, o.status),
        (tx.id, Some(payment.id), TxStatus::Final)
    );
    first.release().await;
    drop(first);
    // The engine never handled it (pending_tx_id unchanged): the next holder says it again.
    let mut second = relayer(&store, &chain, "op-b", opts(1));
    let mut heard = second.handle().subscribe();
    assert!(second.tick().await.unwrap().lease_held);
    let o = heard.try_recv().expect("re-announced");
    assert_eq!((o.chain_tx_id, o.status), (tx.id, TxStatus::Final));
}
