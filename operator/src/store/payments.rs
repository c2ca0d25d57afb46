//! Payments: insertion together with their first outbox row, lookups, and the one way a status
//! changes ([`StoreTx::transition_payment`]).

use alloy::primitives::{Address, B256, U256};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use uuid::Uuid;

use super::chain::{self, ChainTx, NewChainTx};
use super::codec::{self, Record, get_i64, get_opt_i64, get_opt_str, get_u64, get_u128, get_uuid};
use super::webhooks::{self, NewWebhookEvent, WebhookEvent};
use super::{Backend, Result, Store, StoreError, StoreTx};
use crate::lifecycle::{Amount, Amounts, Flow, PaymentEvent, PaymentStatus};

/// The escrow's `PaymentInfo`, field by field (addresses typed, amounts as `u128`, expiries in
/// the chain's unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentInfoRecord {
    /// The only address allowed to authorize, capture, void, refund or charge.
    pub operator: Address,
    /// The payer.
    pub payer: Address,
    /// The merchant's receiving address.
    pub receiver: Address,
    /// The ERC-20 token.
    pub token: Address,
    /// The most that may be authorized or charged (`uint120`).
    pub max_amount: Amount,
    /// Authorize / charge refused at or after this time (unix seconds).
    pub pre_approval_expiry: u64,
    /// Captures refused at or after this time; the payer may reclaim from then on.
    pub authorization_expiry: u64,
    /// Refunds refused at or after this time.
    pub refund_expiry: u64,
    /// Lowest fee in basis points.
    pub min_fee_bps: u16,
    /// Highest fee in basis points.
    pub max_fee_bps: u16,
    /// Fee receiver (zero: chosen at capture time).
    pub fee_receiver: Address,
    /// Entropy.
    pub salt: U256,
}

/// A payment to insert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPayment {
    /// The merchant it belongs to.
    pub merchant_id: Uuid,
    /// `getHash(paymentInfo)` on this chain's escrow.
    pub payment_hash: B256,
    /// The chain.
    pub chain_id: u64,
    /// The escrow contract.
    pub escrow: Address,
    /// The payment's `PaymentInfo`.
    pub info: PaymentInfoRecord,
    /// What the authorize or charge asks for.
    pub amount: Amount,
    /// Authorize (hold) or charge (capture at once).
    pub flow: Flow,
    /// The merchant's request id (echoed in webhooks).
    pub request_id: Option<String>,
    /// The `Idempotency-Key` of the request that created it.
    pub idempotency_key: Option<String>,
    /// When to auto-void an uncaptured hold (unix ms).
    pub capture_deadline_at: Option<i64>,
}

/// A payment as stored: the fields it was inserted with (reachable directly through `Deref`,
/// e.g. `payment.merchant_id`) and its lifecycle state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// Id (UUIDv7).
    pub id: Uuid,
    /// What was inserted: owner, hash, chain, escrow, `PaymentInfo`, amount, flow, request id,
    /// idempotency key and auto-void time.
    pub inserted: NewPayment,
    /// Where it is in the lifecycle.
    pub status: PaymentStatus,
    /// Authorized / captured / refunded / released.
    pub amounts: Amounts,
    /// The outbox row of the action in flight, if any: set by the transition that writes the
    /// row, cleared by the first transition to a status with nothing in flight. An outcome for
    /// any other transaction is stale (e.g. a capture that lost a race with the payer's reclaim).
    pub pending_tx_id: Option<Uuid>,
    /// Code of the last failure (e.g. a decoded custom error).
    pub last_error_code: Option<String>,
    /// Human-readable detail of the last failure.
    pub last_error_message: Option<String>,
    /// Creation time (unix ms).
    pub created_at: i64,
    /// Last change (unix ms).
    pub updated_at: i64,
    /// Optimistic-concurrency version; every transition increments it.
    pub version: i64,
}

codec::deref_to!(Payment => inserted: NewPayment);

/// An operator key that live payments still need ([`Store::operators_in_use`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OperatorInUse {
    /// The payments' `operator` (`captureAuthorizer`).
    pub operator: Address,
    /// How many payments.
    pub payments: i64,
    /// The latest `refundExpiry` among them (unix seconds).
    pub until: u64,
}

