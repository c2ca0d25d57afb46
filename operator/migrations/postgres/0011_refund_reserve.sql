-- Refund reserve per merchant (issue 13): refunds are charged to the merchant that owns the
-- payment, from a ledger of its own, instead of the operator's shared float.
--
-- reserve_entries is the ledger (append-only): every credit (admin, deposit, capture top-up),
-- debit (a refund queued, or a deposit a reorg took back) and release (a failed refund's amount
-- given back), with the balance it left. reserve_balances keeps the running balance per
-- (merchant, asset), updated in the same transaction as each entry; it is also the row every
-- ledger write locks first (FOR UPDATE on PostgreSQL; SQLite has one writer), so two refunds of
-- one merchant can never both spend the same balance.

CREATE TABLE reserve_balances (
    merchant_id           TEXT NOT NULL REFERENCES merchants (id),
    asset                 TEXT NOT NULL,             -- token address
    balance               TEXT NOT NULL DEFAULT '0', -- credited - debited + released
    credited              TEXT NOT NULL DEFAULT '0',
    debited               TEXT NOT NULL DEFAULT '0',
    released              TEXT NOT NULL DEFAULT '0',
    updated_at            BIGINT NOT NULL,
    PRIMARY KEY (merchant_id, asset)
);

CREATE TABLE reserve_entries (
    id                    TEXT PRIMARY KEY,          -- UUIDv7: sorts by creation time
    merchant_id           TEXT NOT NULL REFERENCES merchants (id),
    asset                 TEXT NOT NULL,
    kind                  TEXT NOT NULL CHECK (kind IN ('credit', 'debit', 'release')),
    amount                TEXT NOT NULL,             -- token units, decimal, > 0
    balance_after         TEXT NOT NULL,
    reason                TEXT NOT NULL,             -- admin, deposit, capture_topup, refund, refund_failed, deposit_reorged
    payment_id            TEXT,                      -- the refund's or the capture's payment
    chain_tx_id           TEXT,                      -- the outbox row of the refund / capture
    tx_hash               TEXT,                      -- a deposit's transaction
    log_index             BIGINT,                    -- a deposit's log
    chain_event_id        TEXT,                      -- a deposit's chain_events row
    ref_key               TEXT UNIQUE,               -- idempotency of an entry (a deposit credited once)
    note                  TEXT,
    created_at            BIGINT NOT NULL
);
CREATE INDEX reserve_entries_merchant ON reserve_entries (merchant_id, id);
CREATE INDEX reserve_entries_payment ON reserve_entries (payment_id);
CREATE INDEX reserve_entries_deposit ON reserve_entries (tx_hash, log_index);

-- Addresses a merchant deposits its reserve from (one merchant per address).
CREATE TABLE merchant_deposit_addresses (
    address               TEXT PRIMARY KEY,
    merchant_id           TEXT NOT NULL REFERENCES merchants (id),
    created_at            BIGINT NOT NULL
);
CREATE INDEX merchant_deposit_addresses_merchant ON merchant_deposit_addresses (merchant_id);

-- Automatic top-up: this share (basis points) of each capture is routed to the refund account
-- as part of the fee, within the payment's signed fee bounds.
CREATE TABLE reserve_topup_rules (
    merchant_id           TEXT PRIMARY KEY REFERENCES merchants (id),
    share_bps             BIGINT NOT NULL CHECK (share_bps > 0 AND share_bps <= 10000),
    updated_at            BIGINT NOT NULL
);

-- One row per capture the rule applied to: planned with the capture, credited on its outcome.
CREATE TABLE reserve_topups (
    id                    TEXT PRIMARY KEY,
    payment_id            TEXT NOT NULL REFERENCES payments (id),
    merchant_id           TEXT NOT NULL REFERENCES merchants (id),
    asset                 TEXT NOT NULL,
    capture_amount        TEXT NOT NULL,
    share_bps             BIGINT NOT NULL,
    amount                TEXT NOT NULL,             -- the reserve's share of the capture (0 when skipped)
    status                TEXT NOT NULL CHECK (status IN ('pending', 'credited', 'cancelled', 'skipped')),
    reason                TEXT,                      -- why skipped or cancelled
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL
);
CREATE INDEX reserve_topups_payment ON reserve_topups (payment_id, status);
