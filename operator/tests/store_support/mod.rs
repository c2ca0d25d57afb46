//! Test harness shared by the `store_*` suites: every test body runs once on a fresh SQLite file
//! and once on a fresh PostgreSQL database.
//!
//! PostgreSQL: a database `x402_t_<uuid>` is created through `X402_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`) and dropped afterwards, even when the test fails.
//! When PostgreSQL is unreachable the test fails: CI has it.
#![allow(dead_code)]

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use alloy::primitives::{Address, B256, Bytes, U256};
use sqlx::Connection;
use uuid::Uuid;
use x402_escrow_operator::lifecycle::{Flow, PaymentEvent, PaymentStatus};
use x402_escrow_operator::store::{
    Backend, NewChainTx, NewMerchant, NewPayment, NewWebhookEvent, PaymentInfoRecord, Store,
    StoreError, Transition, TransitionExtras, TxKind,
};

/// The start of test time (unix ms).
pub const T0: i64 = 1_700_000_000_000;

/// A clock the test moves by hand.
#[derive(Clone)]
pub struct TestClock(Arc<AtomicI64>);

impl TestClock {
    pub fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

/// What a test body gets.
#[derive(Clone)]
pub struct Ctx {
    pub store: Store,
    pub clock: TestClock,
    pub backend: Backend,
    /// The database URL (to open a second, independent `Store` on the same database).
    pub url: String,
}

impl Ctx {
    /// Another `Store` (its own pool) on the same database and clock: a second operator instance.
    pub async fn second_instance(&self) -> Store {
        let clock = self.clock.clone();
        Store::connect(&self.url)
            .await
            .expect("connect second instance")
            .with_clock(Arc::new(move || clock.now()))
    }
}

fn postgres_base() -> String {
    std::env::var("X402_TEST_POSTGRES_URL")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// `base` with its database name replaced by `db` (query string kept).
fn with_database(base: &str, db: &str) -> String {
    let (head, query) = match base.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (base, None),
    };
    let scheme_end = head.find("://").map(|i| i + 3).unwrap_or(0);
    let path_start = head[scheme_end..]
        .find('/')
        .map(|i| i + scheme_end)
        .unwrap_or(head.len());
    let mut url = format!("{}/{}", &head[..path_start], db);
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    url
}

async fn admin_exec(sql: String) {
    let base = postgres_base();
    let mut conn = sqlx::AnyConnection::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {base} is required for the store tests: {e}"));
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut conn)
        .await
        .expect("admin statement");
    conn.close().await.ok();
}

/// Runs `body` with the URL of a fresh database of `backend` (a temp SQLite file, or a new
/// PostgreSQL database), then removes the database. A panic in the body is re-raised after
/// cleanup. The store suites and the full-operator suites share it.
pub async fn with_db<F, Fut>(backend: Backend, body: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    sqlx::any::install_default_drivers();
    let tempdir = tempfile::tempdir().expect("tempdir");
    let pg_name = format!("x402_t_{}", Uuid::new_v4().simple());
    let url = match backend {
        Backend::Sqlite => format!("sqlite://{}/store.db?mode=rwc", tempdir.path().display()),
        Backend::Postgres => {
            admin_exec(format!("CREATE DATABASE {pg_name}")).await;
            with_database(&postgres_base(), &pg_name)
        }
    };
    // Run the body as its own task so a panic comes back as a JoinError and cleanup still runs.
    let outcome = tokio::spawn(body(url)).await;
    if backend == Backend::Postgres {
        admin_exec(format!("DROP DATABASE IF EXISTS {pg_name} WITH (FORCE)")).await;
    }
    drop(tempdir);
    if let Err(e) = outcome {
        if e.is_panic() {
            std::panic::resume_unwind(e.into_panic());
        }
        panic!("test task failed: {e}");
    }
}

/// Runs `body` against a migrated store on a fresh database of `backend` with a test clock.
pub async fn run<F, Fut>(backend: Backend, body: F)
where
    F: FnOnce(Ctx) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    with_db(backend, move |url| async move {
        let clock = TestClock(Arc::new(AtomicI64::new(T0)));
        let c = clock.clone();
        let store = Store::connect(&url)
            .await
            .expect("connect")
            .with_clock(Arc::new(move || c.now()));
        assert_eq!(store.backend(), backend);
        store.migrate().await.expect("migrate");
        let ctx = Ctx {
            store: store.clone(),
            clock,
            backend,
            url,
        };
        let outcome = tokio::spawn(body(ctx)).await;
        store.close().await;
        if let Err(e) = outcome {
            if e.is_panic() {
                std::panic::resume_unwind(e.into_panic());
            }
            panic!("test task failed: {e}");
        }
    })
    .await
}

/// Declares each listed `async fn(Ctx)` as two tests: `sqlite::<name>` and `postgres::<name>`;
/// with `sqlite: [..], postgres: [..]`, each list on its own backend.
#[macro_export]
macro_rules! store_tests {
    (sqlite: [$($s:ident),* $(,)?], postgres: [$($p:ident),* $(,)?] $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $s() {
                    $crate::store_support::run(x402_escrow_operator::store::Backend::Sqlite, super::$s).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $p() {
                    $crate::store_support::run(x402_escrow_operator::store::Backend::Postgres, super::$p).await
                }
            )*
        }
    };
    ($($name:ident),* $(,)?) => {
        $crate::store_tests!(sqlite: [$($name),*], postgres: [$($name),*]);
    };
}

