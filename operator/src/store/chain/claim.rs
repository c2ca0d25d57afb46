//! Claiming: the next queued row takes the signer's next nonce (fenced by the lease), and the
//! nonce fills that keep a signer's nonces gap-free.

use alloy::primitives::Address;
use sqlx::AnyConnection;
use uuid::Uuid;

use super::super::codec::{self, Record, get_u64, get_uuid};
use super::super::{Backend, Result, Store, StoreError, StoreTx, in_claim_tx, in_own_tx, in_tx};
use super::outbox::{guarded, insert_with, status_update};
use super::*;

/// Reserves the signer's next nonce, fenced by its lease: the update matches only while `owner`
/// holds an unexpired lease, so an instance whose lease ran out cannot hand out nonces.
async fn reserve_nonce(
    conn: &mut AnyConnection,
    now: i64,
    chain_id: u64,
    signer: Address,
    owner: &str,
    width: u64,
) -> Result<u64> {
    let row = sqlx::query(
        "UPDATE signers SET next_nonce = next_nonce + $5, updated_at = $4 \
         WHERE chain_id = $1 AND address = $2 AND lease_owner = $3 AND lease_expires_at > $4 \
         RETURNING next_nonce - $5 AS nonce",
    )
    .bind(codec::int(chain_id))
    .bind(codec::addr(&signer))
    .bind(owner)
    .bind(now)
    .bind(codec::int(width))
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        Some(row) => get_u64(&row, "nonce"),
        None => Err(StoreError::LeaseNotHeld {
            chain_id,
            signer: codec::addr(&signer),
            owner: owner.to_owned(),
        }),
    }
}

impl StoreTx {
    /// Takes the signer's oldest queued transaction and reserves the signer's next nonce for it,
    /// in this one transaction (`queued` → `reserved`). `owner` must hold the signer's lease
    /// ([`StoreError::LeaseNotHeld`] otherwise). Two concurrent claimers never get the same row
    /// (PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite: one writer at a time) and always get
    /// distinct nonces. `None` when nothing is queued.
    pub async fn claim_next_tx(
        &mut self,
        chain_id: u64,
        signer: Address,
        owner: &str,
    ) -> Result<Option<ChainTx>> {
        self.claim_next_tx_where(chain_id, signer, owner, i64::MAX.into(), None)
            .await
    }

    /// [`StoreTx::claim_next_tx`], holding back single rows of a payment of the held kinds created
    /// after the hold's time (batching; `i64::MAX` holds nothing back); with `only`, just that
    /// row (if queued), held or not.
    pub(in crate::store) async fn claim_next_tx_where(
        &mut self,
        chain_id: u64,
        signer: Address,
        owner: &str,
        hold: super::super::batches::Hold,
        only: Option<Uuid>,
    ) -> Result<Option<ChainTx>> {
        let now = self.now_ms();
        // Rows waiting for company in a batch: young single rows of the held kinds (a payment's,
        // or with the executor a transfer) that are not the fallback of a failed batch.
        let (hold_after, held) = match only {
            // `$3` is i64::MAX here: every row qualifies.
            Some(_) => (i64::MAX, "id = $4 AND created_at <= $3".to_owned()),
            None => (
                hold.after,
                format!(
                    "NOT ({} AND created_at > $3 \
                     AND NOT EXISTS (SELECT 1 FROM chain_tx_members m WHERE m.fallback_tx_id = chain_txs.id))",
                    hold.kinds.sql_batchable("chain_txs")
                ),
            ),
        };
        let pick = match self.backend {
            Backend::Postgres => format!(
                "SELECT id, kind FROM chain_txs WHERE chain_id = $1 AND signer = $2 AND status = 'queued' \
                 AND {held} ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED"
            ),
            Backend::Sqlite => format!(
                "SELECT id, kind FROM chain_txs WHERE chain_id = $1 AND signer = $2 AND status = 'queued' \
                 AND {held} ORDER BY created_at, id LIMIT 1"
            ),
        };
        let mut query = sqlx::query(sqlx::AssertSqlSafe(pick))
            .bind(codec::int(chain_id))
            .bind(codec::addr(&signer))
            .bind(hold_after);
        if let Some(id) = &only {
            query = query.bind(codec::uuid(id));
        }
        let Some(row) = query.fetch_optional(self.conn()).await? else {
            return Ok(None);
        };
        let id = get_uuid(&row, "id")?;
        let kind: TxKind = codec::get_parsed(&row, "kind")?;
        let nonce = reserve_nonce(self.conn(), now, chain_id, signer, owner, kind.nonces()).await?;
        let row = codec::returning::<ChainTx>(
            "UPDATE chain_txs SET nonce = $2, status = 'reserved', updated_at = $3 \
             WHERE id = $1 AND status = 'queued'",
        )
        .bind(codec::uuid(&id))
        .bind(codec::int(nonce))
        .bind(now)
        .fetch_one(self.conn())
        .await?;
        let tx = ChainTx::decode(&row)?;
        tracing::debug!(chain_tx = %id, nonce, signer = %signer, "nonce reserved");
        Ok(Some(tx))
    }

