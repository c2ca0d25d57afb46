//! A 402 challenge as data: every offer it makes, and a signed answer to one of them.
//!
//! [`BuyerClient`](super::BuyerClient) uses these for its own requests; services that pay on
//! behalf of others (the `x402-escrow wallet`) use them directly: read the challenge
//! ([`decode_402`](crate::wire::codec::decode_402) or [`challenge_from_json`]), list its
//! offers ([`offers`]), vet them ([`check_payable`](super::select::check_payable), their own
//! rules), then [`sign_offer`] the chosen one. Nothing here reserves budget or talks HTTP.

use alloy::primitives::Address;
use alloy::signers::{Signer, SignerSync};
use serde_json::Value;

use super::error::BuyerError;
use super::ledger::SignedDetails;
use super::select::PaymentOption;
use crate::schemes::{AUTH_CAPTURE, auth_capture, exact};
use crate::wire::codec::{self, AnyPaymentRequired, PAYMENT_SIGNATURE, X_PAYMENT};
use crate::wire::{
    PaymentPayload, PaymentPayloadV1, PaymentRequired, PaymentRequiredV1, SchemePayload,
};
use crate::{DecodeError, EscrowRegistry, json::FromJson, random_b256};

/// Every offer of a challenge (`accepts`, in order), in v2 form; v1 offers keep their original.
pub fn offers(challenge: &AnyPaymentRequired) -> Vec<PaymentOption> {
    let accepts: Vec<_> = match challenge {
        AnyPaymentRequired::V2(required) => required
            .accepts
            .iter()
            .map(|requirements| (requirements.clone(), None))
            .collect(),
        AnyPaymentRequired::V1(required) => required
            .accepts
            .iter()
            .map(|v1| (v1.to_v2().0, Some(v1.clone())))
            .collect(),
    };
    accepts
        .into_iter()
        .enumerate()
        .map(|(index, (requirements, v1))| PaymentOption {
            index,
            requirements,
            v1,
        })
        .collect()
}

/// The challenge's own `error` text, when it has one.
pub fn challenge_error(challenge: &AnyPaymentRequired) -> Option<&str> {
    match challenge {
        AnyPaymentRequired::V1(c) => c.error.as_deref(),
        AnyPaymentRequired::V2(c) => c.error.as_deref(),
    }
}

/// A challenge handed over as JSON: the v2 object (`x402Version: 2`, what the
/// `PAYMENT-REQUIRED` header carries), the v1 402 body (`x402Version: 1`), or the
/// `PAYMENT-REQUIRED` header's base64 text as a JSON string.
pub fn challenge_from_json(value: &Value) -> Result<AnyPaymentRequired, DecodeError> {
    if let Value::String(header) = value {
        return codec::decode_payment_required(header.as_bytes()).map(AnyPaymentRequired::V2);
    }
    match value.get("x402Version").and_then(Value::as_u64) {
        Some(1) => PaymentRequiredV1::from_json(value, "").map(AnyPaymentRequired::V1),
        _ => PaymentRequired::from_json(value, "").map(AnyPaymentRequired::V2),
    }
}

/// A signed answer to one offer: the header to attach and what it commits to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedPayment {
    /// `PAYMENT-SIGNATURE` (v2) or `X-PAYMENT` (v1).
    pub header_name: &'static str,
    /// The header's value (base64 JSON); resend these exact bytes on every retry.
    pub header_value: String,
    /// Payment hash, escrow, validity.
    pub details: SignedDetails,
    /// The random value signed: exact, the ERC-3009 nonce; auth-capture, the salt of the
    /// payment (its hash is in `details`).
    pub random: alloy::primitives::B256,
    /// The payer (the signer's address).
    pub payer: Address,
}

/// Signs `option` of `challenge` with `signer` at `now` (Unix seconds). `payment_id` goes into
/// the `payment-identifier` extension when the (v2) challenge advertises it. Vet the option
/// first ([`check_payable`](super::select::check_payable) and your rules): this only signs.
pub fn sign_offer<S: Signer + SignerSync>(
    challenge: &AnyPaymentRequired,
    option: &PaymentOption,
    signer: &S,
    registry: &EscrowRegistry,
    now: u64,
    payment_id: &str,
) -> Result<SignedPayment, BuyerError> {
    let requirements = &option.requirements;
    let signing = |e: &dyn std::fmt::Display| BuyerError::Signing(e.to_string());
    let random = random_b256();
    let (payload, details): (SchemePayload, SignedDetails) = if requirements.scheme == AUTH_CAPTURE
    {
        // ERC-3009 or Permit2, whichever the offer's `assetTransferMethod` asks for.
        let payload =
            auth_capture::build_collect_payload(requirements, signer, now, random, registry)
                .map_err(|e| signing(&e))?;
        let derived = match &payload {
            SchemePayload::AuthCapture(p) => {
                auth_capture::derive_payment_info(requirements, p, registry)
            }
            SchemePayload::AuthCapturePermit2(p) => {
                auth_capture::derive_permit2_payment_info(requirements, p, registry)
            }
            _ => Err(auth_capture::AuthCaptureError::PayloadFormat(
                "the signer built no collect payload",
            )),
        }
        .map_err(|e| signing(&e))?;
        let details = SignedDetails {
            payment_hash: Some(derived.payment_info_hash),
            escrow: Some(derived.deployment.escrow),
            valid_before: Some(derived.payment_info.preApprovalExpiry.to::<u64>()),
            authorization_expiry: Some(derived.payment_info.authorizationExpiry.to::<u64>()),
        };
        (payload, details)
    } else {
        let payload =
            exact::build_payload(requirements, signer, now, random).map_err(|e| signing(&e))?;
        let details = SignedDetails {
            valid_before: payload.authorization.valid_before.to_u64(),
            ..SignedDetails::default()
        };
        (payload.into(), details)
    };
    let internal = |e: &dyn std::fmt::Display| BuyerError::Internal(e.to_string());
    let (header_name, header_value) = match (challenge, &option.v1) {
        (AnyPaymentRequired::V2(required), _) => {
            let id = required.payment_identifier().map(|_| payment_id);
            let payment = PaymentPayload::answering(required, requirements.clone(), payload, id);
            (
                PAYMENT_SIGNATURE,
                codec::encode_payment_signature(&payment).map_err(|e| internal(&e))?,
            )
        }
        (AnyPaymentRequired::V1(_), Some(v1)) => (
            X_PAYMENT,
            codec::encode_x_payment(&PaymentPayloadV1::new(v1, payload))
                .map_err(|e| internal(&e))?,
        ),
        (AnyPaymentRequired::V1(_), None) => {
            return Err(BuyerError::Internal(
                "v1 option without its original".to_owned(),
            ));
        }
    };
    Ok(SignedPayment {
        header_name,
        header_value,
        details,
        random,
        payer: signer.address(),
    })
}
