//! Range and combination checks on a loaded [`Config`].

use super::{Config, ConfigError};

/// The most calls `[batch] max_size` may allow in one batch transaction. A batch is also split
/// when its simulated gas would not fit in a block (`relayer/batch.rs`), so this only bounds
/// the work of forming one (its simulation, and its members checked one by one when it would
/// revert).
const MAX_BATCH_SIZE: usize = 1000;

impl Config {
    /// Checks ranges and combinations.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: &str| Err(ConfigError::Invalid(m.to_owned()));
        if self.chain.indexer.max_range == 0 || self.chain.indexer.window < 2 {
            return invalid(
                "chain.indexer.max_range must be positive and chain.indexer.window at least 2",
            );
        }
        if self.fees.bps > 10_000 {
            return invalid("fees.bps must be at most 10000");
        }
        if self.idempotency.retention_hours < 24 {
            return invalid("idempotency.retention_hours must be at least 24");
        }
        if self.relayer.fee_bump_percent < 10 {
            return invalid(
                "relayer.fee_bump_percent must be at least 10 (nodes refuse smaller replacements)",
            );
        }
        if self.relayer.lease_ttl_secs < 3 {
            return invalid("relayer.lease_ttl_secs must be at least 3");
        }
        if !(60..=7 * 24 * 3600).contains(&self.console.session_ttl_secs) {
            return invalid("console.session_ttl_secs must be between 60 and 604800 (7 days)");
        }
        if self.database.max_connections == 0 {
            return invalid("database.max_connections must be at least 1");
        }
        if self.chain.rpc_timeout_secs == 0 {
            return invalid("chain.rpc_timeout_secs must be positive");
        }
        if self.chain.poll_interval_ms == 0 || self.webhooks.poll_interval_ms == 0 {
            return invalid("poll intervals must be positive");
        }
        if self.webhooks.max_attempts == 0 {
            return invalid("webhooks.max_attempts must be at least 1");
        }
        if self.batch.max_size == 0 || self.batch.max_size > MAX_BATCH_SIZE {
            return invalid("batch.max_size must be between 1 (no batching) and 1000");
        }
        if self.batch.max_wait_ms > 60_000 {
            return invalid("batch.max_wait_ms must be at most 60000");
        }
        if self.auto_void.default_capture_deadline_secs == 0 {
            return invalid("auto_void.default_capture_deadline_secs must be positive");
        }
        let port_ok = self
            .listen
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !port_ok {
            return Err(ConfigError::Invalid(format!(
                "listen {:?} is not host:port",
                self.listen
            )));
        }
        crate::store::Backend::from_url(&self.database.url).map_err(ConfigError::DatabaseUrl)?;
        // The lane list's shape is checked here (two sources, empty, malformed or repeated
        // entries); the keys themselves only by commands that sign, through
        // `SignerConfig::sources` (a keystore without its password is an error there).
        self.signer.check_lanes()?;
        Ok(())
    }
}
