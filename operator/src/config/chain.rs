//! `[chain]`: the node, the contracts and how the indexer reads the chain.

use std::path::PathBuf;

use alloy::primitives::Address;
use serde::{Deserialize, Serialize};

/// `[chain]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChainConfig {
    /// JSON-RPC endpoint.
    pub rpc_url: String,
    /// EIP-155 chain id (checked against the node at start-up).
    pub chain_id: u64,
    /// A `deployments/<chainId>.json` file (x402-escrow-bindings `Deployment`); explicit
    /// `[chain.contracts]` addresses override its entries.
    pub deployments: Option<PathBuf>,
    /// Explicit contract addresses.
    pub contracts: ContractAddresses,
    /// Blocks on top of a receipt before it counts as final (L2s ~1, Ethereum mainnet ~12).
    pub confirmations: u64,
    /// How often to poll for receipts and logs.
    pub poll_interval_ms: u64,
    /// The first block the indexer reads (usually the escrow's deployment block).
    pub start_block: u64,
    /// How far back the indexer re-reads after it notices a reorg.
    pub reorg_depth: u64,
    /// How long one JSON-RPC request may take before it is abandoned (and retried by whoever
    /// sent it). Without a limit a request on a connection that went silent never returns.
    pub rpc_timeout_secs: u64,
    /// How the relayer learns that its transactions were mined: `push` (default) or `poll`.
    pub receipts: ReceiptSource,
    /// The escrow event indexer.
    pub indexer: IndexerSettings,
}

/// `[chain] receipts`: how the relayer learns that its transactions were mined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReceiptSource {
    /// Send new transactions with `eth_sendRawTransactionSync` and take the receipt from the
    /// answer; falls back to polling for anything else, and for good on a node without the method.
    #[default]
    Push,
    /// Plain `eth_sendRawTransaction` and receipt polling only.
    Poll,
}

/// `X402_RECEIPTS` is neither `push` nor `poll`.
#[derive(Debug, thiserror::Error)]
#[error("expected `push` or `poll`, got {0:?}")]
pub struct UnknownReceiptSource(String);

impl std::str::FromStr for ReceiptSource {
    type Err = UnknownReceiptSource;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "push" => Ok(ReceiptSource::Push),
            "poll" => Ok(ReceiptSource::Poll),
            other => Err(UnknownReceiptSource(other.to_owned())),
        }
    }
}

/// `[chain.indexer]`: how the escrow event indexer reads the chain.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IndexerSettings {
    /// Read only blocks at least `chain.confirmations` deep (`true`), or up to the head with
    /// reorg detection (`false`, the default: lowest latency).
    pub safe: bool,
    /// The most blocks one `eth_getLogs` request covers (RPC providers cap this).
    pub max_range: u64,
    /// How many recent block hashes are kept for reorg detection.
    pub window: u32,
}

impl Default for IndexerSettings {
    fn default() -> Self {
        IndexerSettings {
            safe: false,
            max_range: 1_000,
            window: 64,
        }
    }
}

impl Default for ChainConfig {
    fn default() -> Self {
        ChainConfig {
            rpc_url: "http://127.0.0.1:8545".into(),
            chain_id: 31337,
            deployments: None,
            contracts: ContractAddresses::default(),
            confirmations: 1,
            poll_interval_ms: 1000,
            start_block: 0,
            reorg_depth: 64,
            rpc_timeout_secs: 30,
            receipts: ReceiptSource::default(),
            indexer: IndexerSettings::default(),
        }
    }
}

impl ChainConfig {
    /// `rpc_timeout_secs` as a duration.
    pub fn rpc_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.rpc_timeout_secs)
    }
}

/// `[chain.contracts]`: explicit addresses (each overrides the deployments file).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContractAddresses {
    /// `AuthCaptureEscrow`.
    pub escrow: Option<Address>,
    /// `ERC3009PaymentCollector`.
    pub erc3009_collector: Option<Address>,
    /// `OperatorRefundCollector`.
    pub refund_collector: Option<Address>,
}
