//! Store suite, part 2: the transaction outbox and its attempts, signer nonces and leases, chain
//! events (idempotent inserts, reorg marking) and indexer cursors. Every test runs on SQLite and
//! on PostgreSQL.

mod store_support;

use std::collections::HashSet;

use alloy::primitives::{B256, Bytes};
use store_support::*;
use x402_escrow_operator::store::{
    ChainTx, MinedReceipt, NewChainEvent, NewTxAttempt, Store, StoreError, TxKind, TxStatus,
};

store_tests!(
    tx_pipeline_happy_path,
    tx_reverts_reorgs_and_abandons,
    claim_is_fenced_by_the_lease,
    concurrent_claims_get_distinct_consecutive_nonces,
    lease_takeover_after_expiry,
    concurrent_lease_acquire_one_wins,
    signer_nonce_never_moves_back,
    chain_events_idempotent_and_reorgs,
    indexer_cursor,
    keyed_rows_and_the_kinds_without_payment,
);

const CHAIN: u64 = 31337;
const TTL: i64 = 15_000;

fn attempt(n: u8) -> NewTxAttempt {
    NewTxAttempt {
        tx_hash: B256::repeat_byte(n),
        raw_tx: Bytes::from(vec![0x02, n, n]),
        max_fee_per_gas: 30_000_000_000 + u128::from(n),
        max_priority_fee_per_gas: 1_000_000_000,
    }
}

fn receipt(hash: B256, block: u64, ok: bool) -> MinedReceipt {
    MinedReceipt {
        tx_hash: hash,
        block_number: block,
        block_hash: B256::from(alloy::primitives::U256::from(block)),
        gas_used: 65_000,
        effective_gas_price: 31_000_000_000,
        succeeded: ok,
        revert_reason: (!ok).then(|| "InsufficientAuthorization(0x…, 5, 6)".to_owned()),
    }
}

/// `owner` tries to take the signer's lease: whether it got it.
async fn try_lease(store: &Store, owner: &str) -> bool {
    store
        .acquire_lease(CHAIN, signer(), owner, TTL)
        .await
        .unwrap()
        .is_some()
}

/// `owner` may not claim: it does not hold the lease.
async fn assert_claim_refused(store: &Store, owner: &str) {
    let claim = store.claim_next_tx(CHAIN, signer(), owner).await;
    assert!(
        matches!(claim, Err(StoreError::LeaseNotHeld { .. })),
        "{owner}: {claim:?}"
    );
}

async fn leased(store: &Store, owner: &str) {
    store.upsert_signer(CHAIN, signer(), 0).await.unwrap();
    assert!(try_lease(store, owner).await);
}

/// The next row `owner` claims, if any.
async fn claim(store: &Store, owner: &str) -> Option<ChainTx> {
    store.claim_next_tx(CHAIN, signer(), owner).await.unwrap()
}

/// The signer's next nonce, as stored.
async fn signer_next_nonce(store: &Store) -> u64 {
    let row = store.get_signer(CHAIN, signer()).await.unwrap();
    row.expect("the signer's row").next_nonce
}

/// Nothing is left to claim for `op-a`, and the signer's next nonce is `next_nonce`.
async fn assert_drained(s: &Store, next_nonce: u64) {
    assert!(claim(s, "op-a").await.is_none());
    assert_eq!(signer_next_nonce(s).await, next_nonce);
}

