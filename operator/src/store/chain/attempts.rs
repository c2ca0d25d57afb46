//! Signed attempts (`tx_attempts`) and the status moves after signing: broadcast, mined,
//! unmined (reorg), final, abandoned.

use alloy::primitives::B256;
use uuid::Uuid;

use super::super::codec::{self, Record};
use super::super::{Result, Store, StoreError, StoreTx, in_own_tx};
use super::outbox::{guarded, status_update};
use super::*;

impl StoreTx {
    /// Stores a signed attempt (`reserved` → `signed`; later attempts keep the status) and counts it.
    pub async fn record_attempt(
        &mut self,
        chain_tx_id: Uuid,
        attempt: &NewTxAttempt,
    ) -> Result<TxAttempt> {
        let now = self.now_ms();
        let count = status_update(
            chain_tx_id,
            now,
            "attempts = attempts + 1, status = CASE status WHEN 'reserved' THEN 'signed' ELSE status END",
            "'reserved', 'signed', 'broadcast'",
        );
        guarded(self.conn(), chain_tx_id, "record an attempt", count).await?;
        let row = codec::returning::<TxAttempt>(
            "INSERT INTO tx_attempts (id, chain_tx_id, tx_hash, raw_tx, max_fee_per_gas, max_priority_fee_per_gas, \
                 created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(codec::uuid(&Uuid::now_v7()))
        .bind(codec::uuid(&chain_tx_id))
        .bind(codec::b256(&attempt.tx_hash))
        .bind(codec::bytes(&attempt.raw_tx))
        .bind(attempt.max_fee_per_gas.to_string())
        .bind(attempt.max_priority_fee_per_gas.to_string())
        .bind(now)
        .fetch_one(self.conn())
        .await
        .map_err(|e| codec::conflict_or(e, "tx attempt", format!("hash {:#x} already recorded", attempt.tx_hash)))?;
        TxAttempt::decode(&row)
    }

    /// Notes that `tx_hash` was handed to the node (`signed` → `broadcast`; idempotent).
    pub async fn mark_broadcast(&mut self, chain_tx_id: Uuid, tx_hash: B256) -> Result<ChainTx> {
        let now = self.now_ms();
        let updated = sqlx::query(
            "UPDATE tx_attempts SET broadcast_at = $3 WHERE chain_tx_id = $1 AND tx_hash = $2",
        )
        .bind(codec::uuid(&chain_tx_id))
        .bind(codec::b256(&tx_hash))
        .bind(now)
        .execute(self.conn())
        .await?;
        codec::affected(&updated, "tx attempt", format!("{tx_hash:#x}"))?;
        let query = status_update(
            chain_tx_id,
            now,
            "status = 'broadcast'",
            "'signed', 'broadcast'",
        );
        guarded(self.conn(), chain_tx_id, "mark broadcast", query).await
    }

    /// Records a receipt (`signed` / `broadcast` / `mined` → `mined`). A transaction found mined
    /// after a crash before `mark_broadcast` goes straight from `signed`.
    pub async fn mark_mined(
        &mut self,
        chain_tx_id: Uuid,
        receipt: &MinedReceipt,
    ) -> Result<ChainTx> {
        let query = status_update(
            chain_tx_id,
            self.now_ms(),
            "status = 'mined', mined_tx_hash = $3, block_number = $4, block_hash = $5, gas_used = $6, \
                 effective_gas_price = $7, succeeded = $8, revert_reason = $9",
            "'signed', 'broadcast', 'mined'",
        )
        .bind(codec::b256(&receipt.tx_hash))
        .bind(codec::int(receipt.block_number))
        .bind(codec::b256(&receipt.block_hash))
        .bind(codec::int(receipt.gas_used))
        .bind(receipt.effective_gas_price.to_string())
        .bind(i64::from(receipt.succeeded))
        .bind(receipt.revert_reason.clone());
        guarded(self.conn(), chain_tx_id, "mark mined", query).await
    }

    /// A reorg dropped the block it was mined in: back to `broadcast`, receipt fields cleared.
    pub async fn mark_unmined(&mut self, chain_tx_id: Uuid) -> Result<ChainTx> {
        let set = "status = 'broadcast', mined_tx_hash = NULL, block_number = NULL, block_hash = NULL, \
                   gas_used = NULL, effective_gas_price = NULL, succeeded = NULL, revert_reason = NULL";
        let query = status_update(chain_tx_id, self.now_ms(), set, "'mined'");
        guarded(self.conn(), chain_tx_id, "mark unmined", query).await
    }

    /// Deep enough: `mined` → `final` (successful receipt) or `reverted` (failed receipt).
    pub async fn mark_final(&mut self, chain_tx_id: Uuid) -> Result<ChainTx> {
        let set = "status = CASE succeeded WHEN 1 THEN 'final' ELSE 'reverted' END";
        let query = status_update(chain_tx_id, self.now_ms(), set, "'mined'");
        guarded(self.conn(), chain_tx_id, "mark final", query).await
    }

    /// Gives up on a transaction that was never mined (`reason` goes to `revert_reason`).
    pub async fn mark_abandoned(&mut self, chain_tx_id: Uuid, reason: &str) -> Result<ChainTx> {
        let set = "status = 'abandoned', revert_reason = $3";
        let from = "'queued', 'reserved', 'signed', 'broadcast'";
        let query = status_update(chain_tx_id, self.now_ms(), set, from).bind(reason);
        guarded(self.conn(), chain_tx_id, "abandon", query).await
    }
}

impl Store {
    in_own_tx! {
        /// See [`StoreTx::record_attempt`].
        pub async fn record_attempt(
            &self,
            chain_tx_id: Uuid,
            attempt: &NewTxAttempt,
        ) -> Result<TxAttempt>;
    }

