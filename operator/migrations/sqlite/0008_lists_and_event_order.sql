-- The merchant API's lists and the order of a payment's webhook events.
--
-- GET /v1/payments pages a merchant's payments newest first by (created_at, id); GET /v1/events
-- pages its webhook events oldest first by the same key.
CREATE INDEX payments_merchant_created ON payments (merchant_id, created_at, id);
CREATE INDEX webhook_events_merchant_created ON webhook_events (merchant_id, created_at, id);

-- A payment's events are numbered 1, 2, … in the order they were written (the payload carries
-- the number as `sequence`); the webhook worker does not send one while an earlier one of the
-- same payment is still pending. Events not about a payment have none.
ALTER TABLE webhook_events ADD COLUMN sequence BIGINT;
UPDATE webhook_events SET sequence = (
    SELECT COUNT(*) FROM webhook_events AS earlier
    WHERE earlier.payment_id = webhook_events.payment_id
      AND (earlier.created_at < webhook_events.created_at
           OR (earlier.created_at = webhook_events.created_at AND earlier.id <= webhook_events.id))
) WHERE payment_id IS NOT NULL;
CREATE UNIQUE INDEX webhook_events_payment_sequence ON webhook_events (payment_id, sequence);
