//! Merchant configuration: what is accepted (network, asset, receiver, escrow terms) and what
//! each route costs.

use std::time::Duration;

use alloy::primitives::Address;

use crate::amount::{Amount, AmountError};
use crate::escrows::EscrowRegistry;
use crate::network::Network;
use crate::schemes::auth_capture::{AssetTransferMethod, PaymentFlow};

/// The token payments are made in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssetConfig {
    /// Token contract.
    pub address: Address,
    /// EIP-712 domain name (e.g. `"USDC"` on Base Sepolia, `"USD Coin"` on Base).
    pub name: String,
    /// EIP-712 domain version (e.g. `"2"`).
    pub version: String,
    /// Token decimals (6 for USDC), used to convert `"$0.01"` prices.
    pub decimals: u8,
}

impl AssetConfig {
    /// A token with its EIP-712 domain and decimals.
    pub fn new(
        address: Address,
        name: impl Into<String>,
        version: impl Into<String>,
        decimals: u8,
    ) -> Self {
        Self {
            address,
            name: name.into(),
            version: version.into(),
            decimals,
        }
    }
}

/// When the capture of a successful request runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CaptureMode {
    /// Capture before answering (the receipt says `captured`).
    #[default]
    Sync,
    /// Answer first, capture in a background task with retries (the receipt says `authorized`).
    Queued,
}

/// Settings shared by every paid route of a merchant.
#[derive(Debug, Clone)]
pub struct PaymentsConfig {
    /// Network payments are made on.
    pub network: Network,
    /// The token.
    pub asset: AssetConfig,
    /// The merchant's receiver (`payTo`).
    pub pay_to: Address,
    /// The operator's signer (`extra.captureAuthorizer`).
    pub capture_authorizer: Address,
    /// The operator's signer lanes (`MerchantTerms::capture_authorizers`): each challenge names
    /// the next of them as `captureAuthorizer`, in turn, so that payments spread over the lanes,
    /// and a payment naming any of them is accepted. Empty: `capture_authorizer` alone.
    pub capture_authorizers: Vec<Address>,
    /// The escrow (`extra.authCaptureEscrow`; `None`: the registry's default).
    pub escrow: Option<Address>,
    /// Escrow deployments known to this merchant (used to match v1 payments).
    pub registry: EscrowRegistry,
    /// Seconds from the challenge to `captureDeadline` (authorization expiry).
    pub capture_deadline_secs: u64,
    /// Seconds from the challenge to `refundDeadline`.
    pub refund_deadline_secs: u64,
    /// `extra.feeRecipient`.
    pub fee_recipient: Address,
    /// `extra.minFeeBps`.
    pub min_fee_bps: u16,
    /// `extra.maxFeeBps`.
    pub max_fee_bps: u16,
    /// `maxTimeoutSeconds` of every requirement.
    pub max_timeout_seconds: u64,
    /// The `auth-capture` payment flow routes offer unless they say otherwise
    /// ([`PaymentRoute::flow`]): [`PaymentFlow::Escrow`] (hold, then capture on success or void on
    /// failure; the default) or [`PaymentFlow::Authorization`] (charge at once, refund the whole
    /// amount on failure).
    pub payment_flow: PaymentFlow,
    /// The `auth-capture` transfer methods offered, one option each, in this order (default:
    /// `[Eip3009]`). Add [`AssetTransferMethod::Permit2`] for buyers whose approvals are on
    /// Permit2, or offer only it for a token without ERC-3009. The escrow must have a Permit2
    /// collector, and a Permit2 payer must have approved Permit2 for the token (the operator
    /// refuses the payment with `permit2_allowance_missing` otherwise).
    pub asset_transfer_methods: Vec<AssetTransferMethod>,
    /// Also offer the (non-refundable) `exact` scheme. An `exact` payment is verified before the
    /// handler runs and settled (`transferWithAuthorization`) only when it succeeds.
    pub offer_exact: bool,
    /// Sync or queued capture.
    pub capture_mode: CaptureMode,
    /// Longest the handler may run before the payment is voided and 504 answered.
    pub handler_timeout: Duration,
    /// Seconds the operator may wait for the hold (`None`: its default).
    pub authorize_wait_secs: Option<u64>,
    /// Advertise the `payment-identifier` extension as required.
    pub payment_identifier_required: bool,
    /// Public base URL (`https://api.example.com`) for `resource.url`; `None`: from `Host`.
    pub public_base_url: Option<String>,
}

