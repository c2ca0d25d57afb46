//! Operator side: reconstruct the PaymentInfo from requirements + payload and check that the
//! payload is consistent with it (before any on-chain simulation).

use alloy::primitives::aliases::{U48, U120};
use alloy::primitives::ruint::UintTryFrom;
use alloy::primitives::{Address, B256, U256};

use super::bound_salt;
use super::error::AuthCaptureError;
use super::payment_info::payment_info_to_json;
use super::permit2::{permit2_nonce, recover_permit2_signer};
use crate::PaymentInfo;
use crate::amount::{Amount, UINT48_MAX};
use crate::escrows::{EscrowDeployment, EscrowRegistry};
use crate::schemes::AUTH_CAPTURE;
use crate::signing::{self, TokenDomain};
use crate::wire::{PaymentPayload, PaymentRequirements, SchemePayload};
use x402_escrow_bindings::hash::{payer_agnostic_hash, payment_info_hash};
use x402_escrow_types::schemes::auth_capture::{
    AssetTransferMethod, AuthCaptureExtra, AuthCapturePayload, AuthCapturePermit2Payload,
    PaymentFlow, PaymentInfoJson,
};

/// An authorization must stay valid at least this many seconds after `now` (the public
/// specification's 6-second floor for clock skew and inclusion).
pub const MIN_VALIDITY_SECONDS: u64 = 6;

/// The payment an operator reconstructed from requirements + payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DerivedPayment {
    /// The escrow's PaymentInfo (payer = `authorization.from`).
    pub payment_info: PaymentInfo,
    /// The payer.
    pub payer: Address,
    /// Chain id of the network.
    pub chain_id: u64,
    /// The escrow deployment (escrow, collectors, fee argument).
    pub deployment: EscrowDeployment,
    /// How the payer authorized the transfer (ERC-3009 or Permit2).
    pub transfer_method: AssetTransferMethod,
    /// The token collector `authorize` / `charge` is called with: the deployment's ERC-3009
    /// collector or its Permit2 collector, per [`transfer_method`](Self::transfer_method).
    pub token_collector: Address,
    /// `getHash` with payer zeroed (= the ERC-3009 nonce; the Permit2 nonce as a `uint256`).
    pub payer_agnostic_hash: B256,
    /// `getHash` (the escrow's `paymentState` key).
    pub payment_info_hash: B256,
    /// `authorize` (escrow) or `charge` (authorization).
    pub flow: PaymentFlow,
    /// The client's salt nonce when the salt is bound (store it with the payment).
    pub salt_nonce: Option<B256>,
}

impl DerivedPayment {
    /// The PaymentInfo in its JSON form (for storage and lifecycle payloads).
    pub fn payment_info_json(&self) -> PaymentInfoJson {
        payment_info_to_json(&self.payment_info)
    }
}

pub(super) fn typed_extra(
    requirements: &PaymentRequirements,
) -> Result<&AuthCaptureExtra, AuthCaptureError> {
    if requirements.scheme != AUTH_CAPTURE {
        return Err(AuthCaptureError::WrongScheme(requirements.scheme.clone()));
    }
    requirements
        .auth_capture_extra()
        .ok_or(AuthCaptureError::MissingExtra)
}

pub(super) fn checked_amount(
    requirements: &PaymentRequirements,
) -> Result<Amount, AuthCaptureError> {
    requirements
        .amount
        .check_uint120()
        .map_err(|_| AuthCaptureError::AmountTooLarge(requirements.amount))
}

/// What the client and the verifier both start from: the `auth-capture` `extra` of
/// `requirements`, the escrow deployment it names (or the registry's default) and the amount
/// (which must fit `uint120`).
pub(super) fn collect_terms<'a>(
    requirements: &'a PaymentRequirements,
    registry: &'a EscrowRegistry,
) -> Result<(&'a AuthCaptureExtra, &'a EscrowDeployment, Amount), AuthCaptureError> {
    let extra = typed_extra(requirements)?;
    let deployment = registry
        .resolve(extra.auth_capture_escrow)
        .map_err(|e| AuthCaptureError::UnknownEscrow(e.0))?;
    Ok((extra, deployment, checked_amount(requirements)?))
}

