//! Persistence: one [`Store`] over `sqlx::Any`, for SQLite (the default, a file or memory) and
//! PostgreSQL (several operator instances sharing one database).
//!
//! # Conventions
//!
//! * One query text serves both databases (`$1` placeholders, `RETURNING`, `ON CONFLICT`);
//!   where they truly differ (`FOR UPDATE SKIP LOCKED`), [`Backend`] picks the statement.
//! * Portable column types only: `BIGINT` (times are unix **milliseconds**, except the
//!   `PaymentInfo` expiries, which keep the chain's unix seconds), `TEXT` for addresses and hashes
//!   (lower-case `0x` hex), decimal `TEXT` for token amounts and other uint256 numbers, `TEXT` JSON.
//!   Ids are UUIDv7 text generated here, so they sort by creation time.
//! * Every write that must be atomic with another runs in one [`StoreTx`]. On SQLite a write
//!   transaction starts with `BEGIN IMMEDIATE`: it takes the write lock up front (waiting up to
//!   the busy timeout) instead of failing when a read-then-write transaction has to upgrade.
//! * A payment's status changes only through [`StoreTx::transition_payment`], which applies
//!   [`crate::lifecycle::PaymentStatus::apply`] and writes with `WHERE version = $expected`.
//!
//! Every `Store` method that writes more than one row opens its own transaction; the same
//! operations on a [`StoreTx`] let a caller combine them (e.g. mark a transaction final *and*
//! transition its payment *and* enqueue the webhook, all or nothing).

mod batches;
mod chain;
mod codec;
mod events;
mod group;
mod idempotency;
mod merchants;
mod pages;
mod payments;
mod reserve;
mod webhooks;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::AnyConnection;
use sqlx::any::AnyPoolOptions;
use sqlx::{Any, AnyPool, Transaction};
use uuid::Uuid;

use crate::lifecycle::IllegalTransition;

pub use batches::{BatchKinds, BatchMember, Hold};
pub use chain::{
    ChainTx, Lease, MinedReceipt, NewChainTx, NewTxAttempt, OUTBOX_CHANNEL, Signer, TxAttempt,
    TxKind, TxStatus,
};
pub use events::{
    ChainEvent, CursorPosition, IndexedBlock, IndexerAdvance, IndexerCursor, NewChainEvent,
};
pub use group::{MAX_GROUP, TxFuture};
pub use idempotency::{IdempotencyBegin, request_fingerprint};
pub use merchants::{Merchant, NewMerchant, generate_api_key, hash_api_key};
pub use pages::Page;
pub use payments::{
    NewPayment, OperatorInUse, PAYMENT_CHANNEL, Payment, PaymentFilter, PaymentInfoRecord,
    Transition, TransitionExtras,
};
pub use reserve::{
    DEPOSIT_EVENT, DepositOutcome, NewTopup, ReserveBalance, ReserveCredit, ReserveEntry,
    ReserveKind, ReserveReason, Topup, deposit_of,
};
pub use webhooks::{
    ClaimedDelivery, DeliveryLogEntry, DeliveryOutcome, DeliveryStatus, ENDPOINT_DISABLED,
    NO_ENDPOINT, NewWebhookEvent, WebhookDelivery, WebhookEvent,
};

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite (bundled): a file, or `sqlite::memory:`.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Backend {
    /// The backend a connection URL names (`sqlite:…`, `postgres://…`, `postgresql://…`).
    pub fn from_url(url: &str) -> Result<Backend, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(StoreError::UnsupportedUrl(redact_url(url)))
        }
    }
}

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No row with that key.
    #[error("{entity} not found: {key}")]
    NotFound {
        /// The kind of row (`payment`, `merchant`, …).
        entity: &'static str,
        /// The key looked up.
        key: String,
    },
    /// A uniqueness rule refused the write (e.g. a payment hash that already exists).
    #[error("{entity} conflict: {detail}")]
    Conflict {
        /// The kind of row.
        entity: &'static str,
        /// What collided.
        detail: String,
    },
    /// Optimistic concurrency: the row changed since it was read.
    #[error("payment {id} changed concurrently (expected version {expected}, found {actual:?})")]
    VersionMismatch {
        /// The payment.
        id: Uuid,
        /// The version the caller read.
        expected: i64,
        /// The version now stored, if the row still exists.
        actual: Option<i64>,
    },
    /// The lifecycle refused the event.
    #[error(transparent)]
    IllegalTransition(#[from] IllegalTransition),
    /// A chain transaction is not in a status the requested change may start from.
    #[error("chain tx {id} is {status}, cannot {action}")]
    TxState {
        /// The chain transaction.
        id: Uuid,
        /// Its current status.
        status: TxStatus,
        /// What was attempted.
        action: &'static str,
    },
    /// The caller does not hold the signer's lease (never had it, or it expired and another
    /// instance may have taken over).
    #[error("lease on signer {signer} (chain {chain_id}) not held by {owner}")]
    LeaseNotHeld {
        /// The chain.
        chain_id: u64,
        /// The signer address (`0x…`).
        signer: String,
        /// Who asked.
        owner: String,
    },
    /// A worker's claim on a row expired and someone else took it.
    #[error("{entity} {id} is no longer claimed by {owner}")]
    ClaimLost {
        /// The kind of row.
        entity: &'static str,
        /// The row.
        id: Uuid,
        /// The worker that lost it.
        owner: String,
    },
    /// A stored value could not be decoded (a bug or a hand-edited database).
    #[error("cannot decode column {column}: {message}")]
    Decode {
        /// The column.
        column: &'static str,
        /// What was wrong.
        message: String,
    },
    /// The URL names no supported database.
    #[error("unsupported database url {0} (use sqlite:… or postgres://…)")]
    UnsupportedUrl(String),
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A merchant's refund reserve cannot cover a debit (nothing was written).
    #[error("merchant {merchant_id}'s refund reserve in {asset} is {balance}, short of {needed}")]
    ReserveInsufficient {
        /// The merchant.
        merchant_id: Uuid,
        /// The token.
        asset: alloy::primitives::Address,
        /// Its balance.
        balance: u128,
        /// What the debit needed.
        needed: u128,
    },
    /// Any other database error.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The group transaction this write shared (see [`Store::grouped`]) failed: none of its
    /// writes happened.
    #[error("group transaction failed: {0}")]
    GroupCommit(#[source] Arc<StoreError>),
}

impl StoreError {
    /// Whether retrying the whole operation (after re-reading) may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::VersionMismatch { .. })
    }
}