    /// Abandons `original_id` (a reserved nonce that can never be sent as is) and gives its nonce
    /// to `fill`, a [`TxKind::NonceFill`] transaction written as `reserved`.
    pub async fn replace_with_nonce_fill(
        &mut self,
        original_id: Uuid,
        fill: &NewChainTx,
    ) -> Result<ChainTx> {
        let original = self
            .mark_abandoned(original_id, "replaced by a nonce fill")
            .await?;
        let Some(nonce) = original.nonce else {
            return Err(StoreError::TxState {
                id: original_id,
                status: TxStatus::Queued,
                action: "fill nonce",
            });
        };
        let now = self.now_ms();
        let fill = NewChainTx {
            kind: TxKind::NonceFill,
            chain_id: original.chain_id,
            signer: original.signer,
            ..fill.clone()
        };
        insert_with(self.conn(), now, Uuid::now_v7(), &fill, Some(nonce), None).await
    }

    /// A `reserved` transaction refused before it was ever signed or sent (its gas estimate
    /// reverted): recorded as `reverted` (`succeeded` = 0, `revert_reason` = `reason`, no
    /// receipt) and its nonce moved to `fill`, a [`TxKind::NonceFill`] written as `reserved`, in
    /// this one transaction. The rejected row keeps no nonce (it never used one on chain), so the
    /// per-signer nonce stays gap-free. Returns `(rejected, fill)`. (Added for the relayer.)
    pub async fn reject_with_nonce_fill(
        &mut self,
        original_id: Uuid,
        reason: &str,
        fill: &NewChainTx,
    ) -> Result<(ChainTx, ChainTx)> {
        let original = get(self.conn(), original_id).await?;
        let (TxStatus::Reserved, Some(nonce)) = (original.status, original.nonce) else {
            return Err(StoreError::TxState {
                id: original_id,
                status: original.status,
                action: "reject before sending",
            });
        };
        let now = self.now_ms();
        let set = "status = 'reverted', succeeded = 0, revert_reason = $3, nonce = NULL";
        let query = status_update(original_id, now, set, "'reserved'").bind(reason);
        let rejected = guarded(self.conn(), original_id, "reject before sending", query).await?;
        let fill = NewChainTx {
            kind: TxKind::NonceFill,
            chain_id: original.chain_id,
            signer: original.signer,
            ..fill.clone()
        };
        let fill = insert_with(self.conn(), now, Uuid::now_v7(), &fill, Some(nonce), None).await?;
        Ok((rejected, fill))
    }
}

