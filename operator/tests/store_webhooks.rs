//! Store suite, part 3: webhook events and deliveries (claims with a lease, exclusivity under
//! concurrency, retry scheduling, 410), plus the in-memory SQLite smoke test. Every suite test runs
//! on SQLite and on PostgreSQL.

mod store_support;

use std::collections::HashSet;

use store_support::*;
use uuid::Uuid;
use x402_escrow_operator::store::{
    ClaimedDelivery, DeliveryOutcome, DeliveryStatus, NewWebhookEvent, Store, StoreError,
    WebhookDelivery,
};
use x402_escrow_types::{EventQuery, PageCursor};

store_tests!(
    delivery_retry_schedule,
    delivery_lock_expiry_hands_over,
    concurrent_claimers_never_share_a_delivery,
    gone_disables_the_endpoint,
    give_up,
    events_are_numbered_per_payment_and_sent_in_order,
    event_pages_replay_in_order_and_stay_with_their_merchant,
);

const LOCK: i64 = 30_000;

async fn delivery_retry_schedule(ctx: Ctx) {
    let s = &ctx.store;
    let m = merchant(s).await;
    let (p, _) = s.insert_payment(&new_payment(m, 1), None).await.unwrap();
    let hook = NewWebhookEvent::new(
        "payment.authorized",
        serde_json::json!({ "id": "x", "request_id": "req-1" }),
    );
    confirm(s, p.id, 5, Some(hook.clone())).await;

    let claimed = s.claim_due_deliveries("w1", 10, LOCK).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let c = &claimed[0];
    assert_eq!(
        (c.event.id, c.event.event_type.as_str()),
        (hook.id, "payment.authorized")
    );
    // The stored body is the hook's, numbered as the payment's first event.
    let mut numbered = hook.payload.clone();
    numbered["sequence"] = serde_json::json!(1);
    assert_eq!(c.event.payload, numbered);
    assert_eq!(c.event.sequence, Some(1));
    assert_eq!(
        (
            c.delivery.attempts,
            c.delivery.locked_by.as_deref(),
            c.delivery.locked_until
        ),
        (1, Some("w1"), Some(T0 + LOCK))
    );
    // Locked: nobody else gets it.
    assert_nothing_due(s, "w2", 10, "locked by w1").await;

    // 500 → retry in 5 s.
    let d = s
        .record_delivery(
            c.delivery.id,
            "w1",
            &DeliveryOutcome::Retry {
                response_status: Some(500),
                error: "HTTP 500".into(),
                next_attempt_at: T0 + 5000,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (d.status, d.response_status, d.next_attempt_at, d.locked_by),
        (DeliveryStatus::Pending, Some(500), T0 + 5000, None)
    );
    assert_eq!(d.last_error.as_deref(), Some("HTTP 500"));
    // Recording again without a claim is refused.
    assert!(matches!(
        delivered(s, c.delivery.id, "w1", 200).await,
        Err(StoreError::ClaimLost { .. })
    ));
    // Not due yet.
    ctx.clock.advance(4999);
    assert_nothing_due(s, "w1", 10, "not due yet").await;
    ctx.clock.advance(1);
    let again = s.claim_due_deliveries("w2", 10, LOCK).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].delivery.attempts, 2);
    let d = delivered(s, again[0].delivery.id, "w2", 204).await.unwrap();
    assert_eq!(
        (d.status, d.response_status, d.delivered_at),
        (DeliveryStatus::Delivered, Some(204), Some(T0 + 5000))
    );
    assert_eq!(s.delivery_for_event(hook.id).await.unwrap(), d);
    ctx.clock.advance(3_600_000);
    assert_nothing_due(s, "w1", 10, "delivered is done").await;
    assert_eq!(s.pending_delivery_count().await.unwrap(), 0);
    assert_eq!(
        s.get_webhook_event(hook.id).await.unwrap().payment_id,
        Some(p.id)
    );
}