/// Shorthand for store results.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The time source (unix milliseconds). Injectable so tests can move time.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The wall clock in unix milliseconds.
pub fn system_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Connection settings beyond the URL.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Pool size (PostgreSQL and SQLite files; an in-memory SQLite database always uses one
    /// connection, since each connection would otherwise see its own empty database).
    pub max_connections: u32,
    /// How long to wait for a connection from the pool.
    pub acquire_timeout: Duration,
    /// SQLite: how long a writer waits for the write lock before failing with "busy".
    pub sqlite_busy_timeout: Duration,
    /// SQLite files: when commits reach the disk.
    pub sqlite_synchronous: SqliteSynchronous,
}

/// SQLite's `synchronous` setting for database files (`[database] sqlite_synchronous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SqliteSynchronous {
    /// Every commit is on disk before it returns (an fsync of the WAL per commit): nothing
    /// committed is lost even on power failure. The default.
    #[default]
    Full,
    /// Commits return once in the WAL; the WAL is synced at checkpoints. Never corrupts, and
    /// survives a crash of the process, but a power failure or OS crash may roll back the last
    /// commits (the relayer and the indexer then recover from the chain). Several times the
    /// write throughput on disks with slow fsync.
    Normal,
}

impl SqliteSynchronous {
    fn pragma(self) -> &'static str {
        match self {
            SqliteSynchronous::Full => "FULL",
            SqliteSynchronous::Normal => "NORMAL",
        }
    }
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(30),
            sqlite_busy_timeout: Duration::from_secs(30),
            sqlite_synchronous: SqliteSynchronous::Full,
        }
    }
}

/// The operator's database. Cheap to clone (a pool handle).
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    clock: Clock,
    /// SQLite: the in-process queue of writers (see [`Store::begin`]).
    writer: Option<WriterGate>,
    /// Write transactions this process committed (see [`Store::write_count`]).
    writes: Arc<AtomicU64>,
    /// SQLite: how long this process has held the write turn, ns (see
    /// [`Store::writer_busy_secs`]).
    writer_busy_ns: Arc<AtomicU64>,
    /// The group committer of [`Store::grouped`].
    group: group::GroupCommitter,
}

