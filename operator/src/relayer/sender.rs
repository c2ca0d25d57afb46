//! Signing, storing and broadcasting attempts.

use alloy::consensus::{SignableTransaction, Transaction, TxEip1559, TxEip7702, TxEnvelope};
use alloy::eips::eip2718::{Decodable2718, Encodable2718};
use alloy::eips::eip7702::Authorization;
use alloy::network::{TransactionBuilder, TxSignerSync};
use alloy::primitives::{Address, Bytes, TxKind as CallKind, U256};
use alloy::providers::Provider;
use alloy::rpc::json_rpc::RpcError;
use alloy::rpc::types::TransactionRequest;
use alloy::signers::SignerSync;
use alloy::sol_types::SolCall;
use alloy::transports::TransportError;
use x402_escrow_bindings::contracts::OperatorBatchExecutor as Executor;

use super::fees::{self, Fees};
use super::revert::revert_reason_of;
use super::{CrashPoint, Relayer, RelayerError, RelayerMetrics};
use crate::store::{ChainTx, NewChainTx, NewTxAttempt, TxAttempt, TxKind, TxStatus};

/// Node answers that mean the transaction may well be in the pool or mined already.
const MAYBE_SENT: &[&str] = &[
    "nonce too low",
    "already known",
    "known transaction",
    "replacement transaction underpriced",
    "same hash was already imported",
    "already imported",
    "transaction already exists",
    "timeout",
    "timed out",
];

/// How the node answered a raw transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum SendResult {
    /// Accepted into the pool.
    Accepted,
    /// Maybe sent: look receipts up before anything else.
    MaybeSent(String),
    /// Refused (not sent); retried later, replaced when stale.
    Rejected(String),
}

fn classify(err: &TransportError) -> SendResult {
    match err {
        RpcError::ErrorResp(payload) => {
            let msg = payload.message.to_lowercase();
            if MAYBE_SENT.iter().any(|s| msg.contains(s)) {
                SendResult::MaybeSent(payload.message.to_string())
            } else {
                SendResult::Rejected(payload.message.to_string())
            }
        }
        // Transport failures and unreadable answers: the node may have taken it.
        other => SendResult::MaybeSent(other.to_string()),
    }
}

/// The gas limit signed into stored raw bytes.
pub(super) fn gas_limit_of(raw: &Bytes) -> Result<u64, RelayerError> {
    let env = TxEnvelope::decode_2718(&mut raw.as_ref()).map_err(RelayerError::CorruptRawTx)?;
    Ok(env.gas_limit())
}

impl Relayer {
    /// The call a row makes, as a request from the signer (for estimates and replays).
    pub(super) fn call_request(&self, tx: &ChainTx) -> TransactionRequest {
        TransactionRequest::default()
            .with_from(self.address())
            .with_to(tx.to)
            .with_input(tx.calldata.clone())
            .with_value(tx.value)
    }

    /// The call whose gas estimate a row is sent with: the row's own call, except for an
    /// `execute`, estimated as `executeAll` of the same calls. `execute` isolates its members,
    /// so it "succeeds" even when a member runs out of gas: an estimate of it would find the gas
    /// at which members start failing quietly; `executeAll` fails instead, so its estimate is
    /// the gas at which every member goes through.
    pub(super) fn estimate_request(&self, tx: &ChainTx) -> TransactionRequest {
        let request = self.call_request(tx);
        if tx.kind != TxKind::Execute {
            return request;
        }
        match Executor::executeCall::abi_decode(&tx.calldata) {
            Ok(call) => request.with_input(Bytes::from(
                Executor::executeAllCall { calls: call.calls }.abi_encode(),
            )),
            Err(e) => {
                tracing::warn!(chain_tx = %tx.id, error = %e, "execute calldata does not decode; estimating it as is");
                request
            }
        }
    }

