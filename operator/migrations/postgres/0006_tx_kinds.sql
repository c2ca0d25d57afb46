-- Outbox kinds that say what they are, and the intent key of rows without a payment.
--
-- - `transfer`: an `exact` ERC-3009 `transferWithAuthorization` (filed as `charge` before);
-- - `approve`: the refund float's ERC-20 allowance (filed as `refund` before);
-- - `intent_key`: what a row without a payment stands for, unique when set (an `exact` transfer:
--   chain, token, payer and ERC-3009 nonce), so a retried `/settle` finds its row, also after a
--   restart or on another instance.
ALTER TABLE chain_txs DROP CONSTRAINT chain_txs_kind_check;
ALTER TABLE chain_txs ADD CONSTRAINT chain_txs_kind_check
    CHECK (kind IN ('authorize', 'charge', 'capture', 'void', 'refund', 'capture_batch', 'void_batch',
                    'nonce_fill', 'transfer', 'approve'));
ALTER TABLE chain_txs ADD COLUMN intent_key TEXT;
CREATE UNIQUE INDEX chain_txs_intent ON chain_txs (intent_key) WHERE intent_key IS NOT NULL;
-- Rows written under the stopgap kinds (no payment, the call named in the request).
UPDATE chain_txs SET kind = 'transfer'
    WHERE kind = 'charge' AND payment_id IS NULL
      AND request::jsonb ->> 'call' = 'transferWithAuthorization';
UPDATE chain_txs SET kind = 'approve'
    WHERE kind = 'refund' AND payment_id IS NULL AND request::jsonb ->> 'call' = 'approve';
