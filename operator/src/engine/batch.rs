//! Outcomes of batch transactions (`capture_batch`, `void_batch`, `execute`), fanned out to their
//! members.
//!
//! A batch row carries several payments (`chain_tx_members`); each member payment points at it
//! (`pending_tx_id`) until its outcome is applied. The outcome of the batch is applied to every
//! member still pointing at it, in one SQL transaction:
//!
//! * `final`: each member's `*Confirmed` event (the amount its own single row asked for) and
//!   webhook, exactly as for a single transaction; in an `execute`, a member whose own call
//!   reverted (the executor's `CallFailed(index, revertData)` in the receipt) gets its `*Failed`
//!   event with the decoded error instead, as if it had been sent alone;
//! * `reverted` (mined with a failed receipt, or refused by the gas estimate): the escrow's batch
//!   calls are all or nothing (and an `execute` that reverts as a whole, e.g. out of gas, undid
//!   every member), so nothing happened on chain; every member is re-sent on its own
//!   (same calldata as its single row; never batched again), so one bad member, say an expired
//!   authorization, fails alone with its own error code while the others go through;
//! * `abandoned`: each member judged by `paymentState`, as a single abandoned row is.
//!
//! An `execute` may also carry `exact` transfers (`transfer` rows, which have no payment). A
//! transfer member's outcome is written back on its own row: `final`, or `reverted` with its
//! revert data (the row keeps no hash of its own: its `/settle` answer names the batch's); one
//! that has to go again
//! (the batch reverted, or its call ran out of gas) is queued again as itself, never batched
//! again. The `/settle` waiting on that row (`facilitator/exact.rs`) is woken either way. In an
//! abandoned batch it stays abandoned, as a single abandoned transfer does.
//!
//! Idempotent: only members whose payment still points at the batch (a transfer: whose row is
//! still merged, without an outcome) are touched, and each transition or re-send moves the
//! pointer in the same SQL transaction.

use std::collections::BTreeMap;

use alloy::primitives::Bytes;
use alloy::providers::Provider;
use serde_json::json;
use x402_escrow_bindings::contracts::OperatorBatchExecutor as Executor;

use super::{
    Engine, EngineError, OutcomeApplied, confirmed, failed, from_chain_state, revert_code,
    webhook_for,
};
use crate::lifecycle::PaymentEvent;
use crate::store::{
    BatchMember, ChainTx, NewChainTx, Payment, StoreError, TransitionExtras, TxKind, TxStatus,
};

/// A member whose payment still waits for the batch, with its single row.
struct Live {
    member: BatchMember,
    payment: Payment,
    source: ChainTx,
}

/// A `transfer` member whose row still waits for the batch (merged, no outcome written).
struct Transfer {
    member: BatchMember,
    source: ChainTx,
}

impl Transfer {
    /// `source`, merged into the batch as `member`, still waits for its outcome.
    fn waiting(member: BatchMember, source: ChainTx) -> Option<Transfer> {
        (source.kind == TxKind::Transfer
            && source.status == TxStatus::Abandoned
            && member.fallback_tx_id.is_none())
        .then_some(Transfer { member, source })
    }
}

