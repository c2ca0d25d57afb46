//! The store side of batching (`chain_tx_members`, migration 0005), on SQLite and PostgreSQL:
//! merging queued single rows into a batch row is all or nothing, moves the payments' pending
//! action, holds young single rows back from the claim step (a row left out of a batch is claimed
//! by id), and a failed batch's members are re-sent once each and never batched again.

mod store_support;

use store_support::*;
use uuid::Uuid;
use x402_escrow_operator::lifecycle::{PaymentEvent, PaymentStatus};
use x402_escrow_operator::store::{ChainTx, Store, StoreError, TransitionExtras, TxKind, TxStatus};

const CHAIN: u64 = 31337;
const TTL: i64 = 60_000;

store_tests!(
    merge_hold_and_resend,
    merge_is_all_or_nothing,
    merge_refuses_repeats_and_moved_payments,
    a_large_merge_keeps_its_order
);

/// A payment in `Capturing` whose pending action is a queued single `capture` row.
async fn capturing(ctx: &Ctx, merchant: Uuid, seed: u64) -> (Uuid, Uuid) {
    let s = &ctx.store;
    let (p, _) = s
        .insert_payment(&new_payment(merchant, seed), None)
        .await
        .unwrap();
    let p = confirm(s, p.id, 1_000_000, None).await.payment;
    let t = request_capture(s, p.id, p.version, 400_000).await;
    (p.id, t.chain_tx.unwrap().id)
}

/// What `op` claims, holding single rows younger than `hold_after` back for company.
async fn claim_holding(s: &Store, hold_after: i64) -> Option<ChainTx> {
    s.claim_next_tx_holding(CHAIN, signer(), "op", hold_after)
        .await
        .unwrap()
}

/// Nothing is left to batch.
async fn assert_no_candidates(s: &Store) {
    let candidates = s.batch_candidates(CHAIN, signer(), 100).await.unwrap();
    assert!(candidates.is_empty(), "{candidates:?}");
}

