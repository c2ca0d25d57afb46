//! What the operator accepts from one merchant (`GET /v1/merchant`), and the layer settings
//! derived from it.
//!
//! The time windows a merchant layer offers and the ones the operator accepts come from the same
//! settings: the merchant's capture deadline (`merchant add --capture-deadline-secs`) and the
//! operator's `auto_void.expiry_margin_secs`. [`PaymentsConfig::from_terms`] builds a layer
//! configuration from them; [`PaymentsConfig::check_terms`] refuses, at start-up, a configuration
//! built by hand that the operator would refuse at payment time, naming both settings.

use alloy::primitives::Address;

use super::challenge::EPOCH_SECS;
use super::config::{AssetConfig, PaymentsConfig};
use super::layer::X402Layer;
use super::operator::{OperatorClient, OperatorError};
use crate::escrows::{EscrowDeployment, EscrowRegistry};
use crate::schemes::auth_capture::AssetTransferMethod;

pub use x402_escrow_types::terms::{
    DEFAULT_CAPTURE_DEADLINE_SECS, DEFAULT_EXPIRY_MARGIN_SECS, DEFAULT_MAX_TIMEOUT_SECS,
    TermsAsset, TermsEscrow, capture_deadline_offer_secs,
};

/// `GET /v1/merchant`: what the operator accepts from the calling merchant.
pub use x402_escrow_types::MerchantTerms;

/// What the SDK derives from [`MerchantTerms`] (an extension trait: the type is defined in
/// `x402-escrow-types`, which does not know the SDK's escrow registry).
pub trait MerchantTermsExt {
    /// The escrows as a registry the layer matches payments against.
    fn registry(&self) -> EscrowRegistry;
}

impl MerchantTermsExt for MerchantTerms {
    fn registry(&self) -> EscrowRegistry {
        let mut deployments = self.escrows.iter().map(|e| {
            EscrowDeployment::v1_0_interface(
                e.label.clone(),
                e.escrow,
                e.erc3009_collector,
                e.refund_collector,
            )
            .with_permit2_collector(e.permit2_collector)
        });
        let mut registry = match deployments.next() {
            Some(first) => EscrowRegistry::only(first),
            None => EscrowRegistry::canonical(),
        };
        for deployment in deployments {
            registry.register(deployment);
        }
        registry
    }
}

/// Why terms cannot make a layer configuration.
#[derive(Debug, thiserror::Error)]
pub enum TermsError {
    /// The operator's terms could not be read.
    #[error("reading the operator's terms (GET /v1/merchant): {0}")]
    Operator(#[from] OperatorError),
    /// The merchant has no receiver.
    #[error("the operator lists no receiver for merchant {0}")]
    NoReceiver(String),
    /// The operator accepts no token.
    #[error("the operator accepts no asset (its deployment record has no token)")]
    NoAsset,
    /// The operator drives no escrow.
    #[error("the operator lists no escrow")]
    NoEscrow,
    /// The layer's settings disagree with the operator's.
    #[error("the payment settings disagree with the operator's:\n  - {}", .0.join("\n  - "))]
    Mismatch(Vec<String>),
}

impl PaymentsConfig {
    /// A configuration that offers exactly what the operator accepts from this merchant: its
    /// network, first asset and escrow, its signer as `captureAuthorizer`, its fee, the
    /// merchant's first receiver as `payTo`, and a `captureDeadline` that leaves the merchant's
    /// capture window plus the operator's margin ([`capture_deadline_offer_secs`]).
    pub fn from_terms(terms: &MerchantTerms) -> Result<PaymentsConfig, TermsError> {
        let pay_to = *terms
            .receivers
            .first()
            .ok_or_else(|| TermsError::NoReceiver(terms.merchant_id.clone()))?;
        let asset = terms.assets.first().ok_or(TermsError::NoAsset)?;
        let escrow = terms.escrows.first().ok_or(TermsError::NoEscrow)?;
        let mut config = PaymentsConfig::new(
            terms.network,
            AssetConfig::new(
                asset.address,
                asset.name.clone(),
                asset.version.clone(),
                asset.decimals,
            ),
            pay_to,
            terms.capture_authorizer,
        );
        config.capture_authorizers = terms.capture_authorizers.clone();
        config.escrow = Some(escrow.escrow);
        config.registry = terms.registry();
        config.fee_recipient = terms.fee_recipient;
        config.min_fee_bps = terms.fee_bps;
        config.max_fee_bps = terms.fee_bps;
        config.capture_deadline_secs =
            terms.capture_deadline_offer_secs(config.max_timeout_seconds);
        config.refund_deadline_secs = config
            .refund_deadline_secs
            .max(config.capture_deadline_secs);
        Ok(config)
    }

