//! The `delegated` operator of `auth-capture` v1.1: who may ask this facilitator for what, and
//! the receiver authorizer's consent to each relayed call.
//!
//! - Admission ([`Engine::admit_operator`]): `operatorType` absent or `"delegated"` (no contract
//!   operator is admitted: `/supported` lists `operators: []`), `policy` zero, and
//!   `captureAuthorizer` one of the addresses we submit from.
//! - Lifecycle payloads ([`Engine::admit_lifecycle`]) are relayed only with a non-zero
//!   `receiverAuthorizer`, for the operator they name, with the salt opening to `saltNonce` and
//!   every `paymentInfo` field what the requirements dictate.
//! - Consent ([`Engine::check_consent`]): the `authorizerSignature` over the exact call we will
//!   make recovers to `receiverAuthorizer` (ECDSA), or the authorizer contract accepts it
//!   (ERC-1271 `isValidSignature`; ERC-6492 for one not deployed yet, prepared in the same
//!   `eth_call`). A payment whose `receiverAuthorizer` is the one we advertise
//!   ([`Engine::delegated_authorizer`]) has delegated consent to us: the request carries no
//!   signature and is authenticated by the merchant's API key, which every `/settle` requires.

use alloy::primitives::U256;
use alloy::primitives::{Address, B256, Bytes, FixedBytes};
use alloy::providers::Provider;
use alloy::sol_types::{SolCall, SolValue};
use x402_escrow_sdk::escrows::FeeArgument;
use x402_escrow_sdk::facilitator::{VerifyRequest, reasons};
use x402_escrow_sdk::schemes::auth_capture::{
    AmountAndFee, AuthCaptureExtra, AuthorizerMessage, LifecycleOperation, LifecyclePayload,
    PaymentFlow, SubmittedFee, authorizer_domain, bound_salt, derive_from_payment_payload,
    recover_authorizer,
};
use x402_escrow_sdk::wire::{PaymentRequirements, SchemePayload};

use crate::engine::Engine;

alloy::sol! {
    /// Multicall3's `tryAggregate` (the public singleton's and our dev chains' own).
    #[sol(rpc)]
    interface Multicall3 {
        /// One call.
        struct Call {
            address target;
            bytes callData;
        }
        /// One call's outcome.
        struct Result {
            bool success;
            bytes returnData;
        }
        /// Runs `calls` in order; with `requireSuccess` any failure reverts them all.
        function tryAggregate(bool requireSuccess, Call[] calls) external payable returns (Result[] returnData);
    }

    /// ERC-1271: a contract's answer to "is this its signature of `hash`".
    #[sol(rpc)]
    interface IERC1271 {
        /// `0x1626ba7e` when valid.
        function isValidSignature(bytes32 hash, bytes signature) external view returns (bytes4);
    }
}

/// ERC-1271's "valid" answer (`isValidSignature.selector`).
const ERC1271_MAGIC: FixedBytes<4> = FixedBytes([0x16, 0x26, 0xba, 0x7e]);

/// The suffix of an ERC-6492 signature envelope.
const ERC6492_MAGIC: [u8; 32] = [
    0x64, 0x92, 0x64, 0x92, 0x64, 0x92, 0x64, 0x92, 0x64, 0x92, 0x64, 0x92, 0x64, 0x92, 0x64, 0x92,
    0x64, 0x92, 0x64, 0x92, 0x64, 0x92, 0x64, 0x92, 0x64, 0x92, 0x64, 0x92, 0x64, 0x92, 0x64, 0x92,
];

/// The gas an ERC-6492 check (preparation + `isValidSignature`) may use in its `eth_call`.
pub const ERC6492_CALL_GAS: u64 = 2_000_000;

/// `(factory, factoryCalldata, signature)` of an ERC-6492 envelope, if `signature` is one.
fn erc6492_envelope(signature: &Bytes) -> Option<(Address, Bytes, Bytes)> {
    let body = signature.strip_suffix(&ERC6492_MAGIC[..])?;
    <(Address, Bytes, Bytes)>::abi_decode_params(body).ok()
}

