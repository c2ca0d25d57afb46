//! Buyer side: build and sign the `auth-capture` payload exactly as the official client does,
//! with ERC-3009 (the default) or Permit2 as `extra.assetTransferMethod` asks.

use alloy::primitives::{Address, B256, Bytes};
use alloy::signers::{Signer, SignerSync};

use super::bound_salt;
use super::error::AuthCaptureError;
use super::permit2::{permit2_nonce, permit2_signing_hash, recover_permit2_signer};
use super::verify::{build_payment_info, collect_terms, permit2_collector};
use crate::PaymentInfo;
use crate::amount::{Amount, UINT48_MAX};
use crate::escrows::{EscrowDeployment, EscrowRegistry};
use crate::schemes::Eip3009Authorization;
use crate::signing::{self, TokenDomain};
use crate::wire::{PaymentRequirements, SchemePayload};
use x402_escrow_bindings::hash::payer_agnostic_hash;
use x402_escrow_types::schemes::auth_capture::{
    AssetTransferMethod, AuthCaptureExtra, AuthCapturePayload, AuthCapturePermit2Payload,
    Permit2Authorization, Permit2TokenPermissions,
};

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
    let common = Common::new(requirements, payer, now, random, registry)?;
    if common.extra.transfer_method() != AssetTransferMethod::Eip3009 {
        return Err(AuthCaptureError::PayloadMethodMismatch {
            expected: common.extra.transfer_method(),
            found: "authorization",
        });
    }
    let authorization = Eip3009Authorization {
        from: payer,
        to: common.deployment.erc3009_collector,
        value: common.amount,
        valid_after: Amount::ZERO,
        valid_before: Amount::from(common.pre_approval_expiry),
        nonce: common.nonce,
    };
    let domain = TokenDomain {
        name: common.extra.name.clone(),
        version: common.extra.version.clone(),
        chain_id: common.chain_id,
        token: requirements.asset,
    };
    let signing_hash = signing::receive_with_authorization_hash(&domain, &authorization);
    Ok(PreparedAuthorization {
        payment_info: common.payment_info,
        deployment: common.deployment.clone(),
        chain_id: common.chain_id,
        authorization,
        salt: common.salt,
        salt_nonce: common.salt_nonce,
        token_domain: domain,
        signing_hash,
    })
}

/// A Permit2 payment except the payer's signature (see [`PreparedAuthorization`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedPermit2 {
    /// The PaymentInfo the escrow will see.
    pub payment_info: PaymentInfo,
    /// The escrow deployment the nonce commits to.
    pub deployment: EscrowDeployment,
    /// Chain id of the requirements' network.
    pub chain_id: u64,
    /// The unsigned `PermitTransferFrom` (spender = the deployment's Permit2 collector).
    pub permit2_authorization: Permit2Authorization,
    /// `PaymentInfo.salt`.
    pub salt: B256,
    /// The random value behind a bound salt.
    pub salt_nonce: Option<B256>,
    /// EIP-712 digest of the `PermitTransferFrom` in Permit2's domain.
    pub signing_hash: B256,
}

impl PreparedPermit2 {
    /// The payload, with the payer's signature of [`signing_hash`](Self::signing_hash).
    pub fn into_payload(self, signature: Bytes) -> AuthCapturePermit2Payload {
        AuthCapturePermit2Payload::new(
            self.permit2_authorization,
            signature,
            self.salt,
            self.salt_nonce,
        )
    }
}

/// Prepares a Permit2 `auth-capture` payment (`extra.assetTransferMethod: "permit2"`) for
/// `payer` at `now`, as the official client: permitted = (asset, amount), spender = the
/// deployment's Permit2 collector, nonce = the payer-agnostic hash as a `uint256`, deadline =
/// `now + maxTimeoutSeconds` (= `preApprovalExpiry`). See [`prepare`] for `random`.
pub fn prepare_permit2(
    requirements: &PaymentRequirements,
    payer: Address,
    now: u64,
    random: B256,
    registry: &EscrowRegistry,
) -> Result<PreparedPermit2, AuthCaptureError> {
    let common = Common::new(requirements, payer, now, random, registry)?;
    if common.extra.transfer_method() != AssetTransferMethod::Permit2 {
        return Err(AuthCaptureError::PayloadMethodMismatch {
            expected: common.extra.transfer_method(),
            found: "permit2Authorization",
        });
    }
    let spender = permit2_collector(common.deployment)?;
    let permit2_authorization = Permit2Authorization {
        from: payer,
        permitted: Permit2TokenPermissions {
            token: requirements.asset,
            amount: common.amount,
        },
        spender,
        nonce: Amount::new(permit2_nonce(common.nonce)),
        deadline: Amount::from(common.pre_approval_expiry),
    };
    let signing_hash = permit2_signing_hash(common.chain_id, &permit2_authorization);
    Ok(PreparedPermit2 {
        payment_info: common.payment_info,
        deployment: common.deployment.clone(),
        chain_id: common.chain_id,
        permit2_authorization,
        salt: common.salt,
        salt_nonce: common.salt_nonce,
        signing_hash,
    })
}