/// Filters for [`Store::list_payments`]; unset fields do not filter. Results are newest first.
#[derive(Debug, Clone, Default)]
pub struct PaymentFilter {
    /// Only this merchant's payments.
    pub merchant_id: Option<Uuid>,
    /// Only payments in this status.
    pub status: Option<PaymentStatus>,
    /// Only payments with this request id.
    pub request_id: Option<String>,
    /// Only payments from this payer.
    pub payer: Option<Address>,
    /// Only payments created before this id (keyset pagination: pass the last id of a page).
    pub before_id: Option<Uuid>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// What else to write in the transaction that changes a payment's status.
#[derive(Debug, Clone, Default)]
pub struct TransitionExtras {
    /// An outbox row for the chain action the transition starts (`payment_id` is set to the
    /// payment's id).
    pub outbox: Option<NewChainTx>,
    /// A webhook event (and its first delivery) announcing the transition.
    pub webhook: Option<NewWebhookEvent>,
    /// Detail for `last_error_message` when the event carries an error code.
    pub error_message: Option<String>,
}

/// The result of a transition: the updated payment and whatever was written with it.
#[derive(Debug, Clone)]
pub struct Transition {
    /// The payment after the transition (new status, amounts and version).
    pub payment: Payment,
    /// The status before.
    pub from: PaymentStatus,
    /// The outbox row written, if any.
    pub chain_tx: Option<ChainTx>,
    /// The webhook event written, if any.
    pub webhook: Option<WebhookEvent>,
}

impl Record for Payment {
    const TABLE: &'static str = "payments";
    const COLUMNS: &'static str = "id, merchant_id, payment_hash, chain_id, escrow, operator, payer, receiver, token, \
        max_amount, pre_approval_expiry, authorization_expiry, refund_expiry, min_fee_bps, max_fee_bps, \
        fee_receiver, salt, amount, request_id, idempotency_key, flow, status, authorized_amount, \
        captured_amount, refunded_amount, released_amount, capture_deadline_at, pending_tx_id, last_error_code, \
        last_error_message, created_at, updated_at, version";
    const ENTITY: &'static str = "payment";

    fn decode(row: &AnyRow) -> Result<Payment> {
        Ok(Payment {
            id: get_uuid(row, "id")?,
            inserted: NewPayment {
                merchant_id: get_uuid(row, "merchant_id")?,
                payment_hash: codec::get_b256(row, "payment_hash")?,
                chain_id: get_u64(row, "chain_id")?,
                escrow: codec::get_addr(row, "escrow")?,
                info: PaymentInfoRecord {
                    operator: codec::get_addr(row, "operator")?,
                    payer: codec::get_addr(row, "payer")?,
                    receiver: codec::get_addr(row, "receiver")?,
                    token: codec::get_addr(row, "token")?,
                    max_amount: get_u128(row, "max_amount")?,
                    pre_approval_expiry: get_u64(row, "pre_approval_expiry")?,
                    authorization_expiry: get_u64(row, "authorization_expiry")?,
                    refund_expiry: get_u64(row, "refund_expiry")?,
                    min_fee_bps: bps(row, "min_fee_bps")?,
                    max_fee_bps: bps(row, "max_fee_bps")?,
                    fee_receiver: codec::get_addr(row, "fee_receiver")?,
                    salt: codec::get_u256(row, "salt")?,
                },
                amount: get_u128(row, "amount")?,
                flow: codec::get_parsed(row, "flow")?,
                request_id: get_opt_str(row, "request_id")?,
                idempotency_key: get_opt_str(row, "idempotency_key")?,
                capture_deadline_at: get_opt_i64(row, "capture_deadline_at")?,
            },
            status: codec::get_parsed(row, "status")?,
            amounts: Amounts {
                authorized: get_u128(row, "authorized_amount")?,
                captured: get_u128(row, "captured_amount")?,
                refunded: get_u128(row, "refunded_amount")?,
                released: get_u128(row, "released_amount")?,
            },
            pending_tx_id: codec::get_opt_uuid(row, "pending_tx_id")?,
            last_error_code: get_opt_str(row, "last_error_code")?,
            last_error_message: get_opt_str(row, "last_error_message")?,
            created_at: get_i64(row, "created_at")?,
            updated_at: get_i64(row, "updated_at")?,
            version: get_i64(row, "version")?,
        })
    }
}

fn bps(row: &AnyRow, col: &'static str) -> Result<u16> {
    let v = get_i64(row, col)?;
    u16::try_from(v).map_err(|e| StoreError::Decode {
        column: col,
        message: e.to_string(),
    })
}

async fn insert(
    conn: &mut AnyConnection,
    now: i64,
    new: &NewPayment,
    pending_tx_id: Option<Uuid>,
) -> Result<Payment> {
    let id = Uuid::now_v7();
    let info = &new.info;
    let status = PaymentStatus::initial(new.flow);
    let row = codec::returning::<Payment>(
        "INSERT INTO payments (id, merchant_id, payment_hash, chain_id, escrow, operator, payer, receiver, \
             token, max_amount, pre_approval_expiry, authorization_expiry, refund_expiry, min_fee_bps, \
             max_fee_bps, fee_receiver, salt, amount, request_id, idempotency_key, flow, status, \
             capture_deadline_at, created_at, updated_at, pending_tx_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, \
                 $20, $21, $22, $23, $24, $24, $25)",
    )
    .bind(codec::uuid(&id))
    .bind(codec::uuid(&new.merchant_id))
    .bind(codec::b256(&new.payment_hash))
    .bind(codec::int(new.chain_id))
    .bind(codec::addr(&new.escrow))
    .bind(codec::addr(&info.operator))
    .bind(codec::addr(&info.payer))
    .bind(codec::addr(&info.receiver))
    .bind(codec::addr(&info.token))
    .bind(info.max_amount.to_string())
    .bind(codec::int(info.pre_approval_expiry))
    .bind(codec::int(info.authorization_expiry))
    .bind(codec::int(info.refund_expiry))
    .bind(i64::from(info.min_fee_bps))
    .bind(i64::from(info.max_fee_bps))
    .bind(codec::addr(&info.fee_receiver))
    .bind(info.salt.to_string())
    .bind(new.amount.to_string())
    .bind(new.request_id.clone())
    .bind(new.idempotency_key.clone())
    .bind(new.flow.as_str())
    .bind(status.as_str())
    .bind(new.capture_deadline_at)
    .bind(now)
    .bind(pending_tx_id.as_ref().map(codec::uuid))
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| codec::conflict_or(e, "payment", format!("payment hash {:#x} already exists", new.payment_hash)))?;
    Payment::decode(&row)
}

