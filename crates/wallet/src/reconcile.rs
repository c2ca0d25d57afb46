//! Reading the chain so the budget counts only what the merchant kept.
//!
//! For auth-capture payments the escrow's `paymentState(hash)` gives
//! `(hasCollectedPayment, capturableAmount, refundableAmount)`: `capturable` is still held,
//! `refundable` was captured and not refunded, the rest came back to the payer
//! (`returned = amount - capturable - refundable`, the SDK's [`EscrowState`] reading):
//!
//! | chain | ledger |
//! |---|---|
//! | not collected, signature expired (`validBefore` ≤ chain time) | `expired` (released) |
//! | not collected, signature valid | unchanged |
//! | collected, capturable > 0, nothing returned | `authorized` |
//! | collected, capturable = 0, nothing returned | `captured` |
//! | collected, all returned, never captured | `voided` |
//! | collected, part or all returned after a capture | `refunded` (`returned`) |
//!
//! An `exact` payment still `signed` is looked up with the token's
//! `authorizationState(payer, nonce)`: used → `captured`; unused and expired → `expired`.
//! Runs once at start-up (a crash may have left signed payments behind) and then every
//! `reconcile_interval`.

use alloy::eips::BlockNumberOrTag;
use alloy::primitives::U256;
use alloy::providers::Provider;
use x402_escrow_bindings::{AuthCaptureEscrow, IERC3009};
use x402_escrow_sdk::Amount;
use x402_escrow_sdk::buyer::EscrowState;
use x402_escrow_sdk::schemes::{AUTH_CAPTURE, EXACT};

use crate::error::WalletError;
use crate::keys::audit_entry;
use crate::service::Wallet;
use crate::store::{PaymentRow, State, now_ms};

/// What one pass changed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReconcileReport {
    /// Payments read from the chain.
    pub checked: usize,
    /// (payment id, from, to).
    pub changes: Vec<(String, State, State)>,
}

/// The ledger state an auth-capture payment should have, given its escrow state at chain time
/// `chain_now`; `None` when nothing changes.
pub fn state_from_escrow(
    row: &PaymentRow,
    state: EscrowState,
    chain_now: u64,
) -> Option<(State, Amount)> {
    if !state.collected {
        let expired = row
            .valid_before
            .and_then(|v| u64::try_from(v).ok())
            .is_some_and(|v| chain_now >= v);
        return (row.state == State::Signed && expired).then_some((State::Expired, row.amount));
    }
    let held = state
        .capturable
        .get()
        .saturating_add(state.refundable.get());
    let returned = Amount::new(row.amount.get().saturating_sub(held));
    let captured_before = matches!(row.state, State::Captured | State::Refunded);
    let next = if returned == Amount::ZERO {
        if state.capturable > Amount::ZERO {
            State::Authorized
        } else {
            State::Captured
        }
    } else if returned >= row.amount && !captured_before {
        State::Voided
    } else {
        State::Refunded
    };
    (next != row.state || returned != row.returned).then_some((next, returned))
}

/// One pass over the payments whose money may still move.
pub async fn reconcile_once(wallet: &Wallet) -> Result<ReconcileReport, WalletError> {
    let Some(provider) = wallet.chain() else {
        return Ok(ReconcileReport::default());
    };
    let rpc = |e: &dyn std::fmt::Display| WalletError::Internal(format!("RPC: {e}"));
    let chain_id = provider.get_chain_id().await.map_err(|e| rpc(&e))?;
    let chain_now = provider
        .get_block_by_number(BlockNumberOrTag::Latest)
        .await
        .map_err(|e| rpc(&e))?
        .map(|b| b.header.timestamp)
        .ok_or_else(|| WalletError::Internal("RPC: no latest block".to_owned()))?;
    let rows = wallet
        .store()
        .payments_in(&[
            State::Signed,
            State::Authorized,
            State::Captured,
            State::Refunded,
        ])
        .await?;
    let mut report = ReconcileReport::default();
    for row in rows {
        if row.network.map(|n| n.chain_id()) != Some(chain_id) {
            continue;
        }
        let next = match (row.scheme.as_deref(), row.payment_hash, row.escrow) {
            (Some(AUTH_CAPTURE), Some(hash), Some(escrow)) => {
                let s = AuthCaptureEscrow::new(escrow, provider)
                    .paymentState(hash)
                    .call()
                    .await
                    .map_err(|e| rpc(&e))?;
                report.checked += 1;
                state_from_escrow(
                    &row,
                    EscrowState {
                        collected: s.hasCollectedPayment,
                        capturable: Amount::new(s.capturableAmount.to::<U256>()),
                        refundable: Amount::new(s.refundableAmount.to::<U256>()),
                    },
                    chain_now,
                )
            }
            (Some(EXACT), _, _) if row.state == State::Signed => {
                let (Some(asset), Some(payer), Some(nonce)) = (row.asset, row.payer, row.random)
                else {
                    continue;
                };
                let used = IERC3009::new(asset, provider)
                    .authorizationState(payer, nonce)
                    .call()
                    .await
                    .map_err(|e| rpc(&e))?;
                report.checked += 1;
                let expired = row
                    .valid_before
                    .and_then(|v| u64::try_from(v).ok())
                    .is_some_and(|v| chain_now >= v);
                if used {
                    Some((State::Captured, Amount::ZERO))
                } else if expired {
                    Some((State::Expired, row.amount))
                } else {
                    None
                }
            }
            _ => None,
        };
        let Some((state, returned)) = next else {
            continue;
        };
        let mut changed = row.clone();
        changed.state = state;
        changed.returned = returned;
        changed.updated_at = now_ms();
        let mut tx = wallet.store().begin().await?;
        if tx.update_payment(&changed, row.state).await? {
            tx.audit(&audit_entry(
                "wallet",
                Some(&row.key_id),
                Some(&row.id),
                "reconciled",
                None,
                format!(
                    "{} → {} (returned {returned}) from the chain",
                    row.state.as_str(),
                    state.as_str()
                ),
            ))
            .await?;
            tx.commit().await?;
            wallet.metrics().reconciled(state);
            tracing::info!(payment_id = %row.id, from = row.state.as_str(), to = state.as_str(), "reconciled");
            report.changes.push((row.id, row.state, state));
        } else {
            tx.rollback().await?;
        }
    }
    Ok(report)
}

