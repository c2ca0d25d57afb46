//! [`Stack`]: a local chain with the contracts and the operator running on it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use alloy::signers::local::PrivateKeySigner;
use x402_escrow_bindings::{AuthCaptureEscrow, Deployment, TestUSDC, TokenInfo};
use x402_escrow_sdk::buyer::{AssetLimits, BuyerClient, SpendLedger, SpendPolicy};
use x402_escrow_sdk::escrows::{EscrowDeployment, EscrowRegistry};
use x402_escrow_sdk::merchant::{AssetConfig, OperatorClient, OperatorPayment, PaymentsConfig};
use x402_escrow_sdk::{Amount, Network};
use x402_escrow_testkit::{
    Chain, OperatorCommand, OperatorProcess, Permit2Setup, free_port, spawn_anvil,
};

use crate::{CHAIN_CLOCK_LEAD_SECS, DemoError, FEE_BPS, Result, USDC, format_units};

/// Runs an admin command of the operator binary to completion; its stdout, or an error with
/// its output.
async fn admin(command: &OperatorCommand, args: &[&str]) -> Result<String> {
    let out = command.run(args).await?;
    if !out.status.success() {
        return Err(DemoError::Unexpected(format!(
            "x402-escrow {}: {}\n{}",
            args.first().copied().unwrap_or_default(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A local chain with the contracts deployed and an operator running on it (shared by the demo
/// and the tests of the gateway and `pay`).
pub struct Stack {
    /// The node with the contracts (the testkit's; anvil is killed on drop).
    pub chain: Chain,
    /// The contracts.
    pub deployment: Deployment,
    /// The test token.
    pub token: TokenInfo,
    /// The running operator (`x402-escrow serve`, a child process killed on drop).
    pub operator: OperatorProcess,
    /// The operator's signer (`captureAuthorizer`, its refund float).
    pub operator_signer: Address,
    /// The merchant's operator API key.
    pub api_key: String,
    /// The buyer's key (funded with 10 USDC).
    pub payer: PrivateKeySigner,
    /// The merchant's receiver.
    pub merchant: Address,
    /// The fee receiver.
    pub fee_receiver: Address,
    /// The operator's token store in the escrow (where holds sit).
    pub token_store: Address,
    dir: PathBuf,
}

/// Everyone's token balance at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Balances {
    /// The buyer.
    pub payer: U256,
    /// The merchant's receiver.
    pub merchant: U256,
    /// The fee receiver.
    pub fee_receiver: U256,
    /// The escrow's token store (open holds).
    pub escrow: U256,
    /// The operator's signer (its refund float).
    pub operator_float: U256,
}

impl Balances {
    /// One line, in USDC.
    pub fn line(&self) -> String {
        format!(
            "payer {} | merchant {} | fees {} | escrow {} | operator float {}",
            format_units(self.payer, 6),
            format_units(self.merchant, 6),
            format_units(self.fee_receiver, 6),
            format_units(self.escrow, 6),
            format_units(self.operator_float, 6),
        )
    }
}

impl Stack {
    /// Starts anvil, deploys, funds the payer (10 USDC) and the operator's refund account
    /// (5 USDC), creates a merchant in a fresh SQLite database, credits its refund reserve
    /// (2 USDC, `admin reserve credit`) and starts the operator on it (`operator_exe`, the
    /// `x402-escrow` binary, as a child process).
    ///
    /// With `webhook_url`, the merchant gets that endpoint and a fresh signing secret.
    pub async fn start(
        operator_exe: &Path,
        anvil: Option<PathBuf>,
        webhook_url: Option<String>,
    ) -> Result<Stack> {
        // Permit2 when the shared fixtures are there: the demo also runs from a bare checkout.
        let chain = Chain::deploy_with(
            spawn_anvil(anvil.as_deref(), &[], false)?,
            Permit2Setup::IfShared,
        )
        .await?;
        let operator_key = chain.key(1)?;
        let payer = chain.key(2)?;
        let merchant = chain.address(3)?;
        let fee_receiver = chain.address(4)?;
        let deployment = chain.deployment.clone();
        let token = chain.token_info()?.clone();
        chain.mint(payer.address(), U256::from(10 * USDC)).await?;
        chain
            .mint(operator_key.address(), U256::from(5 * USDC))
            .await?;

        // The operator checks the buyer's `validBefore` (wall clock + maxTimeoutSeconds) against
        // the latest block's timestamp + maxTimeoutSeconds with no tolerance, and an automining
        // anvil's latest block lags the wall clock while idle. Running the chain's clock a little
        // ahead keeps fresh signatures acceptable for the life of the demo.
        chain.advance_clock(CHAIN_CLOCK_LEAD_SECS).await?;

        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let dir = std::env::temp_dir().join(format!("x402-demo-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|source| DemoError::Io {
            what: format!("creating {}", dir.display()),
            source,
        })?;
        let deployments = chain.save_deployment(&dir)?;
        let listen = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        // The operator checks the buyer's signature against `auto_void.expiry_margin_secs`; the
        // layer's default `maxTimeoutSeconds` (300) would otherwise sit exactly on it.
        let config = format!(
            r#"listen = "{listen}"
[database]
url = "sqlite://{db}?mode=rwc"
max_connections = 5
[chain]
rpc_url = "{rpc}"
chain_id = {chain_id}
deployments = "{deployments}"
confirmations = 1
poll_interval_ms = 100
[fees]
bps = {FEE_BPS}
receiver = "{fee_receiver}"
[webhooks]
poll_interval_ms = 200
[auto_void]
sweep_interval_secs = 1
expiry_margin_secs = 60
"#,
            db = dir.join("operator.db").display(),
            rpc = chain.url,
            chain_id = chain.anvil.chain_id(),
            deployments = deployments.display(),
        );
        let config_path = dir.join("operator.toml");
        std::fs::write(&config_path, config).map_err(|source| DemoError::Io {
            what: format!("writing {}", config_path.display()),
            source,
        })?;
        let command =
            OperatorCommand::new(operator_exe, &config_path, listen, dir.join("operator.log"))
                .env("X402_SIGNER_KEY", hex::encode(operator_key.to_bytes()))
                .env(
                    "RUST_LOG",
                    std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
                );
        admin(&command, &["migrate"]).await?;
        let receiver = merchant.to_string();
        let mut add = vec![
            "merchant",
            "add",
            "--name",
            "demo shop",
            "--receiver",
            &receiver,
            "--capture-deadline-secs",
            "900",
            "--print-api-key",
        ];
        if let Some(url) = &webhook_url {
            add.extend(["--webhook-url", url.as_str()]);
        }
        let api_key = admin(&command, &add).await?.trim().to_owned();
        // Refunds are charged to the merchant's refund reserve: credit it (2 USDC, within the
        // operator's 5 USDC refund account) before anything can be refunded.
        let listing = admin(&command, &["merchant", "list"]).await?;
        let merchant_id = listing
            .lines()
            .nth(1)
            .and_then(|line| line.split_whitespace().next())
            .ok_or_else(|| DemoError::Unexpected(format!("no merchant in {listing:?}")))?
            .to_owned();
        let reserve = (2 * USDC).to_string();
        admin(
            &command,
            &[
                "admin",
                "reserve",
                "credit",
                "--merchant",
                &merchant_id,
                "--amount",
                &reserve,
                "--note",
                "demo: the merchant's refund reserve",
            ],
        )
        .await?;
        let operator = command.start(Duration::from_secs(60)).await?;
        let operator_signer = operator_key.address();
        let token_store = AuthCaptureEscrow::new(deployment.auth_capture_escrow, &chain.plain)
            .getTokenStore(operator_signer)
            .call()
            .await
            .map_err(|e| DemoError::step("reading the operator's token store", e))?;
        Ok(Stack {
            chain,
            deployment,
            token,
            operator,
            operator_signer,
            api_key,
            payer,
            merchant,
            fee_receiver,
            token_store,
            dir,
        })
    }

    /// The operator's base URL.
    pub fn operator_url(&self) -> String {
        self.operator.url()
    }

    /// A REST client of the operator for the merchant.
    pub fn operator_client(&self) -> OperatorClient {
        OperatorClient::new(self.operator_url(), self.api_key.clone())
    }

    /// The escrow registry holding this deployment (as default).
    pub fn registry(&self) -> EscrowRegistry {
        EscrowRegistry::only(EscrowDeployment::from(&self.deployment))
    }

    /// The network.
    pub fn network(&self) -> Network {
        Network::eip155(self.deployment.chain_id)
    }

    /// The merchant's payment settings (our escrow, the operator's fee).
    pub fn payments_config(&self) -> PaymentsConfig {
        let mut config = PaymentsConfig::new(
            self.network(),
            AssetConfig::new(
                self.token.address,
                self.token.name.clone(),
                self.token.version.clone(),
                self.token.decimals,
            ),
            self.merchant,
            self.operator_signer,
        );
        config.escrow = Some(self.deployment.auth_capture_escrow);
        config.registry = self.registry();
        config.fee_recipient = self.fee_receiver;
        config.max_fee_bps = FEE_BPS;
        config.handler_timeout = Duration::from_secs(10);
        config
    }

    /// A spend policy for the test token with at most `max_per_payment` per payment.
    pub fn policy(&self, max_per_payment: u64) -> SpendPolicy {
        let mut limits = AssetLimits::new(self.network(), self.token.address);
        limits.label = Some(self.token.symbol.clone());
        limits.max_per_payment = Some(Amount::from(max_per_payment));
        limits.daily_cap = Some(Amount::from(10 * USDC));
        SpendPolicy::new(vec![limits])
    }

    /// The buyer with `policy`, recording into `ledger`.
    pub fn buyer(&self, policy: SpendPolicy, ledger: &std::path::Path) -> Result<BuyerClient> {
        let ledger = SpendLedger::open(ledger).map_err(|e| DemoError::step("spend ledger", e))?;
        Ok(
            BuyerClient::new(reqwest::Client::new(), self.payer.clone(), policy, ledger)
                .with_registry(self.registry()),
        )
    }

    /// A scratch directory removed at shutdown.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// Everyone's balance now.
    pub async fn balances(&self) -> Result<Balances> {
        let token = TestUSDC::new(self.token.address, &self.chain.plain);
        let of = |who: Address| {
            let token = token.clone();
            async move {
                token
                    .balanceOf(who)
                    .call()
                    .await
                    .map_err(|e| DemoError::step(format!("balanceOf({who})"), e))
            }
        };
        Ok(Balances {
            payer: of(self.payer.address()).await?,
            merchant: of(self.merchant).await?,
            fee_receiver: of(self.fee_receiver).await?,
            escrow: of(self.token_store).await?,
            operator_float: of(self.operator_signer).await?,
        })
    }

    /// Waits until the payment reaches `status` with no transaction in flight: a long poll
    /// while the payment itself is in flight, then short polls for its last confirmations.
    pub async fn wait_for(&self, payment_id: &str, status: &str) -> Result<OperatorPayment> {
        let client = self.operator_client();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let payment = client
                .get_settled(
                    payment_id,
                    deadline.saturating_duration_since(Instant::now()),
                )
                .await
                .map_err(|e| DemoError::step(format!("reading payment {payment_id}"), e))?;
            let settled = payment
                .transactions
                .iter()
                .all(|t| matches!(t.status.as_str(), "final" | "reverted" | "abandoned"));
            if payment.status.as_str() == status && settled {
                return Ok(payment);
            }
            if Instant::now() > deadline {
                return Err(DemoError::Unexpected(format!(
                    "payment {payment_id} is {} (transactions: {}), expected {status}",
                    payment.status,
                    describe_txs(&payment)
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the operator and anvil and removes the scratch directory.
    pub async fn shutdown(self) {
        let mut operator = self.operator;
        // SIGTERM (graceful shutdown), SIGKILL after 10 s.
        let _ = operator.terminate(Duration::from_secs(10)).await;
        drop(self.chain);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn describe_txs(payment: &OperatorPayment) -> String {
    if payment.transactions.is_empty() {
        return "none".into();
    }
    payment
        .transactions
        .iter()
        .map(|t| {
            format!(
                "{} {} ({})",
                t.kind,
                t.hash.map(|h| h.to_string()).unwrap_or_else(|| "-".into()),
                t.status
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}
