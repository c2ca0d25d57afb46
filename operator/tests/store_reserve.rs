//! Store suite: the refund reserve ledger (`store/reserve.rs`). Every test runs on SQLite and on
//! PostgreSQL: credits, refund debits refused when short (nothing written), a failed refund's
//! release written by the transition itself, concurrent debits of two merchants from two store
//! instances (never overdrawn, never crossed), deposits credited once and taken back by a reorg,
//! the capture top-up credited on confirmation, deposit addresses, statement pages.

mod store_support;

use alloy::primitives::{Address, B256};
use store_support::*;
use uuid::Uuid;
use x402_escrow_operator::lifecycle::{PaymentEvent, PaymentStatus};
use x402_escrow_operator::store::{
    CursorPosition, DEPOSIT_EVENT, DepositOutcome, IndexedBlock, IndexerAdvance, NewChainEvent,
    NewTopup, ReserveCredit, ReserveKind, ReserveReason, Store, StoreError, TransitionExtras,
    TxKind,
};

store_tests!(
    credit_debit_and_refusal_writes_nothing,
    failed_refund_releases_its_debit,
    concurrent_debits_never_overdraw_or_cross,
    deposits_credited_once_and_reorgs_take_them_back,
    topup_credited_when_the_capture_confirms,
    deposit_addresses_and_topup_rules,
    statement_pages,
);

/// The token of the fixtures' payments.
fn token() -> Address {
    addr(0x70)
}

async fn credit(store: &Store, merchant: Uuid, amount: u128) {
    store
        .reserve_credit(&ReserveCredit {
            merchant_id: merchant,
            asset: token(),
            amount,
            note: Some("test".into()),
        })
        .await
        .expect("credit");
}

/// One refund debit in a transaction of its own.
async fn debit(store: &Store, merchant: Uuid, amount: u128) -> Result<(), StoreError> {
    let mut tx = store.begin().await?;
    match tx
        .reserve_debit_refund(merchant, token(), Uuid::now_v7(), amount, None)
        .await
    {
        Ok(_) => tx.commit().await,
        Err(e) => {
            tx.rollback().await?;
            Err(e)
        }
    }
}

async fn balance(store: &Store, merchant: Uuid) -> u128 {
    store
        .reserve_balance(merchant, token())
        .await
        .expect("balance")
        .balance
}

