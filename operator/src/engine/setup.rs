//! The engine's and the verifier's configuration, built from the operator's [`Config`].
//!
//! [`Config`]: crate::config::Config

use std::time::Duration;

use alloy::primitives::{Address, U256};
use x402_escrow_sdk::merchant::TermsAsset;

use super::EngineConfig;

/// The fee this operator charges (not part of `config::Config` yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeePolicy {
    /// Fee in basis points, clamped into each payment's `[minFeeBps, maxFeeBps]` at capture.
    pub fee_bps: u16,
    /// Where fees go when the payment's `feeReceiver` is zero.
    pub fee_receiver: Address,
}

/// Builds the verifier's and the engine's configuration from the operator's [`Config`], the
/// deployment in use (its addresses; `[chain.contracts]` overrides win), the signer address and
/// the fee policy. The canonical v1.0 escrow is accepted too when `accept_canonical` is set.
/// The deployment's `version` decides the fee argument of its `capture` / `charge`.
///
/// [`Config`]: crate::config::Config
pub fn configs(
    config: &crate::config::Config,
    deployment: &x402_escrow_bindings::Deployment,
    signer: Address,
    fees: FeePolicy,
    accept_canonical: bool,
) -> (crate::verify::VerifierConfig, EngineConfig) {
    use x402_escrow_sdk::escrows::{EscrowDeployment, EscrowRegistry};
    let contracts = &config.chain.contracts;
    // The record's `version` says how its escrow takes the fee (v1.0 basis points, v1.1 amount).
    let ours = EscrowDeployment {
        label: format!("x402-escrow (chain {})", deployment.chain_id),
        escrow: contracts.escrow.unwrap_or(deployment.auth_capture_escrow),
        erc3009_collector: contracts
            .erc3009_collector
            .unwrap_or(deployment.erc3009_payment_collector),
        refund_collector: Some(
            contracts
                .refund_collector
                .unwrap_or(deployment.operator_refund_collector),
        ),
        // Permit2 payments are accepted where the deployment record names a Permit2 collector.
        permit2_collector: deployment.permit2_payment_collector,
        fee_argument: deployment.version.into(),
    };
    let refund_collector = contracts
        .refund_collector
        .unwrap_or(deployment.operator_refund_collector);
    let mut registry = EscrowRegistry::only(ours);
    if accept_canonical {
        registry.register(EscrowDeployment::canonical_v1_0());
    }
    let assets = deployment.token.iter().map(|t| t.address).collect();
    let asset_terms = deployment
        .token
        .iter()
        .map(|t| TermsAsset {
            address: t.address,
            name: t.name.clone(),
            version: t.version.clone(),
            decimals: t.decimals,
        })
        .collect();
    let verifier = crate::verify::VerifierConfig {
        chain_id: config.chain.chain_id,
        operator: signer,
        // The runtime lists every lane (`runtime::open`); empty: the signer alone.
        lanes: Vec::new(),
        registry,
        assets,
        fee_bps: fees.fee_bps,
        fee_receiver: fees.fee_receiver,
        expiry_margin_secs: config.auto_void.expiry_margin_secs,
        default_capture_deadline_secs: config.auto_void.default_capture_deadline_secs,
    };
    let engine = EngineConfig {
        chain_id: config.chain.chain_id,
        signer,
        refund_collector,
        multicall3: deployment.multicall3,
        fee_bps: fees.fee_bps,
        fee_receiver: fees.fee_receiver,
        default_wait: Duration::from_secs(30),
        expiry_margin_secs: config.auto_void.expiry_margin_secs,
        auto_void: config.auto_void.enabled,
        refund_allowance: U256::from(1_000_000_000_000u64),
        poll_interval: Duration::from_millis(500),
        assets: asset_terms,
    };
    (verifier, engine)
}
