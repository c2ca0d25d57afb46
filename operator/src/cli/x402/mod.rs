//! Issue 4's commands: the paying reverse proxy (`gateway`), the paying client (`pay`) and the
//! end-to-end `demo` (operator + merchant behind the x402 layer + buyer with a spend policy).
//!
//! Only `x402_escrow_operator::…` paths and `super::…` are used here, so the integration tests
//! can include this directory with `#[path]` (the CLI lives in the binary crate).

pub mod demo;
pub mod gateway;
pub mod pay;

use alloy::primitives::U256;

/// `1234567` with 6 decimals → `"1.234567"`; trailing zeros kept to two places.
pub fn format_units(amount: U256, decimals: u8) -> String {
    let scale = U256::from(10u64).pow(U256::from(decimals));
    let whole = amount / scale;
    let frac = amount % scale;
    if decimals == 0 {
        return whole.to_string();
    }
    let mut frac = format!("{:0>width$}", frac.to_string(), width = decimals as usize);
    while frac.len() > 2 && frac.ends_with('0') {
        frac.pop();
    }
    format!("{whole}.{frac}")
}

/// Anvil's dev key `index` and a provider that signs with it (the local demos and the bench).
pub fn dev_wallet(
    anvil: &alloy::node_bindings::AnvilInstance,
    index: usize,
) -> eyre::Result<(
    alloy::signers::local::PrivateKeySigner,
    alloy::providers::DynProvider,
)> {
    use alloy::providers::Provider;
    let key = anvil
        .keys()
        .get(index)
        .ok_or_else(|| eyre::eyre!("anvil has no dev key {index}"))?;
    let signer = alloy::signers::local::PrivateKeySigner::from(key.clone());
    let provider = alloy::providers::ProviderBuilder::new()
        .wallet(alloy::network::EthereumWallet::from(signer.clone()))
        .connect_http(anvil.endpoint_url())
        .erased();
    Ok((signer, provider))
}
