//! `x402-escrow deploy`: the contracts deployed from the binary, with the bytecode the bindings
//! carry (`x402_escrow_bindings::deploy_all`), and the record `script/Deploy.s.sol` writes.
//!
//! `script/Deploy.s.sol` stays the auditable path; this command is the same deployment for
//! someone who has only the binary, with the same rules (see the script's header):
//!
//! | script | here |
//! |---|---|
//! | `DEPLOY_SALT` (default `keccak256("x402-escrow.deploy.v1")`) | `--salt` (same default) |
//! | `DEPLOY_TEST_TOKEN=true` (implied on chain 31337) | `--test-token` (implied on chain 31337) |
//! | `DEPLOYMENT_FILE` (default `deployments/<chainId>.json`) | `--out` (same default, relative to the working directory) |
//! | `DEPLOY_OVERWRITE=true` (always allowed on 31337) | `--overwrite` (always allowed on 31337) |
//! | `--private-key` / `--account` | `X402_DEPLOYER_KEY` or `--keystore FILE` + `X402_KEYSTORE_PASSWORD` |
//!
//! The record is byte for byte what the script writes: the keys of `deploy::Deployment`, sorted,
//! pretty-printed with two spaces and no trailing newline (forge's `vm.writeJson`). A re-run is
//! idempotent: contracts that already have code are skipped and a record of the same escrow
//! keeps its other keys (e.g. a `token` added by hand). A record of another escrow is replaced
//! only on chain 31337 or with `--overwrite`; that is checked before anything is sent, so the
//! committed canonical records (Base, Base Sepolia) are never replaced by accident.
//!
//! `--fund ADDRESS` (repeatable) mints `--fund-amount` whole TestUSDC to each address, as the
//! token's owner (the deployer); only with a test token.

use std::path::{Path, PathBuf};

