-- `exact` transfers ride in `execute` batches too (issue 11): a batch member is then a queued
-- `transfer` row, which belongs to no payment. Its outcome is written back on that row (the
-- intent a retried `/settle` finds by its key), so the member needs no payment.
ALTER TABLE chain_tx_members ALTER COLUMN payment_id DROP NOT NULL;
-- Transfers merged into a batch and still waiting for its outcome (few at any time): what the
-- outcome sweep looks for after a restart.
CREATE INDEX chain_txs_merged_transfers ON chain_txs (id) WHERE kind = 'transfer' AND status = 'abandoned';
