//! The refund reserve per merchant (`0011_refund_reserve.sql`): a ledger of credits, debits and
//! releases per (merchant, asset), with the running balance kept next to it.
//!
//! * Every ledger write first locks the merchant's balance row (`SELECT … FOR UPDATE` on
//!   PostgreSQL; SQLite runs one writer at a time, `BEGIN IMMEDIATE`), then appends the entry
//!   and updates the balance in the same transaction. So two refunds of one merchant never both
//!   spend the same balance, and one merchant's refund only ever touches its own row.
//! * A refund's debit is written in the transaction that queues the refund (the engine calls
//!   [`StoreTx::reserve_debit_refund`] next to the transition); a refund that fails is given
//!   back by [`StoreTx::transition_payment`] itself (`RefundFailed` → a `release` entry of the
//!   open debit), in the transaction that records the failure.
//! * Deposits the indexer sees (`ReserveDeposit` chain events) are credited once per transfer
//!   log (`ref_key` unique); a reorg that removes the deposit's block writes a `debit`
//!   (`deposit_reorged`) in the rewind's transaction, and the deposit is credited again if it
//!   comes back.
//! * The automatic top-up ([`StoreTx::plan_topup`]) is recorded with the capture and credited
//!   when the capture is confirmed (cancelled when it fails), again inside
//!   [`StoreTx::transition_payment`].

use alloy::primitives::{Address, B256};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use uuid::Uuid;

use super::codec::{self, Record, get_i64, get_opt_str, get_str, get_uuid};
use super::events::ChainEvent;
use super::{Backend, Result, Store, StoreError, StoreTx, in_own_tx};
use crate::lifecycle::{Amount, PaymentEvent};

/// The chain event name under which the indexer stores an ERC-20 `Transfer` to the refund
/// account (`chain_events.event_name`).
pub const DEPOSIT_EVENT: &str = "ReserveDeposit";

/// The three kinds of ledger entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReserveKind {
    /// Money in: an admin credit, a deposit, a capture's top-up.
    Credit,
    /// Money out: a refund queued (or a deposit a reorg took back).
    Debit,
    /// A debit given back: the refund failed on chain.
    Release,
}

impl ReserveKind {
    /// The stored (and API) spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ReserveKind::Credit => "credit",
            ReserveKind::Debit => "debit",
            ReserveKind::Release => "release",
        }
    }

    fn parse(text: &str) -> Result<ReserveKind> {
        Ok(match text {
            "credit" => ReserveKind::Credit,
            "debit" => ReserveKind::Debit,
            "release" => ReserveKind::Release,
            other => {
                return Err(StoreError::Decode {
                    column: "kind",
                    message: format!("unknown reserve entry kind {other:?}"),
                });
            }
        })
    }
}

/// Why an entry was written (`reserve_entries.reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReserveReason {
    /// `x402-escrow admin reserve credit`.
    Admin,
    /// A token transfer to the refund account from one of the merchant's addresses.
    Deposit,
    /// The merchant's share of a capture, routed to the refund account as part of the fee.
    CaptureTopup,
    /// A refund was queued.
    Refund,
    /// A refund failed on chain: its debit is given back.
    RefundFailed,
    /// A reorg removed a credited deposit.
    DepositReorged,
}

impl ReserveReason {
    /// The stored (and API) spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ReserveReason::Admin => "admin",
            ReserveReason::Deposit => "deposit",
            ReserveReason::CaptureTopup => "capture_topup",
            ReserveReason::Refund => "refund",
            ReserveReason::RefundFailed => "refund_failed",
            ReserveReason::DepositReorged => "deposit_reorged",
        }
    }

    fn parse(text: &str) -> Result<ReserveReason> {
        Ok(match text {
            "admin" => ReserveReason::Admin,
            "deposit" => ReserveReason::Deposit,
            "capture_topup" => ReserveReason::CaptureTopup,
            "refund" => ReserveReason::Refund,
            "refund_failed" => ReserveReason::RefundFailed,
            "deposit_reorged" => ReserveReason::DepositReorged,
            other => {
                return Err(StoreError::Decode {
                    column: "reason",
                    message: format!("unknown reserve entry reason {other:?}"),
                });
            }
        })
    }
}