use alloy::network::EthereumWallet;
use alloy::primitives::{Address, B256, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use clap::Args;
use eyre::{Context, Result, bail, eyre};
use serde_json::{Map, Value};
use x402_escrow_bindings::deploy::{
    ANVIL_CHAIN_ID, CREATE2_DEPLOYER, DEFAULT_SALT, MULTICALL3, PERMIT2, TEST_TOKEN_DECIMALS,
    TEST_TOKEN_SYMBOL,
};
use x402_escrow_bindings::{
    AuthCaptureEscrow, Deployment, TestUSDC, deploy_all, predict_addresses,
};

/// The environment variable holding the deployer's private key (hex).
pub const DEPLOYER_KEY_ENV: &str = "X402_DEPLOYER_KEY";

/// The environment variable holding the `--keystore` password.
pub const KEYSTORE_PASSWORD_ENV: &str = "X402_KEYSTORE_PASSWORD";

/// Options of `x402-escrow deploy`. The deployer key is never an option: it comes from
/// `X402_DEPLOYER_KEY` or from `--keystore FILE` (password in `X402_KEYSTORE_PASSWORD`).
#[derive(Debug, Clone, Args)]
pub struct DeployArgs {
    /// JSON-RPC endpoint of the chain to deploy to.
    #[arg(long)]
    pub rpc_url: String,
    /// The CREATE2 salt (bytes32): addresses depend only on it and the contracts' code
    /// (the script's DEPLOY_SALT).
    #[arg(long, default_value_t = DEFAULT_SALT)]
    pub salt: B256,
    /// Also deploy TestUSDC (owned by the deployer) and, if the chain has none, a Multicall3.
    /// Implied on chain 31337.
    #[arg(long)]
    pub test_token: bool,
    /// Mint test tokens to this address (repeat for several); needs a test token.
    #[arg(long = "fund", value_name = "ADDRESS")]
    pub fund: Vec<Address>,
    /// Whole test tokens (6 decimals) minted to each --fund address.
    #[arg(long, default_value_t = 1000, value_name = "TOKENS")]
    pub fund_amount: u64,
    /// Where to write the deployment record [default: deployments/<chainId>.json].
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Replace a record that describes another escrow (always allowed on chain 31337).
    #[arg(long)]
    pub overwrite: bool,
    /// An encrypted JSON keystore holding the deployer key (password from
    /// X402_KEYSTORE_PASSWORD); without it the key comes from X402_DEPLOYER_KEY.
    #[arg(long, value_name = "FILE")]
    pub keystore: Option<PathBuf>,
}

/// The deployer key: `X402_DEPLOYER_KEY`, or the `--keystore` file decrypted with
/// `X402_KEYSTORE_PASSWORD`. Never both; an empty variable counts as unset.
fn deployer_key(keystore: Option<&Path>) -> Result<PrivateKeySigner> {
    let env_key = std::env::var(DEPLOYER_KEY_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty());
    match (env_key, keystore) {
        (Some(_), Some(path)) => bail!(
            "both {DEPLOYER_KEY_ENV} and --keystore {} name a deployer key: unset {DEPLOYER_KEY_ENV} or drop --keystore",
            path.display()
        ),
        (Some(key), None) => key
            .trim()
            .parse()
            .map_err(|e| eyre!("{DEPLOYER_KEY_ENV} is not a private key: {e}")),
        (None, Some(path)) => {
            let password = std::env::var(KEYSTORE_PASSWORD_ENV).map_err(|_| {
                eyre!(
                    "--keystore {} needs its password in {KEYSTORE_PASSWORD_ENV}",
                    path.display()
                )
            })?;
            PrivateKeySigner::decrypt_keystore(path, password)
                .map_err(|e| eyre!("cannot decrypt keystore {}: {e}", path.display()))
        }
        (None, None) => bail!(
            "no deployer key: set {DEPLOYER_KEY_ENV} to a hex private key, or pass --keystore FILE \
             with its password in {KEYSTORE_PASSWORD_ENV} (a key is never taken from the command line)"
        ),
    }
}

/// The default record path, `deployments/<chainId>.json` (the script's default).
pub fn default_record_path(chain_id: u64) -> PathBuf {
    PathBuf::from("deployments").join(format!("{chain_id}.json"))
}

/// The escrow an existing record describes (`None`: no file, or no readable
/// `authCaptureEscrow`). Errors when the file exists but cannot be read or parsed.
fn recorded_escrow(path: &Path) -> Result<Option<(Value, Option<Address>)>> {
    if !path.is_file() {
        if path.exists() {
            bail!("{} exists and is not a file", path.display());
        }
        return Ok(None);
    }
    let text = std::fs::read_to_string(path)
        .wrap_err_with(|| format!("reading the existing record {}", path.display()))?;
    let existing: Value = serde_json::from_str(&text)
        .wrap_err_with(|| format!("{} is not JSON; move it away or use --out", path.display()))?;
    let escrow = match existing.get("authCaptureEscrow") {
        None => None,
        Some(value) => Some(
            value
                .as_str()
                .and_then(|s| s.parse::<Address>().ok())
                .ok_or_else(|| {
                    eyre!(
                        "{}: authCaptureEscrow is not an address; fix the file or use --out",
                        path.display()
                    )
                })?,
        ),
    };
    Ok(Some((existing, escrow)))
}

/// The keys a re-run keeps: the existing record's, when it describes the same escrow. A record
/// of another escrow is refused unless on chain 31337 or with `overwrite` (the script's
/// `DEPLOYMENT_FILE` / `DEPLOY_OVERWRITE` rule).
fn base_record(
    path: &Path,
    chain_id: u64,
    escrow: Address,
    overwrite: bool,
) -> Result<Map<String, Value>> {
    let Some((existing, recorded)) = recorded_escrow(path)? else {
        return Ok(Map::new());
    };
    if recorded == Some(escrow) {
        return match existing {
            Value::Object(map) => Ok(map),
            _ => Ok(Map::new()),
        };
    }
    if chain_id == ANVIL_CHAIN_ID || overwrite {
        return Ok(Map::new());
    }
    bail!(
        "{} records another escrow ({}); write ours elsewhere with --out FILE, or replace it with --overwrite",
        path.display(),
        recorded.map_or_else(|| "none".to_owned(), |a| a.to_checksum(None))
    )
}

/// The record's text: `base` with the deployment's keys set, as forge's `vm.writeJson` writes
/// it (keys sorted at every level, two-space indent, no trailing newline).
pub fn record_text(mut base: Map<String, Value>, deployment: &Deployment) -> Result<String> {
    let address = |a: Address| Value::String(a.to_checksum(None));
    base.insert("chainId".into(), Value::from(deployment.chain_id));
    base.insert(
        "version".into(),
        Value::String(deployment.version.as_str().into()),
    );
    base.insert(
        "authCaptureEscrow".into(),
        address(deployment.auth_capture_escrow),
    );
    if deployment.batch_calls {
        base.insert("batchCalls".into(), Value::Bool(true));
    }
    if let Some(a) = deployment.token_store_implementation {
        base.insert("tokenStoreImplementation".into(), address(a));
    }
    base.insert(
        "erc3009PaymentCollector".into(),
        address(deployment.erc3009_payment_collector),
    );
    if let Some(a) = deployment.pre_approval_payment_collector {
        base.insert("preApprovalPaymentCollector".into(), address(a));
    }
    base.insert(
        "operatorRefundCollector".into(),
        address(deployment.operator_refund_collector),
    );
    if let Some(a) = deployment.permit2_payment_collector {
        base.insert("permit2PaymentCollector".into(), address(a));
    }
    base.insert("multicall3".into(), address(deployment.multicall3));
    if let Some(a) = deployment.batch_executor {
        base.insert("batchExecutor".into(), address(a));
    }
    if let Some(token) = &deployment.token {
        let mut t = Map::new();
        t.insert("address".into(), address(token.address));
        t.insert("name".into(), Value::String(token.name.clone()));
        t.insert("version".into(), Value::String(token.version.clone()));
        t.insert("symbol".into(), Value::String(token.symbol.clone()));
        t.insert("decimals".into(), Value::from(token.decimals));
        base.insert("token".into(), Value::Object(t));
    }
    Ok(serde_json::to_string_pretty(&sorted(Value::Object(base)))?)
}

/// `value` with every object's keys in ascending order (forge keeps objects in a `BTreeMap`),
/// whatever order `serde_json::Map` itself keeps.
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// Whether `address` has code.
async fn has_code(provider: &DynProvider, address: Address) -> Result<bool> {
    Ok(!provider
        .get_code_at(address)
        .await
        .wrap_err_with(|| format!("reading the code at {address}"))?
        .is_empty())
}

/// Runs `x402-escrow deploy`.
pub async fn run(args: DeployArgs) -> Result<()> {
    if args.fund_amount == 0 {
        bail!("--fund-amount must be at least 1 (whole tokens)");
    }
    let signer = deployer_key(args.keystore.as_deref())?;
    let deployer = signer.address();
    let url = args
        .rpc_url
        .parse()
        .map_err(|e| eyre!("--rpc-url {:?} is not a URL: {e}", args.rpc_url))?;
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(signer))
        .connect_http(url)
        .erased();
    let chain_id = provider
        .get_chain_id()
        .await
        .wrap_err_with(|| format!("connecting to {}", args.rpc_url))?;

    let dev = args.test_token || chain_id == ANVIL_CHAIN_ID;
    if !args.fund.is_empty() && !dev {
        bail!(
            "--fund mints TestUSDC, which only a test-token deployment has: add --test-token \
             (implied on chain {ANVIL_CHAIN_ID})"
        );
    }
    if !has_code(&provider, CREATE2_DEPLOYER).await? {
        bail!("chain {chain_id} has no CREATE2 deployer at {CREATE2_DEPLOYER}");
    }
    let public_multicall3 = has_code(&provider, MULTICALL3).await?;
    if !public_multicall3 && !dev {
        bail!(
            "chain {chain_id} has no Multicall3 at {MULTICALL3}: add --test-token to deploy a \
             development one (with TestUSDC)"
        );
    }
    let predicted = predict_addresses(args.salt, deployer, dev, dev && !public_multicall3);

    // Everything that can refuse does so before the first transaction.
    let path = args
        .out
        .clone()
        .unwrap_or_else(|| default_record_path(chain_id));
    let base = base_record(
        &path,
        chain_id,
        predicted.auth_capture_escrow,
        args.overwrite,
    )?;

    let mut contracts: Vec<(&str, Address)> = Vec::new();
    if dev && !public_multicall3 {
        contracts.push(("Multicall3", predicted.multicall3));
    }
    contracts.extend([
        ("AuthCaptureEscrow", predicted.auth_capture_escrow),
        (
            "ERC3009PaymentCollector",
            predicted.erc3009_payment_collector,
        ),
        (
            "PreApprovalPaymentCollector",
            predicted.pre_approval_payment_collector,
        ),
        (
            "OperatorRefundCollector",
            predicted.operator_refund_collector,
        ),
    ]);
    // deploy_all deploys the Permit2 collector exactly where Permit2 has code.
    let has_permit2 = has_code(&provider, PERMIT2).await?;
    if has_permit2 {
        contracts.push((
            "Permit2PaymentCollector",
            predicted.permit2_payment_collector,
        ));
    }
    contracts.extend(predicted.test_usdc.map(|a| ("TestUSDC", a)));
    let mut present = Vec::with_capacity(contracts.len());
    for (_, address) in &contracts {
        present.push(has_code(&provider, *address).await?);
    }

    let deployment = deploy_all(&provider, deployer, args.salt, dev)
        .await
        .wrap_err("deploying the contracts")?;
    let implementation = AuthCaptureEscrow::new(deployment.auth_capture_escrow, &provider)
        .tokenStoreImplementation()
        .call()
        .await
        .wrap_err("reading the escrow's tokenStoreImplementation")?;
    if Some(implementation) != deployment.token_store_implementation {
        bail!(
            "the escrow's TokenStore implementation is {implementation}, not the expected {:?}",
            deployment.token_store_implementation
        );
    }

    let text = record_text(base, &deployment)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .wrap_err_with(|| format!("creating the directory {}", dir.display()))?;
    }
    std::fs::write(&path, text).wrap_err_with(|| format!("writing {}", path.display()))?;

    println!("chain        {chain_id}");
    println!("deployer     {deployer}");
    println!("salt         {}", args.salt);
    for ((name, address), was_there) in contracts.iter().zip(present) {
        let what = if was_there {
            "already deployed"
        } else {
            "deployed"
        };
        println!("{name:<28} {address}  {what}");
    }
    if !has_permit2 {
        println!(
            "{:<28} not deployed: no Permit2 at {PERMIT2} on this chain",
            "Permit2PaymentCollector"
        );
    }
    if public_multicall3 {
        println!("{:<28} {MULTICALL3}  public singleton", "Multicall3");
    }
    println!(
        "{:<28} {implementation}  created by the escrow",
        "TokenStore (implementation)"
    );
    println!("deployment record written to {}", path.display());

    if !args.fund.is_empty() {
        let token = deployment
            .token
            .as_ref()
            .ok_or_else(|| eyre!("a test-token deployment records its token"))?;
        let usdc = TestUSDC::new(token.address, &provider);
        let amount =
            U256::from(args.fund_amount) * U256::from(10u64).pow(U256::from(TEST_TOKEN_DECIMALS));
        for to in &args.fund {
            let receipt = usdc
                .mint(*to, amount)
                .send()
                .await
                .wrap_err_with(|| format!("minting test tokens to {to}"))?
                .get_receipt()
                .await
                .wrap_err_with(|| format!("minting test tokens to {to}"))?;
            if !receipt.status() {
                bail!(
                    "minting test tokens to {to} reverted (transaction {})",
                    receipt.transaction_hash
                );
            }
            let balance = usdc
                .balanceOf(*to)
                .call()
                .await
                .wrap_err_with(|| format!("reading the balance of {to}"))?;
            println!(
                "funded       {to}  +{} {TEST_TOKEN_SYMBOL} (balance {} {TEST_TOKEN_SYMBOL})",
                args.fund_amount,
                super::x402::format_units(balance, TEST_TOKEN_DECIMALS)
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use x402_escrow_bindings::deploy::DEFAULT_SALT;

    fn dev_deployment() -> Deployment {
        predict_addresses(DEFAULT_SALT, Address::repeat_byte(7), true, true)
            .to_deployment(ANVIL_CHAIN_ID)
    }

    #[test]
    fn record_is_sorted_pretty_and_without_trailing_newline() {
        let text = record_text(Map::new(), &dev_deployment()).unwrap();
        assert!(text.starts_with("{\n  \"authCaptureEscrow\": \"0x"));
        assert!(text.ends_with("\n}"));
        let keys: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("  \""))
            .map(|l| l.trim().split('"').nth(1).unwrap())
            .collect();
        let mut sorted_keys = keys.clone();
        sorted_keys.sort_unstable();
        assert_eq!(keys, sorted_keys);
        let parsed: Deployment = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed, dev_deployment());
        assert!(!text.contains("permit2PaymentCollector"), "{text}");
    }

    #[test]
    fn record_names_the_permit2_collector_where_it_is_deployed() {
        let predicted = predict_addresses(DEFAULT_SALT, Address::repeat_byte(7), true, true);
        let d = predicted.to_deployment_on(ANVIL_CHAIN_ID, true);
        let text = record_text(Map::new(), &d).unwrap();
        let line = format!(
            "  \"permit2PaymentCollector\": \"{}\",",
            predicted.permit2_payment_collector.to_checksum(None)
        );
        assert!(text.lines().any(|l| l == line), "{text}");
        let parsed: Deployment = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed, d);
    }

    #[test]
    fn a_record_of_the_same_escrow_keeps_its_other_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("84532.json");
        let mut d = predict_addresses(DEFAULT_SALT, Address::repeat_byte(7), false, false)
            .to_deployment(84532);
        std::fs::write(
            &path,
            format!(
                "{{\"authCaptureEscrow\":\"{}\",\"note\":\"kept\"}}",
                d.auth_capture_escrow
            ),
        )
        .unwrap();
        let base = base_record(&path, 84532, d.auth_capture_escrow, false).unwrap();
        d.token = None;
        let text = record_text(base, &d).unwrap();
        assert!(text.contains("\"note\": \"kept\""), "{text}");

        // Another escrow: refused without --overwrite (except on anvil), replaced with it.
        let other = Address::repeat_byte(9);
        let err = base_record(&path, 84532, other, false).unwrap_err();
        assert!(err.to_string().contains("--overwrite"), "{err}");
        assert!(base_record(&path, 84532, other, true).unwrap().is_empty());
        assert!(
            base_record(&path, ANVIL_CHAIN_ID, other, false)
                .unwrap()
                .is_empty()
        );
        std::fs::write(&path, "{").unwrap();
        assert!(base_record(&path, 84532, other, true).is_err());
    }
}