    /// Signs one attempt of `tx` at `nonce`: an EIP-1559 transaction, or for a `delegate` row an
    /// EIP-7702 one whose authorization points the signer's account at the executor.
    pub(super) fn sign_attempt(
        &self,
        tx: &ChainTx,
        nonce: u64,
        gas_limit: u64,
        fees: Fees,
    ) -> Result<NewTxAttempt, RelayerError> {
        let envelope = if tx.kind == TxKind::Delegate {
            self.sign_delegation(tx, nonce, gas_limit, fees)?
        } else {
            let mut unsigned = TxEip1559 {
                chain_id: self.opts.chain_id,
                nonce,
                gas_limit,
                max_fee_per_gas: fees.max_fee_per_gas,
                max_priority_fee_per_gas: fees.max_priority_fee_per_gas,
                to: CallKind::Call(tx.to),
                value: tx.value,
                access_list: Default::default(),
                input: tx.calldata.clone(),
            };
            let signature = self.signer.sign_transaction_sync(&mut unsigned)?;
            TxEnvelope::from(unsigned.into_signed(signature))
        };
        let tx_hash = *envelope.tx_hash();
        let raw: Bytes = envelope.encoded_2718().into();
        RelayerMetrics::inc(&self.metrics.signed);
        Ok(NewTxAttempt {
            tx_hash,
            raw_tx: raw,
            max_fee_per_gas: fees.max_fee_per_gas,
            max_priority_fee_per_gas: fees.max_priority_fee_per_gas,
        })
    }

