//! The `auth-capture` scheme with ERC-3009: refundable payments through an AuthCaptureEscrow.
//!
//! - Buyer: [`build_payload`] (or [`prepare`] + [`PreparedAuthorization::into_payload`] for
//!   async signers) signs exactly what the official `@x402/evm` client signs.
//! - Operator: [`derive_payment_info`] reconstructs the escrow's `PaymentInfo` from the
//!   requirements and the payload and checks their consistency; [`check_signature`] and
//!   [`check_timing`] complete verification before simulating `authorize` / `charge` on chain.

mod client;
mod error;
mod payment_info;
mod verify;

use alloy::primitives::{Address, B256, U256, keccak256};
use alloy::sol_types::SolValue;

pub use client::{PreparedAuthorization, build_payload, prepare};
pub use error::AuthCaptureError;
pub use payment_info::{PaymentInfoError, payment_info_from_json, payment_info_to_json};
pub use verify::{
    CLOCK_SKEW_TOLERANCE_SECONDS, DerivedPayment, MIN_VALIDITY_SECONDS, SignatureCheck,
    check_signature, check_timing, derive_from_payment_payload, derive_payment_info,
};
pub use x402_escrow_types::schemes::auth_capture::{
    AmountAndFee, AssetTransferMethod, AuthCaptureExtra, AuthCapturePayload, CaptureMode,
    LifecycleOperation, LifecyclePayload, MAX_FEE_BPS, PaymentFlow, PaymentInfoJson,
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