async fn credit_debit_and_refusal_writes_nothing(ctx: Ctx) {
    let s = &ctx.store;
    let m = merchant(s).await;
    assert_eq!(balance(s, m).await, 0);
    // Nothing to spend: refused, nothing written.
    match debit(s, m, 1).await {
        Err(StoreError::ReserveInsufficient {
            balance, needed, ..
        }) => assert_eq!((balance, needed), (0, 1)),
        other => panic!("{other:?}"),
    }
    assert_eq!(count(s, "reserve_entries").await, 0);
    credit(s, m, 100).await;
    debit(s, m, 60).await.expect("debit 60");
    let before = count(s, "reserve_entries").await;
    match debit(s, m, 41).await {
        Err(StoreError::ReserveInsufficient {
            balance, needed, ..
        }) => assert_eq!((balance, needed), (40, 41)),
        other => panic!("{other:?}"),
    }
    assert_eq!(count(s, "reserve_entries").await, before);
    let b = s.reserve_balance(m, token()).await.unwrap();
    assert_eq!(
        (b.balance, b.credited, b.debited, b.released),
        (40, 100, 60, 0)
    );
    debit(s, m, 40).await.expect("debit exactly the balance");
    assert_eq!(balance(s, m).await, 0);
    // Unknown merchant: not found, nothing written.
    let err = s
        .reserve_credit(&ReserveCredit {
            merchant_id: Uuid::now_v7(),
            asset: token(),
            amount: 5,
            note: None,
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    // The kept balance is what the ledger adds up to.
    let sums = s.reserve_ledger_sums().await.unwrap();
    assert_eq!(sums, vec![(m, token(), 0)]);
}

/// A payment of `m` captured in full (1_000_000), ready to refund.
async fn captured(s: &Store, m: Uuid, seed: u64) -> (Uuid, i64) {
    let (p, _) = s.insert_payment(&new_payment(m, seed), None).await.unwrap();
    confirm(s, p.id, 1_000_000, None).await;
    let t = request_capture(s, p.id, 1, 1_000_000).await;
    let t = transition(
        s,
        p.id,
        t.payment.version,
        PaymentEvent::CaptureConfirmed { amount: 1_000_000 },
    )
    .await
    .unwrap();
    assert_eq!(t.payment.status, PaymentStatus::Captured);
    (p.id, t.payment.version)
}

/// The refund request the engine writes: transition with its outbox row, then the debit, in
/// one transaction.
async fn request_refund(
    s: &Store,
    m: Uuid,
    id: Uuid,
    version: i64,
    amount: u128,
) -> Result<i64, StoreError> {
    let mut tx = s.begin().await?;
    let out = async {
        let t = tx
            .transition_payment(
                id,
                version,
                &PaymentEvent::RefundRequested { amount },
                TransitionExtras {
                    outbox: Some(new_tx(TxKind::Refund)),
                    ..Default::default()
                },
            )
            .await?;
        let chain_tx = t.chain_tx.as_ref().map(|c| c.id);
        tx.reserve_debit_refund(m, token(), id, amount, chain_tx)
            .await?;
        Ok::<_, StoreError>(t.payment.version)
    }
    .await;
    match out {
        Ok(v) => {
            tx.commit().await?;
            Ok(v)
        }
        Err(e) => {
            tx.rollback().await?;
            Err(e)
        }
    }
}

async fn failed_refund_releases_its_debit(ctx: Ctx) {
    let s = &ctx.store;
    let m = merchant(s).await;
    let (id, version) = captured(s, m, 1).await;
    credit(s, m, 300_000).await;
    // Short: refused, and the payment did not move either (one transaction).
    let err = request_refund(s, m, id, version, 300_001)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::ReserveInsufficient { .. }),
        "{err:?}"
    );
    let p = s.get_payment(id).await.unwrap();
    assert_eq!((p.status, p.version), (PaymentStatus::Captured, version));
    assert_eq!(count(s, "chain_txs").await, 1);
    // Covered: debited with the refund.
    let version = request_refund(s, m, id, version, 250_000).await.unwrap();
    assert_eq!(balance(s, m).await, 50_000);
    // The refund fails on chain: the transition gives the amount back.
    let t = transition(
        s,
        id,
        version,
        PaymentEvent::RefundFailed {
            code: "reverted".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(t.payment.status, PaymentStatus::Captured);
    assert_eq!(balance(s, m).await, 300_000);
    let page = s.reserve_statement(m, None, None, 10).await.unwrap();
    let kinds: Vec<_> = page.iter().map(|e| (e.kind, e.reason, e.amount)).collect();
    assert_eq!(
        kinds,
        vec![
            (ReserveKind::Release, ReserveReason::RefundFailed, 250_000),
            (ReserveKind::Debit, ReserveReason::Refund, 250_000),
            (ReserveKind::Credit, ReserveReason::Admin, 300_000),
        ]
    );
    assert_eq!(page[0].payment_id, Some(id));
    assert!(
        page[1].chain_tx_id.is_some(),
        "the debit names its refund row"
    );
    // A refund that is confirmed keeps its debit.
    let version = request_refund(s, m, id, t.payment.version, 100_000)
        .await
        .unwrap();
    transition(
        s,
        id,
        version,
        PaymentEvent::RefundConfirmed { amount: 100_000 },
    )
    .await
    .unwrap();
    assert_eq!(balance(s, m).await, 200_000);
    let b = s.reserve_balance(m, token()).await.unwrap();
    assert_eq!(
        (b.credited, b.debited, b.released),
        (300_000, 350_000, 250_000)
    );
}

async fn concurrent_debits_never_overdraw_or_cross(ctx: Ctx) {
    let s = ctx.store.clone();
    let other = ctx.second_instance().await;
    let a = merchant(&s).await;
    let b = second_merchant(&s, "other").await;
    credit(&s, a, 100).await;
    credit(&s, b, 50).await;
    // 20 debits of 10 for each merchant, racing over two pools: A can pay 10 of them, B 5.
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = if i % 2 == 0 { s.clone() } else { other.clone() };
        let m = if i % 4 < 2 { a } else { b };
        tasks.push(tokio::spawn(async move { (m, debit(&store, m, 10).await) }));
    }
    let (mut ok_a, mut ok_b) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            (m, Ok(())) if m == a => ok_a += 1,
            (_, Ok(())) => ok_b += 1,
            (_, Err(StoreError::ReserveInsufficient { .. })) => {}
            (_, Err(e)) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!((ok_a, ok_b), (10, 5));
    assert_eq!(balance(&s, a).await, 0);
    assert_eq!(balance(&s, b).await, 0);
    let sums = s.reserve_ledger_sums().await.unwrap();
    assert!(sums.iter().all(|(_, _, sum)| *sum == 0), "{sums:?}");
    let b_entries = s.reserve_statement(b, None, None, 200).await.unwrap();
    assert_eq!(
        b_entries.len(),
        6,
        "B: one credit and five debits, none of A's"
    );
    assert!(b_entries.iter().all(|e| e.merchant_id == b));
    other.close().await;
}

fn deposit(
    from: Address,
    value: u128,
    block: u64,
    block_hash: B256,
    log_index: u64,
) -> NewChainEvent {
    NewChainEvent {
        chain_id: 31337,
        address: token(),
        block_number: block,
        block_hash,
        log_index,
        tx_hash: B256::repeat_byte(0xD0 + u8::try_from(log_index).unwrap_or(0)),
        event_name: DEPOSIT_EVENT.to_owned(),
        payment_hash: None,
        amount: Some(value),
        data: serde_json::json!({
            "token": format!("{:#x}", token()),
            "from": format!("{from:#x}"),
            "to": format!("{:#x}", signer()),
            "value": value.to_string(),
        }),
    }
}

async fn deposits_credited_once_and_reorgs_take_them_back(ctx: Ctx) {
    let s = &ctx.store;
    let m = merchant(s).await;
    let other = second_merchant(s, "other").await;
    let payout = addr(0x44);
    s.add_deposit_address(m, payout).await.unwrap();
    let escrow = addr(0xE5);
    let h10 = B256::repeat_byte(0x10);
    let events = [
        deposit(payout, 700, 10, h10, 0),
        // From a receiver both merchants share (the fixtures give both 0xAA): not credited.
        deposit(addr(0xAA), 5, 10, h10, 1),
        // From nobody's address.
        deposit(addr(0x99), 9, 10, h10, 2),
    ];
    let advanced = s
        .advance_indexer(IndexerAdvance {
            chain_id: 31337,
            address: escrow,
            expected: CursorPosition {
                next_block: 10,
                last_block_hash: None,
            },
            next: CursorPosition {
                next_block: 11,
                last_block_hash: Some(h10),
            },
            events: &events,
            blocks: &[IndexedBlock {
                number: 10,
                hash: h10,
            }],
            keep: 16,
        })
        .await
        .unwrap()
        .expect("advanced");
    assert_eq!(advanced.len(), 3);
    let outcomes: Vec<DepositOutcome> = {
        let mut out = Vec::new();
        for e in &advanced {
            out.push(s.process_deposit_event(e).await.unwrap());
        }
        out
    };
    assert!(matches!(&outcomes[0], DepositOutcome::Credited(e) if e.amount == 700));
    assert_eq!(outcomes[1], DepositOutcome::UnknownSender(addr(0xAA)));
    assert_eq!(outcomes[2], DepositOutcome::UnknownSender(addr(0x99)));
    assert!(s.unprocessed_events(31337, 10).await.unwrap().is_empty());
    // Processing the same event again (a second instance, a retry) credits nothing.
    assert_eq!(
        s.process_deposit_event(&advanced[0]).await.unwrap(),
        DepositOutcome::AlreadyCredited
    );
    assert_eq!(balance(s, m).await, 700);
    assert_eq!(balance(s, other).await, 0);
    let entry = &s.reserve_statement(m, None, None, 1).await.unwrap()[0];
    assert_eq!(
        (entry.tx_hash, entry.log_index),
        (Some(advanced[0].tx_hash), Some(0))
    );
    // A reorg drops block 10: the credit is taken back in the rewind's transaction.
    let removed = s
        .rewind_indexer(
            31337,
            escrow,
            CursorPosition {
                next_block: 11,
                last_block_hash: Some(h10),
            },
            10,
            None,
        )
        .await
        .unwrap()
        .expect("rewound");
    assert_eq!(
        removed.len(),
        3,
        "deposit events are removed with the escrow's"
    );
    assert_eq!(balance(s, m).await, 0);
    let entry = &s.reserve_statement(m, None, None, 1).await.unwrap()[0];
    assert_eq!(
        (entry.kind, entry.reason),
        (ReserveKind::Debit, ReserveReason::DepositReorged)
    );
    // The same block comes back: the deposit is credited again, once.
    let back = s
        .advance_indexer(IndexerAdvance {
            chain_id: 31337,
            address: escrow,
            expected: CursorPosition {
                next_block: 10,
                last_block_hash: None,
            },
            next: CursorPosition {
                next_block: 11,
                last_block_hash: Some(h10),
            },
            events: &events[..1],
            blocks: &[IndexedBlock {
                number: 10,
                hash: h10,
            }],
            keep: 16,
        })
        .await
        .unwrap()
        .expect("advanced again");
    assert_eq!(back.len(), 1, "revived");
    assert!(matches!(
        s.process_deposit_event(&back[0]).await.unwrap(),
        DepositOutcome::Credited(_)
    ));
    assert_eq!(
        s.process_deposit_event(&back[0]).await.unwrap(),
        DepositOutcome::AlreadyCredited
    );
    assert_eq!(balance(s, m).await, 700);
    let standing = s.standing_deposits().await.unwrap();
    assert_eq!(standing.len(), 1, "{standing:?}");

    // Another reorg, and the same transfer is mined in a different block: a new event of the
    // same log, credited once more only because the last credit was taken back.
    s.rewind_indexer(
        31337,
        escrow,
        CursorPosition {
            next_block: 11,
            last_block_hash: Some(h10),
        },
        10,
        None,
    )
    .await
    .unwrap()
    .expect("rewound again");
    assert_eq!(balance(s, m).await, 0);
    let h11 = B256::repeat_byte(0x11);
    let moved = deposit(payout, 700, 11, h11, 0);
    assert_eq!(moved.tx_hash, events[0].tx_hash, "the same transfer");
    let again = s
        .advance_indexer(IndexerAdvance {
            chain_id: 31337,
            address: escrow,
            expected: CursorPosition {
                next_block: 10,
                last_block_hash: None,
            },
            next: CursorPosition {
                next_block: 12,
                last_block_hash: Some(h11),
            },
            events: std::slice::from_ref(&moved),
            blocks: &[IndexedBlock {
                number: 11,
                hash: h11,
            }],
            keep: 16,
        })
        .await
        .unwrap()
        .expect("advanced to the new block");
    assert!(matches!(
        s.process_deposit_event(&again[0]).await.unwrap(),
        DepositOutcome::Credited(_)
    ));
    assert_eq!(
        s.process_deposit_event(&again[0]).await.unwrap(),
        DepositOutcome::AlreadyCredited
    );
    assert_eq!(balance(s, m).await, 700);
    assert_eq!(s.standing_deposits().await.unwrap().len(), 1);
    assert_eq!(
        s.reserve_ledger_sums().await.unwrap(),
        vec![(m, token(), 700)]
    );
}

async fn topup_credited_when_the_capture_confirms(ctx: Ctx) {
    let s = &ctx.store;
    let m = merchant(s).await;
    let (p, _) = s.insert_payment(&new_payment(m, 7), None).await.unwrap();
    confirm(s, p.id, 1_000_000, None).await;
    let plan = |capture: u128, amount: u128, skipped: Option<String>| NewTopup {
        payment_id: p.id,
        merchant_id: m,
        asset: token(),
        capture_amount: capture,
        share_bps: 500,
        amount,
        skipped,
    };
    // Capture 400_000 with a 5% top-up; it fails: cancelled, nothing credited.
    let mut tx = s.begin().await.unwrap();
    let t = tx
        .transition_payment(
            p.id,
            1,
            &PaymentEvent::CaptureRequested { amount: 400_000 },
            TransitionExtras {
                outbox: Some(new_tx(TxKind::Capture)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    tx.plan_topup(&plan(400_000, 20_000, None)).await.unwrap();
    tx.commit().await.unwrap();
    let t = transition(
        s,
        p.id,
        t.payment.version,
        PaymentEvent::CaptureFailed {
            code: "reverted".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(balance(s, m).await, 0);
    // Again; confirmed: credited.
    let mut tx = s.begin().await.unwrap();
    let t = tx
        .transition_payment(
            p.id,
            t.payment.version,
            &PaymentEvent::CaptureRequested { amount: 400_000 },
            TransitionExtras {
                outbox: Some(new_tx(TxKind::Capture)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    tx.plan_topup(&plan(400_000, 20_000, None)).await.unwrap();
    tx.commit().await.unwrap();
    let t = transition(
        s,
        p.id,
        t.payment.version,
        PaymentEvent::CaptureConfirmed { amount: 400_000 },
    )
    .await
    .unwrap();
    assert_eq!(balance(s, m).await, 20_000);
    // A skipped plan is recorded with its reason and never credited.
    let mut tx = s.begin().await.unwrap();
    let t = tx
        .transition_payment(
            p.id,
            t.payment.version,
            &PaymentEvent::CaptureRequested { amount: 100_000 },
            TransitionExtras {
                outbox: Some(new_tx(TxKind::Capture)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    tx.plan_topup(&plan(100_000, 0, Some("bounds too tight".into())))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    transition(
        s,
        p.id,
        t.payment.version,
        PaymentEvent::CaptureConfirmed { amount: 100_000 },
    )
    .await
    .unwrap();
    assert_eq!(balance(s, m).await, 20_000);
    let topups = s.topups_for_payment(p.id).await.unwrap();
    let states: Vec<_> = topups.iter().map(|t| t.status.as_str()).collect();
    assert_eq!(states, ["cancelled", "credited", "skipped"]);
    assert_eq!(topups[2].reason.as_deref(), Some("bounds too tight"));
    let entry = &s.reserve_statement(m, None, None, 1).await.unwrap()[0];
    assert_eq!(
        (entry.reason, entry.payment_id),
        (ReserveReason::CaptureTopup, Some(p.id))
    );
}

async fn deposit_addresses_and_topup_rules(ctx: Ctx) {
    let s = &ctx.store;
    let m = merchant(s).await;
    let other = second_merchant(s, "other").await;
    s.add_deposit_address(m, addr(0x44)).await.unwrap();
    // Again for the same merchant: fine; for another: refused.
    s.add_deposit_address(m, addr(0x44)).await.unwrap();
    let err = s.add_deposit_address(other, addr(0x44)).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    assert_eq!(s.deposit_addresses(m).await.unwrap(), vec![addr(0x44)]);
    assert!(s.deposit_addresses(other).await.unwrap().is_empty());
    assert_eq!(s.deposit_merchant(addr(0x44)).await.unwrap(), Some(m));
    // 0xAA is both merchants' receiver: nobody's deposits.
    assert_eq!(s.deposit_merchant(addr(0xAA)).await.unwrap(), None);
    assert!(matches!(
        s.add_deposit_address(Uuid::now_v7(), addr(0x45)).await,
        Err(StoreError::NotFound { .. })
    ));

    assert_eq!(s.topup_rule(m).await.unwrap(), None);
    s.set_topup_rule(m, Some(250)).await.unwrap();
    s.set_topup_rule(m, Some(300)).await.unwrap();
    assert_eq!(s.topup_rule(m).await.unwrap(), Some(300));
    for bad in [0, 10_001] {
        assert!(matches!(
            s.set_topup_rule(m, Some(bad)).await,
            Err(StoreError::Conflict { .. })
        ));
    }
    assert_eq!(s.topup_rule(m).await.unwrap(), Some(300));
    s.set_topup_rule(m, None).await.unwrap();
    assert_eq!(s.topup_rule(m).await.unwrap(), None);
}

async fn statement_pages(ctx: Ctx) {
    let s = &ctx.store;
    let m = merchant(s).await;
    let other = second_merchant(s, "other").await;
    for i in 1..=7u128 {
        credit(s, m, i).await;
    }
    credit(s, other, 1_000).await;
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = s.reserve_statement(m, None, cursor, 3).await.unwrap();
        if page.is_empty() {
            break;
        }
        cursor = page.last().map(|e| e.id);
        seen.extend(page.iter().map(|e| e.amount));
    }
    assert_eq!(
        seen,
        vec![7, 6, 5, 4, 3, 2, 1],
        "newest first, every entry once"
    );
    assert!(
        s.reserve_statement(m, Some(addr(0x71)), None, 10)
            .await
            .unwrap()
            .is_empty(),
        "another asset"
    );
    assert_eq!(s.reserve_balances(m).await.unwrap()[0].balance, 28);
}