/// SQLite admits one writer at a time. Writers of this process queue here, in order, instead
/// of racing for the file lock: a loser of that race sleeps in SQLite's busy handler (1, 2, 5,
/// 10 … 100 ms steps) even when the lock frees a few microseconds later, which under load
/// turns into long latency tails and idle time. Waiting is bounded by the busy timeout, like
/// SQLite's own wait.
#[derive(Clone)]
struct WriterGate {
    permits: Arc<tokio::sync::Semaphore>,
    timeout: Duration,
}

/// SQLite: this process's write turn, held by one [`StoreTx`]. Dropping it gives the turn back
/// and adds how long it was held to the store's busy time: the share of the time the single
/// writer is taken is how close the store is to its ceiling.
struct WriterTurn {
    _permit: tokio::sync::OwnedSemaphorePermit,
    since: std::time::Instant,
    busy_ns: Arc<AtomicU64>,
}

impl Drop for WriterTurn {
    fn drop(&mut self) {
        let held = u64::try_from(self.since.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.busy_ns.fetch_add(held, Ordering::Relaxed);
    }
}

/// `Name { backend: …, .. }`: what `Debug` shows of [`Store`] and [`StoreTx`] (their clock is a
/// closure, their pool and transaction say nothing useful).
fn debug_backend(
    f: &mut std::fmt::Formatter<'_>,
    name: &str,
    backend: Backend,
) -> std::fmt::Result {
    f.debug_struct(name)
        .field("backend", &backend)
        .finish_non_exhaustive()
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        debug_backend(f, "Store", self.backend)
    }
}

impl Store {
    /// Connects with default [`StoreOptions`]. URLs: `sqlite://path?mode=rwc`,
    /// `sqlite::memory:`, `postgres://user@host:port/db`.
    pub async fn connect(url: &str) -> Result<Store> {
        Store::connect_with(url, &StoreOptions::default()).await
    }

