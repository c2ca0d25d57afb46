//! Operator configuration: a TOML file plus `X402_*` environment overrides.
//!
//! Every section and field has a default that runs against a local anvil and a SQLite file, so
//! an empty file (or none) is a valid development configuration. Unknown fields are errors.
//!
//! # Environment overrides
//!
//! Applied after the file; an empty value counts as unset.
//!
//! | variable | field |
//! |---|---|
//! | `X402_DATABASE_URL` | `database.url` |
//! | `X402_DATABASE_MAX_CONNECTIONS` | `database.max_connections` |
//! | `X402_LISTEN` | `listen` |
//! | `X402_INSTANCE_ID` | `instance_id` |
//! | `X402_RPC_URL` | `chain.rpc_url` |
//! | `X402_CHAIN_ID` | `chain.chain_id` |
//! | `X402_DEPLOYMENTS` | `chain.deployments` |
//! | `X402_ESCROW` | `chain.contracts.escrow` |
//! | `X402_ERC3009_COLLECTOR` | `chain.contracts.erc3009_collector` |
//! | `X402_REFUND_COLLECTOR` | `chain.contracts.refund_collector` |
//! | `X402_CONFIRMATIONS` | `chain.confirmations` |
//! | `X402_POLL_INTERVAL_MS` | `chain.poll_interval_ms` |
//! | `X402_START_BLOCK` | `chain.start_block` |
//! | `X402_SIGNER_KEY` | the signer's private key (**environment only**, never in the file) |
//! | `X402_SIGNER_KEYS` | several signer keys, comma-separated, one per lane (**environment only**; instead of `X402_SIGNER_KEY`) |
//! | `X402_KEYSTORE` | `signer.keystore` |
//! | `X402_KEYSTORE_PASSWORD` | the keystore password (default variable; `signer.keystore_password_env` renames it) |
//! | `X402_MAX_FEE_PER_GAS_WEI` | `relayer.max_fee_per_gas_wei` |
//! | `X402_IDEMPOTENCY_RETENTION_HOURS` | `idempotency.retention_hours` |
//! | `X402_AUTO_VOID` | `auto_void.enabled` (`true` / `false`) |
//! | `X402_FEE_BPS` | `fees.bps` |
//! | `X402_FEE_RECEIVER` | `fees.receiver` |
//! | `X402_BATCH_MAX_SIZE` | `batch.max_size` |
//! | `X402_BATCH_MAX_WAIT_MS` | `batch.max_wait_ms` |
//! | `X402_RECEIPTS` | `chain.receipts` (`push` / `poll`) |
//! | `X402_BATCH_USE_EXECUTOR` | `batch.use_executor` (`true` / `false`) |
//! | `X402_CONSOLE_SECURE_COOKIE` | `console.secure_cookie` (`true` / `false`) |
//!
//! Secrets ([`Secret`]) print as `[redacted]` in `Debug` and `Display`.
//!
//! # Layout
//!
//! - this file: [`Config`] (the whole file), [`Secret`], [`ConfigError`] and loading;
//! - `database`: `[database]`;
//! - `chain`: `[chain]`, `[chain.indexer]`, `[chain.contracts]`;
//! - `signer`: `[signer]` and the resolved [`SignerSource`];
//! - `tuning`: the service knobs: `[relayer]`, `[webhooks]`, `[idempotency]`, `[batch]`,
//!   `[auto_void]`, `[fees]`;
//! - `env`: the `X402_*` overrides;
//! - `validate`: range and combination checks.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

mod chain;
mod database;
mod env;
mod signer;
mod tuning;
mod validate;

#[cfg(test)]
mod tests;

pub use chain::{
    ChainConfig, ContractAddresses, IndexerSettings, ReceiptSource, UnknownReceiptSource,
};
pub use database::DatabaseConfig;
pub use signer::{MAX_LANES, SignerConfig, SignerConfigError, SignerSource};
pub use tuning::{
    AutoVoidConfig, BatchConfig, ConsoleConfig, FeeConfig, IdempotencyConfig, RelayerConfig,
    WebhookConfig,
};