/// One ledger entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReserveEntry {
    /// Id (UUIDv7: the statement's order and cursor).
    pub id: Uuid,
    /// The merchant whose reserve it is.
    pub merchant_id: Uuid,
    /// The token.
    pub asset: Address,
    /// Credit, debit or release.
    pub kind: ReserveKind,
    /// Token units (positive).
    pub amount: Amount,
    /// The balance right after this entry.
    pub balance_after: Amount,
    /// Why.
    pub reason: ReserveReason,
    /// The payment (refunds, releases, top-ups).
    pub payment_id: Option<Uuid>,
    /// The outbox row of the refund or capture.
    pub chain_tx_id: Option<Uuid>,
    /// A deposit's transaction.
    pub tx_hash: Option<B256>,
    /// A deposit's log index.
    pub log_index: Option<u64>,
    /// A free-text note (admin credits).
    pub note: Option<String>,
    /// When written (unix ms).
    pub created_at: i64,
}

impl Record for ReserveEntry {
    const TABLE: &'static str = "reserve_entries";
    const COLUMNS: &'static str = "id, merchant_id, asset, kind, amount, balance_after, reason, \
        payment_id, chain_tx_id, tx_hash, log_index, note, created_at";
    const ENTITY: &'static str = "reserve entry";

    fn decode(row: &AnyRow) -> Result<ReserveEntry> {
        Ok(ReserveEntry {
            id: get_uuid(row, "id")?,
            merchant_id: get_uuid(row, "merchant_id")?,
            asset: codec::get_addr(row, "asset")?,
            kind: ReserveKind::parse(&get_str(row, "kind")?)?,
            amount: codec::get_u128(row, "amount")?,
            balance_after: codec::get_u128(row, "balance_after")?,
            reason: ReserveReason::parse(&get_str(row, "reason")?)?,
            payment_id: codec::get_opt_uuid(row, "payment_id")?,
            chain_tx_id: codec::get_opt_uuid(row, "chain_tx_id")?,
            tx_hash: codec::get_opt_b256(row, "tx_hash")?,
            log_index: codec::get_opt_u64(row, "log_index")?,
            note: get_opt_str(row, "note")?,
            created_at: get_i64(row, "created_at")?,
        })
    }
}

/// A merchant's reserve in one asset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReserveBalance {
    /// The merchant.
    pub merchant_id: Uuid,
    /// The token.
    pub asset: Address,
    /// What refunds can still draw on: `credited − debited + released`.
    pub balance: Amount,
    /// Every credit so far.
    pub credited: Amount,
    /// Every debit so far.
    pub debited: Amount,
    /// Every release so far.
    pub released: Amount,
    /// Last change (unix ms; 0 when nothing was ever written).
    pub updated_at: i64,
}

impl Record for ReserveBalance {
    const TABLE: &'static str = "reserve_balances";
    const COLUMNS: &'static str =
        "merchant_id, asset, balance, credited, debited, released, updated_at";
    const ENTITY: &'static str = "reserve balance";

    fn decode(row: &AnyRow) -> Result<ReserveBalance> {
        Ok(ReserveBalance {
            merchant_id: get_uuid(row, "merchant_id")?,
            asset: codec::get_addr(row, "asset")?,
            balance: codec::get_u128(row, "balance")?,
            credited: codec::get_u128(row, "credited")?,
            debited: codec::get_u128(row, "debited")?,
            released: codec::get_u128(row, "released")?,
            updated_at: get_i64(row, "updated_at")?,
        })
    }
}

/// A credit to write ([`StoreTx::reserve_credit`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReserveCredit {
    /// The merchant.
    pub merchant_id: Uuid,
    /// The token.
    pub asset: Address,
    /// Token units (positive).
    pub amount: Amount,
    /// A note kept with the entry.
    pub note: Option<String>,
}

/// A top-up planned with a capture ([`StoreTx::plan_topup`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopup {
    /// The payment captured.
    pub payment_id: Uuid,
    /// Its merchant.
    pub merchant_id: Uuid,
    /// Its token.
    pub asset: Address,
    /// The amount the capture asks for.
    pub capture_amount: Amount,
    /// The merchant's rule (basis points of each capture).
    pub share_bps: u16,
    /// The reserve's share of this capture (0 when skipped).
    pub amount: Amount,
    /// `None`: routed in the capture's fee, credited on confirmation. `Some(why)`: the payment's
    /// signed fee bounds did not allow it; captured normally.
    pub skipped: Option<String>,
}

/// A top-up as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topup {
    /// Id.
    pub id: Uuid,
    /// The plan.
    pub topup: NewTopup,
    /// `pending`, `credited`, `cancelled` or `skipped`.
    pub status: String,
    /// Why skipped or cancelled.
    pub reason: Option<String>,
}

