//! The pinned anvil with every contract deployed.

use std::path::{Path, PathBuf};

use alloy::eips::BlockNumberOrTag;
use alloy::network::EthereumWallet;
use alloy::node_bindings::{Anvil, AnvilInstance};
use alloy::primitives::{Address, U256};
use alloy::providers::ext::AnvilApi;
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use x402_escrow_bindings::contracts::anvil_path;
use x402_escrow_bindings::deploy::DEFAULT_SALT;
use x402_escrow_bindings::{Deployment, TestUSDC, TokenInfo, deploy_all};

use crate::{Error, Result, install_permit2, permit2_json_path};

/// Spawns `anvil` (the pinned toolchain's when `None`), with `args` appended. With
/// `drain_stdout`, anvil's request log is kept and drained by a thread, so a busy node never
/// blocks on a full pipe (what a long load run needs); otherwise alloy discards it.
pub fn spawn_anvil(
    anvil: Option<&Path>,
    args: &[String],
    drain_stdout: bool,
) -> Result<AnvilInstance> {
    let path = anvil.map(Path::to_path_buf).unwrap_or_else(anvil_path);
    let mut builder = Anvil::at(&path).args(args.iter().cloned());
    if drain_stdout {
        builder = builder.keep_stdout();
    }
    let mut instance = builder.try_spawn().map_err(|source| Error::Anvil {
        path,
        source: Box::new(source),
    })?;
    if drain_stdout && let Some(mut stdout) = instance.child_mut().stdout.take() {
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    }
    Ok(instance)
}

/// Whether a [`Chain`] gets Uniswap Permit2 (and so the Permit2 collector).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit2Setup {
    /// Permit2 from the shared fixtures; an error when they are missing. What tests use.
    Required,
    /// Permit2 when `../shared/canonical/Permit2.json` exists next to the workspace, otherwise
    /// none (the deployment then records no Permit2 collector). For the demo and the bench,
    /// which also run from a checkout without the shared fixtures.
    IfShared,
}

/// A local chain with Uniswap Permit2 at its canonical address ([`crate::install_permit2`]) and
/// every contract deployed (CREATE2, the default salt, anvil's own Multicall3, the Permit2
/// collector and the test token) by dev key 0.
///
/// The dev keys' roles are the caller's: the tests and the demo use key 1 as the operator's
/// signer and key 2 as the buyer, addresses 3 and 4 as the merchant's and the fee receivers.
///
/// Fields drop in order: the providers (and their pollers) before the node.
pub struct Chain {
    /// Its HTTP endpoint.
    pub url: String,
    /// The deployer (dev key 0).
    pub deployer: PrivateKeySigner,
    /// A provider signing with the deployer's key, for deploying and test-side actions.
    pub admin: DynProvider,
    /// A provider without a wallet, for reads and `anvil_*` calls.
    pub plain: DynProvider,
    /// The contracts.
    pub deployment: Deployment,
    /// The node (killed on drop, after the providers).
    pub anvil: AnvilInstance,
}

impl Chain {
    /// The pinned anvil, the contracts deployed.
    pub async fn start() -> Result<Chain> {
        Chain::deploy_on(spawn_anvil(None, &[], false)?).await
    }

    /// Permit2 placed and the contracts deployed on a node already running (see
    /// [`spawn_anvil`]); [`Permit2Setup::Required`].
    pub async fn deploy_on(anvil: AnvilInstance) -> Result<Chain> {
        Chain::deploy_with(anvil, Permit2Setup::Required).await
    }

    /// The contracts deployed on a node already running, Permit2 first as `permit2` says.
    pub async fn deploy_with(anvil: AnvilInstance, permit2: Permit2Setup) -> Result<Chain> {
        let url = anvil.endpoint();
        let (deployer, admin) = dev_wallet(&anvil, 0)?;
        if permit2 == Permit2Setup::Required || permit2_json_path().is_file() {
            install_permit2(&admin).await?;
        }
        let deployment = deploy_all(&admin, deployer.address(), DEFAULT_SALT, true)
            .await
            .map_err(|e| Error::Deploy(Box::new(e)))?;
        let plain = ProviderBuilder::new()
            .connect_http(anvil.endpoint_url())
            .erased();
        Ok(Chain {
            anvil,
            url,
            deployer,
            admin,
            plain,
            deployment,
        })
    }

    /// Dev key `index`.
    pub fn key(&self, index: usize) -> Result<PrivateKeySigner> {
        Ok(dev_wallet(&self.anvil, index)?.0)
    }

