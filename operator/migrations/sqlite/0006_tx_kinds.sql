-- no-transaction
-- Outbox kinds that say what they are, and the intent key of rows without a payment.
--
-- - `transfer`: an `exact` ERC-3009 `transferWithAuthorization` (filed as `charge` before);
-- - `approve`: the refund float's ERC-20 allowance (filed as `refund` before);
-- - `intent_key`: what a row without a payment stands for, unique when set (an `exact` transfer:
--   chain, token, payer and ERC-3009 nonce), so a retried `/settle` finds its row, also after a
--   restart or on another instance.
--
-- SQLite cannot change a CHECK constraint in place: the table is rebuilt the SQLite way (new
-- table, copy, drop, rename, indexes again), with foreign keys off while `tx_attempts` and
-- `chain_tx_members` point at it (a PRAGMA that works only outside a transaction, hence
-- `no-transaction` above and the explicit transaction below).
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE chain_txs_new (
    id                    TEXT PRIMARY KEY,
    chain_id              BIGINT NOT NULL,
    signer                TEXT NOT NULL,
    kind                  TEXT NOT NULL CHECK (kind IN ('authorize', 'charge', 'capture', 'void', 'refund',
                                                        'capture_batch', 'void_batch', 'nonce_fill',
                                                        'transfer', 'approve')),
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
    effective_gas_price, attempts, created_at, updated_at)
SELECT id, chain_id, signer, kind, payment_id, request, to_address, calldata, value,
    gas_limit, nonce, status, succeeded, revert_reason, mined_tx_hash, block_number, block_hash, gas_used,
    effective_gas_price, attempts, created_at, updated_at
FROM chain_txs;
DROP TABLE chain_txs;
ALTER TABLE chain_txs_new RENAME TO chain_txs;
-- One live transaction per (signer, nonce); an abandoned one gives its nonce to a nonce_fill.
CREATE UNIQUE INDEX chain_txs_nonce ON chain_txs (chain_id, signer, nonce)
    WHERE nonce IS NOT NULL AND status <> 'abandoned';
CREATE INDEX chain_txs_queue ON chain_txs (chain_id, signer, status, created_at);
CREATE INDEX chain_txs_payment ON chain_txs (payment_id);
CREATE UNIQUE INDEX chain_txs_intent ON chain_txs (intent_key) WHERE intent_key IS NOT NULL;
-- Rows written under the stopgap kinds (no payment, the call named in the request).
UPDATE chain_txs SET kind = 'transfer'
    WHERE kind = 'charge' AND payment_id IS NULL
      AND json_extract(request, '$.call') = 'transferWithAuthorization';
UPDATE chain_txs SET kind = 'approve'
    WHERE kind = 'refund' AND payment_id IS NULL AND json_extract(request, '$.call') = 'approve';
COMMIT;
PRAGMA foreign_keys = ON;
