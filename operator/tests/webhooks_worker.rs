//! The webhook delivery worker against a local receiver (axum on 127.0.0.1) that verifies every
//! request with the SDK's `verify_event` and records what it got. Every test runs on a fresh
//! SQLite file and on a fresh PostgreSQL database (tests/store_support).
//!
//! The worker stores use the wall clock (retry schedules in milliseconds must really elapse), on
//! the harness's fresh database. Waits are bounded polls; nothing asserts how fast anything is.

mod store_support;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use store_support::*;
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;
use uuid::Uuid;
use x402_escrow_operator::config::Secret;
use x402_escrow_operator::store::{
    DeliveryStatus, ENDPOINT_DISABLED, NO_ENDPOINT, NewMerchant, Store, WebhookDelivery,
    system_now_ms,
};
use x402_escrow_operator::webhooks::{WebhookWorker, WebhookWorkerConfig, new_webhook_event};
use x402_escrow_sdk::webhooks::{
    self as sdk, PaymentEventData, WebhookEvent, WebhookEventType, WebhookSecret,
};

store_tests!(
    delivered_once_with_signed_headers,
    failing_receiver_is_retried_with_backoff_until_delivered,
    receiver_down_then_up_loses_nothing,
    gone_disables_the_endpoint,
    two_workers_deliver_each_event_exactly_once,
    crashed_worker_claim_is_retried_after_lock_expiry,
    gives_up_after_the_last_attempt,
    merchant_without_endpoint_is_not_sent,
    notify_wakes_an_idle_worker,
    a_payments_second_event_waits_for_its_first,
    a_rotated_secret_signs_beside_the_old_one_until_the_grace_ends,
    redelivery_sends_an_event_again_and_a_stopped_endpoint_gets_nothing,
);

// ---- receiver ------------------------------------------------------------------------------

/// How the receiver answers.
#[derive(Clone, Copy)]
enum Plan {
    /// This status, always.
    Always(u16),
    /// 500 for the first `n` requests, then 200.
    FailFirst(usize),
    /// The first request never gets an answer; later ones 200.
    HangFirst,
}

/// One request as received.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    content_type: Option<String>,
    verified: Result<(), String>,
    event: Option<WebhookEvent>,
    answered: u16,
    at: Instant,
    at_ms: i64,
}

struct ReceiverState {
    secret: WebhookSecret,
    plan: Plan,
    got: Mutex<Vec<Received>>,
}

#[derive(Clone)]
struct Receiver {
    state: Arc<ReceiverState>,
    url: String,
}

impl Receiver {
    fn got(&self) -> Vec<Received> {
        self.state.got.lock().unwrap().clone()
    }

    fn count(&self) -> usize {
        self.state.got.lock().unwrap().len()
    }
}

