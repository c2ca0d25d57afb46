//! Indexed chain events (`chain_events`) and the indexer's progress (`indexer_cursors`).
//!
//! An event is identified by `(chain_id, block_hash, log_index)`: storing it twice is a no-op, so
//! the indexer may re-read any range. When a reorg replaces blocks, the events of the dropped
//! blocks are marked `removed` (never deleted: what the engine did because of them stays
//! explainable) and the replacement blocks' events arrive with their new block hashes.

use alloy::primitives::{Address, B256};
use sqlx::any::AnyRow;
use uuid::Uuid;

use super::codec::{self, Record, get_i64, get_opt_i64, get_str, get_u64, get_uuid};
use super::{Result, Store, StoreTx, in_own_tx};

/// An escrow event to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChainEvent {
    /// The chain.
    pub chain_id: u64,
    /// The emitting contract.
    pub address: Address,
    /// Block number.
    pub block_number: u64,
    /// Block hash.
    pub block_hash: B256,
    /// Index of the log in the block.
    pub log_index: u64,
    /// The transaction that emitted it.
    pub tx_hash: B256,
    /// Event name (`PaymentAuthorized`, `PaymentCaptured`, …).
    pub event_name: String,
    /// The payment it concerns (the indexed `paymentInfoHash`), if any.
    pub payment_hash: Option<B256>,
    /// Its amount, if it has one.
    pub amount: Option<u128>,
    /// The decoded event as JSON.
    pub data: serde_json::Value,
}

/// A stored chain event: the event as indexed (reachable directly through `Deref`, e.g.
/// `event.block_number`) and what happened to it since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainEvent {
    /// Id (UUIDv7).
    pub id: Uuid,
    /// The event: chain, contract, block, log index, transaction, name, payment, amount, data.
    pub event: NewChainEvent,
    /// A reorg dropped its block.
    pub removed: bool,
    /// When the engine reconciled it (unix ms).
    pub processed_at: Option<i64>,
    /// When it was stored (unix ms).
    pub created_at: i64,
}

codec::deref_to!(ChainEvent => event: NewChainEvent);

/// How far the indexer has read for one contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexerCursor {
    /// The chain.
    pub chain_id: u64,
    /// The contract followed.
    pub address: Address,
    /// The first block not yet read.
    pub next_block: u64,
    /// Hash of block `next_block - 1` when it was read (a different hash now means a reorg).
    pub last_block_hash: Option<B256>,
    /// Last change (unix ms).
    pub updated_at: i64,
}

impl Record for ChainEvent {
    const TABLE: &'static str = "chain_events";
    const COLUMNS: &'static str = "id, chain_id, address, block_number, block_hash, log_index, tx_hash, \
        event_name, payment_hash, amount, data, removed, processed_at, created_at";
    const ENTITY: &'static str = "chain event";

    fn decode(row: &AnyRow) -> Result<ChainEvent> {
        Ok(ChainEvent {
            id: get_uuid(row, "id")?,
            event: NewChainEvent {
                chain_id: get_u64(row, "chain_id")?,
                address: codec::get_addr(row, "address")?,
                block_number: get_u64(row, "block_number")?,
                block_hash: codec::get_b256(row, "block_hash")?,
                log_index: get_u64(row, "log_index")?,
                tx_hash: codec::get_b256(row, "tx_hash")?,
                event_name: get_str(row, "event_name")?,
                payment_hash: codec::get_opt_b256(row, "payment_hash")?,
                amount: codec::get_opt_u128(row, "amount")?,
                data: codec::get_json(row, "data")?,
            },
            removed: codec::get_bool(row, "removed")?,
            processed_at: get_opt_i64(row, "processed_at")?,
            created_at: get_i64(row, "created_at")?,
        })
    }
}

impl Record for IndexerCursor {
    const TABLE: &'static str = "indexer_cursors";
    const COLUMNS: &'static str = "chain_id, address, next_block, last_block_hash, updated_at";
    const ENTITY: &'static str = "indexer cursor";

