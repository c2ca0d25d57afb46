//! `Idempotency-Key` records, scoped per merchant (IETF httpapi draft): the first request with a
//! key runs; a retry after completion gets the stored response (errors included); a retry while
//! the first is still running is told so (409); the same key with a different request is refused
//! (422). Keys are kept for the configured retention (at least 24 h), then expired.
//!
//! A request that crashed mid-flight leaves an `in_flight` row; its `locked_until` lets a retry
//! take it over after the lock time instead of getting 409 until the key expires.

use sha2::{Digest, Sha256};
use sqlx::AnyConnection;
use uuid::Uuid;

use super::codec::{self, get_i64, get_opt_i64, get_opt_str, get_str};
use super::{Result, Store, StoreError, StoreTx};

/// What [`Store::idempotency_begin`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyBegin {
    /// The key is new (or expired, or abandoned past its lock): the caller runs the request and
    /// then calls [`Store::idempotency_complete`].
    Started,
    /// The first request with this key is still running (→ 409).
    InFlight,
    /// The request already completed: replay this response.
    Completed {
        /// Its HTTP status.
        response_status: u16,
        /// Its body.
        response_body: String,
    },
    /// The key was used for a different request (→ 422).
    Mismatch,
}

/// SHA-256 hex over the method, the path and the body (NUL-separated).
pub fn request_fingerprint(method: &str, path: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update([0]);
    h.update(path.as_bytes());
    h.update([0]);
    h.update(body);
    hex::encode(h.finalize())
}

async fn complete(
    conn: &mut AnyConnection,
    merchant_id: Uuid,
    key: &str,
    response_status: u16,
    response_body: &str,
) -> Result<()> {
    let done = sqlx::query(
        "UPDATE idempotency_keys SET status = 'completed', response_status = $3, response_body = $4, \
             locked_until = NULL \
         WHERE merchant_id = $1 AND idem_key = $2 AND status = 'in_flight'",
    )
    .bind(codec::uuid(&merchant_id))
    .bind(key)
    .bind(i64::from(response_status))
    .bind(response_body)
    .execute(&mut *conn)
    .await?;
    codec::affected(&done, "in-flight idempotency key", key)
}

impl StoreTx {
    /// Stores the response of the request that holds `key`, in the caller's transaction (so a
    /// payment insert and its replayable response commit together).
    pub async fn idempotency_complete(
        &mut self,
        merchant_id: Uuid,
        key: &str,
        response_status: u16,
        response_body: &str,
    ) -> Result<()> {
        complete(
            self.conn(),
            merchant_id,
            key,
            response_status,
            response_body,
        )
        .await
    }

    /// See [`Store::idempotency_begin`].
    pub async fn idempotency_begin(
        &mut self,
        merchant_id: Uuid,
        key: &str,
        fingerprint: &str,
        retention_ms: i64,
        lock_ms: i64,
    ) -> Result<IdempotencyBegin> {
        let now = self.now_ms();
        let merchant = codec::uuid(&merchant_id);
        // Claim the key if nobody has it. On PostgreSQL a concurrent inserter of the same key waits
        // here until the other transaction commits, then sees the conflict.
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (merchant_id, idem_key, request_fingerprint, status, locked_until, \
                 created_at, expires_at) VALUES ($1, $2, $3, 'in_flight', $4, $5, $6) \
             ON CONFLICT (merchant_id, idem_key) DO NOTHING",
        )
        .bind(merchant.clone())
        .bind(key)
        .bind(fingerprint)
        .bind(now.saturating_add(lock_ms))
        .bind(now)
        .bind(now.saturating_add(retention_ms))
        .execute(self.conn())
        .await?;
        if inserted.rows_affected() == 1 {
            return Ok(IdempotencyBegin::Started);
        }
        let row = sqlx::query(
            "SELECT request_fingerprint, status, response_status, response_body, locked_until, expires_at \
             FROM idempotency_keys WHERE merchant_id = $1 AND idem_key = $2",
        )
        .bind(merchant.clone())
        .bind(key)
        .fetch_one(self.conn())
        .await?;
        let stored_fingerprint = get_str(&row, "request_fingerprint")?;
        let status = get_str(&row, "status")?;
        let locked_until = get_opt_i64(&row, "locked_until")?;
        let expires_at = get_i64(&row, "expires_at")?;

