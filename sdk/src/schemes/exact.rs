//! The `exact` scheme on EVM with ERC-3009: the client signs `TransferWithAuthorization` for
//! exactly `amount` to `payTo`; settlement calls the token's `transferWithAuthorization`.

use alloy::primitives::{Address, B256, U256};
use alloy::signers::{Signer, SignerSync};

use crate::amount::Amount;
use crate::schemes::{EXACT, Eip3009Authorization};
use crate::signing::{self, SigningError, TokenDomain};
use crate::wire::{Extra, PaymentRequirements};

/// Clock skew tolerated when checking that an authorization is still valid: it must stay valid
/// for at least this many seconds after `now` (the public specification's 6-second floor).
pub const MIN_VALIDITY_SECONDS: u64 = 6;

pub use x402_escrow_types::schemes::exact::{ExactExtra, ExactPayload};

/// Why an `exact` payment could not be built or does not match its requirements.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExactError {
    /// The requirements are not for the `exact` scheme.
    #[error("requirements are for scheme {0:?}, not \"exact\"")]
    WrongScheme(String),
    /// `extra.name` / `extra.version` (the token's EIP-712 domain) are missing.
    #[error("requirements extra lacks the token's EIP-712 {0}")]
    MissingDomain(&'static str),
    /// `now + maxTimeoutSeconds` overflows.
    #[error("validBefore overflows")]
    Timestamp,
    /// `authorization.to` is not `payTo`.
    #[error("authorization.to {found} is not payTo {expected}")]
    RecipientMismatch {
        /// `payTo`.
        expected: Address,
        /// `authorization.to`.
        found: Address,
    },
    /// `authorization.value` is not `amount`.
    #[error("authorization.value {found} is not the required amount {expected}")]
    AmountMismatch {
        /// `amount`.
        expected: Amount,
        /// `authorization.value`.
        found: Amount,
    },
    /// `validAfter` is in the future.
    #[error("authorization is not valid before {valid_after} (now {now})")]
    NotYetValid {
        /// `validAfter`.
        valid_after: Amount,
        /// The time of the check.
        now: u64,
    },
    /// `validBefore` is not far enough in the future.
    #[error(
        "authorization expires at {valid_before}, less than {MIN_VALIDITY_SECONDS}s after now ({now})"
    )]
    Expired {
        /// `validBefore`.
        valid_before: Amount,
        /// The time of the check.
        now: u64,
    },
    /// `validBefore` is later than `now + maxTimeoutSeconds` allows.
    #[error(
        "authorization validBefore {valid_before} exceeds now + maxTimeoutSeconds + clock skew ({limit})"
    )]
    ValidityTooLong {
        /// `validBefore`.
        valid_before: Amount,
        /// `now + maxTimeoutSeconds + CLOCK_SKEW_TOLERANCE_SECONDS`.
        limit: u64,
    },
    /// Signing or signature recovery failed.
    #[error(transparent)]
    Signature(#[from] SigningError),
    /// The signature does not recover to `authorization.from`.
    #[error("signature recovers to {recovered}, not authorization.from {from}")]
    SignerMismatch {
        /// `authorization.from`.
        from: Address,
        /// The recovered signer.
        recovered: Address,
    },
}

impl ExactError {
    /// The facilitator `invalidReason` for this error.
    pub fn reason(&self) -> &'static str {
        use crate::facilitator::reasons;
        match self {
            Self::WrongScheme(_) => reasons::UNSUPPORTED_SCHEME,
            Self::MissingDomain(_) | Self::Timestamp => reasons::INVALID_PAYMENT_REQUIREMENTS,
            Self::RecipientMismatch { .. } => reasons::EXACT_EVM_RECIPIENT,
            Self::AmountMismatch { .. } => reasons::EXACT_EVM_VALUE,
            Self::NotYetValid { .. } => reasons::EXACT_EVM_VALID_AFTER,
            Self::Expired { .. } | Self::ValidityTooLong { .. } => reasons::EXACT_EVM_VALID_BEFORE,
            Self::Signature(_) | Self::SignerMismatch { .. } => reasons::EXACT_EVM_SIGNATURE,
        }
    }
}

fn domain_of(requirements: &PaymentRequirements) -> Result<TokenDomain, ExactError> {
    if requirements.scheme != EXACT {
        return Err(ExactError::WrongScheme(requirements.scheme.clone()));
    }
    let Some(Extra::Exact(extra)) = &requirements.extra else {
        return Err(ExactError::MissingDomain("name and version"));
    };
    let name = extra
        .name
        .clone()
        .ok_or(ExactError::MissingDomain("name"))?;
    let version = extra
        .version
        .clone()
        .ok_or(ExactError::MissingDomain("version"))?;
    Ok(TokenDomain {
        name,
        version,
        chain_id: requirements.network.chain_id(),
        token: requirements.asset,
    })
}

