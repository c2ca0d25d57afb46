//! Batched captures and voids (`chain_tx_members`, migration 0005).
//!
//! A capture or void is first written as its own `capture` / `void` row, with the payment's
//! transition (the durable intent). While such rows are still `queued`, the relayer may merge
//! several of them into one `capture_batch` / `void_batch` row ([`StoreTx::merge_batch`]): in one
//! SQL transaction the batch row is written, every member row becomes `abandoned` (it never held
//! a nonce, so it can never be sent), each payment's `pending_tx_id` moves to the batch row, and
//! the members are listed here. A crash before that commit leaves the single rows untouched; a
//! crash after it leaves a queued batch row the relayer sends like any other.
//!
//! When a batch fails as a whole (all or nothing on chain), the engine re-sends each member on
//! its own ([`StoreTx::resend_member`]); such a fallback row is never batched again, so one bad
//! member cannot hold the others back twice.

use std::collections::HashMap;

use alloy::primitives::Address;
use sqlx::any::AnyRow;
use uuid::Uuid;

use super::chain::{self, ChainTx, NewChainTx, TxKind};
use super::codec::{self, Record, get_i64, get_uuid};
use super::{Payment, Result, Store, StoreError, StoreTx, in_claim_tx, in_own_tx};

/// Which queued single rows of a payment wait for company in a batch (see
/// [`StoreTx::claim_next_tx_holding`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hold {
    /// Rows created after this time (store clock, unix ms) are held; `i64::MAX` holds nothing.
    pub after: i64,
    /// The kinds held: `capture` / `void` (the escrow's own `captureBatch` / `voidBatch`) or every
    /// escrow call (the executor's `execute`).
    pub kinds: BatchKinds,
}

/// The single-row kinds a batch may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchKinds {
    /// `capture` and `void`: merged into the escrow's `captureBatch` / `voidBatch`.
    CaptureVoid,
    /// `authorize`, `charge`, `capture`, `void`, `refund`: merged into an `execute` of the
    /// signer's EIP-7702 executor.
    EscrowCalls,
}

impl BatchKinds {
    /// The SQL list of the payment kinds (`'capture', 'void'`), from constant names only.
    const fn sql_list(self) -> &'static str {
        match self {
            BatchKinds::CaptureVoid => "'capture', 'void'",
            BatchKinds::EscrowCalls => "'authorize', 'charge', 'capture', 'void', 'refund'",
        }
    }

    /// The SQL condition "a row of `chain_txs` (columns qualified by `table`) is of a kind that
    /// may join a batch of these kinds": a single call of a payment, or, with the executor, an
    /// `exact` transfer too (a `transfer` row, which has no payment: `execute` can call the
    /// token as well as the escrow). From constant names only.
    pub(in crate::store) fn sql_batchable(self, table: &str) -> String {
        let calls = format!(
            "{table}.kind IN ({}) AND {table}.payment_id IS NOT NULL",
            self.sql_list()
        );
        match self {
            BatchKinds::CaptureVoid => format!("({calls})"),
            BatchKinds::EscrowCalls => format!("(({calls}) OR {table}.kind = 'transfer')"),
        }
    }
}

impl From<i64> for Hold {
    /// Captures and voids created after `after` are held.
    fn from(after: i64) -> Hold {
        Hold {
            after,
            kinds: BatchKinds::CaptureVoid,
        }
    }
}

/// One call carried by a batch row: a payment's, or an `exact` transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchMember {
    /// The `capture_batch` / `void_batch` / `execute` row.
    pub batch_tx_id: Uuid,
    /// Index in the batch call's array.
    pub position: u64,
    /// The payment; `None` for a `transfer` member (an `exact` settle, which has none).
    pub payment_id: Option<Uuid>,
    /// The single `capture` / `void` row merged into the batch (its request and calldata are the
    /// member's).
    pub source_tx_id: Uuid,
    /// The single row re-sent after the batch failed, if any.
    pub fallback_tx_id: Option<Uuid>,
}

impl Record for BatchMember {
    const TABLE: &'static str = "chain_tx_members";
    const COLUMNS: &'static str = "batch_tx_id, position, payment_id, source_tx_id, fallback_tx_id";
    const ENTITY: &'static str = "batch member";

