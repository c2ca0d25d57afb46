//! The chain indexer: follows one escrow's events on one chain, stores them in `chain_events`,
//! and survives reorgs and restarts.
//!
//! # How a pass ([`Indexer::tick`]) works
//!
//! 1. Read the cursor (`indexer_cursors`: the first block not yet read and the hash of the block
//!    before it); without one, start at the configured start block.
//! 2. **Reorg check**: the stored hash of block `next_block - 1` must still be the chain's. If
//!    not, walk back through the window of remembered block hashes (`indexer_blocks`, the newest
//!    [`IndexerConfig::window`] blocks read) to the newest one that is still canonical (the
//!    common ancestor), and in one SQL transaction mark every stored event above it removed,
//!    forget the replaced hashes and move the cursor back ([`Store::rewind_indexer`]). A reorg
//!    deeper than the window rewinds [`IndexerConfig::reorg_depth`] blocks (and warns).
//! 3. Read at most [`IndexerConfig::max_range`] blocks up to the head ([`ReadMode::Latest`], the
//!    default, relying on step 2) or up to `head - confirmations` ([`ReadMode::Safe`]). Within
//!    the last `window` blocks below the head every block header of the range is fetched and
//!    its parent hash checked against the block before it (and remembered); deeper, only the
//!    range's first and last headers (a range never straddles that boundary). `eth_getLogs` on the escrow
//!    address, then the last header again: if it changed, or a log's block hash is not the
//!    header's, a reorg raced the read and the pass stores nothing ([`TickOutcome::raced`]).
//! 4. Decode each log ([`EscrowEvent`]) and store it (idempotent on chain, block hash and log
//!    index), remember the block hashes and move the cursor, all in one SQL transaction
//!    ([`Store::advance_indexer`]). A crash anywhere leaves either the old or the new cursor, and
//!    re-reading a range stores nothing twice. Cursor moves (advance and rewind) are
//!    compare-and-set: when two operator instances index the same escrow, only one records
//!    each range; the other's pass reports [`TickOutcome::raced`] and writes nothing.
//!
//! The indexer never changes payments. The engine reads `Store::unprocessed_events`, maps each
//! with [`event_effect`] and applies it (marking the event processed in the same transaction);
//! it wakes up on [`Indexer::notifier`] or [`Indexer::subscribe`]. Events a reorg removed come
//! with [`IndexerUpdate::Reorg`]: the engine re-checks those payments with
//! [`read_payment_state`].

mod event;

use std::sync::Arc;
use std::time::Duration;

use alloy::eips::BlockNumberOrTag;
use alloy::primitives::{Address, B256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::{Filter, Log};
use alloy::transports::TransportError;
use tokio::sync::{Notify, broadcast, watch};
use tracing::Instrument;
use x402_escrow_bindings::AuthCaptureEscrow;

use crate::config::ChainConfig;
use crate::lifecycle::Amount;
use crate::store::{
    ChainEvent, CursorPosition, IndexedBlock, IndexerAdvance, NewChainEvent, Store, StoreError,
};

pub use event::{
    EscrowEvent, EventDecodeError, EventEffect, Origin, event_effect, stored_event_effect,
};

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

/// Settings of one [`Indexer`].
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
    /// configuration or data problems that need a human (still retried by [`Indexer::run`],
    /// at the longest backoff).
    pub fn is_transient(&self) -> bool {
        match self {
            IndexerError::Rpc(_) | IndexerError::Call(_) | IndexerError::MissingBlock(_) => true,
            IndexerError::Store(e) => e.is_retryable() || matches!(e, StoreError::Database(_)),
            _ => false,
        }
    }
}

/// A reorg the indexer undid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reorg {
    /// The first block re-read (everything stored at or above it was marked removed).
    pub from_block: u64,
    /// The common ancestor's hash (`None`: the reorg was deeper than the window and the
    /// indexer rewound `reorg_depth` blocks blindly).
    pub ancestor_hash: Option<B256>,
    /// The events marked removed (the engine re-checks their payments against the chain).
    pub removed: Vec<ChainEvent>,
}

