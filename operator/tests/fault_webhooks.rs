//! Webhook receiver down: the merchant's endpoint is unreachable (a TCP proxy in front of it
//! resets every connection) for the first half of the outage (and at least until the first
//! batch of payments is made) and answers `503` for the second half, while paid requests flow through the real `x402-escrow serve` process; then it comes
//! back. Every payment event is delivered exactly once (one `2xx` per `webhook-id`, each
//! signature verified with the merchant's secret printed by `merchant add`), nothing is lost
//! (the ids answered equal the events in the database: `payment.authorized` plus
//! `payment.captured` or `payment.voided` per payment), and the retry schedule was respected:
//! no attempt came earlier than the schedule (minus the worker's jitter) allows.
//!
//! Default run: receiver down `X402_FAULT_WEBHOOK_DOWN_SECS` (default 16 s) with the schedule
//! 1 s, 2 s, 4 s (`X402_FAULT_WEBHOOK_SCHEDULE`, comma-separated seconds). Soak ("for minutes"):
//!
//! ```sh
//! cargo test -p x402-escrow-operator --test fault_webhooks -- --ignored --nocapture
//! ```

mod fault_support;
mod operator_support;
mod store_support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use fault_support::*;
use operator_support::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use x402_escrow_operator::store::Backend;
use x402_escrow_sdk::webhooks::{self as sdk_hooks, WebhookSecret};

/// Jitter the worker applies to each retry delay (`webhooks::DEFAULT_JITTER`).
const JITTER: f64 = x402_escrow_operator::webhooks::DEFAULT_JITTER;

/// One request as the receiver saw it.
#[derive(Clone, Debug)]
struct Arrival {
    id: String,
    answered: u16,
    at: Instant,
    event_type: Option<String>,
    payment_id: Option<String>,
}

struct Receiver {
    secret: Mutex<Option<WebhookSecret>>,
    failing: AtomicBool,
    arrivals: Mutex<Vec<Arrival>>,
    rejected: AtomicU64,
}

async fn receive(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let secret = r.secret.lock().unwrap().clone();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let verified = secret.and_then(|s| {
        sdk_hooks::verify_event(
            std::slice::from_ref(&s),
            &headers,
            &body,
            now,
            sdk_hooks::DEFAULT_TOLERANCE,
        )
        .ok()
    });
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let answered = match &verified {
        None => {
            r.rejected.fetch_add(1, Ordering::Relaxed);
            400
        }
        Some(_) if r.failing.load(Ordering::SeqCst) => 503,
        Some(_) => 204,
    };
    r.arrivals.lock().unwrap().push(Arrival {
        id,
        answered,
        at: Instant::now(),
        event_type: verified
            .as_ref()
            .map(|(_, e)| e.event_type.as_str().to_owned()),
        payment_id: verified.as_ref().map(|(_, e)| e.data.payment_id.clone()),
    });
    StatusCode::from_u16(answered).unwrap()
}

async fn start_receiver() -> (SocketAddr, Arc<Receiver>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let state = Arc::new(Receiver {
        secret: Mutex::new(None),
        failing: AtomicBool::new(true),
        arrivals: Mutex::new(Vec::new()),
        rejected: AtomicU64::new(0),
    });
    let app = Router::new()
        .route("/hooks", post(receive))
        .with_state(state.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, state)
}

fn schedule() -> Vec<u64> {
    std::env::var("X402_FAULT_WEBHOOK_SCHEDULE")
        .ok()
        .map(|s| {
            s.split(',')
                .filter_map(|x| x.trim().parse().ok())
                .collect::<Vec<u64>>()
        })
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| vec![1, 2, 4])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_down_then_back_delivers_each_event_once() {
    webhook_run(
        "fault_webhooks",
        knob("X402_FAULT_WEBHOOK_DOWN_SECS", 16),
        schedule(),
        knob("X402_FAULT_N", 24),
    )
    .await
}

/// "Down for minutes": 3 minutes with a 5 s, 15 s, 30 s, 60 s schedule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "soak (about 4 minutes): cargo test -p x402-escrow-operator --test fault_webhooks -- --ignored"]
async fn soak_receiver_down_for_minutes() {
    webhook_run(
        "fault_webhooks_soak",
        knob("X402_FAULT_WEBHOOK_DOWN_SECS", 180),
        vec![5, 15, 30, 60],
        knob("X402_FAULT_N", 100),
    )
    .await
}