impl Record for Topup {
    const TABLE: &'static str = "reserve_topups";
    const COLUMNS: &'static str = "id, payment_id, merchant_id, asset, capture_amount, share_bps, \
        amount, status, reason";
    const ENTITY: &'static str = "reserve top-up";

    fn decode(row: &AnyRow) -> Result<Topup> {
        let status = get_str(row, "status")?;
        let reason = get_opt_str(row, "reason")?;
        Ok(Topup {
            id: get_uuid(row, "id")?,
            topup: NewTopup {
                payment_id: get_uuid(row, "payment_id")?,
                merchant_id: get_uuid(row, "merchant_id")?,
                asset: codec::get_addr(row, "asset")?,
                capture_amount: codec::get_u128(row, "capture_amount")?,
                share_bps: u16::try_from(get_i64(row, "share_bps")?).map_err(|e| {
                    StoreError::Decode {
                        column: "share_bps",
                        message: e.to_string(),
                    }
                })?,
                amount: codec::get_u128(row, "amount")?,
                skipped: (status == "skipped").then(|| reason.clone().unwrap_or_default()),
            },
            status,
            reason,
        })
    }
}

/// What processing a deposit event did ([`Store::process_deposit_event`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DepositOutcome {
    /// Credited to this merchant's reserve.
    Credited(ReserveEntry),
    /// Already credited (the same transfer log): nothing written.
    AlreadyCredited,
    /// The sender is no merchant's deposit address (or several merchants' receiver): not
    /// credited, recorded as processed.
    UnknownSender(Address),
}

/// Everything an entry carries besides the balance it leaves.
#[derive(Debug, Clone, Default)]
struct Draft {
    payment_id: Option<Uuid>,
    chain_tx_id: Option<Uuid>,
    tx_hash: Option<B256>,
    log_index: Option<u64>,
    chain_event_id: Option<Uuid>,
    ref_key: Option<String>,
    note: Option<String>,
}

fn amount_text(a: Amount) -> String {
    a.to_string()
}

/// Makes sure the (merchant, asset) balance row exists and locks it for this transaction.
async fn lock_balance(
    conn: &mut AnyConnection,
    backend: Backend,
    now: i64,
    merchant_id: Uuid,
    asset: Address,
) -> Result<ReserveBalance> {
    sqlx::query(
        "INSERT INTO reserve_balances (merchant_id, asset, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (merchant_id, asset) DO NOTHING",
    )
    .bind(codec::uuid(&merchant_id))
    .bind(codec::addr(&asset))
    .bind(now)
    .execute(&mut *conn)
    .await?;
    let lock = match backend {
        Backend::Postgres => "WHERE merchant_id = $1 AND asset = $2 FOR UPDATE",
        // One writer at a time (BEGIN IMMEDIATE): the row is ours until commit.
        Backend::Sqlite => "WHERE merchant_id = $1 AND asset = $2",
    };
    let query = codec::select::<ReserveBalance>(lock)
        .bind(codec::uuid(&merchant_id))
        .bind(codec::addr(&asset));
    codec::fetch_found(query, &mut *conn, format!("{merchant_id}/{asset:#x}")).await
}

