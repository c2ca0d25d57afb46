//! Errors of the auth-capture scheme (building and verifying).

use alloy::primitives::{Address, B256};

use crate::amount::Amount;
use crate::facilitator::reasons;
use crate::network::Network;
use crate::signing::SigningError;
use crate::wire::RequirementsMismatch;

/// Why an auth-capture payment could not be built, or is inconsistent with its requirements.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthCaptureError {
    /// The requirements are not for `auth-capture`.
    #[error("requirements are for scheme {0:?}, not \"auth-capture\"")]
    WrongScheme(String),
    /// The requirements carry no (typed) auth-capture `extra`.
    #[error("requirements carry no auth-capture extra")]
    MissingExtra,
    /// `extra.authCaptureEscrow` is not a known deployment.
    #[error("escrow {0} is not a known AuthCaptureEscrow deployment")]
    UnknownEscrow(Address),
    /// `extra.assetTransferMethod` is `permit2` (not supported by this crate).
    #[error("assetTransferMethod permit2 is not supported; only eip3009")]
    UnsupportedTransferMethod,
    /// The payload is not an ERC-3009 collect payload.
    #[error("payload is not an auth-capture ERC-3009 payload ({0})")]
    PayloadFormat(&'static str),
    /// The payload's `accepted` differs from the requirements.
    #[error(transparent)]
    Requirements(#[from] RequirementsMismatch),
    /// The payload's network is not the requirements' network.
    #[error("payment is for {found}, requirements are for {expected}")]
    NetworkMismatch {
        /// The requirements' network.
        expected: Network,
        /// The payload's network.
        found: Network,
    },
    /// `amount` exceeds the escrow's uint120.
    #[error("amount {0} exceeds the escrow's uint120 maximum")]
    AmountTooLarge(Amount),
    /// A timestamp (`now + maxTimeoutSeconds`, `validBefore`) exceeds uint48.
    #[error("{field} {value} exceeds the escrow's uint48 timestamps")]
    TimestampOutOfRange {
        /// Which timestamp.
        field: &'static str,
        /// Its value.
        value: Amount,
    },
    /// `authorization.value` is not `amount`.
    #[error("authorization.value {found} is not the required amount {expected}")]
    AmountMismatch {
        /// `amount`.
        expected: Amount,
        /// `authorization.value`.
        found: Amount,
    },
    /// `authorization.to` is not the escrow's ERC-3009 collector.
    #[error("authorization.to {found} is not the escrow's ERC-3009 collector {expected}")]
    CollectorMismatch {
        /// The collector.
        expected: Address,
        /// `authorization.to`.
        found: Address,
    },
    /// `authorization.validAfter` is not 0.
    #[error("authorization.validAfter is {0}, must be 0")]
    ValidAfterNotZero(Amount),
    /// The salt is bound but `saltNonce` is missing.
    #[error("salt is bound to receiverAuthorizer/policy but the payload has no saltNonce")]
    SaltNonceMissing,
    /// The salt is not bound but the payload carries `saltNonce`.
    #[error(
        "payload carries saltNonce but the salt is not bound (no receiverAuthorizer or policy)"
    )]
    SaltNonceUnexpected,
    /// `salt` is not the binding of `saltNonce` to receiverAuthorizer and policy.
    #[error("salt {found} is not the binding commitment {expected} of saltNonce")]
    SaltBindingMismatch {
        /// The commitment recomputed from `saltNonce`.
        expected: B256,
        /// `salt`.
        found: B256,
    },
    /// `authorization.nonce` is not the payer-agnostic PaymentInfo hash.
    #[error("authorization.nonce {found} is not the payer-agnostic PaymentInfo hash {expected}")]
    NonceMismatch {
        /// The recomputed hash.
        expected: B256,
        /// `authorization.nonce`.
        found: B256,
    },
    /// Signing or recovery failed.
    #[error(transparent)]
    Signature(#[from] SigningError),
    /// The signature recovers to someone other than `authorization.from`.
    #[error("signature recovers to {recovered}, not authorization.from {from}")]
    SignerMismatch {
        /// `authorization.from`.
        from: Address,
        /// The recovered signer.
        recovered: Address,
    },
    /// `validBefore` is not far enough in the future.
    #[error("authorization expires at {valid_before}, less than {min}s after now ({now})", min = super::MIN_VALIDITY_SECONDS)]
    AuthorizationExpired {
        /// `validBefore`.
        valid_before: u64,
        /// The time of the check.
        now: u64,
    },
    /// `captureDeadline` is past or too close.
    #[error("captureDeadline {capture_deadline} is not after now ({now}) + {min}s", min = super::MIN_VALIDITY_SECONDS)]
    CaptureDeadlineExpired {
        /// `captureDeadline`.
        capture_deadline: u64,
        /// The time of the check.
        now: u64,
    },
    /// Expiries out of order (`validBefore <= captureDeadline <= refundDeadline`, and the
    /// validity window within `now + maxTimeoutSeconds`).
    #[error("deadline ordering violated: {0}")]
    DeadlineOrdering(String),
}

impl AuthCaptureError {
    /// The facilitator `invalidReason` for this error.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::WrongScheme(_) => reasons::UNSUPPORTED_SCHEME,
            Self::MissingExtra | Self::UnknownEscrow(_) | Self::AmountTooLarge(_) => {
                reasons::AUTH_CAPTURE_EXTRA
            }
            Self::UnsupportedTransferMethod => reasons::AUTH_CAPTURE_UNSUPPORTED_TRANSFER_METHOD,
            Self::PayloadFormat(_)
            | Self::SaltNonceMissing
            | Self::SaltNonceUnexpected
            | Self::TimestampOutOfRange { .. }
            | Self::ValidAfterNotZero(_) => reasons::AUTH_CAPTURE_PAYLOAD_FORMAT,
            Self::Requirements(_) => reasons::REQUIREMENTS_MISMATCH,
            Self::NetworkMismatch { .. } => reasons::AUTH_CAPTURE_NETWORK_MISMATCH,
            Self::AmountMismatch { .. } => reasons::AUTH_CAPTURE_AMOUNT_MISMATCH,
            Self::CollectorMismatch { .. } => reasons::AUTH_CAPTURE_COLLECTOR_MISMATCH,
            Self::SaltBindingMismatch { .. } => reasons::AUTH_CAPTURE_SALT_BINDING_MISMATCH,
            Self::NonceMismatch { .. } => reasons::AUTH_CAPTURE_NONCE_MISMATCH,
            Self::Signature(_) | Self::SignerMismatch { .. } => reasons::AUTH_CAPTURE_SIGNATURE,
            Self::AuthorizationExpired { .. } => reasons::AUTH_CAPTURE_AUTHORIZATION_EXPIRED,
            Self::CaptureDeadlineExpired { .. } => reasons::AUTH_CAPTURE_CAPTURE_DEADLINE_EXPIRED,
            Self::DeadlineOrdering(_) => reasons::AUTH_CAPTURE_DEADLINE_ORDERING,
        }
    }
}
