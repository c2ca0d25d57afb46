//! Calldata: every contract call the engine writes to the outbox, encoded in one place (the
//! escrow's `authorize`, `charge`, `capture`, `void` and `refund`; the token's `approve` and
//! ERC-3009 `transferWithAuthorization`), and the fee a capture or charge is sent with.
//!
//! `capture` and `charge` are encoded for the escrow's interface version ([`CallFee::argument`]):
//! v1.0 takes `uint16 feeBps`, v1.1 `uint256 feeAmount` (our rate applied to the amount, rounded
//! down as the escrow rounds its bounds: [`fee_amount`]). Every other call is the same in both.

use alloy::primitives::{Address, Bytes, U256};
use alloy::sol_types::SolCall;
use serde_json::{Value, json};
use x402_escrow_bindings::PaymentInfo;
use x402_escrow_bindings::contracts::auth_capture_escrow::AuthCaptureEscrow as Escrow;
use x402_escrow_bindings::{IAuthCaptureEscrowV1_1 as EscrowV1_1, IERC20, IERC3009};
use x402_escrow_sdk::escrows::{FeeArgument, fee_amount};
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

/// The fee of one capture or charge: our rate, where the fee goes, and how the escrow takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CallFee {
    /// Our rate in basis points (within the payment's `[minFeeBps, maxFeeBps]`).
    pub bps: u16,
    /// The fee receiver passed to the escrow.
    pub receiver: Address,
    /// `feeBps` (v1.0) or `feeAmount` (v1.1).
    pub argument: FeeArgument,
}

impl CallFee {
    /// The fee in token units this call takes from `amount` (what the escrow pays out).
    pub fn amount_of(&self, amount: Amount) -> Amount {
        fee_amount(amount, self.bps)
    }

    /// The fee fields of the outbox row's request JSON: `feeBps` and `feeReceiver`, plus
    /// `feeAmount` (a decimal string) for a v1.1 escrow.
    pub fn json(&self, amount: Amount) -> Value {
        match self.argument {
            FeeArgument::Bps => json!({"feeBps": self.bps, "feeReceiver": self.receiver}),
            FeeArgument::Amount => json!({
                "feeBps": self.bps,
                "feeAmount": self.amount_of(amount).to_string(),
                "feeReceiver": self.receiver,
            }),
        }
    }
}

/// `request` (an object) with the fee fields of `fee` for `amount` added.
pub(super) fn with_fee(mut request: Value, fee: &CallFee, amount: Amount) -> Value {
    if let (Some(obj), Value::Object(fields)) = (request.as_object_mut(), fee.json(amount)) {
        obj.extend(fields);
    }
    request
}

/// `charge(paymentInfo, amount, tokenCollector, collectorData, feeBps | feeAmount, feeReceiver)`.
pub(super) fn charge(
    info: &PaymentInfo,
    amount: Amount,
    token_collector: Address,
    collector_data: Bytes,
    fee: &CallFee,
) -> Vec<u8> {
    match fee.argument {
        FeeArgument::Bps => Escrow::chargeCall {
            paymentInfo: info.clone(),
            amount: U256::from(amount),
            tokenCollector: token_collector,
            collectorData: collector_data,
            feeBps: fee.bps,
            feeReceiver: fee.receiver,
        }
        .abi_encode(),
        FeeArgument::Amount => EscrowV1_1::chargeCall {
            paymentInfo: info.clone().into(),
            amount: U256::from(amount),
            tokenCollector: token_collector,
            collectorData: collector_data,
            feeAmount: U256::from(fee.amount_of(amount)),
            feeReceiver: fee.receiver,
        }
        .abi_encode(),
    }
}

/// `capture(paymentInfo, amount, feeBps | feeAmount, feeReceiver)`.
pub(super) fn capture(info: PaymentInfo, amount: Amount, fee: &CallFee) -> Vec<u8> {
    match fee.argument {
        FeeArgument::Bps => Escrow::captureCall {
            paymentInfo: info,
            amount: U256::from(amount),
            feeBps: fee.bps,
            feeReceiver: fee.receiver,
        }
        .abi_encode(),
        FeeArgument::Amount => EscrowV1_1::captureCall {
            paymentInfo: info.into(),
            amount: U256::from(amount),
            feeAmount: U256::from(fee.amount_of(amount)),
            feeReceiver: fee.receiver,
        }
        .abi_encode(),
    }
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
/// `[minFeeBps, maxFeeBps]`, to the payment's `feeReceiver` unless it is zero, else ours, passed
/// as the escrow's interface takes it (`argument`).
pub(crate) fn capture_fee(
    config: &EngineConfig,
    info: &PaymentInfo,
    argument: FeeArgument,
) -> CallFee {
    let bps = config
        .fee_bps
        .clamp(info.minFeeBps, info.maxFeeBps.max(info.minFeeBps));
    let receiver = if info.feeReceiver != Address::ZERO {
        info.feeReceiver
    } else {
        config.fee_receiver
    };
    CallFee {
        bps,
        receiver,
        argument,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> PaymentInfo {
        PaymentInfo {
            minFeeBps: 50,
            maxFeeBps: 300,
            feeReceiver: Address::repeat_byte(9),
            ..Default::default()
        }
    }

    #[test]
    fn capture_is_encoded_for_the_escrow_version() {
        let fee = |argument| CallFee {
            bps: 100,
            receiver: Address::repeat_byte(9),
            argument,
        };
        let v1_0 = capture(info(), 199, &fee(FeeArgument::Bps));
        let call = Escrow::captureCall::abi_decode(&v1_0).expect("a v1.0 capture");
        assert_eq!((call.feeBps, call.amount), (100, U256::from(199)));

        let v1_1 = capture(info(), 199, &fee(FeeArgument::Amount));
        assert!(Escrow::captureCall::abi_decode(&v1_1).is_err());
        let call = EscrowV1_1::captureCall::abi_decode(&v1_1).expect("a v1.1 capture");
        // 1 % of 199 is 1.99: rounded down, as the escrow's bounds are.
        assert_eq!(
            (call.feeAmount, call.amount),
            (U256::from(1), U256::from(199))
        );

        let charge_v1_1 = charge(
            &info(),
            10_000,
            Address::ZERO,
            Bytes::new(),
            &fee(FeeArgument::Amount),
        );
        let call = EscrowV1_1::chargeCall::abi_decode(&charge_v1_1).expect("a v1.1 charge");
        assert_eq!(call.feeAmount, U256::from(100));
        assert_eq!(
            with_fee(json!({"call": "capture"}), &fee(FeeArgument::Amount), 199),
            json!({"call": "capture", "feeBps": 100, "feeAmount": "1", "feeReceiver": Address::repeat_byte(9)})
        );
    }
}