pub(super) async fn get(conn: &mut AnyConnection, id: Uuid) -> Result<Payment> {
    codec::get_by_id(conn, id).await
}

impl StoreTx {
    /// Inserts a payment (status [`PaymentStatus::initial`]) and, when given, its first outbox
    /// row, whose `payment_id` is set to the new payment. A payment hash that already exists is
    /// a [`StoreError::Conflict`].
    pub async fn insert_payment(
        &mut self,
        new: &NewPayment,
        outbox: Option<&NewChainTx>,
    ) -> Result<(Payment, Option<ChainTx>)> {
        let now = self.now_ms();
        // The outbox row's id is made first so the payment can point at it (`pending_tx_id`)
        // while the row itself points back at the payment.
        let tx_id = outbox.map(|_| Uuid::now_v7());
        let payment = insert(self.conn(), now, new, tx_id).await?;
        let chain_tx = match (outbox, tx_id) {
            (Some(outbox), Some(tx_id)) => {
                let outbox = NewChainTx {
                    payment_id: Some(payment.id),
                    ..outbox.clone()
                };
                Some(chain::insert(self.conn(), now, tx_id, &outbox).await?)
            }
            _ => None,
        };
        tracing::debug!(payment_id = %payment.id, hash = %payment.payment_hash, "payment inserted");
        Ok((payment, chain_tx))
    }

    /// Reads a payment inside this transaction.
    pub async fn get_payment(&mut self, id: Uuid) -> Result<Payment> {
        get(self.conn(), id).await
    }

    /// Applies `event` to the payment through the lifecycle table, provided its version is still
    /// `expected_version`, and writes `extras` (outbox row, webhook event + first delivery) in the
    /// same transaction.
    ///
    /// Errors: [`StoreError::NotFound`], [`StoreError::VersionMismatch`] (someone else changed it
    /// first: re-read and decide again), [`StoreError::IllegalTransition`].
    pub async fn transition_payment(
        &mut self,
        id: Uuid,
        expected_version: i64,
        event: &PaymentEvent,
        extras: TransitionExtras,
    ) -> Result<Transition> {
        let current = get(self.conn(), id).await?;
        at_version(&current, expected_version)?;
        self.transition_from(&current, event, extras).await
    }