    fn decode(row: &AnyRow) -> Result<IndexerCursor> {
        Ok(IndexerCursor {
            chain_id: get_u64(row, "chain_id")?,
            address: codec::get_addr(row, "address")?,
            next_block: get_u64(row, "next_block")?,
            last_block_hash: codec::get_opt_b256(row, "last_block_hash")?,
            updated_at: get_i64(row, "updated_at")?,
        })
    }
}

/// Reorg: marks every live event of `address` (and every refund-reserve deposit the same
/// indexer stored, emitted by a token) at or above `from_block` as removed and returns them in
/// chain order.
async fn remove_events_from<'c>(
    executor: impl sqlx::Executor<'c, Database = sqlx::Any>,
    chain_id: u64,
    address: Address,
    from_block: u64,
) -> Result<Vec<ChainEvent>> {
    let query = codec::returning::<ChainEvent>(
        "UPDATE chain_events SET removed = 1 \
         WHERE chain_id = $1 AND (address = $2 OR event_name = 'ReserveDeposit') \
             AND block_number >= $3 AND removed = 0",
    )
    .bind(codec::int(chain_id))
    .bind(codec::addr(&address))
    .bind(codec::int(from_block));
    let mut events: Vec<ChainEvent> = codec::fetch_all(query, executor).await?;
    events.sort_by_key(|e| (e.block_number, e.log_index));
    if !events.is_empty() {
        tracing::warn!(
            chain_id,
            from_block,
            removed = events.len(),
            "reorg: chain events marked removed"
        );
    }
    Ok(events)
}

impl StoreTx {
    /// Notes that the engine reconciled an event, in the caller's transaction (with the payment
    /// transition it caused, so a crash cannot apply an event twice or skip it).
    pub async fn mark_event_processed(&mut self, id: Uuid) -> Result<()> {
        let now = self.now_ms();
        let done = sqlx::query("UPDATE chain_events SET processed_at = $2 WHERE id = $1")
            .bind(codec::uuid(&id))
            .bind(now)
            .execute(self.conn())
            .await?;
        codec::affected(&done, "chain event", id)
    }
}

impl Store {
    /// Stores an event. Returns it when it is new (or was marked removed and its block is back),
    /// `None` when it was already stored and live: re-reading a range is harmless.
    pub async fn insert_chain_event(&self, new: &NewChainEvent) -> Result<Option<ChainEvent>> {
        let mut conn = self.conn().await?;
        insert_events(&mut conn, std::slice::from_ref(new), self.now_ms())
            .await
            .map(|mut events| self.wrote(events.pop()))
    }

    /// Reorg: marks every live event of `address` at or above `from_block` as removed and returns
    /// them (the engine re-checks the payments they touched against `paymentState`).
    pub async fn mark_events_removed_from(
        &self,
        chain_id: u64,
        address: Address,
        from_block: u64,
    ) -> Result<Vec<ChainEvent>> {
        remove_events_from(&self.pool, chain_id, address, from_block)
            .await
            .map(|removed| self.wrote(removed))
    }

    /// Marks the live events of one block hash removed (when a specific block is known to be gone).
    pub async fn mark_block_removed(&self, chain_id: u64, block_hash: B256) -> Result<u64> {
        let done = sqlx::query("UPDATE chain_events SET removed = 1 WHERE chain_id = $1 AND block_hash = $2 AND removed = 0")
            .bind(codec::int(chain_id))
            .bind(codec::b256(&block_hash))
            .execute(&self.pool)
            .await
            .map(|done| self.wrote(done))?;
        Ok(done.rows_affected())
    }

    /// Live events the engine has not reconciled yet, in chain order.
    pub async fn unprocessed_events(&self, chain_id: u64, limit: u32) -> Result<Vec<ChainEvent>> {
        let query = codec::select::<ChainEvent>(
            "WHERE chain_id = $1 AND removed = 0 AND processed_at IS NULL \
             ORDER BY block_number, log_index LIMIT $2",
        )
        .bind(codec::int(chain_id))
        .bind(i64::from(limit));
        codec::fetch_all(query, &self.pool).await
    }