impl Engine {
    /// Applies a settled batch row's outcome to its members (see the module docs).
    pub(super) async fn apply_batch_outcome(
        &self,
        tx: &ChainTx,
    ) -> Result<OutcomeApplied, EngineError> {
        let mut live = Vec::new();
        let mut transfers = Vec::new();
        for (member, payment, source) in self.store().batch_members_with_rows(tx.id).await? {
            match payment {
                Some(payment) if payment.pending_tx_id == Some(tx.id) => live.push(Live {
                    member,
                    payment,
                    source,
                }),
                Some(_) => {}
                None => transfers.extend(Transfer::waiting(member, source)),
            }
        }
        let succeeded = tx.status == TxStatus::Final && tx.succeeded != Some(false);
        let reverted = matches!(tx.status, TxStatus::Final | TxStatus::Reverted) && !succeeded;
        if !(succeeded || reverted) {
            // Abandoned: a transfer stays as a single abandoned one would (see the module docs).
            transfers.clear();
        }
        if live.is_empty() && transfers.is_empty() {
            tracing::debug!("stale batch outcome (no member waits for it)");
            return Ok(OutcomeApplied::Ignored);
        }
        if reverted {
            return self.resend_members(tx, &live, &transfers).await;
        }
        // An `execute` that went through may still carry members whose own call reverted.
        let failed_members = if succeeded && tx.kind == TxKind::Execute {
            self.failed_members(tx).await?
        } else {
            BTreeMap::new()
        };
        // A member that reverted without revert data most likely ran out of gas (the batch is
        // signed with the gas limit of a simulation that may have run while the previous
        // transaction was in flight, see `relayer/batch.rs`): it goes out again alone, where its
        // own estimate decides, rather than failing for a reason of ours. (A bare `revert()`
        // fails there with its own code.)
        let (out_of_gas, live): (Vec<Live>, Vec<Live>) = live.into_iter().partition(|l| {
            failed_members
                .get(&l.member.position)
                .is_some_and(|data| data.is_empty())
        });
        // Events first (abandoned rows need `paymentState` reads), then one SQL transaction.
        let mut events = Vec::with_capacity(live.len());
        for l in &live {
            let (event, message) = if let Some(data) = failed_members.get(&l.member.position) {
                let code = revert_code(Some(&format!("0x{}", hex::encode(data))));
                let message = format!("{} reverted in execute {}: {code}", l.source.kind, tx.id);
                (failed(l.source.kind, code), Some(message))
            } else if succeeded {
                (confirmed(&l.source, &l.payment), None)
            } else {
                let state = self.chain_state(&l.payment).await?;
                let event = from_chain_state(&l.source, &l.payment, &state);
                let msg = event
                    .as_ref()
                    .and_then(PaymentEvent::error_code)
                    .map(|_| format!("{} abandoned; chain state {state:?}", tx.kind));
                (event, msg)
            };
            events.push((event, message));
        }
        let mut stx = self.store().begin().await?;
        for l in &out_of_gas {
            tracing::warn!(payment_id = %l.payment.id, position = l.member.position, "batch member reverted without revert data (out of gas?): re-sending it alone");
            if let Err(e) = resend_alone(&mut stx, tx, l).await {
                stx.rollback().await?;
                return Err(e);
            }
        }
        let mut last = None;
        for (l, (event, message)) in live.iter().zip(&events) {
            // Members are single `capture` / `void` rows, which always carry an outcome.
            let Some(event) = event else { continue };
            let result = stx
                .transition_from(
                    &l.payment,
                    event,
                    TransitionExtras {
                        outbox: None,
                        webhook: webhook_for(event, &l.payment, Some(tx)),
                        error_message: message.clone(),
                    },
                )
                .await;
            match result {
                Ok(t) => {
                    tracing::info!(
                        payment_id = %l.payment.id,
                        payment_hash = %l.payment.payment_hash,
                        request_id = l.payment.request_id.as_deref().unwrap_or(""),
                        status = %t.payment.status,
                        event = event.name(),
                        "batch member outcome applied"
                    );
                    last = Some(t.payment.status);
                }
                // Checked before any write: the other members still settle. (A single row's
                // outcome that the lifecycle refuses is an error the same way.)
                Err(StoreError::IllegalTransition(e)) => {
                    tracing::error!(payment_id = %l.payment.id, error = %e, "batch member outcome refused");
                }
                Err(e) => {
                    stx.rollback().await?;
                    return Err(e.into());
                }
            }
        }
        let settled_transfers =
            match settle_transfers(&mut stx, tx, &transfers, &failed_members).await {
                Ok(done) => done,
                Err(e) => {
                    stx.rollback().await?;
                    return Err(e);
                }
            };
        stx.commit().await?;
        for l in &live {
            self.inner.waiters.wake(l.payment.id);
        }
        for t in &transfers {
            self.inner.waiters.wake(t.source.id);
        }
        if !out_of_gas.is_empty() || settled_transfers.resent > 0 {
            self.inner.relayer.notify_one();
        }
        tracing::info!(members = live.len(), transfers = settled_transfers.settled, resent = out_of_gas.len() + settled_transfers.resent, status = %tx.status, last = ?last, "batch outcome applied");
        Ok(OutcomeApplied::Batch {
            settled: live.len() + settled_transfers.settled,
            resent: out_of_gas.len() + settled_transfers.resent,
        })
    }

    /// The members of a mined `execute` whose own call reverted, by position, with their revert
    /// data: the executor's `CallFailed(index, revertData)` logs in the receipt (emitted from the
    /// signer's account, which runs the executor's code).
    async fn failed_members(&self, tx: &ChainTx) -> Result<BTreeMap<u64, Bytes>, EngineError> {
        let Some(hash) = tx.mined_tx_hash else {
            return Err(EngineError::Chain(format!(
                "execute {} is settled without a mined transaction hash",
                tx.id
            )));
        };
        let receipt = self
            .inner
            .provider
            .get_transaction_receipt(hash)
            .await
            .map_err(|e| EngineError::Chain(format!("receipt of execute {hash}: {e}")))?
            .ok_or_else(|| EngineError::Chain(format!("no receipt for execute {hash}")))?;
        let mut failed = BTreeMap::new();
        for log in receipt.inner.logs() {
            if log.address() != tx.signer {
                continue;
            }
            if let Ok(event) = log.log_decode::<Executor::CallFailed>() {
                let index = u64::try_from(event.inner.data.index).unwrap_or(u64::MAX);
                failed.insert(index, event.inner.data.revertData.clone());
            }
        }
        Ok(failed)
    }