    /// Connects with explicit options. Does not run migrations (see [`Store::migrate`]).
    pub async fn connect_with(url: &str, options: &StoreOptions) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        let in_memory = backend == Backend::Sqlite && is_sqlite_memory(url);
        let mut pool_options = AnyPoolOptions::new().acquire_timeout(options.acquire_timeout);
        if in_memory {
            // One connection that never closes: the database lives as long as it does.
            pool_options = pool_options
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None);
        } else {
            pool_options = pool_options.max_connections(options.max_connections.max(1));
        }
        if backend == Backend::Sqlite {
            // No ping before handing a connection out: a SQLite connection is a file handle in
            // this process, with no peer to have gone away, and each ping is a round trip to the
            // connection's worker thread (one per pool read, on every paid request). sqlx still
            // pings when a connection comes back, which also finishes anything a dropped query
            // left behind.
            pool_options = pool_options.test_before_acquire(false);
            let busy_ms =
                i64::try_from(options.sqlite_busy_timeout.as_millis()).unwrap_or(i64::MAX);
            let synchronous = options.sqlite_synchronous.pragma();
            pool_options = pool_options.after_connect(move |conn, _meta| {
                Box::pin(async move {
                    // PRAGMA takes no bind parameters; the values are ours.
                    let pragma = format!(
                        "PRAGMA busy_timeout = {busy_ms}; PRAGMA synchronous = {synchronous}"
                    );
                    sqlx::raw_sql(sqlx::AssertSqlSafe(pragma))
                        .execute(&mut *conn)
                        .await?;
                    Ok(())
                })
            });
        }
        let pool = pool_options.connect(url).await?;
        if backend == Backend::Sqlite && !in_memory {
            // WAL lets readers run while one writer writes; the setting is stored in the file.
            sqlx::raw_sql("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await?;
        }
        tracing::debug!(?backend, url = %redact_url(url), "store connected");
        Ok(Store {
            pool,
            backend,
            clock: Arc::new(system_now_ms),
            writer: (backend == Backend::Sqlite).then(|| WriterGate {
                permits: Arc::new(tokio::sync::Semaphore::new(1)),
                timeout: options.sqlite_busy_timeout,
            }),
            writes: Arc::new(AtomicU64::new(0)),
            writer_busy_ns: Arc::new(AtomicU64::new(0)),
            group: group::GroupCommitter::default(),
        })
    }

    /// SQL write transactions this process has committed through this store and its clones:
    /// every [`StoreTx::commit`] and every single-statement write (each is its own
    /// transaction). `x402_store_write_transactions_total` on `/metrics`; the bench divides it
    /// by the paid requests it made.
    pub fn write_count(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// SQLite: the seconds this process has held the database's single write turn (a
    /// [`StoreTx`] from [`Store::begin`] to its commit or rollback; group commits included).
    /// Its rate is the writer's utilisation: near 1 s per second, writes queue for the turn.
    /// `x402_store_writer_busy_seconds_total` on `/metrics`. `None` on PostgreSQL, whose
    /// writers do not take turns.
    pub fn writer_busy_secs(&self) -> Option<f64> {
        self.writer
            .as_ref()
            .map(|_| self.writer_busy_ns.load(Ordering::Relaxed) as f64 / 1e9)
    }

    /// Counts one single-statement write (autocommit) and passes its result through.
    fn wrote<T>(&self, result: T) -> T {
        self.writes.fetch_add(1, Ordering::Relaxed);
        result
    }

    /// Replaces the clock (tests move time with it).
    pub fn with_clock(mut self, clock: Clock) -> Store {
        self.clock = clock;
        self
    }

    /// The current time according to the store's clock (unix ms).
    pub fn now_ms(&self) -> i64 {
        (self.clock)()
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The underlying pool (for health checks and ad-hoc queries).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Runs the embedded migrations for this backend. Idempotent; safe to run from several
    /// instances at once (sqlx takes a database lock on PostgreSQL).
    pub async fn migrate(&self) -> Result<()> {
        match self.backend {
            Backend::Sqlite => {
                sqlx::migrate!("./migrations/sqlite")
                    .run(&self.pool)
                    .await?
            }
            Backend::Postgres => {
                sqlx::migrate!("./migrations/postgres")
                    .run(&self.pool)
                    .await?
            }
        }
        Ok(())
    }

    /// Checks that the database answers (`/readyz`).
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Starts a write transaction (`BEGIN IMMEDIATE` on SQLite). Dropping the [`StoreTx`]
    /// without [`StoreTx::commit`] rolls everything back.
    pub async fn begin(&self) -> Result<StoreTx> {
        let permit = match &self.writer {
            Some(gate) => Some(WriterTurn {
                _permit: tokio::time::timeout(gate.timeout, gate.permits.clone().acquire_owned())
                    .await
                    .map_err(|_| StoreError::Database(sqlx::Error::PoolTimedOut))?
                    .map_err(|_| StoreError::Database(sqlx::Error::PoolClosed))?,
                since: std::time::Instant::now(),
                busy_ns: self.writer_busy_ns.clone(),
            }),
            None => None,
        };
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(StoreTx {
            tx,
            backend: self.backend,
            clock: self.clock.clone(),
            writes: self.writes.clone(),
            _writer: permit,
        })
    }

    /// A pooled connection for reads.
    async fn conn(&self) -> Result<sqlx::pool::PoolConnection<Any>> {
        Ok(self.pool.acquire().await?)
    }
}

/// One database transaction with the store's write operations. Commit with
/// [`StoreTx::commit`]. On error call [`StoreTx::rollback`]: dropping also rolls back, but only
/// when the connection is next used, and until then PostgreSQL keeps the transaction's row locks.
pub struct StoreTx {
    tx: Transaction<'static, Any>,
    backend: Backend,
    clock: Clock,
    /// The store's count of committed write transactions.
    writes: Arc<AtomicU64>,
    /// SQLite: this process's write turn, given back when the transaction ends.
    _writer: Option<WriterTurn>,
}

impl std::fmt::Debug for StoreTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        debug_backend(f, "StoreTx", self.backend)
    }
}

impl StoreTx {
    /// Commits every write made through this transaction.
    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        self.writes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Opens a savepoint (one level: [`Store::grouped`] runs each write of a group in one).
    async fn savepoint(&mut self) -> Result<()> {
        self.raw("SAVEPOINT grouped_write").await
    }

    /// Keeps what was written since [`StoreTx::savepoint`].
    async fn release_savepoint(&mut self) -> Result<()> {
        self.raw("RELEASE SAVEPOINT grouped_write").await
    }

    /// Undoes what was written since [`StoreTx::savepoint`] (the transaction goes on).
    async fn rollback_to_savepoint(&mut self) -> Result<()> {
        self.raw("ROLLBACK TO SAVEPOINT grouped_write").await?;
        self.raw("RELEASE SAVEPOINT grouped_write").await
    }

    /// A fixed statement of ours, no parameters.
    async fn raw(&mut self, sql: &'static str) -> Result<()> {
        sqlx::raw_sql(sql).execute(self.conn()).await?;
        Ok(())
    }

    /// Rolls back explicitly (dropping does the same).
    pub async fn rollback(self) -> Result<()> {
        self.tx.rollback().await?;
        Ok(())
    }

