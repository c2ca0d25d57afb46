//! Batching at the claim step: queued single captures (voids) of the same escrow are merged into
//! one `captureBatch` (`voidBatch`) row before the relayer claims new work.
//!
//! A single `capture` / `void` row of a payment waits up to `max_wait` (from its creation) for
//! company: while it is younger, the claim step leaves it queued. A group of such rows (same kind,
//! same escrow) is *due* once it holds `max_size` rows or its oldest row has waited `max_wait`;
//! due groups are merged, `max_size` rows per batch, by [`Store::merge_batch`] (one SQL
//! transaction: batch row written, members abandoned, payments re-pointed). A group of one is
//! simply claimed as it is. The batch row is then claimed, signed and sent like any other row; its
//! outcome is fanned out to the members by the engine.
//!
//! Before merging, the batch call is simulated (`eth_call` from the signer). The escrow's batch
//! calls are all or nothing, so when the simulation reverts, each member's own call is
//! simulated and the members that would revert are left out: they are claimed at once as single
//! rows (and fail alone, with their own decoded error, at the relayer's gas estimate), while the
//! others still go out together. A batch that reverts anyway (the chain moved between simulation
//! and inclusion) is handled by the engine, which re-sends its members one by one.
//!
//! Only the signer's lease holder batches (this runs inside its pass), so merging never races a
//! claim of this instance; a row claimed by anyone else makes the merge fail and roll back.
//!
//! [`Store::merge_batch`]: crate::store::Store::merge_batch

use std::collections::BTreeMap;
use std::time::Duration;

use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, Bytes, U256};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionRequest;
use alloy::sol_types::SolCall;
use serde_json::json;
use x402_escrow_bindings::contracts::auth_capture_escrow::AuthCaptureEscrow as Escrow;

use super::revert::revert_reason_of;
use super::{Relayer, RelayerError};
use crate::config::Config;
use crate::store::{ChainTx, NewChainTx, TxKind};

/// Batching knobs (from `[batch]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOptions {
    /// The most payments per batch transaction; 1 (or 0) disables batching.
    pub max_size: usize,
    /// How long a ready capture or void waits for company.
    pub max_wait: Duration,
}

impl BatchOptions {
    /// No batching: every capture and void is claimed as soon as it is queued.
    pub const DISABLED: BatchOptions = BatchOptions {
        max_size: 1,
        max_wait: Duration::ZERO,
    };

    /// From `[batch]`.
    pub fn from_config(config: &Config) -> BatchOptions {
        BatchOptions {
            max_size: config.batch.max_size,
            max_wait: Duration::from_millis(config.batch.max_wait_ms),
        }
    }

    /// Whether rows are batched at all.
    pub fn enabled(&self) -> bool {
        self.max_size > 1
    }
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions::DISABLED
    }
}

/// How many queued rows one pass looks at for batching.
const SCAN: u32 = 2_000;

/// One member's part of a batch call.
enum Part {
    Capture(Escrow::CaptureRequest),
    Void(Escrow::PaymentInfo),
}

/// Decodes a single row's call (`capture(…)` / `void(…)`); `None` for anything else.
fn part_of(row: &ChainTx) -> Option<Part> {
    match row.kind {
        TxKind::Capture => {
            let call = Escrow::captureCall::abi_decode(&row.calldata).ok()?;
            Some(Part::Capture(Escrow::CaptureRequest {
                paymentInfo: call.paymentInfo,
                amount: call.amount,
                feeBps: call.feeBps,
                feeReceiver: call.feeReceiver,
            }))
        }
        TxKind::Void => {
            let call = Escrow::voidCall::abi_decode(&row.calldata).ok()?;
            Some(Part::Void(call.paymentInfo))
        }
        _ => None,
    }
}

/// The batch row for `rows` (all of one kind and escrow, each decodable), or `None` if any is
/// not a single capture / void call.
pub(super) fn batch_row(chain_id: u64, signer: Address, rows: &[ChainTx]) -> Option<NewChainTx> {
    let first = rows.first()?;
    let mut captures = Vec::new();
    let mut voids = Vec::new();
    let mut members = Vec::new();
    for row in rows {
        if row.kind != first.kind || row.to != first.to {
            return None;
        }
        match part_of(row)? {
            Part::Capture(c) => captures.push(c),
            Part::Void(v) => voids.push(v),
        }
        members.push(json!({
            "paymentId": row.payment_id,
            "txId": row.id,
            "request": row.request,
        }));
    }
    let (kind, call, calldata) = match first.kind {
        TxKind::Capture => (
            TxKind::CaptureBatch,
            "captureBatch",
            Escrow::captureBatchCall { requests: captures }.abi_encode(),
        ),
        TxKind::Void => (
            TxKind::VoidBatch,
            "voidBatch",
            Escrow::voidBatchCall {
                paymentInfos: voids,
            }
            .abi_encode(),
        ),
        _ => return None,
    };
    Some(NewChainTx {
        chain_id,
        signer,
        kind,
        payment_id: None,
        request: json!({ "call": call, "members": members }),
        to: first.to,
        calldata: Bytes::from(calldata),
        value: U256::ZERO,
        gas_limit: None,
    })
}

/// What a simulated call says.
enum Simulated {
    /// It would succeed.
    Ok,
    /// It would revert (the decoded reason).
    Reverts(String),
    /// The node did not answer; assume it would succeed (the gas estimate checks again).
    Unknown,
}

