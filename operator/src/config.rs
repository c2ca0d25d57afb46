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
//! | `X402_KEYSTORE` | `signer.keystore` |
//! | `X402_KEYSTORE_PASSWORD` | the keystore password (default variable; `signer.keystore_password_env` renames it) |
//! | `X402_MAX_FEE_PER_GAS_WEI` | `relayer.max_fee_per_gas_wei` |
//! | `X402_IDEMPOTENCY_RETENTION_HOURS` | `idempotency.retention_hours` |
//! | `X402_AUTO_VOID` | `auto_void.enabled` (`true` / `false`) |
//! | `X402_FEE_BPS` | `fees.bps` |
//! | `X402_FEE_RECEIVER` | `fees.receiver` |
//! | `X402_BATCH_MAX_SIZE` | `batch.max_size` |
//! | `X402_BATCH_MAX_WAIT_MS` | `batch.max_wait_ms` |
//!
//! Secrets ([`Secret`]) print as `[redacted]` in `Debug` and `Display`.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use alloy::primitives::Address;
use serde::{Deserialize, Serialize};

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
    #[error("invalid value for {var}: {message}")]
    Env {
        /// The variable.
        var: &'static str,
        /// What was wrong (the value is not repeated: it may be a secret).
        message: String,
    },
    /// A value is out of its allowed range.
    #[error("invalid config: {0}")]
    Invalid(String),
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
    /// The gas key.
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
        }
    }
}

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

/// `[chain]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChainConfig {
    /// JSON-RPC endpoint.
    pub rpc_url: String,
    /// EIP-155 chain id (checked against the node at start-up).
    pub chain_id: u64,
    /// A `deployments/<chainId>.json` file (x402-escrow-bindings `Deployment`); explicit
    /// `[chain.contracts]` addresses override its entries.
    pub deployments: Option<PathBuf>,
    /// Explicit contract addresses.
    pub contracts: ContractAddresses,
    /// Blocks on top of a receipt before it counts as final (L2s ~1, Ethereum mainnet ~12).
    pub confirmations: u64,
    /// How often to poll for receipts and logs.
    pub poll_interval_ms: u64,
    /// The first block the indexer reads (usually the escrow's deployment block).
    pub start_block: u64,
    /// How far back the indexer re-reads after it notices a reorg.
    pub reorg_depth: u64,
    /// How long one JSON-RPC request may take before it is abandoned (and retried by whoever
    /// sent it). Without a limit a request on a connection that went silent never returns.
    pub rpc_timeout_secs: u64,
    /// The escrow event indexer.
    pub indexer: IndexerSettings,
}

/// `[chain.indexer]`: how the escrow event indexer reads the chain.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IndexerSettings {
    /// Read only blocks at least `chain.confirmations` deep (`true`), or up to the head with
    /// reorg detection (`false`, the default: lowest latency).
    pub safe: bool,
    /// The most blocks one `eth_getLogs` request covers (RPC providers cap this).
    pub max_range: u64,
    /// How many recent block hashes are kept for reorg detection.
    pub window: u32,
}

impl Default for IndexerSettings {
    fn default() -> Self {
        IndexerSettings {
            safe: false,
            max_range: 1_000,
            window: 64,
        }
    }
}

impl Default for ChainConfig {
    fn default() -> Self {
        ChainConfig {
            rpc_url: "http://127.0.0.1:8545".into(),
            chain_id: 31337,
            deployments: None,
            contracts: ContractAddresses::default(),
            confirmations: 1,
            poll_interval_ms: 1000,
            start_block: 0,
            reorg_depth: 64,
            rpc_timeout_secs: 30,
            indexer: IndexerSettings::default(),
        }
    }
}

impl ChainConfig {
    /// `rpc_timeout_secs` as a duration.
    pub fn rpc_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.rpc_timeout_secs)
    }
}

/// `[chain.contracts]`: explicit addresses (each overrides the deployments file).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContractAddresses {
    /// `AuthCaptureEscrow`.
    pub escrow: Option<Address>,
    /// `ERC3009PaymentCollector`.
    pub erc3009_collector: Option<Address>,
    /// `OperatorRefundCollector`.
    pub refund_collector: Option<Address>,
}