/// The deployment's Permit2 collector, or [`AuthCaptureError::Permit2CollectorMissing`].
pub(super) fn permit2_collector(
    deployment: &EscrowDeployment,
) -> Result<Address, AuthCaptureError> {
    deployment
        .permit2_collector
        .ok_or(AuthCaptureError::Permit2CollectorMissing(deployment.escrow))
}

/// Checks the salt binding: `saltNonce` present exactly when bound, and opening to `salt`.
fn check_salt_binding(
    extra: &AuthCaptureExtra,
    salt: B256,
    salt_nonce: Option<B256>,
) -> Result<(), AuthCaptureError> {
    match (extra.is_salt_bound(), salt_nonce) {
        (true, None) => Err(AuthCaptureError::SaltNonceMissing),
        (false, Some(_)) => Err(AuthCaptureError::SaltNonceUnexpected),
        (true, Some(salt_nonce)) => {
            let expected = bound_salt(
                extra.receiver_authorizer_or_zero(),
                extra.policy_or_zero(),
                salt_nonce,
            );
            if expected != salt {
                return Err(AuthCaptureError::SaltBindingMismatch {
                    expected,
                    found: salt,
                });
            }
            Ok(())
        }
        (false, None) => Ok(()),
    }
}

/// The PaymentInfo per the specification: operator = captureAuthorizer, receiver = payTo,
/// token = asset, maxAmount = amount, authorizationExpiry = captureDeadline, refundExpiry =
/// refundDeadline, fee bounds, feeReceiver = feeRecipient.
pub(super) fn build_payment_info(
    requirements: &PaymentRequirements,
    extra: &AuthCaptureExtra,
    payer: Address,
    pre_approval_expiry: u64,
    salt: B256,
) -> Result<PaymentInfo, AuthCaptureError> {
    let amount = checked_amount(requirements)?;
    let u48 = |value: u64, field: &'static str| {
        U48::uint_try_from(value).map_err(|_| AuthCaptureError::TimestampOutOfRange {
            field,
            value: Amount::from(value),
        })
    };
    Ok(PaymentInfo {
        operator: extra.capture_authorizer,
        payer,
        receiver: requirements.pay_to,
        token: requirements.asset,
        maxAmount: U120::uint_try_from(amount.get())
            .map_err(|_| AuthCaptureError::AmountTooLarge(amount))?,
        preApprovalExpiry: u48(pre_approval_expiry, "preApprovalExpiry")?,
        authorizationExpiry: u48(extra.capture_deadline, "captureDeadline")?,
        refundExpiry: u48(extra.refund_deadline, "refundDeadline")?,
        minFeeBps: extra.min_fee_bps,
        maxFeeBps: extra.max_fee_bps,
        feeReceiver: extra.fee_recipient,
        salt: U256::from_be_bytes(salt.0),
    })
}

