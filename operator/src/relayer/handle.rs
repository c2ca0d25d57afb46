//! What the engine and the API see of a relayer: options, health, outcomes, metrics, the handle.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, broadcast, watch};
use uuid::Uuid;

use crate::config::{Config, ReceiptSource};
use crate::store::{ChainTx, TxKind, TxStatus};

/// Relayer knobs (from [`Config`] via [`RelayerOptions::from_config`]).
#[derive(Debug, Clone)]
pub struct RelayerOptions {
    /// The chain (EIP-155 id) transactions are signed for; checked against the node.
    pub chain_id: u64,
    /// Blocks on top of (and including) the receipt's block before it is final (minimum 1).
    pub confirmations: u64,
    /// How often the loop runs without a wake-up.
    pub poll_interval: Duration,
    /// No receipt after this long: re-broadcast; after twice this long: replace with higher fees.
    pub bump_after: Duration,
    /// Fee increase per replacement, percent (≥ 10).
    pub fee_bump_percent: u64,
    /// Cap on the max fee per gas (wei).
    pub max_fee_per_gas: Option<u128>,
    /// Lease length; renewed at a third of it.
    pub lease_ttl: Duration,
    /// Gas limit headroom over `eth_estimateGas`, percent.
    pub gas_limit_margin_percent: u64,
    /// New rows claimed per pass at most.
    pub max_claims_per_tick: usize,
    /// Longest wait between retries while the node is failing.
    pub max_backoff: Duration,
    /// Receipts pushed by the node (`eth_sendRawTransactionSync`) or polled (see `push.rs`).
    pub receipts: ReceiptSource,
}

impl RelayerOptions {
    /// Options from the operator configuration (`[chain]` and `[relayer]`).
    pub fn from_config(config: &Config) -> RelayerOptions {
        RelayerOptions {
            chain_id: config.chain.chain_id,
            confirmations: config.chain.confirmations,
            poll_interval: Duration::from_millis(config.chain.poll_interval_ms),
            bump_after: Duration::from_secs(config.relayer.bump_after_secs),
            fee_bump_percent: config.relayer.fee_bump_percent.max(10),
            max_fee_per_gas: config.relayer.max_fee_per_gas_wei.map(u128::from),
            lease_ttl: Duration::from_secs(config.relayer.lease_ttl_secs),
            gas_limit_margin_percent: config.relayer.gas_limit_margin_percent,
            max_claims_per_tick: 16,
            max_backoff: Duration::from_secs(30),
            receipts: config.chain.receipts,
        }
    }
}

/// What [`RelayerHandle::health`] reports (for `/readyz`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelayerHealth {
    /// This instance holds the signer's lease.
    pub lease_held: bool,
    /// The last pass reached the node.
    pub rpc_ok: bool,
    /// The last error, if the last pass failed.
    pub last_error: Option<String>,
    /// Failed passes in a row.
    pub consecutive_failures: u32,
    /// When the last pass finished (store clock, unix ms).
    pub last_tick_at_ms: Option<i64>,
    /// Rows in flight (reserved … mined) after the last pass.
    pub in_flight: usize,
}

/// A chain transaction reached `final`, `reverted` or `abandoned`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxOutcome {
    /// The `chain_txs` row.
    pub chain_tx_id: Uuid,
    /// The payment it acts on.
    pub payment_id: Option<Uuid>,
    /// Its terminal status.
    pub status: TxStatus,
}

/// Called (synchronously, keep it short) for every outcome, at least once.
pub trait TxObserver: Send + Sync {
    /// `tx` reached `final`, `reverted` or `abandoned`.
    fn on_outcome(&self, tx: &ChainTx);
}

/// A metrics hook (e.g. the API's Prometheus registry implements it); every method defaults to
/// doing nothing.
pub trait RelayerMetricsSink: Send + Sync {
    /// A mined row settled (`final` or `reverted` with a receipt): first signed attempt → settled
    /// latency, confirmations on top of its block (inclusive) and gas used.
    fn tx_settled(
        &self,
        kind: TxKind,
        status: TxStatus,
        latency: Duration,
        confirmations: u64,
        gas_used: Option<u64>,
    ) {
        let _ = (kind, status, latency, confirmations, gas_used);
    }
}

/// Plain counters (read them for `/metrics`).
#[derive(Debug, Default)]
pub struct RelayerMetrics {
    /// Rows claimed (nonce reserved).
    pub claimed: AtomicU64,
    /// Attempts signed and stored (replacements included).
    pub signed: AtomicU64,
    /// Raw transactions handed to the node (re-broadcasts included).
    pub broadcasts: AtomicU64,
    /// Re-broadcasts of stored bytes.
    pub rebroadcasts: AtomicU64,
    /// Fee-bumped replacements.
    pub replacements: AtomicU64,
    /// Receipts recorded.
    pub mined: AtomicU64,
    /// Of those, receipts the node pushed in answer to `eth_sendRawTransactionSync`.
    pub pushed: AtomicU64,
    /// Rows that reached `final`.
    pub finalized: AtomicU64,
    /// Rows that reached `reverted` (on chain or at estimation).
    pub reverted: AtomicU64,
    /// Rows abandoned.
    pub abandoned: AtomicU64,
    /// Reorged receipts.
    pub unmined: AtomicU64,
    /// Nonce fills written.
    pub nonce_fills: AtomicU64,
    /// Failed passes (RPC or database).
    pub errors: AtomicU64,
    /// Sum of claim → final latencies (ms) and their count, for an average.
    pub final_latency_ms_sum: AtomicU64,
    /// Number of latencies summed.
    pub final_latency_count: AtomicU64,
}

impl RelayerMetrics {
    pub(super) fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// What the engine and the API keep of a relayer: wake it, hear outcomes, read health/metrics.
#[derive(Clone)]
pub struct RelayerHandle {
    pub(super) notify: Arc<Notify>,
    pub(super) outcomes: broadcast::Sender<TxOutcome>,
    pub(super) health: watch::Receiver<RelayerHealth>,
    pub(super) metrics: Arc<RelayerMetrics>,
}

impl RelayerHandle {
    /// Wake the relayer now (call after enqueueing a row).
    pub fn wake(&self) {
        self.notify.notify_one();
    }

    /// Outcomes from now on (a lagging receiver loses the oldest; the engine re-reads rows).
    pub fn subscribe(&self) -> broadcast::Receiver<TxOutcome> {
        self.outcomes.subscribe()
    }

    /// The latest health report.
    pub fn health(&self) -> RelayerHealth {
        self.health.borrow().clone()
    }

    /// A receiver to await health changes.
    pub fn health_watch(&self) -> watch::Receiver<RelayerHealth> {
        self.health.clone()
    }

    /// The counters.
    pub fn metrics(&self) -> &RelayerMetrics {
        &self.metrics
    }

    /// The wake-up handle itself (what the engine keeps as its `Arc<Notify>`).
    pub fn notifier(&self) -> Arc<Notify> {
        self.notify.clone()
    }
}

/// What one [`Relayer::tick`](super::Relayer::tick) did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    /// The lease was held for this pass (nothing was sent otherwise).
    pub lease_held: bool,
    /// New rows claimed.
    pub claimed: usize,
    /// Rows still in flight afterwards.
    pub in_flight: usize,
}
