//! Persistence of the wallet: payment keys, the spend ledger, the audit log, over `sqlx::Any`
//! (SQLite by default, PostgreSQL for several instances), following the operator's store
//! conventions: one query text for both databases (`$1` placeholders), portable column types
//! (times as BIGINT unix ms, amounts and addresses as TEXT), UUIDv7 ids, and write
//! transactions that take the write lock up front (`BEGIN IMMEDIATE` on SQLite, behind an
//! in-process writer queue; a `SELECT … FOR UPDATE` of the key row on PostgreSQL).

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use alloy::primitives::{Address, B256};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Row, Transaction};
use uuid::Uuid;
use x402_escrow_sdk::types::wallet::{AuditEntry, KeyRules, KeyView, WalletPaymentView};
use x402_escrow_sdk::{Amount, Network};

/// Which database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite (a file, or memory).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL names no supported database.
    #[error("unsupported database url (use sqlite:… or postgres://…)")]
    UnsupportedUrl,
    /// A stored value does not decode.
    #[error("cannot decode column {column}: {message}")]
    Decode {
        /// The column.
        column: &'static str,
        /// Why.
        message: String,
    },
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The writer queue timed out.
    #[error("timed out waiting for the database write lock")]
    WriterTimeout,
}

impl StoreError {
    /// Whether the error is a uniqueness violation (e.g. the same idempotency key twice).
    pub fn is_unique_violation(&self) -> bool {
        match self {
            StoreError::Database(sqlx::Error::Database(e)) => e.is_unique_violation(),
            _ => false,
        }
    }
}

/// Store results.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The wallet's database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    writer: Option<Arc<tokio::sync::Semaphore>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

const WRITER_TIMEOUT: Duration = Duration::from_secs(30);