/// A prepared collect payment of either transfer method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreparedCollect {
    /// ERC-3009 (`assetTransferMethod` absent or `eip3009`).
    Eip3009(PreparedAuthorization),
    /// Permit2 (`assetTransferMethod: "permit2"`).
    Permit2(PreparedPermit2),
}

impl PreparedCollect {
    /// The digest the payer signs.
    pub fn signing_hash(&self) -> B256 {
        match self {
            Self::Eip3009(p) => p.signing_hash,
            Self::Permit2(p) => p.signing_hash,
        }
    }

    /// The PaymentInfo the escrow will see.
    pub fn payment_info(&self) -> &PaymentInfo {
        match self {
            Self::Eip3009(p) => &p.payment_info,
            Self::Permit2(p) => &p.payment_info,
        }
    }

    /// The payload with the payer's signature.
    pub fn into_payload(self, signature: Bytes) -> SchemePayload {
        match self {
            Self::Eip3009(p) => p.into_payload(signature).into(),
            Self::Permit2(p) => p.into_payload(signature).into(),
        }
    }
}

/// [`prepare`] or [`prepare_permit2`], as `extra.assetTransferMethod` asks.
pub fn prepare_collect(
    requirements: &PaymentRequirements,
    payer: Address,
    now: u64,
    random: B256,
    registry: &EscrowRegistry,
) -> Result<PreparedCollect, AuthCaptureError> {
    let (extra, _, _) = collect_terms(requirements, registry)?;
    match extra.transfer_method() {
        AssetTransferMethod::Eip3009 => {
            prepare(requirements, payer, now, random, registry).map(PreparedCollect::Eip3009)
        }
        AssetTransferMethod::Permit2 => prepare_permit2(requirements, payer, now, random, registry)
            .map(PreparedCollect::Permit2),
    }
}

/// What both transfer methods derive alike: the PaymentInfo, its salt and the nonce.
struct Common<'a> {
    extra: &'a AuthCaptureExtra,
    deployment: &'a EscrowDeployment,
    amount: Amount,
    chain_id: u64,
    pre_approval_expiry: u64,
    salt: B256,
    salt_nonce: Option<B256>,
    payment_info: PaymentInfo,
    /// The payer-agnostic PaymentInfo hash.
    nonce: B256,
}

impl<'a> Common<'a> {
    fn new(
        requirements: &'a PaymentRequirements,
        payer: Address,
        now: u64,
        random: B256,
        registry: &'a EscrowRegistry,
    ) -> Result<Self, AuthCaptureError> {
        let (extra, deployment, amount) = collect_terms(requirements, registry)?;
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
        let payment_info =
            build_payment_info(requirements, extra, payer, pre_approval_expiry, salt)?;
        let chain_id = requirements.network.chain_id();
        let nonce = payer_agnostic_hash(&payment_info, chain_id, deployment.escrow);
        Ok(Self {
            extra,
            deployment,
            amount,
            chain_id,
            pre_approval_expiry,
            salt,
            salt_nonce,
            payment_info,
            nonce,
        })
    }
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

/// Builds and signs the client's Permit2 `auth-capture` payload with a local signer (see
/// [`prepare_permit2`]); the signature is checked to recover to the payer.
pub fn build_permit2_payload<S: Signer + SignerSync + ?Sized>(
    requirements: &PaymentRequirements,
    signer: &S,
    now: u64,
    random: B256,
    registry: &EscrowRegistry,
) -> Result<AuthCapturePermit2Payload, AuthCaptureError> {
    let payer = signer.address();
    let prepared = prepare_permit2(requirements, payer, now, random, registry)?;
    let signature = signing::sign_hash(signer, &prepared.signing_hash)?;
    let recovered = recover_permit2_signer(
        prepared.chain_id,
        &prepared.permit2_authorization,
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

/// Builds and signs the collect payload `extra.assetTransferMethod` asks for: ERC-3009
/// ([`build_payload`]) or Permit2 ([`build_permit2_payload`]). A Permit2 payment also needs the
/// payer's ERC-20 allowance to Permit2 for the token (a one-time `approve`), which the
/// signature cannot show: the operator refuses the payment (`permit2_allowance_missing`)
/// without it.
pub fn build_collect_payload<S: Signer + SignerSync + ?Sized>(
    requirements: &PaymentRequirements,
    signer: &S,
    now: u64,
    random: B256,
    registry: &EscrowRegistry,
) -> Result<SchemePayload, AuthCaptureError> {
    let (extra, _, _) = collect_terms(requirements, registry)?;
    Ok(match extra.transfer_method() {
        AssetTransferMethod::Eip3009 => {
            build_payload(requirements, signer, now, random, registry)?.into()
        }
        AssetTransferMethod::Permit2 => {
            build_permit2_payload(requirements, signer, now, random, registry)?.into()
        }
    })
}
