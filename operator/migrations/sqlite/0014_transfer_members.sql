-- `exact` transfers ride in `execute` batches too (issue 11): a batch member is then a queued
-- `transfer` row, which belongs to no payment. Its outcome is written back on that row (the
-- intent a retried `/settle` finds by its key), so the member needs no payment.
--
-- SQLite cannot drop a NOT NULL in place: the table is rebuilt (nothing references it, so this
-- runs inside the migration's transaction with foreign keys on).
CREATE TABLE chain_tx_members_new (
    batch_tx_id           TEXT NOT NULL REFERENCES chain_txs (id),
    position              BIGINT NOT NULL,           -- index in the batch call's array
    payment_id            TEXT REFERENCES payments (id), -- NULL for a `transfer` member
    source_tx_id          TEXT NOT NULL REFERENCES chain_txs (id), -- the single row merged into the batch
    fallback_tx_id        TEXT REFERENCES chain_txs (id),          -- the single row re-sent after a failed batch
    PRIMARY KEY (batch_tx_id, position)
);
INSERT INTO chain_tx_members_new (batch_tx_id, position, payment_id, source_tx_id, fallback_tx_id)
SELECT batch_tx_id, position, payment_id, source_tx_id, fallback_tx_id FROM chain_tx_members;
DROP TABLE chain_tx_members;
ALTER TABLE chain_tx_members_new RENAME TO chain_tx_members;
CREATE UNIQUE INDEX chain_tx_members_source ON chain_tx_members (source_tx_id);
CREATE INDEX chain_tx_members_payment ON chain_tx_members (payment_id);
CREATE INDEX chain_tx_members_fallback ON chain_tx_members (fallback_tx_id);
-- Transfers merged into a batch and still waiting for its outcome (few at any time): what the
-- outcome sweep looks for after a restart.
CREATE INDEX chain_txs_merged_transfers ON chain_txs (id) WHERE kind = 'transfer' AND status = 'abandoned';