    fn decode(row: &AnyRow) -> Result<BatchMember> {
        let position = get_i64(row, "position")?;
        Ok(BatchMember {
            batch_tx_id: get_uuid(row, "batch_tx_id")?,
            position: u64::try_from(position).map_err(|e| StoreError::Decode {
                column: "position",
                message: e.to_string(),
            })?,
            payment_id: codec::get_opt_uuid(row, "payment_id")?,
            source_tx_id: get_uuid(row, "source_tx_id")?,
            fallback_tx_id: codec::get_opt_uuid(row, "fallback_tx_id")?,
        })
    }
}

/// Abandons the queued single rows `members` as merged ("`reason`"), in one statement, and
/// returns each one's payment and kind, in `members`' order. Fails with
/// [`StoreError::TxState`] naming the first member that was not a queued row without a nonce
/// (or was listed twice).
async fn abandon_merged(
    tx: &mut StoreTx,
    members: &[Uuid],
    reason: &str,
    now: i64,
) -> Result<Vec<(Option<Uuid>, TxKind)>> {
    let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE chain_txs SET status = 'abandoned', revert_reason = $1, updated_at = $2 \
         WHERE id IN ({}) AND status = 'queued' AND nonce IS NULL \
         RETURNING id, payment_id, kind",
        codec::parameters(3, members.len())
    )))
    .bind(reason.to_owned())
    .bind(now);
    for member in members {
        query = query.bind(codec::uuid(member));
    }
    let mut merged = HashMap::new();
    for row in query.fetch_all(tx.conn()).await? {
        merged.insert(
            get_uuid(&row, "id")?,
            (
                codec::get_opt_uuid(&row, "payment_id")?,
                codec::get_parsed::<TxKind>(&row, "kind")?,
            ),
        );
    }
    let mut out = Vec::with_capacity(members.len());
    for member in members {
        // A member missing here, or listed a second time, was not (or no longer) queued.
        match merged.remove(member) {
            Some(found) => out.push(found),
            None => {
                let current = chain::get(tx.conn(), *member).await?;
                return Err(StoreError::TxState {
                    id: *member,
                    status: current.status,
                    action: "merge into a batch",
                });
            }
        }
    }
    Ok(out)
}

/// Moves each payment's pending action from its `from` to `to` (`moves`: `(payment, from)`), in
/// one statement (no status change; the version moves so a transition decided on the old
/// pointer cannot overwrite it). Fails with [`StoreError::VersionMismatch`] naming the first
/// payment that no longer pointed at its `from`.
async fn repoint(tx: &mut StoreTx, moves: &[(Uuid, Uuid)], to: Uuid, now: i64) -> Result<()> {
    if moves.is_empty() {
        return Ok(());
    }
    // `pending_tx_id IN (froms)` alone picks the right rows (a row is the pending action of
    // its own payment only); `id IN (payments)` keeps the statement on the primary key.
    let n = moves.len();
    let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE payments SET pending_tx_id = $1, version = version + 1, updated_at = $2 \
         WHERE id IN ({}) AND pending_tx_id IN ({}) RETURNING id",
        codec::parameters(3, n),
        codec::parameters(3 + n, n)
    )))
    .bind(codec::uuid(&to))
    .bind(now);
    for (payment, _) in moves {
        query = query.bind(codec::uuid(payment));
    }
    for (_, from) in moves {
        query = query.bind(codec::uuid(from));
    }
    let mut moved = std::collections::HashSet::new();
    for row in query.fetch_all(tx.conn()).await? {
        moved.insert(get_uuid(&row, "id")?);
    }
    for (payment, _) in moves {
        // Listed twice: only one of its rows can have been its pending action.
        if !moved.remove(payment) {
            return Err(StoreError::VersionMismatch {
                id: *payment,
                expected: -1,
                actual: None,
            });
        }
    }
    Ok(())
}

/// Records `fallback` as the row member `position` of `batch_tx_id` is re-sent as (never
/// batched again); `false` when the member already has one.
async fn record_fallback(
    tx: &mut StoreTx,
    batch_tx_id: Uuid,
    position: u64,
    fallback: Uuid,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE chain_tx_members SET fallback_tx_id = $3 \
         WHERE batch_tx_id = $1 AND position = $2 AND fallback_tx_id IS NULL",
    )
    .bind(codec::uuid(&batch_tx_id))
    .bind(i64::try_from(position).unwrap_or(i64::MAX))
    .bind(codec::uuid(&fallback))
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected() == 1)
}