    /// [`StoreTx::transition_payment`] from a payment the caller has already read: the
    /// transition is decided on `current` and written only if the row still has
    /// `current.version` (every write to a payment moves its version, so a row at that version
    /// is `current`). This saves the read inside the write transaction, which on SQLite holds
    /// the single write turn.
    ///
    /// Errors: [`StoreError::VersionMismatch`] when the row has moved on (or is gone: `actual:
    /// None`), [`StoreError::IllegalTransition`] when the lifecycle refuses `event` for the row
    /// as it is (the row is read to tell the two apart, on that path only).
    pub async fn transition_from(
        &mut self,
        current: &Payment,
        event: &PaymentEvent,
        extras: TransitionExtras,
    ) -> Result<Transition> {
        let now = self.now_ms();
        let (id, expected_version) = (current.id, current.version);
        let mut amounts = current.amounts;
        let next = match current.status.apply(event, &mut amounts) {
            Ok(next) => next,
            Err(illegal) => {
                // Refused for the caller's copy: a verdict only if the row is still that copy;
                // if it has moved on, the caller re-reads and decides again, as it would have
                // had the row been read here.
                at_version(&get(self.conn(), id).await?, expected_version)?;
                return Err(illegal.into());
            }
        };
        // A new outbox row becomes the pending action; leaving the in-flight statuses clears it.
        let tx_id = extras.outbox.as_ref().map(|_| Uuid::now_v7());
        let pending_tx_id = match tx_id {
            Some(tx_id) => Some(tx_id),
            None if next.is_in_flight() => current.pending_tx_id,
            None => None,
        };
        let (error_code, error_message) = match event.error_code() {
            Some(code) => (Some(code.to_owned()), extras.error_message.clone()),
            None => (
                current.last_error_code.clone(),
                current.last_error_message.clone(),
            ),
        };
        // The version check is in the WHERE clause: of two writers that read the same version,
        // exactly one updates a row (PostgreSQL re-checks the predicate after waiting for the
        // other's row lock; SQLite runs one writer at a time).
        let row = codec::returning::<Payment>(
            "UPDATE payments SET status = $3, authorized_amount = $4, captured_amount = $5, \
                 refunded_amount = $6, released_amount = $7, last_error_code = $8, \
                 last_error_message = $9, updated_at = $10, pending_tx_id = $11, \
                 version = version + 1 \
             WHERE id = $1 AND version = $2",
        )
        .bind(codec::uuid(&id))
        .bind(expected_version)
        .bind(next.as_str())
        .bind(amounts.authorized.to_string())
        .bind(amounts.captured.to_string())
        .bind(amounts.refunded.to_string())
        .bind(amounts.released.to_string())
        .bind(error_code)
        .bind(error_message)
        .bind(now)
        .bind(pending_tx_id.as_ref().map(codec::uuid))
        .fetch_optional(self.conn())
        .await?;
        let Some(row) = row else {
            return Err(StoreError::VersionMismatch {
                id,
                expected: expected_version,
                actual: None,
            });
        };
        let payment = Payment::decode(&row)?;
        let chain_tx = match (extras.outbox, tx_id) {
            (Some(outbox), Some(tx_id)) => {
                let outbox = NewChainTx {
                    payment_id: Some(id),
                    ..outbox
                };
                Some(chain::insert(self.conn(), now, tx_id, &outbox).await?)
            }
            _ => None,
        };
        // The refund reserve follows the payment: a failed refund's debit is given back, a
        // capture's planned top-up is credited (or cancelled), in this same transaction.
        let backend = self.backend;
        super::reserve::on_transition(self.conn(), backend, now, id, event).await?;
        let webhook = match extras.webhook {
            Some(hook) => Some(
                webhooks::insert(self.conn(), now, payment.merchant_id, Some(id), &hook).await?,
            ),
            None => None,
        };
        if current.status.is_in_flight()
            && !next.is_in_flight()
            && self.backend == Backend::Postgres
        {
            // Waiters on other instances wake at commit instead of at their next re-read. The
            // payload is a UUID we formatted (hex and dashes only); NOTIFY takes no parameters.
            let notify = format!("NOTIFY {PAYMENT_CHANNEL}, '{id}'");
            sqlx::raw_sql(sqlx::AssertSqlSafe(notify))
                .execute(self.conn())
                .await?;
        }
        tracing::info!(
            payment_id = %id, from = %current.status, to = %next, event = event.name(),
            version = payment.version, "payment transition"
        );
        Ok(Transition {
            payment,
            from: current.status,
            chain_tx,
            webhook,
        })
    }
}