async fn receive(
    State(state): State<Arc<ReceiverState>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let now = u64::try_from(system_now_ms() / 1000).unwrap();
    let verified = sdk::verify_event(
        std::slice::from_ref(&state.secret),
        &headers,
        &body,
        now,
        sdk::DEFAULT_TOLERANCE,
    );
    let (verified, event) = match verified {
        Ok((_, event)) => (Ok(()), Some(event)),
        Err(e) => (Err(e.to_string()), None),
    };
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let mut hang = false;
    let answered = {
        let mut got = state.got.lock().unwrap();
        let n = got.len();
        let status = match state.plan {
            Plan::Always(s) => s,
            Plan::FailFirst(k) if n < k => 500,
            Plan::FailFirst(_) => 200,
            Plan::HangFirst => {
                hang = n == 0;
                200
            }
        };
        let status = if verified.is_ok() { status } else { 400 };
        got.push(Received {
            id: header("webhook-id").unwrap_or_default(),
            content_type: header("content-type"),
            verified,
            event,
            answered: status,
            at: Instant::now(),
            at_ms: system_now_ms(),
        });
        status
    };
    if hang {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    StatusCode::from_u16(answered).unwrap()
}

async fn serve_on(listener: TcpListener, state: Arc<ReceiverState>) {
    let app = Router::new()
        .route("/hooks", post(receive))
        .with_state(state);
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
}

async fn receiver(secret: &WebhookSecret, plan: Plan) -> Receiver {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    let state = Arc::new(ReceiverState {
        secret: secret.clone(),
        plan,
        got: Mutex::new(Vec::new()),
    });
    serve_on(listener, state.clone()).await;
    Receiver { state, url }
}

// ---- fixtures ------------------------------------------------------------------------------

/// A store on the test database with the wall clock.
async fn wall_clock_store(ctx: &Ctx) -> Store {
    Store::connect(&ctx.url).await.expect("connect")
}

async fn merchant_at(store: &Store, url: Option<&str>, secret: &WebhookSecret) -> Uuid {
    let new = NewMerchant {
        name: "shop".into(),
        receivers: vec![addr(0xAA)],
        webhook_url: url.map(str::to_owned),
        webhook_secret: Some(Secret::new(secret.expose_secret())),
        capture_deadline_secs: 3600,
    };
    store.create_merchant(&new).await.unwrap().0.id
}

/// Enqueues a `payment.captured` event built by `new_webhook_event` (the engine's way).
async fn enqueue(store: &Store, merchant: Uuid, n: u64) -> Uuid {
    let new = new_webhook_event(
        WebhookEventType::PaymentCaptured,
        system_now_ms(),
        PaymentEventData {
            payment_id: Uuid::now_v7().to_string(),
            request_id: format!("req-{n}"),
            payment_hash: Default::default(),
            status: "captured".into(),
            amount: None,
            amounts: Default::default(),
            error_code: None,
            transaction_hash: None,
            idempotency_key: None,
        },
    )
    .unwrap();
    store.enqueue_webhook(merchant, None, &new).await.unwrap();
    new.id
}

fn fast(schedule_ms: &[u64], max_attempts: u32) -> WebhookWorkerConfig {
    WebhookWorkerConfig {
        request_timeout: Duration::from_secs(5),
        lock: Duration::from_secs(10),
        poll_interval: Duration::from_millis(25),
        max_attempts,
        retry_schedule: schedule_ms
            .iter()
            .map(|ms| Duration::from_millis(*ms))
            .collect(),
        jitter: 0.1,
        concurrency: 4,
        batch_size: 4,
        ..WebhookWorkerConfig::default()
    }
}

/// A running worker and the switch that stops it.
struct Running {
    worker: WebhookWorker,
    stop: Option<oneshot::Sender<()>>,
    handle: JoinHandle<()>,
}

fn start(store: &Store, config: WebhookWorkerConfig, id: &str) -> Running {
    let worker = WebhookWorker::new(store.clone(), config, id).unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(worker.clone().run(async move {
        let _ = rx.await;
    }));
    Running {
        worker,
        stop: Some(tx),
        handle,
    }
}

impl Running {
    /// Graceful stop: waits for the attempts in flight.
    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        tokio::time::timeout(Duration::from_secs(30), self.handle)
            .await
            .expect("worker stops")
            .unwrap();
    }
}

