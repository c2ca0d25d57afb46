//! [`VerifyError`]: why a payment was refused, its stable API code and x402 reason, and
//! [`VerifyCause`]: the message or the underlying error it carries.

use alloy::primitives::{Address, B256, U256};
use x402_escrow_sdk::facilitator::reasons;
use x402_escrow_sdk::schemes::auth_capture::AuthCaptureError;

use super::describe_call_error;
use crate::service::{ErrorCode, ServiceError};

/// Why a payment was refused. [`VerifyError::code`] gives the API code.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The payload does not answer the requirements.
    #[error("invalid payload: {0}")]
    InvalidPayload(#[source] VerifyCause),
    /// Another chain than ours.
    #[error("payment is for chain {found}, this operator runs chain {expected}")]
    WrongChain {
        /// Ours.
        expected: u64,
        /// The payment's.
        found: u64,
    },
    /// Escrow or collector not ours.
    #[error("wrong escrow: {0}")]
    WrongEscrow(#[source] AuthCaptureError),
    /// `captureAuthorizer` is not one of our signer lanes.
    #[error(
        "captureAuthorizer {found} is not this operator ({expected} or another of its signer lanes)"
    )]
    WrongOperator {
        /// Our signer.
        expected: Address,
        /// The payment's operator.
        found: Address,
    },
    /// Token not configured.
    #[error("asset {0} is not accepted")]
    UnsupportedAsset(Address),
    /// `payTo` not one of the merchant's receivers.
    #[error("payTo {0} is not one of the merchant's receivers")]
    PayeeNotAllowed(Address),
    /// Zero or too large.
    #[error("invalid amount: {0}")]
    InvalidAmount(#[source] VerifyCause),
    /// An expiry passed or is too close. `reason` is the x402 reason naming which deadline
    /// (`invalid_auth_capture_evm_capture_deadline_expired`, …); `detail` says by how much.
    #[error("{detail}")]
    Expired {
        /// The x402 reason.
        reason: &'static str,
        /// Which deadline, its value, the time it was checked at and the shortfall (the SDK's
        /// error when its time window refused the payment).
        #[source]
        detail: VerifyCause,
    },
    /// Fee range or receiver unacceptable.
    #[error("invalid fee: {0}")]
    InvalidFee(String),
    /// The signature does not recover to the payer.
    #[error("invalid signature: {0}")]
    InvalidSignature(#[source] AuthCaptureError),
    /// The ERC-3009 nonce was used or cancelled.
    #[error("the payer's authorization {0} was already used or cancelled")]
    AuthorizationUsed(B256),
    /// Payer balance below `maxAmount`.
    #[error("payer balance {balance} is below {required}")]
    InsufficientFunds {
        /// The balance.
        balance: U256,
        /// What the collector pulls.
        required: U256,
    },
    /// Permit2 payment: the payer's ERC-20 allowance to Permit2 is below `maxAmount` (the payer
    /// must `approve` Permit2 for the token once).
    #[error(
        "the payer has approved Permit2 for {allowance} of token {token}, below the {required} this payment pulls: the payer must approve Permit2 (0x000000000022D473030F116dDEE9F6B43aC78BA3) for the token first"
    )]
    Permit2AllowanceMissing {
        /// The token.
        token: Address,
        /// The payer's allowance to Permit2.
        allowance: U256,
        /// What the collector pulls.
        required: U256,
    },
    /// `eth_call` of `authorize` (or `charge`) reverted.
    #[error("simulation reverted: {revert}")]
    SimulationFailed {
        /// The revert decoded ([`describe_call_error`]): the escrow's custom error name, the
        /// revert string, or the raw revert data.
        revert: String,
        /// The contract error itself.
        #[source]
        source: Box<alloy::contract::Error>,
    },
    /// The RPC could not be reached.
    #[error("chain unavailable: {0}")]
    ChainUnavailable(#[source] VerifyCause),
}

