//! `[database]`: where the store lives and how its pool is sized.

use std::fmt;

use serde::Deserialize;

/// `[database]`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://path?mode=rwc`, `sqlite::memory:` or `postgres://user:pass@host/db`. May hold a
    /// password, so `Debug` redacts it.
    pub url: String,
    /// Pool size.
    pub max_connections: u32,
    /// SQLite files: `"full"` (default; every commit fsynced) or `"normal"` (WAL synced at
    /// checkpoints: survives process crashes, may lose the last commits on power failure).
    pub sqlite_synchronous: crate::store::SqliteSynchronous,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: "sqlite://x402-escrow.db?mode=rwc".into(),
            max_connections: 10,
            sqlite_synchronous: crate::store::SqliteSynchronous::Full,
        }
    }
}

impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &crate::store::redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .field("sqlite_synchronous", &self.sqlite_synchronous)
            .finish()
    }
}
