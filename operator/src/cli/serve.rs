//! `x402-escrow serve` and `x402-escrow reconcile`.

use eyre::{Context, Result};
use x402_escrow_operator::runtime;

use super::admin::ConfigArgs;

/// Runs the operator until Ctrl-C or SIGTERM, then stops gracefully.
pub async fn serve(config: &ConfigArgs) -> Result<()> {
    let config = config.load()?;
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

/// Compares every payment in the database with the escrow's `paymentState` and prints each
/// difference; exits non-zero when there is one.
pub async fn reconcile(config: &ConfigArgs, limit: u32) -> Result<()> {
    let config = config.load()?;
    let core = runtime::open(&config)
        .await
        .wrap_err("opening the operator")?;
    let differences = core.engine.reconcile_all(limit).await?;
    if differences.is_empty() {
        println!("database == chain: no differences");
        return Ok(());
    }
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
    eyre::bail!(
        "{} difference(s) between the database and the chain",
        differences.len()
    )
}
