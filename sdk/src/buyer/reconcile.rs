//! Reconciling the ledger with the escrow: the chain says how much of each auth-capture
//! payment is still held or kept by the merchant, so the budget can count only that.
//!
//! For a payment of `amount`, the escrow's `paymentState(hash)` gives
//! `(hasCollectedPayment, capturableAmount, refundableAmount)`: `capturable` is still held,
//! `refundable` was captured (the merchant's, fee included) and not refunded; everything else
//! came back to the payer: `returned = amount - capturable - refundable`.
//!
//! | chain | ledger status |
//! |---|---|
//! | not collected, signature expired (`validBefore` ≤ chain time) | failed |
//! | not collected, signature still valid | unchanged |
//! | collected, returned = 0 | paid |
//! | collected, 0 < returned < amount | refunded(returned) |
//! | collected, returned = amount | voided (refunded(amount) if it was refunded, reclaimed if it was reclaimed) |
//!
//! A void and a payer's reclaim look the same in `paymentState`; both return the whole amount,
//! so the budget is right either way. Voided and reclaimed records are final and not re-read.
//! Exact-scheme payments have no escrow state and are left alone.

use alloy::eips::BlockNumberOrTag;
use alloy::primitives::U256;
use alloy::providers::Provider;
use tracing::Instrument as _;
use x402_escrow_bindings::AuthCaptureEscrow;

use super::client::unix_now;
use super::ledger::{LedgerError, LedgerRecord, PaymentStatus, SpendLedger};
use crate::amount::Amount;
use crate::schemes::AUTH_CAPTURE;

/// Reservations never signed are released after this long (a process died in between).
pub const UNSIGNED_GRACE_SECS: u64 = 600;

/// The escrow's `paymentState` of one payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EscrowState {
    /// `hasCollectedPayment`.
    pub collected: bool,
    /// `capturableAmount`: still held.
    pub capturable: Amount,
    /// `refundableAmount`: captured and not refunded.
    pub refundable: Amount,
}

/// The status `record` should have given the escrow's `state` at chain time `chain_now`;
/// `None` when nothing changes (see the module's table).
pub fn status_from_chain(
    record: &LedgerRecord,
    state: EscrowState,
    chain_now: u64,
) -> Option<PaymentStatus> {
    if matches!(
        record.status,
        PaymentStatus::Voided | PaymentStatus::Reclaimed
    ) {
        return None;
    }
    let new = if !state.collected {
        match record.valid_before {
            Some(valid_before) if chain_now >= valid_before => PaymentStatus::Failed,
            _ => return None,
        }
    } else {
        let held = state
            .capturable
            .get()
            .saturating_add(state.refundable.get());
        let returned = Amount::new(record.amount.get().saturating_sub(held));
        if returned == Amount::ZERO {
            PaymentStatus::Paid
        } else if returned >= record.amount {
            match record.status {
                PaymentStatus::Refunded { .. } => PaymentStatus::Refunded {
                    amount: record.amount,
                },
                _ => PaymentStatus::Voided,
            }
        } else {
            PaymentStatus::Refunded { amount: returned }
        }
    };
    (new != record.status || record.void_expected).then_some(new)
}

/// One status change made by [`reconcile`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileChange {
    /// The payment id.
    pub id: String,
    /// The status before.
    pub from: PaymentStatus,
    /// The status after.
    pub to: PaymentStatus,
}

/// What [`reconcile`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReconcileReport {
    /// The provider's chain id.
    pub chain_id: u64,
    /// Records read from the escrow.
    pub checked: usize,
    /// Status changes.
    pub changes: Vec<ReconcileChange>,
    /// Reservations released because they were never signed.
    pub released_unsigned: Vec<String>,
}

/// Why [`reconcile`] stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReconcileError {
    /// An RPC call failed.
    #[error("RPC failed: {0}")]
    Rpc(String),
    /// The ledger failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// A blocking task failed.
    #[error("internal error: {0}")]
    Internal(String),
}

async fn blocking<R: Send + 'static>(
    ledger: &SpendLedger,
    op: impl FnOnce(&SpendLedger) -> Result<R, LedgerError> + Send + 'static,
) -> Result<R, ReconcileError> {
    let ledger = ledger.clone();
    tokio::task::spawn_blocking(move || op(&ledger))
        .await
        .map_err(|e| ReconcileError::Internal(e.to_string()))?
        .map_err(ReconcileError::from)
}

/// Reads `paymentState` for every auth-capture record on the provider's chain (that is not
/// final) and updates the ledger, so that voided, reclaimed and refunded money counts as
/// returned. Also releases reservations that were never signed (older than
/// [`UNSIGNED_GRACE_SECS`]).
pub async fn reconcile<P: Provider>(
    ledger: &SpendLedger,
    provider: &P,
) -> Result<ReconcileReport, ReconcileError> {
    let span = tracing::info_span!("reconcile", ledger = %ledger.path().display());
    reconcile_inner(ledger, provider).instrument(span).await
}

async fn reconcile_inner<P: Provider>(
    ledger: &SpendLedger,
    provider: &P,
) -> Result<ReconcileReport, ReconcileError> {
    let rpc = |e: &dyn std::fmt::Display| ReconcileError::Rpc(e.to_string());
    let chain_id = provider.get_chain_id().await.map_err(|e| rpc(&e))?;
    let chain_now = provider
        .get_block_by_number(BlockNumberOrTag::Latest)
        .await
        .map_err(|e| rpc(&e))?
        .map(|block| block.header.timestamp)
        .ok_or_else(|| ReconcileError::Rpc("no latest block".to_owned()))?;

    let mut report = ReconcileReport {
        chain_id,
        released_unsigned: blocking(ledger, |l| {
            l.release_unsigned(UNSIGNED_GRACE_SECS, unix_now())
        })
        .await?,
        ..ReconcileReport::default()
    };
    let records = blocking(ledger, SpendLedger::records).await?;
    for record in records {
        let (Some(hash), Some(escrow)) = (record.payment_hash, record.escrow) else {
            continue;
        };
        if record.scheme != AUTH_CAPTURE
            || record.network.chain_id() != chain_id
            || matches!(
                record.status,
                PaymentStatus::Voided | PaymentStatus::Reclaimed
            )
        {
            continue;
        }
        let state = AuthCaptureEscrow::new(escrow, provider)
            .paymentState(hash)
            .call()
            .await
            .map_err(|e| rpc(&e))?;
        report.checked += 1;
        let state = EscrowState {
            collected: state.hasCollectedPayment,
            capturable: Amount::new(state.capturableAmount.to::<U256>()),
            refundable: Amount::new(state.refundableAmount.to::<U256>()),
        };
        let Some(to) = status_from_chain(&record, state, chain_now) else {
            continue;
        };
        let id = record.id.clone();
        blocking(ledger, move |l| l.set_status(&id, to, unix_now())).await?;
        tracing::info!(chain_id, id = %record.id, from = record.status.name(), to = to.name(), "reconciled");
        report.changes.push(ReconcileChange {
            id: record.id,
            from: record.status,
            to,
        });
    }
    Ok(report)
}