/// What a [`VerifyError`] carries besides its kind: the verifier's own message, or the error
/// it comes from. `Display` and `source` are the wrapped error's own (transparent), so the
/// refusal's text is the same either way and the cause chain keeps the original error.
#[derive(Debug)]
pub enum VerifyCause {
    /// A message of the verifier's own (no underlying error).
    Message(String),
    /// The SDK's consistency or time-window check refused the payment.
    Sdk(AuthCaptureError),
    /// A JSON-RPC request to the node failed.
    Rpc(Box<alloy::transports::TransportError>),
    /// A contract read (`eth_call`) failed.
    Call(Box<alloy::contract::Error>),
}

impl std::fmt::Display for VerifyCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VerifyCause::Message(m) => f.write_str(m),
            VerifyCause::Sdk(e) => e.fmt(f),
            VerifyCause::Rpc(e) => e.fmt(f),
            VerifyCause::Call(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for VerifyCause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            VerifyCause::Message(_) => None,
            VerifyCause::Sdk(e) => e.source(),
            VerifyCause::Rpc(e) => e.source(),
            VerifyCause::Call(e) => e.source(),
        }
    }
}

impl From<String> for VerifyCause {
    fn from(message: String) -> Self {
        VerifyCause::Message(message)
    }
}

impl From<&str> for VerifyCause {
    fn from(message: &str) -> Self {
        VerifyCause::Message(message.to_owned())
    }
}

impl From<AuthCaptureError> for VerifyCause {
    fn from(e: AuthCaptureError) -> Self {
        VerifyCause::Sdk(e)
    }
}

impl From<alloy::transports::TransportError> for VerifyCause {
    fn from(e: alloy::transports::TransportError) -> Self {
        VerifyCause::Rpc(Box::new(e))
    }
}

impl From<alloy::contract::Error> for VerifyCause {
    fn from(e: alloy::contract::Error) -> Self {
        VerifyCause::Call(Box::new(e))
    }
}

impl VerifyError {
    /// [`VerifyError::InvalidPayload`] with a message of the verifier's own.
    pub fn invalid_payload(message: impl Into<String>) -> VerifyError {
        VerifyError::InvalidPayload(VerifyCause::Message(message.into()))
    }

    /// [`VerifyError::InvalidAmount`] with a message of the verifier's own.
    pub fn invalid_amount(message: impl Into<String>) -> VerifyError {
        VerifyError::InvalidAmount(VerifyCause::Message(message.into()))
    }

    /// [`VerifyError::Expired`] for the x402 `reason`, with a message saying by how much.
    pub fn expired(reason: &'static str, detail: impl Into<String>) -> VerifyError {
        VerifyError::Expired {
            reason,
            detail: VerifyCause::Message(detail.into()),
        }
    }

    /// [`VerifyError::ChainUnavailable`] from a failed RPC request or contract read (or a
    /// message: what the node failed to answer).
    pub fn chain_unavailable(cause: impl Into<VerifyCause>) -> VerifyError {
        VerifyError::ChainUnavailable(cause.into())
    }

    /// [`VerifyError::SimulationFailed`] from the reverted `eth_call`, its reason decoded by
    /// [`describe_call_error`].
    pub fn simulation_failed(error: alloy::contract::Error) -> VerifyError {
        VerifyError::SimulationFailed {
            revert: describe_call_error(&error),
            source: Box::new(error),
        }
    }
}

