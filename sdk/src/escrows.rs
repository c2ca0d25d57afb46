//! Known AuthCaptureEscrow deployments and their token collectors.
//!
//! The client picks the escrow from `extra.authCaptureEscrow` (absent: the registry's default,
//! the canonical v1.1 deployment as the official client does); the ERC-3009 nonce commits to
//! that escrow and `authorization.to` is its ERC-3009 collector (with Permit2,
//! `permit2Authorization.spender` is its Permit2 collector).

use alloy::primitives::{Address, address};

/// Canonical v1.0 AuthCaptureEscrow (Base, Base Sepolia; CREATE2).
pub const ESCROW_V1_0: Address = address!("0xBdEA0D1bcC5966192B070Fdf62aB4EF5b4420cff");
/// ERC3009PaymentCollector of the canonical v1.0 deployment.
pub const ERC3009_COLLECTOR_V1_0: Address = address!("0x0E3dF9510de65469C4518D7843919c0b8C7A7757");
/// Permit2PaymentCollector of the canonical v1.0 deployment.
pub const PERMIT2_COLLECTOR_V1_0: Address = address!("0x992476B9Ee81d52a5BdA0622C333938D0Af0aB26");
/// OperatorRefundCollector of the canonical v1.0 deployment.
pub const REFUND_COLLECTOR_V1_0: Address = address!("0x934907bffd0901b6A21e398B9C53A4A38F02fa5d");
/// Canonical v1.1 AuthCaptureEscrow, as the official `@x402/evm` 2.27 client knows it (its
/// default when `extra.authCaptureEscrow` is absent).
pub const ESCROW_V1_1: Address = address!("0xf96815976523E00e65Be8f34cA5e64b4f41EB19c");
/// ERC3009PaymentCollector of the canonical v1.1 deployment.
pub const ERC3009_COLLECTOR_V1_1: Address = address!("0x8612dfdc421f80336cd14E8EF9cb1E765dB5ab88");
/// OperatorRefundCollector of the canonical v1.1 deployment.
pub const REFUND_COLLECTOR_V1_1: Address = address!("0x7a03443724d14798c4AB4622F1DAAcA761Fea486");

/// The escrow's fee denominator: 10,000 basis points are 100 %.
pub const MAX_FEE_BPS: u16 = 10_000;

/// The fee of `fee_bps` on `amount` in token units, rounded down: what a v1.0 escrow takes for
/// `feeBps` (`amount * feeBps / 10_000`), and so the `feeAmount` an operator charging by rate
/// passes to a v1.1 escrow. For `fee_bps` within a payment's `[minFeeBps, maxFeeBps]` it always
/// lies within the bounds a v1.1 escrow checks (the same formula, rounded down, on `minFeeBps`
/// and `maxFeeBps`).
pub fn fee_amount(amount: u128, fee_bps: u16) -> u128 {
    // amount < 2^120 on chain; saturate rather than overflow for a larger value.
    amount.saturating_mul(u128::from(fee_bps)) / u128::from(MAX_FEE_BPS)
}

/// Permit2PaymentCollector of the canonical v1.1 deployment (as `@x402/evm` 2.27 knows it).
pub const PERMIT2_COLLECTOR_V1_1: Address = address!("0xD69831Aed5bfe262067ec4c751f4F830EcdD446e");

/// How an escrow's `capture` and `charge` take the fee.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FeeArgument {
    /// `uint16 feeBps` (the v1.0 interface, which ours implements).
    Bps,
    /// `uint256 feeAmount` in atomic units (v1.1).
    Amount,
}

impl From<x402_escrow_bindings::EscrowVersion> for FeeArgument {
    fn from(version: x402_escrow_bindings::EscrowVersion) -> Self {
        match version {
            x402_escrow_bindings::EscrowVersion::V1_0 => FeeArgument::Bps,
            x402_escrow_bindings::EscrowVersion::V1_1 => FeeArgument::Amount,
        }
    }
}