/// `[signer]`. The private key itself comes only from `X402_SIGNER_KEY`; a file can name a
/// keystore instead (its password again from the environment).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignerConfig {
    /// An encrypted JSON keystore file.
    pub keystore: Option<PathBuf>,
    /// The environment variable holding the keystore password.
    pub keystore_password_env: String,
    /// From `X402_SIGNER_KEY` (hex private key). Never read from the file.
    #[serde(skip)]
    pub private_key: Option<Secret>,
    /// From the variable named by `keystore_password_env`.
    #[serde(skip)]
    pub keystore_password: Option<Secret>,
}

impl Default for SignerConfig {
    fn default() -> Self {
        SignerConfig {
            keystore: None,
            keystore_password_env: "X402_KEYSTORE_PASSWORD".into(),
            private_key: None,
            keystore_password: None,
        }
    }
}

impl fmt::Debug for SignerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignerConfig")
            .field("keystore", &self.keystore)
            .field("keystore_password_env", &self.keystore_password_env)
            .field("private_key", &self.private_key)
            .field("keystore_password", &self.keystore_password)
            .finish()
    }
}

/// Where the signing key comes from, once the configuration is complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignerSource {
    /// A raw private key (from `X402_SIGNER_KEY`).
    PrivateKey(Secret),
    /// An encrypted keystore and its password.
    Keystore {
        /// The keystore file.
        path: PathBuf,
        /// Its password.
        password: Secret,
    },
}

impl SignerConfig {
    /// The key source: the environment key wins over a keystore. `None` when neither is set
    /// (commands that do not sign, like `migrate`, still work).
    pub fn source(&self) -> Result<Option<SignerSource>, ConfigError> {
        if let Some(key) = &self.private_key {
            return Ok(Some(SignerSource::PrivateKey(key.clone())));
        }
        match (&self.keystore, &self.keystore_password) {
            (Some(path), Some(password)) => Ok(Some(SignerSource::Keystore {
                path: path.clone(),
                password: password.clone(),
            })),
            (Some(_), None) => Err(ConfigError::Invalid(format!(
                "signer.keystore is set but {} is not",
                self.keystore_password_env
            ))),
            (None, _) => Ok(None),
        }
    }
}

/// `[fees]`: what the operator charges on each capture or charge.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeeConfig {
    /// The fee in basis points, clamped into each payment's `[minFeeBps, maxFeeBps]`.
    pub bps: u16,
    /// Where fees go when a payment leaves `feeReceiver` open (default: the signer's address).
    pub receiver: Option<Address>,
    /// Also accept payments made to the canonical v1.0 AuthCaptureEscrow on this chain.
    pub accept_canonical_escrow: bool,
}

/// `[relayer]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelayerConfig {
    /// A broadcast transaction with no receipt after this long is re-broadcast, then replaced
    /// with bumped fees.
    pub bump_after_secs: u64,
    /// Fee increase per replacement, in percent (at least 10: the nodes' replacement rule).
    pub fee_bump_percent: u64,
    /// Never pay more than this max fee per gas (wei); `None`: no cap.
    pub max_fee_per_gas_wei: Option<u64>,
    /// How long a signer lease lasts; the holder renews it at a third of this.
    pub lease_ttl_secs: u64,
    /// Gas limit headroom over the estimate, in percent.
    pub gas_limit_margin_percent: u64,
}

impl Default for RelayerConfig {
    fn default() -> Self {
        RelayerConfig {
            bump_after_secs: 30,
            fee_bump_percent: 12,
            max_fee_per_gas_wei: None,
            lease_ttl_secs: 15,
            gas_limit_margin_percent: 20,
        }
    }
}

/// `[webhooks]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// Whether this instance runs the delivery worker.
    pub enabled: bool,
    /// Per-request timeout.
    pub timeout_secs: u64,
    /// Give up after this many attempts.
    pub max_attempts: u32,
    /// Retry delays in seconds, one per attempt after the first (the last repeats); jitter is
    /// added by the worker.
    pub retry_schedule_secs: Vec<u64>,
    /// How often the worker looks for due deliveries.
    pub poll_interval_ms: u64,
    /// How long a claimed delivery stays locked to its worker.
    pub lock_secs: u64,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            enabled: true,
            timeout_secs: 10,
            max_attempts: 10,
            // Standard Webhooks' schedule: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h,
            // 20 h, 24 h.
            retry_schedule_secs: vec![5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400],
            poll_interval_ms: 1000,
            lock_secs: 60,
        }
    }
}