/// Reconciles at start-up and then every `reconcile_interval`, until the task is dropped.
pub async fn reconcile_loop(wallet: Wallet) {
    let interval = wallet.config().reconcile_interval;
    loop {
        if let Err(error) = reconcile_once(&wallet).await {
            tracing::warn!(%error, "reconcile pass failed");
        }
        tokio::time::sleep(interval).await;
    }
}

#[cfg(test)]
mod tests {
    use alloy::primitives::B256;

    use super::*;

    fn row(state: State, returned: u64) -> PaymentRow {
        PaymentRow {
            id: "p".into(),
            key_id: "k".into(),
            idempotency_key: "i".into(),
            request_hash: "h".into(),
            url: "http://127.0.0.1/x".into(),
            method: "GET".into(),
            scheme: Some(AUTH_CAPTURE.into()),
            network: None,
            asset: None,
            payee: None,
            amount: Amount::from(100u64),
            returned: Amount::from(returned),
            state,
            rule: None,
            detail: None,
            header_name: None,
            header_value: None,
            payment_hash: Some(B256::ZERO),
            escrow: None,
            random: None,
            payer: None,
            valid_before: Some(1_000),
            receipt: None,
            tx_hash: None,
            http_status: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn escrow(collected: bool, capturable: u64, refundable: u64) -> EscrowState {
        EscrowState {
            collected,
            capturable: Amount::from(capturable),
            refundable: Amount::from(refundable),
        }
    }

    #[test]
    fn money_that_comes_back_returns_to_the_budget() {
        let a = |n: u64| Amount::from(n);
        // Never collected: kept while the signature is valid, released after.
        assert_eq!(
            state_from_escrow(&row(State::Signed, 0), escrow(false, 0, 0), 999),
            None
        );
        assert_eq!(
            state_from_escrow(&row(State::Signed, 0), escrow(false, 0, 0), 1_000),
            Some((State::Expired, a(100)))
        );
        // Held, captured, voided, refunded (partly, then wholly).
        assert_eq!(
            state_from_escrow(&row(State::Signed, 0), escrow(true, 100, 0), 0),
            Some((State::Authorized, a(0)))
        );
        assert_eq!(
            state_from_escrow(&row(State::Authorized, 0), escrow(true, 0, 100), 0),
            Some((State::Captured, a(0)))
        );
        assert_eq!(
            state_from_escrow(&row(State::Captured, 0), escrow(true, 0, 100), 0),
            None
        );
        assert_eq!(
            state_from_escrow(&row(State::Authorized, 0), escrow(true, 0, 0), 0),
            Some((State::Voided, a(100)))
        );
        assert_eq!(
            state_from_escrow(&row(State::Captured, 0), escrow(true, 0, 60), 0),
            Some((State::Refunded, a(40)))
        );
        assert_eq!(
            state_from_escrow(&row(State::Refunded, 40), escrow(true, 0, 0), 0),
            Some((State::Refunded, a(100)))
        );
        let refunded = row(State::Refunded, 40);
        assert_eq!(refunded.counted(), a(60), "a refund counts what was kept");
        assert_eq!(row(State::Voided, 100).counted(), a(0));
    }
}