/// One escrow deployment.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EscrowDeployment {
    /// A short label for logs (`"canonical v1.0"`, `"local"`).
    pub label: String,
    /// The AuthCaptureEscrow.
    pub escrow: Address,
    /// Its ERC3009PaymentCollector (`authorization.to`).
    pub erc3009_collector: Address,
    /// Its OperatorRefundCollector, when known.
    pub refund_collector: Option<Address>,
    /// Its Permit2PaymentCollector (`permit2Authorization.spender`); `None` where the
    /// deployment has none, and Permit2 payments for it are refused.
    pub permit2_collector: Option<Address>,
    /// How its `capture` / `charge` take the fee.
    pub fee_argument: FeeArgument,
}

impl EscrowDeployment {
    /// A deployment with the v1.0 interface (ours): fee in basis points.
    pub fn v1_0_interface(
        label: impl Into<String>,
        escrow: Address,
        erc3009_collector: Address,
        refund_collector: Option<Address>,
    ) -> Self {
        Self {
            label: label.into(),
            escrow,
            erc3009_collector,
            refund_collector,
            permit2_collector: None,
            fee_argument: FeeArgument::Bps,
        }
    }

    /// The same deployment with `collector` as its Permit2 collector (or none).
    pub fn with_permit2_collector(mut self, collector: Option<Address>) -> Self {
        self.permit2_collector = collector;
        self
    }

    /// The canonical v1.0 deployment.
    pub fn canonical_v1_0() -> Self {
        Self::v1_0_interface(
            "canonical v1.0",
            ESCROW_V1_0,
            ERC3009_COLLECTOR_V1_0,
            Some(REFUND_COLLECTOR_V1_0),
        )
        .with_permit2_collector(Some(PERMIT2_COLLECTOR_V1_0))
    }

    /// The canonical v1.1 deployment.
    pub fn canonical_v1_1() -> Self {
        Self {
            label: "canonical v1.1".to_owned(),
            escrow: ESCROW_V1_1,
            erc3009_collector: ERC3009_COLLECTOR_V1_1,
            refund_collector: Some(REFUND_COLLECTOR_V1_1),
            permit2_collector: Some(PERMIT2_COLLECTOR_V1_1),
            fee_argument: FeeArgument::Amount,
        }
    }
}

impl From<&x402_escrow_bindings::Deployment> for EscrowDeployment {
    /// A deployment from its `deployments/<chainId>.json` record; the record's `version` says
    /// how its `capture` / `charge` take the fee.
    fn from(deployment: &x402_escrow_bindings::Deployment) -> Self {
        Self {
            label: format!("x402-escrow (chain {})", deployment.chain_id),
            escrow: deployment.auth_capture_escrow,
            erc3009_collector: deployment.erc3009_payment_collector,
            refund_collector: Some(deployment.operator_refund_collector),
            permit2_collector: deployment.permit2_payment_collector,
            fee_argument: deployment.version.into(),
        }
    }
}

/// `extra.authCaptureEscrow` names an escrow the registry does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("escrow {0} is not a known AuthCaptureEscrow deployment")]
pub struct UnknownEscrow(pub Address);

/// The escrow deployments a client will sign for and an operator will accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscrowRegistry {
    deployments: Vec<EscrowDeployment>,
    default_escrow: Address,
}

impl Default for EscrowRegistry {
    fn default() -> Self {
        Self::canonical()
    }
}

impl EscrowRegistry {
    /// The canonical v1.0 and v1.1 deployments, v1.1 the default (as the official client).
    pub fn canonical() -> Self {
        Self {
            deployments: vec![
                EscrowDeployment::canonical_v1_0(),
                EscrowDeployment::canonical_v1_1(),
            ],
            default_escrow: ESCROW_V1_1,
        }
    }

    /// A registry holding only `deployment`, which is also the default (a private deployment,
    /// e.g. on anvil, that should not accept canonical escrows).
    pub fn only(deployment: EscrowDeployment) -> Self {
        let default_escrow = deployment.escrow;
        Self {
            deployments: vec![deployment],
            default_escrow,
        }
    }

    /// Adds (or replaces, by escrow address) a deployment.
    pub fn register(&mut self, deployment: EscrowDeployment) -> &mut Self {
        self.deployments.retain(|d| d.escrow != deployment.escrow);
        self.deployments.push(deployment);
        self
    }