async fn delivery_lock_expiry_hands_over(ctx: Ctx) {
    let s = &ctx.store;
    let m = merchant(s).await;
    let e = s
        .enqueue_webhook(
            m,
            None,
            &NewWebhookEvent::new("payment.voided", serde_json::json!({})),
        )
        .await
        .unwrap();
    let first = s.claim_due_deliveries("w1", 1, LOCK).await.unwrap();
    assert_eq!(first[0].event.id, e.id);
    // w1 crashes mid-delivery; after its lock runs out w2 takes the row over.
    ctx.clock.advance(LOCK - 1);
    assert_nothing_due(s, "w2", 1, "w1 still holds the lock").await;
    ctx.clock.advance(1);
    let second = s.claim_due_deliveries("w2", 1, LOCK).await.unwrap();
    assert_eq!(second[0].delivery.id, first[0].delivery.id);
    assert_eq!(second[0].delivery.attempts, 2, "the crashed attempt counts");
    // w1 comes back late: its result is refused; w2's is kept.
    assert!(matches!(
        delivered(s, first[0].delivery.id, "w1", 200).await,
        Err(StoreError::ClaimLost { .. })
    ));
    delivered(s, second[0].delivery.id, "w2", 200)
        .await
        .unwrap();
}

async fn concurrent_claimers_never_share_a_delivery(ctx: Ctx) {
    const EVENTS: usize = 40;
    let s = &ctx.store;
    let m = merchant(s).await;
    let mut expected = HashSet::new();
    for i in 0..EVENTS {
        let e = s
            .enqueue_webhook(
                m,
                None,
                &NewWebhookEvent::new("payment.captured", serde_json::json!({ "i": i })),
            )
            .await
            .unwrap();
        expected.insert(e.id);
    }
    let second = ctx.second_instance().await;
    let mut workers = Vec::new();
    for w in 0..6 {
        let store: Store = if w % 2 == 0 {
            s.clone()
        } else {
            second.clone()
        };
        workers.push(tokio::spawn(async move {
            let name = format!("w{w}");
            let mut got = Vec::new();
            loop {
                let batch = store.claim_due_deliveries(&name, 3, LOCK).await.unwrap();
                if batch.is_empty() {
                    break;
                }
                for c in batch {
                    assert_eq!(c.delivery.locked_by.as_deref(), Some(name.as_str()));
                    delivered(&store, c.delivery.id, &name, 200).await.unwrap();
                    got.push(c.event.id);
                }
            }
            got
        }));
    }
    let mut seen = HashSet::new();
    let mut total = 0;
    for w in workers {
        for id in w.await.unwrap() {
            total += 1;
            assert!(seen.insert(id), "event {id} delivered twice");
        }
    }
    assert_eq!(total, EVENTS);
    assert_eq!(seen, expected);
    assert_eq!(s.pending_delivery_count().await.unwrap(), 0);
    second.close().await;
}

/// `worker` records `delivery` as delivered with the HTTP `status`.
async fn delivered(
    s: &Store,
    delivery: Uuid,
    worker: &str,
    status: u16,
) -> Result<WebhookDelivery, StoreError> {
    s.record_delivery(
        delivery,
        worker,
        &DeliveryOutcome::Delivered {
            response_status: status,
        },
    )
    .await
}

/// `worker` finds nothing due (at most `limit` asked for); `why` says why.
async fn assert_nothing_due(s: &Store, worker: &str, limit: u32, why: &str) {
    let due = s.claim_due_deliveries(worker, limit, LOCK).await.unwrap();
    assert!(due.is_empty(), "{why}: {due:?}");
}

/// A merchant with one `event_type` event enqueued, its delivery claimed by `w1`.
async fn one_claimed(s: &Store, event_type: &str) -> (Uuid, ClaimedDelivery) {
    let m = merchant(s).await;
    s.enqueue_webhook(
        m,
        None,
        &NewWebhookEvent::new(event_type, serde_json::json!({})),
    )
    .await
    .unwrap();
    let c = s
        .claim_due_deliveries("w1", 1, LOCK)
        .await
        .unwrap()
        .remove(0);
    (m, c)
}

async fn gone_disables_the_endpoint(ctx: Ctx) {
    let s = &ctx.store;
    let (m, c) = one_claimed(s, "payment.refunded").await;
    ctx.clock.advance(5);
    let d = s
        .record_delivery(c.delivery.id, "w1", &DeliveryOutcome::Gone)
        .await
        .unwrap();
    assert_eq!(
        (d.status, d.response_status),
        (DeliveryStatus::Disabled, Some(410))
    );
    assert_eq!(
        s.get_merchant(m).await.unwrap().webhook_disabled_at,
        Some(T0 + 5)
    );
    // Setting the webhook again re-enables it.
    s.set_merchant_webhook(m, Some("http://127.0.0.1:9/new".into()), None)
        .await
        .unwrap();
    assert_eq!(s.get_merchant(m).await.unwrap().webhook_disabled_at, None);
}