async fn merge_hold_and_resend(ctx: Ctx) {
    let s = &ctx.store;
    let m = merchant(s).await;
    s.upsert_signer(CHAIN, signer(), 0).await.unwrap();
    s.acquire_lease(CHAIN, signer(), "op", TTL).await.unwrap();
    let mut members = Vec::new();
    for seed in 1..=3 {
        members.push(capturing(&ctx, m, seed).await);
    }
    let singles: Vec<Uuid> = members.iter().map(|m| m.1).collect();
    // A row of no payment is never a candidate (and never held back).
    let loose = s.enqueue_tx(&new_tx(TxKind::Capture)).await.unwrap();

    let candidates = s.batch_candidates(CHAIN, signer(), 100).await.unwrap();
    assert_eq!(candidates.iter().map(|c| c.id).collect::<Vec<_>>(), singles);

    // Young single rows wait for company; the loose row does not.
    let hold_after = ctx.clock.now() - 1;
    let claimed = claim_holding(s, hold_after).await;
    assert_eq!(claimed.map(|c| c.id), Some(loose.id), "the loose row");
    assert!(claim_holding(s, hold_after).await.is_none());

    let before = s.get_payment(members[0].0).await.unwrap();
    let mut batch = new_tx(TxKind::CaptureBatch);
    batch.payment_id = Some(members[0].0); // ignored: a batch row has no single payment
    let row = s.merge_batch(&batch, &singles).await.unwrap();
    assert_eq!(
        (row.kind, row.status, row.payment_id),
        (TxKind::CaptureBatch, TxStatus::Queued, None)
    );
    for (position, (payment, single)) in members.iter().enumerate() {
        let p = s.get_payment(*payment).await.unwrap();
        assert_eq!(p.pending_tx_id, Some(row.id));
        assert_eq!(p.status, PaymentStatus::Capturing);
        let single = s.get_tx(*single).await.unwrap();
        assert_eq!(single.status, TxStatus::Abandoned);
        assert!(
            single
                .revert_reason
                .unwrap()
                .contains("merged into capture_batch")
        );
        // The payment's transactions show the batch, not the merged single row.
        let txs = s.txs_for_payment(*payment).await.unwrap();
        assert_eq!(txs.iter().map(|t| t.id).collect::<Vec<_>>(), vec![row.id]);
        let ms = s.batch_memberships(*payment).await.unwrap();
        assert_eq!(ms.len(), 1);
        assert_eq!(ms[0].position, position as u64);
    }
    assert_no_candidates(s).await;
    // A transition decided on the pointer read before the merge fails and must re-read.
    let stale = s
        .transition_payment(
            before.id,
            before.version,
            &PaymentEvent::CaptureFailed { code: "x".into() },
            TransitionExtras::default(),
        )
        .await;
    assert!(
        matches!(stale, Err(StoreError::VersionMismatch { .. })),
        "{stale:?}"
    );

    // The batch row itself is never held back.
    let claimed = claim_holding(s, hold_after).await;
    assert_eq!(claimed.map(|c| c.id), Some(row.id), "the batch");

    // The batch failed: member 1 goes out alone, once.
    let members_of = s.batch_members(row.id).await.unwrap();
    assert_eq!(members_of.len(), 3);
    let m1 = &members_of[1];
    let m1_payment = m1.payment_id.expect("a payment's member");
    let single = s.get_tx(m1.source_tx_id).await.unwrap();
    let fallback = {
        let mut tx = s.begin().await.unwrap();
        let mut again = new_tx(TxKind::Capture);
        again.calldata = single.calldata.clone();
        let f = tx
            .resend_member(row.id, 1, m1_payment, &again)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        f
    };
    assert_eq!(fallback.payment_id, Some(m1_payment));
    assert_eq!(
        s.get_payment(m1_payment).await.unwrap().pending_tx_id,
        Some(fallback.id)
    );
    assert_eq!(
        s.batch_members(row.id).await.unwrap()[1].fallback_tx_id,
        Some(fallback.id)
    );
    // Never batched again, and never held back although it is young.
    assert_no_candidates(s).await;
    let claimed = claim_holding(s, hold_after).await;
    assert_eq!(claimed.map(|c| c.id), Some(fallback.id), "the fallback");
    // A second re-send of the same member is refused and changes nothing.
    let mut tx = s.begin().await.unwrap();
    let err = tx
        .resend_member(row.id, 1, m1_payment, &new_tx(TxKind::Capture))
        .await
        .unwrap_err();
    tx.rollback().await.unwrap();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    assert_eq!(count(s, "chain_txs WHERE status = 'queued'").await, 0);
    // The view of member 1: the batch and its own fallback.
    let txs = s.txs_for_payment(m1_payment).await.unwrap();
    assert_eq!(
        txs.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![row.id, fallback.id]
    );
}

async fn merge_is_all_or_nothing(ctx: Ctx) {
    let s = &ctx.store;
    let m = merchant(s).await;
    s.upsert_signer(CHAIN, signer(), 0).await.unwrap();
    s.acquire_lease(CHAIN, signer(), "op", TTL).await.unwrap();
    let a = capturing(&ctx, m, 1).await;
    let b = capturing(&ctx, m, 2).await;
    // `b`'s single row is claimed (nonce reserved) before the merge: the merge must fail whole.
    let claimed = s
        .claim_next_tx(CHAIN, signer(), "op")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, a.1);
    let err = s
        .merge_batch(&new_tx(TxKind::CaptureBatch), &[b.1, a.1])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::TxState { .. }), "{err:?}");
    assert_eq!(count(s, "chain_txs WHERE kind = 'capture_batch'").await, 0);
    assert_eq!(count(s, "chain_tx_members").await, 0);
    assert_eq!(s.get_tx(b.1).await.unwrap().status, TxStatus::Queued);
    assert_eq!(s.get_payment(b.0).await.unwrap().pending_tx_id, Some(b.1));
    assert_eq!(s.get_tx(a.1).await.unwrap().status, TxStatus::Reserved);
    // A member left out of a batch is claimed by id at once, though young enough to be held.
    let now = ctx.clock.now();
    assert!(claim_holding(s, now - 1).await.is_none());
    let alone = s
        .claim_tx(CHAIN, signer(), "op", b.1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (alone.id, alone.status, alone.nonce),
        (b.1, TxStatus::Reserved, Some(1))
    );
    assert!(
        s.claim_tx(CHAIN, signer(), "op", b.1)
            .await
            .unwrap()
            .is_none()
    );
    // Fenced by the lease like every claim.
    let c = capturing(&ctx, m, 3).await;
    assert!(matches!(
        s.claim_tx(CHAIN, signer(), "intruder", c.1).await,
        Err(StoreError::LeaseNotHeld { .. })
    ));
    assert_eq!(s.get_tx(c.1).await.unwrap().status, TxStatus::Queued);
}

