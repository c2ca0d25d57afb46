-- Outbox kinds of the general batch path (issue 11):
--
-- - `execute`: one transaction from the operator's signer to itself, `execute(calls)` of the
--   OperatorBatchExecutor its account delegates to (EIP-7702); it carries the calls of several
--   payments' single rows (`chain_tx_members`), any escrow kind mixed;
-- - `delegate`: the EIP-7702 transaction that points the signer's account at the executor.
ALTER TABLE chain_txs DROP CONSTRAINT chain_txs_kind_check;
ALTER TABLE chain_txs ADD CONSTRAINT chain_txs_kind_check
    CHECK (kind IN ('authorize', 'charge', 'capture', 'void', 'refund', 'capture_batch', 'void_batch',
                    'nonce_fill', 'transfer', 'approve', 'execute', 'delegate'));