/// What one [`Indexer::tick`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickOutcome {
    /// The reorg undone at the start of the pass, if any.
    pub reorg: Option<Reorg>,
    /// The range read (inclusive), if any.
    pub range: Option<(u64, u64)>,
    /// Events stored for the first time (or revived) by this pass, in chain order.
    pub new_events: Vec<ChainEvent>,
    /// A reorg raced the read, or another instance moved the cursor: nothing was stored, the
    /// next pass re-checks.
    pub raced: bool,
    /// The cursor after the pass (the first block not yet read).
    pub next_block: u64,
    /// The highest block the pass was allowed to read.
    pub target: u64,
}

impl TickOutcome {
    /// True when the cursor reached the target (no need to hurry the next pass).
    pub fn caught_up(&self) -> bool {
        !self.raced && self.next_block > self.target
    }
}

/// Broadcast to subscribers after a pass that changed something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexerUpdate {
    /// New events were stored (`Store::unprocessed_events` has them).
    NewEvents {
        /// How many.
        count: usize,
        /// The last block read.
        up_to_block: u64,
    },
    /// A reorg marked events removed; their payments need a `paymentState` check.
    Reorg {
        /// The first block re-read.
        from_block: u64,
        /// The payments whose events were removed (deduplicated).
        payment_hashes: Vec<B256>,
    },
}

/// A payment's state on chain (`AuthCaptureEscrow.paymentState`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OnChainPaymentState {
    /// True once the payment was authorized or charged (never reset).
    pub has_collected_payment: bool,
    /// Held and still capturable.
    pub capturable: Amount,
    /// Captured and not yet refunded.
    pub refundable: Amount,
}

/// `paymentState(hash)` on the escrow, at the latest block.
pub async fn read_payment_state(
    provider: &DynProvider,
    escrow: Address,
    payment_hash: B256,
) -> Result<OnChainPaymentState, IndexerError> {
    let s = AuthCaptureEscrow::new(escrow, provider)
        .paymentState(payment_hash)
        .call()
        .await?;
    Ok(OnChainPaymentState {
        has_collected_payment: s.hasCollectedPayment,
        capturable: s.capturableAmount.to::<u128>(),
        refundable: s.refundableAmount.to::<u128>(),
    })
}

/// `getPaymentStates(hashes)` on the escrow, in chunks of 256, answers in the order asked.
pub async fn read_payment_states(
    provider: &DynProvider,
    escrow: Address,
    payment_hashes: &[B256],
) -> Result<Vec<OnChainPaymentState>, IndexerError> {
    let contract = AuthCaptureEscrow::new(escrow, provider);
    let mut out = Vec::with_capacity(payment_hashes.len());
    for chunk in payment_hashes.chunks(256) {
        let states = contract.getPaymentStates(chunk.to_vec()).call().await?;
        out.extend(states.into_iter().map(|s| OnChainPaymentState {
            has_collected_payment: s.hasCollectedPayment,
            capturable: s.capturableAmount.to::<u128>(),
            refundable: s.refundableAmount.to::<u128>(),
        }));
    }
    Ok(out)
}

/// Follows one escrow on one chain. Cheap to share behind an `Arc`; one instance per escrow
/// should run [`Indexer::run`] (two instances are safe: cursor moves are compare-and-set, so
/// they only duplicate RPC reads).
#[derive(Debug)]
pub struct Indexer {
    store: Store,
    provider: DynProvider,
    config: IndexerConfig,
    notify: Arc<Notify>,
    updates: broadcast::Sender<IndexerUpdate>,
    chain_checked: std::sync::atomic::AtomicBool,
}

/// A header's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    number: u64,
    hash: B256,
    parent_hash: B256,
}