/// Reconstructs the PaymentInfo from the requirements and an ERC-3009 collect payload
/// (payer = `authorization.from`, preApprovalExpiry = `validBefore`, salt = `payload.salt`)
/// and checks, in order: scheme and extra, known escrow, transfer method (ERC-3009, else
/// [`AuthCaptureError::PayloadMethodMismatch`]), value == amount, to == the escrow's collector, validAfter == 0, validBefore fits uint48, the salt binding
/// (`saltNonce` present exactly when bound, and opening to `salt`), and nonce == the
/// payer-agnostic hash. Signature and time window are separate ([`check_signature`],
/// [`check_timing`]).
pub fn derive_payment_info(
    requirements: &PaymentRequirements,
    payload: &AuthCapturePayload,
    registry: &EscrowRegistry,
) -> Result<DerivedPayment, AuthCaptureError> {
    let (extra, deployment, amount) = collect_terms(requirements, registry)?;
    if extra.transfer_method() != AssetTransferMethod::Eip3009 {
        return Err(AuthCaptureError::PayloadMethodMismatch {
            expected: extra.transfer_method(),
            found: "authorization",
        });
    }
    let auth = &payload.authorization;
    if auth.value != amount {
        return Err(AuthCaptureError::AmountMismatch {
            expected: amount,
            found: auth.value,
        });
    }
    if auth.to != deployment.erc3009_collector {
        return Err(AuthCaptureError::CollectorMismatch {
            field: "authorization.to",
            expected: deployment.erc3009_collector,
            found: auth.to,
        });
    }
    if auth.valid_after != Amount::ZERO {
        return Err(AuthCaptureError::ValidAfterNotZero(auth.valid_after));
    }
    let pre_approval_expiry = auth
        .valid_before
        .to_u64()
        .filter(|t| *t <= UINT48_MAX)
        .ok_or(AuthCaptureError::TimestampOutOfRange {
            field: "validBefore",
            value: auth.valid_before,
        })?;
    check_salt_binding(extra, payload.salt, payload.salt_nonce)?;
    let payment_info = build_payment_info(
        requirements,
        extra,
        auth.from,
        pre_approval_expiry,
        payload.salt,
    )?;
    let chain_id = requirements.network.chain_id();
    let agnostic = payer_agnostic_hash(&payment_info, chain_id, deployment.escrow);
    if auth.nonce != agnostic {
        return Err(AuthCaptureError::NonceMismatch {
            expected: agnostic,
            found: auth.nonce,
        });
    }
    Ok(DerivedPayment {
        payment_info_hash: payment_info_hash(&payment_info, chain_id, deployment.escrow),
        payment_info,
        payer: auth.from,
        chain_id,
        deployment: deployment.clone(),
        transfer_method: AssetTransferMethod::Eip3009,
        token_collector: deployment.erc3009_collector,
        payer_agnostic_hash: agnostic,
        flow: extra.flow(),
        salt_nonce: payload.salt_nonce,
    })
}

/// Reconstructs the PaymentInfo from the requirements and a Permit2 collect payload (payer =
/// `permit2Authorization.from`, preApprovalExpiry = `deadline`, salt = `payload.salt`) and
/// checks, in order: scheme and extra, known escrow, transfer method (Permit2, else
/// [`AuthCaptureError::PayloadMethodMismatch`]), the deployment has a Permit2 collector
/// ([`AuthCaptureError::Permit2CollectorMissing`]), spender == that collector, permitted token
/// == asset, permitted amount == amount, deadline fits uint48, the salt binding, and nonce ==
/// the payer-agnostic hash as a `uint256`. Signature and time window are separate
/// ([`check_permit2_signature`], [`check_timing`]).
pub fn derive_permit2_payment_info(
    requirements: &PaymentRequirements,
    payload: &AuthCapturePermit2Payload,
    registry: &EscrowRegistry,
) -> Result<DerivedPayment, AuthCaptureError> {
    let (extra, deployment, amount) = collect_terms(requirements, registry)?;
    if extra.transfer_method() != AssetTransferMethod::Permit2 {
        return Err(AuthCaptureError::PayloadMethodMismatch {
            expected: extra.transfer_method(),
            found: "permit2Authorization",
        });
    }
    let collector = permit2_collector(deployment)?;
    let permit = &payload.permit2_authorization;
    if permit.spender != collector {
        return Err(AuthCaptureError::CollectorMismatch {
            field: "permit2Authorization.spender",
            expected: collector,
            found: permit.spender,
        });
    }
    if permit.permitted.token != requirements.asset {
        return Err(AuthCaptureError::TokenMismatch {
            expected: requirements.asset,
            found: permit.permitted.token,
        });
    }
    if permit.permitted.amount != amount {
        return Err(AuthCaptureError::AmountMismatch {
            expected: amount,
            found: permit.permitted.amount,
        });
    }
    let pre_approval_expiry = permit
        .deadline
        .to_u64()
        .filter(|t| *t <= UINT48_MAX)
        .ok_or(AuthCaptureError::TimestampOutOfRange {
            field: "permit2Authorization.deadline",
            value: permit.deadline,
        })?;
    check_salt_binding(extra, payload.salt, payload.salt_nonce)?;
    let payment_info = build_payment_info(
        requirements,
        extra,
        permit.from,
        pre_approval_expiry,
        payload.salt,
    )?;
    let chain_id = requirements.network.chain_id();
    let agnostic = payer_agnostic_hash(&payment_info, chain_id, deployment.escrow);
    if permit.nonce.get() != permit2_nonce(agnostic) {
        return Err(AuthCaptureError::NonceMismatch {
            expected: agnostic,
            found: B256::from(permit.nonce.get().to_be_bytes::<32>()),
        });
    }
    Ok(DerivedPayment {
        payment_info_hash: payment_info_hash(&payment_info, chain_id, deployment.escrow),
        payment_info,
        payer: permit.from,
        chain_id,
        deployment: deployment.clone(),
        transfer_method: AssetTransferMethod::Permit2,
        token_collector: collector,
        payer_agnostic_hash: agnostic,
        flow: extra.flow(),
        salt_nonce: payload.salt_nonce,
    })
}

