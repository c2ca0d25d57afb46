//! `GET /supported`: the schemes, networks, extension and signer this facilitator serves.

use std::collections::BTreeMap;

use alloy::primitives::Address;
use serde_json::json;
use x402_escrow_sdk::facilitator::{SupportedKind, SupportedResponse};
use x402_escrow_sdk::network::Network;
use x402_escrow_sdk::schemes::auth_capture::CLOCK_SKEW_TOLERANCE_SECONDS;
use x402_escrow_sdk::wire::extensions::PAYMENT_IDENTIFIER;

use super::*;
use crate::engine::Engine;

impl Engine {
    /// `GET /supported`: auth-capture and exact on our chain (v2, plus v1 where the chain has a
    /// v1 name), the `payment-identifier` extension, our signers. The auth-capture `extra` has
    /// the v1.1 fields (`captureAuthorizer`, `receiverAuthorizer`, `feeRecipient`,
    /// `minFeeBps` = `maxFeeBps`, `operators: []`) and our own (`feeBps`, the escrows, flows,
    /// time windows and assets).
    pub fn facilitator_supported(&self) -> SupportedResponse {
        let cfg = &self.inner.config;
        let network = Network::eip155(cfg.chain_id);
        let deployments = self.inner.verifier.config().registry.deployments();
        let escrows: Vec<Address> = deployments.iter().map(|d| d.escrow).collect();
        let checksum = |a: &Address| a.to_checksum(None);
        // ERC-3009 always; Permit2 where a deployment has its collector.
        let mut methods = vec!["eip3009"];
        if deployments.iter().any(|d| d.permit2_collector.is_some()) {
            methods.push("permit2");
        }
        let extra = json!({
            "captureAuthorizer": checksum(&cfg.signer),
            // auth-capture v1.1: the receiver authorizer we stand in for (a merchant naming it
            // needs no authorizer signature: its API key authenticates the request), our fee
            // terms as equal bounds, and no contract operator admitted.
            "receiverAuthorizer": checksum(&self.delegated_authorizer()),
            "feeRecipient": checksum(&cfg.fee_receiver),
            "minFeeBps": cfg.fee_bps,
            "maxFeeBps": cfg.fee_bps,
            "operators": [],
            "feeBps": cfg.fee_bps,
            "authCaptureEscrows": escrows.iter().map(checksum).collect::<Vec<_>>(),
            "paymentFlows": ["escrow", "authorization"],
            "assetTransferMethods": methods,
            // The time windows payments are judged by (DESIGN.md, "Clocks"); a merchant's own
            // capture deadline comes with its terms (`GET /v1/merchant`).
            "captureDeadlineSeconds": self.inner.verifier.config().default_capture_deadline_secs,
            "expiryMarginSeconds": cfg.expiry_margin_secs,
            "clockSkewSeconds": CLOCK_SKEW_TOLERANCE_SECONDS,
            "assets": self.inner.verifier.config().assets.iter().map(checksum).collect::<Vec<_>>(),
        });
        let mut kinds = Vec::new();
        let mut names = vec![(2u8, network.caip2())];
        if let Some(v1) = network.v1_name() {
            names.push((1, v1.to_owned()));
        }
        for (version, name) in names {
            kinds.push(SupportedKind {
                x402_version: version,
                scheme: AUTH_CAPTURE.to_owned(),
                network: name.clone(),
                extra: Some(extra.clone()),
            });
            kinds.push(SupportedKind {
                x402_version: version,
                scheme: EXACT.to_owned(),
                network: name,
                extra: None,
            });
        }
        let mut signers = BTreeMap::new();
        signers.insert(
            "eip155:*".to_owned(),
            self.inner.verifier.config().operators(),
        );
        SupportedResponse {
            kinds,
            extensions: vec![PAYMENT_IDENTIFIER.to_owned()],
            signers,
        }
    }
}