impl Relayer {
    /// `eth_call` of `calldata` to `to` from the signer.
    async fn simulate(&self, to: Address, calldata: &Bytes) -> Simulated {
        let request = TransactionRequest::default()
            .with_from(self.address())
            .with_to(to)
            .with_input(calldata.clone());
        match self.provider.call(request).await {
            Ok(_) => Simulated::Ok,
            Err(e) => match revert_reason_of(&e) {
                Some(reason) => Simulated::Reverts(reason),
                None => {
                    tracing::debug!(error = %e, "batch simulation failed");
                    Simulated::Unknown
                }
            },
        }
    }

    /// Splits `rows` (one would-be batch) into those that can go together and those whose own
    /// call would revert. Only when the whole batch's simulation reverts are members simulated
    /// one by one.
    async fn viable(&self, rows: &[ChainTx], batch: &NewChainTx) -> (Vec<ChainTx>, Vec<ChainTx>) {
        let Simulated::Reverts(reason) = self.simulate(batch.to, &batch.calldata).await else {
            return (rows.to_vec(), Vec::new());
        };
        tracing::info!(%reason, members = rows.len(), "batch would revert: checking its members one by one");
        let mut good = Vec::new();
        let mut bad = Vec::new();
        for row in rows {
            match self.simulate(row.to, &row.calldata).await {
                Simulated::Reverts(reason) => {
                    tracing::info!(chain_tx = %row.id, payment = ?row.payment_id, %reason, "left out of the batch: sent alone");
                    bad.push(row.clone());
                }
                Simulated::Ok | Simulated::Unknown => good.push(row.clone()),
            }
        }
        (good, bad)
    }

    /// Batching from now on (see the module docs); [`BatchOptions::DISABLED`] by default.
    pub fn with_batching(mut self, batch: BatchOptions) -> Relayer {
        self.batch = batch;
        self
    }

    /// Merges due groups of queued single captures / voids into batch rows. Returns the time
    /// (store clock, unix ms) after which created single rows are held back from the claim
    /// step (`i64::MAX`: nothing held), and notes in `self.batch_due` when the next group
    /// falls due.
    pub(super) async fn batch_queued(&mut self) -> Result<i64, RelayerError> {
        self.batch_due = None;
        if !self.batch.enabled() {
            return Ok(i64::MAX);
        }
        let now = self.store.now_ms();
        let wait_ms = i64::try_from(self.batch.max_wait.as_millis()).unwrap_or(i64::MAX);
        let hold_after = now.saturating_sub(wait_ms);
        let rows = self
            .store
            .batch_candidates(self.opts.chain_id, self.address(), SCAN)
            .await?;
        // Groups by (kind, escrow), each in creation order.
        let mut groups: BTreeMap<(&'static str, Address), Vec<ChainTx>> = BTreeMap::new();
        for row in rows {
            groups
                .entry((row.kind.as_str(), row.to))
                .or_default()
                .push(row);
        }
        for ((kind, escrow), rows) in groups {
            let oldest = rows.first().map_or(now, |r| r.created_at);
            let due = rows.len() >= self.batch.max_size || oldest <= hold_after;
            if !due {
                let at = oldest.saturating_add(wait_ms);
                self.batch_due = Some(self.batch_due.map_or(at, |d: i64| d.min(at)));
                continue;
            }
            for chunk in rows.chunks(self.batch.max_size) {
                if chunk.len() < 2 {
                    continue;
                }
                let Some(batch) = batch_row(self.opts.chain_id, self.address(), chunk) else {
                    tracing::warn!(kind, %escrow, "queued rows that do not decode as single calls: sent one by one");
                    continue;
                };
                let (good, mut alone) = self.viable(chunk, &batch).await;
                if good.len() == 1 {
                    // Its group is due; no company left: it goes now too.
                    alone.extend(good.iter().cloned());
                }
                // Members that would revert go out alone now (they fail with their own error).
                for row in alone {
                    self.check_lease().await?;
                    if let Some(row) = self
                        .store
                        .claim_tx(self.opts.chain_id, self.address(), &self.owner, row.id)
                        .await?
                    {
                        tracing::info!(chain_tx = %row.id, nonce = ?row.nonce, kind = %row.kind, "claimed (left out of a batch)");
                        self.drive_row(row).await?;
                    }
                }
                let batch = if good.len() == chunk.len() {
                    batch
                } else if good.len() >= 2 {
                    match batch_row(self.opts.chain_id, self.address(), &good) {
                        Some(b) => b,
                        None => continue,
                    }
                } else {
                    continue;
                };
                let ids: Vec<_> = good.iter().map(|r| r.id).collect();
                self.check_lease().await?;
                match self.store.merge_batch(&batch, &ids).await {
                    Ok(row) => {
                        tracing::info!(chain_tx = %row.id, kind = %row.kind, members = ids.len(), "batched");
                    }
                    // Someone acted on a member meanwhile: the next pass looks again.
                    Err(e) => tracing::warn!(error = %e, kind, "merging a batch failed"),
                }
            }
        }
        Ok(hold_after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_unless_more_than_one() {
        assert!(!BatchOptions::DISABLED.enabled());
        assert!(
            !BatchOptions {
                max_size: 1,
                max_wait: Duration::from_millis(50)
            }
            .enabled()
        );
        let mut config = Config::default();
        config.batch.max_size = 10;
        config.batch.max_wait_ms = 7;
        let b = BatchOptions::from_config(&config);
        assert!(b.enabled());
        assert_eq!(b.max_wait, Duration::from_millis(7));
    }
}