async fn tx_pipeline_happy_path(ctx: Ctx) {
    let s = &ctx.store;
    leased(s, "op-a").await;
    let queued = s.enqueue_tx(&new_tx(TxKind::Capture)).await.unwrap();
    assert_eq!(
        (queued.status, queued.nonce, queued.attempts),
        (TxStatus::Queued, None, 0)
    );
    assert_eq!(queued.request["kind"], "capture");
    assert_eq!(queued.calldata, Bytes::from(vec![0xde, 0xad, 0xbe, 0xef]));
    assert_eq!(queued.gas_limit, Some(200_000));
    assert_eq!(s.queued_tx_count(CHAIN, signer()).await.unwrap(), 1);

    // Claim: nonce reserved in the same transaction, one write; a claim that finds nothing
    // rolls back and is not a write.
    let writes = s.write_count();
    let claimed = claim(s, "op-a").await.unwrap();
    assert_eq!(
        (claimed.id, claimed.status, claimed.nonce),
        (queued.id, TxStatus::Reserved, Some(0))
    );
    assert_eq!(s.write_count(), writes + 1, "the claim is one write");
    assert_drained(s, 1).await;
    assert_eq!(s.write_count(), writes + 1, "an empty claim is not a write");

    // Sign, store, broadcast.
    let a1 = s.record_attempt(claimed.id, &attempt(1)).await.unwrap();
    assert_eq!(a1.broadcast_at, None);
    assert_eq!(s.get_tx(claimed.id).await.unwrap().status, TxStatus::Signed);
    let tx = s.mark_broadcast(claimed.id, a1.tx_hash).await.unwrap();
    assert_eq!((tx.status, tx.attempts), (TxStatus::Broadcast, 1));
    // A fee bump: a second attempt for the same nonce; the status stays broadcast.
    ctx.clock.advance(30_000);
    let a2 = s.record_attempt(claimed.id, &attempt(2)).await.unwrap();
    let tx = s.mark_broadcast(claimed.id, a2.tx_hash).await.unwrap();
    assert_eq!((tx.status, tx.attempts), (TxStatus::Broadcast, 2));
    let attempts = s.attempts_for(claimed.id).await.unwrap();
    assert_eq!(
        attempts.iter().map(|a| a.tx_hash).collect::<Vec<_>>(),
        vec![a1.tx_hash, a2.tx_hash]
    );
    assert_eq!(attempts[1].broadcast_at, Some(T0 + 30_000));
    assert_eq!(attempts[0].raw_tx, attempt(1).raw_tx);
    assert_eq!(
        s.attempt_by_hash(a2.tx_hash)
            .await
            .unwrap()
            .unwrap()
            .chain_tx_id,
        claimed.id
    );
    // The same hash cannot be recorded twice.
    assert!(matches!(
        s.record_attempt(claimed.id, &attempt(2)).await,
        Err(StoreError::Conflict { .. })
    ));
    // Broadcasting a hash that was never recorded is refused.
    assert!(matches!(
        s.mark_broadcast(claimed.id, B256::repeat_byte(9)).await,
        Err(StoreError::NotFound { .. })
    ));

    assert_eq!(s.txs_in_flight(CHAIN, signer()).await.unwrap().len(), 1);
    // The first (lower-fee) attempt got mined.
    let tx = s
        .mark_mined(claimed.id, &receipt(a1.tx_hash, 7, true))
        .await
        .unwrap();
    assert_eq!(
        (tx.status, tx.succeeded, tx.block_number, tx.mined_tx_hash),
        (TxStatus::Mined, Some(true), Some(7), Some(a1.tx_hash))
    );
    assert_eq!(tx.effective_gas_price, Some(31_000_000_000));
    let tx = s.mark_final(claimed.id).await.unwrap();
    assert_eq!(tx.status, TxStatus::Final);
    assert!(s.txs_in_flight(CHAIN, signer()).await.unwrap().is_empty());
    // Nothing moves a final transaction.
    for err in [
        s.mark_final(claimed.id).await.unwrap_err(),
        s.mark_unmined(claimed.id).await.unwrap_err(),
        s.mark_abandoned(claimed.id, "x").await.unwrap_err(),
        s.record_attempt(claimed.id, &attempt(3)).await.unwrap_err(),
    ] {
        assert!(
            matches!(
                err,
                StoreError::TxState {
                    status: TxStatus::Final,
                    ..
                }
            ),
            "{err:?}"
        );
    }
}

