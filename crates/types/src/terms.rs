//! `GET /v1/merchant`: what the operator accepts from one merchant, and the time windows a
//! merchant layer must offer to stay inside them.

use alloy_primitives::Address;
use serde::{Deserialize, Serialize};

use crate::network::Network;

/// How long a merchant has to capture a hold unless it chose otherwise (seconds): the default of
/// `merchant add --capture-deadline-secs`.
pub const DEFAULT_CAPTURE_DEADLINE_SECS: u64 = 3600;

/// The operator's default `auto_void.expiry_margin_secs`: the time it keeps in hand on every
/// expiry to get a transaction mined.
pub const DEFAULT_EXPIRY_MARGIN_SECS: u64 = 60;

/// The default `maxTimeoutSeconds` of a layer's requirements.
pub const DEFAULT_MAX_TIMEOUT_SECS: u64 = 300;

/// Granularity of a merchant layer's challenge times, in seconds (a payment signed against an
/// earlier challenge is matched against every epoch back to `maxTimeoutSeconds` ago).
pub const EPOCH_SECS: u64 = 60;

/// Seconds from a challenge to the `captureDeadline` it must offer so that the operator accepts
/// a hold placed up to `max_timeout_secs` (plus two challenge epochs) later and still leaves the
/// merchant `capture_deadline_secs` to capture and the operator `expiry_margin_secs` to get the
/// capture or void mined.
pub fn capture_deadline_offer_secs(
    capture_deadline_secs: u64,
    expiry_margin_secs: u64,
    max_timeout_secs: u64,
) -> u64 {
    capture_deadline_secs
        .saturating_add(expiry_margin_secs)
        .saturating_add(max_timeout_secs)
        .saturating_add(2 * EPOCH_SECS)
}

/// An escrow deployment the operator drives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TermsEscrow {
    /// A short label (`"local"`, `"canonical v1.0"`).
    pub label: String,
    /// The `AuthCaptureEscrow`.
    pub escrow: Address,
    /// Its `ERC3009PaymentCollector`.
    pub erc3009_collector: Address,
    /// Its `OperatorRefundCollector`, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_collector: Option<Address>,
    /// Its `Permit2PaymentCollector`, when it has one (Permit2 payments are accepted only then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permit2_collector: Option<Address>,
}

/// A token the operator accepts, with its EIP-712 domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TermsAsset {
    /// The token contract.
    pub address: Address,
    /// EIP-712 domain name (x402 `extra.name`).
    pub name: String,
    /// EIP-712 domain version (x402 `extra.version`).
    pub version: String,
    /// Decimals.
    pub decimals: u8,
}

/// `GET /v1/merchant`: what the operator accepts from the calling merchant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MerchantTerms {
    /// The merchant's id.
    pub merchant_id: String,
    /// Its display name.
    pub name: String,
    /// The network (CAIP-2).
    pub network: Network,
    /// Addresses this merchant may be paid to (`payTo`); the first is the default.
    pub receivers: Vec<Address>,
    /// The operator's primary signer: the `captureAuthorizer` to name when one is enough.
    pub capture_authorizer: Address,
    /// Every `captureAuthorizer` the operator accepts: one per signer lane, the primary first
    /// (empty from an operator that does not list them: `capture_authorizer` alone). A layer
    /// spreads its offers over them; each payment is sent by the lane it names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capture_authorizers: Vec<Address>,
    /// Where the operator's fee goes (a payment's `feeRecipient` must be zero or this).
    pub fee_recipient: Address,
    /// The operator's fee in basis points (must lie in a payment's `[minFeeBps, maxFeeBps]`).
    pub fee_bps: u16,
    /// Seconds the merchant has to capture a hold (its `capture_deadline_secs`).
    pub capture_deadline_seconds: u64,
    /// The operator's `auto_void.expiry_margin_secs`.
    pub expiry_margin_seconds: u64,
    /// How far a buyer's clock may run ahead of the operator's.
    pub clock_skew_seconds: u64,
    /// Escrow deployments the operator drives; the first is the default.
    pub escrows: Vec<TermsEscrow>,
    /// Tokens the operator accepts; the first is the default.
    pub assets: Vec<TermsAsset>,
}

impl MerchantTerms {
    /// The `captureDeadline` offset a layer with `max_timeout_secs` must offer.
    pub fn capture_deadline_offer_secs(&self, max_timeout_secs: u64) -> u64 {
        capture_deadline_offer_secs(
            self.capture_deadline_seconds,
            self.expiry_margin_seconds,
            max_timeout_secs,
        )
    }
}