/// The merge's set-wise statements still refuse what the row-by-row ones did, naming the
/// member, and write nothing: a member listed twice, and a row its payment no longer waits for
/// (and a batch of no members at all).
async fn merge_refuses_repeats_and_moved_payments(ctx: Ctx) {
    let s = &ctx.store;
    let m = merchant(s).await;
    s.upsert_signer(CHAIN, signer(), 0).await.unwrap();
    let a = capturing(&ctx, m, 1).await;
    let b = capturing(&ctx, m, 2).await;
    let nothing_written = || async {
        assert_eq!(count(s, "chain_txs WHERE kind = 'capture_batch'").await, 0);
        assert_eq!(count(s, "chain_tx_members").await, 0);
        for (payment, single) in [a, b] {
            assert_eq!(s.get_tx(single).await.unwrap().status, TxStatus::Queued);
            assert_eq!(
                s.get_payment(payment).await.unwrap().pending_tx_id,
                Some(single)
            );
        }
    };

    let err = s
        .merge_batch(&new_tx(TxKind::CaptureBatch), &[a.1, b.1, a.1])
        .await
        .unwrap_err();
    match err {
        StoreError::TxState { id, status, .. } => {
            // Seen inside the merge's own transaction, which had just abandoned it.
            assert_eq!((id, status), (a.1, TxStatus::Abandoned));
        }
        other => panic!("{other:?}"),
    }
    nothing_written().await;

    let err = s
        .merge_batch(&new_tx(TxKind::CaptureBatch), &[])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    nothing_written().await;

    // A queued capture row of `b` that is not `b`'s pending action (that is still `b.1`).
    let mut stray = new_tx(TxKind::Capture);
    stray.payment_id = Some(b.0);
    let stray = s.enqueue_tx(&stray).await.unwrap();
    let err = s
        .merge_batch(&new_tx(TxKind::CaptureBatch), &[a.1, stray.id])
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::VersionMismatch { id, .. } if id == b.0),
        "{err:?}"
    );
    nothing_written().await;
    assert_eq!(s.get_tx(stray.id).await.unwrap().status, TxStatus::Queued);
}

/// A merge of many rows: every member listed at its position, every payment re-pointed, every
/// single row abandoned, whatever order the rows were created in.
async fn a_large_merge_keeps_its_order(ctx: Ctx) {
    let s = &ctx.store;
    let m = merchant(s).await;
    s.upsert_signer(CHAIN, signer(), 0).await.unwrap();
    let mut members = Vec::new();
    for seed in 1..=40 {
        members.push(capturing(&ctx, m, seed).await);
    }
    // Not the order they were written in.
    members.reverse();
    members.swap(3, 17);
    let singles: Vec<Uuid> = members.iter().map(|m| m.1).collect();
    let row = s
        .merge_batch(&new_tx(TxKind::CaptureBatch), &singles)
        .await
        .unwrap();
    let listed = s.batch_members(row.id).await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|l| (l.position, l.payment_id, l.source_tx_id))
            .collect::<Vec<_>>(),
        members
            .iter()
            .enumerate()
            .map(|(i, (payment, single))| (i as u64, Some(*payment), *single))
            .collect::<Vec<_>>()
    );
    for (payment, single) in &members {
        let p = s.get_payment(*payment).await.unwrap();
        assert_eq!(p.pending_tx_id, Some(row.id));
        assert_eq!(s.get_tx(*single).await.unwrap().status, TxStatus::Abandoned);
    }
    assert_eq!(count(s, "chain_txs WHERE status = 'queued'").await, 1);
}