async fn tx_reverts_reorgs_and_abandons(ctx: Ctx) {
    let s = &ctx.store;
    leased(s, "op-a").await;
    let t1 = s.enqueue_tx(&new_tx(TxKind::Capture)).await.unwrap();
    let t2 = s.enqueue_tx(&new_tx(TxKind::Void)).await.unwrap();
    let t3 = s.enqueue_tx(&new_tx(TxKind::Refund)).await.unwrap();
    let c1 = claim(s, "op-a").await.unwrap();
    let c2 = claim(s, "op-a").await.unwrap();
    let c3 = claim(s, "op-a").await.unwrap();
    assert_eq!(
        (c1.id, c2.id, c3.id),
        (t1.id, t2.id, t3.id),
        "claimed in creation order"
    );
    assert_eq!((c1.nonce, c2.nonce, c3.nonce), (Some(0), Some(1), Some(2)));

    // t1: mined with a failed receipt, then a reorg drops it, then it is mined again and reverts.
    s.record_attempt(t1.id, &attempt(1)).await.unwrap();
    // Found mined after a crash that happened before mark_broadcast: signed → mined is allowed.
    let tx = s
        .mark_mined(t1.id, &receipt(attempt(1).tx_hash, 10, false))
        .await
        .unwrap();
    assert_eq!((tx.status, tx.succeeded), (TxStatus::Mined, Some(false)));
    assert!(
        tx.revert_reason
            .unwrap()
            .starts_with("InsufficientAuthorization")
    );
    let tx = s.mark_unmined(t1.id).await.unwrap();
    assert_eq!(
        (tx.status, tx.block_number, tx.block_hash, tx.succeeded),
        (TxStatus::Broadcast, None, None, None)
    );
    s.mark_mined(t1.id, &receipt(attempt(1).tx_hash, 11, false))
        .await
        .unwrap();
    assert_eq!(
        s.mark_final(t1.id).await.unwrap().status,
        TxStatus::Reverted
    );

    // t2: reserved, never sendable: its nonce goes to a nonce fill.
    let mut fill = new_tx(TxKind::NonceFill);
    fill.to = signer();
    fill.calldata = Bytes::new();
    let filler = s.replace_with_nonce_fill(t2.id, &fill).await.unwrap();
    assert_eq!(
        (filler.kind, filler.status, filler.nonce),
        (TxKind::NonceFill, TxStatus::Reserved, Some(1))
    );
    assert_eq!(s.get_tx(t2.id).await.unwrap().status, TxStatus::Abandoned);
    assert_eq!(
        s.get_tx(t2.id).await.unwrap().revert_reason.as_deref(),
        Some("replaced by a nonce fill")
    );

    // t3: broadcast, then abandoned (its nonce was used elsewhere).
    s.record_attempt(t3.id, &attempt(3)).await.unwrap();
    s.mark_broadcast(t3.id, attempt(3).tx_hash).await.unwrap();
    assert_eq!(
        s.mark_abandoned(t3.id, "nonce passed")
            .await
            .unwrap()
            .status,
        TxStatus::Abandoned
    );
    assert!(matches!(
        s.mark_mined(t3.id, &receipt(attempt(3).tx_hash, 12, true))
            .await,
        Err(StoreError::TxState { .. })
    ));

    // In flight now: only the nonce fill (nonce 1).
    let in_flight = s.txs_in_flight(CHAIN, signer()).await.unwrap();
    assert_eq!(
        in_flight
            .iter()
            .map(|t| (t.id, t.nonce))
            .collect::<Vec<_>>(),
        vec![(filler.id, Some(1))]
    );
    // A queued transaction cannot be filled (it has no nonce).
    let t4 = s.enqueue_tx(&new_tx(TxKind::Capture)).await.unwrap();
    assert!(s.replace_with_nonce_fill(t4.id, &fill).await.is_err());
    assert_eq!(
        s.get_tx(t4.id).await.unwrap().status,
        TxStatus::Queued,
        "the failed fill rolled back"
    );
    // Only a lease holder's tx can be signed after mined: mark_unmined needs mined.
    assert!(matches!(
        s.mark_unmined(t4.id).await,
        Err(StoreError::TxState {
            status: TxStatus::Queued,
            ..
        })
    ));

    // Nonce gaps: t3's nonce (2) is one, abandoned and held by no live row; t2's (1) is not, its
    // fill holds it. A row abandoned before it ever had a nonce (a single merged into a batch)
    // leaves none.
    s.mark_abandoned(t4.id, "merged into a batch")
        .await
        .unwrap();
    assert_eq!(
        s.abandoned_nonce_gaps(CHAIN, signer(), 0).await.unwrap(),
        vec![2]
    );
    assert!(
        s.abandoned_nonce_gaps(CHAIN, signer(), 3)
            .await
            .unwrap()
            .is_empty(),
        "gaps below the chain's nonce are not asked for"
    );
    let gap_fill = s.fill_nonce(&fill, 2).await.unwrap();
    assert_eq!(
        (gap_fill.kind, gap_fill.status, gap_fill.nonce),
        (TxKind::NonceFill, TxStatus::Reserved, Some(2))
    );
    assert!(
        s.abandoned_nonce_gaps(CHAIN, signer(), 0)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        s.fill_nonce(&fill, 2).await,
        Err(StoreError::Conflict { .. })
    ));
}

