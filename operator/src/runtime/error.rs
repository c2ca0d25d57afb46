//! Why the operator could not start: [`RuntimeError`] and the errors of its steps (signer,
//! deployment, chain). Every error wrapped keeps its source.

use std::path::PathBuf;

use alloy::signers::local::LocalSignerError;
use alloy::transports::TransportError;
use x402_escrow_bindings::deploy::DeploymentsError;

use crate::config::ConfigError;

pub use crate::relayer::RpcUrlError;

/// Why the operator could not start.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The configuration is incomplete or inconsistent.
    #[error("configuration: {0}")]
    Config(#[source] ConfigError),
    /// `chain.rpc_url` is not a URL.
    #[error("configuration: chain.rpc_url: {0}")]
    RpcUrl(#[source] RpcUrlError),
    /// The signing key could not be loaded.
    #[error("signer: {0}")]
    Signer(#[from] SignerError),
    /// The deployments file could not be read or has no entry for the chain.
    #[error("deployment: {0}")]
    Deployment(#[from] DeploymentError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The chain RPC failed or is another chain.
    #[error("chain: {0}")]
    Chain(#[from] ChainError),
    /// A component refused its configuration.
    #[error("{component}: {source}")]
    Component {
        /// Which component.
        component: &'static str,
        /// Its error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Payments still need the key of an operator address no configured lane has: it was
    /// advertised as their `captureAuthorizer`, and only it can capture, void or refund them.
    #[error(
        "{payments} payment(s) name operator {operator} as their captureAuthorizer and stay \
         capturable or refundable until {until} (unix), but no configured signer key is that \
         address: add its key back as a lane (X402_SIGNER_KEYS) — retiring it now would strand them"
    )]
    LaneRetired {
        /// The operator address without a key.
        operator: alloy::primitives::Address,
        /// How many payments name it.
        payments: i64,
        /// The latest `refundExpiry` among them (unix seconds).
        until: u64,
    },
    /// The HTTP listener could not be bound.
    #[error("listen on {address}: {source}")]
    Listen {
        /// The configured address.
        address: String,
        /// The OS error.
        source: std::io::Error,
    },
}

impl RuntimeError {
    /// [`RuntimeError::Component`]: `component` refused its configuration with `error`.
    pub fn component(
        component: &'static str,
        error: impl std::error::Error + Send + Sync + 'static,
    ) -> RuntimeError {
        RuntimeError::Component {
            component,
            source: Box::new(error),
        }
    }
}

/// Why the signing key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    /// `[signer]` is incomplete (a keystore without its password).
    #[error(transparent)]
    Config(ConfigError),
    /// `X402_SIGNER_KEY` does not parse as a private key.
    #[error("X402_SIGNER_KEY is not a private key: {0}")]
    NotAKey(#[source] LocalSignerError),
    /// An entry of `X402_SIGNER_KEYS` does not parse as a private key.
    #[error("X402_SIGNER_KEYS entry {index} is not a private key: {source}")]
    LaneNotAKey {
        /// Its position (0-based).
        index: usize,
        /// Why.
        source: LocalSignerError,
    },
    /// Two lanes' keystores hold the same key.
    #[error(
        "signer lanes {first} and {second} have the same address {address}; each lane needs its own key"
    )]
    DuplicateLane {
        /// The first lane.
        first: usize,
        /// The repeated lane.
        second: usize,
        /// The shared address.
        address: alloy::primitives::Address,
    },
    /// The keystore could not be read or decrypted.
    #[error("cannot decrypt keystore {}: {source}", path.display())]
    Keystore {
        /// The keystore file.
        path: PathBuf,
        /// Why.
        source: LocalSignerError,
    },
    /// Neither a key nor a keystore is configured.
    #[error(
        "no signing key: set X402_SIGNER_KEY, X402_SIGNER_KEYS, signer.keystore or signer.keystores"
    )]
    Missing,
}

/// Why the contracts for the configured chain could not be found.
#[derive(Debug, thiserror::Error)]
pub enum DeploymentError {
    /// The deployments file or directory (or the built-in set) could not be read.
    #[error(transparent)]
    Load(DeploymentsError),
    /// The deployments directory has no file for the chain.
    #[error("{} has no deployment for chain {chain_id}", dir.display())]
    NotInDir {
        /// The directory.
        dir: PathBuf,
        /// The configured chain.
        chain_id: u64,
    },
    /// No deployments file is configured and the built-in set has no entry for the chain.
    #[error("no deployment for chain {chain_id}: set chain.deployments (X402_DEPLOYMENTS)")]
    NoCanonical {
        /// The configured chain.
        chain_id: u64,
    },
    /// The deployments file is for another chain.
    #[error("the deployment is for chain {deployment}, the configuration says {configured}")]
    WrongChain {
        /// The file's chain.
        deployment: u64,
        /// The configured chain.
        configured: u64,
    },
}

/// Why the chain RPC could not be used at start-up.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// `eth_chainId` failed.
    #[error("{url}: {source}")]
    Unreachable {
        /// `chain.rpc_url`.
        url: String,
        /// The RPC error.
        source: TransportError,
    },
    /// The node serves another chain than configured.
    #[error("the node at {url} is chain {node}, the configuration says {configured}")]
    WrongChain {
        /// `chain.rpc_url`.
        url: String,
        /// What `eth_chainId` answered.
        node: u64,
        /// `chain.chain_id`.
        configured: u64,
    },
}
