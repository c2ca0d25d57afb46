//! `script/Deploy.s.sol` (run by the pinned forge, deploy profile) and the Rust deployer put the
//! contracts at the same addresses: the ones `predict_addresses` computes. Both a development
//! chain (anvil's 31337: own Multicall3 + TestUSDC, default salt, no Permit2 so no Permit2
//! collector) and a non-development chain (public Multicall3 and Permit2 present, so the Permit2
//! collector is deployed; no test token, salt from `DEPLOY_SALT`).

use std::path::{Path, PathBuf};

use alloy::node_bindings::{Anvil, AnvilInstance};
use alloy::primitives::{Address, B256, keccak256};
use alloy::providers::ext::AnvilApi;
use alloy::providers::{Provider, ProviderBuilder};
use eyre::{Result, ensure};
use x402_escrow_bindings::contracts::{WORKSPACE_ROOT, anvil_path};
use x402_escrow_bindings::deploy::{ANVIL_CHAIN_ID, DEFAULT_SALT, MULTICALL3};
use x402_escrow_bindings::{Deployment, Multicall3, deploy_all, predict_addresses};
use x402_escrow_testkit::{deploy_script, install_permit2};

/// Removes the script's output file however the test ends.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs the deploy script against `anvil` with key 0 and returns the record it wrote.
fn run_script(anvil: &AnvilInstance, salt: Option<B256>) -> Result<Deployment> {
    // Under ./deployments (the script's only writable path), ignored by git and by
    // `Deployments::load_dir`, unique per chain and test process.
    let record = format!("{}.parity-{}.json", anvil.chain_id(), std::process::id());
    let output = RemoveOnDrop(Path::new(WORKSPACE_ROOT).join("deployments").join(&record));
    let mut command = deploy_script(anvil, &record, "forge-bindings-script");
    if let Some(salt) = salt {
        command.env("DEPLOY_SALT", salt.to_string());
    }
    let run = command.output()?;
    ensure!(
        run.status.success(),
        "forge script failed ({}):\n--- stdout ---\n{}\n--- stderr ---\n{}",
        run.status,
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    Ok(Deployment::load(&output.0)?)
}

/// `deploy_all` on a chain the script already deployed to: same record, no transaction.
async fn assert_rust_deployer_agrees(
    anvil: &AnvilInstance,
    deployer: Address,
    salt: B256,
    dev: bool,
    written: &Deployment,
) -> Result<()> {
    let provider = ProviderBuilder::new().connect_http(anvil.endpoint_url());
    let nonce = provider.get_transaction_count(deployer).await?;
    let deployed = deploy_all(&provider, deployer, salt, dev).await?;
    assert_eq!(&deployed, written);
    assert_eq!(
        provider.get_transaction_count(deployer).await?,
        nonce,
        "nothing sent"
    );
    Ok(())
}

// One test, two scenarios in sequence: both compile into the same forge out directory.
#[tokio::test]
async fn forge_script_deploys_the_predicted_addresses() -> Result<()> {
    // Development chain: default salt, our Multicall3 (a fresh anvil has none), TestUSDC.
    let anvil = Anvil::at(anvil_path()).try_spawn()?;
    let deployer = anvil.addresses()[0];
    let written = run_script(&anvil, None)?;
    let predicted =
        predict_addresses(DEFAULT_SALT, deployer, true, true).to_deployment(ANVIL_CHAIN_ID);
    assert_eq!(
        written, predicted,
        "dev: the script's record differs from predict_addresses"
    );
    assert_eq!(written.permit2_payment_collector, None, "no Permit2 here");
    assert_rust_deployer_agrees(&anvil, deployer, DEFAULT_SALT, true, &written).await?;
    drop(anvil);

    // Non-development chain with the public Multicall3: no test token, salt from DEPLOY_SALT.
    let chain_id = 31_338;
    let anvil = Anvil::at(anvil_path()).chain_id(chain_id).try_spawn()?;
    let provider = ProviderBuilder::new().connect_http(anvil.endpoint_url());
    provider
        .anvil_set_code(MULTICALL3, Multicall3::DEPLOYED_BYTECODE.clone())
        .await?;
    install_permit2(&provider.clone().erased()).await?;
    let salt = keccak256("x402-escrow bindings parity test");
    let deployer = anvil.addresses()[0];
    let written = run_script(&anvil, Some(salt))?;
    let predicted =
        predict_addresses(salt, deployer, false, false).to_deployment_on(chain_id, true);
    assert_eq!(
        written, predicted,
        "non-dev: the script's record differs from predict_addresses"
    );
    let collector = written
        .permit2_payment_collector
        .ok_or_else(|| eyre::eyre!("the script deploys the Permit2 collector where Permit2 is"))?;
    ensure!(
        !provider.get_code_at(collector).await?.is_empty(),
        "the recorded Permit2 collector has code"
    );
    assert_eq!(written.multicall3, MULTICALL3);
    assert_eq!(written.token, None);
    assert_rust_deployer_agrees(&anvil, deployer, salt, false, &written).await?;
    Ok(())
}