async fn claim_is_fenced_by_the_lease(ctx: Ctx) {
    let s = &ctx.store;
    s.upsert_signer(CHAIN, signer(), 5).await.unwrap();
    let t = s.enqueue_tx(&new_tx(TxKind::Capture)).await.unwrap();
    // Nobody holds the lease.
    assert_claim_refused(s, "op-a").await;
    // Someone else holds it.
    assert!(try_lease(s, "op-b").await);
    assert_claim_refused(s, "op-a").await;
    // Refused claims consumed no nonce and left the row queued.
    assert_eq!(signer_next_nonce(s).await, 5);
    assert_eq!(s.get_tx(t.id).await.unwrap().status, TxStatus::Queued);
    // The holder's lease runs out: it can no longer reserve nonces either.
    ctx.clock.advance(TTL);
    assert_claim_refused(s, "op-b").await;
    assert!(try_lease(s, "op-b").await);
    assert_eq!(claim(s, "op-b").await.unwrap().nonce, Some(5));
    // Unknown signer.
    let unknown = addr(0x99);
    assert!(
        s.acquire_lease(CHAIN, unknown, "op-b", TTL)
            .await
            .unwrap()
            .is_none()
    );
}

async fn concurrent_claims_get_distinct_consecutive_nonces(ctx: Ctx) {
    const N: usize = 24;
    let s = &ctx.store;
    s.upsert_signer(CHAIN, signer(), 100).await.unwrap();
    s.acquire_lease(CHAIN, signer(), "op-a", 600_000)
        .await
        .unwrap()
        .unwrap();
    let mut queued = HashSet::new();
    for _ in 0..N {
        queued.insert(s.enqueue_tx(&new_tx(TxKind::Capture)).await.unwrap().id);
    }
    // N claimers at once, through two independent pools (two processes sharing the lease
    // owner id would be a bug elsewhere, but the store must still never hand out a row or a
    // nonce twice).
    let second = ctx.second_instance().await;
    let mut tasks = Vec::new();
    for i in 0..N {
        let store = if i % 2 == 0 {
            s.clone()
        } else {
            second.clone()
        };
        tasks.push(tokio::spawn(async move {
            store.claim_next_tx(CHAIN, signer(), "op-a").await
        }));
    }
    let mut ids = HashSet::new();
    let mut nonces = Vec::new();
    for t in tasks {
        let tx = t
            .await
            .unwrap()
            .unwrap()
            .expect("every claimer finds a row");
        assert_eq!(tx.status, TxStatus::Reserved);
        assert!(ids.insert(tx.id), "row {} claimed twice", tx.id);
        nonces.push(tx.nonce.unwrap());
    }
    nonces.sort_unstable();
    assert_eq!(
        nonces,
        (100..100 + N as u64).collect::<Vec<_>>(),
        "distinct and consecutive"
    );
    assert_eq!(ids, queued);
    assert_drained(s, 100 + N as u64).await;
    second.close().await;
}

async fn lease_takeover_after_expiry(ctx: Ctx) {
    let a = ctx.store.clone();
    let b = ctx.second_instance().await;
    a.upsert_signer(CHAIN, signer(), 0).await.unwrap();
    let lease = a
        .acquire_lease(CHAIN, signer(), "op-a", TTL)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lease.expires_at, T0 + TTL);
    // B cannot take a live lease; A can re-acquire (renew) its own.
    assert!(!try_lease(&b, "op-b").await);
    ctx.clock.advance(TTL / 3);
    assert_eq!(
        a.renew_lease(CHAIN, signer(), "op-a", TTL)
            .await
            .unwrap()
            .expires_at,
        T0 + TTL / 3 + TTL
    );
    ctx.clock.advance(TTL - 1);
    assert!(!try_lease(&b, "op-b").await, "still live by 1 ms");
    // A dies (stops renewing); once the lease runs out B takes over.
    ctx.clock.advance(1);
    let taken = b
        .acquire_lease(CHAIN, signer(), "op-b", TTL)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(taken.owner, "op-b");
    let row = a.get_signer(CHAIN, signer()).await.unwrap().unwrap();
    assert_eq!(
        (row.lease_owner.as_deref(), row.lease_expires_at),
        (Some("op-b"), Some(taken.expires_at))
    );
    // A comes back: it cannot renew, release or claim.
    assert!(matches!(
        a.renew_lease(CHAIN, signer(), "op-a", TTL).await,
        Err(StoreError::LeaseNotHeld { .. })
    ));
    assert!(!a.release_lease(CHAIN, signer(), "op-a").await.unwrap());
    a.enqueue_tx(&new_tx(TxKind::Capture)).await.unwrap();
    assert_claim_refused(&a, "op-a").await;
    assert_eq!(claim(&b, "op-b").await.unwrap().nonce, Some(0));
    // A lease that ran out cannot be renewed even if nobody took it.
    ctx.clock.advance(TTL);
    assert!(matches!(
        b.renew_lease(CHAIN, signer(), "op-b", TTL).await,
        Err(StoreError::LeaseNotHeld { .. })
    ));
    // Clean hand-over on shutdown.
    assert!(try_lease(&b, "op-b").await);
    assert!(b.release_lease(CHAIN, signer(), "op-b").await.unwrap());
    assert!(try_lease(&a, "op-a").await);
    b.close().await;
}

