//! Store suite, part 1: migrations, merchants, payments (+ outbox atomicity, optimistic
//! concurrency, lifecycle through the store), idempotency keys. Every test runs on SQLite and on
//! PostgreSQL.

mod store_support;

use store_support::*;
use x402_escrow_operator::lifecycle::{Amounts, PaymentEvent, PaymentStatus};
use x402_escrow_operator::store::{
    Backend, IdempotencyBegin, NewWebhookEvent, PaymentFilter, Store, StoreError, TransitionExtras,
    TxKind, TxStatus, hash_api_key, request_fingerprint,
};
use x402_escrow_types::{PageCursor, PaymentQuery};

store_tests!(
    migrations_are_idempotent,
    merchants,
    payment_round_trip_and_lookups,
    duplicate_payment_hash_writes_nothing,
    payment_and_outbox_are_atomic,
    lifecycle_through_the_store,
    illegal_and_stale_transitions_change_nothing,
    transitions_from_a_copy_the_caller_read,
    concurrent_transitions_exactly_one_wins,
    sweeper_queries,
    idempotency_key_states,
    idempotency_concurrent_begin_one_starts,
    writes_waiting_together_share_one_transaction,
    payment_pages_filter_and_stay_stable,
);

const TABLES: [&str; 11] = [
    "merchants",
    "payments",
    "chain_txs",
    "tx_attempts",
    "signers",
    "chain_events",
    "indexer_cursors",
    "webhook_events",
    "webhook_deliveries",
    "idempotency_keys",
    "_sqlx_migrations",
];

async fn migrations_are_idempotent(ctx: Ctx) {
    // Already migrated by the harness: running again (and from a second instance) is a no-op.
    let applied = count(&ctx.store, "_sqlx_migrations").await;
    assert!(applied >= 1);
    let m = merchant(&ctx.store).await;
    ctx.store.migrate().await.unwrap();
    let other = ctx.second_instance().await;
    other.migrate().await.unwrap();
    for table in TABLES {
        let _ = count(&ctx.store, table).await;
    }
    assert_eq!(count(&ctx.store, "_sqlx_migrations").await, applied);
    assert_eq!(
        other.get_merchant(m).await.unwrap().id,
        m,
        "data survives re-migration"
    );
    ctx.store.ping().await.unwrap();
    other.close().await;
    // A pooled connection is pinged before it is handed out only where it has a peer that can
    // go away (a SQLite connection is a file handle in this process).
    assert_eq!(
        ctx.store.pool().options().get_test_before_acquire(),
        ctx.store.backend() == Backend::Postgres
    );
}