/// Appends one entry and moves the balance, the balance row locked first. A debit larger than
/// the balance is [`StoreError::ReserveInsufficient`] and writes nothing.
#[allow(clippy::too_many_arguments)]
async fn append(
    conn: &mut AnyConnection,
    backend: Backend,
    now: i64,
    merchant_id: Uuid,
    asset: Address,
    kind: ReserveKind,
    amount: Amount,
    reason: ReserveReason,
    draft: Draft,
) -> Result<ReserveEntry> {
    if amount == 0 {
        return Err(StoreError::Conflict {
            entity: "reserve entry",
            detail: "amount must be positive".into(),
        });
    }
    let mut b = lock_balance(conn, backend, now, merchant_id, asset).await?;
    let overflow = || StoreError::Conflict {
        entity: "reserve entry",
        detail: "amount overflows the balance".into(),
    };
    match kind {
        ReserveKind::Credit => {
            b.balance = b.balance.checked_add(amount).ok_or_else(overflow)?;
            b.credited = b.credited.checked_add(amount).ok_or_else(overflow)?;
        }
        ReserveKind::Release => {
            b.balance = b.balance.checked_add(amount).ok_or_else(overflow)?;
            b.released = b.released.checked_add(amount).ok_or_else(overflow)?;
        }
        ReserveKind::Debit => {
            if b.balance < amount {
                return Err(StoreError::ReserveInsufficient {
                    merchant_id,
                    asset,
                    balance: b.balance,
                    needed: amount,
                });
            }
            b.balance -= amount;
            b.debited = b.debited.checked_add(amount).ok_or_else(overflow)?;
        }
    }
    sqlx::query(
        "UPDATE reserve_balances SET balance = $3, credited = $4, debited = $5, released = $6, \
             updated_at = $7 \
         WHERE merchant_id = $1 AND asset = $2",
    )
    .bind(codec::uuid(&merchant_id))
    .bind(codec::addr(&asset))
    .bind(amount_text(b.balance))
    .bind(amount_text(b.credited))
    .bind(amount_text(b.debited))
    .bind(amount_text(b.released))
    .bind(now)
    .execute(&mut *conn)
    .await?;
    let row = codec::returning::<ReserveEntry>(
        "INSERT INTO reserve_entries (id, merchant_id, asset, kind, amount, balance_after, reason, \
             payment_id, chain_tx_id, tx_hash, log_index, chain_event_id, ref_key, note, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    )
    .bind(codec::uuid(&Uuid::now_v7()))
    .bind(codec::uuid(&merchant_id))
    .bind(codec::addr(&asset))
    .bind(kind.as_str())
    .bind(amount_text(amount))
    .bind(amount_text(b.balance))
    .bind(reason.as_str())
    .bind(draft.payment_id.as_ref().map(codec::uuid))
    .bind(draft.chain_tx_id.as_ref().map(codec::uuid))
    .bind(draft.tx_hash.as_ref().map(codec::b256))
    .bind(draft.log_index.map(codec::int))
    .bind(draft.chain_event_id.as_ref().map(codec::uuid))
    .bind(draft.ref_key.clone())
    .bind(draft.note.clone())
    .bind(now)
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| codec::conflict_or(e, "reserve entry", "already recorded"))?;
    let entry = ReserveEntry::decode(&row)?;
    tracing::info!(
        merchant_id = %merchant_id, asset = %asset, kind = kind.as_str(), reason = reason.as_str(),
        amount = %amount, balance = %b.balance, payment_id = ?draft.payment_id,
        "reserve entry"
    );
    Ok(entry)
}

/// `RefundFailed` (called by `transition_payment`, same transaction): gives back the payment's
/// open refund debit, if it has one. The open debit is the payment's latest `refund` debit when
/// no release names it yet (one action in flight per payment, so there is at most one).
pub(super) async fn on_transition(
    conn: &mut AnyConnection,
    backend: Backend,
    now: i64,
    payment_id: Uuid,
    event: &PaymentEvent,
) -> Result<()> {
    match event {
        PaymentEvent::RefundFailed { code } => {
            let debit = codec::select::<ReserveEntry>(
                "WHERE payment_id = $1 AND kind = 'debit' AND reason = 'refund' \
                 ORDER BY id DESC LIMIT 1",
            )
            .bind(codec::uuid(&payment_id));
            let Some(debit) = codec::fetch_optional::<ReserveEntry>(debit, &mut *conn).await?
            else {
                return Ok(());
            };
            let key = format!("release:{}", debit.id);
            let released = sqlx::query("SELECT id FROM reserve_entries WHERE ref_key = $1")
                .bind(&key)
                .fetch_optional(&mut *conn)
                .await?;
            if released.is_some() {
                return Ok(());
            }
            append(
                conn,
                backend,
                now,
                debit.merchant_id,
                debit.asset,
                ReserveKind::Release,
                debit.amount,
                ReserveReason::RefundFailed,
                Draft {
                    payment_id: Some(payment_id),
                    chain_tx_id: debit.chain_tx_id,
                    ref_key: Some(key),
                    note: Some(format!("refund failed: {code}")),
                    ..Draft::default()
                },
            )
            .await?;
        }
        PaymentEvent::CaptureConfirmed { .. } | PaymentEvent::CaptureFailed { .. } => {
            let pending = codec::select::<Topup>(
                "WHERE payment_id = $1 AND status = 'pending' ORDER BY id DESC LIMIT 1",
            )
            .bind(codec::uuid(&payment_id));
            let Some(topup) = codec::fetch_optional::<Topup>(pending, &mut *conn).await? else {
                return Ok(());
            };
            let (status, reason) = match event {
                PaymentEvent::CaptureConfirmed { .. } => {
                    append(
                        conn,
                        backend,
                        now,
                        topup.topup.merchant_id,
                        topup.topup.asset,
                        ReserveKind::Credit,
                        topup.topup.amount,
                        ReserveReason::CaptureTopup,
                        Draft {
                            payment_id: Some(payment_id),
                            ref_key: Some(format!("topup:{}", topup.id)),
                            note: Some(format!(
                                "{} bps of a capture of {}",
                                topup.topup.share_bps, topup.topup.capture_amount
                            )),
                            ..Draft::default()
                        },
                    )
                    .await?;
                    ("credited", None)
                }
                _ => ("cancelled", Some("the capture failed".to_owned())),
            };
            sqlx::query(
                "UPDATE reserve_topups SET status = $2, reason = $3, updated_at = $4 WHERE id = $1",
            )
            .bind(codec::uuid(&topup.id))
            .bind(status)
            .bind(reason)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        }
        _ => {}
    }
    Ok(())
}