    /// A failed batch: every live member (transfers included) goes out again on its own, in one
    /// SQL transaction.
    async fn resend_members(
        &self,
        tx: &ChainTx,
        live: &[Live],
        transfers: &[Transfer],
    ) -> Result<OutcomeApplied, EngineError> {
        let code = revert_code(tx.revert_reason.as_deref());
        tracing::warn!(%code, members = live.len() + transfers.len(), kind = %tx.kind, "batch reverted: re-sending its members one by one");
        let mut stx = self.store().begin().await?;
        for l in live {
            if let Err(e) = resend_alone(&mut stx, tx, l).await {
                stx.rollback().await?;
                return Err(e);
            }
        }
        let mut resent = live.len();
        for t in transfers {
            match stx
                .requeue_transfer_member(tx.id, t.member.position, t.source.id)
                .await
            {
                Ok(queued) => resent += usize::from(queued),
                Err(e) => {
                    stx.rollback().await?;
                    return Err(e.into());
                }
            }
        }
        stx.commit().await?;
        for t in transfers {
            self.inner.waiters.wake(t.source.id);
        }
        self.inner.relayer.notify_one();
        Ok(OutcomeApplied::Batch { settled: 0, resent })
    }
}

/// What [`settle_transfers`] did.
#[derive(Debug, Default)]
struct TransfersSettled {
    /// Transfers whose outcome was written on their row.
    settled: usize,
    /// Transfers queued again alone.
    resent: usize,
}

/// Writes the outcome of each `transfer` member of the mined `execute` `tx` back on its row, or
/// queues it again alone when its call ran out of gas (reverted without revert data), in `stx`.
async fn settle_transfers(
    stx: &mut crate::store::StoreTx,
    tx: &ChainTx,
    transfers: &[Transfer],
    failed_members: &BTreeMap<u64, Bytes>,
) -> Result<TransfersSettled, EngineError> {
    let mut done = TransfersSettled::default();
    for t in transfers {
        match failed_members.get(&t.member.position) {
            Some(data) if data.is_empty() => {
                tracing::warn!(chain_tx = %t.source.id, position = t.member.position, "batched transfer reverted without revert data (out of gas?): re-sending it alone");
                let queued = stx
                    .requeue_transfer_member(tx.id, t.member.position, t.source.id)
                    .await?;
                done.resent += usize::from(queued);
            }
            failure => {
                let failure = failure.map(|data| format!("0x{}", hex::encode(data)));
                let settled = stx
                    .settle_transfer_member(t.source.id, failure.as_deref())
                    .await?;
                done.settled += usize::from(settled);
            }
        }
    }
    Ok(done)
}

/// Queues `l`'s own call again as a single row (never batched again: it is the fallback of
/// `batch`) and points its payment at it, in `stx`.
async fn resend_alone(
    stx: &mut crate::store::StoreTx,
    batch: &ChainTx,
    l: &Live,
) -> Result<(), EngineError> {
    let mut request = l.source.request.clone();
    if let Some(obj) = request.as_object_mut() {
        obj.insert("fallbackOf".into(), json!(batch.id));
    }
    let single = NewChainTx {
        chain_id: l.source.chain_id,
        signer: l.source.signer,
        kind: l.source.kind,
        payment_id: Some(l.payment.id),
        request,
        to: l.source.to,
        calldata: l.source.calldata.clone(),
        value: l.source.value,
        gas_limit: None,
    };
    tracing::info!(
        payment_id = %l.payment.id,
        payment_hash = %l.payment.payment_hash,
        request_id = l.payment.request_id.as_deref().unwrap_or(""),
        "re-sending a batch member alone"
    );
    stx.resend_member(batch.id, l.member.position, l.payment.id, &single)
        .await
        .map_err(|e| match e {
            // Raced with another applier: retried (and then found stale).
            StoreError::Conflict { .. } => EngineError::Store(StoreError::VersionMismatch {
                id: l.payment.id,
                expected: l.payment.version,
                actual: None,
            }),
            other => other.into(),
        })
        .map(drop)
}
