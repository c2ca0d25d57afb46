//! `x402-escrow serve` and `x402-escrow reconcile`.
//!
//! Only `serve` signs, so only `serve` needs the gas key; `reconcile` reads the database and
//! the escrow's `paymentState` and runs without one.

use eyre::{Context, Result, bail};
use x402_escrow_operator::runtime;

use super::admin::ConfigArgs;

/// What `serve` says when no signing key is configured.
pub const NO_SIGNER_KEY: &str = "serve signs transactions and needs the operator's gas key: set \
     X402_SIGNER_KEY to a hex private key, or name an encrypted keystore with signer.keystore in \
     the config file (or X402_KEYSTORE) and put its password in X402_KEYSTORE_PASSWORD";

/// Runs the operator until Ctrl-C or SIGTERM, then stops gracefully.
pub async fn serve(config: &ConfigArgs) -> Result<()> {
    let config = config.load()?;
    if config
        .signer
        .source()
        .wrap_err("loading the signing key")?
        .is_none()
    {
        bail!(NO_SIGNER_KEY);
    }
    let operator = runtime::start(config)
        .await
        .wrap_err("starting the operator")?;
    println!(
        "x402-escrow operator listening on http://{} (signer {}, escrow {})",
        operator.address, operator.signer, operator.deployment.auth_capture_escrow
    );
    x402_escrow_operator::api::shutdown_signal().await;
    println!("shutting down");
    operator.shutdown().await;
    Ok(())
}

/// Compares every payment in the database with the escrow's `paymentState`, and the refund
/// reserve's ledger with itself and the chain (deposits against their `Transfer` logs, the
/// reserves' total against the refund account's balance); prints each difference and finding;
/// exits non-zero when there is one. Needs no signing key (without one, and without
/// `--refund-account`, the reserve is checked against its own ledger only).
pub async fn reconcile(
    config: &ConfigArgs,
    limit: u32,
    refund_account: Option<alloy::primitives::Address>,
) -> Result<()> {
    let config = config.load()?;
    let engine = runtime::open_read_only(&config)
        .await
        .wrap_err("opening the operator")?;
    let refund_account = match refund_account {
        Some(account) => Some(account),
        None => match config.signer.source() {
            Ok(Some(_)) => Some(
                runtime::load_signer(&config)
                    .wrap_err("loading the signing key")?
                    .address(),
            ),
            _ => None,
        },
    };
    let differences = engine.reconcile_all(limit).await?;
    let findings = engine.reconcile_reserve(refund_account).await?;
    if differences.is_empty() && findings.is_empty() {
        println!("database == chain: no differences");
        if refund_account.is_none() {
            println!(
                "(refund reserve checked against its ledger only: no --refund-account and no signing key)"
            );
        }
        return Ok(());
    }
    if !differences.is_empty() {
        println!(
            "{:<36}  {:<14}  {:<20}  chain",
            "payment", "field", "database"
        );
        for d in &differences {
            println!(
                "{:<36}  {:<14}  {:<20}  {}",
                d.payment_id, d.field, d.database, d.chain
            );
        }
    }
    for f in &findings {
        println!(
            "reserve {:<22}  merchant {}  asset {:#x}  database {}  chain {}",
            f.check,
            f.merchant_id.map_or("-".into(), |m| m.to_string()),
            f.asset,
            f.database,
            f.chain
        );
    }
    eyre::bail!(
        "{} difference(s) and {} reserve finding(s) between the database and the chain",
        differences.len(),
        findings.len()
    )
}
