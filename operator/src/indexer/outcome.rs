//! What a pass reports: [`TickOutcome`], the [`Reorg`] it undid, and the [`IndexerUpdate`]s
//! broadcast to subscribers.

use alloy::primitives::B256;

use crate::store::ChainEvent;

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

/// What one [`Indexer::tick`](super::Indexer::tick) did.
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
