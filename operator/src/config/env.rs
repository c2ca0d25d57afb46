//! The `X402_*` environment overrides (the table is in the module docs of `config`).

use std::path::PathBuf;
use std::str::FromStr;

use super::{Config, ConfigError, Secret};

impl Config {
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
}

fn parse_env<T: FromStr>(var: &'static str, value: &str) -> Result<T, ConfigError>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    value.trim().parse::<T>().map_err(|e| ConfigError::Env {
        var,
        source: Box::new(e),
    })
}