    /// Adds a deployment and makes it the default for requirements without
    /// `extra.authCaptureEscrow`.
    pub fn register_default(&mut self, deployment: EscrowDeployment) -> &mut Self {
        self.default_escrow = deployment.escrow;
        self.register(deployment)
    }

    /// The deployment of `escrow`.
    pub fn get(&self, escrow: Address) -> Option<&EscrowDeployment> {
        self.deployments.iter().find(|d| d.escrow == escrow)
    }

    /// The default deployment (used when `extra.authCaptureEscrow` is absent).
    pub fn default_deployment(&self) -> Option<&EscrowDeployment> {
        self.get(self.default_escrow)
    }

    /// Resolves `extra.authCaptureEscrow`: the named deployment, or the default when absent.
    pub fn resolve(&self, escrow: Option<Address>) -> Result<&EscrowDeployment, UnknownEscrow> {
        let escrow = escrow.unwrap_or(self.default_escrow);
        self.get(escrow).ok_or(UnknownEscrow(escrow))
    }

    /// All deployments.
    pub fn deployments(&self) -> &[EscrowDeployment] {
        &self.deployments
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve() {
        let mut registry = EscrowRegistry::canonical();
        assert_eq!(
            registry.resolve(None).map(|d| d.erc3009_collector),
            Ok(ERC3009_COLLECTOR_V1_1)
        );
        assert_eq!(
            registry
                .resolve(Some(ESCROW_V1_0))
                .map(|d| d.erc3009_collector),
            Ok(ERC3009_COLLECTOR_V1_0)
        );
        let local = Address::repeat_byte(7);
        // A v1.0-interface deployment at `local` with the collector `repeat_byte(collector)`.
        let local_with_collector = |collector: u8| {
            EscrowDeployment::v1_0_interface("local", local, Address::repeat_byte(collector), None)
        };
        assert_eq!(registry.resolve(Some(local)), Err(UnknownEscrow(local)));
        registry.register(local_with_collector(8));
        assert_eq!(
            registry.resolve(Some(local)).map(|d| d.erc3009_collector),
            Ok(Address::repeat_byte(8))
        );
        assert_eq!(registry.resolve(None).map(|d| d.escrow), Ok(ESCROW_V1_1));
        registry.register_default(local_with_collector(9));
        assert_eq!(
            registry.resolve(None).map(|d| d.erc3009_collector),
            Ok(Address::repeat_byte(9))
        );
        assert_eq!(registry.deployments().len(), 3);
    }

    #[test]
    fn fee_amount_rounds_down_like_the_escrow() {
        assert_eq!(fee_amount(100_000_000, 100), 1_000_000);
        // 199 units at 1 % is 1.99: the escrow keeps 1.
        assert_eq!(fee_amount(199, 100), 1);
        assert_eq!(fee_amount(99, 100), 0);
        assert_eq!(fee_amount(5, MAX_FEE_BPS), 5);
        assert_eq!(fee_amount(7, 0), 0);
    }

    #[test]
    fn a_record_s_version_decides_the_fee_argument() {
        let mut record = x402_escrow_bindings::Deployment {
            chain_id: 31337,
            version: x402_escrow_bindings::EscrowVersion::V1_0,
            auth_capture_escrow: Address::repeat_byte(1),
            batch_calls: false,
            token_store_implementation: None,
            erc3009_payment_collector: Address::repeat_byte(2),
            pre_approval_payment_collector: None,
            operator_refund_collector: Address::repeat_byte(3),
            permit2_payment_collector: None,
            multicall3: Address::repeat_byte(4),
            batch_executor: None,
            token: None,
        };
        assert_eq!(
            EscrowDeployment::from(&record).fee_argument,
            FeeArgument::Bps
        );
        record.version = x402_escrow_bindings::EscrowVersion::V1_1;
        let d = EscrowDeployment::from(&record);
        assert_eq!(d.fee_argument, FeeArgument::Amount);
        assert_eq!(d.erc3009_collector, Address::repeat_byte(2));
    }
}