/// Reorg (called by `rewind_indexer`, same transaction): every credited deposit among `removed`
/// is taken back with a `deposit_reorged` debit (which may leave the balance short of what was
/// already spent: the debit is written regardless, the balance floors at zero and the shortfall
/// shows in `reconcile`).
pub(super) async fn reverse_removed_deposits(
    conn: &mut AnyConnection,
    backend: Backend,
    now: i64,
    removed: &[ChainEvent],
) -> Result<()> {
    for event in removed.iter().filter(|e| e.event_name == DEPOSIT_EVENT) {
        let credits = codec::select::<ReserveEntry>(
            "WHERE chain_event_id = $1 AND reason = 'deposit' ORDER BY id",
        )
        .bind(codec::uuid(&event.id));
        let credits: Vec<ReserveEntry> = codec::fetch_all(credits, &mut *conn).await?;
        let reversals = codec::select::<ReserveEntry>(
            "WHERE chain_event_id = $1 AND reason = 'deposit_reorged'",
        )
        .bind(codec::uuid(&event.id));
        let reversals: Vec<ReserveEntry> = codec::fetch_all(reversals, &mut *conn).await?;
        if credits.len() <= reversals.len() {
            continue;
        }
        let Some(credit) = credits.last() else {
            continue;
        };
        let b = lock_balance(conn, backend, now, credit.merchant_id, credit.asset).await?;
        // Take back what is left of it; a reserve already spent cannot go below zero.
        let take = credit.amount.min(b.balance);
        tracing::warn!(
            merchant_id = %credit.merchant_id, tx_hash = ?credit.tx_hash,
            amount = %credit.amount, taken_back = %take,
            "reorg removed a credited deposit"
        );
        if take == 0 {
            continue;
        }
        append(
            conn,
            backend,
            now,
            credit.merchant_id,
            credit.asset,
            ReserveKind::Debit,
            take,
            ReserveReason::DepositReorged,
            Draft {
                tx_hash: credit.tx_hash,
                log_index: credit.log_index,
                chain_event_id: Some(event.id),
                ref_key: Some(format!("reorg:{}:{}", event.id, reversals.len())),
                note: Some(format!("block {:#x} left the chain", event.block_hash)),
                ..Draft::default()
            },
        )
        .await?;
    }
    Ok(())
}

/// The deposit a stored `ReserveDeposit` event describes: (token, from, to, value).
pub fn deposit_of(event: &ChainEvent) -> Result<(Address, Address, Address, Amount)> {
    let field = |name: &'static str| -> Result<String> {
        event
            .data
            .get(name)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .ok_or(StoreError::Decode {
                column: "data",
                message: format!("deposit event without {name}"),
            })
    };
    Ok((
        codec::parse("data", &field("token")?)?,
        codec::parse("data", &field("from")?)?,
        codec::parse("data", &field("to")?)?,
        codec::parse("data", &field("value")?)?,
    ))
}

impl StoreTx {
    /// Credits a merchant's reserve (admin). [`StoreError::NotFound`] for an unknown merchant.
    pub async fn reserve_credit(&mut self, credit: &ReserveCredit) -> Result<ReserveEntry> {
        let now = self.now_ms();
        let backend = self.backend;
        super::merchants::get(self.conn(), credit.merchant_id).await?;
        append(
            self.conn(),
            backend,
            now,
            credit.merchant_id,
            credit.asset,
            ReserveKind::Credit,
            credit.amount,
            ReserveReason::Admin,
            Draft {
                note: credit.note.clone(),
                ..Draft::default()
            },
        )
        .await
    }

