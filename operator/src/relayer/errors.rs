//! Relayer errors.

use alloy::primitives::Address;

use crate::store::StoreError;

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
    /// The configuration cannot be used (e.g. an unparsable RPC URL).
    #[error("relayer configuration: {0}")]
    Config(String),
    /// Stored data the relayer cannot use (e.g. undecodable raw transaction bytes).
    #[error("corrupt relayer state: {0}")]
    Corrupt(String),
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