impl PaymentsConfig {
    /// Settings with defaults that agree with the operator's: a `captureDeadline` that leaves
    /// the operator's default capture window (1 h) and expiry margin (60 s) after the longest a
    /// buyer may take to pay ([`capture_deadline_offer_secs`](super::capture_deadline_offer_secs)),
    /// refund deadline 7 days, no fee (`feeRecipient` = zero, 0–0 bps: set them to what the
    /// operator charges, or build with [`PaymentsConfig::from_terms`]), `maxTimeoutSeconds` 300,
    /// sync capture, 30 s handler timeout, canonical escrow registry.
    pub fn new(
        network: Network,
        asset: AssetConfig,
        pay_to: Address,
        capture_authorizer: Address,
    ) -> Self {
        Self {
            network,
            asset,
            pay_to,
            capture_authorizer,
            capture_authorizers: Vec::new(),
            escrow: None,
            registry: EscrowRegistry::canonical(),
            capture_deadline_secs: super::terms::capture_deadline_offer_secs(
                super::terms::DEFAULT_CAPTURE_DEADLINE_SECS,
                super::terms::DEFAULT_EXPIRY_MARGIN_SECS,
                super::terms::DEFAULT_MAX_TIMEOUT_SECS,
            ),
            refund_deadline_secs: 7 * 86_400,
            fee_recipient: Address::ZERO,
            min_fee_bps: 0,
            max_fee_bps: 0,
            max_timeout_seconds: super::terms::DEFAULT_MAX_TIMEOUT_SECS,
            payment_flow: PaymentFlow::Escrow,
            asset_transfer_methods: vec![AssetTransferMethod::Eip3009],
            offer_exact: false,
            capture_mode: CaptureMode::Sync,
            handler_timeout: Duration::from_secs(30),
            authorize_wait_secs: None,
            payment_identifier_required: false,
            public_base_url: None,
        }
    }
}

/// Turns of [`PaymentsConfig::next_authorizer`] (process-wide: one counter spreads every
/// layer's challenges over the lanes).
static NEXT_AUTHORIZER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl PaymentsConfig {
    /// Every `captureAuthorizer` a payment may name: the lanes, else `capture_authorizer`.
    pub fn authorizers(&self) -> Vec<Address> {
        if self.capture_authorizers.is_empty() {
            vec![self.capture_authorizer]
        } else {
            self.capture_authorizers.clone()
        }
    }

    /// The `captureAuthorizer` the next challenge names: the lanes in turn.
    pub fn next_authorizer(&self) -> Address {
        match self.capture_authorizers.len() {
            0 => self.capture_authorizer,
            n => {
                let turn = NEXT_AUTHORIZER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.capture_authorizers[turn % n]
            }
        }
    }
}

/// A price: atomic token units or a decimal/dollar string converted with the asset's decimals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Price {
    /// Atomic units.
    Atomic(Amount),
    /// `"$0.01"` or `"0.01"` in whole tokens.
    Decimal(String),
}

impl Price {
    /// `"0.01"` / `"$0.01"` (USD stablecoins: dollars).
    pub fn usd(price: impl Into<String>) -> Self {
        Self::Decimal(price.into())
    }

    /// Atomic units.
    pub fn atomic(units: u128) -> Self {
        Self::Atomic(Amount::from(units))
    }

    /// The amount in atomic units for a token with `decimals`.
    pub fn resolve(&self, decimals: u8) -> Result<Amount, AmountError> {
        match self {
            Self::Atomic(amount) => Ok(*amount),
            Self::Decimal(text) => Amount::from_price(text, decimals),
        }
    }
}

impl From<&str> for Price {
    fn from(text: &str) -> Self {
        Self::Decimal(text.to_owned())
    }
}

