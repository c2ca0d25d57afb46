//! `x402-escrow pay URL`: one request through the SDK's [`BuyerClient`] — answers a 402 under
//! the spend policy (checked before signing, persisted in the ledger), prints the status, the
//! body (or its size) and the payment outcome. A policy refusal names the rule and fails.

use std::path::{Path, PathBuf};

use alloy::primitives::Address;
use alloy::signers::local::PrivateKeySigner;
use clap::Args;
use eyre::{Context, Result, bail, eyre};
use x402_escrow_bindings::Deployment;
use x402_escrow_sdk::buyer::{BuyerClient, BuyerError, PaymentOutcome, SpendLedger, SpendPolicy};
use x402_escrow_sdk::escrows::{EscrowDeployment, EscrowRegistry};

/// Options of `x402-escrow pay`.
#[derive(Debug, Clone, Args)]
pub struct PayArgs {
    /// The URL to request.
    pub url: String,
    /// The HTTP method.
    #[arg(long, short = 'X', default_value = "GET")]
    pub method: String,
    /// A request body (sent as is).
    #[arg(long, short = 'd')]
    pub data: Option<String>,
    /// Extra request headers, `"Name: value"`.
    #[arg(long = "header", short = 'H')]
    pub headers: Vec<String>,
    /// The environment variable holding the buyer's private key.
    #[arg(long, default_value = "X402_BUYER_KEY")]
    pub key_env: String,
    /// The spend policy (TOML).
    #[arg(long, default_value = "policy.toml")]
    pub policy: PathBuf,
    /// The spend ledger (JSON, created if missing).
    #[arg(long, default_value = "spend-ledger.json")]
    pub ledger: PathBuf,
    /// A non-canonical AuthCaptureEscrow to accept (our own deployments).
    #[arg(long, requires = "collector")]
    pub escrow: Option<Address>,
    /// Its ERC3009PaymentCollector.
    #[arg(long, requires = "escrow")]
    pub collector: Option<Address>,
    /// Accept the escrow and ERC-3009 collector of this deployment record (e.g.
    /// deployments/31337.json, written by `x402-escrow deploy`), instead of --escrow/--collector.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["escrow", "collector"])]
    pub deployment: Option<PathBuf>,
    /// Print at most this many bytes of the body (larger bodies: their size only).
    #[arg(long, default_value_t = 4096)]
    pub max_body: usize,
}

/// The answer to one `pay`.
#[derive(Debug)]
pub struct PayReport {
    /// The final HTTP status.
    pub status: u16,
    /// The response body.
    pub body: Vec<u8>,
    /// The payment made, if the server asked for one.
    pub payment: Option<PaymentOutcome>,
}

/// The escrow registry: the canonical deployments, plus the one named by `--deployment` (its
/// `authCaptureEscrow` and `erc3009PaymentCollector`) or by `--escrow/--collector`, which
/// becomes the default.
pub fn registry(args: &PayArgs) -> Result<EscrowRegistry> {
    let mut registry = EscrowRegistry::canonical();
    if let Some(path) = &args.deployment {
        let deployment = Deployment::load(path).map_err(|e| eyre!("--deployment: {e}"))?;
        registry.register_default(EscrowDeployment::from(&deployment));
    } else if let (Some(escrow), Some(collector)) = (args.escrow, args.collector) {
        registry.register_default(EscrowDeployment::v1_0_interface(
            "local", escrow, collector, None,
        ));
    }
    Ok(registry)
}

/// Reads the spend policy; a missing file is an error that says how to write one.
fn read_policy(path: &Path) -> Result<SpendPolicy> {
    if !path.exists() {
        bail!(
            "no spend policy at {path}: the buyer pays only what a policy allows. Start from the \
             example (caps of $1 per payment and $10 per day, any network, payee and host):\n  \
             cp operator/policy.example.toml {path}\nthen edit its [[assets]] for your chain, or \
             point --policy at another file",
            path = path.display()
        );
    }
    let text = std::fs::read_to_string(path)
        .wrap_err_with(|| format!("reading the spend policy {}", path.display()))?;
    SpendPolicy::from_toml(&text).map_err(|e| eyre!("spend policy {}: {e}", path.display()))
}

