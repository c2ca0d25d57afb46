-- Rotating a merchant's webhook secret and API key with a grace period (issue 13): the previous
-- secret keeps signing (a second signature in `webhook-signature`) and the previous key keeps
-- authenticating until its expiry (unix ms); only the key's SHA-256 is stored, as for the
-- current one.
ALTER TABLE merchants ADD COLUMN webhook_previous_secret TEXT;
ALTER TABLE merchants ADD COLUMN webhook_previous_secret_expires_at BIGINT;
ALTER TABLE merchants ADD COLUMN api_key_previous_hash TEXT;
ALTER TABLE merchants ADD COLUMN api_key_previous_expires_at BIGINT;
CREATE INDEX merchants_api_key_previous ON merchants (api_key_previous_hash);