/// [`Store::abandoned_nonce_gaps`]: the nonces abandoned rows held that no live row holds.
/// Every term of the partial index `chain_txs_abandoned_nonce` is in the `WHERE`, so both
/// databases can read it instead of every abandoned row.
const ABANDONED_NONCE_GAPS: &str = "SELECT DISTINCT a.nonce AS nonce FROM chain_txs a \
     WHERE a.chain_id = $1 AND a.signer = $2 AND a.status = 'abandoned' \
       AND a.nonce IS NOT NULL AND a.nonce >= $3 \
       AND NOT EXISTS (SELECT 1 FROM chain_txs l WHERE l.chain_id = a.chain_id AND l.signer = a.signer \
                       AND l.nonce = a.nonce AND l.status <> 'abandoned') \
     ORDER BY a.nonce";

impl Store {
    /// See [`StoreTx::claim_next_tx`]; nothing queued rolls back (not a write).
    pub async fn claim_next_tx(
        &self,
        chain_id: u64,
        signer: Address,
        owner: &str,
    ) -> Result<Option<ChainTx>> {
        in_claim_tx!(self, |tx| tx.claim_next_tx(chain_id, signer, owner).await?)
    }

    in_own_tx! {
        /// See [`StoreTx::replace_with_nonce_fill`].
        pub async fn replace_with_nonce_fill(
            &self,
            original_id: Uuid,
            fill: &NewChainTx,
        ) -> Result<ChainTx>;

        /// See [`StoreTx::reject_with_nonce_fill`].
        pub async fn reject_with_nonce_fill(
            &self,
            original_id: Uuid,
            reason: &str,
            fill: &NewChainTx,
        ) -> Result<(ChainTx, ChainTx)>;
    }

    /// Nonces from `from_nonce` up that were reserved, then abandoned, and that no live row
    /// holds: gaps that stall every later nonce until filled ([`Store::fill_nonce`]). (Added for
    /// the relayer.) Read through `chain_txs_abandoned_nonce` (migration 0015): its cost does not
    /// grow with the singles merged into batches, which stay `abandoned` without a nonce.
    pub async fn abandoned_nonce_gaps(
        &self,
        chain_id: u64,
        signer: Address,
        from_nonce: u64,
    ) -> Result<Vec<u64>> {
        let rows = sqlx::query(ABANDONED_NONCE_GAPS)
            .bind(codec::int(chain_id))
            .bind(codec::addr(&signer))
            .bind(codec::int(from_nonce))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| get_u64(r, "nonce")).collect()
    }

    /// Writes `fill` as a `reserved` [`TxKind::NonceFill`] holding `nonce` (a gap left by an
    /// abandoned row). A live row already holding the nonce makes it a `Conflict`. (Added for the
    /// relayer.)
    pub async fn fill_nonce(&self, fill: &NewChainTx, nonce: u64) -> Result<ChainTx> {
        let now = self.now_ms();
        let fill = NewChainTx {
            kind: TxKind::NonceFill,
            ..fill.clone()
        };
        in_tx!(self, |tx| insert_with(
            tx.conn(),
            now,
            Uuid::now_v7(),
            &fill,
            Some(nonce),
            None
        )
        .await?)
    }
}

#[cfg(test)]
mod tests {
    use sqlx::Row;

    use super::*;

    /// SQLite's plan for [`ABANDONED_NONCE_GAPS`]: one line per step.
    async fn plan(store: &Store) -> Vec<String> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "EXPLAIN QUERY PLAN {ABANDONED_NONCE_GAPS}"
        )))
        .bind(codec::int(31337))
        .bind(codec::addr(&Address::repeat_byte(0x0a)))
        .bind(codec::int(0))
        .fetch_all(store.pool())
        .await
        .unwrap();
        rows.iter()
            .map(|row| row.try_get::<String, _>("detail").unwrap())
            .collect()
    }

    #[tokio::test]
    async fn gaps_are_read_through_the_abandoned_nonce_index() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        store.migrate().await.unwrap();
        let plan = plan(&store).await;
        assert!(
            plan.iter().any(|step| step.starts_with("SEARCH a ")
                && step.contains("INDEX chain_txs_abandoned_nonce (")),
            "{plan:?}"
        );
        assert!(
            !plan.iter().any(|step| step.contains("chain_txs_queue")),
            "{plan:?}"
        );
    }
}