/// [`derive_payment_info`] or [`derive_permit2_payment_info`] for a whole v2 PaymentPayload:
/// first checks that `accepted` is the server's `requirements` (network, i.e. chain id, first),
/// and that the payload is a collect payload.
pub fn derive_from_payment_payload(
    requirements: &PaymentRequirements,
    payment: &PaymentPayload,
    registry: &EscrowRegistry,
) -> Result<DerivedPayment, AuthCaptureError> {
    if payment.accepted.network != requirements.network {
        return Err(AuthCaptureError::NetworkMismatch {
            expected: requirements.network,
            found: payment.accepted.network,
        });
    }
    requirements.check_matches(&payment.accepted)?;
    match &payment.payload {
        SchemePayload::AuthCapture(payload) => derive_payment_info(requirements, payload, registry),
        SchemePayload::AuthCapturePermit2(payload) => {
            derive_permit2_payment_info(requirements, payload, registry)
        }
        SchemePayload::AuthCaptureLifecycle(_) => Err(AuthCaptureError::PayloadFormat(
            "a lifecycle payload is not a client payment",
        )),
        SchemePayload::Exact(_) | SchemePayload::Other(_) => Err(AuthCaptureError::PayloadFormat(
            "expected authorization (or permit2Authorization), signature and salt",
        )),
    }
}

/// What [`check_signature`] could establish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureCheck {
    /// A 65-byte ECDSA signature recovering to the payer.
    Ecdsa,
    /// A longer signature (ERC-1271 or EIP-6492 smart wallet): only the on-chain simulation of
    /// `authorize` / `charge` can check it.
    NeedsOnChainCheck,
}

/// Checks the payer's ERC-3009 `ReceiveWithAuthorization` signature (token domain from
/// `extra.name`/`extra.version`, the chain and the asset).
pub fn check_signature(
    requirements: &PaymentRequirements,
    payload: &AuthCapturePayload,
) -> Result<SignatureCheck, AuthCaptureError> {
    let extra = typed_extra(requirements)?;
    if payload.signature.len() != 65 {
        return Ok(SignatureCheck::NeedsOnChainCheck);
    }
    let domain = TokenDomain {
        name: extra.name.clone(),
        version: extra.version.clone(),
        chain_id: requirements.network.chain_id(),
        token: requirements.asset,
    };
    let recovered = signing::recover_signer(
        &domain,
        &signing::receive_with_authorization(&payload.authorization),
        &payload.signature,
    )?;
    if recovered != payload.authorization.from {
        return Err(AuthCaptureError::SignerMismatch {
            from: payload.authorization.from,
            recovered,
        });
    }
    Ok(SignatureCheck::Ecdsa)
}