    /// Dev address `index`.
    pub fn address(&self, index: usize) -> Result<Address> {
        self.anvil
            .addresses()
            .get(index)
            .copied()
            .ok_or(Error::NoDevKey(index))
    }

    /// Dev key `index` and a provider that signs with it.
    pub fn wallet(&self, index: usize) -> Result<(PrivateKeySigner, DynProvider)> {
        dev_wallet(&self.anvil, index)
    }

    /// A provider signing with `signer` on this node.
    pub fn provider_for(&self, signer: &PrivateKeySigner) -> DynProvider {
        signer_provider(&self.anvil, signer)
    }

    /// The test token of the development deployment.
    pub fn token_info(&self) -> Result<&TokenInfo> {
        self.deployment.token.as_ref().ok_or(Error::NoTestToken)
    }

    /// The test token's address.
    pub fn token(&self) -> Result<Address> {
        Ok(self.token_info()?.address)
    }

    /// The `AuthCaptureEscrow`'s address.
    pub fn escrow(&self) -> Address {
        self.deployment.auth_capture_escrow
    }

    /// Mints `amount` test USDC to `to` and waits for the receipt.
    pub async fn mint(&self, to: Address, amount: U256) -> Result<()> {
        self.mint_all(&[to], amount).await
    }

    /// Mints `amount` to each of `to`: every mint sent first, then every receipt awaited.
    pub async fn mint_all(&self, to: &[Address], amount: U256) -> Result<()> {
        let usdc = TestUSDC::new(self.token()?, self.admin.clone());
        let mut pending = Vec::with_capacity(to.len());
        for who in to {
            pending.push(usdc.mint(*who, amount).send().await.map_err(|source| {
                Error::Contract {
                    what: "minting test USDC",
                    source: Box::new(source),
                }
            })?);
        }
        for p in pending {
            p.get_receipt().await.map_err(|source| Error::Receipt {
                what: "minting test USDC",
                source: Box::new(source),
            })?;
        }
        Ok(())
    }

    /// `who`'s test-USDC balance.
    pub async fn balance(&self, who: Address) -> Result<U256> {
        TestUSDC::new(self.token()?, self.plain.clone())
            .balanceOf(who)
            .call()
            .await
            .map_err(|source| Error::Contract {
                what: "reading a test-USDC balance",
                source: Box::new(source),
            })
    }

    /// The latest block's timestamp.
    pub async fn now(&self) -> Result<u64> {
        let block = self
            .plain
            .get_block_by_number(BlockNumberOrTag::Latest)
            .await
            .map_err(|source| Error::Rpc {
                what: "reading the latest block",
                source: Box::new(source),
            })?;
        block
            .map(|b| b.header.timestamp)
            .ok_or_else(|| Error::Operator("the node has no latest block".into()))
    }

    /// Moves the chain's clock `secs` ahead and mines a block on it.
    pub async fn advance_clock(&self, secs: u64) -> Result<()> {
        self.admin
            .anvil_increase_time(secs)
            .await
            .map_err(|source| Error::Rpc {
                what: "advancing anvil's clock",
                source: Box::new(source),
            })?;
        self.mine(1).await
    }

    /// Mines `blocks` blocks.
    pub async fn mine(&self, blocks: u64) -> Result<()> {
        self.plain
            .anvil_mine(Some(blocks), None)
            .await
            .map_err(|source| Error::Rpc {
                what: "mining",
                source: Box::new(source),
            })
    }

    /// Writes the deployments file (`<dir>/<chainId>.json`, the operator's `chain.deployments`)
    /// and returns its path.
    pub fn save_deployment(&self, dir: &Path) -> Result<PathBuf> {
        let path = dir.join(format!("{}.json", self.deployment.chain_id));
        self.deployment
            .save(&path)
            .map_err(|e| Error::SaveDeployment(Box::new(e)))?;
        Ok(path)
    }
}

/// Anvil's dev key `index` and a provider that signs with it.
pub(crate) fn dev_wallet(
    anvil: &AnvilInstance,
    index: usize,
) -> Result<(PrivateKeySigner, DynProvider)> {
    let key = anvil.keys().get(index).ok_or(Error::NoDevKey(index))?;
    let signer = PrivateKeySigner::from(key.clone());
    let provider = signer_provider(anvil, &signer);
    Ok((signer, provider))
}

fn signer_provider(anvil: &AnvilInstance, signer: &PrivateKeySigner) -> DynProvider {
    ProviderBuilder::new()
        .wallet(EthereumWallet::from(signer.clone()))
        .connect_http(anvil.endpoint_url())
        .erased()
}