async fn merchants(ctx: Ctx) {
    let s = &ctx.store;
    let writes_before = s.write_count();
    let (m, key) = s.create_merchant(&new_merchant("alpha")).await.unwrap();
    assert_eq!(s.write_count(), writes_before + 1, "one write transaction");
    assert!(key.expose().starts_with("x402_sk_"));
    assert_eq!(format!("{key:?}"), "[redacted]");
    assert_eq!(m.api_key_hash, hash_api_key(key.expose()));
    assert_ne!(m.api_key_hash, key.expose());
    assert_eq!(m.receivers, vec![addr(0xAA), addr(0xAB)]);
    assert_eq!(m.created_at, T0);

    let found = s.merchant_by_api_key(key.expose()).await.unwrap().unwrap();
    assert_eq!(found, m);
    assert!(
        s.merchant_by_api_key("x402_sk_wrong")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(s.get_merchant(m.id).await.unwrap(), m);
    assert!(matches!(
        s.get_merchant(uuid::Uuid::now_v7()).await,
        Err(StoreError::NotFound { .. })
    ));

    assert_eq!(s.write_count(), writes_before + 1, "reads are not writes");

    // The same key twice is a conflict.
    let err = s
        .create_merchant_with_key(&new_merchant("beta"), key.expose())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    assert_eq!(
        s.write_count(),
        writes_before + 1,
        "rolled back: not counted"
    );
    let m2 = s
        .create_merchant_with_key(&new_merchant("beta"), "x402_sk_other")
        .await
        .unwrap();
    let all = s.list_merchants().await.unwrap();
    assert_eq!(
        all.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![m.id, m2.id]
    );

    s.set_merchant_webhook(m2.id, None, None).await.unwrap();
    assert_eq!(
        s.write_count(),
        writes_before + 3,
        "a single-statement write counts as one"
    );
    let m2 = s.get_merchant(m2.id).await.unwrap();
    assert_eq!(
        (m2.webhook_url.clone(), m2.webhook_secret.clone()),
        (None, None)
    );
}

async fn payment_round_trip_and_lookups(ctx: Ctx) {
    let s = &ctx.store;
    let merchant_id = merchant(s).await;
    let other_merchant = second_merchant(s, "other").await;
    let new = new_payment(merchant_id, 1);
    let (p, tx) = s
        .insert_payment(&new, Some(&new_tx(TxKind::Authorize)))
        .await
        .unwrap();
    let tx = tx.unwrap();
    assert_eq!(p.status, PaymentStatus::Authorizing);
    assert_eq!(p.amounts, Amounts::default());
    assert_eq!(p.version, 0);
    assert_eq!((p.created_at, p.updated_at), (T0, T0));
    assert_eq!(
        p.info, new.info,
        "every PaymentInfo field round-trips (u128 / U256 included)"
    );
    assert_eq!(
        (p.payment_hash, p.chain_id, p.escrow, p.amount),
        (new.payment_hash, 31337, addr(0xE5), 1_000_000)
    );
    assert_eq!(p.request_id.as_deref(), Some("req-1"));
    assert_eq!(p.capture_deadline_at, Some(T0 + 3_600_000));
    assert_eq!(tx.payment_id, Some(p.id));
    assert_eq!(
        p.pending_tx_id,
        Some(tx.id),
        "the payment points at its action in flight"
    );
    assert_eq!(tx.status, TxStatus::Queued);
    assert_eq!(tx.nonce, None);
    assert_eq!(s.txs_for_payment(p.id).await.unwrap(), vec![tx.clone()]);

    assert_eq!(s.get_payment(p.id).await.unwrap(), p);
    assert_eq!(
        s.payment_by_hash(new.payment_hash).await.unwrap().unwrap(),
        p
    );
    assert!(
        s.payment_by_hash(alloy::primitives::B256::ZERO)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        s.payment_by_request_id(merchant_id, "req-1")
            .await
            .unwrap()
            .unwrap(),
        p
    );
    assert!(
        s.payment_by_request_id(other_merchant, "req-1")
            .await
            .unwrap()
            .is_none(),
        "scoped per merchant"
    );

    // A second payment for the same request id: the lookup returns the newest.
    ctx.clock.advance(1);
    let mut again = new_payment(merchant_id, 2);
    again.request_id = Some("req-1".into());
    let (p2, none) = s.insert_payment(&again, None).await.unwrap();
    assert!(none.is_none());
    assert_eq!(
        s.payment_by_request_id(merchant_id, "req-1")
            .await
            .unwrap()
            .unwrap()
            .id,
        p2.id
    );
    for seed in 3..8 {
        s.insert_payment(&new_payment(merchant_id, seed), None)
            .await
            .unwrap();
    }
    s.insert_payment(&new_payment(other_merchant, 100), None)
        .await
        .unwrap();

    let list = |f: PaymentFilter| async move { s.list_payments(&f).await.unwrap() };
    let mine = list(PaymentFilter {
        merchant_id: Some(merchant_id),
        ..Default::default()
    })
    .await;
    assert_eq!(mine.len(), 7);
    assert!(mine.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    assert_eq!(list(PaymentFilter::default()).await.len(), 8);
    let by_req = list(PaymentFilter {
        merchant_id: Some(merchant_id),
        request_id: Some("req-1".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(
        by_req.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![p2.id, p.id]
    );
    let page1 = list(PaymentFilter {
        merchant_id: Some(merchant_id),
        limit: Some(3),
        ..Default::default()
    })
    .await;
    let page2 = list(PaymentFilter {
        merchant_id: Some(merchant_id),
        limit: Some(3),
        before_id: Some(page1[2].id),
        ..Default::default()
    })
    .await;
    assert_eq!(page1.len() + page2.len(), 6);
    assert!(page2.iter().all(|p| p.id < page1[2].id));
    let by_status = |status| PaymentFilter {
        status: Some(status),
        ..Default::default()
    };
    let by_payer = |payer| PaymentFilter {
        payer: Some(payer),
        ..Default::default()
    };
    for (case, filter, want) in [
        ("authorized", by_status(PaymentStatus::Authorized), 0),
        ("authorizing", by_status(PaymentStatus::Authorizing), 8),
        ("payer 0x01", by_payer(addr(0x01)), 8),
        ("payer 0x02", by_payer(addr(0x02)), 0),
    ] {
        assert_eq!(list(filter).await.len(), want, "{case}");
    }

    let counts = s.count_payments_by_status().await.unwrap();
    assert_eq!(counts, vec![(PaymentStatus::Authorizing, 8)]);
}

async fn duplicate_payment_hash_writes_nothing(ctx: Ctx) {
    let s = &ctx.store;
    let m = merchant(s).await;
    s.insert_payment(&new_payment(m, 1), Some(&new_tx(TxKind::Authorize)))
        .await
        .unwrap();
    let err = s
        .insert_payment(&new_payment(m, 1), Some(&new_tx(TxKind::Authorize)))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                entity: "payment",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(count(s, "payments").await, 1);
    assert_eq!(count(s, "chain_txs").await, 1);
}

async fn payment_and_outbox_are_atomic(ctx: Ctx) {
    let s = &ctx.store;
    let m = merchant(s).await;

    // 1. A failure after the payment row was written (the outbox row violates a foreign key)
    //    leaves nothing behind.
    let mut tx = s.begin().await.unwrap();
    let (p, _) = tx.insert_payment(&new_payment(m, 1), None).await.unwrap();
    let mut bad = new_tx(TxKind::Authorize);
    bad.payment_id = Some(uuid::Uuid::now_v7()); // no such payment
    assert!(tx.enqueue_tx(&bad).await.is_err());
    drop(tx);
    assert_eq!(count(s, "payments").await, 0);
    assert_eq!(count(s, "chain_txs").await, 0);
    assert!(matches!(
        s.get_payment(p.id).await,
        Err(StoreError::NotFound { .. })
    ));

    // 2. A transaction that dies before commit (e.g. the process is killed) leaves nothing.
    let mut tx = s.begin().await.unwrap();
    tx.insert_payment(&new_payment(m, 2), Some(&new_tx(TxKind::Authorize)))
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(count(s, "payments").await, 0);
    assert_eq!(count(s, "chain_txs").await, 0);

    // 3. The same through a transition: an outbox row that fails takes the status change with it.
    let (p, _) = s.insert_payment(&new_payment(m, 3), None).await.unwrap();
    let p = confirm(s, p.id, 500, None).await.payment;
    let mut tx = s.begin().await.unwrap();
    tx.transition_payment(
        p.id,
        p.version,
        &PaymentEvent::CaptureRequested { amount: 100 },
        TransitionExtras {
            webhook: Some(NewWebhookEvent::new("x", serde_json::json!({}))),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(tx.enqueue_tx(&bad).await.is_err());
    drop(tx);
    let after = s.get_payment(p.id).await.unwrap();
    assert_eq!(
        (after.status, after.version),
        (PaymentStatus::Authorized, p.version)
    );
    assert_eq!(count(s, "webhook_events").await, 0);
    assert_eq!(count(s, "webhook_deliveries").await, 0);

    // 4. And a committed one has both rows.
    let (p4, tx4) = s
        .insert_payment(&new_payment(m, 4), Some(&new_tx(TxKind::Authorize)))
        .await
        .unwrap();
    assert_eq!(tx4.unwrap().payment_id, Some(p4.id));
    assert_eq!(count(s, "payments").await, 2);
    assert_eq!(count(s, "chain_txs").await, 1);
}

async fn lifecycle_through_the_store(ctx: Ctx) {
    let s = &ctx.store;
    let m = merchant(s).await;
    let (p, _) = s
        .insert_payment(&new_payment(m, 1), Some(&new_tx(TxKind::Authorize)))
        .await
        .unwrap();

    ctx.clock.advance(10);
    let hook = NewWebhookEvent::new(
        "payment.authorized",
        serde_json::json!({ "request_id": "req-1" }),
    );
    let t = confirm(s, p.id, 1000, Some(hook.clone())).await;
    assert_eq!(
        (t.from, t.payment.status, t.payment.version),
        (PaymentStatus::Authorizing, PaymentStatus::Authorized, 1)
    );
    assert_eq!(t.payment.amounts.authorized, 1000);
    assert_eq!(t.payment.updated_at, T0 + 10);
    let event = t.webhook.unwrap();
    assert_eq!(
        (event.id, event.merchant_id, event.payment_id),
        (hook.id, m, Some(p.id))
    );
    assert_eq!(event.payload["request_id"], "req-1");
    let delivery = s.delivery_for_event(event.id).await.unwrap();
    assert_eq!((delivery.attempts, delivery.next_attempt_at), (0, T0 + 10));

    // Capture 400 of 1000 with its outbox row.
    let t = request_capture(s, p.id, 1, 400).await;
    let capture_tx = t.chain_tx.unwrap();
    assert_eq!(
        (capture_tx.kind, capture_tx.payment_id),
        (TxKind::Capture, Some(p.id))
    );
    let p2 = s.get_payment(p.id).await.unwrap();
    assert_eq!(p2.pending_tx_id, Some(capture_tx.id));
    let t = s
        .transition_payment_latest(
            p.id,
            &PaymentEvent::CaptureConfirmed { amount: 400 },
            TransitionExtras::default(),
            3,
        )
        .await
        .unwrap();
    assert_eq!(t.payment.version, p2.version + 1);
    assert_eq!(t.payment.status, PaymentStatus::PartiallyCaptured);
    assert_eq!(t.payment.pending_tx_id, None, "nothing in flight any more");
    let captured = Amounts {
        authorized: 1000,
        captured: 400,
        refunded: 0,
        released: 0,
    };
    assert_eq!(t.payment.amounts, captured);

    // A failed refund keeps the error code and message.
    let v = t.payment.version;
    transition(s, p.id, v, PaymentEvent::RefundRequested { amount: 100 })
        .await
        .unwrap();
    let t = s
        .transition_payment(
            p.id,
            v + 1,
            &PaymentEvent::RefundFailed {
                code: "AfterRefundExpiry".into(),
            },
            TransitionExtras {
                error_message: Some("refund window closed".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(t.payment.status, PaymentStatus::PartiallyCaptured);
    assert_eq!(
        t.payment.last_error_code.as_deref(),
        Some("AfterRefundExpiry")
    );
    assert_eq!(
        t.payment.last_error_message.as_deref(),
        Some("refund window closed")
    );

    // Void the rest.
    let v = t.payment.version;
    transition(s, p.id, v, PaymentEvent::VoidRequested)
        .await
        .unwrap();
    let t = transition(s, p.id, v + 1, PaymentEvent::VoidConfirmed { amount: 600 })
        .await
        .unwrap();
    assert_eq!(t.payment.status, PaymentStatus::Captured);
    // The failed refund left the amounts alone: the void released the rest.
    let released = Amounts {
        released: 600,
        ..captured
    };
    assert_eq!(t.payment.amounts, released);
    assert_eq!(s.webhook_events_for_payment(p.id).await.unwrap().len(), 1);
    assert_eq!(s.txs_for_payment(p.id).await.unwrap().len(), 2);

    // Huge amounts survive the decimal-text columns.
    let mut big = new_payment(m, 2);
    big.flow = x402_escrow_operator::lifecycle::Flow::Charge;
    let (b, _) = s.insert_payment(&big, None).await.unwrap();
    assert_eq!(b.status, PaymentStatus::Charging);
    let max = (1u128 << 120) - 1;
    let t = transition(s, b.id, 0, PaymentEvent::ChargeConfirmed { amount: max })
        .await
        .unwrap();
    assert_eq!(
        s.get_payment(b.id).await.unwrap().amounts,
        Amounts {
            authorized: max,
            captured: max,
            refunded: 0,
            released: 0
        }
    );
    assert_eq!(t.payment.status, PaymentStatus::Captured);
}

async fn illegal_and_stale_transitions_change_nothing(ctx: Ctx) {
    let s = &ctx.store;
    let m = merchant(s).await;
    let (p, _) = s.insert_payment(&new_payment(m, 1), None).await.unwrap();

    // Illegal: capture before authorization. Nothing written, not even the outbox row.
    let err = s
        .transition_payment(
            p.id,
            0,
            &PaymentEvent::CaptureRequested { amount: 1 },
            TransitionExtras {
                outbox: Some(new_tx(TxKind::Capture)),
                webhook: Some(NewWebhookEvent::new("x", serde_json::json!({}))),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::IllegalTransition(ref e) if e.from == PaymentStatus::Authorizing),
        "{err:?}"
    );
    assert_eq!(s.get_payment(p.id).await.unwrap(), p);
    assert_eq!(count(s, "chain_txs").await, 0);
    assert_eq!(count(s, "webhook_events").await, 0);

    // Stale version.
    confirm(s, p.id, 10, None).await;
    let err = transition(s, p.id, 0, PaymentEvent::VoidRequested)
        .await
        .unwrap_err();
    assert_stale_at_1(&err);
    assert!(err.is_retryable());

    // Over-capture is refused by the amount bookkeeping.
    let err = transition(s, p.id, 1, PaymentEvent::CaptureRequested { amount: 11 })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::IllegalTransition(_)), "{err:?}");

    // Unknown payment.
    let err = transition(s, uuid::Uuid::now_v7(), 0, PaymentEvent::VoidRequested)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }));
    let now = s.get_payment(p.id).await.unwrap();
    assert_eq!((now.status, now.version), (PaymentStatus::Authorized, 1));
}

/// `transition_from` decides on the caller's copy and writes only at its version: a stale copy
/// is a version mismatch (whether or not the event was legal for it), a current one gets the
/// lifecycle's verdict, and none of the refusals writes anything.
async fn transitions_from_a_copy_the_caller_read(ctx: Ctx) {
    let s = &ctx.store;
    let m = merchant(s).await;
    let (stale, _) = s.insert_payment(&new_payment(m, 1), None).await.unwrap();
    let current = confirm(s, stale.id, 10, None).await.payment;
    let no_extras = TransitionExtras::default;

    // Legal for the stale copy (authorizing → failed), but the row has moved on.
    let failed = PaymentEvent::AuthorizeFailed { code: "x".into() };
    let err = s
        .transition_from(&stale, &failed, no_extras())
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::VersionMismatch { expected: 0, .. }),
        "{err:?}"
    );
    // Illegal for the stale copy (capture while authorizing): still a mismatch, with the row's
    // version, not a verdict on a payment that is not like that any more.
    let capture = PaymentEvent::CaptureRequested { amount: 4 };
    let err = s
        .transition_from(&stale, &capture, no_extras())
        .await
        .unwrap_err();
    assert_stale_at_1(&err);
    // The current copy: the lifecycle's own refusal, then the transition itself.
    let err = s
        .transition_from(
            &current,
            &PaymentEvent::CaptureRequested { amount: 11 },
            no_extras(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::IllegalTransition(_)), "{err:?}");
    assert_eq!(s.get_payment(current.id).await.unwrap(), current);
    let done = s
        .transition_from(&current, &capture, no_extras())
        .await
        .unwrap();
    assert_eq!(
        (done.payment.status, done.payment.version, done.from),
        (PaymentStatus::Capturing, 2, PaymentStatus::Authorized)
    );
    assert_eq!(s.get_payment(current.id).await.unwrap(), done.payment);
}

/// `err` is the mismatch of a copy at version 0 against a row at version 1.
fn assert_stale_at_1(err: &StoreError) {
    assert!(
        matches!(
            err,
            StoreError::VersionMismatch {
                expected: 0,
                actual: Some(1),
                ..
            }
        ),
        "{err:?}"
    );
}

async fn concurrent_transitions_exactly_one_wins(ctx: Ctx) {
    let m = merchant(&ctx.store).await;
    for round in 0..3u64 {
        let (p, _) = ctx
            .store
            .insert_payment(&new_payment(m, round), None)
            .await
            .unwrap();
        let p = confirm(&ctx.store, p.id, 1000, None).await.payment;
        // Eight writers (two of them through a second instance's pool) read version 1 and race:
        // half want to capture, half to void. Exactly one may win.
        let second = ctx.second_instance().await;
        let mut tasks = Vec::new();
        for i in 0..8u32 {
            let store: Store = if i % 2 == 0 {
                ctx.store.clone()
            } else {
                second.clone()
            };
            let id = p.id;
            tasks.push(tokio::spawn(async move {
                let (event, kind) = if i % 2 == 0 {
                    (
                        PaymentEvent::CaptureRequested {
                            amount: 100 + u128::from(i),
                        },
                        TxKind::Capture,
                    )
                } else {
                    (PaymentEvent::VoidRequested, TxKind::Void)
                };
                store
                    .transition_payment(
                        id,
                        1,
                        &event,
                        TransitionExtras {
                            outbox: Some(new_tx(kind)),
                            ..Default::default()
                        },
                    )
                    .await
            }));
        }
        let mut wins = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => wins += 1,
                Err(StoreError::VersionMismatch { .. }) => {}
                Err(e) => panic!("unexpected error: {e:?}"),
            }
        }
        assert_eq!(wins, 1, "round {round}");
        let after = ctx.store.get_payment(p.id).await.unwrap();
        assert_eq!(after.version, 2);
        assert!(matches!(
            after.status,
            PaymentStatus::Capturing | PaymentStatus::Voiding
        ));
        assert_eq!(
            ctx.store.txs_for_payment(p.id).await.unwrap().len(),
            1,
            "only the winner's outbox row exists"
        );
        second.close().await;
    }
}

async fn sweeper_queries(ctx: Ctx) {
    let s = &ctx.store;
    let m = merchant(s).await;
    let mut ids = Vec::new();
    for seed in 0..4u64 {
        let mut n = new_payment(m, seed);
        n.capture_deadline_at = Some(T0 + 1000 * (seed as i64 + 1));
        n.info.authorization_expiry = 1_700_000_000 + 10 * (seed + 1);
        let (p, _) = s.insert_payment(&n, None).await.unwrap();
        ids.push(p.id);
    }
    // Only authorized holds are candidates; the first stays authorizing (in flight).
    for id in &ids[1..] {
        confirm(s, *id, 5, None).await;
    }
    let due = s.payments_due_for_auto_void(T0 + 3000, 10).await.unwrap();
    assert_eq!(
        due.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![ids[1], ids[2]]
    );
    let expired = s
        .payments_past_authorization_expiry(1_700_000_030, 10)
        .await
        .unwrap();
    assert_eq!(
        expired.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![ids[1], ids[2]]
    );
    let in_flight = s.payments_in_flight(10).await.unwrap();
    assert_eq!(
        in_flight.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![ids[0]]
    );
}

/// How long the idempotency tests keep keys (a day) and lock in-flight ones (a minute).
const IDEM_RETENTION_MS: i64 = 24 * 3600 * 1000;
const IDEM_LOCK_MS: i64 = 60_000;

/// `merchant` begins a request under `key` with fingerprint `fp`.
async fn begin(s: &Store, merchant: uuid::Uuid, key: &str, fp: &str) -> IdempotencyBegin {
    s.idempotency_begin(merchant, key, fp, IDEM_RETENTION_MS, IDEM_LOCK_MS)
        .await
        .unwrap()
}

async fn idempotency_key_states(ctx: Ctx) {
    let s = &ctx.store;
    let m = merchant(s).await;
    let m2 = second_merchant(s, "two").await;
    let fp = request_fingerprint("POST", "/v1/payments/authorize", b"{\"a\":1}");
    let other_fp = request_fingerprint("POST", "/v1/payments/authorize", b"{\"a\":2}");

    assert_eq!(begin(s, m, "k", &fp).await, IdempotencyBegin::Started);
    assert_eq!(begin(s, m, "k", &fp).await, IdempotencyBegin::InFlight);
    assert_eq!(
        begin(s, m, "k", &other_fp).await,
        IdempotencyBegin::Mismatch
    );
    // Keys are scoped per merchant.
    assert_eq!(
        begin(s, m2, "k", &other_fp).await,
        IdempotencyBegin::Started
    );

    s.idempotency_complete(
        m,
        "k",
        402,
        "{\"error\":{\"code\":\"insufficient_balance\"}}",
    )
    .await
    .unwrap();
    assert_eq!(
        begin(s, m, "k", &fp).await,
        IdempotencyBegin::Completed {
            response_status: 402,
            response_body: "{\"error\":{\"code\":\"insufficient_balance\"}}".into()
        }
    );
    assert_eq!(
        begin(s, m, "k", &other_fp).await,
        IdempotencyBegin::Mismatch
    );
    // Completing twice is refused.
    assert!(matches!(
        s.idempotency_complete(m, "k", 200, "{}").await,
        Err(StoreError::NotFound { .. })
    ));

    // An in-flight request whose process died: after the lock time a retry takes over.
    assert_eq!(begin(s, m, "crashed", &fp).await, IdempotencyBegin::Started);
    ctx.clock.advance(IDEM_LOCK_MS - 1);
    assert_eq!(
        begin(s, m, "crashed", &fp).await,
        IdempotencyBegin::InFlight
    );
    ctx.clock.advance(1);
    assert_eq!(
        begin(s, m, "crashed", &other_fp).await,
        IdempotencyBegin::Mismatch
    );
    assert_eq!(begin(s, m, "crashed", &fp).await, IdempotencyBegin::Started);
    assert_eq!(
        begin(s, m, "crashed", &fp).await,
        IdempotencyBegin::InFlight
    );

    // Release lets a retry start at once.
    assert!(s.idempotency_release(m, "crashed").await.unwrap());
    assert!(!s.idempotency_release(m, "crashed").await.unwrap());
    assert_eq!(
        begin(s, m, "crashed", &other_fp).await,
        IdempotencyBegin::Started
    );

    // Completion inside a caller's transaction (atomic with the work it records).
    let mut tx = s.begin().await.unwrap();
    tx.idempotency_complete(m, "crashed", 201, "{}")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(matches!(
        begin(s, m, "crashed", &other_fp).await,
        IdempotencyBegin::Completed {
            response_status: 201,
            ..
        }
    ));

    // After the retention period records expire: a late retry starts afresh.
    ctx.clock.advance(IDEM_RETENTION_MS);
    assert_eq!(begin(s, m, "k", &other_fp).await, IdempotencyBegin::Started);
    let removed = s.idempotency_expire().await.unwrap();
    assert_eq!(removed, 2, "m2/k and m/crashed expired; m/k was renewed");
    assert_eq!(count(s, "idempotency_keys").await, 1);
}

async fn idempotency_concurrent_begin_one_starts(ctx: Ctx) {
    let m = merchant(&ctx.store).await;
    let fp = request_fingerprint("POST", "/v1/payments/x/capture", b"{}");
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = ctx.store.clone();
        let fp = fp.clone();
        tasks.push(tokio::spawn(async move {
            store
                .idempotency_begin(m, "same", &fp, 86_400_000, 60_000)
                .await
        }));
    }
    let mut started = 0;
    let mut in_flight = 0;
    for t in tasks {
        match t.await.unwrap().unwrap() {
            IdempotencyBegin::Started => started += 1,
            IdempotencyBegin::InFlight => in_flight += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((started, in_flight), (1, 7));
}

/// Group commit (`Store::grouped`): writes that queue while a group runs go out together in the
/// next one, one commit for all; each caller gets its own answer (a failing write is rolled
/// back alone), and a write sees the ones before it in its group.
async fn writes_waiting_together_share_one_transaction(ctx: Ctx) {
    const DAY: i64 = 86_400_000;
    const LOCK: i64 = 60_000;
    let s = &ctx.store;
    let m = merchant(s).await;
    let fp = request_fingerprint("POST", "/v1/payments/authorize", b"{}");
    // A first write holds its group open until the others have queued behind it.
    let (started_tx, started) = tokio::sync::oneshot::channel();
    let (go, go_rx) = tokio::sync::oneshot::channel::<()>();
    let first = tokio::spawn({
        let (s, fp) = (s.clone(), fp.clone());
        async move {
            s.grouped(move |tx| {
                Box::pin(async move {
                    let _ = started_tx.send(());
                    let _ = go_rx.await;
                    tx.idempotency_begin(m, "first", &fp, DAY, LOCK).await
                })
            })
            .await
        }
    });
    started.await.expect("the first write runs");
    let before = s.write_count();
    let begin = |key: &'static str| s.idempotency_begin(m, key, &fp, DAY, LOCK);
    let missing = uuid::Uuid::now_v7();
    // A write that writes, then fails: undone back to its own savepoint, in the middle of the
    // group (the writes before and after it stay).
    let doomed = s.grouped({
        let fp = fp.clone();
        move |tx| {
            Box::pin(async move {
                tx.idempotency_begin(m, "doomed", &fp, DAY, LOCK).await?;
                Err::<(), _>(StoreError::Conflict {
                    entity: "test write",
                    detail: "fails after writing".into(),
                })
            })
        }
    });
    // `join!` polls each in order once before any completes: all are queued before `go`.
    let (a, b, failing, doomed, again, c, ()) = tokio::join!(
        begin("a"),
        begin("b"),
        s.transition_payment(
            missing,
            1,
            &PaymentEvent::VoidRequested,
            TransitionExtras::default()
        ),
        doomed,
        begin("a"),
        begin("c"),
        async {
            let _ = go.send(());
        },
    );
    assert_eq!(
        first.await.expect("joined").expect("first"),
        IdempotencyBegin::Started
    );
    assert_eq!(a.expect("a"), IdempotencyBegin::Started);
    assert_eq!(b.expect("b"), IdempotencyBegin::Started);
    assert!(
        matches!(failing, Err(StoreError::NotFound { .. })),
        "{failing:?}"
    );
    assert!(
        matches!(doomed, Err(StoreError::Conflict { .. })),
        "{doomed:?}"
    );
    assert_eq!(
        again.expect("a again"),
        IdempotencyBegin::InFlight,
        "the second `a` saw the first, written earlier in the same group"
    );
    assert_eq!(
        c.expect("c"),
        IdempotencyBegin::Started,
        "a write after a failed one runs and commits"
    );
    assert_eq!(
        s.write_count(),
        before + 2,
        "two commits: the first write's group, then the six that waited"
    );
    assert_eq!(count(s, "idempotency_keys").await, 4, "first, a, b, c");
    assert_eq!(
        count(s, "idempotency_keys WHERE idem_key = 'doomed'").await,
        0,
        "the failed write's own row was undone"
    );

    // A failing write alone in its group: its own error, what it wrote is undone, and nothing
    // is committed (no savepoint, the transaction is rolled back).
    let lone = s
        .grouped(move |tx| {
            Box::pin(async move {
                tx.idempotency_begin(m, "lone", &fp, DAY, LOCK).await?;
                Err::<(), _>(StoreError::Conflict {
                    entity: "test write",
                    detail: "fails after writing".into(),
                })
            })
        })
        .await;
    assert!(matches!(lone, Err(StoreError::Conflict { .. })), "{lone:?}");
    assert_eq!(s.write_count(), before + 2, "nothing committed");
    assert_eq!(
        count(s, "idempotency_keys").await,
        4,
        "its key was rolled back"
    );
    // The next lone write commits as usual.
    assert_eq!(
        s.idempotency_begin(
            m,
            "after",
            &request_fingerprint("POST", "/x", b""),
            DAY,
            LOCK
        )
        .await
        .expect("after"),
        IdempotencyBegin::Started
    );
    assert_eq!(s.write_count(), before + 3);
}

/// `GET /v1/payments` in the store: keyset pages newest first by (created_at, id), every
/// filter, amounts compared as numbers, and never another merchant's payment.
async fn payment_pages_filter_and_stay_stable(ctx: Ctx) {
    let s = &ctx.store;
    let m = merchant(s).await;
    let other = second_merchant(s, "other").await;
    // Amounts of different lengths: as text, "9" > "10" > "100"; as numbers, the reverse.
    let amounts: [u128; 8] = [9, 10, 100, 1_000_000, 99, 5, 1_000_001, 10];
    let mut mine = Vec::new();
    for (i, amount) in amounts.into_iter().enumerate() {
        let seed = u64::try_from(i).unwrap();
        let mut new = new_payment(m, seed);
        new.amount = amount;
        new.info.payer = addr(if i % 2 == 0 { 0x01 } else { 0x02 });
        new.request_id = Some(if i < 3 {
            "shared".into()
        } else {
            format!("req-{i}")
        });
        let (p, _) = s.insert_payment(&new, None).await.unwrap();
        mine.push(p);
        // Pairs share a millisecond: the id breaks the tie.
        if i % 2 == 1 {
            ctx.clock.advance(1000);
        }
        let mut theirs = new_payment(other, 100 + seed);
        theirs.request_id = Some("shared".into());
        s.insert_payment(&theirs, None).await.unwrap();
    }
    // Some authorized, one of them then captured.
    for p in [&mine[1], &mine[4], &mine[6]] {
        confirm(s, p.id, p.amount, None).await;
    }
    request_capture(s, mine[6].id, 1, 1).await;
    let mut newest_first: Vec<_> = mine.iter().map(|p| (p.created_at, p.id)).collect();
    newest_first.sort();
    newest_first.reverse();
    let newest_first: Vec<_> = newest_first.into_iter().map(|(_, id)| id).collect();

    let ids = |page: &x402_escrow_operator::store::Page<x402_escrow_operator::store::Payment>| {
        page.items.iter().map(|p| p.id).collect::<Vec<_>>()
    };
    let all_pages = |query: PaymentQuery| async move {
        let mut query = query;
        let mut out = Vec::new();
        loop {
            let page = s.page_payments(m, &query).await.unwrap();
            assert!(page.items.len() <= query.limit as usize);
            out.extend(ids(&page));
            match page.next {
                Some(next) => query.cursor = Some(next),
                None => break,
            }
        }
        out
    };

    // Pages of 3: this merchant's payments, each once, newest first.
    let first_page = s
        .page_payments(
            m,
            &PaymentQuery {
                limit: 3,
                ..PaymentQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(ids(&first_page), newest_first[..3].to_vec());
    assert_eq!(
        all_pages(PaymentQuery {
            limit: 3,
            ..PaymentQuery::default()
        })
        .await,
        newest_first
    );
    // The last page has no cursor; an exact fit too.
    let eight = s
        .page_payments(
            m,
            &PaymentQuery {
                limit: 8,
                ..PaymentQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((eight.items.len(), eight.next), (8, None));

    // Stable: a payment created after the first page does not shift the second.
    ctx.clock.advance(1000);
    let (extra, _) = s.insert_payment(&new_payment(m, 50), None).await.unwrap();
    assert_eq!(extra.amount, 1_000_000);
    let second = s
        .page_payments(
            m,
            &PaymentQuery {
                limit: 3,
                cursor: first_page.next,
                ..PaymentQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(ids(&second), newest_first[3..6].to_vec());

    // Each filter, also across pages.
    let pick = |keep: &dyn Fn(usize) -> bool| {
        newest_first
            .iter()
            .filter(|id| keep(mine.iter().position(|p| p.id == **id).unwrap()))
            .copied()
            .collect::<Vec<_>>()
    };
    let authorized = PaymentQuery {
        statuses: vec![PaymentStatus::Authorized],
        limit: 1,
        ..PaymentQuery::default()
    };
    assert_eq!(all_pages(authorized).await, pick(&|i| i == 1 || i == 4));
    let either = PaymentQuery {
        statuses: vec![PaymentStatus::Authorized, PaymentStatus::Capturing],
        ..PaymentQuery::default()
    };
    assert_eq!(all_pages(either).await, pick(&|i| [1, 4, 6].contains(&i)));
    let shared = PaymentQuery {
        request_id: Some("shared".into()),
        limit: 2,
        ..PaymentQuery::default()
    };
    assert_eq!(all_pages(shared).await, pick(&|i| i < 3));
    let payer = PaymentQuery {
        payer: Some(addr(0x02)),
        ..PaymentQuery::default()
    };
    assert_eq!(all_pages(payer).await, pick(&|i| i % 2 == 1));
    let (from, to) = (mine[2].created_at, mine[6].created_at);
    let window = PaymentQuery {
        created_after: Some(from),
        created_before: Some(to),
        ..PaymentQuery::default()
    };
    assert_eq!(
        all_pages(window).await,
        pick(&|i| mine[i].created_at > from && mine[i].created_at < to)
    );
    let range = PaymentQuery {
        min_amount: Some(10),
        max_amount: Some(100),
        limit: 2,
        ..PaymentQuery::default()
    };
    assert_eq!(
        all_pages(range).await,
        pick(&|i| (10..=100).contains(&amounts[i]))
    );
    let big = PaymentQuery {
        min_amount: Some(1_000_000),
        ..PaymentQuery::default()
    };
    // The payment added after the first page is the newest, and as big.
    let mut expected = vec![extra.id];
    expected.extend(pick(&|i| amounts[i] >= 1_000_000));
    assert_eq!(all_pages(big).await, expected);
    let small = PaymentQuery {
        max_amount: Some(9),
        ..PaymentQuery::default()
    };
    assert_eq!(all_pages(small).await, pick(&|i| amounts[i] <= 9));

    // Another merchant's: never, whatever the filters or cursor.
    let theirs = s
        .page_payments(
            other,
            &PaymentQuery {
                limit: 100,
                ..PaymentQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(theirs.items.len(), 8);
    assert!(theirs.items.iter().all(|p| p.merchant_id == other));
    let cursor_into_theirs = PaymentQuery {
        cursor: Some(PageCursor {
            created_at: i64::MAX,
            id: theirs.items[0].id,
        }),
        request_id: Some("shared".into()),
        ..PaymentQuery::default()
    };
    assert!(
        all_pages(cursor_into_theirs)
            .await
            .iter()
            .all(|id| mine.iter().any(|p| p.id == *id))
    );
}
