//! The gateway's settings: its command line ([`GatewayArgs`]) and the payment settings built
//! from the operator's terms with the command line's overrides.

use std::time::Duration;

use alloy::primitives::Address;
use clap::Args;
use x402_escrow_sdk::escrows::{EscrowDeployment, EscrowRegistry};
use x402_escrow_sdk::merchant::{
    AssetConfig, MerchantTerms, OperatorClient, PaymentFlow, PaymentsConfig,
};
use x402_escrow_sdk::schemes::auth_capture::AssetTransferMethod;

use crate::GatewayError;

/// Options of `x402-escrow gateway`.
#[derive(Debug, Clone, Args)]
pub struct GatewayArgs {
    /// The API to put behind payments (`http://127.0.0.1:3000`; a path prefix is kept).
    #[arg(long)]
    pub upstream: String,
    /// A paid route: `"METHOD /path=PRICE"`, the price in dollars (`$0.01`) or token units
    /// (`0.01`); single-quote it in a shell (`'GET /w=$0.01'`: `$0` expands in double quotes).
    /// Repeat for more routes; other requests pass through free. `=max:PRICE` makes a metered
    /// route: the buyer authorizes up to PRICE, the upstream answers with an
    /// `X-402-Metered-Price` header (atomic units, stripped before the buyer sees it) and the
    /// gateway captures exactly that and releases the rest.
    #[arg(long = "route", required = true)]
    pub routes: Vec<String>,
    /// The operator's HTTP API. Everything not given below (network, token, escrow,
    /// `captureAuthorizer`, fee, time windows, `payTo`) is read from it (`GET /v1/merchant`), so
    /// what the gateway offers is what the operator accepts.
    #[arg(long, env = "X402_OPERATOR_URL")]
    pub operator: String,
    /// The merchant's operator API key.
    #[arg(long, env = "X402_API_KEY", hide_env_values = true)]
    pub api_key: String,
    /// The x402 `auth-capture` payment flow: `escrow` (hold, capture on a 2xx, void otherwise)
    /// or `authorization` (charge before forwarding, refund the whole amount unless 2xx).
    #[arg(long, value_enum, default_value_t = FlowArg::Escrow)]
    pub flow: FlowArg,
    /// How buyers may authorize the token pull, one `accepts` entry each, in this order:
    /// `eip3009` (ERC-3009, the default) and/or `permit2` (any ERC-20 the buyer approved
    /// Permit2 for; the escrow must have a Permit2 collector). Repeat the flag for both.
    #[arg(long = "transfer-method", value_enum, default_values_t = [TransferMethodArg::Eip3009])]
    pub transfer_methods: Vec<TransferMethodArg>,
    /// Also offer the (non-refundable) `exact` scheme: verified before forwarding, settled only
    /// after a 2xx.
    #[arg(long)]
    pub offer_exact: bool,
    /// How long to wait for the operator at start-up (seconds).
    #[arg(long, default_value_t = 30)]
    pub operator_wait_secs: u64,
    /// Override: network, CAIP-2 (`eip155:8453`) or v1 name (`base`); must be the operator's.
    #[arg(long)]
    pub network: Option<String>,
    /// Override: the token address (one the operator accepts).
    #[arg(long)]
    pub asset: Option<Address>,
    /// Override: the token's EIP-712 name (`USDC`).
    #[arg(long)]
    pub asset_name: Option<String>,
    /// Override: the token's EIP-712 version (`2`).
    #[arg(long)]
    pub asset_version: Option<String>,
    /// Override: the token's decimals.
    #[arg(long)]
    pub decimals: Option<u8>,
    /// Override: the merchant's receiver (default: its first registered receiver).
    #[arg(long)]
    pub pay_to: Option<Address>,
    /// Override: the operator's signer (`captureAuthorizer`).
    #[arg(long)]
    pub capture_authorizer: Option<Address>,
    /// Override: the AuthCaptureEscrow (default: the operator's first).
    #[arg(long)]
    pub escrow: Option<Address>,
    /// Override: the escrow's ERC3009PaymentCollector (with `--escrow`, when the operator does
    /// not list it).
    #[arg(long, requires = "escrow")]
    pub collector: Option<Address>,
    /// Override: `extra.feeRecipient` (default: the operator's).
    #[arg(long)]
    pub fee_recipient: Option<Address>,
    /// Override: `extra.maxFeeBps` (default: the operator's fee).
    #[arg(long)]
    pub max_fee_bps: Option<u16>,
    /// Override: `maxTimeoutSeconds` of the requirements (the buyer's signature lives this
    /// long; it must exceed the operator's `auto_void.expiry_margin_secs`).
    #[arg(long)]
    pub max_timeout_secs: Option<u64>,
    /// Latency mode for every route priced at most this (`$0.05` or `0.05`; off by default):
    /// the request is forwarded while the hold is on its way to the chain, and the upstream's
    /// response is released only once the hold is final (a hold that fails withholds it: 402
    /// `hold_failed`). The upstream's work is done before the money is held; routes priced above
    /// the cap hold first, as without it.
    #[arg(long)]
    pub latency_cap: Option<String>,
    /// How long the upstream may take before the payment is voided (seconds).
    #[arg(long, default_value_t = 30)]
    pub timeout_secs: u64,
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:8403")]
    pub listen: String,
}