async fn give_up(ctx: Ctx) {
    let s = &ctx.store;
    let (_, c) = one_claimed(s, "payment.failed").await;
    let d = s
        .record_delivery(
            c.delivery.id,
            "w1",
            &DeliveryOutcome::GiveUp {
                response_status: None,
                error: "connection refused".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(d.status, DeliveryStatus::Failed);
    ctx.clock.advance(86_400_000);
    assert_nothing_due(s, "w1", 1, "given up").await;
}

/// `sqlite::memory:` works as a real (single-connection) store: migrations, writes, reads.
#[tokio::test]
async fn sqlite_in_memory_smoke() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    let m = merchant(&store).await;
    let (p, tx) = store
        .insert_payment(
            &new_payment(m, 1),
            Some(&new_tx(x402_escrow_operator::store::TxKind::Authorize)),
        )
        .await
        .unwrap();
    assert_eq!(store.get_payment(p.id).await.unwrap(), p);
    assert_eq!(tx.unwrap().payment_id, Some(p.id));
    // A second store on `sqlite::memory:` is a different, empty database.
    let other = Store::connect("sqlite::memory:").await.unwrap();
    other.migrate().await.unwrap();
    assert!(
        other
            .payment_by_hash(p.payment_hash)
            .await
            .unwrap()
            .is_none()
    );
}

/// An event for payment `payment` of `merchant`, written on its own.
async fn event_for(s: &Store, merchant: Uuid, payment: Uuid, kind: &str) -> Uuid {
    let hook = NewWebhookEvent::new(kind, serde_json::json!({ "id": "x", "type": kind }));
    s.enqueue_webhook(merchant, Some(payment), &hook)
        .await
        .expect("enqueue");
    hook.id
}

/// The event ids of a claim.
fn claimed_events(claimed: &[ClaimedDelivery]) -> HashSet<Uuid> {
    claimed.iter().map(|c| c.event.id).collect()
}

async fn events_are_numbered_per_payment_and_sent_in_order(ctx: Ctx) {
    let s = &ctx.store;
    let m = merchant(s).await;
    let (p1, _) = s.insert_payment(&new_payment(m, 1), None).await.unwrap();
    let (p2, _) = s.insert_payment(&new_payment(m, 2), None).await.unwrap();
    let a1 = event_for(s, m, p1.id, "payment.authorized").await;
    let a2 = event_for(s, m, p1.id, "payment.captured").await;
    let a3 = event_for(s, m, p1.id, "payment.refunded").await;
    let b1 = event_for(s, m, p2.id, "payment.authorized").await;
    let loose = NewWebhookEvent::new("merchant.note", serde_json::json!({ "id": "n" }));
    s.enqueue_webhook(m, None, &loose).await.unwrap();

    // Numbered 1, 2, 3 per payment, in the column and in the body; none without a payment.
    for (event, n) in [(a1, 1), (a2, 2), (a3, 3), (b1, 1)] {
        let stored = s.get_webhook_event(event).await.unwrap();
        assert_eq!(stored.sequence, Some(n));
        assert_eq!(stored.payload["sequence"], n);
    }
    let stored = s.get_webhook_event(loose.id).await.unwrap();
    assert_eq!(
        (stored.sequence, stored.payload.get("sequence")),
        (None, None)
    );

    // Only the first pending event of each payment is claimable (plus the loose one).
    let claimed = s.claim_due_deliveries("w1", 10, LOCK).await.unwrap();
    assert_eq!(claimed_events(&claimed), HashSet::from([a1, b1, loose.id]));
    // The first fails and waits for a retry: the second still waits behind it, even once the
    // first's lock is gone.
    let first = claimed.iter().find(|c| c.event.id == a1).unwrap();
    s.record_delivery(
        first.delivery.id,
        "w1",
        &DeliveryOutcome::Retry {
            response_status: Some(500),
            error: "HTTP 500".into(),
            next_attempt_at: T0 + 5000,
        },
    )
    .await
    .unwrap();
    assert_nothing_due(s, "w2", 10, "a1 retrying, a2 and a3 behind it").await;
    // The retry is due: a1 again, still alone.
    ctx.clock.advance(5000);
    let claimed = s.claim_due_deliveries("w2", 10, LOCK).await.unwrap();
    assert_eq!(claimed_events(&claimed), HashSet::from([a1]));
    delivered(s, claimed[0].delivery.id, "w2", 200)
        .await
        .unwrap();
    // Then a2, and only after it a3.
    let claimed = s.claim_due_deliveries("w2", 10, LOCK).await.unwrap();
    assert_eq!(claimed_events(&claimed), HashSet::from([a2]));
    delivered(s, claimed[0].delivery.id, "w2", 200)
        .await
        .unwrap();
    let claimed = s.claim_due_deliveries("w2", 10, LOCK).await.unwrap();
    assert_eq!(claimed_events(&claimed), HashSet::from([a3]));
}

async fn event_pages_replay_in_order_and_stay_with_their_merchant(ctx: Ctx) {
    let s = &ctx.store;
    let m = merchant(s).await;
    let other = second_merchant(s, "other").await;
    let (p1, _) = s.insert_payment(&new_payment(m, 1), None).await.unwrap();
    let (p2, _) = s.insert_payment(&new_payment(m, 2), None).await.unwrap();
    let (q, _) = s
        .insert_payment(&new_payment(other, 3), None)
        .await
        .unwrap();
    let mut mine = Vec::new();
    for (payment, kind) in [
        (p1.id, "payment.authorized"),
        (p2.id, "payment.authorized"),
        (p1.id, "payment.captured"),
    ] {
        mine.push(event_for(s, m, payment, kind).await);
        // Two events in the same millisecond are ordered by id.
        mine.push(event_for(s, m, payment, "payment.refunded").await);
        ctx.clock.advance(10);
        event_for(s, other, q.id, kind).await;
    }

    // Page by page (2 at a time), oldest first: exactly this merchant's, in order.
    let mut seen = Vec::new();
    let mut query = EventQuery {
        limit: 2,
        ..EventQuery::default()
    };
    loop {
        let page = s.page_webhook_events(m, &query).await.unwrap();
        if page.items.is_empty() {
            assert_eq!(page.next, None);
            break;
        }
        assert!(page.items.len() <= 2);
        seen.extend(page.items.iter().map(|e| e.id));
        query.after = page.next;
    }
    assert_eq!(seen, mine);

    // Replay from a cursor in the middle: the events after it, and new ones when they come.
    let third = s.get_webhook_event(mine[2]).await.unwrap();
    let from_third = EventQuery {
        after: Some(PageCursor {
            created_at: third.created_at,
            id: third.id,
        }),
        ..EventQuery::default()
    };
    let page = s.page_webhook_events(m, &from_third).await.unwrap();
    let ids: Vec<Uuid> = page.items.iter().map(|e| e.id).collect();
    assert_eq!(ids, mine[3..].to_vec());
    let tail = EventQuery {
        after: page.next,
        ..EventQuery::default()
    };
    assert!(
        s.page_webhook_events(m, &tail)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    ctx.clock.advance(10);
    let newer = event_for(s, m, p2.id, "payment.voided").await;
    let page = s.page_webhook_events(m, &tail).await.unwrap();
    assert_eq!(
        page.items.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![newer]
    );

    // Filters: one payment, some types.
    let by_payment = EventQuery {
        payment_id: Some(p2.id),
        ..EventQuery::default()
    };
    let page = s.page_webhook_events(m, &by_payment).await.unwrap();
    assert_eq!(
        page.items.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![mine[2], mine[3], newer]
    );
    let by_type = EventQuery {
        event_types: vec!["payment.captured".into(), "payment.voided".into()],
        ..EventQuery::default()
    };
    let page = s.page_webhook_events(m, &by_type).await.unwrap();
    assert_eq!(
        page.items.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![mine[4], newer]
    );
    // Another merchant's payment id finds nothing.
    let theirs = EventQuery {
        payment_id: Some(q.id),
        ..EventQuery::default()
    };
    assert!(
        s.page_webhook_events(m, &theirs)
            .await
            .unwrap()
            .items
            .is_empty()
    );
}