    /// The current time according to the store's clock (unix ms).
    pub fn now_ms(&self) -> i64 {
        (self.clock)()
    }

    fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }
}

/// Runs `$body` inside a fresh [`StoreTx`] bound to `$tx`; commits on success and rolls back
/// explicitly on error. (`?` and `return` inside `$body` leave only the body.) The explicit
/// rollback matters on PostgreSQL: a dropped transaction is rolled back only when its connection
/// is next used, and until then it keeps its row locks, which `SKIP LOCKED` claimers would skip.
macro_rules! in_tx {
    ($self:ident, |$tx:ident| $body:expr) => {
        $crate::store::in_tx!(@run $self, $crate::store::always_commit, |$tx| $body)
    };
    (@run $self:ident, $commit_if:path, |$tx:ident| $body:expr) => {{
        let mut $tx = $self.begin().await?;
        #[allow(clippy::redundant_closure_call)]
        let out: $crate::store::Result<_> = async { Ok($body) }.await;
        match out {
            Ok(value) if $commit_if(&value) => {
                $tx.commit().await?;
                Ok(value)
            }
            Ok(value) => {
                $tx.rollback().await?;
                Ok(value)
            }
            Err(e) => {
                if let Err(rollback) = $tx.rollback().await {
                    tracing::warn!(error = %rollback, "rollback failed");
                }
                Err(e)
            }
        }
    }};
}
pub(crate) use in_tx;

/// [`in_tx!`] for a claim, whose value is what it took ([`Claimed`]): it commits only when it
/// took something; a claim that found nothing rolls back, so an idle poll is not a write.
macro_rules! in_claim_tx {
    ($self:ident, |$tx:ident| $body:expr) => {
        $crate::store::in_tx!(@run $self, $crate::store::Claimed::took_something, |$tx| $body)
    };
}
pub(crate) use in_claim_tx;

/// [`in_tx!`]'s plain form: every successful body commits.
pub(crate) fn always_commit<T>(_: &T) -> bool {
    true
}

/// What a claim took: nothing is an empty list or `None` (see [`in_claim_tx!`]).
pub(crate) trait Claimed {
    /// Whether the claim took anything.
    fn took_something(&self) -> bool;
}

impl<T> Claimed for Vec<T> {
    fn took_something(&self) -> bool {
        !self.is_empty()
    }
}

impl<T> Claimed for Option<T> {
    fn took_something(&self) -> bool {
        self.is_some()
    }
}

/// Declares, inside `impl Store`, methods that each run the [`StoreTx`] method of the same name
/// with the same arguments in a transaction of their own ([`in_tx!`]).
macro_rules! in_own_tx {
    ($(
        $(#[$meta:meta])*
        pub async fn $name:ident(&self $(, $arg:ident: $ty:ty)* $(,)?) -> $ret:ty;
    )*) => {
        $(
            $(#[$meta])*
            pub async fn $name(&self $(, $arg: $ty)*) -> $ret {
                $crate::store::in_tx!(self, |tx| tx.$name($($arg),*).await?)
            }
        )*
    };
}
pub(crate) use in_own_tx;

fn is_sqlite_memory(url: &str) -> bool {
    url == "sqlite::memory:" || url.contains(":memory:") || url.contains("mode=memory")
}

/// The URL without its password (for logs and errors).
pub fn redact_url(url: &str) -> String {
    // scheme://user:password@host → scheme://user:[redacted]@host
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((userinfo, host)) = rest.split_once('@')
        && let Some((user, _password)) = userinfo.split_once(':')
    {
        return format!("{scheme}://{user}:[redacted]@{host}");
    }
    url.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_from_url() {
        for (url, backend) in [
            ("sqlite::memory:", Backend::Sqlite),
            ("sqlite://x.db?mode=rwc", Backend::Sqlite),
            ("postgres://u@h/db", Backend::Postgres),
            ("postgresql://u@h/db", Backend::Postgres),
        ] {
            assert_eq!(Backend::from_url(url).unwrap(), backend, "{url}");
        }
        assert!(Backend::from_url("mysql://u:p@h/db").is_err());
        match Backend::from_url("mysql://u:secret@h/db") {
            Err(StoreError::UnsupportedUrl(u)) => assert!(!u.contains("secret")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://u:pw@h:5432/db"),
            "postgres://u:[redacted]@h:5432/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("sqlite::memory:"), "sqlite::memory:");
    }
}