// ---- fixtures ------------------------------------------------------------------------------

pub fn addr(n: u8) -> Address {
    Address::repeat_byte(n)
}

pub fn new_merchant(name: &str) -> NewMerchant {
    NewMerchant {
        name: name.to_owned(),
        receivers: vec![addr(0xAA), addr(0xAB)],
        webhook_url: Some("http://127.0.0.1:9/hooks".to_owned()),
        webhook_secret: Some(x402_escrow_operator::config::Secret::new("whsec_dGVzdA==")),
        capture_deadline_secs: 3600,
    }
}

pub async fn merchant(store: &Store) -> Uuid {
    store
        .create_merchant(&new_merchant("shop"))
        .await
        .expect("create merchant")
        .0
        .id
}

/// A second merchant, `name`, with the API key `k2`.
pub async fn second_merchant(store: &Store, name: &str) -> Uuid {
    let created = store
        .create_merchant_with_key(&new_merchant(name), "k2")
        .await;
    created.expect("create merchant").id
}

pub fn new_payment(merchant_id: Uuid, seed: u64) -> NewPayment {
    NewPayment {
        merchant_id,
        payment_hash: B256::from(U256::from(seed) + U256::from(1_000_000u64)),
        chain_id: 31337,
        escrow: addr(0xE5),
        info: PaymentInfoRecord {
            operator: addr(0x0B),
            payer: addr(0x01),
            receiver: addr(0xAA),
            token: addr(0x70),
            // uint120 max: does not fit 64 bits, round-trips as decimal text.
            max_amount: (1u128 << 120) - 1,
            pre_approval_expiry: 1_700_000_600,
            authorization_expiry: 1_700_086_400,
            refund_expiry: 1_702_592_000,
            min_fee_bps: 0,
            max_fee_bps: 1000,
            fee_receiver: Address::ZERO,
            salt: U256::MAX - U256::from(seed),
        },
        amount: 1_000_000,
        flow: Flow::Authorize,
        request_id: Some(format!("req-{seed}")),
        idempotency_key: Some(format!("idem-{seed}")),
        capture_deadline_at: Some(T0 + 3_600_000),
    }
}

pub fn signer() -> Address {
    addr(0x5E)
}

pub fn new_tx(kind: TxKind) -> NewChainTx {
    NewChainTx {
        chain_id: 31337,
        signer: signer(),
        kind,
        payment_id: None,
        request: serde_json::json!({ "kind": kind.as_str() }),
        to: addr(0xE5),
        calldata: Bytes::from(vec![0xde, 0xad, 0xbe, 0xef]),
        value: U256::ZERO,
        gas_limit: Some(200_000),
    }
}

/// Every row `sql` selects (test-only: a literal from the test), each rendered by `render`:
/// state snapshots and failure messages.
pub async fn rendered_rows(
    store: &Store,
    sql: &str,
    render: impl Fn(&sqlx::any::AnyRow) -> String,
) -> Vec<String> {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_all(store.pool())
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(render)
        .collect()
}

/// Column `name` of `row` as a `T`.
pub fn column<T>(row: &sqlx::any::AnyRow, name: &str) -> T
where
    T: for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    use sqlx::Row;
    row.try_get(name).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Rows in `table` (test-only: the name is a literal from the test).
pub async fn count(store: &Store, table: &str) -> i64 {
    use sqlx::Row;
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) AS n FROM {table}"
    )))
    .fetch_one(store.pool())
    .await
    .expect("count");
    row.try_get::<i64, _>("n").expect("n")
}

/// `event` of payment `id` at `version`, with nothing else written along.
pub async fn transition(
    store: &Store,
    id: Uuid,
    version: i64,
    event: PaymentEvent,
) -> Result<Transition, StoreError> {
    let extras = TransitionExtras::default();
    store.transition_payment(id, version, &event, extras).await
}

/// `CaptureRequested { amount }` of payment `id` at `version`, with a capture outbox row: the
/// payment is `capturing`.
pub async fn request_capture(store: &Store, id: Uuid, version: i64, amount: u128) -> Transition {
    let t = store
        .transition_payment(
            id,
            version,
            &PaymentEvent::CaptureRequested { amount },
            TransitionExtras {
                outbox: Some(new_tx(TxKind::Capture)),
                ..Default::default()
            },
        )
        .await
        .expect("capture requested");
    assert_eq!(t.payment.status, PaymentStatus::Capturing);
    t
}

/// `AuthorizeConfirmed { amount }` of the fresh payment `id` (version 0), with `webhook` (if
/// any) enqueued in the same transaction.
pub async fn confirm(
    store: &Store,
    id: Uuid,
    amount: u128,
    webhook: Option<NewWebhookEvent>,
) -> Transition {
    store
        .transition_payment(
            id,
            0,
            &PaymentEvent::AuthorizeConfirmed { amount },
            TransitionExtras {
                webhook,
                ..Default::default()
            },
        )
        .await
        .expect("authorize confirmed")
}
