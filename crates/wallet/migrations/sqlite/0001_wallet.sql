-- x402-escrow wallet: payment keys, the spend ledger and the audit log.
-- Times are unix milliseconds (expires_at, valid_before: unix seconds); amounts decimal TEXT.
CREATE TABLE wallet_keys (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    buyer       TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    rules       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT,
    revoked_at  BIGINT,
    disabled    BIGINT NOT NULL DEFAULT 0,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE wallet_payments (
    id              TEXT PRIMARY KEY,
    key_id          TEXT NOT NULL REFERENCES wallet_keys (id),
    idempotency_key TEXT NOT NULL,
    request_hash    TEXT NOT NULL,
    url             TEXT NOT NULL,
    method          TEXT NOT NULL,
    scheme          TEXT,
    network         TEXT,
    asset           TEXT,
    payee           TEXT,
    amount          TEXT NOT NULL,
    returned        TEXT NOT NULL DEFAULT '0',
    state           TEXT NOT NULL,
    rule            TEXT,
    detail          TEXT,
    header_name     TEXT,
    header_value    TEXT,
    payment_hash    TEXT,
    escrow          TEXT,
    random          TEXT,
    payer           TEXT,
    valid_before    BIGINT,
    receipt         TEXT,
    tx_hash         TEXT,
    http_status     BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE UNIQUE INDEX wallet_payments_idempotency ON wallet_payments (key_id, idempotency_key);
CREATE INDEX wallet_payments_key_created ON wallet_payments (key_id, created_at);
CREATE INDEX wallet_payments_state ON wallet_payments (state);

CREATE TABLE wallet_audit (
    id          TEXT PRIMARY KEY,
    at          BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    key_id      TEXT,
    payment_id  TEXT,
    decision    TEXT NOT NULL,
    rule        TEXT,
    detail      TEXT NOT NULL
);
CREATE INDEX wallet_audit_payment ON wallet_audit (payment_id);
