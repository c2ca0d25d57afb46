//! `x402-escrow pay URL`: one request through the SDK's
//! [`BuyerClient`](x402_escrow_sdk::BuyerClient) — answers a 402 under the spend policy (checked
//! before signing, persisted in the ledger), prints the status, the body (or its size) and the
//! payment outcome. A policy refusal names the rule and fails.
#![warn(missing_docs)]

use std::path::{Path, PathBuf};

use alloy::primitives::{Address, B256};
use alloy::signers::local::PrivateKeySigner;
use clap::Args;
use x402_escrow_bindings::Deployment;
use x402_escrow_sdk::buyer::{BuyerClient, BuyerError, PaymentOutcome, SpendLedger, SpendPolicy};
use x402_escrow_sdk::escrows::{EscrowDeployment, EscrowRegistry};

/// A boxed error source.
type Source = Box<dyn std::error::Error + Send + Sync>;

/// Why `pay` could not make its request (large sources boxed).
#[derive(Debug, thiserror::Error)]
pub enum PayError {
    /// `--deployment` could not be read.
    #[error("--deployment")]
    Deployment(#[source] Box<x402_escrow_bindings::deploy::DeploymentsError>),
    /// No spend policy file.
    #[error(
        "no spend policy at {path}: the buyer pays only what a policy allows. Start from the \
         example (caps of $1 per payment and $10 per day, any network, payee and host):\n  \
         cp operator/policy.example.toml {path}\nthen edit its [[assets]] for your chain, or \
         point --policy at another file",
        path = .0.display()
    )]
    NoPolicy(PathBuf),
    /// The spend policy file could not be read.
    #[error("reading the spend policy {}", path.display())]
    ReadPolicy {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The spend policy does not parse.
    #[error("spend policy {}", path.display())]
    Policy {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: Source,
    },
    /// The spend ledger could not be opened.
    #[error("spend ledger {}", path.display())]
    Ledger {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: Source,
    },
    /// `--method` is not an HTTP method.
    #[error("--method {0:?} is not an HTTP method")]
    Method(String),
    /// A `--header` is not `Name: value`.
    #[error("--header {0:?} is not \"Name: value\"")]
    Header(String),
    /// The request could not be built.
    #[error("building the request to {url}")]
    Request {
        /// The URL.
        url: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// The key variable is not set.
    #[error("set {0} to the buyer's private key")]
    NoKey(String),
    /// The key variable holds no private key.
    #[error("{env} is not a private key")]
    Key {
        /// The variable.
        env: String,
        /// Why.
        #[source]
        source: Source,
    },
    /// The spend policy refused the payment (nothing was signed).
    #[error("refused by the spend policy (rule `{rule}`): {violation}; nothing was signed")]
    Refused {
        /// The rule.
        rule: String,
        /// The refusal.
        violation: String,
    },
    /// The buyer failed.
    #[error(transparent)]
    Buyer(Box<BuyerError>),
}

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
pub fn registry(args: &PayArgs) -> Result<EscrowRegistry, PayError> {
    let mut registry = EscrowRegistry::canonical();
    if let Some(path) = &args.deployment {
        let deployment = Deployment::load(path).map_err(|e| PayError::Deployment(Box::new(e)))?;
        registry.register_default(EscrowDeployment::from(&deployment));
    } else if let (Some(escrow), Some(collector)) = (args.escrow, args.collector) {
        registry.register_default(EscrowDeployment::v1_0_interface(
            "local", escrow, collector, None,
        ));
    }
    Ok(registry)
}

/// Reads the spend policy; a missing file is an error that says how to write one.
fn read_policy(path: &Path) -> Result<SpendPolicy, PayError> {
    if !path.exists() {
        return Err(PayError::NoPolicy(path.to_path_buf()));
    }
    let text = std::fs::read_to_string(path).map_err(|source| PayError::ReadPolicy {
        path: path.to_path_buf(),
        source,
    })?;
    SpendPolicy::from_toml(&text).map_err(|e| PayError::Policy {
        path: path.to_path_buf(),
        source: Box::new(e),
    })
}

/// Loads the policy and ledger and makes the request with `signer`. Policy refusals come back
/// as `Err(BuyerError::Policy(..))` inside `Ok` so callers can tell them from setup failures.
pub async fn pay(
    args: &PayArgs,
    signer: PrivateKeySigner,
) -> Result<Result<PayReport, BuyerError>, PayError> {
    let policy = read_policy(&args.policy)?;
    let registry = registry(args)?;
    let ledger = SpendLedger::open(&args.ledger).map_err(|e| PayError::Ledger {
        path: args.ledger.clone(),
        source: Box::new(e),
    })?;
    let client =
        BuyerClient::new(reqwest::Client::new(), signer, policy, ledger).with_registry(registry);
    let method = reqwest::Method::from_bytes(args.method.to_ascii_uppercase().as_bytes())
        .map_err(|_| PayError::Method(args.method.clone()))?;
    let mut builder = client.http().request(method, &args.url);
    for header in &args.headers {
        let (name, value) = header
            .split_once(':')
            .ok_or_else(|| PayError::Header(header.clone()))?;
        builder = builder.header(name.trim(), value.trim());
    }
    if let Some(data) = &args.data {
        builder = builder.body(data.clone());
    }
    let request = builder.build().map_err(|source| PayError::Request {
        url: args.url.clone(),
        source,
    })?;
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

/// A hash, or `-` when there is none.
fn or_dash(hash: Option<B256>) -> String {
    hash.map_or_else(|| "-".into(), |h| h.to_string())
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
        format!("hash         {}", or_dash(payment.payment_hash)),
        format!("tx           {}", or_dash(payment.transaction)),
        format!("status       {}", payment.status.name()),
    ];
    if payment.void_expected {
        lines.push("note         the server failed; the hold will be voided".into());
    }
    lines
}

/// Runs `x402-escrow pay`.
pub async fn run(args: PayArgs) -> Result<(), PayError> {
    let key = std::env::var(&args.key_env).map_err(|_| PayError::NoKey(args.key_env.clone()))?;
    let signer: PrivateKeySigner = key.trim().parse().map_err(|e| PayError::Key {
        env: args.key_env.clone(),
        source: Box::new(e),
    })?;
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
        Err(BuyerError::Policy(violation)) => Err(PayError::Refused {
            rule: violation.rule().to_owned(),
            violation: violation.to_string(),
        }),
        Err(e) => Err(PayError::Buyer(Box::new(e))),
    }
}
