//! criterion benchmarks of the store's hot writes: a payment inserted with its outbox row (what
//! `authorize` commits), and the transitions authorized → capturing (with the capture's outbox
//! row) → captured (with its webhook event), each its own SQL transaction as the engine runs
//! them. Backends: SQLite file (WAL), SQLite in memory, and PostgreSQL when
//! `X402_BENCH_POSTGRES_URL` is set (a fresh database is created and dropped).
//!
//! `cargo bench -p x402-escrow-operator --bench store`

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256, Bytes, U256};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sqlx::Connection;
use uuid::Uuid;
use x402_escrow_operator::lifecycle::{Flow, PaymentEvent, PaymentStatus};
use x402_escrow_operator::store::{
    NewChainTx, NewMerchant, NewPayment, NewWebhookEvent, Payment, PaymentInfoRecord, Store,
    TransitionExtras, TxKind,
};

static SEED: AtomicU64 = AtomicU64::new(1);

fn new_payment(merchant_id: Uuid) -> NewPayment {
    let seed = SEED.fetch_add(1, Ordering::Relaxed);
    NewPayment {
        merchant_id,
        payment_hash: B256::from(U256::from(seed) << 64),
        chain_id: 31337,
        escrow: Address::repeat_byte(0xE5),
        info: PaymentInfoRecord {
            operator: Address::repeat_byte(0x0B),
            payer: Address::repeat_byte(0x01),
            receiver: Address::repeat_byte(0xAA),
            token: Address::repeat_byte(0x70),
            max_amount: 1_000_000,
            pre_approval_expiry: 1_900_000_000,
            authorization_expiry: 1_900_086_400,
            refund_expiry: 1_902_592_000,
            min_fee_bps: 0,
            max_fee_bps: 500,
            fee_receiver: Address::repeat_byte(0xFE),
            salt: U256::from(seed),
        },
        amount: 1_000_000,
        flow: Flow::Authorize,
        request_id: Some(format!("req-{seed}")),
        idempotency_key: Some(format!("idem-{seed}")),
        capture_deadline_at: Some(1_900_000_000_000),
    }
}

fn new_tx(kind: TxKind) -> NewChainTx {
    NewChainTx {
        chain_id: 31337,
        signer: Address::repeat_byte(0x5E),
        kind,
        payment_id: None,
        request: serde_json::json!({ "call": kind.as_str(), "amount": "1000000" }),
        to: Address::repeat_byte(0xE5),
        // About the size of an authorize call (PaymentInfo + amount + collector + signature).
        calldata: Bytes::from(vec![0xab; 580]),
        value: U256::ZERO,
        gas_limit: None,
    }
}

struct Backend {
    name: &'static str,
    store: Store,
    merchant: Uuid,
    cleanup: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

async fn open(name: &'static str, url: String, dir: Option<tempfile::TempDir>) -> Backend {
    let store = Store::connect(&url).await.expect("connect");
    store.migrate().await.expect("migrate");
    let (merchant, _) = store
        .create_merchant(&NewMerchant {
            name: "bench".into(),
            receivers: vec![Address::repeat_byte(0xAA)],
            webhook_url: Some("http://127.0.0.1:9/hooks".into()),
            webhook_secret: None,
            capture_deadline_secs: 3600,
        })
        .await
        .expect("merchant");
    Backend {
        name,
        store,
        merchant: merchant.id,
        cleanup: None,
        _dir: dir,
    }
}

async fn backends() -> Vec<Backend> {
    sqlx::any::install_default_drivers();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = format!("sqlite://{}/bench.db?mode=rwc", dir.path().display());
    let mut out = vec![
        open("sqlite_file", file, Some(dir)).await,
        open("sqlite_memory", "sqlite::memory:".into(), None).await,
    ];
    if let Some(base) = std::env::var("X402_BENCH_POSTGRES_URL")
        .ok()
        .filter(|v| !v.is_empty())
    {
        let db = format!("x402_bench_{}", Uuid::new_v4().simple());
        let mut admin = sqlx::AnyConnection::connect(&base)
            .await
            .expect("PostgreSQL admin connection");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
            .execute(&mut admin)
            .await
            .expect("create database");
        admin.close().await.ok();
        let url = match base.rsplit_once('/') {
            Some((head, _)) => format!("{head}/{db}"),
            None => panic!("X402_BENCH_POSTGRES_URL must end in /<database>"),
        };
        let mut b = open("postgres", url, None).await;
        b.cleanup = Some(format!("{base}\n{db}"));
        out.push(b);
    }
    out
}

async fn drop_database(spec: &str) {
    let Some((base, db)) = spec.split_once('\n') else {
        return;
    };
    if let Ok(mut admin) = sqlx::AnyConnection::connect(base).await {
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {db} WITH (FORCE)"
        )))
        .execute(&mut admin)
        .await;
        admin.close().await.ok();
    }
}

/// Inserts a payment with its authorize outbox row.
async fn insert(b: &Backend) -> Payment {
    let (p, _) = b
        .store
        .insert_payment(&new_payment(b.merchant), Some(&new_tx(TxKind::Authorize)))
        .await
        .expect("insert");
    p
}

/// What a transition that announces `event_type` writes with it: the webhook.
fn announcing(event_type: &str) -> TransitionExtras {
    TransitionExtras {
        webhook: Some(NewWebhookEvent::new(
            event_type,
            serde_json::json!({ "request_id": "req" }),
        )),
        ..Default::default()
    }
}

/// Inserts a payment and takes it to `authorized` (not timed by the callers).
async fn authorized(b: &Backend) -> Uuid {
    let p = insert(b).await;
    let confirmed = PaymentEvent::AuthorizeConfirmed { amount: 1_000_000 };
    b.store
        .transition_payment(
            p.id,
            p.version,
            &confirmed,
            announcing("payment.authorized"),
        )
        .await
        .expect("authorized");
    p.id
}

fn store_benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let backends = rt.block_on(backends());

    let mut group = c.benchmark_group("store");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(5));
    for b in &backends {
        group.bench_function(format!("insert_payment_with_outbox/{}", b.name), |bench| {
            bench.iter(|| rt.block_on(async { black_box(insert(b).await) }))
        });
        // authorized → capturing (with the capture's outbox row) → captured (with its webhook):
        // the two transactions of a full capture, timed together; the setup is not timed.
        group.bench_function(
            format!("authorized_capturing_captured/{}", b.name),
            |bench| {
                bench.iter_custom(|iters| {
                    rt.block_on(async {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            let id = authorized(b).await;
                            let start = Instant::now();
                            let t = b
                                .store
                                .transition_payment(
                                    id,
                                    1,
                                    &PaymentEvent::CaptureRequested { amount: 1_000_000 },
                                    TransitionExtras {
                                        outbox: Some(new_tx(TxKind::Capture)),
                                        ..Default::default()
                                    },
                                )
                                .await
                                .expect("capturing");
                            let confirmed = PaymentEvent::CaptureConfirmed { amount: 1_000_000 };
                            let t = b
                                .store
                                .transition_payment(
                                    id,
                                    t.payment.version,
                                    &confirmed,
                                    announcing("payment.captured"),
                                )
                                .await
                                .expect("captured");
                            total += start.elapsed();
                            assert_eq!(t.payment.status, PaymentStatus::Captured);
                        }
                        total
                    })
                })
            },
        );
    }
    group.finish();
    rt.block_on(async {
        for b in backends {
            b.store.close().await;
            if let Some(spec) = &b.cleanup {
                drop_database(spec).await;
            }
        }
    });
}

criterion_group!(benches, store_benches);
criterion_main!(benches);
