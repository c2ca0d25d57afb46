-- The relayer looks for nonce gaps (a nonce reserved, then abandoned, and held by no live row)
-- on every monitor pass. Through `chain_txs_queue` that read visited every abandoned row of the
-- signer, and every single merged into a batch stays `abandoned` for good: two rows per paid
-- request, so the read grew with the history (issue 11). Only rows that held a nonce matter, and
-- they are rare: indexed apart, by nonce.
CREATE INDEX chain_txs_abandoned_nonce ON chain_txs (chain_id, signer, nonce)
    WHERE status = 'abandoned' AND nonce IS NOT NULL;