    /// [`StoreTx::record_attempt`] for several rows in one transaction (in the given order),
    /// shared with other hot-path writes ([`Store::grouped`]).
    pub async fn record_attempts(
        &self,
        attempts: &[(Uuid, NewTxAttempt)],
    ) -> Result<Vec<TxAttempt>> {
        let attempts = attempts.to_vec();
        self.grouped(move |tx| {
            Box::pin(async move {
                let mut stored = Vec::with_capacity(attempts.len());
                for (chain_tx_id, attempt) in &attempts {
                    stored.push(tx.record_attempt(*chain_tx_id, attempt).await?);
                }
                Ok(stored)
            })
        })
        .await
    }

    /// [`StoreTx::mark_broadcast`] for several rows in one transaction (in the given order),
    /// shared with other hot-path writes ([`Store::grouped`]).
    pub async fn mark_broadcasts(&self, sent: &[(Uuid, B256)]) -> Result<Vec<ChainTx>> {
        let sent = sent.to_vec();
        self.grouped(move |tx| {
            Box::pin(async move {
                let mut rows = Vec::with_capacity(sent.len());
                for (chain_tx_id, tx_hash) in sent {
                    rows.push(tx.mark_broadcast(chain_tx_id, tx_hash).await?);
                }
                Ok(rows)
            })
        })
        .await
    }

    in_own_tx! {
        /// See [`StoreTx::mark_broadcast`].
        pub async fn mark_broadcast(&self, chain_tx_id: Uuid, tx_hash: B256) -> Result<ChainTx>;

        /// See [`StoreTx::mark_mined`].
        pub async fn mark_mined(
            &self,
            chain_tx_id: Uuid,
            receipt: &MinedReceipt,
        ) -> Result<ChainTx>;
    }

    /// [`StoreTx::mark_mined`] then [`StoreTx::mark_final`] in one transaction: a receipt that
    /// is already deep enough when it is found (one confirmation) settles with one write,
    /// shared with other hot-path writes ([`Store::grouped`]).
    pub async fn mark_mined_final(
        &self,
        chain_tx_id: Uuid,
        receipt: &MinedReceipt,
    ) -> Result<ChainTx> {
        let mut settled = self
            .mark_mined_finals(&[(chain_tx_id, receipt.clone())])
            .await?;
        settled.pop().ok_or_else(|| StoreError::NotFound {
            entity: "chain tx",
            key: chain_tx_id.to_string(),
        })
    }

    /// [`Store::mark_mined_final`] for several rows in one transaction (in the given order):
    /// the receipts a node pushed for one group of sends settle with one write.
    pub async fn mark_mined_finals(
        &self,
        receipts: &[(Uuid, MinedReceipt)],
    ) -> Result<Vec<ChainTx>> {
        let receipts = receipts.to_vec();
        self.grouped(move |tx| {
            Box::pin(async move {
                let mut settled = Vec::with_capacity(receipts.len());
                for (chain_tx_id, receipt) in &receipts {
                    tx.mark_mined(*chain_tx_id, receipt).await?;
                    settled.push(tx.mark_final(*chain_tx_id).await?);
                }
                Ok(settled)
            })
        })
        .await
    }

    in_own_tx! {
        /// See [`StoreTx::mark_unmined`].
        pub async fn mark_unmined(&self, chain_tx_id: Uuid) -> Result<ChainTx>;

        /// See [`StoreTx::mark_final`].
        pub async fn mark_final(&self, chain_tx_id: Uuid) -> Result<ChainTx>;

        /// See [`StoreTx::mark_abandoned`].
        pub async fn mark_abandoned(&self, chain_tx_id: Uuid, reason: &str) -> Result<ChainTx>;
    }

    /// Every attempt of a chain transaction, oldest first (all hashes to look receipts up for).
    pub async fn attempts_for(&self, chain_tx_id: Uuid) -> Result<Vec<TxAttempt>> {
        let query = codec::select::<TxAttempt>("WHERE chain_tx_id = $1 ORDER BY created_at, id");
        codec::fetch_all(query.bind(codec::uuid(&chain_tx_id)), &self.pool).await
    }

    /// The attempt with this hash, if any.
    pub async fn attempt_by_hash(&self, tx_hash: B256) -> Result<Option<TxAttempt>> {
        let query = codec::select::<TxAttempt>("WHERE tx_hash = $1");
        codec::fetch_optional(query.bind(codec::b256(&tx_hash)), &self.pool).await
    }
}
