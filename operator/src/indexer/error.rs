//! [`IndexerError`]: why a pass failed, and whether retrying it as it is makes sense.

use alloy::transports::TransportError;

use super::EventDecodeError;
use crate::store::StoreError;

/// Why a pass failed. Nothing is half-written: the next pass starts from the stored cursor.
#[derive(Debug, thiserror::Error)]
pub enum IndexerError {
    /// The RPC failed or is unreachable (transient: retry later).
    #[error("rpc: {0}")]
    Rpc(#[from] TransportError),
    /// A contract call (`paymentState`, `getPaymentStates`) failed.
    #[error("escrow call: {0}")]
    Call(#[from] alloy::contract::Error),
    /// The database failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A log of the escrow did not decode.
    #[error(transparent)]
    Decode(#[from] EventDecodeError),
    /// The node answered without a block it should have (e.g. it is behind or rolled back).
    #[error("block {0} not found")]
    MissingBlock(u64),
    /// A log came without its block number, block hash, log index or transaction hash
    /// (pending logs are never asked for, so the node is misbehaving).
    #[error("log without {0}")]
    IncompleteLog(&'static str),
    /// The RPC serves another chain than configured.
    #[error("rpc serves chain {actual}, configured {expected}")]
    WrongChain {
        /// The configured chain id.
        expected: u64,
        /// What `eth_chainId` answered.
        actual: u64,
    },
}

impl IndexerError {
    /// True for failures worth retrying as they are (RPC or database hiccups); false for
    /// configuration or data problems that need a human (still retried by [`Indexer::run`](super::Indexer::run),
    /// at the longest backoff).
    pub fn is_transient(&self) -> bool {
        match self {
            IndexerError::Rpc(_) | IndexerError::Call(_) | IndexerError::MissingBlock(_) => true,
            IndexerError::Store(e) => e.is_retryable() || matches!(e, StoreError::Database(_)),
            _ => false,
        }
    }
}