/// `[idempotency]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdempotencyConfig {
    /// How long keys are kept (at least 24).
    pub retention_hours: u64,
    /// How long a request may stay in flight before a retry may take its key over.
    pub in_flight_timeout_secs: u64,
}

impl Default for IdempotencyConfig {
    fn default() -> Self {
        IdempotencyConfig {
            retention_hours: 24,
            in_flight_timeout_secs: 60,
        }
    }
}

/// `[batch]`: the relayer groups queued captures (and voids) of the same escrow into one
/// `captureBatch` (`voidBatch`) transaction when several are ready together.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// The most payments in one batch transaction; 1 disables batching (every capture and void
    /// is its own transaction, sent at once).
    pub max_size: usize,
    /// How long a ready capture or void may wait for company before it is sent (alone, or with
    /// whatever joined it). A batch that reaches `max_size` goes at once.
    pub max_wait_ms: u64,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_size: 50,
            max_wait_ms: 25,
        }
    }
}

/// `[auto_void]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AutoVoidConfig {
    /// Void uncaptured holds at their capture deadline.
    pub enabled: bool,
    /// The capture deadline for merchants that set none.
    pub default_capture_deadline_secs: u64,
    /// The deadline is moved earlier, if needed, to at least this long before
    /// `authorizationExpiry`, so the void lands while the hold is still the operator's to void.
    pub expiry_margin_secs: u64,
    /// How often to look for due holds.
    pub sweep_interval_secs: u64,
}