    in_own_tx! {
        /// Notes that the engine reconciled an event (see [`StoreTx::mark_event_processed`]).
        pub async fn mark_event_processed(&self, id: Uuid) -> Result<()>;
    }

    /// Every stored event of a payment (removed ones included), in chain order.
    pub async fn events_for_payment(&self, payment_hash: B256) -> Result<Vec<ChainEvent>> {
        let query = codec::select::<ChainEvent>(
            "WHERE payment_hash = $1 ORDER BY block_number, log_index, id",
        );
        codec::fetch_all(query.bind(codec::b256(&payment_hash)), &self.pool).await
    }

    /// The indexer's cursor for a contract, if it has started.
    pub async fn cursor(&self, chain_id: u64, address: Address) -> Result<Option<IndexerCursor>> {
        codec::by_chain_address(&self.pool, chain_id, &address).await
    }

    /// Sets the cursor (creating it if needed). Moving it back is allowed: that is how the
    /// indexer re-reads from a safe depth after a reorg.
    pub async fn set_cursor(
        &self,
        chain_id: u64,
        address: Address,
        next_block: u64,
        last_block_hash: Option<B256>,
    ) -> Result<()> {
        let now = self.now_ms();
        sqlx::query(
            "INSERT INTO indexer_cursors (chain_id, address, next_block, last_block_hash, updated_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (chain_id, address) DO UPDATE SET next_block = excluded.next_block, \
                 last_block_hash = excluded.last_block_hash, updated_at = excluded.updated_at",
        )
        .bind(codec::int(chain_id))
        .bind(codec::addr(&address))
        .bind(codec::int(next_block))
        .bind(last_block_hash.as_ref().map(codec::b256))
        .bind(now)
        .execute(&self.pool)
        .await
        .map(|done| self.wrote(done))?;
        Ok(())
    }
}

/// One entry of the indexer's window of recent block hashes (`indexer_blocks`, migration 0003).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexedBlock {
    /// Block number.
    pub number: u64,
    /// Its hash when the indexer read it.
    pub hash: B256,
}

/// Where the indexer's cursor is expected to be (compare-and-set guard: an indexer writes its
/// progress only if nobody moved the cursor since it read it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CursorPosition {
    /// The first block not yet read.
    pub next_block: u64,
    /// Hash of `next_block - 1` (`None` at the start or after a blind rewind).
    pub last_block_hash: Option<B256>,
}

/// A range the indexer read, to record atomically ([`Store::advance_indexer`]).
#[derive(Debug, Clone, Copy)]
pub struct IndexerAdvance<'a> {
    /// The chain.
    pub chain_id: u64,
    /// The contract followed.
    pub address: Address,
    /// The cursor the range was read from.
    pub expected: CursorPosition,
    /// The cursor after the range.
    pub next: CursorPosition,
    /// The events of the range.
    pub events: &'a [NewChainEvent],
    /// Block hashes to remember.
    pub blocks: &'a [IndexedBlock],
    /// How many remembered blocks to keep (the newest).
    pub keep: u32,
}

/// Moves the cursor from `expected` to `next` (or creates it, when absent). False when the
/// cursor is elsewhere: another indexer instance moved it.
async fn move_cursor(
    tx: &mut StoreTx,
    chain_id: u64,
    address: Address,
    expected: CursorPosition,
    next: CursorPosition,
) -> Result<bool> {
    let now = tx.now_ms();
    let updated = sqlx::query(
        "UPDATE indexer_cursors SET next_block = $3, last_block_hash = $4, updated_at = $5 \
         WHERE chain_id = $1 AND address = $2 AND next_block = $6 \
           AND (last_block_hash = $7 OR ($7 IS NULL AND last_block_hash IS NULL))",
    )
    .bind(codec::int(chain_id))
    .bind(codec::addr(&address))
    .bind(codec::int(next.next_block))
    .bind(next.last_block_hash.as_ref().map(codec::b256))
    .bind(now)
    .bind(codec::int(expected.next_block))
    .bind(expected.last_block_hash.as_ref().map(codec::b256))
    .execute(tx.conn())
    .await?;
    if updated.rows_affected() == 1 {
        return Ok(true);
    }
    let inserted = sqlx::query(
        "INSERT INTO indexer_cursors (chain_id, address, next_block, last_block_hash, updated_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (chain_id, address) DO NOTHING",
    )
    .bind(codec::int(chain_id))
    .bind(codec::addr(&address))
    .bind(codec::int(next.next_block))
    .bind(next.last_block_hash.as_ref().map(codec::b256))
    .bind(now)
    .execute(tx.conn())
    .await?;
    Ok(inserted.rows_affected() == 1)
}

