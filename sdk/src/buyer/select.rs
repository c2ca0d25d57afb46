//! Choosing what to pay among a challenge's options.
//!
//! Preference: `auth-capture` (refundable) before `exact`; within `auth-capture`, ERC-3009
//! before Permit2 (a Permit2 payment also needs the payer's allowance to Permit2, which the
//! client cannot see); among options of the same kind the cheapest first. An `auth-capture`
//! option is signed with the transfer method its `extra.assetTransferMethod` names: a merchant
//! whose token has no ERC-3009 offers only `permit2`, and that is what gets signed. An option is a candidate only when this client can pay it (scheme known,
//! network matching the signer's chain id when the signer has one, escrow known, token domain
//! present) and the policy's static rules allow it; the ledger's reservation then decides the
//! amount-based rules, trying candidates in order.

use std::fmt;

use alloy::primitives::{Address, B256};

use super::policy::{PaymentIntent, PolicyViolation};
use crate::EscrowRegistry;
use crate::amount::Amount;
use crate::network::Network;
use crate::schemes::{AUTH_CAPTURE, EXACT, auth_capture, exact};
use crate::wire::{PaymentRequirements, PaymentRequirementsV1};

/// One option of a challenge, in v2 form (v1 options keep their original too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentOption {
    /// Position in the challenge's `accepts`.
    pub index: usize,
    /// The requirements (v2 form).
    pub requirements: PaymentRequirements,
    /// The v1 original, for v1 challenges.
    pub v1: Option<PaymentRequirementsV1>,
}

impl PaymentOption {
    /// The policy subject for paying this option from `host`.
    pub fn intent(&self, host: &str, resource: Option<String>) -> PaymentIntent {
        PaymentIntent {
            scheme: self.requirements.scheme.clone(),
            network: self.requirements.network,
            asset: self.requirements.asset,
            payee: self.requirements.pay_to,
            host: host.to_owned(),
            amount: self.requirements.amount,
            resource,
        }
    }

    /// Sort key: scheme preference (`auth-capture` first, ERC-3009 before Permit2 within it),
    /// then amount.
    pub fn rank(&self) -> (u8, Amount) {
        let permit2 = self
            .requirements
            .auth_capture_extra()
            .is_some_and(|e| e.transfer_method() == auth_capture::AssetTransferMethod::Permit2);
        (
            scheme_preference(&self.requirements.scheme)
                .map(|p| p * 2 + u8::from(permit2))
                .unwrap_or(u8::MAX),
            self.requirements.amount,
        )
    }
}

/// The scheme's preference (lower first), `None` when this client cannot pay it.
pub fn scheme_preference(scheme: &str) -> Option<u8> {
    match scheme {
        AUTH_CAPTURE => Some(0),
        EXACT => Some(1),
        _ => None,
    }
}

/// Why an option was not paid.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RejectionReason {
    /// A scheme this client does not speak.
    UnsupportedScheme,
    /// The signer is bound to another chain.
    WrongChain {
        /// The signer's chain id.
        signer_chain_id: u64,
    },
    /// The requirements cannot be signed (unknown escrow, an escrow without a Permit2 collector
    /// for a `permit2` offer, missing token domain, …).
    Unpayable(String),
    /// The spend policy refused it.
    Policy(PolicyViolation),
}

impl fmt::Display for RejectionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnsupportedScheme => f.write_str("scheme not supported"),
            Self::WrongChain { signer_chain_id } => {
                write!(f, "the signer is bound to chain {signer_chain_id}")
            }
            Self::Unpayable(reason) => write!(f, "cannot be signed: {reason}"),
            Self::Policy(violation) => violation.fmt(f),
        }
    }
}

/// One option that was not paid, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Position in the challenge's `accepts`.
    pub index: usize,
    /// The scheme.
    pub scheme: String,
    /// The network.
    pub network: Network,
    /// The token.
    pub asset: Address,
    /// The amount.
    pub amount: Amount,
    /// Why.
    pub reason: RejectionReason,
}

impl Rejection {
    pub(crate) fn new(option: &PaymentOption, reason: RejectionReason) -> Self {
        Self {
            index: option.index,
            scheme: option.requirements.scheme.clone(),
            network: option.requirements.network,
            asset: option.requirements.asset,
            amount: option.requirements.amount,
            reason,
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "accepts[{}] ({} {} of {} on {}): {}",
            self.index, self.scheme, self.amount, self.asset, self.network, self.reason
        )
    }
}

/// Checks, without signing anything, that this client can sign `requirements` as `payer`.
pub fn check_payable(
    requirements: &PaymentRequirements,
    payer: Address,
    signer_chain_id: Option<u64>,
    now: u64,
    registry: &EscrowRegistry,
) -> Result<(), RejectionReason> {
    if scheme_preference(&requirements.scheme).is_none() {
        return Err(RejectionReason::UnsupportedScheme);
    }
    if let Some(chain_id) = signer_chain_id
        && chain_id != requirements.network.chain_id()
    {
        return Err(RejectionReason::WrongChain {
            signer_chain_id: chain_id,
        });
    }
    match requirements.scheme.as_str() {
        AUTH_CAPTURE => {
            auth_capture::prepare_collect(requirements, payer, now, B256::ZERO, registry)
                .map(drop)
                .map_err(|e| RejectionReason::Unpayable(e.to_string()))
        }
        _ => exact::authorization(requirements, payer, now, B256::ZERO)
            .and_then(|auth| exact::signing_hash(requirements, &auth))
            .map(drop)
            .map_err(|e| RejectionReason::Unpayable(e.to_string())),
    }
}