    /// Every way this configuration disagrees with what the operator accepts (empty: none).
    /// Each line names the layer's setting and the operator's.
    pub fn mismatches(&self, terms: &MerchantTerms) -> Vec<String> {
        let mut out = Vec::new();
        if self.network.chain_id() != terms.network.chain_id() {
            out.push(format!(
                "PaymentsConfig::network is {} but the operator runs {}",
                self.network.caip2(),
                terms.network.caip2()
            ));
        }
        let accepted = if terms.capture_authorizers.is_empty() {
            vec![terms.capture_authorizer]
        } else {
            terms.capture_authorizers.clone()
        };
        if !accepted.contains(&self.capture_authorizer) {
            out.push(format!(
                "PaymentsConfig::capture_authorizer is {} but the operator's signer is {}",
                self.capture_authorizer, terms.capture_authorizer
            ));
        }
        if !terms.receivers.contains(&self.pay_to) {
            out.push(format!(
                "PaymentsConfig::pay_to {} is not one of merchant {}'s receivers ({})",
                self.pay_to,
                terms.name,
                join(&terms.receivers)
            ));
        }
        if !terms.assets.iter().any(|a| a.address == self.asset.address) {
            let assets: Vec<Address> = terms.assets.iter().map(|a| a.address).collect();
            out.push(format!(
                "PaymentsConfig::asset {} is not accepted by the operator ({})",
                self.asset.address,
                join(&assets)
            ));
        }
        if let Some(escrow) = self.escrow
            && !terms.escrows.iter().any(|e| e.escrow == escrow)
        {
            let escrows: Vec<Address> = terms.escrows.iter().map(|e| e.escrow).collect();
            out.push(format!(
                "PaymentsConfig::escrow {escrow} is not driven by the operator ({})",
                join(&escrows)
            ));
        }
        // Permit2 offers need a Permit2 collector on the escrow they name (or the first).
        let offered_escrow = match self.escrow {
            Some(escrow) => terms.escrows.iter().find(|e| e.escrow == escrow),
            None => terms.escrows.first(),
        };
        if self
            .asset_transfer_methods
            .contains(&AssetTransferMethod::Permit2)
            && let Some(escrow) = offered_escrow
            && escrow.permit2_collector.is_none()
        {
            out.push(format!(
                "PaymentsConfig::asset_transfer_methods offers permit2 but the operator's escrow                  {} has no Permit2 collector (its deployment record names none)",
                escrow.escrow
            ));
        }
        if terms.fee_bps < self.min_fee_bps || terms.fee_bps > self.max_fee_bps {
            out.push(format!(
                "the operator's fees.bps ({}) is outside PaymentsConfig::min_fee_bps..max_fee_bps \
                 ({}..{})",
                terms.fee_bps, self.min_fee_bps, self.max_fee_bps
            ));
        }
        if self.fee_recipient != Address::ZERO && self.fee_recipient != terms.fee_recipient {
            out.push(format!(
                "PaymentsConfig::fee_recipient {} is neither zero nor the operator's fees.receiver \
                 ({})",
                self.fee_recipient, terms.fee_recipient
            ));
        }
        let needed = terms.capture_deadline_offer_secs(self.max_timeout_seconds);
        if self.capture_deadline_secs < needed {
            out.push(format!(
                "PaymentsConfig::capture_deadline_secs ({} s) is shorter than the merchant's \
                 capture_deadline_secs ({} s) + the operator's auto_void.expiry_margin_secs \
                 ({} s) + PaymentsConfig::max_timeout_seconds ({} s) + two {EPOCH_SECS} s \
                 challenge epochs = {needed} s: every payment would be refused as expired",
                self.capture_deadline_secs,
                terms.capture_deadline_seconds,
                terms.expiry_margin_seconds,
                self.max_timeout_seconds,
            ));
        }
        if self.max_timeout_seconds <= terms.expiry_margin_seconds {
            out.push(format!(
                "PaymentsConfig::max_timeout_seconds ({} s) must exceed the operator's \
                 auto_void.expiry_margin_secs ({} s): a buyer's signature would expire before \
                 the hold could be mined",
                self.max_timeout_seconds, terms.expiry_margin_seconds
            ));
        }
        if self.refund_deadline_secs < self.capture_deadline_secs {
            out.push(format!(
                "PaymentsConfig::refund_deadline_secs ({} s) is shorter than \
                 PaymentsConfig::capture_deadline_secs ({} s)",
                self.refund_deadline_secs, self.capture_deadline_secs
            ));
        }
        out
    }

    /// `Ok` when the operator accepts what this configuration offers; otherwise every
    /// disagreement, each naming both settings ([`PaymentsConfig::mismatches`]).
    pub fn check_terms(&self, terms: &MerchantTerms) -> Result<(), TermsError> {
        let mismatches = self.mismatches(terms);
        if mismatches.is_empty() {
            Ok(())
        } else {
            Err(TermsError::Mismatch(mismatches))
        }
    }
}

fn join(addresses: &[Address]) -> String {
    addresses
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl X402Layer {
    /// A layer offering exactly what the operator accepts from this merchant
    /// ([`PaymentsConfig::from_terms`]), adjusted by `configure` (flow, `exact`, timeouts, …)
    /// and then checked against the operator's terms, so that a setting the operator would
    /// refuse at payment time fails here, at start-up.
    pub async fn from_operator(
        operator: OperatorClient,
        configure: impl FnOnce(&mut PaymentsConfig),
    ) -> Result<X402Layer, TermsError> {
        let terms = operator.terms().await?;
        let mut config = PaymentsConfig::from_terms(&terms)?;
        configure(&mut config);
        config.check_terms(&terms)?;
        Ok(X402Layer::new(operator, config))
    }

    /// Checks a layer configured by hand against what the operator accepts (call it at
    /// start-up): every disagreement is reported, naming the layer's setting and the
    /// operator's.
    pub async fn check_operator(&self) -> Result<MerchantTerms, TermsError> {
        let terms = self.operator().terms().await?;
        self.config().check_terms(&terms)?;
        Ok(terms)
    }
}
