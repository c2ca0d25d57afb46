//! The outbox rows themselves (`chain_txs`): writing them (with an intent key for rows without
//! a payment), reading them, and the queries over them the relayer and the engine need.

use alloy::primitives::Address;
use sqlx::AnyConnection;
use uuid::Uuid;

use super::super::codec::{self, Record, get_i64};
use super::super::{Result, Store, StoreError, StoreTx, in_own_tx, in_tx};
use super::*;

/// The PostgreSQL channel a new queued outbox row is announced on (`NOTIFY`, delivered when its
/// transaction commits; the payload is the row's signer, lower-case `0x…` hex). Every instance
/// `LISTEN`s on it and wakes the relayer of that lane if it holds it (`operator/DESIGN.md`,
/// "Signer lanes").
pub const OUTBOX_CHANNEL: &str = "x402_outbox";

/// Inserts a queued outbox row (or a reserved one when `nonce` is given: nonce fills), with its
/// intent key when it has one. On PostgreSQL a queued row is also announced on
/// [`OUTBOX_CHANNEL`] in the same transaction.
pub(super) async fn insert_with(
    conn: &mut AnyConnection,
    now: i64,
    id: Uuid,
    new: &NewChainTx,
    nonce: Option<u64>,
    intent_key: Option<&str>,
) -> Result<ChainTx> {
    let status = if nonce.is_some() {
        TxStatus::Reserved
    } else {
        TxStatus::Queued
    };
    let request = codec::json("request", &new.request)?;
    let row = codec::returning::<ChainTx>(
        "INSERT INTO chain_txs (id, chain_id, signer, kind, payment_id, request, to_address, calldata, value, \
             gas_limit, nonce, status, created_at, updated_at, intent_key) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, $14)",
    )
    .bind(codec::uuid(&id))
    .bind(codec::int(new.chain_id))
    .bind(codec::addr(&new.signer))
    .bind(new.kind.as_str())
    .bind(new.payment_id.as_ref().map(codec::uuid))
    .bind(request)
    .bind(codec::addr(&new.to))
    .bind(codec::bytes(&new.calldata))
    .bind(new.value.to_string())
    .bind(new.gas_limit.map(codec::int))
    .bind(nonce.map(codec::int))
    .bind(status.as_str())
    .bind(now)
    .bind(intent_key)
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| match intent_key {
        Some(key) => codec::conflict_or(e, "chain tx", format!("intent {key} already queued")),
        None => codec::conflict_or(e, "chain tx", format!("nonce {nonce:?} of {:#x} already taken", new.signer)),
    })?;
    if status == TxStatus::Queued && conn.backend_name() == "PostgreSQL" {
        // NOTIFY takes no bind parameters; the payload is an address we formatted ourselves
        // (hex digits only). Identical notifications of one transaction are sent once.
        let notify = format!("NOTIFY {OUTBOX_CHANNEL}, '{}'", codec::addr(&new.signer));
        sqlx::raw_sql(sqlx::AssertSqlSafe(notify))
            .execute(&mut *conn)
            .await?;
    }
    ChainTx::decode(&row)
}

/// Inserts a queued outbox row with the given id.
pub(in crate::store) async fn insert(
    conn: &mut AnyConnection,
    now: i64,
    id: Uuid,
    new: &NewChainTx,
) -> Result<ChainTx> {
    insert_with(conn, now, id, new, None, None).await
}

pub(in crate::store) async fn get(conn: &mut AnyConnection, id: Uuid) -> Result<ChainTx> {
    codec::get_by_id(conn, id).await
}

/// A payment's transactions: its own rows (except single rows merged into a batch) and the
/// batch rows that carry it, oldest first.
pub(in crate::store) async fn for_payment(
    conn: &mut AnyConnection,
    payment_id: Uuid,
) -> Result<Vec<ChainTx>> {
    // Two indexed branches joined with UNION ALL: the same condition written with OR took five
    // times as long on SQLite (a multi-index OR and a sort of the merged rows), on a query every
    // payment view runs. A batch row names no payment, so no row is in both branches.
    let query = codec::select::<ChainTx>(&format!(
        "WHERE payment_id = $1 \
             AND NOT EXISTS (SELECT 1 FROM chain_tx_members m WHERE m.source_tx_id = chain_txs.id) \
         UNION ALL SELECT {columns} FROM chain_txs \
         WHERE id IN (SELECT m.batch_tx_id FROM chain_tx_members m WHERE m.payment_id = $1) \
             AND (payment_id IS NULL OR payment_id <> $1) \
         ORDER BY id",
        columns = <ChainTx as Record>::COLUMNS,
    ));
    codec::fetch_all(query.bind(codec::uuid(&payment_id)), &mut *conn).await
}

