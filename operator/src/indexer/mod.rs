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
//!    With [`Indexer::with_deposits`], a second `eth_getLogs` over the same range reads the
//!    tokens' `Transfer`s to the refund account (refund-reserve deposits, `ReserveDeposit`).
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
//!
//! # Layout
//!
//! - this file: [`Indexer`] (construction, [`Indexer::tick`], [`Indexer::run`]);
//! - `settings`: [`IndexerConfig`] and [`ReadMode`];
//! - `error`: [`IndexerError`];
//! - `outcome`: what a pass reports ([`TickOutcome`], [`Reorg`], [`IndexerUpdate`]);
//! - `state`: `paymentState` reads ([`read_payment_state`], [`read_payment_states`]);
//! - `pass`: one pass's plan (chain check, cursor, target, range);
//! - `reorg`: step 2, the reorg check and rewind;
//! - `read`: steps 3 and 4, reading a range and storing its events;
//! - `event`: decoding escrow logs ([`EscrowEvent`]) and their stored JSON form;
//! - `effect`: what each event means for a payment ([`event_effect`]).

mod effect;
mod error;
mod event;
mod outcome;
mod pass;
mod read;
mod reorg;
mod settings;
mod state;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use alloy::eips::BlockNumberOrTag;
use alloy::primitives::B256;
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::{Filter, Log};
use tokio::sync::{Notify, broadcast, watch};
use tracing::Instrument;

use crate::store::{
    ChainEvent, CursorPosition, IndexedBlock, IndexerAdvance, NewChainEvent, Store,
};

pub use effect::{EventEffect, Origin, event_effect, stored_event_effect};
pub use error::IndexerError;
pub use event::{EscrowEvent, EventDecodeError, EventFee};
pub use outcome::{IndexerUpdate, Reorg, TickOutcome};
pub use settings::{IndexerConfig, ReadMode};
pub use state::{OnChainPaymentState, read_payment_state, read_payment_states};

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
    deposits: Option<DepositWatch>,
}

/// Refund-reserve deposits the indexer also follows ([`Indexer::with_deposits`]): ERC-20
/// `Transfer`s of `tokens` to `refund_account`, stored as `ReserveDeposit` chain events with the
/// escrow's (same range, same reorg handling, same transaction as the cursor move).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepositWatch {
    /// The operator's refund account (the signer the refund collector pulls from).
    pub refund_account: alloy::primitives::Address,
    /// The tokens whose transfers count.
    pub tokens: Vec<alloy::primitives::Address>,
}

/// A header's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Header {
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
            deposits: None,
        }
    }

    /// Also follows refund-reserve deposits ([`DepositWatch`]; nothing when it has no tokens).
    pub fn with_deposits(mut self, watch: DepositWatch) -> Indexer {
        self.deposits = Some(watch).filter(|w| !w.tokens.is_empty());
        self
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
