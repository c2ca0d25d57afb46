//! Buyer side: build and sign the `auth-capture` payload exactly as the official client does.

use alloy::primitives::{Address, B256, Bytes};
use alloy::signers::{Signer, SignerSync};

use super::bound_salt;
use super::error::AuthCaptureError;
use super::verify::{build_payment_info, eip3009_terms};
use crate::PaymentInfo;
use crate::amount::{Amount, UINT48_MAX};
use crate::escrows::{EscrowDeployment, EscrowRegistry};
use crate::schemes::Eip3009Authorization;
use crate::signing::{self, TokenDomain};
use crate::wire::PaymentRequirements;
use x402_escrow_bindings::hash::payer_agnostic_hash;
use x402_escrow_types::schemes::auth_capture::AuthCapturePayload;

/// Everything about a payment except the payer's signature: for signers that sign
/// asynchronously (sign [`signing_hash`](Self::signing_hash), then call
/// [`into_payload`](Self::into_payload)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedAuthorization {
    /// The PaymentInfo the escrow will see.
    pub payment_info: PaymentInfo,
    /// The escrow deployment the nonce commits to.
    pub deployment: EscrowDeployment,
    /// Chain id of the requirements' network.
    pub chain_id: u64,
    /// The unsigned ERC-3009 authorization.
    pub authorization: Eip3009Authorization,
    /// `PaymentInfo.salt`.
    pub salt: B256,
    /// The random value behind a bound salt.
    pub salt_nonce: Option<B256>,
    /// The token's EIP-712 domain.
    pub token_domain: TokenDomain,
    /// EIP-712 digest of the `ReceiveWithAuthorization` to sign.
    pub signing_hash: B256,
}

impl PreparedAuthorization {
    /// The payload, with the payer's 65-byte (or smart-wallet) signature of
    /// [`signing_hash`](Self::signing_hash).
    pub fn into_payload(self, signature: Bytes) -> AuthCapturePayload {
        AuthCapturePayload::new(self.authorization, signature, self.salt, self.salt_nonce)
    }
}

/// Prepares an `auth-capture` payment for `payer` at time `now` (Unix seconds).
///
/// `random` is the client's 32 random bytes (see [`crate::random_b256`]): the salt when
/// unbound, the `saltNonce` when `receiverAuthorizer` or `policy` is non-zero. The escrow is
/// `extra.authCaptureEscrow` or the registry's default, and must be registered.
pub fn prepare(
    requirements: &PaymentRequirements,
    payer: Address,
    now: u64,
    random: B256,
    registry: &EscrowRegistry,
) -> Result<PreparedAuthorization, AuthCaptureError> {
    let (extra, deployment, amount) = eip3009_terms(requirements, registry)?;
    let pre_approval_expiry = now
        .checked_add(requirements.max_timeout_seconds)
        .filter(|t| *t <= UINT48_MAX)
        .ok_or(AuthCaptureError::TimestampOutOfRange {
            field: "now + maxTimeoutSeconds",
            value: Amount::from(u128::from(now) + u128::from(requirements.max_timeout_seconds)),
        })?;
    let (salt, salt_nonce) = if extra.is_salt_bound() {
        (
            bound_salt(
                extra.receiver_authorizer_or_zero(),
                extra.policy_or_zero(),
                random,
            ),
            Some(random),
        )
    } else {
        (random, None)
    };
    let payment_info = build_payment_info(requirements, extra, payer, pre_approval_expiry, salt)?;
    let chain_id = requirements.network.chain_id();
    let authorization = Eip3009Authorization {
        from: payer,
        to: deployment.erc3009_collector,
        value: amount,
        valid_after: Amount::ZERO,
        valid_before: Amount::from(pre_approval_expiry),
        nonce: payer_agnostic_hash(&payment_info, chain_id, deployment.escrow),
    };
    let domain = TokenDomain {
        name: extra.name.clone(),
        version: extra.version.clone(),
        chain_id,
        token: requirements.asset,
    };
    let signing_hash = signing::receive_with_authorization_hash(&domain, &authorization);
    Ok(PreparedAuthorization {
        payment_info,
        deployment: deployment.clone(),
        chain_id,
        authorization,
        salt,
        salt_nonce,
        token_domain: domain,
        signing_hash,
    })
}

/// Builds and signs the client's `auth-capture` payload with a local signer (payer =
/// `signer.address()`; see [`prepare`] for the parameters). The signature is checked to recover
/// to the payer before it is returned.
pub fn build_payload<S: Signer + SignerSync + ?Sized>(
    requirements: &PaymentRequirements,
    signer: &S,
    now: u64,
    random: B256,
    registry: &EscrowRegistry,
) -> Result<AuthCapturePayload, AuthCaptureError> {
    let payer = signer.address();
    let prepared = prepare(requirements, payer, now, random, registry)?;
    let signature = signing::sign_hash(signer, &prepared.signing_hash)?;
    let recovered = signing::recover_signer(
        &prepared.token_domain,
        &signing::receive_with_authorization(&prepared.authorization),
        &signature,
    )?;
    if recovered != payer {
        return Err(AuthCaptureError::SignerMismatch {
            from: payer,
            recovered,
        });
    }
    Ok(prepared.into_payload(signature))
}
