//! The idempotent status loop over in-flight rows: receipts, confirmations, reorgs, drops,
//! stuck transactions, used-up nonces and nonce gaps.

use std::time::Duration;

use alloy::eips::{BlockId, BlockNumberOrTag};
use alloy::network::TransactionBuilder;
use alloy::providers::Provider;
use alloy::rpc::types::TransactionReceipt;

use super::fees::{self, Fees};
use super::revert::revert_reason_of;
use super::sender::gas_limit_of;
use super::{CrashPoint, Relayer, RelayerError, RelayerMetrics};
use crate::store::{ChainTx, MinedReceipt, StoreError, TxAttempt, TxStatus};

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Relayer {
    /// Moves one row as far as it can go in this pass.
    pub(super) async fn drive(&mut self, row: ChainTx) -> Result<(), RelayerError> {
        match row.status {
            TxStatus::Reserved => {
                self.check_lease().await?;
                if let Some(attempt) = self.sign_reserved(&row).await? {
                    // `hand_over` uses only the row's id (the row is `signed` now).
                    self.hand_over(&row, &attempt).await?;
                }
                Ok(())
            }
            TxStatus::Signed | TxStatus::Broadcast => self.watch_pending(row).await,
            TxStatus::Mined => self.watch_mined(row).await,
            _ => Ok(()),
        }
    }

    /// The newest attempt of ours that has a receipt in a block, if any.
    pub(super) async fn find_receipt(
        &self,
        attempts: &[TxAttempt],
    ) -> Result<Option<TransactionReceipt>, RelayerError> {
        for attempt in attempts.iter().rev() {
            if let Some(receipt) = self
                .provider
                .get_transaction_receipt(attempt.tx_hash)
                .await?
                && receipt.block_hash.is_some()
                && receipt.block_number.is_some()
            {
                return Ok(Some(receipt));
            }
        }
        Ok(None)
    }

    /// What a receipt stores, with the decoded revert reason when it failed.
    async fn mined_receipt(
        &self,
        tx: &ChainTx,
        receipt: &TransactionReceipt,
    ) -> Result<MinedReceipt, RelayerError> {
        let (Some(block_number), Some(block_hash)) = (receipt.block_number, receipt.block_hash)
        else {
            return Err(RelayerError::Corrupt("receipt without a block".into()));
        };
        let succeeded = receipt.status();
        let revert_reason = if succeeded {
            None
        } else {
            Some(self.revert_reason_at(tx, receipt, block_number).await?)
        };
        Ok(MinedReceipt {
            tx_hash: receipt.transaction_hash,
            block_number,
            block_hash,
            gas_used: receipt.gas_used,
            effective_gas_price: receipt.effective_gas_price,
            succeeded,
            revert_reason,
        })
    }

    /// Records a receipt (`mined`), with the decoded revert reason when it failed.
    pub(super) async fn record_receipt(
        &mut self,
        tx: &ChainTx,
        receipt: &TransactionReceipt,
    ) -> Result<ChainTx, RelayerError> {
        let mined_receipt = self.mined_receipt(tx, receipt).await?;
        let mined = self.store.mark_mined(tx.id, &mined_receipt).await?;
        RelayerMetrics::inc(&self.metrics.mined);
        tracing::info!(tx_hash = %receipt.transaction_hash, block_number = mined_receipt.block_number, succeeded = mined_receipt.succeeded, reason = ?mined.revert_reason, "mined");
        Ok(mined)
    }

    /// At one confirmation a receipt is deep enough the moment it is found (its block is the
    /// head or below, and the lookup just read it from the canonical chain): `mined` and
    /// `final` / `reverted` in one write, without reading the receipt, the head and the block
    /// hash again as [`Relayer::watch_mined`] would.
    async fn settle_found(
        &mut self,
        tx: &ChainTx,
        receipt: &TransactionReceipt,
    ) -> Result<(), RelayerError> {
        let mined_receipt = self.mined_receipt(tx, receipt).await?;
        let settled = self.store.mark_mined_final(tx.id, &mined_receipt).await?;
        RelayerMetrics::inc(&self.metrics.mined);
        tracing::info!(tx_hash = %receipt.transaction_hash, block_number = mined_receipt.block_number, succeeded = mined_receipt.succeeded, reason = ?settled.revert_reason, "mined");
        self.report_settled(&settled, 1).await?;
        self.announce(&settled);
        Ok(())
    }

    /// Settles the rows of `fresh` whose receipts the node pushed (see `push.rs`): at one
    /// confirmation all of them `final` / `reverted` in one write, otherwise each `mined` and
    /// watched for depth. The other rows are returned for the monitor.
    pub(super) async fn settle_pushed(
        &mut self,
        fresh: Vec<ChainTx>,
    ) -> Result<Vec<ChainTx>, RelayerError> {
        let mut rest = Vec::with_capacity(fresh.len());
        let mut found = Vec::new();
        for row in fresh {
            match self.push.take_receipt(&row) {
                Some(receipt) => found.push((row, receipt)),
                None => rest.push(row),
            }
        }
        if found.is_empty() {
            return Ok(rest);
        }
        // The node has them, the database does not know yet.
        self.crash_point(CrashPoint::AfterBroadcast)?;
        if self.opts.confirmations > 1 {
            for (row, receipt) in found {
                RelayerMetrics::inc(&self.metrics.pushed);
                let mined = self.record_receipt(&row, &receipt).await?;
                self.watch_mined(mined).await?;
            }
            return Ok(rest);
        }
        let mut mined = Vec::with_capacity(found.len());
        for (row, receipt) in &found {
            mined.push((row.id, self.mined_receipt(row, receipt).await?));
        }
        let settled = self.store.mark_mined_finals(&mined).await?;
        for (row, receipt) in settled.iter().zip(&mined) {
            RelayerMetrics::inc(&self.metrics.mined);
            RelayerMetrics::inc(&self.metrics.pushed);
            tracing::info!(chain_tx = %row.id, payment = ?row.payment_id, tx_hash = %receipt.1.tx_hash, block_number = receipt.1.block_number, succeeded = receipt.1.succeeded, reason = ?row.revert_reason, "mined (pushed)");
            self.report_settled(row, 1).await?;
            self.announce(row);
        }
        Ok(rest)
    }

    /// Feeds the metrics sink, if any, for a row that just settled at `confirmations`.
    async fn report_settled(
        &self,
        settled: &ChainTx,
        confirmations: u64,
    ) -> Result<(), RelayerError> {
        if let Some(sink) = &self.sink {
            let first = self
                .store
                .attempts_for(settled.id)
                .await?
                .first()
                .map(|a| a.created_at);
            let latency = self
                .store
                .now_ms()
                .saturating_sub(first.unwrap_or(settled.created_at));
            sink.tx_settled(
                settled.kind,
                settled.status,
                Duration::from_millis(u64::try_from(latency).unwrap_or(0)),
                confirmations,
                settled.gas_used,
            );
        }
        Ok(())
    }

    /// Replays the call at the mined block to get the revert data, and decodes it.
    async fn revert_reason_at(
        &self,
        tx: &ChainTx,
        receipt: &TransactionReceipt,
        block_number: u64,
    ) -> Result<String, RelayerError> {
        let mut request = self.call_request(tx);
        if let Some(attempt) = self.store.attempt_by_hash(receipt.transaction_hash).await? {
            request = request.with_gas_limit(gas_limit_of(&attempt.raw_tx)?);
        }
        match self
            .provider
            .call(request)
            .block(BlockId::number(block_number))
            .await
        {
            Err(e) => match revert_reason_of(&e) {
                Some(reason) => Ok(reason),
                None => Err(e.into()),
            },
            Ok(_) => Ok(format!(
                "reverted (not reproducible by eth_call; gas used {})",
                receipt.gas_used
            )),
        }
    }

    /// `signed` / `broadcast`: receipt? nonce used by someone else? not sent yet? dropped? stale?
    async fn watch_pending(&mut self, row: ChainTx) -> Result<(), RelayerError> {
        let nonce = row
            .nonce
            .ok_or_else(|| RelayerError::Corrupt(format!("tx {} has no nonce", row.id)))?;
        let attempts = self.store.attempts_for(row.id).await?;
        let Some(latest) = attempts.last().cloned() else {
            return Err(RelayerError::Corrupt(format!(
                "tx {} is {} without attempts",
                row.id, row.status
            )));
        };
        // Nonce first, then receipts: a receipt of ours mined at or before the block the nonce
        // was read at is then seen by the receipt lookups. The nonce is read one block below
        // the `confirmations`-deep one (see `confirmed_nonce`).
        let confirmed_nonce = self.confirmed_nonce().await?;
        if let Some(receipt) = self.find_receipt(&attempts).await? {
            if self.opts.confirmations <= 1 {
                return self.settle_found(&row, &receipt).await;
            }
            let mined = self.record_receipt(&row, &receipt).await?;
            return self.watch_mined(mined).await;
        }
        if confirmed_nonce > nonce {
            self.check_lease().await?;
            let abandoned = self
                .store
                .mark_abandoned(
                    row.id,
                    &format!("nonce {nonce} was used by another transaction; none of our {} attempts mined", attempts.len()),
                )
                .await?;
            tracing::warn!("nonce used elsewhere: abandoned (engine reconciles from paymentState)");
            self.announce(&abandoned);
            return Ok(());
        }
        let now = self.store.now_ms();
        let bump = ms(self.opts.bump_after);
        if row.status == TxStatus::Signed || latest.broadcast_at.is_none() {
            // Never handed over (crash before broadcast, or the node refused it, e.g. a max fee
            // under the base fee): send it; once it is old, replace it with higher fees instead.
            if now - latest.created_at >= bump.saturating_mul(2) {
                return self.replace(&row, nonce, &latest).await;
            }
            return self.send_attempt(&row, &latest).await;
        }
        // Dropped from the pool (none of our hashes known): send the stored bytes again.
        let mut known = false;
        for attempt in attempts.iter().rev() {
            if self
                .provider
                .get_transaction_by_hash(attempt.tx_hash)
                .await?
                .is_some()
            {
                known = true;
                break;
            }
        }
        if !known {
            tracing::info!(tx_hash = %latest.tx_hash, "dropped from the pool: re-broadcasting");
            RelayerMetrics::inc(&self.metrics.rebroadcasts);
            return self.send_attempt(&row, &latest).await;
        }
        if now - latest.created_at >= bump.saturating_mul(2) {
            return self.replace(&row, nonce, &latest).await;
        }
        if now - latest.broadcast_at.unwrap_or(latest.created_at) >= bump {
            tracing::info!(tx_hash = %latest.tx_hash, "no receipt yet: re-broadcasting");
            RelayerMetrics::inc(&self.metrics.rebroadcasts);
            return self.send_attempt(&row, &latest).await;
        }
        Ok(())
    }

    /// A new attempt at the same nonce with ≥ `fee_bump_percent` higher max fee and tip.
    async fn replace(
        &mut self,
        row: &ChainTx,
        nonce: u64,
        latest: &TxAttempt,
    ) -> Result<(), RelayerError> {
        let previous = Fees {
            max_fee_per_gas: latest.max_fee_per_gas,
            max_priority_fee_per_gas: latest.max_priority_fee_per_gas,
        };
        let suggested = fees::suggest(&self.provider, self.opts.max_fee_per_gas).await?;
        let Some(bumped) = fees::bump(
            previous,
            self.opts.fee_bump_percent,
            suggested,
            self.opts.max_fee_per_gas,
        ) else {
            tracing::warn!(
                ?previous,
                "fee cap reached: cannot replace; re-broadcasting"
            );
            RelayerMetrics::inc(&self.metrics.rebroadcasts);
            return self.send_attempt(row, latest).await;
        };
        let gas_limit = gas_limit_of(&latest.raw_tx)?;
        let attempt = self.sign_attempt(row, nonce, gas_limit, bumped)?;
        self.check_lease().await?;
        let stored = self.store.record_attempt(row.id, &attempt).await?;
        RelayerMetrics::inc(&self.metrics.replacements);
        tracing::info!(old = %latest.tx_hash, new = %stored.tx_hash, max_fee = bumped.max_fee_per_gas, tip = bumped.max_priority_fee_per_gas, "stuck: replaced with higher fees");
        self.send_attempt(row, &stored).await
    }

    /// `mined`: still there? deep enough and canonical → final; reorged out → unmined.
    async fn watch_mined(&mut self, row: ChainTx) -> Result<(), RelayerError> {
        let (Some(hash), Some(block_number), Some(block_hash)) =
            (row.mined_tx_hash, row.block_number, row.block_hash)
        else {
            return Err(RelayerError::Corrupt(format!(
                "mined tx {} without receipt",
                row.id
            )));
        };
        let receipt = self.provider.get_transaction_receipt(hash).await?;
        match receipt {
            Some(r) if r.block_hash.is_some() && r.block_hash != Some(block_hash) => {
                tracing::info!("re-mined in another block");
                self.record_receipt(&row, &r).await?;
                Ok(())
            }
            Some(r) if r.block_hash.is_some() => {
                let depth = self.opts.confirmations.max(1);
                let mut head = self.head().await?;
                if head.saturating_add(1) < block_number.saturating_add(depth) {
                    // The round's head may predate this receipt: read it again before waiting.
                    head = self.provider.get_block_number().await?;
                    self.view.head = Some(head);
                    if head.saturating_add(1) < block_number.saturating_add(depth) {
                        return Ok(());
                    }
                }
                if self.canonical_hash(block_number).await? != Some(block_hash) {
                    tracing::info!("receipt block not canonical yet; waiting");
                    return Ok(());
                }
                let settled = self.store.mark_final(row.id).await?;
                self.report_settled(
                    &settled,
                    head.saturating_add(1).saturating_sub(block_number),
                )
                .await?;
                self.announce(&settled);
                Ok(())
            }
            _ => {
                tracing::warn!(tx_hash = %hash, block_number, "receipt gone (reorg): unmined");
                self.store.mark_unmined(row.id).await?;
                RelayerMetrics::inc(&self.metrics.unmined);
                Ok(())
            }
        }
    }

    /// The head, read once per monitoring round.
    async fn head(&mut self) -> Result<u64, RelayerError> {
        if let Some(head) = self.view.head {
            return Ok(head);
        }
        let head = self.provider.get_block_number().await?;
        self.view.head = Some(head);
        Ok(head)
    }

    /// The signer's nonce at the confirmed block (head − confirmations + 1), read once per
    /// monitoring round and before any of the round's receipt lookups.
    async fn confirmed_nonce(&mut self) -> Result<u64, RelayerError> {
        if let Some(nonce) = self.view.confirmed_nonce {
            return Ok(nonce);
        }
        // One block below the `confirmations`-deep one: a node may expose a new block's state
        // (our nonce used) a moment before that block's receipts (anvil does: its state write
        // and its block and receipt write are two steps, and a nonce read "at the head" sees the
        // new state), and reading the nonce at the head then abandoned transactions that were
        // in fact mined (`fault_crash::soak_sigkill_3000_paid_requests`: 5 of 6,000).
        let head = self.head().await?;
        let depth = self.opts.confirmations.max(1);
        let confirmed_block = head.saturating_sub(depth);
        let nonce = self
            .provider
            .get_transaction_count(self.address())
            .block_id(BlockId::number(confirmed_block))
            .await?;
        self.view.confirmed_nonce = Some(nonce);
        Ok(nonce)
    }

    /// The canonical hash of block `number`, read once per monitoring round.
    async fn canonical_hash(
        &mut self,
        number: u64,
    ) -> Result<Option<alloy::primitives::B256>, RelayerError> {
        if let Some(hash) = self.view.blocks.get(&number) {
            return Ok(*hash);
        }
        let hash = self
            .provider
            .get_block_by_number(BlockNumberOrTag::Number(number))
            .await?
            .map(|b| b.header.hash);
        self.view.blocks.insert(number, hash);
        Ok(hash)
    }

    /// Fills nonces that were reserved and abandoned without a replacement (they would stall
    /// every later nonce).
    pub(super) async fn fill_gaps(&mut self) -> Result<(), RelayerError> {
        let chain_nonce = self
            .provider
            .get_transaction_count(self.address())
            .latest()
            .await?;
        let gaps = self
            .store
            .abandoned_nonce_gaps(self.opts.chain_id, self.address(), chain_nonce)
            .await?;
        for nonce in gaps {
            self.check_lease().await?;
            let fill = self.nonce_fill_for(nonce, None);
            match self.store.fill_nonce(&fill, nonce).await {
                Ok(row) => {
                    RelayerMetrics::inc(&self.metrics.nonce_fills);
                    tracing::info!(fill = %row.id, nonce, "nonce gap filled");
                }
                Err(StoreError::Conflict { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}