/// Checks the payer's Permit2 `PermitTransferFrom` signature (Permit2's domain on the
/// requirements' chain). Like [`check_signature`], only a 65-byte ECDSA signature is checked
/// here; a payer with code (ERC-1271) or an EIP-6492 envelope is left to the on-chain
/// simulation, where Permit2 itself runs the check.
pub fn check_permit2_signature(
    requirements: &PaymentRequirements,
    payload: &AuthCapturePermit2Payload,
) -> Result<SignatureCheck, AuthCaptureError> {
    typed_extra(requirements)?;
    if payload.signature.len() != 65 {
        return Ok(SignatureCheck::NeedsOnChainCheck);
    }
    let permit = &payload.permit2_authorization;
    let recovered =
        recover_permit2_signer(requirements.network.chain_id(), permit, &payload.signature)?;
    if recovered != permit.from {
        return Err(AuthCaptureError::SignerMismatch {
            from: permit.from,
            recovered,
        });
    }
    Ok(SignatureCheck::Ecdsa)
}

/// [`check_signature`] or [`check_permit2_signature`] for a collect payload.
pub fn check_payload_signature(
    requirements: &PaymentRequirements,
    payload: &SchemePayload,
) -> Result<SignatureCheck, AuthCaptureError> {
    match payload {
        SchemePayload::AuthCapture(payload) => check_signature(requirements, payload),
        SchemePayload::AuthCapturePermit2(payload) => {
            check_permit2_signature(requirements, payload)
        }
        _ => Err(AuthCaptureError::PayloadFormat(
            "expected authorization (or permit2Authorization), signature and salt",
        )),
    }
}

/// How far a buyer's clock may run ahead of the verifier's when checking that it did not sign a
/// longer window than `maxTimeoutSeconds` offered.
pub const CLOCK_SKEW_TOLERANCE_SECONDS: u64 = 60;

/// Checks the time window at `now` (Unix seconds): `validBefore > now + 6`,
/// `captureDeadline > now + 6`, `validBefore <= captureDeadline <= refundDeadline`, and
/// `validBefore <= now + maxTimeoutSeconds + CLOCK_SKEW_TOLERANCE_SECONDS` (a client may not
/// sign a longer window than offered, allowing for clock skew).
pub fn check_timing(
    requirements: &PaymentRequirements,
    derived: &DerivedPayment,
    now: u64,
) -> Result<(), AuthCaptureError> {
    let valid_before = derived.payment_info.preApprovalExpiry.to::<u64>();
    let capture_deadline = derived.payment_info.authorizationExpiry.to::<u64>();
    let refund_deadline = derived.payment_info.refundExpiry.to::<u64>();
    let floor = now.saturating_add(MIN_VALIDITY_SECONDS);
    if valid_before <= floor {
        return Err(AuthCaptureError::AuthorizationExpired { valid_before, now });
    }
    if capture_deadline <= floor {
        return Err(AuthCaptureError::CaptureDeadlineExpired {
            capture_deadline,
            now,
        });
    }
    if valid_before > capture_deadline {
        return Err(AuthCaptureError::DeadlineOrdering(format!(
            "validBefore {valid_before} is after captureDeadline {capture_deadline}"
        )));
    }
    if capture_deadline > refund_deadline {
        return Err(AuthCaptureError::DeadlineOrdering(format!(
            "captureDeadline {capture_deadline} is after refundDeadline {refund_deadline}"
        )));
    }
    // The buyer signs with its own clock, which may run ahead of the one `now` comes from (a
    // chain's latest block lags the wall clock): allow that much skew, no more.
    let limit = now
        .saturating_add(requirements.max_timeout_seconds)
        .saturating_add(CLOCK_SKEW_TOLERANCE_SECONDS);
    if valid_before > limit {
        return Err(AuthCaptureError::DeadlineOrdering(format!(
            "validBefore {valid_before} exceeds now + maxTimeoutSeconds ({limit})"
        )));
    }
    Ok(())
}
