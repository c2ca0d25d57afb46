//! Steps 3 and 4 of a pass: read a range's headers and logs, and store its events with the
//! cursor move in one transaction.

use alloy::sol_types::SolEvent;
use x402_escrow_bindings::IERC20;

use super::*;
use crate::store::DEPOSIT_EVENT;

impl Indexer {
    /// Step 3 and 4 for `[from, to]`. `None`: a reorg raced the read, nothing stored.
    pub(super) async fn read_range(
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
        let deposit_logs = match &self.deposits {
            Some(watch) => {
                let filter = Filter::new()
                    .address(watch.tokens.clone())
                    .event_signature(IERC20::Transfer::SIGNATURE_HASH)
                    .topic2(watch.refund_account.into_word())
                    .from_block(from)
                    .to_block(to);
                self.provider.get_logs(&filter).await?
            }
            None => Vec::new(),
        };

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

        let mut deposits = Vec::with_capacity(deposit_logs.len());
        for log in &deposit_logs {
            let (number, block_hash, log_index, tx_hash) = log_position(log)?;
            if log.removed {
                continue;
            }
            if let Some(expected) = hash_of(number)
                && expected != block_hash
            {
                tracing::info!(block = number, "deposit from another fork: reorg, retrying");
                return Ok(None);
            }
            let Ok(transfer) = IERC20::Transfer::decode_log(&log.inner) else {
                tracing::debug!(block = number, log_index, "not a Transfer; skipped");
                continue;
            };
            let value = u128::try_from(transfer.value).ok();
            deposits.push(NewChainEvent {
                chain_id: cfg.chain_id,
                address: log.address(),
                block_number: number,
                block_hash,
                log_index,
                tx_hash,
                event_name: DEPOSIT_EVENT.to_owned(),
                payment_hash: None,
                amount: value,
                data: serde_json::json!({
                    "token": format!("{:#x}", log.address()),
                    "from": format!("{:#x}", transfer.from),
                    "to": format!("{:#x}", transfer.to),
                    "value": transfer.value.to_string(),
                }),
            });
        }

        let mut events: Vec<NewChainEvent> = decoded
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
        events.extend(deposits);
        events.sort_by_key(|e| (e.block_number, e.log_index));
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
