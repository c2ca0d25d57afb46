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

store_tests!(
    delivery_retry_schedule,
    delivery_lock_expiry_hands_over,
    concurrent_claimers_never_share_a_delivery,
    gone_disables_the_endpoint,
    give_up,
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
    assert_eq!(c.event.payload, hook.payload);
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