impl Store {
    /// Connects (`sqlite://file?mode=rwc`, `sqlite::memory:`, `postgres://…`); does not migrate.
    pub async fn connect(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl);
        };
        let memory =
            backend == Backend::Sqlite && (url.contains(":memory:") || url.contains("mode=memory"));
        let mut options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(30));
        options = if memory {
            options
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            options.max_connections(8)
        };
        if backend == Backend::Sqlite {
            options = options.after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::raw_sql("PRAGMA busy_timeout = 30000; PRAGMA synchronous = FULL")
                        .execute(&mut *conn)
                        .await?;
                    Ok(())
                })
            });
        }
        let pool = options.connect(url).await?;
        if backend == Backend::Sqlite && !memory {
            sqlx::raw_sql("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await?;
        }
        Ok(Store {
            pool,
            backend,
            writer: (backend == Backend::Sqlite).then(|| Arc::new(tokio::sync::Semaphore::new(1))),
        })
    }

    /// Runs the embedded migrations of this backend (idempotent).
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

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A write transaction: SQLite takes the write lock now (`BEGIN IMMEDIATE`), so every
    /// read inside it sees what no concurrent writer can change before the commit.
    pub async fn begin(&self) -> Result<Tx> {
        let permit = match &self.writer {
            Some(gate) => Some(
                tokio::time::timeout(WRITER_TIMEOUT, gate.clone().acquire_owned())
                    .await
                    .map_err(|_| StoreError::WriterTimeout)?
                    .map_err(|_| StoreError::Database(sqlx::Error::PoolClosed))?,
            ),
            None => None,
        };
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(Tx {
            tx,
            backend: self.backend,
            _permit: permit,
        })
    }

    /// A key by the SHA-256 of its token.
    pub async fn key_by_token_hash(&self, hash: &str) -> Result<Option<KeyRow>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {KEY_COLUMNS} FROM wallet_keys WHERE token_hash = $1"
        )))
        .bind(hash.to_owned())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(KeyRow::decode).transpose()
    }

    /// A key by id.
    pub async fn key(&self, id: &str) -> Result<Option<KeyRow>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {KEY_COLUMNS} FROM wallet_keys WHERE id = $1"
        )))
        .bind(id.to_owned())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(KeyRow::decode).transpose()
    }

    /// Every key, oldest first.
    pub async fn keys(&self) -> Result<Vec<KeyRow>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {KEY_COLUMNS} FROM wallet_keys ORDER BY id"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(KeyRow::decode).collect()
    }

    /// A payment by id.
    pub async fn payment(&self, id: &str) -> Result<Option<PaymentRow>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PAYMENT_COLUMNS} FROM wallet_payments WHERE id = $1"
        )))
        .bind(id.to_owned())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(PaymentRow::decode).transpose()
    }

    /// A key's payment by idempotency key.
    pub async fn payment_by_idempotency(
        &self,
        key_id: &str,
        idempotency_key: &str,
    ) -> Result<Option<PaymentRow>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PAYMENT_COLUMNS} FROM wallet_payments WHERE key_id = $1 AND idempotency_key = $2"
        )))
        .bind(key_id.to_owned())
        .bind(idempotency_key.to_owned())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(PaymentRow::decode).transpose()
    }

    /// A page of payments, newest first (`cursor`: the last id of the previous page).
    pub async fn payments_page(
        &self,
        key_id: Option<&str>,
        state: Option<&str>,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Vec<PaymentRow>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PAYMENT_COLUMNS} FROM wallet_payments \
             WHERE ($1 = '' OR key_id = $1) AND ($2 = '' OR state = $2) AND ($3 = '' OR id < $3) \
             ORDER BY id DESC LIMIT $4"
        )))
        .bind(key_id.unwrap_or_default().to_owned())
        .bind(state.unwrap_or_default().to_owned())
        .bind(cursor.unwrap_or_default().to_owned())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(PaymentRow::decode).collect()
    }

    /// Every payment of a key (for usage).
    pub async fn key_payments(&self, key_id: &str) -> Result<Vec<PaymentRow>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PAYMENT_COLUMNS} FROM wallet_payments WHERE key_id = $1"
        )))
        .bind(key_id.to_owned())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(PaymentRow::decode).collect()
    }

    /// Payments in any of `states`.
    pub async fn payments_in(&self, states: &[State]) -> Result<Vec<PaymentRow>> {
        let list = states
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PAYMENT_COLUMNS} FROM wallet_payments WHERE state IN ({list}) ORDER BY id"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(PaymentRow::decode).collect()
    }

    /// A page of the audit log, newest first.
    pub async fn audit_page(
        &self,
        payment_id: Option<&str>,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT id, at, actor, key_id, payment_id, decision, rule, detail FROM wallet_audit \
             WHERE ($1 = '' OR payment_id = $1) AND ($2 = '' OR id < $2) ORDER BY id DESC LIMIT $3",
        )
        .bind(payment_id.unwrap_or_default().to_owned())
        .bind(cursor.unwrap_or_default().to_owned())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AuditEntry {
                    id: get(row, "id")?,
                    at: get(row, "at")?,
                    actor: get(row, "actor")?,
                    key_id: get(row, "key_id")?,
                    payment_id: get(row, "payment_id")?,
                    decision: get(row, "decision")?,
                    rule: get(row, "rule")?,
                    detail: get(row, "detail")?,
                })
            })
            .collect()
    }

    /// Counts of payments per state (for `/metrics`).
    pub async fn state_counts(&self) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM wallet_payments GROUP BY state")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| Ok((get(row, "state")?, get(row, "n")?)))
            .collect()
    }
}

/// A live session of the owner's page (see [`crate::owner`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerSession {
    /// The token every POST form of the session carries.
    pub csrf_token: String,
    /// When it ends (unix ms).
    pub expires_at: i64,
}

impl Store {
    /// Stores a session of the owner's page under the SHA-256 of its id, deleting ended ones.
    pub async fn insert_owner_session(&self, id_hash: &str, session: &OwnerSession) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM wallet_owner_sessions WHERE expires_at <= $1")
            .bind(now_ms())
            .execute(&mut *tx.tx)
            .await?;
        sqlx::query(
            "INSERT INTO wallet_owner_sessions (id_hash, csrf_token, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(id_hash.to_owned())
        .bind(session.csrf_token.clone())
        .bind(session.expires_at)
        .execute(&mut *tx.tx)
        .await?;
        tx.commit().await
    }