impl StoreTx {
    /// Merges the queued single rows `members` (in this order) into one new queued row `batch`
    /// (its `payment_id` is ignored): members become `abandoned` ("merged into batch …"), their
    /// payments' `pending_tx_id` moves to the batch, and `chain_tx_members` lists them. Every
    /// member must still be `queued` and its payment's pending action, or a `transfer` row (no
    /// payment: its outcome is written back on it, [`StoreTx::settle_transfer_member`])
    /// ([`StoreError::TxState`] / [`StoreError::VersionMismatch`] otherwise: roll back; no
    /// members at all is [`StoreError::Conflict`]).
    pub async fn merge_batch(&mut self, batch: &NewChainTx, members: &[Uuid]) -> Result<ChainTx> {
        if members.is_empty() {
            return Err(StoreError::Conflict {
                entity: "chain tx",
                detail: format!("a {} batch needs at least one member", batch.kind),
            });
        }
        let now = self.now_ms();
        let batch_id = Uuid::now_v7();
        let batch = NewChainTx {
            payment_id: None,
            ..batch.clone()
        };
        let row = chain::insert(self.conn(), now, batch_id, &batch).await?;
        let reason = format!("merged into {} {batch_id}", batch.kind);
        // Three set-wise statements, whatever the batch's size (statements in a write
        // transaction are the SQLite writer's time): the members abandoned, their payments
        // re-pointed, the member list written. `batch.max_size` (at most 1,000) keeps the
        // parameters (4 per member) far below SQLite's and PostgreSQL's limits.
        let merged = abandon_merged(self, members, &reason, now).await?;
        let mut payments = Vec::with_capacity(members.len());
        for (member, (payment_id, kind)) in members.iter().zip(&merged) {
            match payment_id {
                Some(payment_id) => payments.push((*payment_id, *member)),
                None if *kind == TxKind::Transfer => {}
                None => {
                    return Err(StoreError::Conflict {
                        entity: "chain tx",
                        detail: format!("{member} ({kind}) has no payment to batch"),
                    });
                }
            }
        }
        repoint(self, &payments, batch_id, now).await?;
        let rows: Vec<_> = members
            .iter()
            .zip(&merged)
            .enumerate()
            .map(|(position, (member, (payment_id, _)))| (position, *member, *payment_id))
            .collect();
        let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO chain_tx_members (batch_tx_id, position, payment_id, source_tx_id) \
             VALUES {}",
            codec::value_rows(rows.len(), 4)
        )));
        for (position, member, payment_id) in &rows {
            query = query
                .bind(codec::uuid(&batch_id))
                .bind(i64::try_from(*position).unwrap_or(i64::MAX))
                .bind(payment_id.as_ref().map(codec::uuid))
                .bind(codec::uuid(member));
        }
        query.execute(self.conn()).await?;
        tracing::debug!(batch = %batch_id, kind = %batch.kind, members = members.len(), "rows merged into a batch");
        Ok(row)
    }

    /// Re-sends member `position` of the failed batch `batch_tx_id` on its own: writes `single`
    /// (queued, for `payment_id`), records it as the member's fallback (never batched again) and
    /// moves the payment's `pending_tx_id` from the batch to it
    /// ([`StoreError::VersionMismatch`] when the payment no longer waits for the batch).
    pub async fn resend_member(
        &mut self,
        batch_tx_id: Uuid,
        position: u64,
        payment_id: Uuid,
        single: &NewChainTx,
    ) -> Result<ChainTx> {
        let now = self.now_ms();
        let id = Uuid::now_v7();
        let single = NewChainTx {
            payment_id: Some(payment_id),
            ..single.clone()
        };
        let row = chain::insert(self.conn(), now, id, &single).await?;
        if !record_fallback(self, batch_tx_id, position, id).await? {
            return Err(StoreError::Conflict {
                entity: "batch member",
                detail: format!("member {position} of {batch_tx_id} was already re-sent"),
            });
        }
        repoint(self, &[(payment_id, batch_tx_id)], id, now).await?;
        Ok(row)
    }

    /// Writes the outcome of `transfer` member `source_tx_id` of a mined batch back on the
    /// `transfer` row itself: `final` when its own call succeeded, `reverted` with `failure`
    /// (its revert data, `0x` hex) when it did not. The row keeps no transaction hash or nonce
    /// of its own (those stay the batch's: a row with a `mined_tx_hash` is a transaction that
    /// took a nonce); its answer names the batch's. `false` when the row is not waiting for
    /// the batch any more (already written, or re-sent).
    pub async fn settle_transfer_member(
        &mut self,
        source_tx_id: Uuid,
        failure: Option<&str>,
    ) -> Result<bool> {
        let now = self.now_ms();
        let done = sqlx::query(
            "UPDATE chain_txs SET status = $4, succeeded = $2, revert_reason = $3, updated_at = $5 \
             WHERE id = $1 AND kind = 'transfer' AND status = 'abandoned' AND nonce IS NULL",
        )
        .bind(codec::uuid(&source_tx_id))
        .bind(i64::from(failure.is_none()))
        .bind(failure)
        .bind(if failure.is_none() {
            "final"
        } else {
            "reverted"
        })
        .bind(now)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Re-sends `transfer` member `position` of the batch `batch_tx_id` on its own: its row
    /// (never sent, so it holds no nonce) is queued again and recorded as the member's fallback,
    /// so it is never batched again and a retried `/settle` still finds it by its key. `false`
    /// when it is not waiting for the batch any more.
    pub async fn requeue_transfer_member(
        &mut self,
        batch_tx_id: Uuid,
        position: u64,
        source_tx_id: Uuid,
    ) -> Result<bool> {
        let now = self.now_ms();
        if !record_fallback(self, batch_tx_id, position, source_tx_id).await? {
            return Ok(false);
        }
        let queued = sqlx::query(
            "UPDATE chain_txs SET status = 'queued', revert_reason = NULL, updated_at = $2 \
             WHERE id = $1 AND kind = 'transfer' AND status = 'abandoned' AND nonce IS NULL",
        )
        .bind(codec::uuid(&source_tx_id))
        .bind(now)
        .execute(self.conn())
        .await?;
        if queued.rows_affected() != 1 {
            return Err(StoreError::TxState {
                id: source_tx_id,
                status: chain::get(self.conn(), source_tx_id).await?.status,
                action: "re-send a transfer alone",
            });
        }
        Ok(true)
    }

    /// See [`StoreTx::claim_next_tx`]; additionally, single rows of a payment of the held kinds
    /// (an `i64` holds `capture` / `void`) created after the hold's time are not taken yet (they
    /// wait for company in a batch), unless they are the fallback of a failed batch.
    pub async fn claim_next_tx_holding(
        &mut self,
        chain_id: u64,
        signer: Address,
        owner: &str,
        hold: impl Into<Hold>,
    ) -> Result<Option<ChainTx>> {
        self.claim_next_tx_where(chain_id, signer, owner, hold.into(), None)
            .await
    }

    /// Claims the queued row `id` (reserving the signer's next nonce, fenced by the lease, as
    /// [`StoreTx::claim_next_tx`]) even if it would be held back for batching; `None` when it is
    /// not queued (any more).
    pub async fn claim_tx(
        &mut self,
        chain_id: u64,
        signer: Address,
        owner: &str,
        id: Uuid,
    ) -> Result<Option<ChainTx>> {
        self.claim_next_tx_where(chain_id, signer, owner, Hold::from(i64::MAX), Some(id))
            .await
    }
}