        // An expired record is as good as absent, and an in-flight one whose lock ran out was
        // abandoned (its process died): start over, with a guard on what we read.
        let abandoned = status == "in_flight" && locked_until.is_none_or(|t| t <= now);
        if expires_at <= now || (abandoned && stored_fingerprint == fingerprint) {
            let taken = sqlx::query(
                "UPDATE idempotency_keys SET request_fingerprint = $3, status = 'in_flight', response_status = NULL, \
                     response_body = NULL, locked_until = $4, created_at = $5, expires_at = $6 \
                 WHERE merchant_id = $1 AND idem_key = $2 AND expires_at = $7 AND status = $8",
            )
            .bind(merchant)
            .bind(key)
            .bind(fingerprint)
            .bind(now.saturating_add(lock_ms))
            .bind(now)
            .bind(now.saturating_add(retention_ms))
            .bind(expires_at)
            .bind(status.clone())
            .execute(self.conn())
            .await?;
            return Ok(if taken.rows_affected() == 1 {
                IdempotencyBegin::Started
            } else {
                IdempotencyBegin::InFlight
            });
        }
        if stored_fingerprint != fingerprint {
            return Ok(IdempotencyBegin::Mismatch);
        }
        if status == "completed" {
            let response_status = get_opt_i64(&row, "response_status")?.unwrap_or(500);
            return Ok(IdempotencyBegin::Completed {
                response_status: u16::try_from(response_status).map_err(|e| {
                    StoreError::Decode {
                        column: "response_status",
                        message: e.to_string(),
                    }
                })?,
                response_body: get_opt_str(&row, "response_body")?.unwrap_or_default(),
            });
        }
        Ok(IdempotencyBegin::InFlight)
    }
}

impl Store {
    /// Starts a request under `key` for `merchant_id`: see [`IdempotencyBegin`]. `retention_ms`
    /// is how long the record is kept (≥ 24 h), `lock_ms` how long an in-flight request may run
    /// before a retry may take it over. Shares a transaction with other hot-path writes
    /// ([`Store::grouped`]).
    pub async fn idempotency_begin(
        &self,
        merchant_id: Uuid,
        key: &str,
        fingerprint: &str,
        retention_ms: i64,
        lock_ms: i64,
    ) -> Result<IdempotencyBegin> {
        let (key, fingerprint) = (key.to_owned(), fingerprint.to_owned());
        self.grouped(move |tx| {
            Box::pin(async move {
                tx.idempotency_begin(merchant_id, &key, &fingerprint, retention_ms, lock_ms)
                    .await
            })
        })
        .await
    }

    /// Stores the response of the request that holds `key` (it is replayed to retries). Shares
    /// a transaction with other hot-path writes ([`Store::grouped`]).
    pub async fn idempotency_complete(
        &self,
        merchant_id: Uuid,
        key: &str,
        response_status: u16,
        response_body: &str,
    ) -> Result<()> {
        let (key, body) = (key.to_owned(), response_body.to_owned());
        self.grouped(move |tx| {
            Box::pin(async move {
                tx.idempotency_complete(merchant_id, &key, response_status, &body)
                    .await
            })
        })
        .await
    }

    /// Forgets an in-flight key (the request could not run at all, e.g. the handler panicked
    /// before doing anything), so a retry starts afresh. `false` when there was none.
    pub async fn idempotency_release(&self, merchant_id: Uuid, key: &str) -> Result<bool> {
        let done = sqlx::query(
            "DELETE FROM idempotency_keys WHERE merchant_id = $1 AND idem_key = $2 AND status = 'in_flight'",
        )
        .bind(codec::uuid(&merchant_id))
        .bind(key)
        .execute(&self.pool)
        .await
        .map(|done| self.wrote(done))?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes records past their retention; returns how many.
    pub async fn idempotency_expire(&self) -> Result<u64> {
        let now = self.now_ms();
        let done = sqlx::query("DELETE FROM idempotency_keys WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await
            .map(|done| self.wrote(done))?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_separates_fields() {
        let a = request_fingerprint("POST", "/v1/a", b"{}");
        assert_eq!(a.len(), 64);
        assert_eq!(a, request_fingerprint("POST", "/v1/a", b"{}"));
        assert_ne!(a, request_fingerprint("POST", "/v1/a", b"{ }"));
        assert_ne!(
            request_fingerprint("POST", "/v1/ab", b"c"),
            request_fingerprint("POST", "/v1/a", b"bc")
        );
    }
}
