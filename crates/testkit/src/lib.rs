//! Local scaffolding shared by the operator's and the bindings' tests, the bench and the demo:
//!
//! - [`Chain`]: the pinned anvil with Uniswap Permit2 at its canonical address and every
//!   contract deployed through the bindings, its dev wallets and providers, and test-USDC minting;
//! - [`install_permit2`]: Permit2 (from `../shared/canonical/Permit2.json`) placed on any anvil;
//! - [`Proxy`]: a TCP proxy whose [`ProxyMode`] a test switches (an RPC endpoint or a webhook
//!   receiver that goes away, or goes silent);
//! - [`OperatorCommand`] / [`OperatorProcess`]: the `x402-escrow` binary as a child process on a
//!   config file (started, health-checked, stopped with SIGTERM, killed with SIGKILL, restarted
//!   from the same command), with its CPU time and memory read from `/proc`;
//! - [`deploy_script`]: `script/Deploy.s.sol` run by the pinned forge against an anvil;
//! - [`deploy_reference_v1_0`] / [`deploy_ours_v1_1`]: the public Commerce Payments v1.0
//!   contracts (from `../shared/canonical/v1.0/`) and our v1.1-interface escrow on a [`Chain`],
//!   as deployment records the operator can be configured with.
//!
//! Nothing here depends on the operator's library, so the operator binary itself can use it.
#![warn(missing_docs)]

mod chain;
mod forge;
mod permit2;
mod process;
mod proxy;
mod reference;

pub use chain::{Chain, Permit2Setup, spawn_anvil};
pub use forge::deploy_script;
pub use permit2::{install_permit2, permit2_domain_separator, permit2_json_path};
pub use process::{OperatorCommand, OperatorProcess, free_port};
pub use proxy::{Proxy, ProxyMode};
pub use reference::{deploy_ours_v1_1, deploy_reference_v1_0, reference_v1_0_dir};

/// What can go wrong while setting up local scaffolding (large sources boxed, so every
/// `Result` stays small).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The anvil binary could not be started.
    #[error("could not start anvil at {path}")]
    Anvil {
        /// The binary.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: Box<alloy::node_bindings::NodeError>,
    },
    /// Anvil has fewer dev keys than asked for.
    #[error("anvil has no dev key {0}")]
    NoDevKey(usize),
    /// Deploying the contracts failed.
    #[error("deploying the contracts")]
    Deploy(#[source] Box<x402_escrow_bindings::deploy::DeployError>),
    /// Writing the deployments file failed.
    #[error("writing the deployments file")]
    SaveDeployment(#[source] Box<x402_escrow_bindings::deploy::DeploymentsError>),
    /// A development deployment without its test token.
    #[error("a development deployment has a test token")]
    NoTestToken,
    /// A contract call or transaction failed.
    #[error("{what}")]
    Contract {
        /// What was being done.
        what: &'static str,
        /// Why.
        #[source]
        source: Box<alloy::contract::Error>,
    },
    /// Waiting for a transaction's receipt failed.
    #[error("{what}")]
    Receipt {
        /// What was being done.
        what: &'static str,
        /// Why.
        #[source]
        source: Box<alloy::providers::PendingTransactionError>,
    },
    /// A JSON-RPC request failed.
    #[error("{what}")]
    Rpc {
        /// What was being done.
        what: &'static str,
        /// Why.
        #[source]
        source: Box<alloy::transports::TransportError>,
    },
    /// A file or process operation failed.
    #[error("{what}")]
    Io {
        /// What was being done.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A reference contract could not be read or deployed.
    #[error("reference contracts: {0}")]
    Reference(String),
    /// Permit2's shared code could not be read or placed at its canonical address.
    #[error("installing Permit2: {0}")]
    Permit2(String),
    /// The operator process stopped or did not become healthy.
    #[error("{0}")]
    Operator(String),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
