//! The `auth-capture` scheme: refundable payments through an AuthCaptureEscrow, the payer's
//! transfer authorized with ERC-3009 (the default) or Permit2 (`assetTransferMethod:
//! "permit2"`, for any ERC-20 the payer approved Permit2 for).
//!
//! - Buyer: [`build_collect_payload`] (either method; [`build_payload`] and
//!   [`build_permit2_payload`] for one, or [`prepare_collect`] +
//!   [`PreparedCollect::into_payload`] for async signers) signs exactly what the official
//!   `@x402/evm` client signs.
//! - Operator: [`derive_payment_info`] reconstructs the escrow's `PaymentInfo` from the
//!   requirements and the payload and checks their consistency; [`check_signature`] and
//!   [`check_timing`] complete verification before simulating `authorize` / `charge` on chain.
//! - Server and facilitator of the v1.1 `delegated` operator: [`authorizer`] — the receiver
//!   authorizer's EIP-712 consent (`Charge`, `Capture`, `Void`, `Refund`), signed with
//!   [`sign_authorizer`] or as a whole lifecycle payload with [`signed_lifecycle_payload`],
//!   recovered with [`recover_authorizer`].

pub mod authorizer;
mod client;
mod error;
mod payment_info;
pub mod permit2;
mod verify;

use alloy::primitives::{Address, B256, U256, keccak256};
use alloy::sol_types::SolValue;

pub use authorizer::{
    AuthorizerMessage, ExpectedState, LifecycleRequest, SubmittedFee, authorizer_domain,
    recover_authorizer, sign_authorizer, signed_lifecycle_payload,
};
pub use client::{
    PreparedAuthorization, PreparedCollect, PreparedPermit2, build_collect_payload, build_payload,
    build_permit2_payload, prepare, prepare_collect, prepare_permit2,
};
pub use error::AuthCaptureError;
pub use payment_info::{PaymentInfoError, payment_info_from_json, payment_info_to_json};
pub use verify::{
    CLOCK_SKEW_TOLERANCE_SECONDS, DerivedPayment, MIN_VALIDITY_SECONDS, SignatureCheck,
    check_payload_signature, check_permit2_signature, check_signature, check_timing,
    derive_from_payment_payload, derive_payment_info, derive_permit2_payment_info,
};
pub use x402_escrow_types::schemes::auth_capture::{
    AmountAndFee, AssetTransferMethod, AuthCaptureExtra, AuthCapturePayload,
    AuthCapturePermit2Payload, CaptureMode, LifecycleOperation, LifecyclePayload, MAX_FEE_BPS,
    PaymentFlow, PaymentInfoJson, Permit2Authorization, Permit2TokenPermissions,
};

/// The EIP-712-style domain tag of the salt binding.
pub const SALT_BINDING_TYPE: &str =
    "x402AuthCaptureSaltBinding(address receiverAuthorizer,address policy,uint256 saltNonce)";

/// `keccak256(SALT_BINDING_TYPE)`.
pub fn salt_binding_typehash() -> B256 {
    keccak256(SALT_BINDING_TYPE.as_bytes())
}

/// The bound salt: `keccak256(abi.encode(SALT_BINDING_TYPEHASH, receiverAuthorizer, policy,
/// saltNonce))`.
pub fn bound_salt(receiver_authorizer: Address, policy: Address, salt_nonce: B256) -> B256 {
    keccak256(
        (
            salt_binding_typehash(),
            receiver_authorizer,
            policy,
            U256::from_be_bytes(salt_nonce.0),
        )
            .abi_encode(),
    )
}