/// The unsigned authorization the client signs: to = `payTo`, value = `amount`,
/// validAfter = 0, validBefore = `now + maxTimeoutSeconds`, nonce = the given 32 random bytes.
pub fn authorization(
    requirements: &PaymentRequirements,
    payer: Address,
    now: u64,
    nonce: B256,
) -> Result<Eip3009Authorization, ExactError> {
    let valid_before = now
        .checked_add(requirements.max_timeout_seconds)
        .ok_or(ExactError::Timestamp)?;
    Ok(Eip3009Authorization {
        from: payer,
        to: requirements.pay_to,
        value: requirements.amount,
        valid_after: Amount::ZERO,
        valid_before: Amount::from(valid_before),
        nonce,
    })
}

/// The EIP-712 digest of an `exact` authorization (`TransferWithAuthorization` in the token's
/// domain from `extra` and the requirements' chain and asset).
pub fn signing_hash(
    requirements: &PaymentRequirements,
    authorization: &Eip3009Authorization,
) -> Result<B256, ExactError> {
    let domain = domain_of(requirements)?;
    Ok(signing::transfer_with_authorization_hash(
        &domain,
        authorization,
    ))
}

/// Builds and signs the client's `exact` payload with a local signer (payer =
/// `signer.address()`), exactly as the official client does, with `nonce` the 32 random bytes
/// (see [`crate::random_b256`]). For asynchronous signers: [`authorization`] +
/// [`signing_hash`], sign, then assemble the [`ExactPayload`].
pub fn build_payload<S: Signer + SignerSync + ?Sized>(
    requirements: &PaymentRequirements,
    signer: &S,
    now: u64,
    nonce: B256,
) -> Result<ExactPayload, ExactError> {
    let authorization = authorization(requirements, signer.address(), now, nonce)?;
    let hash = signing_hash(requirements, &authorization)?;
    let signature = signing::sign_hash(signer, &hash)?;
    Ok(ExactPayload {
        authorization,
        signature,
    })
}

/// Checks an `exact` payload against the requirements at time `now`: recipient, amount, time
/// window, and (for 65-byte signatures) the ECDSA signer. Returns the payer.
///
/// Contract-wallet signatures (ERC-1271, EIP-6492) are not 65 bytes and cannot be checked
/// off chain: for those this returns `Ok` after the other checks, and the on-chain simulation of
/// `transferWithAuthorization` is the signature check.
pub fn verify_payload(
    requirements: &PaymentRequirements,
    payload: &ExactPayload,
    now: u64,
) -> Result<Address, ExactError> {
    let auth = &payload.authorization;
    let domain = domain_of(requirements)?;
    if auth.to != requirements.pay_to {
        return Err(ExactError::RecipientMismatch {
            expected: requirements.pay_to,
            found: auth.to,
        });
    }
    if auth.value != requirements.amount {
        return Err(ExactError::AmountMismatch {
            expected: requirements.amount,
            found: auth.value,
        });
    }
    if auth.valid_after.get() > U256::from(now) {
        return Err(ExactError::NotYetValid {
            valid_after: auth.valid_after,
            now,
        });
    }
    if auth.valid_before.get() <= U256::from(now.saturating_add(MIN_VALIDITY_SECONDS)) {
        return Err(ExactError::Expired {
            valid_before: auth.valid_before,
            now,
        });
    }
    // The buyer signs with its own clock, which may run ahead of the one `now` comes from (a
    // chain's latest block lags the wall clock): allow the same skew as `auth-capture`, no more.
    let limit = now
        .saturating_add(requirements.max_timeout_seconds)
        .saturating_add(crate::schemes::auth_capture::CLOCK_SKEW_TOLERANCE_SECONDS);
    if auth.valid_before.get() > U256::from(limit) {
        return Err(ExactError::ValidityTooLong {
            valid_before: auth.valid_before,
            limit,
        });
    }
    if payload.signature.len() == 65 {
        let recovered = signing::recover_signer(
            &domain,
            &signing::transfer_with_authorization(auth),
            &payload.signature,
        )?;
        if recovered != auth.from {
            return Err(ExactError::SignerMismatch {
                from: auth.from,
                recovered,
            });
        }
    }
    Ok(auth.from)
}