/// Runs a guarded status update (`… WHERE id = $1 AND status IN (…) RETURNING …`); when no row
/// matches, reports the status the row is actually in.
pub(super) async fn guarded(
    conn: &mut AnyConnection,
    id: Uuid,
    action: &'static str,
    query: codec::AnyQuery,
) -> Result<ChainTx> {
    match codec::fetch_optional(query, &mut *conn).await? {
        Some(tx) => Ok(tx),
        None => {
            let current = get(conn, id).await?;
            Err(StoreError::TxState {
                id,
                status: current.status,
                action,
            })
        }
    }
}

/// `UPDATE chain_txs SET {set}, updated_at = $2 WHERE id = $1 AND status IN ({from})
/// RETURNING …`, with `id` and `now` bound as `$1` and `$2` (further parameters of `set` are
/// `$3` on): the statement [`guarded`] runs to move a row between statuses.
pub(super) fn status_update(id: Uuid, now: i64, set: &str, from: &str) -> codec::AnyQuery {
    codec::returning::<ChainTx>(&format!(
        "UPDATE chain_txs SET {set}, updated_at = $2 WHERE id = $1 AND status IN ({from})"
    ))
    .bind(codec::uuid(&id))
    .bind(now)
}

impl StoreTx {
    /// Writes a queued outbox row.
    pub async fn enqueue_tx(&mut self, new: &NewChainTx) -> Result<ChainTx> {
        let now = self.now_ms();
        insert(self.conn(), now, Uuid::now_v7(), new).await
    }
}

impl Store {
    in_own_tx! {
        /// Writes a queued outbox row.
        pub async fn enqueue_tx(&self, new: &NewChainTx) -> Result<ChainTx>;
    }

    /// The chain transaction with this id.
    pub async fn get_tx(&self, id: Uuid) -> Result<ChainTx> {
        get(&mut *self.conn().await?, id).await
    }

    /// The outbox row written for `intent_key` ([`Store::enqueue_keyed_tx`]), if any.
    pub async fn tx_by_intent_key(&self, intent_key: &str) -> Result<Option<ChainTx>> {
        let query = codec::select::<ChainTx>("WHERE intent_key = $1").bind(intent_key);
        codec::fetch_optional(query, &self.pool).await
    }

    /// Writes a queued outbox row that stands for `intent_key` (a row without a payment, such as
    /// an `exact` transfer: what it stands for is unique), or finds the row already written for
    /// it (by this process before a restart, or by another instance racing it). Returns the row
    /// and whether it was written now.
    pub async fn enqueue_keyed_tx(
        &self,
        intent_key: &str,
        new: &NewChainTx,
    ) -> Result<(ChainTx, bool)> {
        if let Some(existing) = self.tx_by_intent_key(intent_key).await? {
            return Ok((existing, false));
        }
        let now = self.now_ms();
        let written: Result<ChainTx> = in_tx!(self, |tx| insert_with(
            tx.conn(),
            now,
            Uuid::now_v7(),
            new,
            None,
            Some(intent_key)
        )
        .await?);
        match written {
            Ok(row) => Ok((row, true)),
            Err(conflict @ StoreError::Conflict { .. }) => {
                match self.tx_by_intent_key(intent_key).await? {
                    Some(existing) => Ok((existing, false)),
                    None => Err(conflict),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// The signer's settled transactions (`final`, `reverted`, `abandoned`) that a payment still
    /// points at (`payments.pending_tx_id`): outcomes the engine may not have handled yet (the
    /// relayer re-announces them when it takes the lease). (Added for the relayer.)
    pub async fn settled_txs_awaiting_engine(
        &self,
        chain_id: u64,
        signer: Address,
    ) -> Result<Vec<ChainTx>> {
        let query = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM chain_txs t JOIN payments p ON p.pending_tx_id = t.id \
             WHERE t.chain_id = $1 AND t.signer = $2 AND t.status IN ('final', 'reverted', 'abandoned') \
             ORDER BY t.id",
            codec::qualified::<ChainTx>("t")
        )))
        .bind(codec::int(chain_id))
        .bind(codec::addr(&signer));
        codec::fetch_all(query, &self.pool).await
    }

    /// The signer's transactions that hold a nonce and are not settled (`reserved`, `signed`,
    /// `broadcast`, `mined`), by nonce: what a new lease holder resumes.
    pub async fn txs_in_flight(&self, chain_id: u64, signer: Address) -> Result<Vec<ChainTx>> {
        let query = codec::select::<ChainTx>(
            "WHERE chain_id = $1 AND signer = $2 AND status IN ('reserved', 'signed', 'broadcast', 'mined') \
             ORDER BY nonce, id",
        )
        .bind(codec::int(chain_id))
        .bind(codec::addr(&signer));
        codec::fetch_all(query, &self.pool).await
    }

    /// How many transactions are queued (not yet claimed) for a signer (metrics).
    pub async fn queued_tx_count(&self, chain_id: u64, signer: Address) -> Result<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM chain_txs WHERE chain_id = $1 AND signer = $2 AND status = 'queued'",
        )
        .bind(codec::int(chain_id))
        .bind(codec::addr(&signer))
        .fetch_one(&self.pool)
        .await?;
        get_i64(&row, "n")
    }
}