/// `--flow`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FlowArg {
    /// Hold, then capture on success or void on failure.
    Escrow,
    /// Charge at once, refund the whole amount on failure.
    Authorization,
}

/// `--transfer-method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TransferMethodArg {
    /// ERC-3009 `receiveWithAuthorization` (USDC and other ERC-3009 tokens).
    Eip3009,
    /// Uniswap Permit2 `permitTransferFrom`.
    Permit2,
}

impl From<TransferMethodArg> for AssetTransferMethod {
    fn from(method: TransferMethodArg) -> Self {
        match method {
            TransferMethodArg::Eip3009 => AssetTransferMethod::Eip3009,
            TransferMethodArg::Permit2 => AssetTransferMethod::Permit2,
        }
    }
}

impl From<FlowArg> for PaymentFlow {
    fn from(flow: FlowArg) -> Self {
        match flow {
            FlowArg::Escrow => PaymentFlow::Escrow,
            FlowArg::Authorization => PaymentFlow::Authorization,
        }
    }
}

/// The payment settings: what the operator accepts from this merchant (`terms`), with the
/// command line's overrides, checked against the terms (a disagreement names both settings).
pub fn payments_config(
    args: &GatewayArgs,
    terms: &MerchantTerms,
) -> Result<PaymentsConfig, GatewayError> {
    let mut config = PaymentsConfig::from_terms(terms).map_err(GatewayError::Terms)?;
    if let Some(network) = &args.network {
        config.network = network.parse().map_err(|source| GatewayError::Network {
            network: network.clone(),
            source,
        })?;
    }
    if let Some(asset) = args.asset {
        match terms.assets.iter().find(|a| a.address == asset) {
            Some(known) => {
                config.asset = AssetConfig::new(
                    known.address,
                    known.name.clone(),
                    known.version.clone(),
                    known.decimals,
                )
            }
            None => config.asset.address = asset,
        }
    }
    if let Some(name) = &args.asset_name {
        config.asset.name = name.clone();
    }
    if let Some(version) = &args.asset_version {
        config.asset.version = version.clone();
    }
    if let Some(decimals) = args.decimals {
        config.asset.decimals = decimals;
    }
    if let Some(pay_to) = args.pay_to {
        config.pay_to = pay_to;
    }
    if let Some(authorizer) = args.capture_authorizer {
        config.capture_authorizer = authorizer;
        // An explicit authorizer pins every offer to that one lane.
        config.capture_authorizers.clear();
    }
    if let Some(escrow) = args.escrow {
        config.escrow = Some(escrow);
        if let Some(collector) = args.collector {
            config.registry = EscrowRegistry::only(EscrowDeployment::v1_0_interface(
                "local", escrow, collector, None,
            ));
        } else if config.registry.get(escrow).is_none() {
            return Err(GatewayError::UnknownEscrow(escrow));
        }
    }
    if let Some(fee_recipient) = args.fee_recipient {
        config.fee_recipient = fee_recipient;
    }
    if let Some(max_fee_bps) = args.max_fee_bps {
        config.max_fee_bps = max_fee_bps;
        config.min_fee_bps = config.min_fee_bps.min(max_fee_bps);
    }
    if let Some(max_timeout) = args.max_timeout_secs {
        config.max_timeout_seconds = max_timeout;
        // The captureDeadline offered must cover the longer signing window too.
        config.capture_deadline_secs = terms.capture_deadline_offer_secs(max_timeout);
        config.refund_deadline_secs = config
            .refund_deadline_secs
            .max(config.capture_deadline_secs);
    }
    config.asset_transfer_methods = Vec::new();
    for method in &args.transfer_methods {
        let method = AssetTransferMethod::from(*method);
        if !config.asset_transfer_methods.contains(&method) {
            config.asset_transfer_methods.push(method);
        }
    }
    if config
        .asset_transfer_methods
        .contains(&AssetTransferMethod::Permit2)
    {
        let deployment = match config.escrow {
            Some(escrow) => config.registry.get(escrow),
            None => config.registry.deployments().first(),
        };
        if let Some(deployment) = deployment
            && deployment.permit2_collector.is_none()
        {
            return Err(GatewayError::NoPermit2Collector(deployment.escrow));
        }
    }
    config.payment_flow = args.flow.into();
    config.offer_exact = args.offer_exact;
    config.handler_timeout = Duration::from_secs(args.timeout_secs.max(1));
    config.check_terms(terms).map_err(GatewayError::Disagree)?;
    Ok(config)
}

/// Reads the merchant's terms, waiting up to `wait` for an operator that is still starting.
pub async fn fetch_terms(
    operator: &OperatorClient,
    wait: Duration,
) -> Result<MerchantTerms, GatewayError> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match operator.terms().await {
            Ok(terms) => return Ok(terms),
            Err(e) if e.is_transient() && tokio::time::Instant::now() < deadline => {
                tracing::info!(error = %e, "waiting for the operator");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => return Err(GatewayError::Operator(e)),
        }
    }
}