    /// The live (not ended) session stored under `id_hash`.
    pub async fn owner_session(&self, id_hash: &str) -> Result<Option<OwnerSession>> {
        let row = sqlx::query(
            "SELECT csrf_token, expires_at FROM wallet_owner_sessions \
             WHERE id_hash = $1 AND expires_at > $2",
        )
        .bind(id_hash.to_owned())
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(OwnerSession {
                csrf_token: get(&row, "csrf_token")?,
                expires_at: get(&row, "expires_at")?,
            })
        })
        .transpose()
    }

    /// Ends the session stored under `id_hash` (sign-out).
    pub async fn delete_owner_session(&self, id_hash: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM wallet_owner_sessions WHERE id_hash = $1")
            .bind(id_hash.to_owned())
            .execute(&mut *tx.tx)
            .await?;
        tx.commit().await
    }
}

/// One write transaction ([`Store::begin`]). Dropping it rolls back.
pub struct Tx {
    tx: Transaction<'static, Any>,
    backend: Backend,
    _permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl std::fmt::Debug for Tx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tx")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Tx {
    /// Commits.
    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }

    /// Rolls back.
    pub async fn rollback(self) -> Result<()> {
        self.tx.rollback().await?;
        Ok(())
    }

    /// Reads a key and, on PostgreSQL, locks its row until the transaction ends (SQLite
    /// already holds the database's write lock): every reservation of one key is serialized.
    pub async fn lock_key(&mut self, id: &str) -> Result<Option<KeyRow>> {
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        };
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {KEY_COLUMNS} FROM wallet_keys WHERE id = $1{lock}"
        )))
        .bind(id.to_owned())
        .fetch_optional(&mut *self.tx)
        .await?;
        row.as_ref().map(KeyRow::decode).transpose()
    }

    /// The key's payments that still count against its budget.
    pub async fn counting_payments(&mut self, key_id: &str) -> Result<Vec<PaymentRow>> {
        let list = State::COUNTING
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PAYMENT_COLUMNS} FROM wallet_payments WHERE key_id = $1 AND state IN ({list})"
        )))
        .bind(key_id.to_owned())
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(PaymentRow::decode).collect()
    }

    /// A payment by id, read inside the transaction.
    pub async fn payment(&mut self, id: &str) -> Result<Option<PaymentRow>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PAYMENT_COLUMNS} FROM wallet_payments WHERE id = $1"
        )))
        .bind(id.to_owned())
        .fetch_optional(&mut *self.tx)
        .await?;
        row.as_ref().map(PaymentRow::decode).transpose()
    }

    /// Inserts a key.
    pub async fn insert_key(&mut self, key: &KeyRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO wallet_keys (id, name, buyer, token_hash, rules, created_at, expires_at, \
             revoked_at, disabled, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(key.id.clone())
        .bind(key.name.clone())
        .bind(key.buyer.clone())
        .bind(key.token_hash.clone())
        .bind(json(&key.rules))
        .bind(key.created_at)
        .bind(key.expires_at)
        .bind(key.revoked_at)
        .bind(i64::from(key.disabled))
        .bind(key.updated_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Writes a key's mutable columns (token hash, rules, revocation, kill switch).
    pub async fn update_key(&mut self, key: &KeyRow) -> Result<()> {
        sqlx::query(
            "UPDATE wallet_keys SET token_hash = $2, rules = $3, revoked_at = $4, disabled = $5, \
             updated_at = $6 WHERE id = $1",
        )
        .bind(key.id.clone())
        .bind(key.token_hash.clone())
        .bind(json(&key.rules))
        .bind(key.revoked_at)
        .bind(i64::from(key.disabled))
        .bind(key.updated_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Inserts a payment.
    pub async fn insert_payment(&mut self, p: &PaymentRow) -> Result<()> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO wallet_payments ({PAYMENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, \
             $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, \
             $25, $26, $27)"
        )))
        .bind(p.id.clone())
        .bind(p.key_id.clone())
        .bind(p.idempotency_key.clone())
        .bind(p.request_hash.clone())
        .bind(p.url.clone())
        .bind(p.method.clone())
        .bind(p.scheme.clone())
        .bind(p.network.map(|n| n.to_string()))
        .bind(p.asset.map(|a| hexs(a.as_slice())))
        .bind(p.payee.map(|a| hexs(a.as_slice())))
        .bind(p.amount.to_string())
        .bind(p.returned.to_string())
        .bind(p.state.as_str().to_owned())
        .bind(p.rule.clone())
        .bind(p.detail.clone())
        .bind(p.header_name.clone())
        .bind(p.header_value.clone())
        .bind(p.payment_hash.map(|h| hexs(h.as_slice())))
        .bind(p.escrow.map(|a| hexs(a.as_slice())))
        .bind(p.random.map(|h| hexs(h.as_slice())))
        .bind(p.payer.map(|a| hexs(a.as_slice())))
        .bind(p.valid_before)
        .bind(p.receipt.clone())
        .bind(p.tx_hash.map(|h| hexs(h.as_slice())))
        .bind(p.http_status)
        .bind(p.created_at)
        .bind(p.updated_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Writes a payment's mutable columns if it is still in `expected`; whether it was.
    pub async fn update_payment(&mut self, p: &PaymentRow, expected: State) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE wallet_payments SET scheme = $3, network = $4, asset = $5, payee = $6, \
             amount = $7, returned = $8, state = $9, rule = $10, detail = $11, header_name = $12, \
             header_value = $13, payment_hash = $14, escrow = $15, random = $16, payer = $17, \
             valid_before = $18, receipt = $19, tx_hash = $20, http_status = $21, updated_at = $22 \
             WHERE id = $1 AND state = $2",
        )
        .bind(p.id.clone())
        .bind(expected.as_str().to_owned())
        .bind(p.scheme.clone())
        .bind(p.network.map(|n| n.to_string()))
        .bind(p.asset.map(|a| hexs(a.as_slice())))
        .bind(p.payee.map(|a| hexs(a.as_slice())))
        .bind(p.amount.to_string())
        .bind(p.returned.to_string())
        .bind(p.state.as_str().to_owned())
        .bind(p.rule.clone())
        .bind(p.detail.clone())
        .bind(p.header_name.clone())
        .bind(p.header_value.clone())
        .bind(p.payment_hash.map(|h| hexs(h.as_slice())))
        .bind(p.escrow.map(|a| hexs(a.as_slice())))
        .bind(p.random.map(|h| hexs(h.as_slice())))
        .bind(p.payer.map(|a| hexs(a.as_slice())))
        .bind(p.valid_before)
        .bind(p.receipt.clone())
        .bind(p.tx_hash.map(|h| hexs(h.as_slice())))
        .bind(p.http_status)
        .bind(p.updated_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Appends to the audit log.
    pub async fn audit(&mut self, entry: &AuditEntry) -> Result<()> {
        sqlx::query(
            "INSERT INTO wallet_audit (id, at, actor, key_id, payment_id, decision, rule, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(entry.id.clone())
        .bind(entry.at)
        .bind(entry.actor.clone())
        .bind(entry.key_id.clone())
        .bind(entry.payment_id.clone())
        .bind(entry.decision.clone())
        .bind(entry.rule.clone())
        .bind(entry.detail.clone())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}

/// A fresh UUIDv7 (sorts by creation time).
pub fn new_id() -> String {
    Uuid::now_v7().hyphenated().to_string()
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "{}".to_owned())
}

fn hexs(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

fn get<'r, T>(row: &'r AnyRow, column: &'static str) -> Result<T>
where
    T: sqlx::Decode<'r, Any> + sqlx::Type<Any>,
{
    row.try_get::<T, _>(column).map_err(|e| StoreError::Decode {
        column,
        message: e.to_string(),
    })
}

fn parse<T: FromStr>(column: &'static str, text: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    text.parse().map_err(|e: T::Err| StoreError::Decode {
        column,
        message: e.to_string(),
    })
}

fn parse_opt<T: FromStr>(row: &AnyRow, column: &'static str) -> Result<Option<T>>
where
    T::Err: std::fmt::Display,
{
    get::<Option<String>>(row, column)?
        .map(|text| parse(column, &text))
        .transpose()
}

fn amount(row: &AnyRow, column: &'static str) -> Result<Amount> {
    Amount::parse(&get::<String>(row, column)?).map_err(|e| StoreError::Decode {
        column,
        message: e.to_string(),
    })
}

const KEY_COLUMNS: &str =
    "id, name, buyer, token_hash, rules, created_at, expires_at, revoked_at, disabled, updated_at";

/// A payment key as stored (the token only as its SHA-256).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRow {
    /// Id.
    pub id: String,
    /// Label.
    pub name: String,
    /// Buyer key name.
    pub buyer: String,
    /// SHA-256 hex of the token.
    pub token_hash: String,
    /// Rules.
    pub rules: KeyRules,
    /// Creation (unix ms).
    pub created_at: i64,
    /// Expiry (unix seconds).
    pub expires_at: Option<i64>,
    /// Revocation (unix ms).
    pub revoked_at: Option<i64>,
    /// Kill switch.
    pub disabled: bool,
    /// Last change (unix ms).
    pub updated_at: i64,
}

impl KeyRow {
    fn decode(row: &AnyRow) -> Result<KeyRow> {
        let rules: String = get(row, "rules")?;
        Ok(KeyRow {
            id: get(row, "id")?,
            name: get(row, "name")?,
            buyer: get(row, "buyer")?,
            token_hash: get(row, "token_hash")?,
            rules: serde_json::from_str(&rules).map_err(|e| StoreError::Decode {
                column: "rules",
                message: e.to_string(),
            })?,
            created_at: get(row, "created_at")?,
            expires_at: get(row, "expires_at")?,
            revoked_at: get(row, "revoked_at")?,
            disabled: get::<i64>(row, "disabled")? != 0,
            updated_at: get(row, "updated_at")?,
        })
    }

    /// The owner's view.
    pub fn view(&self) -> KeyView {
        KeyView {
            id: self.id.clone(),
            name: self.name.clone(),
            buyer: self.buyer.clone(),
            rules: self.rules.clone(),
            created_at: self.created_at,
            expires_at: self.expires_at,
            revoked_at: self.revoked_at,
            disabled: self.disabled,
        }
    }
}

/// Where a payment of the ledger stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Above the approval threshold: budget reserved, waiting for the owner.
    PendingApproval,
    /// Budget reserved, not signed yet (or approved, to be signed on the caller's retry).
    Reserved,
    /// Signed and persisted; the header may or may not have reached the merchant.
    Signed,
    /// An escrow hold (auth-capture) the merchant has not captured or voided yet.
    Authorized,
    /// Kept by the merchant (captured hold, or an `exact` transfer).
    Captured,
    /// The hold was released: everything came back.
    Voided,
    /// Part or all of a captured payment came back (`returned`).
    Refunded,
    /// A rule refused it: nothing was signed.
    Refused,
    /// The owner rejected it: nothing was signed.
    Rejected,
    /// The merchant refused the payment: nothing was taken.
    Failed,
    /// Signed but never used before its validity ended: released.
    Expired,
}

impl State {
    /// States whose amount (minus `returned`) counts against the key's budget.
    pub const COUNTING: [State; 6] = [
        State::PendingApproval,
        State::Reserved,
        State::Signed,
        State::Authorized,
        State::Captured,
        State::Refunded,
    ];

    /// Every state.
    pub const ALL: [State; 11] = [
        State::PendingApproval,
        State::Reserved,
        State::Signed,
        State::Authorized,
        State::Captured,
        State::Voided,
        State::Refunded,
        State::Refused,
        State::Rejected,
        State::Failed,
        State::Expired,
    ];

    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            State::PendingApproval => "pending_approval",
            State::Reserved => "reserved",
            State::Signed => "signed",
            State::Authorized => "authorized",
            State::Captured => "captured",
            State::Voided => "voided",
            State::Refunded => "refunded",
            State::Refused => "refused",
            State::Rejected => "rejected",
            State::Failed => "failed",
            State::Expired => "expired",
        }
    }

    /// Whether the amount still counts against the budget.
    pub fn counts(self) -> bool {
        State::COUNTING.contains(&self)
    }

    /// Whether the outcome is not final yet (the money may still move).
    pub fn in_flight(self) -> bool {
        matches!(
            self,
            State::PendingApproval | State::Reserved | State::Signed | State::Authorized
        )
    }
}

