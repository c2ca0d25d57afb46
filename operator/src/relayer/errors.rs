//! Relayer errors.

use alloy::primitives::Address;

use crate::store::StoreError;

/// The error of parsing `chain.rpc_url` (`url::ParseError`, through reqwest's `Url`).
pub type RpcUrlError = <alloy::transports::http::reqwest::Url as std::str::FromStr>::Err;

/// Where a test may make the relayer "crash" (stop dead, as if the process was killed).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// After `claim_next_tx` reserved a nonce, before signing.
    AfterClaim,
    /// After `record_attempt` stored the signed bytes, before broadcasting them.
    AfterRecordAttempt,
    /// After the node accepted the bytes and `mark_broadcast` ran, before any receipt.
    AfterBroadcast,
}

/// Everything that can stop a relayer pass.
#[derive(Debug, thiserror::Error)]
pub enum RelayerError {
    /// The database failed (other than a lost lease).
    #[error(transparent)]
    Store(StoreError),
    /// The node failed or was unreachable. Retried with backoff; state is kept in the database.
    #[error("rpc error: {0}")]
    Rpc(#[from] alloy::transports::TransportError),
    /// Signing failed.
    #[error("signing failed: {0}")]
    Sign(#[from] alloy::signers::Error),
    /// This instance does not (or no longer) hold the signer's lease: it must not send.
    #[error("lease on signer {signer} is not held")]
    LeaseLost {
        /// The signer.
        signer: Address,
    },
    /// The node serves another chain than the one configured.
    #[error("chain id mismatch: configured {configured}, node reports {node}")]
    ChainIdMismatch {
        /// Configured chain id.
        configured: u64,
        /// What the node reports.
        node: u64,
    },
    /// The configuration cannot be used: `chain.rpc_url` is not a URL.
    #[error("relayer configuration: chain.rpc_url: {0}")]
    Config(#[source] RpcUrlError),
    /// Stored data the relayer cannot use (a row missing what its status implies). The text
    /// names the row and what is missing: there is no underlying error.
    #[error("corrupt relayer state: {0}")]
    Corrupt(String),
    /// Stored raw transaction bytes that do not decode.
    #[error("corrupt relayer state: stored raw transaction: {0}")]
    CorruptRawTx(#[source] alloy::eips::eip2718::Eip2718Error),
    /// A gas estimate task was cancelled before it answered.
    #[error("corrupt relayer state: gas estimate task ended early: {0}")]
    EstimateTask(#[source] tokio::task::JoinError),
    /// A test-only crash point was reached; the relayer stops processing.
    #[doc(hidden)]
    #[error("injected crash at {0:?}")]
    InjectedCrash(CrashPoint),
}

impl From<StoreError> for RelayerError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::LeaseNotHeld { signer, .. } => RelayerError::LeaseLost {
                signer: signer.parse().unwrap_or(Address::ZERO),
            },
            other => RelayerError::Store(other),
        }
    }
}

impl RelayerError {
    /// Whether the node was the problem (the run loop backs off and reports unhealthy RPC).
    pub fn is_rpc(&self) -> bool {
        matches!(self, RelayerError::Rpc(_))
    }
}