/// What one route costs and how it is described.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRoute {
    /// The price.
    pub price: Price,
    /// `resource.description`.
    pub description: Option<String>,
    /// `resource.mimeType`.
    pub mime_type: Option<String>,
    /// The `auth-capture` payment flow of this route (`None`: [`PaymentsConfig::payment_flow`]).
    pub flow: Option<PaymentFlow>,
    /// Latency mode and its amount cap (`None`: off, the default). See
    /// [`latency_mode`](Self::latency_mode).
    pub latency_cap: Option<Price>,
    /// Whether the price is a maximum and the handler's [`MeteredPrice`](super::MeteredPrice)
    /// decides what is captured. See [`metered`](Self::metered).
    pub metered: bool,
}

impl PaymentRoute {
    /// A route costing `price`.
    pub fn new(price: impl Into<Price>) -> Self {
        Self {
            price: price.into(),
            description: None,
            mime_type: None,
            flow: None,
            latency_cap: None,
            metered: false,
        }
    }

    /// Sets the description.
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = Some(text.into());
        self
    }

    /// Sets the MIME type.
    pub fn mime_type(mut self, mime: impl Into<String>) -> Self {
        self.mime_type = Some(mime.into());
        self
    }

    /// Sets the `auth-capture` payment flow of this route (overrides
    /// [`PaymentsConfig::payment_flow`]).
    pub fn flow(mut self, flow: PaymentFlow) -> Self {
        self.flow = Some(flow);
        self
    }

    /// Turns on latency mode for payments of at most `cap` (off by default).
    ///
    /// In latency mode the layer asks the operator for the hold without waiting for it
    /// (`wait=0`: the operator answers once verification and the `eth_call` simulation passed
    /// and the transaction is queued), and runs the handler while the hold is on its way to the
    /// chain. The handler's response is released only once the hold is final: `authorized` → as
    /// usual (2xx captures, anything else voids, receipt attached); a hold that fails → the
    /// response is dropped and the buyer gets the 402 challenge again with `error`
    /// `hold_failed: …` (nothing was held, so nothing is captured). A payment the operator refuses
    /// at verification never reaches the handler. The handler sees
    /// [`PaymentContext::hold_final`](super::PaymentContext::hold_final) `false`.
    ///
    /// What it buys: the latency the payment adds is about `max(handler, authorize)` instead of
    /// their sum. What it risks: the handler's work is done before the money is held, and a
    /// hold that fails after passing simulation (the payer moved the funds, a reorg, an outage)
    /// wastes that work. The cap bounds what one such request can cost: a payment above it takes
    /// the normal path (hold first, then the handler). A cap that does not convert with the
    /// asset's decimals leaves every payment on the normal path (logged as an error).
    pub fn latency_mode(mut self, cap: impl Into<Price>) -> Self {
        self.latency_cap = Some(cap.into());
        self
    }

    /// Makes the route metered (pay for what you use): the price becomes the most the buyer
    /// authorizes ("up to"), the handler sets the actual price after the work with a
    /// [`MeteredPrice`](super::MeteredPrice) response extension, and the layer captures exactly
    /// that and releases the rest in the same step — refundable like any capture, and never
    /// more than the buyer signed. `exact` is not offered on a metered route (a transfer cannot
    /// give anything back).
    pub fn metered(mut self) -> Self {
        self.metered = true;
        self
    }

    /// Whether a payment of `amount` runs in latency mode on this route (`decimals`: the
    /// asset's, to convert the cap): latency mode is on and `amount` is at most the cap.
    pub fn latency_mode_for(&self, amount: Amount, decimals: u8) -> bool {
        let Some(cap) = &self.latency_cap else {
            return false;
        };
        match cap.resolve(decimals) {
            Ok(cap) => amount <= cap,
            Err(error) => {
                tracing::error!(%error, ?cap, "latency-mode cap does not convert; normal path");
                false
            }
        }
    }

    /// The flow this route offers under `config`.
    pub fn effective_flow(&self, config: &PaymentsConfig) -> PaymentFlow {
        self.flow.unwrap_or(config.payment_flow)
    }
}

impl From<Price> for PaymentRoute {
    fn from(price: Price) -> Self {
        Self::new(price)
    }
}

impl From<&str> for PaymentRoute {
    fn from(price: &str) -> Self {
        Self::new(price)
    }
}