impl FromStr for State {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        State::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| format!("unknown payment state {s:?}"))
    }
}

const PAYMENT_COLUMNS: &str = "id, key_id, idempotency_key, request_hash, url, method, scheme, \
    network, asset, payee, amount, returned, state, rule, detail, header_name, header_value, \
    payment_hash, escrow, random, payer, valid_before, receipt, tx_hash, http_status, created_at, \
    updated_at";

/// One payment of the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRow {
    /// Id (UUIDv7), also the `Idempotency-Key` sent to the merchant.
    pub id: String,
    /// The payment key.
    pub key_id: String,
    /// The caller's idempotency key (a fresh one when the caller gave none).
    pub idempotency_key: String,
    /// SHA-256 of the request (method, URL, headers, body): a reused idempotency key must come
    /// with the same request.
    pub request_hash: String,
    /// URL.
    pub url: String,
    /// Method.
    pub method: String,
    /// Scheme chosen.
    pub scheme: Option<String>,
    /// Network.
    pub network: Option<Network>,
    /// Token.
    pub asset: Option<Address>,
    /// Recipient.
    pub payee: Option<Address>,
    /// Amount (atomic units).
    pub amount: Amount,
    /// Returned to the budget.
    pub returned: Amount,
    /// State.
    pub state: State,
    /// The rule that refused it.
    pub rule: Option<String>,
    /// Why, in words.
    pub detail: Option<String>,
    /// The signed header's name.
    pub header_name: Option<String>,
    /// The signed header's value (persisted before it is sent).
    pub header_value: Option<String>,
    /// auth-capture: the escrow payment hash.
    pub payment_hash: Option<B256>,
    /// auth-capture: the escrow.
    pub escrow: Option<Address>,
    /// exact: the ERC-3009 nonce; auth-capture: the salt.
    pub random: Option<B256>,
    /// The payer.
    pub payer: Option<Address>,
    /// The signature's `validBefore` (unix seconds).
    pub valid_before: Option<i64>,
    /// The receipt (JSON).
    pub receipt: Option<String>,
    /// The settlement transaction.
    pub tx_hash: Option<B256>,
    /// The merchant's status for the paid request.
    pub http_status: Option<i64>,
    /// Creation (unix ms).
    pub created_at: i64,
    /// Last change (unix ms).
    pub updated_at: i64,
}

