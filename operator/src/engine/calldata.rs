//! Calldata: every contract call the engine writes to the outbox, encoded in one place (the
//! escrow's `authorize`, `charge`, `capture`, `void` and `refund`; the token's `approve` and
//! ERC-3009 `transferWithAuthorization`), and the fee a capture is sent with.

use alloy::primitives::{Address, Bytes, U256};
use alloy::sol_types::SolCall;
use x402_escrow_bindings::PaymentInfo;
use x402_escrow_bindings::contracts::auth_capture_escrow::AuthCaptureEscrow as Escrow;
use x402_escrow_bindings::{IERC20, IERC3009};
use x402_escrow_sdk::schemes::exact::ExactPayload;
use x402_escrow_sdk::signing::authorization_fields;

use super::EngineConfig;
use crate::lifecycle::Amount;

/// `authorize(paymentInfo, amount, tokenCollector, collectorData)`.
pub(super) fn authorize(
    info: &PaymentInfo,
    amount: Amount,
    token_collector: Address,
    collector_data: Bytes,
) -> Vec<u8> {
    Escrow::authorizeCall {
        paymentInfo: info.clone(),
        amount: U256::from(amount),
        tokenCollector: token_collector,
        collectorData: collector_data,
    }
    .abi_encode()
}

/// `charge(paymentInfo, amount, tokenCollector, collectorData, feeBps, feeReceiver)`.
pub(super) fn charge(
    info: &PaymentInfo,
    amount: Amount,
    token_collector: Address,
    collector_data: Bytes,
    (fee_bps, fee_receiver): (u16, Address),
) -> Vec<u8> {
    Escrow::chargeCall {
        paymentInfo: info.clone(),
        amount: U256::from(amount),
        tokenCollector: token_collector,
        collectorData: collector_data,
        feeBps: fee_bps,
        feeReceiver: fee_receiver,
    }
    .abi_encode()
}

/// `capture(paymentInfo, amount, feeBps, feeReceiver)`.
pub(super) fn capture(
    info: PaymentInfo,
    amount: Amount,
    (fee_bps, fee_receiver): (u16, Address),
) -> Vec<u8> {
    Escrow::captureCall {
        paymentInfo: info,
        amount: U256::from(amount),
        feeBps: fee_bps,
        feeReceiver: fee_receiver,
    }
    .abi_encode()
}

/// `void(paymentInfo)`.
pub(super) fn void(info: PaymentInfo) -> Vec<u8> {
    Escrow::voidCall { paymentInfo: info }.abi_encode()
}

/// `refund(paymentInfo, amount, tokenCollector, "")`.
pub(super) fn refund(info: PaymentInfo, amount: U256, token_collector: Address) -> Vec<u8> {
    Escrow::refundCall {
        paymentInfo: info,
        amount,
        tokenCollector: token_collector,
        collectorData: Bytes::new(),
    }
    .abi_encode()
}

/// The token's `approve(spender, amount)`.
pub(super) fn approve(spender: Address, amount: U256) -> Vec<u8> {
    IERC20::approveCall {
        spender,
        value: amount,
    }
    .abi_encode()
}

/// The token's ERC-3009 `transferWithAuthorization(from, to, value, validAfter, validBefore,
/// nonce, signature)` of an `exact` payload.
pub(super) fn transfer_with_authorization(payload: &ExactPayload) -> Vec<u8> {
    let (from, to, value, valid_after, valid_before, nonce) =
        authorization_fields(&payload.authorization);
    let signature = payload.signature.clone();
    let args = (from, to, value, valid_after, valid_before, nonce, signature);
    IERC3009::transferWithAuthorization_0Call::from(args).abi_encode()
}

/// The fee a capture is sent with: our `fee_bps` clamped into the payment's
/// `[minFeeBps, maxFeeBps]`, to the payment's `feeReceiver` unless it is zero, else ours.
pub(super) fn capture_fee(config: &EngineConfig, info: &PaymentInfo) -> (u16, Address) {
    let fee_bps = config
        .fee_bps
        .clamp(info.minFeeBps, info.maxFeeBps.max(info.minFeeBps));
    let fee_receiver = if info.feeReceiver != Address::ZERO {
        info.feeReceiver
    } else {
        config.fee_receiver
    };
    (fee_bps, fee_receiver)
}
