//! One pass's plan: check the chain id, read the cursor, undo a reorg, pick the range.

use super::*;

impl Indexer {
    pub(super) async fn header(&self, number: u64) -> Result<Option<Header>, IndexerError> {
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

    pub(super) async fn require_header(&self, number: u64) -> Result<Header, IndexerError> {
        self.header(number)
            .await?
            .ok_or(IndexerError::MissingBlock(number))
    }

    pub(super) async fn tick_inner(&self) -> Result<TickOutcome, IndexerError> {
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
    pub(super) async fn position(&self) -> Result<(u64, Option<B256>), IndexerError> {
        let cfg = &self.config;
        Ok(match self.store.cursor(cfg.chain_id, cfg.escrow).await? {
            Some(c) => (c.next_block, c.last_block_hash),
            None => (cfg.start_block, None),
        })
    }
}