/// A refusal: the x402 reason and a message for the merchant.
pub(super) type Refusal = (&'static str, String);

impl Engine {
    /// The receiver authorizer this facilitator stands in for (`/supported`
    /// `extra.receiverAuthorizer`): a merchant whose payments name it delegates consent to
    /// requests authenticated with its API key.
    pub(super) fn delegated_authorizer(&self) -> Address {
        self.inner.config.signer
    }

    /// The operator checks of a collect payload (`authorize` / `charge`), in the spec's order:
    /// `operatorType`, `policy`, then `captureAuthorizer` among our submitters.
    pub(super) fn admit_operator(&self, extra: &AuthCaptureExtra) -> Result<(), Refusal> {
        match extra.operator_type() {
            None | Some("delegated") => {}
            Some("custom") => {
                return Err((
                    reasons::AUTH_CAPTURE_OPERATOR_NOT_ADMITTED,
                    format!(
                        "no contract operator is admitted here (/supported lists operators: []); \
                         captureAuthorizer {} is not one",
                        extra.capture_authorizer
                    ),
                ));
            }
            Some(other) => {
                return Err((
                    reasons::AUTH_CAPTURE_UNSUPPORTED_OPERATOR_TYPE,
                    format!("operatorType {other:?} is not implemented here (\"delegated\")"),
                ));
            }
        }
        let policy = extra.policy_or_zero();
        if !policy.is_zero() {
            return Err((
                reasons::AUTH_CAPTURE_POLICY,
                format!("a delegated operator takes no policy contract (policy {policy})"),
            ));
        }
        let ours = self.inner.verifier.config().operators();
        if !ours.contains(&extra.capture_authorizer) {
            return Err((
                reasons::AUTH_CAPTURE_OPERATOR_NOT_ADMITTED,
                format!(
                    "captureAuthorizer {} is not an address this facilitator submits from ({})",
                    extra.capture_authorizer,
                    list(&ours)
                ),
            ));
        }
        Ok(())
    }

    /// The checks of a collect payload at `/settle`: [`Engine::admit_operator`], and for a
    /// relayed `charge` (flow `authorization`) a non-zero `receiverAuthorizer`, the completed
    /// form (`amount`, the fee field of the escrow's version, `feeReceiver`) with the values
    /// this operator charges with, and the authorizer's consent to exactly that charge.
    pub(super) async fn admit_collect(&self, request: &VerifyRequest) -> Result<(), Refusal> {
        let requirements = &request.payment_requirements;
        let Some(extra) = requirements.auth_capture_extra() else {
            // The engine's verification names what is wrong with the requirements.
            return Ok(());
        };
        self.admit_operator(extra)?;
        if extra.flow() != PaymentFlow::Authorization {
            return Ok(());
        }
        let authorizer = extra.receiver_authorizer_or_zero();
        if authorizer.is_zero() {
            return Err((
                reasons::AUTH_CAPTURE_MISSING_RECEIVER_AUTHORIZER,
                "a relayed charge needs a receiverAuthorizer (ours is in /supported)".into(),
            ));
        }
        let derived = derive_from_payment_payload(
            requirements,
            &request.payment_payload,
            &self.inner.verifier.config().registry,
        )
        .map_err(|e| (e.reason(), e.to_string()))?;
        let (completion, client_signature, signature) = match &request.payment_payload.payload {
            SchemePayload::AuthCapture(p) => {
                (&p.charge, &p.signature, p.authorizer_signature.as_ref())
            }
            SchemePayload::AuthCapturePermit2(p) => {
                (&p.charge, &p.signature, p.authorizer_signature.as_ref())
            }
            _ => {
                return Err((
                    reasons::AUTH_CAPTURE_PAYLOAD_FORMAT,
                    "not an auth-capture collect payload".into(),
                ));
            }
        };
        let fee = crate::engine::calldata::capture_fee(
            &self.inner.config,
            &derived.payment_info,
            derived.deployment.fee_argument,
        );
        let (amount, submitted) = completed_charge(completion, requirements.amount.get(), &fee)?;
        let message = AuthorizerMessage::Charge {
            amount,
            token_collector: derived.token_collector,
            collector_data: client_signature.clone(),
            fee: submitted,
            fee_receiver: fee.receiver,
        };
        self.check_consent(
            extra,
            derived.payment_info_hash,
            &message,
            signature,
            reasons::AUTH_CAPTURE_AUTHORIZER_SIGNATURE,
        )
        .await
    }

    /// The checks of a lifecycle payload that need no chain and no stored payment: the operator
    /// relays lifecycle calls, the payload is the operation the flow allows, and its
    /// `paymentInfo` is the one the requirements and the salt binding dictate.
    pub(super) fn admit_lifecycle(
        &self,
        requirements: &PaymentRequirements,
        lifecycle: &LifecyclePayload,
    ) -> Result<(), Refusal> {
        let Some(extra) = requirements.auth_capture_extra() else {
            return Err((
                reasons::AUTH_CAPTURE_EXTRA,
                "the requirements carry no auth-capture extra".into(),
            ));
        };
        let not_relayed = |why: String| Err((reasons::AUTH_CAPTURE_LIFECYCLE_NOT_RELAYED, why));
        if extra.operator_type() == Some("custom") {
            return not_relayed("a custom operator's lifecycle runs out of band".into());
        }
        if extra.receiver_authorizer_or_zero().is_zero() {
            return not_relayed(
                "a delegated operator without receiverAuthorizer is authorize-only: capture, \
                 void and refund it through the operator's own API"
                    .into(),
            );
        }
        self.admit_operator(extra)?;
        if extra.flow() == PaymentFlow::Authorization
            && lifecycle.operation != LifecycleOperation::Refund
        {
            return Err((
                reasons::AUTH_CAPTURE_PAYLOAD_TYPE,
                "paymentFlow \"authorization\" charges at once: there is no hold to capture or \
                 void, only refunds"
                    .into(),
            ));
        }
        let info = &lifecycle.payment_info;
        if info.operator != extra.capture_authorizer {
            return Err((
                reasons::AUTH_CAPTURE_OPERATOR_MISMATCH,
                format!(
                    "paymentInfo.operator {} is not captureAuthorizer {}",
                    info.operator, extra.capture_authorizer
                ),
            ));
        }
        let Some(salt_nonce) = lifecycle.salt_nonce else {
            return Err((
                reasons::AUTH_CAPTURE_PAYLOAD_FORMAT,
                "a lifecycle payload carries saltNonce (its salt is bound)".into(),
            ));
        };
        if bound_salt(
            extra.receiver_authorizer_or_zero(),
            extra.policy_or_zero(),
            salt_nonce,
        ) != info.salt
        {
            return Err((
                reasons::AUTH_CAPTURE_SALT_BINDING_MISMATCH,
                "paymentInfo.salt is not the binding of receiverAuthorizer, policy and saltNonce"
                    .into(),
            ));
        }
        requirements_match(requirements, extra, lifecycle)?;
        let needs_expected = matches!(
            lifecycle.operation,
            LifecycleOperation::Capture | LifecycleOperation::Refund
        );
        if needs_expected
            && (lifecycle.expected_capturable_amount.is_none()
                || lifecycle.expected_refundable_amount.is_none())
        {
            return Err((
                reasons::AUTH_CAPTURE_PAYLOAD_FORMAT,
                "capture and refund carry expectedCapturableAmount and expectedRefundableAmount"
                    .into(),
            ));
        }
        Ok(())
    }

    /// The receiver authorizer's consent to `message` on the payment `payment_hash`:
    /// `signature` by `extra.receiverAuthorizer`, or none when consent is delegated to us.
    /// `reason` names a refusal (`authorizer_signature`, or the void's own reason).
    pub(super) async fn check_consent(
        &self,
        extra: &AuthCaptureExtra,
        payment_hash: B256,
        message: &AuthorizerMessage,
        signature: Option<&Bytes>,
        reason: &'static str,
    ) -> Result<(), Refusal> {
        let authorizer = extra.receiver_authorizer_or_zero();
        let Some(signature) = signature else {
            if authorizer == self.delegated_authorizer() {
                return Ok(());
            }
            return Err((
                reason,
                format!(
                    "the request carries no signature by receiverAuthorizer {authorizer} (only \
                     payments naming ours, {}, may omit it)",
                    self.delegated_authorizer()
                ),
            ));
        };
        let domain = authorizer_domain(self.inner.config.chain_id, extra.capture_authorizer);
        let digest = message.signing_hash(&domain, payment_hash);
        if recover_authorizer(digest, signature).is_ok_and(|signer| signer == authorizer) {
            return Ok(());
        }
        match self.erc1271_accepts(authorizer, digest, signature).await {
            Ok(true) => Ok(()),
            Ok(false) => Err((
                reason,
                format!("the signature is not receiverAuthorizer {authorizer}'s"),
            )),
            Err(e) => Err((
                reasons::UNEXPECTED_SETTLE_ERROR,
                format!("cannot ask receiverAuthorizer {authorizer} (ERC-1271): {e}"),
            )),
        }
    }

    /// Whether the contract at `authorizer` accepts `signature` of `digest` (ERC-1271); `false`
    /// for an account without code or a contract that reverts or answers anything else. An
    /// ERC-6492 envelope (`abi.encode(factory, factoryCalldata, signature) ‖ magic`) of an
    /// authorizer not deployed yet is checked by running the preparation and the
    /// `isValidSignature` together in one `eth_call` of Multicall3's `tryAggregate` (nothing is
    /// sent, so the preparation costs no gas; the call is capped at [`ERC6492_CALL_GAS`]).
    async fn erc1271_accepts(
        &self,
        authorizer: Address,
        digest: B256,
        signature: &Bytes,
    ) -> Result<bool, alloy::transports::TransportError> {
        let provider = &self.inner.provider;
        let deployed = !provider.get_code_at(authorizer).await?.is_empty();
        let envelope = erc6492_envelope(signature);
        let inner = envelope.as_ref().map_or(signature, |(_, _, inner)| inner);
        if deployed {
            let answer = IERC1271::new(authorizer, provider)
                .isValidSignature(digest, inner.clone())
                .call()
                .await;
            return Ok(answer.is_ok_and(|magic| magic == ERC1271_MAGIC));
        }
        let Some((factory, prepare, inner)) = envelope else {
            return Ok(false);
        };
        let check = IERC1271::isValidSignatureCall {
            hash: digest,
            signature: inner,
        };
        let calls = vec![
            Multicall3::Call {
                target: factory,
                callData: prepare,
            },
            Multicall3::Call {
                target: authorizer,
                callData: check.abi_encode().into(),
            },
        ];
        let answer = Multicall3::new(self.inner.config.multicall3, provider)
            .tryAggregate(true, calls)
            .gas(ERC6492_CALL_GAS)
            .call()
            .await;
        Ok(answer.is_ok_and(|results| {
            results.get(1).is_some_and(|r| {
                r.success && r.returnData.len() >= 4 && r.returnData[..4] == ERC1271_MAGIC[..]
            })
        }))
    }
}

/// The completed form of a relayed charge: its `amount` (more than zero, at most the
/// `authorized` amount), the fee field of the escrow's version with this operator's fee on that
/// amount, and its fee receiver. The amount and fee the authorizer signs are the ones returned.
fn completed_charge(
    completion: &AmountAndFee,
    authorized: U256,
    fee: &crate::engine::calldata::CallFee,
) -> Result<(U256, SubmittedFee), Refusal> {
    let format = |why: &str| Err((reasons::AUTH_CAPTURE_PAYLOAD_FORMAT, why.to_owned()));
    let Some(charged) = completion.amount else {
        return format(
            "a charge settles in its completed form: amount, the fee (feeAmount on a v1.1 \
             escrow, feeBps on v1.0) and feeReceiver",
        );
    };
    let amount = charged.get();
    if amount.is_zero() || amount > authorized {
        return Err((
            reasons::AUTH_CAPTURE_AMOUNT_MISMATCH,
            format!("amount {charged}: a charge takes more than 0 and at most {authorized}"),
        ));
    }
    let submitted = match (fee.argument, completion.fee_amount, completion.fee_bps) {
        (FeeArgument::Bps, None, Some(bps)) => {
            if bps != fee.bps {
                return Err((
                    reasons::AUTH_CAPTURE_EXTRA,
                    format!("feeBps {bps}: this operator charges with {}", fee.bps),
                ));
            }
            SubmittedFee::Bps(bps)
        }
        (FeeArgument::Amount, Some(given), None) => {
            let ours = U256::from(fee.amount_of(amount.saturating_to::<u128>()));
            if given.get() != ours {
                return Err((
                    reasons::AUTH_CAPTURE_EXTRA,
                    format!(
                        "feeAmount {given}: this operator charges a fee of {ours} ({} bps)",
                        fee.bps
                    ),
                ));
            }
            SubmittedFee::Amount(ours)
        }
        (FeeArgument::Bps, _, _) => return format("this escrow (v1.0) takes feeBps"),
        (FeeArgument::Amount, _, _) => return format("this escrow (v1.1) takes feeAmount"),
    };
    match completion.fee_receiver {
        Some(receiver) if receiver == fee.receiver => Ok((amount, submitted)),
        Some(receiver) => Err((
            reasons::AUTH_CAPTURE_EXTRA,
            format!(
                "feeReceiver {receiver}: this operator charges to {}",
                fee.receiver
            ),
        )),
        None => format("a completed charge names its feeReceiver"),
    }
}

/// Every `paymentInfo` field other than operator, payer, salt and preApprovalExpiry is what
/// the requirements dictate (there is no client signature on a lifecycle payload to bind them).
fn requirements_match(
    requirements: &PaymentRequirements,
    extra: &AuthCaptureExtra,
    lifecycle: &LifecyclePayload,
) -> Result<(), Refusal> {
    let info = &lifecycle.payment_info;
    let checks: [(&str, String, String); 8] = [
        (
            "receiver",
            info.receiver.to_string(),
            requirements.pay_to.to_string(),
        ),
        (
            "token",
            info.token.to_string(),
            requirements.asset.to_string(),
        ),
        (
            "maxAmount",
            info.max_amount.to_string(),
            requirements.amount.to_string(),
        ),
        (
            "authorizationExpiry",
            info.authorization_expiry.to_string(),
            extra.capture_deadline.to_string(),
        ),
        (
            "refundExpiry",
            info.refund_expiry.to_string(),
            extra.refund_deadline.to_string(),
        ),
        (
            "minFeeBps",
            info.min_fee_bps.to_string(),
            extra.min_fee_bps.to_string(),
        ),
        (
            "maxFeeBps",
            info.max_fee_bps.to_string(),
            extra.max_fee_bps.to_string(),
        ),
        (
            "feeReceiver",
            info.fee_receiver.to_string(),
            extra.fee_recipient.to_string(),
        ),
    ];
    for (field, found, dictated) in checks {
        if found != dictated {
            return Err((
                reasons::REQUIREMENTS_MISMATCH,
                format!("paymentInfo.{field} is {found}; the requirements dictate {dictated}"),
            ));
        }
    }
    Ok(())
}

fn list(addresses: &[Address]) -> String {
    addresses
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