/// Loads the policy and ledger and makes the request with `signer`. Policy refusals come back
/// as `Err(BuyerError::Policy(..))` inside `Ok` so callers can tell them from setup failures.
pub async fn pay(
    args: &PayArgs,
    signer: PrivateKeySigner,
) -> Result<Result<PayReport, BuyerError>> {
    let policy = read_policy(&args.policy)?;
    let registry = registry(args)?;
    let ledger = SpendLedger::open(&args.ledger)
        .map_err(|e| eyre!("spend ledger {}: {e}", args.ledger.display()))?;
    let client =
        BuyerClient::new(reqwest::Client::new(), signer, policy, ledger).with_registry(registry);
    let method = reqwest::Method::from_bytes(args.method.to_ascii_uppercase().as_bytes())
        .map_err(|_| eyre!("--method {:?} is not an HTTP method", args.method))?;
    let mut builder = client.http().request(method, &args.url);
    for header in &args.headers {
        let (name, value) = header
            .split_once(':')
            .ok_or_else(|| eyre!("--header {header:?} is not \"Name: value\""))?;
        builder = builder.header(name.trim(), value.trim());
    }
    if let Some(data) = &args.data {
        builder = builder.body(data.clone());
    }
    let request = builder
        .build()
        .wrap_err_with(|| format!("building the request to {}", args.url))?;
    let paid = match client.send(request).await {
        Ok(paid) => paid,
        Err(e) => return Ok(Err(e)),
    };
    let status = paid.response.status().as_u16();
    let body = match paid.response.bytes().await {
        Ok(bytes) => bytes.to_vec(),
        Err(e) => return Ok(Err(BuyerError::Http(e))),
    };
    Ok(Ok(PayReport {
        status,
        body,
        payment: paid.payment,
    }))
}

/// A payment outcome, one field per line.
pub fn describe_payment(payment: &PaymentOutcome) -> Vec<String> {
    let mut lines = vec![
        format!("payment id   {}", payment.payment_id),
        format!(
            "operator id  {}",
            payment.merchant_payment_id.as_deref().unwrap_or("-")
        ),
        format!("scheme       {} on {}", payment.scheme, payment.network),
        format!("amount       {} units of {}", payment.amount, payment.asset),
        format!("payee        {}", payment.payee),
        format!(
            "hash         {}",
            payment
                .payment_hash
                .map(|h| h.to_string())
                .unwrap_or_else(|| "-".into())
        ),
        format!(
            "tx           {}",
            payment
                .transaction
                .map(|h| h.to_string())
                .unwrap_or_else(|| "-".into())
        ),
        format!("status       {}", payment.status.name()),
    ];
    if payment.void_expected {
        lines.push("note         the server failed; the hold will be voided".into());
    }
    lines
}

/// Runs `x402-escrow pay`.
pub async fn run(args: PayArgs) -> Result<()> {
    let key = std::env::var(&args.key_env)
        .map_err(|_| eyre!("set {} to the buyer's private key", args.key_env))?;
    let signer: PrivateKeySigner = key
        .trim()
        .parse()
        .map_err(|e| eyre!("{} is not a private key: {e}", args.key_env))?;
    match pay(&args, signer).await? {
        Ok(report) => {
            println!("status       {}", report.status);
            match &report.payment {
                Some(payment) => {
                    for line in describe_payment(payment) {
                        println!("{line}");
                    }
                }
                None => println!("payment      none (the server did not ask for one)"),
            }
            match std::str::from_utf8(&report.body) {
                Ok(text) if report.body.len() <= args.max_body => {
                    println!("body ({} bytes)", report.body.len());
                    println!("{text}");
                }
                _ => println!("body         {} bytes", report.body.len()),
            }
            Ok(())
        }
        Err(BuyerError::Policy(violation)) => Err(eyre!(
            "refused by the spend policy (rule `{}`): {violation}; nothing was signed",
            violation.rule()
        )),
        Err(e) => Err(eyre!("{e}")),
    }
}