/// Polls `check` until it returns true (bounded: panics after 60 s).
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if check().await {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn delivery(store: &Store, event: Uuid) -> WebhookDelivery {
    store.delivery_for_event(event).await.unwrap()
}

async fn wait_status(store: &Store, event: Uuid, status: DeliveryStatus) -> WebhookDelivery {
    eventually(&format!("delivery of {event} to be {status:?}"), || async {
        delivery(store, event).await.status == status
    })
    .await;
    delivery(store, event).await
}

fn assert_well_formed(r: &Received, event: Uuid) {
    assert_eq!(r.id, event.to_string(), "webhook-id is the event id");
    assert_eq!(r.content_type.as_deref(), Some("application/json"));
    assert_eq!(r.verified, Ok(()), "signature verifies with the sdk");
    assert_eq!(
        r.event.as_ref().map(|e| e.id.clone()),
        Some(event.to_string())
    );
}

// ---- tests ---------------------------------------------------------------------------------

async fn delivered_once_with_signed_headers(ctx: Ctx) {
    let store = wall_clock_store(&ctx).await;
    let secret = WebhookSecret::generate();
    let rx = receiver(&secret, Plan::Always(204)).await;
    let m = merchant_at(&store, Some(&rx.url), &secret).await;
    let running = start(&store, fast(&[20], 5), "w1");
    let event = enqueue(&store, m, 1).await;
    running.worker.notifier().notify_one();

    let d = wait_status(&store, event, DeliveryStatus::Delivered).await;
    let metrics = running.worker.metrics();
    running.stop().await;
    assert_eq!((d.attempts, d.response_status), (1, Some(204)));
    assert!(d.delivered_at.is_some() && d.locked_by.is_none());
    let got = rx.got();
    assert_eq!(got.len(), 1, "delivered once");
    assert_well_formed(&got[0], event);
    let stored = store.get_webhook_event(event).await.unwrap();
    assert_eq!(
        serde_json::to_value(got[0].event.as_ref().unwrap()).unwrap(),
        stored.payload,
        "the body is the stored payload"
    );
    let m = metrics.snapshot();
    assert_eq!((m.attempts, m.delivered, m.retried), (1, 1, 0));
    let backlog = x402_escrow_operator::webhooks::backlog(&store)
        .await
        .unwrap();
    assert_eq!((backlog.pending, backlog.lag_ms), (0, 0));
    store.close().await;
}

async fn failing_receiver_is_retried_with_backoff_until_delivered(ctx: Ctx) {
    let store = wall_clock_store(&ctx).await;
    let secret = WebhookSecret::generate();
    let rx = receiver(&secret, Plan::FailFirst(3)).await;
    let m = merchant_at(&store, Some(&rx.url), &secret).await;
    let schedule = [40u64, 80, 160];
    let running = start(&store, fast(&schedule, 10), "w1");
    let event = enqueue(&store, m, 1).await;
    running.worker.notifier().notify_one();

    let d = wait_status(&store, event, DeliveryStatus::Delivered).await;
    running.stop().await;
    assert_eq!((d.attempts, d.response_status), (4, Some(200)));
    let got = rx.got();
    assert_eq!(
        got.iter().map(|r| r.answered).collect::<Vec<_>>(),
        vec![500, 500, 500, 200]
    );
    for r in &got {
        assert_well_formed(r, event);
    }
    // Backoff: each retry waited at least its scheduled delay minus the jitter.
    for (i, pair) in got.windows(2).enumerate() {
        let gap = pair[1].at.duration_since(pair[0].at);
        let min = Duration::from_millis(schedule[i] * 9 / 10);
        assert!(
            gap + Duration::from_millis(2) >= min,
            "retry {i} after {gap:?}, scheduled {min:?}"
        );
    }
    store.close().await;
}

async fn receiver_down_then_up_loses_nothing(ctx: Ctx) {
    let store = wall_clock_store(&ctx).await;
    let secret = WebhookSecret::generate();
    // A port with nobody listening.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let url = format!("http://{addr}/hooks");
    let m = merchant_at(&store, Some(&url), &secret).await;
    let running = start(&store, fast(&[20, 50, 100], 1000), "w1");
    let mut events = Vec::new();
    for n in 0..3 {
        events.push(enqueue(&store, m, n).await);
    }
    running.worker.notifier().notify_one();
    for e in &events {
        eventually("a few failed attempts", || async {
            delivery(&store, *e).await.attempts >= 2
        })
        .await;
        let d = delivery(&store, *e).await;
        assert_eq!(d.status, DeliveryStatus::Pending);
        let err = d.last_error.unwrap_or_default();
        assert!(err.contains("connection"), "{err}");
        assert!(!err.contains(&url), "no URL in stored errors: {err}");
    }

    // The receiver comes up on that port.
    let state = Arc::new(ReceiverState {
        secret: secret.clone(),
        plan: Plan::Always(200),
        got: Mutex::new(Vec::new()),
    });
    serve_on(TcpListener::bind(addr).await.unwrap(), state.clone()).await;
    let rx = Receiver { state, url };
    for e in &events {
        wait_status(&store, *e, DeliveryStatus::Delivered).await;
    }
    running.stop().await;
    let got = rx.got();
    assert_eq!(got.len(), 3, "each event once, none lost");
    for e in &events {
        let r = got
            .iter()
            .find(|r| r.id == e.to_string())
            .expect("received");
        assert_well_formed(r, *e);
    }
    store.close().await;
}

async fn gone_disables_the_endpoint(ctx: Ctx) {
    let store = wall_clock_store(&ctx).await;
    let secret = WebhookSecret::generate();
    let rx = receiver(&secret, Plan::Always(410)).await;
    let m = merchant_at(&store, Some(&rx.url), &secret).await;
    let running = start(&store, fast(&[20], 10), "w1");
    let first = enqueue(&store, m, 1).await;
    running.worker.notifier().notify_one();

    let d = wait_status(&store, first, DeliveryStatus::Disabled).await;
    assert_eq!((d.attempts, d.response_status), (1, Some(410)));
    assert!(
        store
            .get_merchant(m)
            .await
            .unwrap()
            .webhook_disabled_at
            .is_some()
    );
    // Later events for that merchant are not sent.
    let second = enqueue(&store, m, 2).await;
    running.worker.notifier().notify_one();
    let d2 = wait_status(&store, second, DeliveryStatus::Failed).await;
    assert!(
        d2.last_error.as_deref().unwrap_or("").contains("disabled"),
        "{d2:?}"
    );
    let metrics = running.worker.metrics().snapshot();
    running.stop().await;
    assert_eq!(rx.count(), 1, "no attempt after the 410");
    assert_eq!((metrics.gone, metrics.attempts), (1, 1));
    assert_eq!(delivery(&store, first).await.attempts, 1);
    store.close().await;
}

async fn two_workers_deliver_each_event_exactly_once(ctx: Ctx) {
    let store_a = wall_clock_store(&ctx).await;
    let store_b = wall_clock_store(&ctx).await;
    let secret = WebhookSecret::generate();
    let rx = receiver(&secret, Plan::Always(200)).await;
    let m = merchant_at(&store_a, Some(&rx.url), &secret).await;
    let mut events = Vec::new();
    for n in 0..30 {
        events.push(enqueue(&store_a, m, n).await);
    }
    let a = start(&store_a, fast(&[20], 10), "instance-a");
    let b = start(&store_b, fast(&[20], 10), "instance-b");
    eventually("every delivery done", || async {
        store_a.pending_delivery_count().await.unwrap() == 0
    })
    .await;
    let (ma, mb) = (a.worker.metrics(), b.worker.metrics());
    a.stop().await;
    b.stop().await;
    for e in &events {
        let d = delivery(&store_a, *e).await;
        assert_eq!((d.status, d.attempts), (DeliveryStatus::Delivered, 1));
    }
    let mut per_id: HashMap<String, usize> = HashMap::new();
    for r in rx.got() {
        assert_eq!(r.verified, Ok(()));
        *per_id.entry(r.id).or_default() += 1;
    }
    assert_eq!(per_id.len(), 30);
    assert!(per_id.values().all(|n| *n == 1), "{per_id:?}");
    let (ma, mb) = (ma.snapshot(), mb.snapshot());
    assert_eq!(ma.delivered + mb.delivered, 30);
    assert_eq!(ma.claim_lost + mb.claim_lost, 0);
    store_a.close().await;
    store_b.close().await;
}

async fn crashed_worker_claim_is_retried_after_lock_expiry(ctx: Ctx) {
    let store = wall_clock_store(&ctx).await;
    let secret = WebhookSecret::generate();
    let rx = receiver(&secret, Plan::HangFirst).await;
    let m = merchant_at(&store, Some(&rx.url), &secret).await;
    let event = enqueue(&store, m, 1).await;

    // Worker A claims it and hangs on the request; then it "crashes" (its task is dropped)
    // before the request times out, so nothing is recorded.
    let config_a = WebhookWorkerConfig {
        request_timeout: Duration::from_secs(3),
        lock: Duration::from_millis(3_500),
        ..fast(&[20], 10)
    };
    let a = start(&store, config_a, "crashed-a");
    eventually("worker A's request", || async { rx.count() == 1 }).await;
    a.handle.abort();
    let _ = a.handle.await;
    let held = delivery(&store, event).await;
    assert_eq!(
        (held.status, held.attempts, held.locked_by.as_deref()),
        (DeliveryStatus::Pending, 1, Some("crashed-a"))
    );
    let locked_until = held.locked_until.unwrap();

    // A restarted worker picks it up once A's lock has expired.
    let b = start(&store, fast(&[20], 10), "restarted-b");
    let d = wait_status(&store, event, DeliveryStatus::Delivered).await;
    let metrics_b = b.worker.metrics().snapshot();
    b.stop().await;
    assert_eq!(d.attempts, 2, "the crashed attempt counts");
    let got = rx.got();
    assert_eq!(got.len(), 2);
    assert!(
        got.iter().all(|r| r.id == event.to_string()),
        "same webhook-id"
    );
    assert!(
        got[1].at_ms >= locked_until,
        "not re-sent before the lock expired"
    );
    assert_well_formed(&got[1], event);
    assert_eq!(metrics_b.delivered, 1);
    store.close().await;
}

async fn gives_up_after_the_last_attempt(ctx: Ctx) {
    let store = wall_clock_store(&ctx).await;
    let secret = WebhookSecret::generate();
    let rx = receiver(&secret, Plan::Always(503)).await;
    let m = merchant_at(&store, Some(&rx.url), &secret).await;
    let running = start(&store, fast(&[10], 3), "w1");
    let event = enqueue(&store, m, 1).await;
    running.worker.notifier().notify_one();
    let d = wait_status(&store, event, DeliveryStatus::Failed).await;
    let metrics = running.worker.metrics().snapshot();
    running.stop().await;
    assert_eq!((d.attempts, d.response_status), (3, Some(503)));
    assert_eq!(d.last_error.as_deref(), Some("HTTP 503"));
    assert_eq!(rx.count(), 3);
    assert_eq!((metrics.retried, metrics.given_up), (2, 1));
    store.close().await;
}

/// With nowhere to deliver to, the delivery is written as given up with the event (no claim,
/// no attempt, no further write); once the merchant has an endpoint, redelivery sends it.
async fn merchant_without_endpoint_is_not_sent(ctx: Ctx) {
    let store = wall_clock_store(&ctx).await;
    let secret = WebhookSecret::generate();
    let m = merchant_at(&store, None, &secret).await;
    let worker = WebhookWorker::new(store.clone(), fast(&[10], 3), "w1").unwrap();
    let writes = store.write_count();
    let event = enqueue(&store, m, 1).await;
    assert_eq!(
        store.write_count() - writes,
        1,
        "the event and its delivery: one write"
    );
    assert_eq!(worker.run_once().await.unwrap(), 0, "nothing to claim");
    assert_eq!(
        store.write_count() - writes,
        1,
        "an empty claim is not a write"
    );
    let d = delivery(&store, event).await;
    assert_eq!((d.status, d.attempts), (DeliveryStatus::Failed, 0));
    assert_eq!(d.last_error.as_deref(), Some(NO_ENDPOINT));
    assert_eq!(worker.metrics().snapshot().attempts, 0);

    // A disabled endpoint is the same, with its own reason.
    let rx = receiver(&secret, Plan::Always(200)).await;
    store
        .update_webhook_endpoint(m, Some(rx.url.clone()), Some(false))
        .await
        .unwrap();
    let second = enqueue(&store, m, 2).await;
    let d = delivery(&store, second).await;
    assert_eq!((d.status, d.attempts), (DeliveryStatus::Failed, 0));
    assert_eq!(d.last_error.as_deref(), Some(ENDPOINT_DISABLED));

    // Endpoint on: redelivery queues the first event again and it is sent.
    store
        .update_webhook_endpoint(m, None, Some(true))
        .await
        .unwrap();
    let first = delivery(&store, event).await;
    store.redeliver(m, first.id).await.unwrap();
    assert_eq!(worker.run_once().await.unwrap(), 1);
    let d = wait_status(&store, event, DeliveryStatus::Delivered).await;
    assert_eq!(d.attempts, 1);
    assert_eq!(rx.count(), 1);
    store.close().await;
}

async fn notify_wakes_an_idle_worker(ctx: Ctx) {
    let store = wall_clock_store(&ctx).await;
    let secret = WebhookSecret::generate();
    let rx = receiver(&secret, Plan::Always(200)).await;
    let m = merchant_at(&store, Some(&rx.url), &secret).await;
    // The engine's wake-up handle, shared with the worker; polling is effectively off.
    let engine_notify = Arc::new(Notify::new());
    let config = WebhookWorkerConfig {
        poll_interval: Duration::from_secs(3600),
        ..fast(&[20], 5)
    };
    let worker = WebhookWorker::new(store.clone(), config, "w1")
        .unwrap()
        .with_notifier(engine_notify.clone());
    let (tx, stop) = oneshot::channel::<()>();
    let handle = tokio::spawn(worker.clone().run(async move {
        let _ = stop.await;
    }));
    let running = Running {
        worker,
        stop: Some(tx),
        handle,
    };
    let first = enqueue(&store, m, 1).await;
    engine_notify.notify_one();
    wait_status(&store, first, DeliveryStatus::Delivered).await;
    // Now idle (nothing due, next poll in an hour): only the wake-up can start this one.
    let second = enqueue(&store, m, 2).await;
    engine_notify.notify_one();
    wait_status(&store, second, DeliveryStatus::Delivered).await;
    running.stop().await;
    assert_eq!(rx.count(), 2);
    store.close().await;
}

/// Enqueues `event_type` for `payment` (built by `new_webhook_event`, the engine's way).
async fn enqueue_for(
    store: &Store,
    merchant: Uuid,
    payment: Uuid,
    event_type: WebhookEventType,
) -> Uuid {
    let new = new_webhook_event(
        event_type,
        system_now_ms(),
        PaymentEventData {
            payment_id: payment.to_string(),
            request_id: "req-ordered".into(),
            payment_hash: Default::default(),
            status: "captured".into(),
            amount: None,
            amounts: Default::default(),
            error_code: None,
            transaction_hash: None,
            idempotency_key: None,
        },
    )
    .unwrap();
    store
        .enqueue_webhook(merchant, Some(payment), &new)
        .await
        .unwrap();
    new.id
}

/// The first event of a payment fails once: the second is not sent until the first's retry
/// has been delivered, though the worker has free slots. Each body carries its sequence.
async fn a_payments_second_event_waits_for_its_first(ctx: Ctx) {
    let store = wall_clock_store(&ctx).await;
    let secret = WebhookSecret::generate();
    let rx = receiver(&secret, Plan::FailFirst(1)).await;
    let m = merchant_at(&store, Some(&rx.url), &secret).await;
    let (payment, _) = store
        .insert_payment(&new_payment(m, 1), None)
        .await
        .unwrap();
    let authorized = enqueue_for(&store, m, payment.id, WebhookEventType::PaymentAuthorized).await;
    let captured = enqueue_for(&store, m, payment.id, WebhookEventType::PaymentCaptured).await;
    let running = start(&store, fast(&[100], 5), "w1");
    running.worker.notifier().notify_one();

    wait_status(&store, captured, DeliveryStatus::Delivered).await;
    running.stop().await;
    let got = rx.got();
    let order: Vec<(String, u16)> = got.iter().map(|r| (r.id.clone(), r.answered)).collect();
    assert_eq!(
        order,
        vec![
            (authorized.to_string(), 500),
            (authorized.to_string(), 200),
            (captured.to_string(), 200),
        ],
        "payment.captured went out before payment.authorized was delivered"
    );
    let sequences: Vec<Option<u64>> = got
        .iter()
        .map(|r| r.event.as_ref().and_then(|e| e.sequence))
        .collect();
    assert_eq!(sequences, vec![Some(1), Some(1), Some(2)]);
    for r in &got {
        assert_eq!(r.verified, Ok(()));
    }
    store.close().await;
}

async fn a_rotated_secret_signs_beside_the_old_one_until_the_grace_ends(ctx: Ctx) {
    let store = wall_clock_store(&ctx).await;
    let old = WebhookSecret::generate();
    let knows_old = receiver(&old, Plan::Always(200)).await;
    let m = merchant_at(&store, Some(&knows_old.url), &old).await;
    let running = start(&store, fast(&[20], 1), "w1");

    // Rotated with a grace period: every delivery carries both signatures.
    let (new, until) = store.rotate_webhook_secret(m, 1_500).await.unwrap();
    let until = until.expect("a grace period");
    let new = WebhookSecret::parse(new.expose()).unwrap();
    // Receivers that know only the old secret, and only the new one.
    let knows_new = receiver(&new, Plan::Always(200)).await;
    let first = enqueue(&store, m, 1).await;
    running.worker.notifier().notify_one();
    wait_status(&store, first, DeliveryStatus::Delivered).await;
    assert_well_formed(&knows_old.got()[0], first);
    store
        .update_webhook_endpoint(m, Some(knows_new.url.clone()), None)
        .await
        .unwrap();
    let second = enqueue(&store, m, 2).await;
    running.worker.notifier().notify_one();
    wait_status(&store, second, DeliveryStatus::Delivered).await;
    assert_well_formed(&knows_new.got()[0], second);

    // Once the grace period is over, only the new secret signs.
    eventually("the grace period to end", || async {
        system_now_ms() > until
    })
    .await;
    store
        .update_webhook_endpoint(m, Some(knows_old.url.clone()), None)
        .await
        .unwrap();
    let third = enqueue(&store, m, 3).await;
    running.worker.notifier().notify_one();
    let d = wait_status(&store, third, DeliveryStatus::Failed).await;
    assert_eq!(
        d.response_status,
        Some(400),
        "the old secret no longer verifies"
    );
    assert!(knows_old.got()[1].verified.is_err());
    running.stop().await;
    store.close().await;
}

async fn redelivery_sends_an_event_again_and_a_stopped_endpoint_gets_nothing(ctx: Ctx) {
    let store = wall_clock_store(&ctx).await;
    let secret = WebhookSecret::generate();
    let rx = receiver(&secret, Plan::Always(200)).await;
    let m = merchant_at(&store, Some(&rx.url), &secret).await;
    let other = merchant_at(&store, Some(&rx.url), &secret).await;
    let running = start(&store, fast(&[20], 3), "w1");
    let event = enqueue(&store, m, 1).await;
    running.worker.notifier().notify_one();
    let delivered = wait_status(&store, event, DeliveryStatus::Delivered).await;

    // Redelivered: the same event, the same webhook-id, once more.
    let entry = store.redeliver(m, delivered.id).await.unwrap();
    assert_eq!(
        (entry.delivery.status, entry.delivery.attempts),
        (DeliveryStatus::Pending, 0)
    );
    assert_eq!(entry.event_type, "payment.captured");
    running.worker.notifier().notify_one();
    eventually("the redelivery", || async { rx.count() == 2 }).await;
    let again = wait_status(&store, event, DeliveryStatus::Delivered).await;
    assert_eq!(again.attempts, 1);
    let got = rx.got();
    assert_eq!(got[0].id, got[1].id);
    assert_well_formed(&got[1], event);
    // Another merchant cannot touch it.
    assert!(matches!(
        store.redeliver(other, delivered.id).await,
        Err(x402_escrow_operator::store::StoreError::NotFound { .. })
    ));

    // Deliveries turned off: nothing is sent until they are back on.
    store
        .update_webhook_endpoint(m, None, Some(false))
        .await
        .unwrap();
    let quiet = enqueue(&store, m, 2).await;
    running.worker.notifier().notify_one();
    let d = wait_status(&store, quiet, DeliveryStatus::Failed).await;
    assert!(d.last_error.unwrap_or_default().contains("disabled"));
    assert_eq!(rx.count(), 2);
    store
        .update_webhook_endpoint(m, None, Some(true))
        .await
        .unwrap();
    store.redeliver(m, d.id).await.unwrap();
    running.worker.notifier().notify_one();
    wait_status(&store, quiet, DeliveryStatus::Delivered).await;
    assert_eq!(rx.count(), 3);
    running.stop().await;
    store.close().await;
}