/// A secret string: API keys, private keys, passwords, webhook secrets. `Debug` and `Display`
/// print `[redacted]`; [`Secret::expose`] gives the value to the code that needs it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A configuration that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML is malformed or has unknown / mistyped fields.
    #[error("invalid config: {0}")]
    Toml(#[from] toml::de::Error),
    /// An environment variable has a value of the wrong form.
    #[error("invalid value for {var}: {source}")]
    Env {
        /// The variable.
        var: &'static str,
        /// The parse error (the value is not repeated: it may be a secret).
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A value is out of its allowed range. The text names the field and its range: a
    /// message of ours, not a wrapped error.
    #[error("invalid config: {0}")]
    Invalid(String),
    /// The signer keys are not a usable set of lanes (`[signer]`, `X402_SIGNER_KEY(S)`).
    #[error("invalid config: {0}")]
    Signer(#[source] SignerConfigError),
    /// `database.url` names no supported database.
    #[error("invalid config: database.url: {0}")]
    DatabaseUrl(#[source] crate::store::StoreError),
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the HTTP API listens (`host:port`).
    pub listen: String,
    /// This instance's name in leases and claims (default: generated at start-up).
    pub instance_id: Option<String>,
    /// The database.
    pub database: DatabaseConfig,
    /// The chain and contracts.
    pub chain: ChainConfig,
    /// The gas keys (one per lane).
    pub signer: SignerConfig,
    /// Transaction pipeline knobs.
    pub relayer: RelayerConfig,
    /// Webhook delivery knobs.
    pub webhooks: WebhookConfig,
    /// `Idempotency-Key` handling.
    pub idempotency: IdempotencyConfig,
    /// Automatic voids of uncaptured holds.
    pub auto_void: AutoVoidConfig,
    /// The operator's fee on captures.
    pub fees: FeeConfig,
    /// Batching of captures and voids.
    pub batch: BatchConfig,
    /// The merchant console (`/console`).
    pub console: ConsoleConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8402".into(),
            instance_id: None,
            database: DatabaseConfig::default(),
            chain: ChainConfig::default(),
            signer: SignerConfig::default(),
            relayer: RelayerConfig::default(),
            webhooks: WebhookConfig::default(),
            idempotency: IdempotencyConfig::default(),
            auto_void: AutoVoidConfig::default(),
            fees: FeeConfig::default(),
            batch: BatchConfig::default(),
            console: ConsoleConfig::default(),
        }
    }
}

impl Config {
    /// Parses TOML (no environment applied, not validated).
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        Ok(toml::from_str(text)?)
    }

    /// Loads the file (if any), applies the process environment and validates.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let env: HashMap<String, String> = std::env::vars()
            .filter(|(k, _)| k.starts_with("X402_"))
            .collect();
        Config::load_with_env(path, &env)
    }

    /// [`Config::load`] with an explicit environment (tests).
    pub fn load_with_env(
        path: Option<&Path>,
        env: &HashMap<String, String>,
    ) -> Result<Config, ConfigError> {
        let mut config = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
                    path: path.to_owned(),
                    source,
                })?;
                Config::from_toml_str(&text)?
            }
            None => Config::default(),
        };
        config.apply_env(|name| env.get(name).cloned())?;
        config.validate()?;
        Ok(config)
    }

    /// The instance id to use in leases: the configured one, or `<hostname>-<pid>-<random>`.
    pub fn instance_id(&self) -> String {
        if let Some(id) = &self.instance_id {
            return id.clone();
        }
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "operator".into());
        let short = uuid::Uuid::new_v4().simple().to_string();
        format!("{host}-{}-{}", std::process::id(), &short[..8])
    }
}