impl Store {
    in_own_tx! {
        /// See [`StoreTx::merge_batch`].
        pub async fn merge_batch(&self, batch: &NewChainTx, members: &[Uuid]) -> Result<ChainTx>;
    }

    /// See [`StoreTx::claim_tx`]; a row no longer queued rolls back (not a write).
    pub async fn claim_tx(
        &self,
        chain_id: u64,
        signer: Address,
        owner: &str,
        id: Uuid,
    ) -> Result<Option<ChainTx>> {
        in_claim_tx!(self, |tx| tx.claim_tx(chain_id, signer, owner, id).await?)
    }

    /// Up to `limit` rows of [`StoreTx::claim_next_tx_holding`] in one transaction (one write
    /// for a group of new rows; their nonces are consecutive), oldest first. Nothing to claim
    /// rolls back: an idle pass is not a write.
    pub async fn claim_next_txs_holding(
        &self,
        chain_id: u64,
        signer: Address,
        owner: &str,
        hold: impl Into<Hold>,
        limit: usize,
    ) -> Result<Vec<ChainTx>> {
        let hold = hold.into();
        in_claim_tx!(self, |tx| {
            let mut rows = Vec::new();
            while rows.len() < limit {
                match tx
                    .claim_next_tx_holding(chain_id, signer, owner, hold)
                    .await?
                {
                    Some(row) => rows.push(row),
                    None => break,
                }
            }
            rows
        })
    }

