-- Batched captures and voids. A `capture_batch` / `void_batch` row of `chain_txs` carries several
-- payments; this table lists them. Each member was first written as its own `capture` / `void`
-- row (the durable intent, written with the payment's transition); the batcher merges queued
-- rows into one batch row in one SQL transaction (members `abandoned`, payments' pending_tx_id
-- moved to the batch). When the batch fails as a whole, each member is re-sent on its own
-- (`fallback_tx_id`), and such a row is never batched again.
CREATE TABLE chain_tx_members (
    batch_tx_id           TEXT NOT NULL REFERENCES chain_txs (id),
    position              BIGINT NOT NULL,           -- index in the batch call's array
    payment_id            TEXT NOT NULL REFERENCES payments (id),
    source_tx_id          TEXT NOT NULL REFERENCES chain_txs (id), -- the single row merged into the batch
    fallback_tx_id        TEXT REFERENCES chain_txs (id),          -- the single row re-sent after a failed batch
    PRIMARY KEY (batch_tx_id, position)
);
CREATE UNIQUE INDEX chain_tx_members_source ON chain_tx_members (source_tx_id);
CREATE INDEX chain_tx_members_payment ON chain_tx_members (payment_id);
CREATE INDEX chain_tx_members_fallback ON chain_tx_members (fallback_tx_id);
