-- The indexer's window of recent block hashes (per followed contract), so reorg detection and the
-- walk back to the common ancestor survive restarts. Only the newest few dozen rows are kept.
CREATE TABLE indexer_blocks (
    chain_id              BIGINT NOT NULL,
    address               TEXT NOT NULL,             -- the contract followed
    block_number          BIGINT NOT NULL,
    block_hash            TEXT NOT NULL,
    PRIMARY KEY (chain_id, address, block_number)
);
