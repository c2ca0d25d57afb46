//! How one [`Indexer`](super::Indexer) reads: [`IndexerConfig`] and [`ReadMode`].

use std::time::Duration;

use alloy::primitives::Address;

use crate::config::ChainConfig;

/// How far the indexer reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadMode {
    /// Up to the chain head; reorgs are detected and undone (lowest latency; the default).
    Latest,
    /// Only up to `head - confirmations`: blocks that deep are assumed final (reorg handling
    /// stays on as a safety net).
    Safe {
        /// How many blocks behind the head to stay.
        confirmations: u64,
    },
}

/// Settings of one [`Indexer`](super::Indexer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexerConfig {
    /// The chain (checked against the RPC's `eth_chainId` on the first pass).
    pub chain_id: u64,
    /// The escrow followed.
    pub escrow: Address,
    /// The first block to read when no cursor is stored (the escrow's deployment block).
    pub start_block: u64,
    /// Head or safe depth.
    pub mode: ReadMode,
    /// The most blocks one `eth_getLogs` covers.
    pub max_range: u64,
    /// How many recent block hashes are remembered for reorg detection.
    pub window: u32,
    /// How far back to rewind when a reorg is deeper than the remembered window.
    pub reorg_depth: u64,
    /// Pause between passes once caught up.
    pub poll_interval: Duration,
    /// Longest pause after repeated failures (the pause doubles from `poll_interval`).
    pub max_backoff: Duration,
}

impl IndexerConfig {
    /// Settings for `escrow` from the `[chain]` section: start block, poll interval, reorg
    /// depth, and `[chain.indexer]`: read mode (to the head, or only `chain.confirmations` deep
    /// with `safe = true`), request range and hash window.
    pub fn from_chain_config(chain: &ChainConfig, escrow: Address) -> IndexerConfig {
        let mode = if chain.indexer.safe {
            ReadMode::Safe {
                confirmations: chain.confirmations,
            }
        } else {
            ReadMode::Latest
        };
        IndexerConfig {
            chain_id: chain.chain_id,
            escrow,
            start_block: chain.start_block,
            mode,
            max_range: chain.indexer.max_range.max(1),
            window: chain.indexer.window.max(2),
            reorg_depth: chain.reorg_depth.max(1),
            poll_interval: Duration::from_millis(chain.poll_interval_ms.max(1)),
            max_backoff: Duration::from_secs(30),
        }
    }
}