    /// See [`StoreTx::claim_next_tx_holding`].
    pub async fn claim_next_tx_holding(
        &self,
        chain_id: u64,
        signer: Address,
        owner: &str,
        hold: impl Into<Hold>,
    ) -> Result<Option<ChainTx>> {
        let hold = hold.into();
        in_claim_tx!(self, |tx| tx
            .claim_next_tx_holding(chain_id, signer, owner, hold)
            .await?)
    }

    /// For each batch transaction that carried a call of `payment_id`: the batch row's id and
    /// the kind of the single row merged into it (the call it made for that payment).
    pub async fn batch_calls_for_payment(&self, payment_id: Uuid) -> Result<Vec<(Uuid, TxKind)>> {
        let rows = sqlx::query(
            "SELECT m.batch_tx_id, s.kind FROM chain_tx_members m \
             JOIN chain_txs s ON s.id = m.source_tx_id WHERE m.payment_id = $1",
        )
        .bind(codec::uuid(&payment_id))
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    get_uuid(row, "batch_tx_id")?,
                    codec::get_parsed::<TxKind>(row, "kind")?,
                ))
            })
            .collect()
    }

    /// The signer's queued single `capture` and `void` rows that may join a batch: each is its
    /// payment's pending action and not the fallback of a failed batch. Oldest first, at most
    /// `limit`.
    pub async fn batch_candidates(
        &self,
        chain_id: u64,
        signer: Address,
        limit: u32,
    ) -> Result<Vec<ChainTx>> {
        self.batch_candidates_of(chain_id, signer, BatchKinds::CaptureVoid, limit)
            .await
    }

    /// [`Store::batch_candidates`] of the given kinds.
    pub async fn batch_candidates_of(
        &self,
        chain_id: u64,
        signer: Address,
        kinds: BatchKinds,
        limit: u32,
    ) -> Result<Vec<ChainTx>> {
        // A payment's row only while it is the payment's pending action; a transfer has none.
        let query = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM chain_txs t LEFT JOIN payments p ON p.id = t.payment_id \
             WHERE t.chain_id = $1 AND t.signer = $2 AND t.status = 'queued' AND t.nonce IS NULL \
               AND {} AND (t.payment_id IS NULL OR p.pending_tx_id = t.id) \
               AND NOT EXISTS (SELECT 1 FROM chain_tx_members m WHERE m.fallback_tx_id = t.id) \
             ORDER BY t.created_at, t.id LIMIT $3",
            codec::qualified::<ChainTx>("t"),
            kinds.sql_batchable("t")
        )))
        .bind(codec::int(chain_id))
        .bind(codec::addr(&signer))
        .bind(i64::from(limit));
        codec::fetch_all(query, &self.pool).await
    }

    /// When the signer's oldest queued row that is not of a kind batched with `kinds` (an
    /// `approve`, a `delegate`, a fallback, …) was written, if there is one. Candidates
    /// younger than it wait for it: it may be what they depend on (a refund on the float's
    /// allowance).
    pub async fn oldest_queued_outside(
        &self,
        chain_id: u64,
        signer: Address,
        kinds: BatchKinds,
    ) -> Result<Option<i64>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT MIN(created_at) AS oldest FROM chain_txs \
             WHERE chain_id = $1 AND signer = $2 AND status = 'queued' AND NOT {}",
            kinds.sql_batchable("chain_txs")
        )))
        .bind(codec::int(chain_id))
        .bind(codec::addr(&signer))
        .fetch_one(&self.pool)
        .await?;
        codec::get_opt_i64(&row, "oldest")
    }

    /// The members of batch row `batch_tx_id`, by position (empty for any other row).
    pub async fn batch_members(&self, batch_tx_id: Uuid) -> Result<Vec<BatchMember>> {
        self.members_where("batch_tx_id = $1 ORDER BY position", batch_tx_id)
            .await
    }

    /// The members of batch row `batch_tx_id`, by position, each with its payment (`None` for a
    /// `transfer`) and the single row it was merged from: three reads however many members the batch has (the outcome
    /// fan-out reads them all at once instead of two reads per member).
    pub async fn batch_members_with_rows(
        &self,
        batch_tx_id: Uuid,
    ) -> Result<Vec<(BatchMember, Option<Payment>, ChainTx)>> {
        let members = self.batch_members(batch_tx_id).await?;
        if members.is_empty() {
            return Ok(Vec::new());
        }
        let payments = codec::select::<Payment>(
            "WHERE id IN (SELECT payment_id FROM chain_tx_members WHERE batch_tx_id = $1)",
        );
        let payments: Vec<Payment> =
            codec::fetch_all(payments.bind(codec::uuid(&batch_tx_id)), &self.pool).await?;
        let sources = codec::select::<ChainTx>(
            "WHERE id IN (SELECT source_tx_id FROM chain_tx_members WHERE batch_tx_id = $1)",
        );
        let sources: Vec<ChainTx> =
            codec::fetch_all(sources.bind(codec::uuid(&batch_tx_id)), &self.pool).await?;
        let payments: HashMap<Uuid, Payment> = payments.into_iter().map(|p| (p.id, p)).collect();
        let mut sources: HashMap<Uuid, ChainTx> = sources.into_iter().map(|t| (t.id, t)).collect();
        members
            .into_iter()
            .map(|member| {
                let payment =
                    match member.payment_id {
                        Some(id) => Some(payments.get(&id).cloned().ok_or_else(|| {
                            StoreError::NotFound {
                                entity: "payment",
                                key: id.to_string(),
                            }
                        })?),
                        None => None,
                    };
                let source =
                    sources
                        .remove(&member.source_tx_id)
                        .ok_or_else(|| StoreError::NotFound {
                            entity: "chain tx",
                            key: member.source_tx_id.to_string(),
                        })?;
                Ok((member, payment, source))
            })
            .collect()
    }

    /// Settled (`final` / `reverted`) batch rows with a `transfer` member whose outcome is not
    /// written back yet (applied before a restart: `Engine::process_outcomes`), at most `limit`.
    /// Read through the partial index of merged transfers (migration 0014), so its cost does not
    /// grow with the transfers settled.
    pub async fn batches_with_open_transfers(&self, limit: u32) -> Result<Vec<Uuid>> {
        let rows = sqlx::query(
            "SELECT DISTINCT m.batch_tx_id FROM chain_txs s \
             JOIN chain_tx_members m ON m.source_tx_id = s.id \
             JOIN chain_txs b ON b.id = m.batch_tx_id \
             WHERE s.kind = 'transfer' AND s.status = 'abandoned' AND m.fallback_tx_id IS NULL \
               AND b.status IN ('final', 'reverted') \
             LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| get_uuid(row, "batch_tx_id"))
            .collect()
    }

    /// The membership of `source_tx_id` in a batch, if it was merged into one.
    pub async fn membership_of_source(&self, source_tx_id: Uuid) -> Result<Option<BatchMember>> {
        Ok(self
            .members_where("source_tx_id = $1", source_tx_id)
            .await?
            .into_iter()
            .next())
    }

    /// Every batch membership of a payment, oldest batch first.
    pub async fn batch_memberships(&self, payment_id: Uuid) -> Result<Vec<BatchMember>> {
        self.members_where("payment_id = $1 ORDER BY batch_tx_id", payment_id)
            .await
    }

    /// The `chain_tx_members` rows matching `condition` (which binds `id` as `$1`, and orders).
    async fn members_where(&self, condition: &'static str, id: Uuid) -> Result<Vec<BatchMember>> {
        let query = codec::select::<BatchMember>(&format!("WHERE {condition}"));
        codec::fetch_all(query.bind(codec::uuid(&id)), &self.pool).await
    }
}
