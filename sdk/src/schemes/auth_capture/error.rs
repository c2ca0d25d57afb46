//! Errors of the auth-capture scheme (building and verifying).

use alloy::primitives::{Address, B256};

use crate::amount::Amount;
use crate::facilitator::reasons;
use crate::network::Network;
use crate::signing::SigningError;
use crate::wire::RequirementsMismatch;
use x402_escrow_types::schemes::auth_capture::AssetTransferMethod;

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
    /// `extra.assetTransferMethod` is `permit2` but the escrow deployment has no Permit2
    /// collector to spend the permit.
    #[error(
        "assetTransferMethod permit2 is not supported by escrow {0}: it has no Permit2 collector"
    )]
    Permit2CollectorMissing(Address),
    /// The payload's kind (`authorization` or `permit2Authorization`) is not the one
    /// `extra.assetTransferMethod` asks for.
    #[error("extra.assetTransferMethod is {expected:?} but the payload carries {found}")]
    PayloadMethodMismatch {
        /// What the requirements ask for.
        expected: AssetTransferMethod,
        /// What the payload carries (`authorization` or `permit2Authorization`).
        found: &'static str,
    },
    /// The payload is not an auth-capture collect payload.
    #[error("payload is not an auth-capture collect payload ({0})")]
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
    /// `authorization.value` (or `permit2Authorization.permitted.amount`) is not `amount`.
    #[error("the authorized amount {found} is not the required amount {expected}")]
    AmountMismatch {
        /// `amount`.
        expected: Amount,
        /// `authorization.value`.
        found: Amount,
    },
    /// `authorization.to` (or `permit2Authorization.spender`) is not the escrow's collector for
    /// the transfer method.
    #[error("{field} {found} is not the escrow's token collector {expected}")]
    CollectorMismatch {
        /// `authorization.to` or `permit2Authorization.spender`.
        field: &'static str,
        /// The collector.
        expected: Address,
        /// What the payload names.
        found: Address,
    },
    /// `permit2Authorization.permitted.token` is not `asset`.
    #[error("permit2Authorization.permitted.token {found} is not the asset {expected}")]
    TokenMismatch {
        /// `asset`.
        expected: Address,
        /// The permitted token.
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
    /// The authorization's nonce is not the payer-agnostic PaymentInfo hash (for Permit2: that
    /// hash read as a `uint256`).
    #[error(
        "the authorization's nonce {found} is not the payer-agnostic PaymentInfo hash {expected}"
    )]
    NonceMismatch {
        /// The recomputed hash.
        expected: B256,
        /// The payload's nonce.
        found: B256,
    },
    /// Signing or recovery failed.
    #[error(transparent)]
    Signature(#[from] SigningError),
    /// The signature recovers to someone other than the payer (`from`).
    #[error("signature recovers to {recovered}, not the payer {from}")]
    SignerMismatch {
        /// The payload's `from`.
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
            Self::Permit2CollectorMissing(_) => reasons::AUTH_CAPTURE_UNSUPPORTED_TRANSFER_METHOD,
            Self::PayloadMethodMismatch { .. } => reasons::AUTH_CAPTURE_PAYLOAD_METHOD_MISMATCH,
            Self::TokenMismatch { .. } => reasons::AUTH_CAPTURE_TOKEN_MISMATCH,
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
