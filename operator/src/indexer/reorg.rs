//! Step 2 of a pass: is the block before the cursor still canonical? If not, find the common
//! ancestor and rewind.

use super::*;

impl Indexer {
    /// Step 2: is the block before the cursor still canonical? If not, rewind.
    pub(super) async fn check_reorg(
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
}