impl Indexer {
    /// An indexer over `store` reading through `provider`.
    pub fn new(store: Store, provider: DynProvider, config: IndexerConfig) -> Indexer {
        let (updates, _) = broadcast::channel(64);
        Indexer {
            store,
            provider,
            config,
            notify: Arc::new(Notify::new()),
            updates,
            chain_checked: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The settings.
    pub fn config(&self) -> &IndexerConfig {
        &self.config
    }

    /// Signalled (`notify_one`, so a wake-up is never lost) after every pass that stored new
    /// events or undid a reorg: the engine's event loop waits on it.
    pub fn notifier(&self) -> Arc<Notify> {
        self.notify.clone()
    }

    /// Updates with detail (what was stored, which payments a reorg touched). A slow receiver
    /// may miss some (`Lagged`): the store stays the source of truth.
    pub fn subscribe(&self) -> broadcast::Receiver<IndexerUpdate> {
        self.updates.subscribe()
    }

    /// [`read_payment_state`] on this indexer's escrow.
    pub async fn read_payment_state(
        &self,
        payment_hash: B256,
    ) -> Result<OnChainPaymentState, IndexerError> {
        read_payment_state(&self.provider, self.config.escrow, payment_hash).await
    }

    /// [`read_payment_states`] on this indexer's escrow.
    pub async fn read_payment_states(
        &self,
        payment_hashes: &[B256],
    ) -> Result<Vec<OnChainPaymentState>, IndexerError> {
        read_payment_states(&self.provider, self.config.escrow, payment_hashes).await
    }

    async fn header(&self, number: u64) -> Result<Option<Header>, IndexerError> {
        let block = self
            .provider
            .get_block_by_number(BlockNumberOrTag::Number(number))
            .await?;
        Ok(block.map(|b| Header {
            number: b.header.number,
            hash: b.header.hash,
            parent_hash: b.header.parent_hash,
        }))
    }

    async fn require_header(&self, number: u64) -> Result<Header, IndexerError> {
        self.header(number)
            .await?
            .ok_or(IndexerError::MissingBlock(number))
    }

    /// One pass: undo a reorg if one happened, then read and store the next range. Idempotent:
    /// calling it again when nothing changed on chain stores nothing.
    pub async fn tick(&self) -> Result<TickOutcome, IndexerError> {
        let span = tracing::info_span!(
            "indexer_tick",
            chain_id = self.config.chain_id,
            escrow = %self.config.escrow
        );
        let outcome = self.tick_inner().instrument(span).await?;
        if let Some(reorg) = &outcome.reorg {
            let mut hashes: Vec<B256> = reorg
                .removed
                .iter()
                .filter_map(|e| e.payment_hash)
                .collect();
            hashes.sort();
            hashes.dedup();
            let _ = self.updates.send(IndexerUpdate::Reorg {
                from_block: reorg.from_block,
                payment_hashes: hashes,
            });
        }
        if let (false, Some((_, to))) = (outcome.new_events.is_empty(), outcome.range) {
            let _ = self.updates.send(IndexerUpdate::NewEvents {
                count: outcome.new_events.len(),
                up_to_block: to,
            });
        }
        if outcome.reorg.is_some() || !outcome.new_events.is_empty() {
            self.notify.notify_one();
        }
        Ok(outcome)
    }

    async fn tick_inner(&self) -> Result<TickOutcome, IndexerError> {
        let cfg = &self.config;
        if !self
            .chain_checked
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            let actual = self.provider.get_chain_id().await?;
            if actual != cfg.chain_id {
                return Err(IndexerError::WrongChain {
                    expected: cfg.chain_id,
                    actual,
                });
            }
            self.chain_checked
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        let head = self.provider.get_block_number().await?;
        let target = match cfg.mode {
            ReadMode::Latest => head,
            ReadMode::Safe { confirmations } => head.saturating_sub(confirmations),
        };
        let mut outcome = TickOutcome {
            target,
            ..TickOutcome::default()
        };

        let (mut next_block, mut last_hash) = self.position().await?;
        if let Some(reorg) = self.check_reorg(next_block, last_hash, head).await? {
            (next_block, last_hash) = (reorg.from_block, reorg.ancestor_hash);
            outcome.reorg = Some(reorg);
        }
        outcome.next_block = next_block;
        if next_block > target {
            return Ok(outcome);
        }
        let from = next_block;
        let mut to = target.min(from.saturating_add(cfg.max_range.max(1) - 1));
        // The last `window` blocks below the head are read header by header (dense); a range
        // does not straddle that boundary, so a dense range is at most `window` blocks.
        let zone_start = head.saturating_sub(u64::from(cfg.window)) + 1;
        if from < zone_start && to >= zone_start {
            to = zone_start - 1;
        }
        let dense = from >= zone_start;
        outcome.range = Some((from, to));
        let span = tracing::debug_span!("range", from, to);
        match self
            .read_range(from, to, last_hash, dense)
            .instrument(span)
            .await?
        {
            None => outcome.raced = true,
            Some(new_events) => {
                outcome.new_events = new_events;
                outcome.next_block = to + 1;
            }
        }
        Ok(outcome)
    }

    /// The stored cursor, or the start block.
    async fn position(&self) -> Result<(u64, Option<B256>), IndexerError> {
        let cfg = &self.config;
        Ok(match self.store.cursor(cfg.chain_id, cfg.escrow).await? {
            Some(c) => (c.next_block, c.last_block_hash),
            None => (cfg.start_block, None),
        })
    }

    /// Step 2: is the block before the cursor still canonical? If not, rewind.
    async fn check_reorg(
        &self,
        next_block: u64,
        last_hash: Option<B256>,
        head: u64,
    ) -> Result<Option<Reorg>, IndexerError> {
        let cfg = &self.config;
        let (Some(last_hash), Some(last_number)) = (last_hash, next_block.checked_sub(1)) else {
            return Ok(None);
        };
        // A block at or below the head that the node cannot find is the node's problem (lagging
        // or load-balanced), not a reorg: fail the pass rather than rewind.
        if last_number <= head && self.require_header(last_number).await?.hash == last_hash {
            return Ok(None);
        }
        // Replaced (or gone, after a rollback): find the newest remembered block still canonical.
        let span = tracing::warn_span!("reorg", last_number, %last_hash);
        async {
            let remembered = self
                .store
                .recent_indexed_blocks(cfg.chain_id, cfg.escrow, cfg.window)
                .await?;
            let mut ancestor = None;
            for block in remembered.iter().filter(|b| b.number < next_block) {
                if block.number > head {
                    continue;
                }
                if self.require_header(block.number).await?.hash == block.hash {
                    ancestor = Some(*block);
                    break;
                }
            }
            let (from_block, ancestor_hash) = match ancestor {
                Some(a) => (a.number + 1, Some(a.hash)),
                None => {
                    let from = next_block
                        .saturating_sub(cfg.reorg_depth)
                        .max(cfg.start_block);
                    tracing::error!(
                        from,
                        window = remembered.len(),
                        "reorg deeper than the remembered window: rewinding blindly"
                    );
                    (from, None)
                }
            };
            let expected = CursorPosition {
                next_block,
                last_block_hash: Some(last_hash),
            };
            let Some(removed) = self
                .store
                .rewind_indexer(
                    cfg.chain_id,
                    cfg.escrow,
                    expected,
                    from_block,
                    ancestor_hash,
                )
                .await?
            else {
                tracing::info!("cursor moved by another indexer instance; not rewinding");
                return Ok(None);
            };
            tracing::warn!(
                from_block,
                removed = removed.len(),
                "reorg undone: cursor rewound to the common ancestor"
            );
            for e in &removed {
                tracing::warn!(
                    payment_hash = ?e.payment_hash,
                    event = %e.event_name,
                    block = e.block_number,
                    "event removed by reorg"
                );
            }
            Ok(Some(Reorg {
                from_block,
                ancestor_hash,
                removed,
            }))
        }
        .instrument(span)
        .await
    }

    /// Step 3 and 4 for `[from, to]`. `None`: a reorg raced the read, nothing stored.
    async fn read_range(
        &self,
        from: u64,
        to: u64,
        parent_of_from: Option<B256>,
        dense: bool,
    ) -> Result<Option<Vec<ChainEvent>>, IndexerError> {
        let cfg = &self.config;
        // Near the head (where reorgs happen) every header, linked by parent hashes; deeper
        // only the last one.
        let mut headers = Vec::new();
        if dense {
            for n in from..=to {
                headers.push(self.require_header(n).await?);
            }
        } else {
            headers.push(self.require_header(to).await?);
            if let Some(parent) = parent_of_from {
                // Still check the link to what we read last.
                if self.require_header(from).await?.parent_hash != parent {
                    tracing::info!("parent hash changed under the read: reorg, retrying");
                    return Ok(None);
                }
            }
        }
        if dense {
            let mut expected = parent_of_from;
            for h in &headers {
                if expected.is_some_and(|p| p != h.parent_hash) {
                    tracing::info!(
                        block = h.number,
                        "parent hash chain broken: reorg, retrying"
                    );
                    return Ok(None);
                }
                expected = Some(h.hash);
            }
        }
        let Some(last) = headers.last().copied() else {
            return Ok(Some(Vec::new()));
        };

        let filter = Filter::new()
            .address(cfg.escrow)
            .from_block(from)
            .to_block(to);
        let logs = self.provider.get_logs(&filter).await?;

        if self.require_header(to).await?.hash != last.hash {
            tracing::info!("head of the range changed during eth_getLogs: reorg, retrying");
            return Ok(None);
        }
        let hash_of = |n: u64| headers.iter().find(|h| h.number == n).map(|h| h.hash);
        let mut decoded = Vec::with_capacity(logs.len());
        for log in &logs {
            let (number, block_hash, log_index, tx_hash) = log_position(log)?;
            if log.removed {
                continue;
            }
            if let Some(expected) = hash_of(number)
                && expected != block_hash
            {
                tracing::info!(block = number, "log from another fork: reorg, retrying");
                return Ok(None);
            }
            match EscrowEvent::decode(&log.inner)? {
                Some(event) => decoded.push((number, block_hash, log_index, tx_hash, event)),
                None => tracing::debug!(block = number, log_index, "not an escrow event; skipped"),
            }
        }

        let events: Vec<NewChainEvent> = decoded
            .into_iter()
            .map(
                |(block_number, block_hash, log_index, tx_hash, event)| NewChainEvent {
                    chain_id: cfg.chain_id,
                    address: cfg.escrow,
                    block_number,
                    block_hash,
                    log_index,
                    tx_hash,
                    event_name: event.name().to_owned(),
                    payment_hash: event.payment_hash(),
                    amount: event.amount(),
                    data: event.to_json(),
                },
            )
            .collect();
        let blocks: Vec<IndexedBlock> = headers
            .iter()
            .map(|h| IndexedBlock {
                number: h.number,
                hash: h.hash,
            })
            .collect();
        let advanced = self
            .store
            .advance_indexer(IndexerAdvance {
                chain_id: cfg.chain_id,
                address: cfg.escrow,
                expected: CursorPosition {
                    next_block: from,
                    last_block_hash: parent_of_from,
                },
                next: CursorPosition {
                    next_block: to + 1,
                    last_block_hash: Some(last.hash),
                },
                events: &events,
                blocks: &blocks,
                keep: cfg.window,
            })
            .await?;
        let Some(stored) = advanced else {
            tracing::info!("cursor moved by another indexer instance; range not recorded");
            return Ok(None);
        };
        for e in &stored {
            tracing::info!(
                payment_hash = ?e.payment_hash,
                event = %e.event_name,
                block = e.block_number,
                log_index = e.log_index,
                "escrow event stored"
            );
        }
        Ok(Some(stored))
    }

    /// Runs passes until `shutdown` becomes true: immediately again while behind, every
    /// `poll_interval` once caught up, and with a doubling pause (up to `max_backoff`) while
    /// passes fail. Never returns an error: failures are logged and retried.
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) {
        let mut failures: u32 = 0;
        loop {
            if *shutdown.borrow() {
                break;
            }
            let pause = match self.tick().await {
                Ok(outcome) => {
                    failures = 0;
                    if outcome.caught_up() {
                        self.config.poll_interval
                    } else {
                        Duration::ZERO
                    }
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let base = if e.is_transient() {
                        self.config.poll_interval
                    } else {
                        self.config.max_backoff
                    };
                    let pause = base
                        .saturating_mul(2u32.saturating_pow(failures.min(16) - 1))
                        .min(self.config.max_backoff);
                    tracing::warn!(error = %e, failures, pause_ms = pause.as_millis() as u64, "indexer pass failed");
                    pause
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                changed = shutdown.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
            }
        }
        tracing::info!("indexer stopped");
    }
}

fn log_position(log: &Log) -> Result<(u64, B256, u64, B256), IndexerError> {
    Ok((
        log.block_number
            .ok_or(IndexerError::IncompleteLog("block number"))?,
        log.block_hash
            .ok_or(IndexerError::IncompleteLog("block hash"))?,
        log.log_index
            .ok_or(IndexerError::IncompleteLog("log index"))?,
        log.transaction_hash
            .ok_or(IndexerError::IncompleteLog("transaction hash"))?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::U256;
    use alloy::primitives::aliases::{U48, U120};
    use x402_escrow_bindings::PaymentInfo;

    fn info() -> PaymentInfo {
        PaymentInfo {
            operator: Address::repeat_byte(1),
            payer: Address::repeat_byte(2),
            receiver: Address::repeat_byte(3),
            token: Address::repeat_byte(4),
            maxAmount: U120::from(1_000_000u64),
            preApprovalExpiry: U48::from(100u64),
            authorizationExpiry: U48::from(200u64),
            refundExpiry: U48::from(300u64),
            minFeeBps: 10,
            maxFeeBps: 100,
            feeReceiver: Address::repeat_byte(5),
            salt: U256::from(0xabcdefu64),
        }
    }

    #[test]
    fn json_round_trips_every_kind() {
        let h = B256::repeat_byte(9);
        let events = [
            EscrowEvent::Authorized {
                payment_hash: h,
                payment_info: info(),
                amount: 5,
                token_collector: Address::repeat_byte(6),
            },
            EscrowEvent::Charged {
                payment_hash: h,
                payment_info: info(),
                amount: u128::from(u64::MAX) * 1000,
                token_collector: Address::repeat_byte(6),
                fee_bps: 50,
                fee_receiver: Address::repeat_byte(7),
            },
            EscrowEvent::Captured {
                payment_hash: h,
                amount: 3,
                fee_bps: 100,
                fee_receiver: Address::repeat_byte(7),
            },
            EscrowEvent::Voided {
                payment_hash: h,
                amount: 2,
            },
            EscrowEvent::Reclaimed {
                payment_hash: h,
                amount: 2,
            },
            EscrowEvent::Refunded {
                payment_hash: h,
                amount: 1,
                token_collector: Address::repeat_byte(8),
            },
            EscrowEvent::TokenStoreCreated {
                operator: Address::repeat_byte(1),
                token_store: Address::repeat_byte(2),
            },
        ];
        for e in events {
            assert_eq!(EscrowEvent::from_json(&e.to_json()).unwrap(), e);
        }
        assert!(EscrowEvent::from_json(&serde_json::json!({"event": "Nope"})).is_err());
        assert!(EscrowEvent::from_json(&serde_json::json!({"event": "PaymentVoided"})).is_err());
    }

    #[test]
    fn effects() {
        use crate::lifecycle::PaymentEvent;
        let h = B256::repeat_byte(1);
        assert_eq!(
            event_effect(&EscrowEvent::Reclaimed {
                payment_hash: h,
                amount: 7
            }),
            EventEffect::Payment {
                payment_hash: h,
                event: PaymentEvent::ReclaimObserved { amount: 7 },
                origin: Origin::Payer
            }
        );
        assert_eq!(
            event_effect(&EscrowEvent::Captured {
                payment_hash: h,
                amount: 4,
                fee_bps: 0,
                fee_receiver: Address::ZERO
            }),
            EventEffect::Payment {
                payment_hash: h,
                event: PaymentEvent::CaptureConfirmed { amount: 4 },
                origin: Origin::Operator
            }
        );
        assert_eq!(
            event_effect(&EscrowEvent::TokenStoreCreated {
                operator: Address::repeat_byte(1),
                token_store: Address::ZERO
            }),
            EventEffect::None
        );
    }
}