/// [`StoreError::VersionMismatch`] (with the row's version) unless `row` is at `expected`.
fn at_version(row: &Payment, expected: i64) -> Result<()> {
    if row.version == expected {
        return Ok(());
    }
    Err(StoreError::VersionMismatch {
        id: row.id,
        expected,
        actual: Some(row.version),
    })
}

/// The PostgreSQL channel a payment leaving an in-flight status is announced on (`NOTIFY`,
/// delivered at commit; the payload is the payment id). Every instance `LISTEN`s on it and wakes
/// its requests waiting on that payment (`operator/DESIGN.md`, "Signer lanes").
pub const PAYMENT_CHANNEL: &str = "x402_payments";

impl Store {
    /// Inserts a payment and its first outbox row in one transaction (see
    /// [`StoreTx::insert_payment`]), shared with other hot-path writes ([`Store::grouped`]).
    pub async fn insert_payment(
        &self,
        new: &NewPayment,
        outbox: Option<&NewChainTx>,
    ) -> Result<(Payment, Option<ChainTx>)> {
        let (new, outbox) = (new.clone(), outbox.cloned());
        self.grouped(move |tx| {
            Box::pin(async move { tx.insert_payment(&new, outbox.as_ref()).await })
        })
        .await
    }

    /// Applies a lifecycle event with an optimistic version check (see
    /// [`StoreTx::transition_payment`]), in a transaction shared with other hot-path writes
    /// ([`Store::grouped`]).
    pub async fn transition_payment(
        &self,
        id: Uuid,
        expected_version: i64,
        event: &PaymentEvent,
        extras: TransitionExtras,
    ) -> Result<Transition> {
        let event = event.clone();
        self.grouped(move |tx| {
            Box::pin(async move {
                tx.transition_payment(id, expected_version, &event, extras)
                    .await
            })
        })
        .await
    }

    /// [`StoreTx::transition_from`] in a group transaction ([`Store::grouped`]).
    pub async fn transition_from(
        &self,
        current: &Payment,
        event: &PaymentEvent,
        extras: TransitionExtras,
    ) -> Result<Transition> {
        let (current, event) = (current.clone(), event.clone());
        self.grouped(move |tx| {
            Box::pin(async move { tx.transition_from(&current, &event, extras).await })
        })
        .await
    }

    /// The payment with this id ([`StoreError::NotFound`] otherwise).
    pub async fn get_payment(&self, id: Uuid) -> Result<Payment> {
        get(&mut *self.conn().await?, id).await
    }

    /// The payment with this hash, if any.
    pub async fn payment_by_hash(&self, payment_hash: B256) -> Result<Option<Payment>> {
        let query = codec::select::<Payment>("WHERE payment_hash = $1");
        codec::fetch_optional(query.bind(codec::b256(&payment_hash)), &self.pool).await
    }

    /// The merchant's most recent payment for `request_id`, if any (all of them:
    /// [`Store::list_payments`] with a `request_id` filter).
    pub async fn payment_by_request_id(
        &self,
        merchant_id: Uuid,
        request_id: &str,
    ) -> Result<Option<Payment>> {
        let query = codec::select::<Payment>(
            "WHERE merchant_id = $1 AND request_id = $2 ORDER BY id DESC LIMIT 1",
        )
        .bind(codec::uuid(&merchant_id))
        .bind(request_id);
        codec::fetch_optional(query, &self.pool).await
    }

    /// Payments matching `filter`, newest first.
    pub async fn list_payments(&self, filter: &PaymentFilter) -> Result<Vec<Payment>> {
        // Each optional filter is `($n IS NULL OR column = $n)`, so one statement serves every
        // combination (the parameters are typed TEXT by the driver, on both databases).
        let limit = i64::from(filter.limit.unwrap_or(100).clamp(1, 1000));
        let query = codec::select::<Payment>(
            "WHERE ($1 IS NULL OR merchant_id = $1) \
             AND ($2 IS NULL OR status = $2) \
             AND ($3 IS NULL OR request_id = $3) \
             AND ($4 IS NULL OR payer = $4) \
             AND ($5 IS NULL OR id < $5) \
             ORDER BY id DESC LIMIT $6",
        )
        .bind(filter.merchant_id.as_ref().map(codec::uuid))
        .bind(filter.status.map(|s| s.as_str()))
        .bind(filter.request_id.clone())
        .bind(filter.payer.as_ref().map(codec::addr))
        .bind(filter.before_id.as_ref().map(codec::uuid))
        .bind(limit);
        codec::fetch_all(query, &self.pool).await
    }