impl Store {
    /// The indexer's newest remembered block hashes for a contract, highest block first.
    pub async fn recent_indexed_blocks(
        &self,
        chain_id: u64,
        address: Address,
        limit: u32,
    ) -> Result<Vec<IndexedBlock>> {
        let rows = sqlx::query(
            "SELECT block_number, block_hash FROM indexer_blocks \
             WHERE chain_id = $1 AND address = $2 ORDER BY block_number DESC LIMIT $3",
        )
        .bind(codec::int(chain_id))
        .bind(codec::addr(&address))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(IndexedBlock {
                    number: get_u64(row, "block_number")?,
                    hash: codec::get_b256(row, "block_hash")?,
                })
            })
            .collect()
    }

    /// Records a range the indexer read, in one transaction: moves the cursor from
    /// `expected` to `next` (compare-and-set), stores the events (idempotent, like
    /// [`Store::insert_chain_event`]), remembers the block hashes and keeps only the newest
    /// `keep`. Returns the events stored for the first time (or revived), in chain order; `None`
    /// (and nothing written) when the cursor was not at `expected`.
    pub async fn advance_indexer(
        &self,
        advance: IndexerAdvance<'_>,
    ) -> Result<Option<Vec<ChainEvent>>> {
        let IndexerAdvance {
            chain_id,
            address,
            expected,
            next,
            events,
            blocks,
            keep,
        } = advance;
        let mut tx = self.begin().await?;
        let out = async {
            if !move_cursor(&mut tx, chain_id, address, expected, next).await? {
                return Ok(None);
            }
            let now = tx.now_ms();
            let mut stored = insert_events(tx.conn(), events, now).await?;
            for block in blocks {
                sqlx::query(
                    "INSERT INTO indexer_blocks (chain_id, address, block_number, block_hash) \
                     VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (chain_id, address, block_number) DO UPDATE SET block_hash = excluded.block_hash",
                )
                .bind(codec::int(chain_id))
                .bind(codec::addr(&address))
                .bind(codec::int(block.number))
                .bind(codec::b256(&block.hash))
                .execute(tx.conn())
                .await?;
            }
            // The `keep`-th newest block number; everything below it is forgotten.
            let floor = sqlx::query(
                "SELECT block_number FROM indexer_blocks WHERE chain_id = $1 AND address = $2 \
                 ORDER BY block_number DESC LIMIT 1 OFFSET $3",
            )
            .bind(codec::int(chain_id))
            .bind(codec::addr(&address))
            .bind(i64::from(keep.max(1)) - 1)
            .fetch_optional(tx.conn())
            .await?;
            if let Some(row) = floor {
                sqlx::query(
                    "DELETE FROM indexer_blocks WHERE chain_id = $1 AND address = $2 AND block_number < $3",
                )
                .bind(codec::int(chain_id))
                .bind(codec::addr(&address))
                .bind(get_i64(&row, "block_number")?)
                .execute(tx.conn())
                .await?;
            }
            stored.sort_by_key(|e| (e.block_number, e.log_index));
            Ok(Some(stored))
        }
        .await;
        finish(tx, out).await
    }

    /// Reorg rewind, in one transaction: moves the cursor from `expected` back to `from_block`
    /// with `ancestor_hash` (the hash of `from_block - 1` on the canonical chain, `None` when
    /// unknown), marks every live event of `address` at or above `from_block` removed and
    /// forgets the remembered block hashes from `from_block` on. Returns the removed events in
    /// chain order; `None` (nothing written) when the cursor was not at `expected`.
    pub async fn rewind_indexer(
        &self,
        chain_id: u64,
        address: Address,
        expected: CursorPosition,
        from_block: u64,
        ancestor_hash: Option<B256>,
    ) -> Result<Option<Vec<ChainEvent>>> {
        let mut tx = self.begin().await?;
        let next = CursorPosition {
            next_block: from_block,
            last_block_hash: ancestor_hash,
        };
        let out = async {
            if !move_cursor(&mut tx, chain_id, address, expected, next).await? {
                return Ok(None);
            }
            let events = remove_events_from(tx.conn(), chain_id, address, from_block).await?;
            let (backend, now) = (tx.backend, tx.now_ms());
            super::reserve::reverse_removed_deposits(tx.conn(), backend, now, &events).await?;
            sqlx::query(
                "DELETE FROM indexer_blocks WHERE chain_id = $1 AND address = $2 AND block_number >= $3",
            )
            .bind(codec::int(chain_id))
            .bind(codec::addr(&address))
            .bind(codec::int(from_block))
            .execute(tx.conn())
            .await?;
            Ok(Some(events))
        }
        .await;
        finish(tx, out).await
    }
}

