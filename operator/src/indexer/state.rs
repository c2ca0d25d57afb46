//! A payment's state on chain: `paymentState` / `getPaymentStates` reads on the escrow.

use alloy::primitives::{Address, B256};
use alloy::providers::DynProvider;
use x402_escrow_bindings::AuthCaptureEscrow;

use super::IndexerError;
use crate::lifecycle::Amount;

/// A payment's state on chain (`AuthCaptureEscrow.paymentState`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OnChainPaymentState {
    /// True once the payment was authorized or charged (never reset).
    pub has_collected_payment: bool,
    /// Held and still capturable.
    pub capturable: Amount,
    /// Captured and not yet refunded.
    pub refundable: Amount,
}

/// `paymentState(hash)` on the escrow, at the latest block.
pub async fn read_payment_state(
    provider: &DynProvider,
    escrow: Address,
    payment_hash: B256,
) -> Result<OnChainPaymentState, IndexerError> {
    let s = AuthCaptureEscrow::new(escrow, provider)
        .paymentState(payment_hash)
        .call()
        .await?;
    Ok(OnChainPaymentState {
        has_collected_payment: s.hasCollectedPayment,
        capturable: s.capturableAmount.to::<u128>(),
        refundable: s.refundableAmount.to::<u128>(),
    })
}

/// `getPaymentStates(hashes)` on the escrow, in chunks of 256, answers in the order asked. An
/// escrow without that view (it is our addition: the canonical Commerce Payments escrows do not
/// have it, and revert) is read one `paymentState` at a time instead.
pub async fn read_payment_states(
    provider: &DynProvider,
    escrow: Address,
    payment_hashes: &[B256],
) -> Result<Vec<OnChainPaymentState>, IndexerError> {
    let contract = AuthCaptureEscrow::new(escrow, provider);
    let mut out = Vec::with_capacity(payment_hashes.len());
    for chunk in payment_hashes.chunks(256) {
        let states = match contract.getPaymentStates(chunk.to_vec()).call().await {
            Ok(states) => states,
            // The node answered: the call reverted (no such function). Anything else (the
            // transport) is a real failure.
            Err(alloy::contract::Error::TransportError(e)) if e.is_error_resp() => {
                for hash in chunk {
                    out.push(read_payment_state(provider, escrow, *hash).await?);
                }
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        out.extend(states.into_iter().map(|s| OnChainPaymentState {
            has_collected_payment: s.hasCollectedPayment,
            capturable: s.capturableAmount.to::<u128>(),
            refundable: s.refundableAmount.to::<u128>(),
        }));
    }
    Ok(out)
}
