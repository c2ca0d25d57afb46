//! The signers whose nonces the database owns (`signers`) and the lease that says which
//! instance drives a key.

use alloy::primitives::Address;

use super::super::codec::{self, Record, get_i64};
use super::super::{Result, Store, StoreError};
use super::*;

impl Store {
    /// Creates the signer row if missing, and raises `next_nonce` to at least `chain_nonce` (the
    /// chain's pending nonce: transactions sent by this key from elsewhere move it forward; it
    /// never moves back).
    pub async fn upsert_signer(
        &self,
        chain_id: u64,
        address: Address,
        chain_nonce: u64,
    ) -> Result<Signer> {
        let now = self.now_ms();
        let row = codec::returning::<Signer>(
            "INSERT INTO signers (chain_id, address, next_nonce, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (chain_id, address) DO UPDATE SET \
                 next_nonce = CASE WHEN signers.next_nonce < excluded.next_nonce \
                                   THEN excluded.next_nonce ELSE signers.next_nonce END, \
                 updated_at = excluded.updated_at",
        )
        .bind(codec::int(chain_id))
        .bind(codec::addr(&address))
        .bind(codec::int(chain_nonce))
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Signer::decode(&row)
    }

    /// The signer row, if any.
    pub async fn get_signer(&self, chain_id: u64, address: Address) -> Result<Option<Signer>> {
        codec::by_chain_address(&self.pool, chain_id, &address).await
    }

    /// Takes (or renews) the signer's lease for `ttl_ms` if it is free, expired, or already
    /// `owner`'s. `None` when another instance holds a live lease. The signer row must exist
    /// ([`Store::upsert_signer`]).
    pub async fn acquire_lease(
        &self,
        chain_id: u64,
        signer: Address,
        owner: &str,
        ttl_ms: i64,
    ) -> Result<Option<Lease>> {
        // One statement: PostgreSQL re-evaluates the WHERE clause on the latest row version after
        // waiting for a concurrent updater, so two contenders can never both match.
        let sql = "UPDATE signers SET lease_owner = $3, lease_expires_at = $5, updated_at = $4 \
             WHERE chain_id = $1 AND address = $2 \
               AND (lease_owner IS NULL OR lease_owner = $3 OR lease_expires_at IS NULL OR lease_expires_at <= $4) \
             RETURNING lease_expires_at";
        let lease = self
            .update_lease(sql, chain_id, signer, owner, ttl_ms)
            .await?;
        if let Some(lease) = &lease {
            let expires_at = lease.expires_at;
            tracing::debug!(chain_id, signer = %signer, owner, expires_at, "signer lease held");
        }
        Ok(lease)
    }

    /// Extends a lease `owner` still holds. Fails with [`StoreError::LeaseNotHeld`] once it has
    /// expired (even if nobody took it): the holder must stop and re-acquire, re-reading state.
    pub async fn renew_lease(
        &self,
        chain_id: u64,
        signer: Address,
        owner: &str,
        ttl_ms: i64,
    ) -> Result<Lease> {
        let sql = "UPDATE signers SET lease_expires_at = $5, updated_at = $4 \
             WHERE chain_id = $1 AND address = $2 AND lease_owner = $3 AND lease_expires_at > $4 \
             RETURNING lease_expires_at";
        self.update_lease(sql, chain_id, signer, owner, ttl_ms)
            .await?
            .ok_or_else(|| StoreError::LeaseNotHeld {
                chain_id,
                signer: codec::addr(&signer),
                owner: owner.to_owned(),
            })
    }

    /// Runs a lease update `sql` (`$1` chain, `$2` signer, `$3` owner, `$4` now, `$5` the new
    /// expiry `now + ttl_ms`; `RETURNING lease_expires_at`): the lease, when a row matched.
    async fn update_lease(
        &self,
        sql: &'static str,
        chain_id: u64,
        signer: Address,
        owner: &str,
        ttl_ms: i64,
    ) -> Result<Option<Lease>> {
        let now = self.now_ms();
        let row = sqlx::query(sql)
            .bind(codec::int(chain_id))
            .bind(codec::addr(&signer))
            .bind(owner)
            .bind(now)
            .bind(now.saturating_add(ttl_ms))
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            Ok(Lease {
                chain_id,
                signer,
                owner: owner.to_owned(),
                expires_at: get_i64(&row, "lease_expires_at")?,
            })
        })
        .transpose()
    }

    /// Gives the lease up (on shutdown) so another instance can take over at once. `false` when
    /// `owner` did not hold it.
    pub async fn release_lease(&self, chain_id: u64, signer: Address, owner: &str) -> Result<bool> {
        let now = self.now_ms();
        let done = sqlx::query(
            "UPDATE signers SET lease_owner = NULL, lease_expires_at = NULL, updated_at = $4 \
             WHERE chain_id = $1 AND address = $2 AND lease_owner = $3",
        )
        .bind(codec::int(chain_id))
        .bind(codec::addr(&signer))
        .bind(owner)
        .bind(now)
        .execute(&self.pool)
        .await
        .map(|done| self.wrote(done))?;
        Ok(done.rows_affected() == 1)
    }
}

impl Store {
    /// Records that instance `instance_id` is alive on `chain_id` for `ttl_ms` more (signer
    /// lanes: the heartbeat each instance writes), and answers how many instances are alive
    /// now, this one included.
    pub async fn heartbeat_instance(
        &self,
        chain_id: u64,
        instance_id: &str,
        ttl_ms: i64,
    ) -> Result<usize> {
        let now = self.now_ms();
        sqlx::query(
            "INSERT INTO operator_instances (chain_id, instance_id, expires_at, updated_at) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (chain_id, instance_id) DO UPDATE SET \
                 expires_at = excluded.expires_at, updated_at = excluded.updated_at",
        )
        .bind(codec::int(chain_id))
        .bind(instance_id)
        .bind(now.saturating_add(ttl_ms))
        .bind(now)
        .execute(&self.pool)
        .await
        .map(|done| self.wrote(done))?;
        self.live_instances(chain_id).await
    }

    /// How many instances' heartbeats on `chain_id` have not expired.
    pub async fn live_instances(&self, chain_id: u64) -> Result<usize> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM operator_instances WHERE chain_id = $1 AND expires_at > $2",
        )
        .bind(codec::int(chain_id))
        .bind(self.now_ms())
        .fetch_one(&self.pool)
        .await?;
        Ok(usize::try_from(get_i64(&row, "n")?).unwrap_or(0))
    }

    /// Removes the instance's heartbeat (clean shutdown: the others take its share at once).
    pub async fn retire_instance(&self, chain_id: u64, instance_id: &str) -> Result<()> {
        sqlx::query("DELETE FROM operator_instances WHERE chain_id = $1 AND instance_id = $2")
            .bind(codec::int(chain_id))
            .bind(instance_id)
            .execute(&self.pool)
            .await
            .map(|done| self.wrote(done))?;
        Ok(())
    }
}