/// Commits on `Ok(Some(_))`, rolls back otherwise (a lost compare-and-set writes nothing).
async fn finish<T>(tx: StoreTx, out: Result<Option<T>>) -> Result<Option<T>> {
    match out {
        Ok(Some(value)) => {
            tx.commit().await?;
            Ok(Some(value))
        }
        other => {
            if let Err(e) = tx.rollback().await {
                tracing::warn!(error = %e, "rollback failed");
            }
            other
        }
    }
}

/// The most events one `INSERT` carries (12 parameters each: far below SQLite's and
/// PostgreSQL's limits).
const EVENTS_PER_INSERT: usize = 500;

/// Stores events through `conn` (a pooled one, or a transaction's), up to
/// [`EVENTS_PER_INSERT`] per statement. Returns those that are new (or were marked removed and
/// whose block is back); an event already stored and live, or listed twice, is left out.
async fn insert_events(
    conn: &mut sqlx::AnyConnection,
    events: &[NewChainEvent],
    now: i64,
) -> Result<Vec<ChainEvent>> {
    // One row per key: a key twice in one statement is an error on PostgreSQL.
    let mut seen = std::collections::HashSet::new();
    let unique: Vec<_> = events
        .iter()
        .filter(|e| seen.insert((e.chain_id, e.block_hash, e.log_index)))
        .collect();
    let mut stored = Vec::new();
    for chunk in unique.chunks(EVENTS_PER_INSERT) {
        // ON CONFLICT … DO UPDATE … WHERE removed = 1 revives an event whose block came back
        // (and then RETURNING yields it); a live duplicate updates nothing and returns no row.
        let mut query = codec::returning::<ChainEvent>(&format!(
            "INSERT INTO chain_events (id, chain_id, address, block_number, block_hash, log_index, tx_hash, \
                 event_name, payment_hash, amount, data, created_at) \
             VALUES {} \
             ON CONFLICT (chain_id, block_hash, log_index) DO UPDATE \
                 SET removed = 0, processed_at = NULL WHERE chain_events.removed = 1",
            codec::value_rows(chunk.len(), 12)
        ));
        for new in chunk {
            query = query
                .bind(codec::uuid(&Uuid::now_v7()))
                .bind(codec::int(new.chain_id))
                .bind(codec::addr(&new.address))
                .bind(codec::int(new.block_number))
                .bind(codec::b256(&new.block_hash))
                .bind(codec::int(new.log_index))
                .bind(codec::b256(&new.tx_hash))
                .bind(new.event_name.clone())
                .bind(new.payment_hash.as_ref().map(codec::b256))
                .bind(new.amount.map(|a| a.to_string()))
                .bind(codec::json("data", &new.data)?)
                .bind(now);
        }
        stored.extend(codec::fetch_all::<ChainEvent>(query, &mut *conn).await?);
    }
    Ok(stored)
}
