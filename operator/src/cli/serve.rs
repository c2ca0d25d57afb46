//! `x402-escrow serve` and `x402-escrow reconcile`.
//!
//! Only `serve` signs, so only `serve` needs the gas key; `reconcile` reads the database and
//! the escrow's `paymentState` and runs without one.

use std::sync::Arc;

use alloy::primitives::Address;
use alloy::providers::Provider;
use eyre::{Context, Result, bail};
use tokio::sync::Notify;
use x402_escrow_operator::config::Config;
use x402_escrow_operator::engine::{self, Engine, FeePolicy};
use x402_escrow_operator::store::{Store, StoreOptions};
use x402_escrow_operator::verify::Verifier;
use x402_escrow_operator::{relayer, runtime};

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

/// An engine that only reads: the store and a provider checked to be on the configured chain,
/// without a signing key. [`Engine::reconcile_all`] compares the database with `paymentState`
/// of each payment's own escrow and never verifies, signs or sends, so the engine's operator
/// address (which only verification and sending consult) is left as the zero address.
async fn read_only_engine(config: &Config) -> Result<Engine> {
    let deployment = runtime::load_deployment(config)?;
    let store = Store::connect_with(
        &config.database.url,
        &StoreOptions {
            max_connections: config.database.max_connections,
            sqlite_synchronous: config.database.sqlite_synchronous,
            ..StoreOptions::default()
        },
    )
    .await
    .wrap_err("connecting to the database")?;
    store.migrate().await.wrap_err("migrating the database")?;

    let url = config
        .chain
        .rpc_url
        .parse()
        .map_err(|e| eyre::eyre!("chain.rpc_url {:?}: {e}", config.chain.rpc_url))?;
    let provider = relayer::http_provider_with_timeout(url, config.chain.rpc_timeout());
    let node_chain = provider
        .get_chain_id()
        .await
        .wrap_err_with(|| format!("connecting to {}", config.chain.rpc_url))?;
    if node_chain != config.chain.chain_id {
        bail!(
            "the node at {} is chain {node_chain}, the configuration says {}",
            config.chain.rpc_url,
            config.chain.chain_id
        );
    }

    let no_operator = Address::ZERO;
    let fees = FeePolicy {
        fee_bps: config.fees.bps,
        fee_receiver: config.fees.receiver.unwrap_or(no_operator),
    };
    let (verifier_config, engine_config) = engine::configs(
        config,
        &deployment,
        no_operator,
        fees,
        config.fees.accept_canonical_escrow,
    );
    Ok(Engine::new(
        store,
        provider.clone(),
        Verifier::new(provider, verifier_config),
        engine_config,
        Arc::new(Notify::new()),
    ))
}

/// Compares every payment in the database with the escrow's `paymentState` and prints each
/// difference; exits non-zero when there is one. Needs no signing key.
pub async fn reconcile(config: &ConfigArgs, limit: u32) -> Result<()> {
    let config = config.load()?;
    let engine = read_only_engine(&config)
        .await
        .wrap_err("opening the operator")?;
    let differences = engine.reconcile_all(limit).await?;
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
