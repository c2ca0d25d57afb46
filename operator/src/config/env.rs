//! The `X402_*` environment overrides (the table is in the module docs of `config`).

use std::path::PathBuf;
use std::str::FromStr;

use super::{Config, ConfigError, Secret};

impl Config {
    /// Applies the `X402_*` overrides (see the module docs) read through `get`.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let env = Env(get);
        if let Some(v) = env.text("X402_DATABASE_URL") {
            self.database.url = v;
        }
        env.set(
            "X402_DATABASE_MAX_CONNECTIONS",
            &mut self.database.max_connections,
        )?;
        if let Some(v) = env.text("X402_LISTEN") {
            self.listen = v;
        }
        if let Some(v) = env.text("X402_INSTANCE_ID") {
            self.instance_id = Some(v);
        }
        if let Some(v) = env.text("X402_RPC_URL") {
            self.chain.rpc_url = v;
        }
        env.set("X402_CHAIN_ID", &mut self.chain.chain_id)?;
        if let Some(v) = env.text("X402_DEPLOYMENTS") {
            self.chain.deployments = Some(PathBuf::from(v));
        }
        env.set_some("X402_ESCROW", &mut self.chain.contracts.escrow)?;
        env.set_some(
            "X402_ERC3009_COLLECTOR",
            &mut self.chain.contracts.erc3009_collector,
        )?;
        env.set_some(
            "X402_REFUND_COLLECTOR",
            &mut self.chain.contracts.refund_collector,
        )?;
        env.set("X402_CONFIRMATIONS", &mut self.chain.confirmations)?;
        env.set("X402_POLL_INTERVAL_MS", &mut self.chain.poll_interval_ms)?;
        env.set("X402_START_BLOCK", &mut self.chain.start_block)?;
        env.set("X402_RECEIPTS", &mut self.chain.receipts)?;
        if let Some(v) = env.text("X402_SIGNER_KEY") {
            self.signer.private_key = Some(Secret::new(v.trim()));
        }
        if let Some(v) = env.text("X402_SIGNER_KEYS") {
            self.signer.private_keys = super::signer::split_keys(&v);
        }
        if let Some(v) = env.text("X402_KEYSTORE") {
            self.signer.keystore = Some(PathBuf::from(v));
        }
        if let Some(v) = env.text(&self.signer.keystore_password_env) {
            self.signer.keystore_password = Some(Secret::new(v));
        }
        env.set_some(
            "X402_MAX_FEE_PER_GAS_WEI",
            &mut self.relayer.max_fee_per_gas_wei,
        )?;
        env.set(
            "X402_IDEMPOTENCY_RETENTION_HOURS",
            &mut self.idempotency.retention_hours,
        )?;
        env.set("X402_FEE_BPS", &mut self.fees.bps)?;
        env.set_some("X402_FEE_RECEIVER", &mut self.fees.receiver)?;
        env.set("X402_BATCH_MAX_SIZE", &mut self.batch.max_size)?;
        env.set("X402_BATCH_MAX_WAIT_MS", &mut self.batch.max_wait_ms)?;
        env.set("X402_BATCH_USE_EXECUTOR", &mut self.batch.use_executor)?;
        env.set("X402_AUTO_VOID", &mut self.auto_void.enabled)?;
        env.set(
            "X402_CONSOLE_SECURE_COOKIE",
            &mut self.console.secure_cookie,
        )?;
        Ok(())
    }
}

/// The environment as [`Config::apply_env`] reads it: variables that are set and not blank.
struct Env<G>(G);

impl<G: Fn(&str) -> Option<String>> Env<G> {
    /// The variable's text, when set and not blank.
    fn text(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|v| !v.trim().is_empty())
    }

    /// Sets `target` to the variable `name` parsed as `T`, when it is set.
    fn set<T: FromStr>(&self, name: &'static str, target: &mut T) -> Result<(), ConfigError>
    where
        T::Err: std::error::Error + Send + Sync + 'static,
    {
        if let Some(v) = self.text(name) {
            *target = parse_env(name, &v)?;
        }
        Ok(())
    }

    /// Sets `target` to the variable `name` parsed as `T`, when it is set.
    fn set_some<T: FromStr>(
        &self,
        name: &'static str,
        target: &mut Option<T>,
    ) -> Result<(), ConfigError>
    where
        T::Err: std::error::Error + Send + Sync + 'static,
    {
        if let Some(v) = self.text(name) {
            *target = Some(parse_env(name, &v)?);
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