    /// Holds whose capture deadline has passed (`now_ms`) and that nothing is acting on:
    /// the auto-void candidates, oldest deadline first.
    pub async fn payments_due_for_auto_void(
        &self,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<Payment>> {
        let query = codec::select::<Payment>(
            "WHERE status IN ('authorized', 'partially_captured') \
             AND capture_deadline_at IS NOT NULL AND capture_deadline_at <= $1 \
             ORDER BY capture_deadline_at, id LIMIT $2",
        )
        .bind(now_ms)
        .bind(i64::from(limit));
        codec::fetch_all(query, &self.pool).await
    }

    /// Holds past their `authorizationExpiry` (`now_secs`, chain time) that are not yet marked
    /// expired: candidates for [`PaymentEvent::Expired`].
    pub async fn payments_past_authorization_expiry(
        &self,
        now_secs: u64,
        limit: u32,
    ) -> Result<Vec<Payment>> {
        let query = codec::select::<Payment>(
            "WHERE status IN ('authorized', 'partially_captured') AND authorization_expiry <= $1 \
             ORDER BY authorization_expiry, id LIMIT $2",
        )
        .bind(codec::int(now_secs))
        .bind(i64::from(limit));
        codec::fetch_all(query, &self.pool).await
    }

    /// Payments with a chain action in flight (for restart recovery and `reconcile`).
    pub async fn payments_in_flight(&self, limit: u32) -> Result<Vec<Payment>> {
        let query = codec::select::<Payment>(
            "WHERE status IN ('authorizing', 'charging', 'capturing', 'voiding', 'refunding') \
             ORDER BY id LIMIT $1",
        )
        .bind(i64::from(limit));
        codec::fetch_all(query, &self.pool).await
    }

    /// The operators (`captureAuthorizer`) whose key payments of `chain_id` still need at
    /// unix time `now` — every payment before its `refundExpiry` that is not refunded, voided,
    /// reclaimed, expired or failed — with how many payments and the latest `refundExpiry`.
    pub async fn operators_in_use(&self, chain_id: u64, now: u64) -> Result<Vec<OperatorInUse>> {
        let rows = sqlx::query(
            "SELECT operator, COUNT(*) AS n, MAX(refund_expiry) AS until FROM payments \
             WHERE chain_id = $1 AND refund_expiry > $2 \
             AND status NOT IN ('refunded', 'voided', 'reclaimed', 'expired', 'failed') \
             GROUP BY operator ORDER BY operator",
        )
        .bind(codec::int(chain_id))
        .bind(codec::int(now))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(OperatorInUse {
                    operator: codec::get_addr(row, "operator")?,
                    payments: get_i64(row, "n")?,
                    until: get_u64(row, "until")?,
                })
            })
            .collect()
    }

    /// How many payments are in each status (metrics).
    pub async fn count_payments_by_status(&self) -> Result<Vec<(PaymentStatus, i64)>> {
        let rows = sqlx::query(
            "SELECT status, COUNT(*) AS n FROM payments GROUP BY status ORDER BY status",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((codec::get_parsed(row, "status")?, get_i64(row, "n")?)))
            .collect()
    }

    /// The payment's outbox rows, oldest first.
    pub async fn txs_for_payment(&self, payment_id: Uuid) -> Result<Vec<ChainTx>> {
        chain::for_payment(&mut *self.conn().await?, payment_id).await
    }

    /// The payment's webhook events, oldest first.
    pub async fn webhook_events_for_payment(&self, payment_id: Uuid) -> Result<Vec<WebhookEvent>> {
        webhooks::for_payment(&mut *self.conn().await?, payment_id).await
    }
}

impl Store {
    /// "Apply to whatever the payment is now": reads the payment, applies `event` at the version
    /// read, and re-reads and retries (up to `attempts` tries in all) on
    /// [`StoreError::VersionMismatch`]. For chain observations, whose truth does not depend on
    /// what the caller last saw; requests from merchants should use
    /// [`Store::transition_payment`] with the version they decided on.
    pub async fn transition_payment_latest(
        &self,
        id: Uuid,
        event: &PaymentEvent,
        extras: TransitionExtras,
        attempts: u32,
    ) -> Result<Transition> {
        let mut left = attempts.max(1);
        loop {
            let current = self.get_payment(id).await?;
            match self
                .transition_payment(id, current.version, event, extras.clone())
                .await
            {
                Err(e) if e.is_retryable() && left > 1 => left -= 1,
                other => return other,
            }
        }
    }
}