impl Default for AutoVoidConfig {
    fn default() -> Self {
        AutoVoidConfig {
            enabled: true,
            default_capture_deadline_secs: 7 * 24 * 3600,
            // The value merchant layers assume by default (the SDK's constant, one source), and
            // below their default maxTimeoutSeconds (300), so default requirements are payable.
            expiry_margin_secs: x402_escrow_sdk::merchant::DEFAULT_EXPIRY_MARGIN_SECS,
            sweep_interval_secs: 10,
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

    /// Applies the `X402_*` overrides (see the module docs) read through `get`.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let var = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        if let Some(v) = var("X402_DATABASE_URL") {
            self.database.url = v;
        }
        if let Some(v) = var("X402_DATABASE_MAX_CONNECTIONS") {
            self.database.max_connections = parse_env("X402_DATABASE_MAX_CONNECTIONS", &v)?;
        }
        if let Some(v) = var("X402_LISTEN") {
            self.listen = v;
        }
        if let Some(v) = var("X402_INSTANCE_ID") {
            self.instance_id = Some(v);
        }
        if let Some(v) = var("X402_RPC_URL") {
            self.chain.rpc_url = v;
        }
        if let Some(v) = var("X402_CHAIN_ID") {
            self.chain.chain_id = parse_env("X402_CHAIN_ID", &v)?;
        }
        if let Some(v) = var("X402_DEPLOYMENTS") {
            self.chain.deployments = Some(PathBuf::from(v));
        }
        if let Some(v) = var("X402_ESCROW") {
            self.chain.contracts.escrow = Some(parse_env("X402_ESCROW", &v)?);
        }
        if let Some(v) = var("X402_ERC3009_COLLECTOR") {
            self.chain.contracts.erc3009_collector = Some(parse_env("X402_ERC3009_COLLECTOR", &v)?);
        }
        if let Some(v) = var("X402_REFUND_COLLECTOR") {
            self.chain.contracts.refund_collector = Some(parse_env("X402_REFUND_COLLECTOR", &v)?);
        }
        if let Some(v) = var("X402_CONFIRMATIONS") {
            self.chain.confirmations = parse_env("X402_CONFIRMATIONS", &v)?;
        }
        if let Some(v) = var("X402_POLL_INTERVAL_MS") {
            self.chain.poll_interval_ms = parse_env("X402_POLL_INTERVAL_MS", &v)?;
        }
        if let Some(v) = var("X402_START_BLOCK") {
            self.chain.start_block = parse_env("X402_START_BLOCK", &v)?;
        }
        if let Some(v) = var("X402_SIGNER_KEY") {
            self.signer.private_key = Some(Secret::new(v.trim()));
        }
        if let Some(v) = var("X402_KEYSTORE") {
            self.signer.keystore = Some(PathBuf::from(v));
        }
        if let Some(v) = var(&self.signer.keystore_password_env) {
            self.signer.keystore_password = Some(Secret::new(v));
        }
        if let Some(v) = var("X402_MAX_FEE_PER_GAS_WEI") {
            self.relayer.max_fee_per_gas_wei = Some(parse_env("X402_MAX_FEE_PER_GAS_WEI", &v)?);
        }
        if let Some(v) = var("X402_IDEMPOTENCY_RETENTION_HOURS") {
            self.idempotency.retention_hours = parse_env("X402_IDEMPOTENCY_RETENTION_HOURS", &v)?;
        }
        if let Some(v) = var("X402_FEE_BPS") {
            self.fees.bps = parse_env("X402_FEE_BPS", &v)?;
        }
        if let Some(v) = var("X402_FEE_RECEIVER") {
            self.fees.receiver = Some(parse_env("X402_FEE_RECEIVER", &v)?);
        }
        if let Some(v) = var("X402_BATCH_MAX_SIZE") {
            self.batch.max_size = parse_env("X402_BATCH_MAX_SIZE", &v)?;
        }
        if let Some(v) = var("X402_BATCH_MAX_WAIT_MS") {
            self.batch.max_wait_ms = parse_env("X402_BATCH_MAX_WAIT_MS", &v)?;
        }
        if let Some(v) = var("X402_AUTO_VOID") {
            self.auto_void.enabled = parse_env("X402_AUTO_VOID", &v)?;
        }
        Ok(())
    }

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
        if self.batch.max_size == 0 || self.batch.max_size > 200 {
            return invalid("batch.max_size must be between 1 (no batching) and 200");
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
        crate::store::Backend::from_url(&self.database.url)
            .map_err(|e| ConfigError::Invalid(format!("database.url: {e}")))?;
        // The signer is not checked here: only commands that sign need it, and they ask
        // `SignerConfig::source` (a keystore without its password is an error there).
        Ok(())
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

fn parse_env<T: FromStr>(var: &'static str, value: &str) -> Result<T, ConfigError>
where
    T::Err: fmt::Display,
{
    value.trim().parse::<T>().map_err(|e| ConfigError::Env {
        var,
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const FULL: &str = r#"
        listen = "0.0.0.0:9000"
        instance_id = "op-1"

        [database]
        url = "postgres://op:hunter2@db:5432/x402"
        max_connections = 20

        [chain]
        rpc_url = "https://rpc.example"
        chain_id = 84532
        deployments = "deployments/84532.json"
        confirmations = 3
        poll_interval_ms = 500
        start_block = 123
        reorg_depth = 10

        [chain.contracts]
        escrow = "0x1111111111111111111111111111111111111111"

        [signer]
        keystore = "/keys/op.json"
        keystore_password_env = "OP_PW"

        [relayer]
        bump_after_secs = 45
        fee_bump_percent = 15
        max_fee_per_gas_wei = 200000000000
        lease_ttl_secs = 20
        gas_limit_margin_percent = 25

        [webhooks]
        enabled = false
        timeout_secs = 5
        max_attempts = 3
        retry_schedule_secs = [1, 2]
        poll_interval_ms = 250
        lock_secs = 30

        [idempotency]
        retention_hours = 48
        in_flight_timeout_secs = 30

        [auto_void]
        enabled = false
        default_capture_deadline_secs = 3600
        expiry_margin_secs = 60
        sweep_interval_secs = 5

        [batch]
        max_size = 10
        max_wait_ms = 40
    "#;

    #[test]
    fn defaults_are_valid() {
        let c = Config::load_with_env(None, &HashMap::new()).unwrap();
        assert_eq!(c.listen, "127.0.0.1:8402");
        assert_eq!(c.chain.chain_id, 31337);
        assert!(c.database.url.starts_with("sqlite:"));
        assert_eq!(c.idempotency.retention_hours, 24);
        assert!(c.signer.source().unwrap().is_none());
        let empty = Config::from_toml_str("").unwrap();
        assert_eq!(empty.chain.rpc_url, c.chain.rpc_url);
    }

    #[test]
    fn loads_every_field_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("op.toml");
        std::fs::write(&path, FULL).unwrap();
        let c = Config::load_with_env(Some(&path), &env(&[("OP_PW", "pw")])).unwrap();
        assert_eq!(c.listen, "0.0.0.0:9000");
        assert_eq!(c.instance_id(), "op-1");
        assert_eq!(c.database.max_connections, 20);
        assert_eq!(c.chain.chain_id, 84532);
        assert_eq!(
            c.chain.deployments.as_deref(),
            Some(Path::new("deployments/84532.json"))
        );
        assert_eq!(
            c.chain.contracts.escrow,
            Some(
                "0x1111111111111111111111111111111111111111"
                    .parse()
                    .unwrap()
            )
        );
        assert_eq!(c.chain.contracts.refund_collector, None);
        assert_eq!(
            (
                c.chain.confirmations,
                c.chain.start_block,
                c.chain.reorg_depth
            ),
            (3, 123, 10)
        );
        assert_eq!(c.relayer.max_fee_per_gas_wei, Some(200_000_000_000));
        assert_eq!(c.relayer.fee_bump_percent, 15);
        assert_eq!(c.webhooks.retry_schedule_secs, vec![1, 2]);
        assert!(!c.webhooks.enabled);
        assert_eq!(c.idempotency.retention_hours, 48);
        assert!(!c.auto_void.enabled);
        assert_eq!((c.batch.max_size, c.batch.max_wait_ms), (10, 40));
        assert_eq!(
            c.signer.source().unwrap(),
            Some(SignerSource::Keystore {
                path: "/keys/op.json".into(),
                password: Secret::new("pw")
            })
        );
    }

    #[test]
    fn environment_overrides_the_file() {
        let mut c = Config::from_toml_str(FULL).unwrap();
        c.apply_env(|k| {
            env(&[
                ("X402_DATABASE_URL", "sqlite::memory:"),
                ("X402_LISTEN", "127.0.0.1:1"),
                ("X402_RPC_URL", "http://node:8545"),
                ("X402_CHAIN_ID", "8453"),
                ("X402_CONFIRMATIONS", "12"),
                ("X402_START_BLOCK", "99"),
                ("X402_ESCROW", "0x2222222222222222222222222222222222222222"),
                (
                    "X402_REFUND_COLLECTOR",
                    "0x3333333333333333333333333333333333333333",
                ),
                (
                    "X402_SIGNER_KEY",
                    " 0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80 ",
                ),
                ("X402_IDEMPOTENCY_RETENTION_HOURS", "72"),
                ("X402_AUTO_VOID", "true"),
                ("X402_POLL_INTERVAL_MS", ""),
                ("X402_BATCH_MAX_SIZE", "1"),
                ("X402_BATCH_MAX_WAIT_MS", "5"),
            ])
            .get(k)
            .cloned()
        })
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.database.url, "sqlite::memory:");
        assert_eq!(c.listen, "127.0.0.1:1");
        assert_eq!(c.chain.rpc_url, "http://node:8545");
        assert_eq!(c.chain.chain_id, 8453);
        assert_eq!(c.chain.confirmations, 12);
        assert_eq!(c.chain.start_block, 99);
        assert_eq!(
            c.chain.poll_interval_ms, 500,
            "an empty variable does not override"
        );
        assert_eq!(
            c.chain.contracts.escrow,
            Some(
                "0x2222222222222222222222222222222222222222"
                    .parse()
                    .unwrap()
            )
        );
        assert!(c.chain.contracts.refund_collector.is_some());
        assert_eq!(c.idempotency.retention_hours, 72);
        assert!(c.auto_void.enabled);
        assert_eq!((c.batch.max_size, c.batch.max_wait_ms), (1, 5));
        // The environment key wins over the file's keystore, and is trimmed.
        match c.signer.source().unwrap() {
            Some(SignerSource::PrivateKey(k)) => {
                assert!(k.expose().starts_with("0xac09") && k.expose().ends_with("ff80"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_environment_values_name_the_variable_not_the_value() {
        let mut c = Config::default();
        let err = c
            .apply_env(|k| (k == "X402_CHAIN_ID").then(|| "base".to_string()))
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("X402_CHAIN_ID"), "{text}");
        assert!(!text.contains("base"), "{text}");
        assert!(
            c.apply_env(|k| (k == "X402_ESCROW").then(|| "0x12".to_string()))
                .is_err()
        );
    }

    #[test]
    fn unknown_fields_and_keys_in_files_are_refused() {
        assert!(Config::from_toml_str("lisen = \"x\"").is_err());
        assert!(Config::from_toml_str("[chain]\nrpc = \"x\"").is_err());
        // The private key cannot come from a file.
        let err = Config::from_toml_str("[signer]\nprivate_key = \"0xabc\"").unwrap_err();
        assert!(err.to_string().contains("private_key"));
        assert!(Config::from_toml_str("[chain]\nchain_id = \"one\"").is_err());
    }

    #[test]
    fn validation() {
        let bad = |toml: &str| {
            let c = Config::from_toml_str(toml).unwrap();
            c.validate().unwrap_err().to_string()
        };
        assert!(bad("[idempotency]\nretention_hours = 23").contains("24"));
        assert!(bad("[relayer]\nfee_bump_percent = 5").contains("fee_bump_percent"));
        assert!(bad("listen = \"nowhere\"").contains("listen"));
        assert!(bad("listen = \":80\"").contains("listen"));
        let named = Config::from_toml_str("listen = \"localhost:8402\"").unwrap();
        named.validate().unwrap();
        assert!(bad("[database]\nurl = \"mysql://x\"").contains("database.url"));
        // A keystore without its password does not stop commands that do not sign; the
        // signer source names the missing variable.
        let keystore = Config::from_toml_str("[signer]\nkeystore = \"/k.json\"").unwrap();
        keystore.validate().unwrap();
        let err = keystore.signer.source().unwrap_err().to_string();
        assert!(err.contains("X402_KEYSTORE_PASSWORD"), "{err}");
        assert!(bad("[batch]\nmax_size = 0").contains("batch.max_size"));
        assert!(bad("[batch]\nmax_size = 500").contains("batch.max_size"));
        assert!(bad("[batch]\nmax_wait_ms = 600000").contains("batch.max_wait_ms"));
    }

    #[test]
    fn secrets_are_redacted() {
        let mut c = Config::from_toml_str(FULL).unwrap();
        c.apply_env(|k| match k {
            "X402_SIGNER_KEY" => Some("0xdeadbeefsecretkey".into()),
            "OP_PW" => Some("keystore-pass".into()),
            _ => None,
        })
        .unwrap();
        let debug = format!("{c:?}");
        assert!(!debug.contains("deadbeef"), "{debug}");
        assert!(!debug.contains("keystore-pass"), "{debug}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("[redacted]"));
        let s = Secret::new("x");
        assert_eq!(format!("{s}"), "[redacted]");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(s.expose(), "x");
    }

    #[test]
    fn indexer_section_sets_the_read_mode_range_and_window() {
        use crate::indexer::{IndexerConfig, ReadMode};
        let escrow = Address::repeat_byte(0x11);

        let defaults = Config::default();
        let c = IndexerConfig::from_chain_config(&defaults.chain, escrow);
        assert_eq!(c.mode, ReadMode::Latest);
        assert_eq!((c.max_range, c.window), (1_000, 64));

        let config = Config::from_toml_str(
            r#"
            [chain]
            confirmations = 4
            [chain.indexer]
            safe = true
            max_range = 500
            window = 16
            "#,
        )
        .expect("parses");
        let c = IndexerConfig::from_chain_config(&config.chain, escrow);
        assert_eq!(c.mode, ReadMode::Safe { confirmations: 4 });
        assert_eq!((c.max_range, c.window), (500, 16));

        let mut bad = Config::default();
        bad.chain.indexer.max_range = 0;
        assert!(bad.validate().is_err());
        let mut bad = Config::default();
        bad.chain.indexer.window = 1;
        assert!(bad.validate().is_err());
        assert!(Config::from_toml_str("[chain.indexer]\nsafe = true\nunknown = 1").is_err());
    }
}