    /// The EIP-7702 transaction of a `delegate` row: to the signer itself, with one
    /// authorization, signed by the signer, for the executor named in the row's request. The
    /// account's nonce is bumped by the transaction before its authorization list is processed,
    /// so the authorization carries `nonce + 1`.
    fn sign_delegation(
        &self,
        tx: &ChainTx,
        nonce: u64,
        gas_limit: u64,
        fees: Fees,
    ) -> Result<TxEnvelope, RelayerError> {
        let executor: Address = tx
            .request
            .get("executor")
            .and_then(|v| v.as_str())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| {
                RelayerError::Corrupt(format!("delegate tx {} names no executor", tx.id))
            })?;
        let authorization = Authorization {
            chain_id: U256::from(self.opts.chain_id),
            address: executor,
            nonce: nonce + 1,
        };
        let auth_signature = self
            .signer
            .sign_hash_sync(&authorization.signature_hash())?;
        let mut unsigned = TxEip7702 {
            chain_id: self.opts.chain_id,
            nonce,
            gas_limit,
            max_fee_per_gas: fees.max_fee_per_gas,
            max_priority_fee_per_gas: fees.max_priority_fee_per_gas,
            to: tx.to,
            value: tx.value,
            access_list: Default::default(),
            authorization_list: vec![authorization.into_signed(auth_signature)],
            input: tx.calldata.clone(),
        };
        let signature = self.signer.sign_transaction_sync(&mut unsigned)?;
        Ok(TxEnvelope::from(unsigned.into_signed(signature)))
    }

    /// `reserved` → `signed`: gas limit (fixed, or estimate + margin), fees, sign, store. A
    /// reverting estimate records the row as `reverted` (decoded error, never sent) and gives
    /// its nonce to a fill; then `None`.
    pub(super) async fn sign_reserved(
        &mut self,
        tx: &ChainTx,
    ) -> Result<Option<TxAttempt>, RelayerError> {
        let nonce = tx
            .nonce
            .ok_or_else(|| RelayerError::Corrupt(format!("reserved tx {} has no nonce", tx.id)))?;
        let gas_limit = match tx.gas_limit {
            Some(limit) => limit,
            None => match self.provider.estimate_gas(self.estimate_request(tx)).await {
                Ok(gas) => fees::with_margin(gas, self.opts.gas_limit_margin_percent),
                Err(e) => match revert_reason_of(&e) {
                    Some(reason) if self.earlier_unmined(nonce).await? => {
                        tracing::info!(%reason, "gas estimate reverted while earlier transactions are unmined: estimating again once they are");
                        return Ok(None);
                    }
                    Some(reason) => {
                        tracing::warn!(%reason, "gas estimate reverted: not sending");
                        self.reject(tx, &reason).await?;
                        return Ok(None);
                    }
                    None => return Err(e.into()),
                },
            },
        };
        let fees = self.suggested_fees().await?;
        let attempt = self.sign_attempt(tx, nonce, gas_limit, fees)?;
        self.check_lease().await?;
        let stored = self.store.record_attempt(tx.id, &attempt).await?;
        tracing::info!(tx_hash = %stored.tx_hash, gas_limit, max_fee = fees.max_fee_per_gas, tip = fees.max_priority_fee_per_gas, "signed");
        self.crash_point(CrashPoint::AfterRecordAttempt)?;
        Ok(Some(stored))
    }

    /// Whether a row of this signer with a nonce below `nonce` is not mined yet: an estimate
    /// that reverts now ran on a state without it, and may pass once it is mined (a refund
    /// behind the refund float's `approve`), so the row waits instead of being rejected.
    async fn earlier_unmined(&self, nonce: u64) -> Result<bool, RelayerError> {
        Ok(self
            .store
            .txs_in_flight(self.opts.chain_id, self.address())
            .await?
            .iter()
            .any(|r| {
                r.nonce.is_some_and(|n| n < nonce)
                    && matches!(
                        r.status,
                        TxStatus::Reserved | TxStatus::Signed | TxStatus::Broadcast
                    )
            }))
    }

    /// Hands a freshly signed attempt to the node: pushed (its receipt comes back through
    /// `push.rs`) when push is on, else broadcast and recorded as before.
    pub(super) async fn hand_over(
        &mut self,
        tx: &ChainTx,
        attempt: &TxAttempt,
    ) -> Result<(), RelayerError> {
        if !self.push.active() {
            return self.send_attempt(tx, attempt).await;
        }
        self.check_lease().await?;
        RelayerMetrics::inc(&self.metrics.broadcasts);
        self.push
            .spawn(self.provider.clone(), tx.id, attempt, self.notify.clone());
        tracing::info!(tx_hash = %attempt.tx_hash, "sent; the receipt is pushed");
        Ok(())
    }

    /// The node's fee suggestion for a new transaction, reused for [`super::FEE_CACHE_TTL`].
    async fn suggested_fees(&mut self) -> Result<Fees, RelayerError> {
        if let Some((at, fees)) = self.fee_cache
            && at.elapsed() < super::FEE_CACHE_TTL
        {
            return Ok(fees);
        }
        let fees = fees::suggest(&self.provider, self.opts.max_fee_per_gas).await?;
        self.fee_cache = Some((std::time::Instant::now(), fees));
        Ok(fees)
    }

    /// The zero-value self-transfer that takes over a nonce.
    pub(super) fn nonce_fill_for(&self, nonce: u64, replaces: Option<uuid::Uuid>) -> NewChainTx {
        NewChainTx {
            chain_id: self.opts.chain_id,
            signer: self.address(),
            kind: TxKind::NonceFill,
            payment_id: None,
            request: serde_json::json!({ "nonce": nonce, "replaces": replaces }),
            to: self.address(),
            calldata: Bytes::new(),
            value: U256::ZERO,
            gas_limit: Some(self.nonce_fill_gas()),
        }
    }

    /// Gas of a nonce fill: 21,000 for a plain account; once the signer delegates to the batch
    /// executor, a transfer to itself loads and runs the executor's `receive()` (a cold account
    /// access and a few opcodes), so with an executor configured it gets room for that (only the
    /// gas used is paid).
    fn nonce_fill_gas(&self) -> u64 {
        if self.batch.executor.is_some() {
            50_000
        } else {
            21_000
        }
    }

    async fn reject(&mut self, tx: &ChainTx, reason: &str) -> Result<(), RelayerError> {
        let fill = self.nonce_fill_for(tx.nonce.unwrap_or_default(), Some(tx.id));
        self.check_lease().await?;
        let (rejected, fill) = self
            .store
            .reject_with_nonce_fill(tx.id, reason, &fill)
            .await?;
        RelayerMetrics::inc(&self.metrics.nonce_fills);
        tracing::info!(fill = %fill.id, nonce = ?fill.nonce, "nonce handed to a fill");
        self.announce(&rejected);
        Ok(())
    }

    /// Hands an attempt's stored bytes to the node (while this relayer still holds the lease)
    /// and classifies the answer.
    async fn broadcast(&mut self, attempt: &TxAttempt) -> Result<SendResult, RelayerError> {
        self.check_lease().await?;
        RelayerMetrics::inc(&self.metrics.broadcasts);
        Ok(
            match self.provider.send_raw_transaction(&attempt.raw_tx).await {
                Ok(_) => SendResult::Accepted,
                Err(e) => classify(&e),
            },
        )
    }

    /// Hands stored bytes to the node and records what happened. Maybe-sent answers look up
    /// receipts of every hash of the nonce before anything else.
    pub(super) async fn send_attempt(
        &mut self,
        tx: &ChainTx,
        attempt: &TxAttempt,
    ) -> Result<(), RelayerError> {
        match self.broadcast(attempt).await? {
            SendResult::Accepted => {
                self.store.mark_broadcast(tx.id, attempt.tx_hash).await?;
                tracing::info!(tx_hash = %attempt.tx_hash, "broadcast");
                self.crash_point(CrashPoint::AfterBroadcast)?;
            }
            SendResult::MaybeSent(msg) => self.maybe_sent(tx, attempt, &msg).await?,
            SendResult::Rejected(msg) => {
                tracing::warn!(tx_hash = %attempt.tx_hash, answer = %msg, "node refused the transaction; will retry or replace");
            }
        }
        Ok(())
    }

    /// A "maybe sent" answer: receipts of every hash of the nonce first, else `broadcast`.
    async fn maybe_sent(
        &mut self,
        tx: &ChainTx,
        attempt: &TxAttempt,
        msg: &str,
    ) -> Result<(), RelayerError> {
        tracing::info!(chain_tx = %tx.id, tx_hash = %attempt.tx_hash, answer = %msg, "maybe sent: checking receipts");
        let attempts = self.store.attempts_for(tx.id).await?;
        if let Some(receipt) = self.find_receipt(&attempts).await? {
            self.record_receipt(tx, &receipt).await?;
        } else {
            self.store.mark_broadcast(tx.id, attempt.tx_hash).await?;
        }
        Ok(())
    }

    /// The new-work path for a group of rows just claimed together (consecutive nonces, in
    /// nonce order): their gas estimates run concurrently, all are signed, all attempts are
    /// stored in one write (before any is broadcast), then they are handed to the node in nonce
    /// order without waiting for one another, and the accepted ones are recorded as broadcast
    /// in one write. Per row the steps (and crash points) come in the same order as one at a
    /// time. A reverting estimate rejects its row (its nonce goes to a fill, sent later in the
    /// pass) only when no earlier row of the group is being sent (the estimate saw the state
    /// the row will run on); otherwise that row and the later ones stay `reserved` and are
    /// estimated again one at a time later in the pass (they may depend on the earlier ones).
    /// An estimate that failed otherwise leaves that row and the later ones `reserved` for the
    /// next pass, and the pass reports the error after sending the earlier ones.
    pub(super) async fn send_new(&mut self, rows: &[ChainTx]) -> Result<(), RelayerError> {
        let mut estimates = self.estimate_all(rows).await?;
        let mut signed: Vec<(ChainTx, NewTxAttempt, u64)> = Vec::with_capacity(rows.len());
        let mut failure: Option<TransportError> = None;
        let mut fees: Option<Fees> = None;
        for (row, estimate) in rows.iter().zip(estimates.iter_mut()) {
            let nonce = row.nonce.ok_or_else(|| {
                RelayerError::Corrupt(format!("reserved tx {} has no nonce", row.id))
            })?;
            let gas_limit = match (row.gas_limit, estimate.take()) {
                (Some(limit), _) => limit,
                (None, Some(Ok(gas))) => fees::with_margin(gas, self.opts.gas_limit_margin_percent),
                (None, Some(Err(e))) => match revert_reason_of(&e) {
                    // Estimated before the group's earlier rows were mined: it may depend on
                    // them. This row and the later ones stay `reserved`, and the pass's
                    // `reserved` step estimates them again one by one once those are sent.
                    Some(_) if !signed.is_empty() => break,
                    // The same when an earlier group is still unmined (its receipts are being
                    // pushed, or a block time separates them from this estimate).
                    Some(_) if self.earlier_unmined(nonce).await? => break,
                    Some(reason) => {
                        tracing::warn!(chain_tx = %row.id, %reason, "gas estimate reverted: not sending");
                        self.reject(row, &reason).await?;
                        continue;
                    }
                    None => {
                        failure = Some(e);
                        break;
                    }
                },
                (None, None) => {
                    return Err(RelayerError::Corrupt(format!(
                        "no gas estimate for tx {}",
                        row.id
                    )));
                }
            };
            let fees = match fees {
                Some(fees) => fees,
                None => {
                    let suggested = self.suggested_fees().await?;
                    fees = Some(suggested);
                    suggested
                }
            };
            let attempt = self.sign_attempt(row, nonce, gas_limit, fees)?;
            signed.push((row.clone(), attempt, gas_limit));
        }
        if !signed.is_empty() {
            self.check_lease().await?;
            let new: Vec<(uuid::Uuid, NewTxAttempt)> = signed
                .iter()
                .map(|(row, a, _)| (row.id, a.clone()))
                .collect();
            let stored = self.store.record_attempts(&new).await?;
            for ((row, _, gas_limit), attempt) in signed.iter().zip(&stored) {
                tracing::info!(chain_tx = %row.id, payment = ?row.payment_id, nonce = ?row.nonce, tx_hash = %attempt.tx_hash, gas_limit, max_fee = attempt.max_fee_per_gas, tip = attempt.max_priority_fee_per_gas, "signed");
            }
            self.crash_point(CrashPoint::AfterRecordAttempt)?;
            if self.push.active() {
                // Each in its own task, in nonce order; the receipts come back through the
                // push channel (a node queues a nonce that arrives before its predecessor).
                for ((row, _, _), attempt) in signed.iter().zip(&stored) {
                    self.hand_over(row, attempt).await?;
                }
                return match failure {
                    Some(e) => Err(e.into()),
                    None => Ok(()),
                };
            }
            let mut accepted = Vec::with_capacity(stored.len());
            let mut maybe = Vec::new();
            for ((row, _, _), attempt) in signed.iter().zip(&stored) {
                match self.broadcast(attempt).await? {
                    SendResult::Accepted => accepted.push((row.id, attempt.tx_hash)),
                    SendResult::MaybeSent(msg) => maybe.push((row, attempt, msg)),
                    SendResult::Rejected(msg) => {
                        tracing::warn!(chain_tx = %row.id, tx_hash = %attempt.tx_hash, answer = %msg, "node refused the transaction; will retry or replace");
                    }
                }
            }
            if !accepted.is_empty() {
                self.store.mark_broadcasts(&accepted).await?;
                for (id, tx_hash) in &accepted {
                    tracing::info!(chain_tx = %id, %tx_hash, "broadcast");
                }
                self.crash_point(CrashPoint::AfterBroadcast)?;
            }
            for (row, attempt, msg) in maybe {
                self.maybe_sent(row, attempt, &msg).await?;
            }
        }
        match failure {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    /// `eth_estimateGas` for every row without a fixed gas limit, concurrently; `None` for the
    /// others.
    async fn estimate_all(
        &self,
        rows: &[ChainTx],
    ) -> Result<Vec<Option<Result<u64, TransportError>>>, RelayerError> {
        let mut out: Vec<Option<Result<u64, TransportError>>> = rows.iter().map(|_| None).collect();
        let mut set = tokio::task::JoinSet::new();
        for (i, row) in rows.iter().enumerate() {
            if row.gas_limit.is_none() {
                let provider = self.provider.clone();
                let request = self.estimate_request(row);
                set.spawn(async move { (i, provider.estimate_gas(request).await) });
            }
        }
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok((i, result)) => {
                    if let Some(slot) = out.get_mut(i) {
                        *slot = Some(result);
                    }
                }
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(e) => {
                    return Err(RelayerError::EstimateTask(e));
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use alloy::rpc::json_rpc::ErrorPayload;

    use super::*;

    fn resp(msg: &str) -> TransportError {
        RpcError::ErrorResp(ErrorPayload {
            code: -32000,
            message: msg.to_owned().into(),
            data: None,
        })
    }

    #[test]
    fn maybe_sent_answers_are_not_failures() {
        for m in [
            "nonce too low",
            "already known",
            "replacement transaction underpriced",
            "Transaction with the same hash was already imported.",
        ] {
            assert!(
                matches!(classify(&resp(m)), SendResult::MaybeSent(_)),
                "{m}"
            );
        }
        assert!(matches!(
            classify(&resp("insufficient funds for gas * price + value")),
            SendResult::Rejected(_)
        ));
    }
}