impl VerifyError {
    /// The stable API code.
    pub fn code(&self) -> ErrorCode {
        match self {
            VerifyError::InvalidPayload(_) => ErrorCode::InvalidPayload,
            VerifyError::WrongChain { .. } => ErrorCode::WrongChain,
            VerifyError::WrongEscrow(_) => ErrorCode::WrongEscrow,
            VerifyError::WrongOperator { .. } => ErrorCode::WrongOperator,
            VerifyError::UnsupportedAsset(_) => ErrorCode::UnsupportedAsset,
            VerifyError::PayeeNotAllowed(_) => ErrorCode::PayeeNotAllowed,
            VerifyError::InvalidAmount(_) => ErrorCode::InvalidAmount,
            VerifyError::Expired { .. } => ErrorCode::Expired,
            VerifyError::InvalidFee(_) => ErrorCode::InvalidFee,
            VerifyError::InvalidSignature(_) => ErrorCode::InvalidSignature,
            VerifyError::AuthorizationUsed(_) => ErrorCode::AuthorizationUsed,
            VerifyError::InsufficientFunds { .. } => ErrorCode::InsufficientFunds,
            VerifyError::Permit2AllowanceMissing { .. } => ErrorCode::Permit2AllowanceMissing,
            VerifyError::SimulationFailed { .. } => ErrorCode::SimulationFailed,
            VerifyError::ChainUnavailable(_) => ErrorCode::ChainUnavailable,
        }
    }
}

impl VerifyError {
    /// The x402 reason of this refusal (`invalid_auth_capture_evm_*`); where the x402 list has
    /// no equivalent, the operator's own stable code (`authorization_used`,
    /// `simulation_failed`, …).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::InvalidPayload(_) => reasons::INVALID_PAYLOAD,
            Self::WrongChain { .. } => reasons::INVALID_NETWORK,
            Self::WrongEscrow(AuthCaptureError::Permit2CollectorMissing(_)) => {
                reasons::AUTH_CAPTURE_UNSUPPORTED_TRANSFER_METHOD
            }
            Self::WrongEscrow(_) => reasons::AUTH_CAPTURE_EXTRA,
            Self::WrongOperator { .. } => reasons::AUTH_CAPTURE_OPERATOR_MISMATCH,
            Self::UnsupportedAsset(_) | Self::PayeeNotAllowed(_) => {
                reasons::INVALID_PAYMENT_REQUIREMENTS
            }
            Self::InvalidAmount(_) => reasons::AUTH_CAPTURE_AMOUNT_MISMATCH,
            Self::Expired { reason, .. } => reason,
            Self::InvalidFee(_) => reasons::AUTH_CAPTURE_EXTRA,
            Self::InvalidSignature(_) => reasons::AUTH_CAPTURE_SIGNATURE,
            Self::InsufficientFunds { .. } => reasons::INSUFFICIENT_FUNDS,
            Self::Permit2AllowanceMissing { .. } => reasons::PERMIT2_ALLOWANCE_MISSING,
            Self::AuthorizationUsed(_) => ErrorCode::AuthorizationUsed.as_str(),
            Self::SimulationFailed { .. } => ErrorCode::SimulationFailed.as_str(),
            Self::ChainUnavailable(_) => reasons::UNEXPECTED_VERIFY_ERROR,
        }
    }
}

impl From<VerifyError> for ServiceError {
    fn from(e: VerifyError) -> Self {
        ServiceError::new(e.code(), e.to_string()).with_reason(e.reason())
    }
}

pub(super) fn from_sdk(e: AuthCaptureError) -> VerifyError {
    match e {
        AuthCaptureError::NetworkMismatch { .. } => VerifyError::InvalidPayload(e.into()),
        AuthCaptureError::UnknownEscrow(_)
        | AuthCaptureError::CollectorMismatch { .. }
        | AuthCaptureError::Permit2CollectorMissing(_) => VerifyError::WrongEscrow(e),
        AuthCaptureError::AmountTooLarge(_) => VerifyError::InvalidAmount(e.into()),
        AuthCaptureError::AuthorizationExpired { .. }
        | AuthCaptureError::CaptureDeadlineExpired { .. }
        | AuthCaptureError::DeadlineOrdering(_) => VerifyError::Expired {
            reason: e.reason(),
            detail: e.into(),
        },
        AuthCaptureError::SignerMismatch { .. } | AuthCaptureError::Signature(_) => {
            VerifyError::InvalidSignature(e)
        }
        other => VerifyError::InvalidPayload(other.into()),
    }
}