    /// Debits `amount` of `asset` from the merchant's reserve for a refund of `payment_id`
    /// (queued as outbox row `chain_tx_id`, when known). [`StoreError::ReserveInsufficient`]
    /// (nothing written) when the balance cannot cover it.
    pub async fn reserve_debit_refund(
        &mut self,
        merchant_id: Uuid,
        asset: Address,
        payment_id: Uuid,
        amount: Amount,
        chain_tx_id: Option<Uuid>,
    ) -> Result<ReserveEntry> {
        let now = self.now_ms();
        let backend = self.backend;
        append(
            self.conn(),
            backend,
            now,
            merchant_id,
            asset,
            ReserveKind::Debit,
            amount,
            ReserveReason::Refund,
            Draft {
                payment_id: Some(payment_id),
                chain_tx_id,
                ..Draft::default()
            },
        )
        .await
    }

    /// Records the top-up planned with a capture (`pending`, or `skipped` with its reason).
    pub async fn plan_topup(&mut self, topup: &NewTopup) -> Result<()> {
        let now = self.now_ms();
        let (status, reason) = match &topup.skipped {
            None => ("pending", None),
            Some(why) => ("skipped", Some(why.clone())),
        };
        sqlx::query(
            "INSERT INTO reserve_topups (id, payment_id, merchant_id, asset, capture_amount, \
                 share_bps, amount, status, reason, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
        )
        .bind(codec::uuid(&Uuid::now_v7()))
        .bind(codec::uuid(&topup.payment_id))
        .bind(codec::uuid(&topup.merchant_id))
        .bind(codec::addr(&topup.asset))
        .bind(amount_text(topup.capture_amount))
        .bind(i64::from(topup.share_bps))
        .bind(amount_text(topup.amount))
        .bind(status)
        .bind(reason)
        .bind(now)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Credits a stored deposit event to the merchant it came from (at most once per transfer
    /// log) and marks the event processed, in this transaction.
    pub async fn process_deposit_event(&mut self, event: &ChainEvent) -> Result<DepositOutcome> {
        let now = self.now_ms();
        let backend = self.backend;
        let (asset, from, _to, value) = deposit_of(event)?;
        let outcome = match deposit_merchant(self.conn(), from).await? {
            None => DepositOutcome::UnknownSender(from),
            Some(merchant_id) => {
                // Locked first: two instances processing the same event serialize here.
                lock_balance(self.conn(), backend, now, merchant_id, asset).await?;
                // By transfer log (transaction hash + log index), not by stored event: a
                // transfer re-mined in another block after a reorg is a new event of the same
                // log, credited again only because the first credit was taken back.
                let count = |reason: &'static str| {
                    sqlx::query(
                        "SELECT id FROM reserve_entries \
                         WHERE tx_hash = $1 AND log_index = $2 AND reason = $3",
                    )
                    .bind(codec::b256(&event.tx_hash))
                    .bind(codec::int(event.log_index))
                    .bind(reason)
                };
                let taken_back = count("deposit_reorged").fetch_all(self.conn()).await?.len();
                let credited = count("deposit").fetch_all(self.conn()).await?.len();
                if credited > taken_back || value == 0 {
                    DepositOutcome::AlreadyCredited
                } else {
                    let key = format!(
                        "deposit:{}:{:#x}:{}:{}",
                        event.chain_id, event.tx_hash, event.log_index, credited
                    );
                    let entry = append(
                        self.conn(),
                        backend,
                        now,
                        merchant_id,
                        asset,
                        ReserveKind::Credit,
                        value,
                        ReserveReason::Deposit,
                        Draft {
                            tx_hash: Some(event.tx_hash),
                            log_index: Some(event.log_index),
                            chain_event_id: Some(event.id),
                            ref_key: Some(key),
                            note: Some(format!("from {from:#x}")),
                            ..Draft::default()
                        },
                    )
                    .await?;
                    DepositOutcome::Credited(entry)
                }
            }
        };
        self.mark_event_processed(event.id).await?;
        Ok(outcome)
    }
}

/// The merchant a deposit from `from` belongs to: a registered deposit address, else the one
/// merchant that has it among its receivers (none when several do).
async fn deposit_merchant(conn: &mut AnyConnection, from: Address) -> Result<Option<Uuid>> {
    let row = sqlx::query("SELECT merchant_id FROM merchant_deposit_addresses WHERE address = $1")
        .bind(codec::addr(&from))
        .fetch_optional(&mut *conn)
        .await?;
    if let Some(row) = row {
        return Ok(Some(get_uuid(&row, "merchant_id")?));
    }
    let merchants: Vec<super::Merchant> =
        codec::fetch_all(codec::select::<super::Merchant>("ORDER BY id"), &mut *conn).await?;
    let mut owners = merchants.iter().filter(|m| m.receivers.contains(&from));
    match (owners.next(), owners.next()) {
        (Some(m), None) => Ok(Some(m.id)),
        _ => Ok(None),
    }
}

impl Store {
    in_own_tx! {
        /// Credits a merchant's reserve (admin). [`StoreError::NotFound`] for an unknown merchant.
        pub async fn reserve_credit(&self, credit: &ReserveCredit) -> Result<ReserveEntry>;

        /// Credits a stored deposit event to the merchant it came from (at most once per
        /// transfer log) and marks the event processed.
        pub async fn process_deposit_event(&self, event: &ChainEvent) -> Result<DepositOutcome>;
    }

