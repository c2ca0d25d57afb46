//! The signer lease: only its holder claims, signs or sends.

use std::time::Duration;

use alloy::providers::Provider;

use super::{Relayer, RelayerError};

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Relayer {
    /// Holds the lease for this pass: renews it when a third of its length has passed, or tries to
    /// take it. `false` when another instance holds it. On taking it, re-announces settled rows
    /// the engine may have missed.
    pub(super) async fn hold_lease(&mut self) -> Result<bool, RelayerError> {
        let ttl = ms(self.opts.lease_ttl);
        let (chain_id, address) = (self.opts.chain_id, self.address());
        if let Some(lease) = &self.lease {
            let now = self.store.now_ms();
            if now >= lease.expires_at {
                // Expired before we could renew: another instance may already send.
                self.forget_lease();
                return Err(RelayerError::LeaseLost { signer: address });
            }
            if self.share.as_ref().is_some_and(|s| s.take_surplus()) {
                // Another instance joined: this instance holds more than its share of the
                // lanes. Give this one back; whoever takes it resumes its rows from the
                // database, as after a crash.
                self.lease = None;
                self.health_tx.send_modify(|h| h.lease_held = false);
                let released = self
                    .store
                    .release_lease(chain_id, address, &self.owner)
                    .await?;
                tracing::info!(
                    released,
                    "lane handed back: this instance holds more than its share"
                );
                return Ok(false);
            }
            if lease.expires_at - now <= ttl * 2 / 3 {
                let renewed = self
                    .store
                    .renew_lease(chain_id, address, &self.owner, ttl)
                    .await?;
                self.lease = Some(renewed);
            }
            return Ok(true);
        }
        // A lane is taken only while this instance holds less than its share.
        if let Some(share) = &self.share
            && !share.try_reserve()
        {
            return Ok(false);
        }
        let taken = self.take_lease(chain_id, address, ttl).await;
        if !matches!(taken, Ok(true))
            && let Some(share) = &self.share
        {
            share.unreserve();
        }
        taken
    }

    /// Tries to take the free (or expired) lease. On taking it, re-announces settled rows the
    /// engine may have missed.
    async fn take_lease(
        &mut self,
        chain_id: u64,
        address: alloy::primitives::Address,
        ttl: i64,
    ) -> Result<bool, RelayerError> {
        // The chain's pending nonce moves the database nonce up (never down): covers a fresh
        // database and transactions this key sent elsewhere.
        let pending = self
            .provider
            .get_transaction_count(address)
            .pending()
            .await?;
        self.store.upsert_signer(chain_id, address, pending).await?;
        match self
            .store
            .acquire_lease(chain_id, address, &self.owner, ttl)
            .await?
        {
            Some(lease) => {
                tracing::info!(expires_at = lease.expires_at, "signer lease acquired");
                self.lease = Some(lease);
                self.health_tx.send_modify(|h| h.lease_held = true);
                for tx in self
                    .store
                    .settled_txs_awaiting_engine(chain_id, address)
                    .await?
                {
                    self.announce(&tx);
                }
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Drops the lease this relayer believed it held (expired or lost), giving its place in
    /// the instance's lane share back.
    pub(super) fn forget_lease(&mut self) {
        if self.lease.take().is_some()
            && let Some(share) = &self.share
        {
            share.unreserve();
        }
    }

    /// Before any write-side step: the lease must still be ours with a safety margin (renewed
    /// here when it runs low). Errs with [`RelayerError::LeaseLost`] otherwise.
    pub(super) async fn check_lease(&mut self) -> Result<(), RelayerError> {
        let Some(lease) = &self.lease else {
            return Err(RelayerError::LeaseLost {
                signer: self.address(),
            });
        };
        let ttl = ms(self.opts.lease_ttl);
        let now = self.store.now_ms();
        if now >= lease.expires_at {
            self.forget_lease();
            return Err(RelayerError::LeaseLost {
                signer: self.address(),
            });
        }
        if lease.expires_at - now <= ttl * 2 / 3 {
            let renewed = self
                .store
                .renew_lease(self.opts.chain_id, self.address(), &self.owner, ttl)
                .await?;
            self.lease = Some(renewed);
        }
        Ok(())
    }
}
