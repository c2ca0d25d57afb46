-- x402-escrow operator schema, version 1.
--
-- The same logical schema exists for SQLite and PostgreSQL (migrations/<backend>/, same version
-- numbers). Portable types only: BIGINT integers (unix milliseconds for our own timestamps),
-- TEXT for addresses / hashes (lower-case 0x hex), decimal TEXT for token amounts and other
-- uint256 numbers, TEXT JSON documents, BIGINT 0/1 for flags. Ids are UUIDv7 text made by the
-- operator, so they sort by creation time.

CREATE TABLE merchants (
    id                    TEXT PRIMARY KEY,
    name                  TEXT NOT NULL,
    api_key_hash          TEXT NOT NULL UNIQUE,      -- SHA-256 hex of the API key; the key itself is never stored
    receivers             TEXT NOT NULL,             -- JSON array of receiver addresses
    webhook_url           TEXT,
    webhook_secret        TEXT,                      -- Standard Webhooks secret (whsec_…)
    webhook_disabled_at   BIGINT,                    -- set when the endpoint answered 410 Gone
    capture_deadline_secs BIGINT NOT NULL,           -- auto-void uncaptured holds after this long
    created_at            BIGINT NOT NULL
);

CREATE TABLE payments (
    id                    TEXT PRIMARY KEY,
    merchant_id           TEXT NOT NULL REFERENCES merchants (id),
    payment_hash          TEXT NOT NULL UNIQUE,      -- escrow getHash(paymentInfo): includes chain and escrow
    chain_id              BIGINT NOT NULL,
    escrow                TEXT NOT NULL,
    -- PaymentInfo, field by field (expiries are the chain's unix SECONDS, as in the struct)
    operator              TEXT NOT NULL,
    payer                 TEXT NOT NULL,
    receiver              TEXT NOT NULL,
    token                 TEXT NOT NULL,
    max_amount            TEXT NOT NULL,
    pre_approval_expiry   BIGINT NOT NULL,
    authorization_expiry  BIGINT NOT NULL,
    refund_expiry         BIGINT NOT NULL,
    min_fee_bps           BIGINT NOT NULL,
    max_fee_bps           BIGINT NOT NULL,
    fee_receiver          TEXT NOT NULL,
    salt                  TEXT NOT NULL,             -- uint256, decimal
    amount                TEXT NOT NULL,             -- what the authorize / charge asks for
    request_id            TEXT,
    idempotency_key       TEXT,
    flow                  TEXT NOT NULL CHECK (flow IN ('authorize', 'charge')),
    status                TEXT NOT NULL,             -- lifecycle::PaymentStatus::as_str
    authorized_amount     TEXT NOT NULL DEFAULT '0',
    captured_amount       TEXT NOT NULL DEFAULT '0',
    refunded_amount       TEXT NOT NULL DEFAULT '0',
    released_amount       TEXT NOT NULL DEFAULT '0', -- voided, reclaimed or past authorizationExpiry
    capture_deadline_at   BIGINT,                    -- auto-void time (unix ms)
    pending_tx_id         TEXT,                      -- the chain_txs row in flight for it (no FK: written in the same transaction)
    last_error_code       TEXT,
    last_error_message    TEXT,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    version               BIGINT NOT NULL DEFAULT 0  -- optimistic concurrency: every transition bumps it
);
CREATE INDEX payments_merchant ON payments (merchant_id, id);
CREATE INDEX payments_request ON payments (merchant_id, request_id);
CREATE INDEX payments_status ON payments (status, capture_deadline_at);

-- The outbox: every chain action is written here (in the transaction that decides it) before it
-- is signed or sent.
CREATE TABLE chain_txs (
    id                    TEXT PRIMARY KEY,
    chain_id              BIGINT NOT NULL,
    signer                TEXT NOT NULL,
    kind                  TEXT NOT NULL CHECK (kind IN ('authorize', 'charge', 'capture', 'void', 'refund',
                                                        'capture_batch', 'void_batch', 'nonce_fill')),
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
    updated_at            BIGINT NOT NULL
);
-- One live transaction per (signer, nonce); an abandoned one gives its nonce to a nonce_fill.
CREATE UNIQUE INDEX chain_txs_nonce ON chain_txs (chain_id, signer, nonce)
    WHERE nonce IS NOT NULL AND status <> 'abandoned';
CREATE INDEX chain_txs_queue ON chain_txs (chain_id, signer, status, created_at);
CREATE INDEX chain_txs_payment ON chain_txs (payment_id);

-- Every signed version of a chain transaction (the original and each fee bump).
CREATE TABLE tx_attempts (
    id                       TEXT PRIMARY KEY,
    chain_tx_id              TEXT NOT NULL REFERENCES chain_txs (id),
    tx_hash                  TEXT NOT NULL UNIQUE,
    raw_tx                   TEXT NOT NULL,          -- signed bytes, 0x hex: re-broadcast without re-signing
    max_fee_per_gas          TEXT NOT NULL,
    max_priority_fee_per_gas TEXT NOT NULL,
    created_at               BIGINT NOT NULL,
    broadcast_at             BIGINT
);
CREATE INDEX tx_attempts_chain_tx ON tx_attempts (chain_tx_id, created_at);

-- The database owns each signer's nonce; the lease says which instance drives the key.
CREATE TABLE signers (
    chain_id              BIGINT NOT NULL,
    address               TEXT NOT NULL,
    next_nonce            BIGINT NOT NULL,
    lease_owner           TEXT,
    lease_expires_at      BIGINT,
    updated_at            BIGINT NOT NULL,
    PRIMARY KEY (chain_id, address)
);

CREATE TABLE chain_events (
    id                    TEXT PRIMARY KEY,
    chain_id              BIGINT NOT NULL,
    address               TEXT NOT NULL,             -- the emitting contract (escrow)
    block_number          BIGINT NOT NULL,
    block_hash            TEXT NOT NULL,
    log_index             BIGINT NOT NULL,
    tx_hash               TEXT NOT NULL,
    event_name            TEXT NOT NULL,
    payment_hash          TEXT,
    amount                TEXT,
    data                  TEXT NOT NULL,             -- JSON: the decoded event
    removed               BIGINT NOT NULL DEFAULT 0, -- 1 once a reorg dropped its block
    processed_at          BIGINT,                    -- when the engine reconciled it
    created_at            BIGINT NOT NULL,
    UNIQUE (chain_id, block_hash, log_index)
);
CREATE INDEX chain_events_block ON chain_events (chain_id, address, block_number);
CREATE INDEX chain_events_payment ON chain_events (payment_hash);
CREATE INDEX chain_events_pending ON chain_events (processed_at, removed);

CREATE TABLE indexer_cursors (
    chain_id              BIGINT NOT NULL,
    address               TEXT NOT NULL,
    next_block            BIGINT NOT NULL,           -- the first block not yet read
    last_block_hash       TEXT,                      -- hash of next_block - 1 when it was read
    updated_at            BIGINT NOT NULL,
    PRIMARY KEY (chain_id, address)
);

CREATE TABLE webhook_events (
    id                    TEXT PRIMARY KEY,          -- the Standard Webhooks webhook-id
    merchant_id           TEXT NOT NULL REFERENCES merchants (id),
    payment_id            TEXT REFERENCES payments (id),
    event_type            TEXT NOT NULL,             -- payment.authorized, payment.captured, …
    payload               TEXT NOT NULL,             -- JSON body (carries the request id)
    created_at            BIGINT NOT NULL
);
CREATE INDEX webhook_events_payment ON webhook_events (payment_id, created_at);

-- One row per event: the delivery state, its attempts counter and the worker's lease on it.
CREATE TABLE webhook_deliveries (
    id                    TEXT PRIMARY KEY,
    event_id              TEXT NOT NULL UNIQUE REFERENCES webhook_events (id),
    merchant_id           TEXT NOT NULL REFERENCES merchants (id),
    status                TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed', 'disabled')),
    attempts              BIGINT NOT NULL DEFAULT 0,
    next_attempt_at       BIGINT NOT NULL,
    locked_by             TEXT,
    locked_until          BIGINT,
    response_status       BIGINT,
    last_error            TEXT,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    delivered_at          BIGINT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);

CREATE TABLE idempotency_keys (
    merchant_id           TEXT NOT NULL REFERENCES merchants (id),
    idem_key              TEXT NOT NULL,
    request_fingerprint   TEXT NOT NULL,             -- SHA-256 hex of method, path and body
    status                TEXT NOT NULL CHECK (status IN ('in_flight', 'completed')),
    response_status       BIGINT,
    response_body         TEXT,
    locked_until          BIGINT,                    -- an in-flight request past this is taken over
    created_at            BIGINT NOT NULL,
    expires_at            BIGINT NOT NULL,
    PRIMARY KEY (merchant_id, idem_key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);