impl PaymentRow {
    fn decode(row: &AnyRow) -> Result<PaymentRow> {
        let state: String = get(row, "state")?;
        Ok(PaymentRow {
            id: get(row, "id")?,
            key_id: get(row, "key_id")?,
            idempotency_key: get(row, "idempotency_key")?,
            request_hash: get(row, "request_hash")?,
            url: get(row, "url")?,
            method: get(row, "method")?,
            scheme: get(row, "scheme")?,
            network: parse_opt(row, "network")?,
            asset: parse_opt(row, "asset")?,
            payee: parse_opt(row, "payee")?,
            amount: amount(row, "amount")?,
            returned: amount(row, "returned")?,
            state: parse("state", &state)?,
            rule: get(row, "rule")?,
            detail: get(row, "detail")?,
            header_name: get(row, "header_name")?,
            header_value: get(row, "header_value")?,
            payment_hash: parse_opt(row, "payment_hash")?,
            escrow: parse_opt(row, "escrow")?,
            random: parse_opt(row, "random")?,
            payer: parse_opt(row, "payer")?,
            valid_before: get(row, "valid_before")?,
            receipt: get(row, "receipt")?,
            tx_hash: parse_opt(row, "tx_hash")?,
            http_status: get(row, "http_status")?,
            created_at: get(row, "created_at")?,
            updated_at: get(row, "updated_at")?,
        })
    }

    /// What still counts against the budget.
    pub fn counted(&self) -> Amount {
        if self.state.counts() {
            Amount::new(self.amount.get().saturating_sub(self.returned.get()))
        } else {
            Amount::ZERO
        }
    }

    /// The ledger's view.
    pub fn view(&self) -> WalletPaymentView {
        WalletPaymentView {
            id: self.id.clone(),
            key_id: self.key_id.clone(),
            state: self.state.as_str().to_owned(),
            rule: self.rule.clone(),
            detail: self.detail.clone(),
            url: self.url.clone(),
            method: self.method.clone(),
            scheme: self.scheme.clone(),
            network: self.network,
            asset: self.asset,
            payee: self.payee,
            amount: self.amount,
            returned: self.returned,
            payment_hash: self.payment_hash.map(|h| h.to_string()),
            transaction: self.tx_hash.map(|h| h.to_string()),
            http_status: self.http_status.and_then(|s| u16::try_from(s).ok()),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}