    /// The merchant's reserve in `asset` (zero when nothing was ever written).
    pub async fn reserve_balance(
        &self,
        merchant_id: Uuid,
        asset: Address,
    ) -> Result<ReserveBalance> {
        let query = codec::select::<ReserveBalance>("WHERE merchant_id = $1 AND asset = $2")
            .bind(codec::uuid(&merchant_id))
            .bind(codec::addr(&asset));
        Ok(codec::fetch_optional(query, &self.pool)
            .await?
            .unwrap_or(ReserveBalance {
                merchant_id,
                asset,
                balance: 0,
                credited: 0,
                debited: 0,
                released: 0,
                updated_at: 0,
            }))
    }

    /// Every asset the merchant has a reserve in.
    pub async fn reserve_balances(&self, merchant_id: Uuid) -> Result<Vec<ReserveBalance>> {
        let query = codec::select::<ReserveBalance>("WHERE merchant_id = $1 ORDER BY asset")
            .bind(codec::uuid(&merchant_id));
        codec::fetch_all(query, &self.pool).await
    }

    /// Every reserve row (all merchants), for `reconcile`.
    pub async fn all_reserve_balances(&self) -> Result<Vec<ReserveBalance>> {
        codec::fetch_all(
            codec::select::<ReserveBalance>("ORDER BY merchant_id, asset"),
            &self.pool,
        )
        .await
    }

    /// The merchant's ledger, newest first: at most `limit` entries (1..=200) older than
    /// `before` (the last id of the previous page), optionally of one asset.
    pub async fn reserve_statement(
        &self,
        merchant_id: Uuid,
        asset: Option<Address>,
        before: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<ReserveEntry>> {
        let query = codec::select::<ReserveEntry>(
            "WHERE merchant_id = $1 AND ($2 IS NULL OR asset = $2) AND ($3 IS NULL OR id < $3) \
             ORDER BY id DESC LIMIT $4",
        )
        .bind(codec::uuid(&merchant_id))
        .bind(asset.as_ref().map(codec::addr))
        .bind(before.as_ref().map(codec::uuid))
        .bind(i64::from(limit.clamp(1, 200)));
        codec::fetch_all(query, &self.pool).await
    }

    /// Every entry recomputed into balances: `(merchant, asset) → credited − debited +
    /// released`, for checking the kept balances against the ledger.
    pub async fn reserve_ledger_sums(&self) -> Result<Vec<(Uuid, Address, Amount)>> {
        let rows = sqlx::query("SELECT merchant_id, asset, kind, amount FROM reserve_entries")
            .fetch_all(&self.pool)
            .await?;
        let mut sums: std::collections::BTreeMap<(Uuid, Address), i128> = Default::default();
        for row in &rows {
            let key = (
                get_uuid(row, "merchant_id")?,
                codec::get_addr(row, "asset")?,
            );
            let amount = i128::try_from(codec::get_u128(row, "amount")?).unwrap_or(i128::MAX);
            let signed = match ReserveKind::parse(&get_str(row, "kind")?)? {
                ReserveKind::Debit => -amount,
                _ => amount,
            };
            let sum = sums.entry(key).or_default();
            *sum = sum.saturating_add(signed);
        }
        Ok(sums
            .into_iter()
            .map(|((m, a), s)| (m, a, Amount::try_from(s.max(0)).unwrap_or(0)))
            .collect())
    }

    /// The deposit credits still standing (not taken back by a reorg), for `reconcile`: per
    /// deposit event, its credits beyond the reorgs that took one back.
    pub async fn standing_deposits(&self) -> Result<Vec<ReserveEntry>> {
        let query = codec::select::<ReserveEntry>(
            "WHERE reason IN ('deposit', 'deposit_reorged') ORDER BY id",
        );
        let entries: Vec<ReserveEntry> = codec::fetch_all(query, &self.pool).await?;
        // Per transfer log: its credits, and how many of them a reorg took back.
        type Credits = (Vec<ReserveEntry>, usize);
        let mut per_event: std::collections::BTreeMap<(Option<B256>, Option<u64>), Credits> =
            Default::default();
        for e in entries {
            let slot = per_event.entry((e.tx_hash, e.log_index)).or_default();
            match e.reason {
                ReserveReason::DepositReorged => slot.1 += 1,
                _ => slot.0.push(e),
            }
        }
        Ok(per_event
            .into_values()
            .flat_map(|(credits, taken_back)| credits.into_iter().skip(taken_back))
            .collect())
    }

    /// Registers `address` as one the merchant deposits its reserve from.
    /// [`StoreError::Conflict`] when another merchant registered it.
    pub async fn add_deposit_address(&self, merchant_id: Uuid, address: Address) -> Result<()> {
        self.get_merchant(merchant_id).await?;
        let done = sqlx::query(
            "INSERT INTO merchant_deposit_addresses (address, merchant_id, created_at) \
             VALUES ($1, $2, $3) ON CONFLICT (address) DO NOTHING",
        )
        .bind(codec::addr(&address))
        .bind(codec::uuid(&merchant_id))
        .bind(self.now_ms())
        .execute(&self.pool)
        .await
        .map(|done| self.wrote(done))?;
        if done.rows_affected() == 0 {
            let owner = sqlx::query(
                "SELECT merchant_id FROM merchant_deposit_addresses WHERE address = $1",
            )
            .bind(codec::addr(&address))
            .fetch_one(&self.pool)
            .await?;
            if get_uuid(&owner, "merchant_id")? != merchant_id {
                return Err(StoreError::Conflict {
                    entity: "deposit address",
                    detail: format!("{address:#x} is another merchant's deposit address"),
                });
            }
        }
        Ok(())
    }

    /// The merchant's registered deposit addresses.
    pub async fn deposit_addresses(&self, merchant_id: Uuid) -> Result<Vec<Address>> {
        let rows = sqlx::query(
            "SELECT address FROM merchant_deposit_addresses WHERE merchant_id = $1 ORDER BY address",
        )
        .bind(codec::uuid(&merchant_id))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| codec::get_addr(r, "address")).collect()
    }

