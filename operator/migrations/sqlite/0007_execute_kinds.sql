-- no-transaction
-- Outbox kinds of the general batch path (issue 11):
--
-- - `execute`: one transaction from the operator's signer to itself, `execute(calls)` of the
--   OperatorBatchExecutor its account delegates to (EIP-7702); it carries the calls of several
--   payments' single rows (`chain_tx_members`), any escrow kind mixed;
-- - `delegate`: the EIP-7702 transaction that points the signer's account at the executor.
--
-- SQLite cannot change a CHECK constraint in place: the table is rebuilt as in 0006 (new table,
-- copy, drop, rename, indexes again), with foreign keys off outside the transaction.
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE chain_txs_new (
    id                    TEXT PRIMARY KEY,
    chain_id              BIGINT NOT NULL,
    signer                TEXT NOT NULL,
    kind                  TEXT NOT NULL CHECK (kind IN ('authorize', 'charge', 'capture', 'void', 'refund',
                                                        'capture_batch', 'void_batch', 'nonce_fill',
                                                        'transfer', 'approve', 'execute', 'delegate')),
    payment_id            TEXT REFERENCES payments (id),
    request               TEXT NOT NULL,             -- JSON: the call's arguments
    to_address            TEXT NOT NULL,
    calldata              TEXT NOT NULL,             -- 0x hex
    value                 TEXT NOT NULL DEFAULT '0', -- wei, decimal
    gas_limit             BIGINT,
    nonce                 BIGINT,                    -- NULL until reserved
    status                TEXT NOT NULL CHECK (status IN ('queued', 'reserved', 'signed', 'broadcast', 'mined',
                                                          'final', 'reverted', 'abandoned')),
    succeeded             BIGINT,                    -- receipt status once mined (1 / 0)
    revert_reason         TEXT,
    mined_tx_hash         TEXT,                      -- which attempt was mined
    block_number          BIGINT,
    block_hash            TEXT,
    gas_used              BIGINT,
    effective_gas_price   TEXT,
    attempts              BIGINT NOT NULL DEFAULT 0, -- signed attempts (replacements included)
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    intent_key            TEXT                       -- rows without a payment: what they stand for
);
INSERT INTO chain_txs_new (id, chain_id, signer, kind, payment_id, request, to_address, calldata, value,
    gas_limit, nonce, status, succeeded, revert_reason, mined_tx_hash, block_number, block_hash, gas_used,
    effective_gas_price, attempts, created_at, updated_at, intent_key)
SELECT id, chain_id, signer, kind, payment_id, request, to_address, calldata, value,
    gas_limit, nonce, status, succeeded, revert_reason, mined_tx_hash, block_number, block_hash, gas_used,
    effective_gas_price, attempts, created_at, updated_at, intent_key
FROM chain_txs;
DROP TABLE chain_txs;
ALTER TABLE chain_txs_new RENAME TO chain_txs;
-- One live transaction per (signer, nonce); an abandoned one gives its nonce to a nonce_fill.
CREATE UNIQUE INDEX chain_txs_nonce ON chain_txs (chain_id, signer, nonce)
    WHERE nonce IS NOT NULL AND status <> 'abandoned';
CREATE INDEX chain_txs_queue ON chain_txs (chain_id, signer, status, created_at);
CREATE INDEX chain_txs_payment ON chain_txs (payment_id);
CREATE UNIQUE INDEX chain_txs_intent ON chain_txs (intent_key) WHERE intent_key IS NOT NULL;
COMMIT;
PRAGMA foreign_keys = ON;
