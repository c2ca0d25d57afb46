//! Conversions between the escrow's `PaymentInfo` and its JSON form.

use alloy::primitives::aliases::{U48, U120};
use alloy::primitives::ruint::UintTryFrom;
use alloy::primitives::{B256, U256};

use crate::PaymentInfo;
use crate::amount::Amount;
use x402_escrow_types::schemes::auth_capture::PaymentInfoJson;

/// A JSON PaymentInfo value that does not fit the escrow's field types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("paymentInfo.{0} does not fit its Solidity type")]
pub struct PaymentInfoError(pub &'static str);

/// The escrow struct of a JSON PaymentInfo (range-checked: uint120 amount, uint48 expiries).
pub fn payment_info_from_json(json: &PaymentInfoJson) -> Result<PaymentInfo, PaymentInfoError> {
    let u48 = |v: u64, field| U48::uint_try_from(v).map_err(|_| PaymentInfoError(field));
    Ok(PaymentInfo {
        operator: json.operator,
        payer: json.payer,
        receiver: json.receiver,
        token: json.token,
        maxAmount: U120::uint_try_from(json.max_amount.get())
            .map_err(|_| PaymentInfoError("maxAmount"))?,
        preApprovalExpiry: u48(json.pre_approval_expiry, "preApprovalExpiry")?,
        authorizationExpiry: u48(json.authorization_expiry, "authorizationExpiry")?,
        refundExpiry: u48(json.refund_expiry, "refundExpiry")?,
        minFeeBps: json.min_fee_bps,
        maxFeeBps: json.max_fee_bps,
        feeReceiver: json.fee_receiver,
        salt: U256::from_be_bytes(json.salt.0),
    })
}

/// The JSON form of an escrow PaymentInfo.
pub fn payment_info_to_json(info: &PaymentInfo) -> PaymentInfoJson {
    PaymentInfoJson {
        operator: info.operator,
        payer: info.payer,
        receiver: info.receiver,
        token: info.token,
        max_amount: Amount::new(info.maxAmount.to::<U256>()),
        pre_approval_expiry: info.preApprovalExpiry.to::<u64>(),
        authorization_expiry: info.authorizationExpiry.to::<u64>(),
        refund_expiry: info.refundExpiry.to::<u64>(),
        min_fee_bps: info.minFeeBps,
        max_fee_bps: info.maxFeeBps,
        fee_receiver: info.feeReceiver,
        salt: B256::from(info.salt.to_be_bytes::<32>()),
    }
}