    /// The merchant a deposit from `from` is credited to (see the module docs).
    pub async fn deposit_merchant(&self, from: Address) -> Result<Option<Uuid>> {
        deposit_merchant(&mut *self.conn().await?, from).await
    }

    /// Sets (`Some`) or removes (`None`) the merchant's automatic top-up share (basis points,
    /// 1..=10000).
    pub async fn set_topup_rule(&self, merchant_id: Uuid, share_bps: Option<u16>) -> Result<()> {
        if share_bps.is_some_and(|bps| bps == 0 || bps > 10_000) {
            return Err(StoreError::Conflict {
                entity: "top-up rule",
                detail: "the share must be 1..=10000 basis points".into(),
            });
        }
        self.get_merchant(merchant_id).await?;
        let query = match share_bps {
            Some(bps) => sqlx::query(
                "INSERT INTO reserve_topup_rules (merchant_id, share_bps, updated_at) \
                 VALUES ($1, $2, $3) \
                 ON CONFLICT (merchant_id) DO UPDATE SET share_bps = $2, updated_at = $3",
            )
            .bind(codec::uuid(&merchant_id))
            .bind(i64::from(bps))
            .bind(self.now_ms()),
            None => sqlx::query("DELETE FROM reserve_topup_rules WHERE merchant_id = $1")
                .bind(codec::uuid(&merchant_id)),
        };
        query
            .execute(&self.pool)
            .await
            .map(|done| self.wrote(done))?;
        Ok(())
    }

    /// The merchant's automatic top-up share (basis points), if it set one.
    pub async fn topup_rule(&self, merchant_id: Uuid) -> Result<Option<u16>> {
        let row = sqlx::query("SELECT share_bps FROM reserve_topup_rules WHERE merchant_id = $1")
            .bind(codec::uuid(&merchant_id))
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            u16::try_from(get_i64(&r, "share_bps")?).map_err(|e| StoreError::Decode {
                column: "share_bps",
                message: e.to_string(),
            })
        })
        .transpose()
    }

    /// The top-ups planned for a payment's captures, oldest first.
    pub async fn topups_for_payment(&self, payment_id: Uuid) -> Result<Vec<Topup>> {
        let query = codec::select::<Topup>("WHERE payment_id = $1 ORDER BY id")
            .bind(codec::uuid(&payment_id));
        codec::fetch_all(query, &self.pool).await
    }
}
