//! Subcommands of the `x402-escrow` binary.

pub mod admin;
pub mod bench;
pub mod demo;
pub mod serve;
pub mod x402;

use alloy::network::EthereumWallet;
use alloy::node_bindings::AnvilInstance;
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use eyre::{Result, eyre};

/// Anvil's dev key `index` and a provider that signs with it (the local demos and the bench).
pub fn dev_wallet(anvil: &AnvilInstance, index: usize) -> Result<(PrivateKeySigner, DynProvider)> {
    let key = anvil
        .keys()
        .get(index)
        .ok_or_else(|| eyre!("anvil has no dev key {index}"))?;
    let signer = PrivateKeySigner::from(key.clone());
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(signer.clone()))
        .connect_http(anvil.endpoint_url())
        .erased();
    Ok((signer, provider))
}