async fn webhook_run(test: &'static str, down_secs: u64, schedule: Vec<u64>, n: usize) {
    let seed = seed(test, 0x400C);
    with_db(Backend::Sqlite, move |url| async move {
        let started = Instant::now();
        let mut rng = StdRng::seed_from_u64(seed);
        let chain = Chain::start().await;
        let (receiver_addr, receiver) = start_receiver().await;
        let proxy = Proxy::start(receiver_addr).await.expect("start proxy");
        proxy.set_down(true).await;
        let max_attempts = 1000i64;
        let setup = OperatorSetup::new(test, &url, &chain, &chain.url, |t| {
            let steps = schedule.iter().map(|s| toml::Value::Integer(*s as i64));
            set(t, "webhooks", "retry_schedule_secs", toml::Value::Array(steps.collect()));
            set(t, "webhooks", "max_attempts", toml::Value::Integer(max_attempts));
            set(t, "webhooks", "timeout_secs", toml::Value::Integer(2));
            set(t, "webhooks", "lock_secs", toml::Value::Integer(10));
        });
        let hook_url = format!("{}/hooks", proxy.url());
        let (key, secret) = setup.add_merchant("shop", chain.receiver, Some(&hook_url)).await;
        let secret = WebhookSecret::parse(&secret.expect("webhook key printed")).expect("secret");
        *receiver.secret.lock().unwrap() = Some(secret);
        let store = test_store(&url).await;
        let signer = chain.operator.address();
        let first = orders(&chain, signer, "hook", n, &mut rng, 0.7).await;
        let later = orders(&chain, signer, "late", n / 4, &mut rng, 0.7).await;
        let before = balances(&chain).await;

        let op = setup.start().await;
        let client = Client::new(setup.addr, &key, Duration::from_secs(120));
        let down_at = Instant::now();
        let mut paid = run_orders(&client, first, 8, Arc::new(AtomicU64::new(0))).await;
        // Half-way (and not before these payments are all made): the endpoint accepts
        // connections again but answers 503, for the other half.
        let half = Duration::from_secs(down_secs) / 2;
        tokio::time::sleep(half.saturating_sub(down_at.elapsed())).await;
        proxy.set_down(false).await;
        let unreachable_for = down_at.elapsed();
        let refused = proxy.refused.load(Ordering::Relaxed);
        tokio::time::sleep(half).await;
        let failed_503 = receiver.arrivals.lock().unwrap().len();
        receiver.failing.store(false, Ordering::SeqCst);
        let down_for = down_at.elapsed();
        let back_at = Instant::now();
        // Payments after the receiver is back are announced too.
        paid.extend(run_orders(&client, later, 4, Arc::new(AtomicU64::new(0))).await);
        settle_all(&store, Duration::from_secs(60)).await;

        // Every delivery delivered (bounded: the longest step of the schedule plus margin).
        let longest = *schedule.iter().max().unwrap_or(&1);
        let deadline = Instant::now() + Duration::from_secs(longest * 2 + 60);
        loop {
            let pending = count(&store, "webhook_deliveries WHERE status <> 'delivered'").await;
            if pending == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{pending} deliveries still not delivered:\n{}",
                setup.log_tail(30)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let resumed_in = back_at.elapsed();
        // A little longer: nothing more may arrive.
        tokio::time::sleep(Duration::from_millis(1500)).await;

        use sqlx::Row;
        let rows = sqlx::query(
            "SELECT e.id, e.payment_id, e.event_type, d.attempts, d.created_at, d.delivered_at \
             FROM webhook_events e JOIN webhook_deliveries d ON d.event_id = e.id",
        )
        .fetch_all(store.pool())
        .await
        .expect("webhook rows");
        let arrivals = receiver.arrivals.lock().unwrap().clone();
        assert_eq!(receiver.rejected.load(Ordering::Relaxed), 0, "bad signatures");
        let mut ok: HashMap<String, u32> = HashMap::new();
        let mut by_id: HashMap<String, Vec<&Arrival>> = HashMap::new();
        for a in &arrivals {
            if (200..300).contains(&a.answered) {
                *ok.entry(a.id.clone()).or_default() += 1;
            }
            by_id.entry(a.id.clone()).or_default().push(a);
        }
        let db_ids: HashSet<String> = rows
            .iter()
            .map(|r| r.try_get::<String, _>("id").expect("id"))
            .collect();
        let ok_ids: HashSet<String> = ok.keys().cloned().collect();
        assert_eq!(ok_ids, db_ids, "delivered ids == events in the database");
        let twice: Vec<_> = ok.iter().filter(|(_, n)| **n != 1).collect();
        assert!(twice.is_empty(), "delivered more than once: {twice:?}");

        // Each payment announced exactly as it went: authorized, then captured or voided.
        let mut types: HashMap<String, Vec<String>> = HashMap::new();
        for a in arrivals.iter().filter(|a| (200..300).contains(&a.answered)) {
            types
                .entry(a.payment_id.clone().expect("payment id"))
                .or_default()
                .push(a.event_type.clone().expect("type"));
        }
        for p in &paid {
            let mut got = types.remove(&p.id).unwrap_or_default();
            got.sort();
            let last = if p.capture { "payment.captured" } else { "payment.voided" };
            let mut want = vec!["payment.authorized".to_owned(), last.to_owned()];
            want.sort();
            assert_eq!(got, want, "{}: events", p.rid);
        }
        assert!(types.is_empty(), "events of unknown payments: {types:?}");

        // The schedule was respected: attempt k + 1 of a delivery came no earlier than the sum of
        // the delays before it (each at least (1 - jitter) of its step) after the first.
        let step = |attempt: i64| -> f64 {
            let i = usize::try_from(attempt - 1).unwrap_or(0);
            *schedule.get(i).or(schedule.last()).unwrap() as f64
        };
        let mut attempts_hist: BTreeMap<i64, u32> = BTreeMap::new();
        for r in &rows {
            let attempts: i64 = r.try_get("attempts").expect("attempts");
            let created: i64 = r.try_get("created_at").expect("created");
            let delivered: i64 = r
                .try_get::<Option<i64>, _>("delivered_at")
                .expect("delivered")
                .expect("delivered_at set");
            *attempts_hist.entry(attempts).or_default() += 1;
            let floor: f64 = (1..attempts).map(|k| step(k) * (1.0 - JITTER)).sum();
            let took = (delivered - created) as f64 / 1000.0;
            assert!(
                took + 0.25 >= floor,
                "delivery of {} made {attempts} attempts in {took:.2} s: faster than the schedule allows ({floor:.2} s)",
                r.try_get::<String, _>("id").unwrap()
            );
        }
        // Observed at the receiver, too: consecutive attempts of one id at least the smallest
        // step (minus jitter) apart.
        let min_step = *schedule.iter().min().unwrap() as f64 * (1.0 - JITTER);
        let mut min_gap = f64::MAX;
        for list in by_id.values() {
            for w in list.windows(2) {
                min_gap = min_gap.min(w[1].at.duration_since(w[0].at).as_secs_f64());
            }
        }
        if min_gap < f64::MAX {
            assert!(
                min_gap + 0.25 >= min_step,
                "two attempts of one event {min_gap:.2} s apart (< {min_step:.2} s)"
            );
        }
        // The early events did retry through the outage.
        assert!(
            attempts_hist.keys().any(|a| *a >= 3),
            "no delivery was retried: {attempts_hist:?}"
        );
        assert!(refused > 0, "no attempt met the unreachable endpoint");
        assert!(failed_503 > 0, "no attempt met the 503 phase");
        eprintln!(
            "[{test}] {} payments, {} events; receiver down {down_for:.1?} (unreachable \
             {unreachable_for:.1?}, then 503; schedule {schedule:?}): {refused} connections \
             reset, {failed_503} answered 503; all delivered {resumed_in:.1?} \
             after it came back; attempts per delivery {attempts_hist:?}; min gap between attempts \
             {min_gap:.2} s; total {:.1} s",
            paid.len(),
            rows.len(),
            started.elapsed().as_secs_f64()
        );
        assert_ledger(&setup, &chain, &store, &paid, before).await;
        drop(op);
        store.close().await;
    })
    .await
}