async fn concurrent_lease_acquire_one_wins(ctx: Ctx) {
    ctx.store.upsert_signer(CHAIN, signer(), 0).await.unwrap();
    let second = ctx.second_instance().await;
    let mut tasks = Vec::new();
    for i in 0..10 {
        let store = if i % 2 == 0 {
            ctx.store.clone()
        } else {
            second.clone()
        };
        tasks.push(tokio::spawn(async move {
            store
                .acquire_lease(CHAIN, signer(), &format!("op-{i}"), TTL)
                .await
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        if let Some(lease) = t.await.unwrap().unwrap() {
            winners.push(lease.owner);
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    let row = ctx
        .store
        .get_signer(CHAIN, signer())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.lease_owner, Some(winners[0].clone()));
    second.close().await;
}

async fn signer_nonce_never_moves_back(ctx: Ctx) {
    let s = &ctx.store;
    assert!(s.get_signer(CHAIN, signer()).await.unwrap().is_none());
    for (chain_nonce, next, why) in [
        (7, 7, "first seen"),
        (3, 7, "never back"),
        (9, 9, "catches up with the chain"),
    ] {
        let row = s.upsert_signer(CHAIN, signer(), chain_nonce).await.unwrap();
        assert_eq!(row.next_nonce, next, "{why}");
    }
    // Another chain, same key: separate nonce.
    assert_eq!(s.upsert_signer(1, signer(), 0).await.unwrap().next_nonce, 0);
    // Upserting keeps the lease.
    assert!(try_lease(s, "op-a").await);
    let row = s.upsert_signer(CHAIN, signer(), 9).await.unwrap();
    assert_eq!(row.lease_owner.as_deref(), Some("op-a"));
}

fn event(
    block: u64,
    block_hash: u8,
    log_index: u64,
    name: &str,
    amount: Option<u128>,
) -> NewChainEvent {
    NewChainEvent {
        chain_id: CHAIN,
        address: addr(0xE5),
        block_number: block,
        block_hash: B256::repeat_byte(block_hash),
        log_index,
        tx_hash: B256::repeat_byte(block_hash.wrapping_add(0x11)),
        event_name: name.to_owned(),
        payment_hash: Some(B256::repeat_byte(0x33)),
        amount,
        data: serde_json::json!({ "name": name, "amount": amount.map(|a| a.to_string()) }),
    }
}

async fn chain_events_idempotent_and_reorgs(ctx: Ctx) {
    let s = &ctx.store;
    let auth = event(10, 0xA0, 0, "PaymentAuthorized", Some(1000));
    let cap = event(11, 0xA1, 3, "PaymentCaptured", Some(400));
    let stored = s.insert_chain_event(&auth).await.unwrap().expect("new");
    assert_eq!(
        (stored.block_number, stored.log_index, stored.removed),
        (10, 0, false)
    );
    assert_eq!(stored.amount, Some(1000));
    assert_eq!(stored.data["name"], "PaymentAuthorized");
    // Storing the same log again is a no-op (re-reading a range is harmless).
    assert!(s.insert_chain_event(&auth).await.unwrap().is_none());
    assert!(s.insert_chain_event(&cap).await.unwrap().is_some());
    assert_eq!(count(s, "chain_events").await, 2);

    let pending = s.unprocessed_events(CHAIN, 10).await.unwrap();
    assert_eq!(
        pending.iter().map(|e| e.block_number).collect::<Vec<_>>(),
        vec![10, 11]
    );
    s.mark_event_processed(pending[0].id).await.unwrap();
    assert_eq!(s.unprocessed_events(CHAIN, 10).await.unwrap().len(), 1);

    // Reorg from block 11: the capture's block is gone.
    let removed = s
        .mark_events_removed_from(CHAIN, addr(0xE5), 11)
        .await
        .unwrap();
    assert_eq!(
        removed
            .iter()
            .map(|e| (e.event_name.as_str(), e.removed))
            .collect::<Vec<_>>(),
        vec![("PaymentCaptured", true)]
    );
    assert!(
        s.mark_events_removed_from(CHAIN, addr(0xE5), 11)
            .await
            .unwrap()
            .is_empty(),
        "idempotent"
    );
    assert!(s.unprocessed_events(CHAIN, 10).await.unwrap().is_empty());
    // The capture lands again in a different block 11 (new hash): a new event.
    let cap2 = event(11, 0xB1, 0, "PaymentCaptured", Some(400));
    let again = s
        .insert_chain_event(&cap2)
        .await
        .unwrap()
        .expect("new block, new event");
    assert_ne!(again.block_hash, cap.block_hash);
    // The old block comes back (reorg back): the removed event revives, unprocessed.
    let revived = s.insert_chain_event(&cap).await.unwrap().expect("revived");
    assert!(!revived.removed && revived.processed_at.is_none());
    assert!(s.insert_chain_event(&cap).await.unwrap().is_none());
    assert_eq!(
        s.mark_block_removed(CHAIN, cap.block_hash).await.unwrap(),
        1
    );

    let history = s.events_for_payment(B256::repeat_byte(0x33)).await.unwrap();
    assert_eq!(history.len(), 3);
    assert_eq!(history.iter().filter(|e| e.removed).count(), 1);
    assert!(matches!(
        s.mark_event_processed(uuid::Uuid::now_v7()).await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn indexer_cursor(ctx: Ctx) {
    let s = &ctx.store;
    assert!(s.cursor(CHAIN, addr(0xE5)).await.unwrap().is_none());
    s.set_cursor(CHAIN, addr(0xE5), 100, Some(B256::repeat_byte(1)))
        .await
        .unwrap();
    s.set_cursor(CHAIN, addr(0xE5), 120, Some(B256::repeat_byte(2)))
        .await
        .unwrap();
    let c = s.cursor(CHAIN, addr(0xE5)).await.unwrap().unwrap();
    assert_eq!(
        (c.next_block, c.last_block_hash),
        (120, Some(B256::repeat_byte(2)))
    );
    // Moving back (re-read after a reorg) is allowed.
    s.set_cursor(CHAIN, addr(0xE5), 90, None).await.unwrap();
    let c = s.cursor(CHAIN, addr(0xE5)).await.unwrap().unwrap();
    assert_eq!((c.next_block, c.last_block_hash), (90, None));
    assert!(s.cursor(1, addr(0xE5)).await.unwrap().is_none());
}

/// `transfer` and `approve` rows round-trip; a keyed row is written once and found again by its
/// intent key (a retried `/settle` of the same `exact` authorization, on any instance).
async fn keyed_rows_and_the_kinds_without_payment(ctx: Ctx) {
    let s = &ctx.store;
    let approve = s.enqueue_tx(&new_tx(TxKind::Approve)).await.unwrap();
    assert_eq!(s.get_tx(approve.id).await.unwrap().kind, TxKind::Approve);
    assert!(s.tx_by_intent_key("transfer:a").await.unwrap().is_none());
    let (first, written) = s
        .enqueue_keyed_tx("transfer:a", &new_tx(TxKind::Transfer))
        .await
        .unwrap();
    assert!(written);
    assert_eq!(first.kind, TxKind::Transfer);
    assert_eq!(first.status, TxStatus::Queued);
    let (again, written) = s
        .enqueue_keyed_tx("transfer:a", &new_tx(TxKind::Transfer))
        .await
        .unwrap();
    assert!(!written);
    assert_eq!(again.id, first.id);
    assert_eq!(
        s.tx_by_intent_key("transfer:a")
            .await
            .unwrap()
            .map(|t| t.id),
        Some(first.id)
    );
    let (other, written) = s
        .enqueue_keyed_tx("transfer:b", &new_tx(TxKind::Transfer))
        .await
        .unwrap();
    assert!(written);
    assert_ne!(other.id, first.id);
    // Racing writers of one key: one row.
    let racers: Vec<_> = (0..4)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move {
                s.enqueue_keyed_tx("transfer:c", &new_tx(TxKind::Transfer))
                    .await
                    .unwrap()
                    .0
                    .id
            })
        })
        .collect();
    let mut ids = HashSet::new();
    for racer in racers {
        ids.insert(racer.await.unwrap());
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(count(s, "chain_txs WHERE kind = 'transfer'").await, 3);
}
