-- Sessions of the owner's page (/owner): the SHA-256 of the session id the browser holds in
-- its cookie, the session's CSRF token and its end (unix ms). Signing out deletes the row.
CREATE TABLE wallet_owner_sessions (
    id_hash     TEXT PRIMARY KEY,
    csrf_token  TEXT NOT NULL,
    expires_at  BIGINT NOT NULL
);
