-- Merchant console sessions (`operator/src/console/session.rs`, issue 13).
--
-- A session is created by signing in with the merchant's API key. The browser holds a random
-- 32-byte id in an HttpOnly, SameSite=Strict cookie; only its SHA-256 (hex) is stored, so a
-- copy of the database does not let anyone sign in. `csrf_token` is the per-session token every
-- POST form of the console must carry. Times are unix milliseconds.
CREATE TABLE console_sessions (
    id_hash     TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL REFERENCES merchants (id),
    csrf_token  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);

CREATE INDEX console_sessions_expires ON console_sessions (expires_at);
