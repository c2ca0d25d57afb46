//! `x402-escrow demo` (issue 4): the whole refundable-x402 stack on one machine.
//!
//! Starts the pinned anvil, deploys the contracts, starts the operator on SQLite
//! ([`runtime::start`]) with a merchant in its store, a small demo merchant (axum) behind the
//! SDK's [`X402Layer`], and a buyer ([`BuyerClient`]) with a spend policy that:
//!
//! 1. pays $0.01 for `GET /weather` → the handler succeeds → captured;
//! 2. pays $0.01 for `GET /flaky` → the handler answers 500 → voided, the payer's balance is back;
//! 3. pays $2.00 for `GET /report` (a policy allowing it) → captured, then the merchant refunds
//!    half through the operator's REST API → the payer gets $1.00 back;
//! 4. asks for `GET /report` under a policy capped at $1 per payment → refused before signing.
//!
//! [`run`] returns a [`DemoReport`]; an unexpected outcome is an error naming it.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256, U256};
use alloy::signers::local::PrivateKeySigner;
use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use clap::Args;
use eyre::{Context, Result, bail, ensure, eyre};
use x402_escrow_bindings::{AuthCaptureEscrow, Deployment, TestUSDC, TokenInfo};
use x402_escrow_operator::config::{Config, Secret};
use x402_escrow_operator::runtime::{self, RunningOperator};
use x402_escrow_operator::store::NewMerchant;
use x402_escrow_sdk::buyer::{
    AssetLimits, BuyerClient, BuyerError, PaymentOutcome, SpendLedger, SpendPolicy,
};
use x402_escrow_sdk::escrows::{EscrowDeployment, EscrowRegistry};
use x402_escrow_sdk::merchant::{
    AssetConfig, OperatorClient, OperatorPayment, PaymentRoute, PaymentsConfig, X402Layer,
};
use x402_escrow_sdk::{Amount, Network};
use x402_escrow_testkit::{Chain, spawn_anvil};

use super::format_units;

/// One USDC (6 decimals).
pub const USDC: u64 = 1_000_000;
/// The operator's fee, basis points.
pub const FEE_BPS: u16 = 100;

/// How far anvil's clock runs ahead of the wall clock (see [`Stack::start`]).
pub const CHAIN_CLOCK_LEAD_SECS: u64 = 30;

/// Options of `x402-escrow demo`.
#[derive(Debug, Clone, Default, Args)]
pub struct DemoArgs {
    /// Use this anvil binary instead of the pinned toolchain's.
    #[arg(long, env = "X402_ANVIL")]
    pub anvil: Option<PathBuf>,
}

// ------------------------------------------------------------------------------------ stack

/// A local chain with the contracts deployed and an operator running on it (shared by the demo
/// and the tests of the gateway and `pay`).
pub struct Stack {
    /// The node with the contracts (the testkit's; anvil is killed on drop).
    pub chain: Chain,
    /// The contracts.
    pub deployment: Deployment,
    /// The test token.
    pub token: TokenInfo,
    /// The running operator.
    pub operator: RunningOperator,
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
    /// Starts anvil, deploys, funds the payer (10 USDC) and the operator's refund float
    /// (5 USDC), starts the operator on a fresh SQLite file and creates a merchant.
    ///
    /// With `webhook_url`, the merchant gets that endpoint and a fresh signing secret.
    pub async fn start(anvil: Option<PathBuf>, webhook_url: Option<String>) -> Result<Stack> {
        let chain = Chain::deploy_on(spawn_anvil(anvil.as_deref(), &[], false)?).await?;
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
        std::fs::create_dir_all(&dir).wrap_err_with(|| format!("creating {}", dir.display()))?;
        let deployments = chain.save_deployment(&dir)?;

        let mut config = Config {
            listen: "127.0.0.1:0".into(),
            ..Config::default()
        };
        config.database.url = format!("sqlite://{}?mode=rwc", dir.join("operator.db").display());
        config.database.max_connections = 5;
        config.chain.rpc_url = chain.url.clone();
        config.chain.chain_id = chain.anvil.chain_id();
        config.chain.deployments = Some(deployments);
        config.chain.confirmations = 1;
        config.chain.poll_interval_ms = 100;
        config.signer.private_key = Some(Secret::new(hex::encode(operator_key.to_bytes())));
        config.fees.bps = FEE_BPS;
        config.fees.receiver = Some(fee_receiver);
        config.webhooks.poll_interval_ms = 200;
        config.auto_void.sweep_interval_secs = 1;
        // The operator refuses signatures expiring within this margin; the layer's default
        // `maxTimeoutSeconds` (300) would otherwise sit exactly on it.
        config.auto_void.expiry_margin_secs = 60;
        let operator = runtime::start(config)
            .await
            .map_err(|e| eyre!("starting the operator: {e}"))?;
        let (_, api_key) = operator
            .store
            .create_merchant(&NewMerchant {
                name: "demo shop".into(),
                receivers: vec![merchant],
                webhook_secret: webhook_url.as_ref().map(|_| {
                    Secret::new(
                        x402_escrow_sdk::webhooks::WebhookSecret::generate().expose_secret(),
                    )
                }),
                webhook_url,
                capture_deadline_secs: 900,
            })
            .await
            .map_err(|e| eyre!("creating the merchant: {e}"))?;
        let token_store = AuthCaptureEscrow::new(deployment.auth_capture_escrow, &chain.plain)
            .getTokenStore(operator.signer)
            .call()
            .await
            .wrap_err("reading the operator's token store")?;
        Ok(Stack {
            chain,
            deployment,
            token,
            operator,
            api_key: api_key.expose().to_owned(),
            payer,
            merchant,
            fee_receiver,
            token_store,
            dir,
        })
    }

    /// The operator's base URL.
    pub fn operator_url(&self) -> String {
        format!("http://{}", self.operator.address)
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
            self.operator.signer,
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
        let ledger = SpendLedger::open(ledger).map_err(|e| eyre!("spend ledger: {e}"))?;
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
                    .wrap_err_with(|| format!("balanceOf({who})"))
            }
        };
        Ok(Balances {
            payer: of(self.payer.address()).await?,
            merchant: of(self.merchant).await?,
            fee_receiver: of(self.fee_receiver).await?,
            escrow: of(self.token_store).await?,
            operator_float: of(self.operator.signer).await?,
        })
    }

    /// Polls the operator until the payment reaches `status` with no transaction in flight.
    pub async fn wait_for(&self, payment_id: &str, status: &str) -> Result<OperatorPayment> {
        let client = self.operator_client();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let payment = client
                .get(payment_id)
                .await
                .map_err(|e| eyre!("reading payment {payment_id}: {e}"))?;
            let settled = payment
                .transactions
                .iter()
                .all(|t| matches!(t.status.as_str(), "final" | "reverted" | "abandoned"));
            if payment.status == status && settled {
                return Ok(payment);
            }
            if Instant::now() > deadline {
                bail!(
                    "payment {payment_id} is {} (transactions: {}), expected {status}",
                    payment.status,
                    describe_txs(&payment)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the operator and anvil and removes the scratch directory.
    pub async fn shutdown(self) {
        self.operator.shutdown().await;
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

// ---------------------------------------------------------------------------- merchant app

/// The demo merchant: `/weather` ($0.01), `/flaky` ($0.01, fails with 500), `/report` ($2.00),
/// `/health` (free).
///
/// `POST /webhooks` counts the operator's webhook deliveries into `webhooks`.
pub fn merchant_app(payments: &X402Layer, webhooks: Arc<AtomicUsize>) -> Router {
    Router::new()
        .route(
            "/webhooks",
            axum::routing::post(move || {
                let webhooks = webhooks.clone();
                async move {
                    webhooks.fetch_add(1, Ordering::SeqCst);
                    StatusCode::NO_CONTENT
                }
            }),
        )
        .route(
            "/weather",
            get(|| async {
                axum::Json(
                    serde_json::json!({"city": "Lisbon", "forecast": "sunny", "celsius": 24}),
                )
            })
            .layer(payments.paid(PaymentRoute::new("$0.01").description("Today's weather"))),
        )
        .route(
            "/flaky",
            get(|| async {
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the upstream model crashed\n",
                )
            })
            .layer(payments.paid(PaymentRoute::new("$0.01").description("A resource that fails"))),
        )
        .route(
            "/report",
            get(|| async { "Quarterly market report: demand up 12%, refunds are easy.\n" })
                .layer(payments.paid(PaymentRoute::new("$2.00").description("A premium report"))),
        )
        .route("/health", get(|| async { "ok" }))
}

/// Serves `app` on `listener` until the returned sender fires (or is dropped).
pub fn serve_app(
    listener: tokio::net::TcpListener,
    app: Router,
) -> tokio::sync::oneshot::Sender<()> {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
    });
    tx
}

// ------------------------------------------------------------------------------- scenarios

/// How a scenario ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Paid and captured.
    Captured,
    /// The hold was released.
    Voided,
    /// Captured, then `refunded` (atomic units) returned.
    Refunded {
        /// Returned to the payer.
        refunded: u64,
    },
    /// The buyer's own policy refused; nothing was signed.
    Refused {
        /// The rule (`max_per_payment`, …).
        rule: String,
        /// The refusal message.
        message: String,
    },
}

/// One scenario's result.
#[derive(Debug, Clone)]
pub struct ScenarioReport {
    /// Title.
    pub title: String,
    /// The request (`GET /weather`).
    pub request: String,
    /// The request id sent (`X-Request-Id`).
    pub request_id: String,
    /// HTTP status the buyer saw (none when refused before sending a payment).
    pub http_status: Option<u16>,
    /// What happened.
    pub outcome: Outcome,
    /// The price, atomic units.
    pub price: u64,
    /// The operator's payment id.
    pub payment_id: Option<String>,
    /// The escrow's payment hash.
    pub payment_hash: Option<B256>,
    /// The operator's final status.
    pub status: Option<String>,
    /// Captured and refunded amounts (atomic units).
    pub captured: u64,
    /// Refunded amount (atomic units).
    pub refunded: u64,
    /// The buyer ledger's status.
    pub ledger_status: Option<String>,
    /// `(kind, hash)` of every chain transaction.
    pub transactions: Vec<(String, Option<B256>)>,
    /// Balances before.
    pub before: Balances,
    /// Balances after.
    pub after: Balances,
}

/// Everything the demo did.
#[derive(Debug, Clone)]
pub struct DemoReport {
    /// Chain id.
    pub chain_id: u64,
    /// The escrow.
    pub escrow: Address,
    /// The token.
    pub token: Address,
    /// The operator's API.
    pub operator_url: String,
    /// The merchant's URL.
    pub merchant_url: String,
    /// The four scenarios, in order.
    pub scenarios: Vec<ScenarioReport>,
    /// Webhook deliveries the merchant received.
    pub webhooks: usize,
    /// Wall time.
    pub elapsed: Duration,
}

fn amount_u64(amount: Amount) -> u64 {
    amount.to_u64().unwrap_or(u64::MAX)
}

struct Paid {
    status: u16,
    payment: PaymentOutcome,
}

async fn pay(buyer: &BuyerClient, url: &str, request_id: &str) -> Result<Result<Paid, BuyerError>> {
    let mut headers = HeaderMap::new();
    headers.insert("x-request-id", request_id.parse()?);
    let request = buyer
        .http()
        .get(url)
        .headers(headers)
        .build()
        .wrap_err_with(|| format!("building GET {url}"))?;
    match buyer.send(request).await {
        Ok(paid) => {
            let status = paid.response.status().as_u16();
            let _ = paid.response.bytes().await;
            let payment = paid
                .payment
                .ok_or_else(|| eyre!("GET {url} answered {status} without asking for payment"))?;
            Ok(Ok(Paid { status, payment }))
        }
        Err(e) => Ok(Err(e)),
    }
}

fn scenario(title: &str, path: &str, request_id: &str, before: Balances) -> ScenarioReport {
    ScenarioReport {
        title: title.into(),
        request: format!("GET {path}"),
        request_id: request_id.into(),
        http_status: None,
        outcome: Outcome::Voided,
        price: 0,
        payment_id: None,
        payment_hash: None,
        status: None,
        captured: 0,
        refunded: 0,
        ledger_status: None,
        transactions: Vec::new(),
        before,
        after: before,
    }
}

fn fill(report: &mut ScenarioReport, paid: &Paid, payment: &OperatorPayment) {
    report.http_status = Some(paid.status);
    report.price = amount_u64(paid.payment.amount);
    report.payment_id = Some(payment.id.clone());
    report.payment_hash = Some(payment.payment_hash);
    report.status = Some(payment.status.clone());
    report.captured = amount_u64(payment.amounts.captured);
    report.refunded = amount_u64(payment.amounts.refunded);
    report.transactions = payment
        .transactions
        .iter()
        .map(|t| (t.kind.clone(), t.hash))
        .collect();
}

fn operator_id(paid: &Paid, what: &str) -> Result<String> {
    paid.payment
        .merchant_payment_id
        .clone()
        .ok_or_else(|| eyre!("{what}: the receipt names no operator payment id"))
}

fn fee(amount: u64) -> u64 {
    amount * u64::from(FEE_BPS) / 10_000
}

/// Pays `path` on the merchant as scenario `n`, checks the HTTP status, and returns the
/// response with the operator's payment id.
async fn pay_expecting(
    buyer: &BuyerClient,
    merchant_url: &str,
    report: &ScenarioReport,
    n: u8,
    path: &str,
    http: u16,
) -> Result<(Paid, String)> {
    let paid = pay(buyer, &format!("{merchant_url}{path}"), &report.request_id)
        .await?
        .map_err(|e| eyre!("scenario {n} ({path}): the buyer failed: {e}"))?;
    ensure!(
        paid.status == http,
        "scenario {n} ({path}): HTTP {} instead of {http}",
        paid.status
    );
    let id = operator_id(&paid, &format!("scenario {n}"))?;
    Ok((paid, id))
}

/// What the buyer's own ledger says about a payment.
fn ledger_status(buyer: &BuyerClient, paid: &Paid) -> Result<Option<String>> {
    Ok(Some(
        buyer
            .ledger()
            .get(&paid.payment.payment_id)?
            .map(|r| r.status.name().to_owned())
            .unwrap_or_default(),
    ))
}

/// Runs the four scenarios on `stack`; fails on the first unexpected outcome.
pub async fn scenarios(stack: &Stack, merchant_url: &str) -> Result<Vec<ScenarioReport>> {
    let ledger = stack.dir().join("buyer-ledger.json");
    let thrifty = stack.buyer(stack.policy(USDC), &ledger)?;
    let generous = stack.buyer(stack.policy(5 * USDC), &ledger)?;
    let mut out = Vec::new();

    // 1. Success → captured.
    let before = stack.balances().await?;
    let mut s = scenario(
        "pay for a resource that succeeds",
        "/weather",
        "demo-1-weather",
        before,
    );
    let (paid, id) = pay_expecting(&thrifty, merchant_url, &s, 1, "/weather", 200).await?;
    let payment = stack.wait_for(&id, "captured").await?;
    fill(&mut s, &paid, &payment);
    s.ledger_status = ledger_status(&thrifty, &paid)?;
    s.after = stack.balances().await?;
    s.outcome = Outcome::Captured;
    let price = s.price;
    ensure!(
        price == USDC / 100,
        "scenario 1: price {price}, expected 10000"
    );
    ensure!(
        s.after.payer == before.payer - U256::from(price)
            && s.after.merchant == before.merchant + U256::from(price - fee(price))
            && s.after.fee_receiver == before.fee_receiver + U256::from(fee(price)),
        "scenario 1: balances moved unexpectedly: before {} / after {}",
        before.line(),
        s.after.line()
    );
    out.push(s);

    // 2. Handler fails → voided, the payer is whole.
    let before = stack.balances().await?;
    let mut s = scenario(
        "pay for a resource whose handler fails",
        "/flaky",
        "demo-2-flaky",
        before,
    );
    let (paid, id) = pay_expecting(&thrifty, merchant_url, &s, 2, "/flaky", 500).await?;
    let payment = stack.wait_for(&id, "voided").await?;
    fill(&mut s, &paid, &payment);
    s.ledger_status = ledger_status(&thrifty, &paid)?;
    s.after = stack.balances().await?;
    s.outcome = Outcome::Voided;
    ensure!(
        s.after.payer == before.payer && s.after.merchant == before.merchant,
        "scenario 2: the payer was not made whole: before {} / after {}",
        before.line(),
        s.after.line()
    );
    out.push(s);

    // 3. $2.00 under a policy allowing it → captured → merchant refunds half.
    let before = stack.balances().await?;
    let mut s = scenario(
        "captured, then half refunded by the merchant",
        "/report",
        "demo-3-report",
        before,
    );
    let (paid, id) = pay_expecting(&generous, merchant_url, &s, 3, "/report", 200).await?;
    stack.wait_for(&id, "captured").await?;
    let price = amount_u64(paid.payment.amount);
    let half = price / 2;
    stack
        .operator_client()
        .refund(&id, Amount::from(half))
        .await
        .map_err(|e| eyre!("scenario 3: the refund was refused: {e}"))?;
    let payment = stack.wait_for(&id, "partially_refunded").await?;
    fill(&mut s, &paid, &payment);
    let _ = generous.ledger().record_refund(
        &paid.payment.payment_id,
        Amount::from(half),
        x402_escrow_sdk::buyer::unix_now(),
    );
    s.ledger_status = ledger_status(&generous, &paid)?;
    s.after = stack.balances().await?;
    s.outcome = Outcome::Refunded { refunded: half };
    ensure!(
        s.refunded == half && s.after.payer == before.payer - U256::from(price - half),
        "scenario 3: expected {half} back: before {} / after {}",
        before.line(),
        s.after.line()
    );
    out.push(s);

    // 4. Over the buyer's own max per payment → refused before signing.
    let before = stack.balances().await?;
    let mut s = scenario(
        "refused by the buyer's own spend policy ($1 max per payment)",
        "/report",
        "demo-4-report",
        before,
    );
    let records_before = thrifty.ledger().records()?.len();
    match pay(&thrifty, &format!("{merchant_url}/report"), &s.request_id).await? {
        Err(BuyerError::Policy(violation)) => {
            s.outcome = Outcome::Refused {
                rule: violation.rule().to_owned(),
                message: violation.to_string(),
            };
        }
        Err(e) => bail!("scenario 4: expected a policy refusal, got: {e}"),
        Ok(paid) => bail!(
            "scenario 4: expected a policy refusal, but the buyer paid (HTTP {})",
            paid.status
        ),
    }
    s.price = 2 * USDC;
    s.after = stack.balances().await?;
    ensure!(
        s.after == before && thrifty.ledger().records()?.len() == records_before,
        "scenario 4: a refused payment moved money or was recorded"
    );
    out.push(s);
    Ok(out)
}

/// Runs the whole demo and returns what happened.
pub async fn run(args: DemoArgs) -> Result<DemoReport> {
    let started = Instant::now();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .wrap_err("binding the demo merchant")?;
    let merchant_url = format!("http://{}", listener.local_addr()?);
    let stack = Stack::start(args.anvil, Some(format!("{merchant_url}/webhooks"))).await?;
    let payments = X402Layer::new(stack.operator_client(), stack.payments_config());
    let webhooks = Arc::new(AtomicUsize::new(0));
    let stop_merchant = serve_app(listener, merchant_app(&payments, webhooks.clone()));
    let result = scenarios(&stack, &merchant_url).await;
    // Let the webhook worker deliver the last events.
    let deadline = Instant::now() + Duration::from_secs(3);
    while webhooks.load(Ordering::SeqCst) < 7 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop_merchant.send(());
    let report = result.map(|scenarios| DemoReport {
        chain_id: stack.deployment.chain_id,
        escrow: stack.deployment.auth_capture_escrow,
        token: stack.token.address,
        operator_url: stack.operator_url(),
        merchant_url: merchant_url.clone(),
        scenarios,
        webhooks: webhooks.load(Ordering::SeqCst),
        elapsed: Duration::ZERO,
    });
    stack.shutdown().await;
    let mut report = report?;
    report.elapsed = started.elapsed();
    Ok(report)
}

impl DemoReport {
    /// The readable summary.
    pub fn render(&self) -> String {
        let usd = |units: u64| format!("${}", format_units(U256::from(units), 6));
        let mut out = String::new();
        let mut line = |s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        line("x402-escrow demo: refundable x402 payments, end to end".into());
        line(format!("chain        {} (local anvil)", self.chain_id));
        line(format!("escrow       {}", self.escrow));
        line(format!("token        {}", self.token));
        line(format!("operator     {}", self.operator_url));
        line(format!("merchant     {}", self.merchant_url));
        for (i, s) in self.scenarios.iter().enumerate() {
            line(String::new());
            line(format!("[{}] {} — {}", i + 1, s.title, s.request));
            line(format!("    request id   {}", s.request_id));
            let outcome = match &s.outcome {
                Outcome::Captured => format!(
                    "CAPTURED {} (fee {})",
                    usd(s.captured),
                    usd(fee(s.captured))
                ),
                Outcome::Voided => format!(
                    "VOIDED: the hold of {} went back to the payer",
                    usd(s.price)
                ),
                Outcome::Refunded { refunded } => format!(
                    "CAPTURED {} then REFUNDED {} to the payer",
                    usd(s.captured),
                    usd(*refunded)
                ),
                Outcome::Refused { rule, message } => {
                    format!("REFUSED by rule `{rule}` before signing: {message}")
                }
            };
            line(format!("    outcome      {outcome}"));
            if let Some(status) = s.http_status {
                line(format!("    http         {status}"));
            }
            line(format!("    price        {}", usd(s.price)));
            if let Some(id) = &s.payment_id {
                line(format!(
                    "    payment      {id} (operator status {})",
                    s.status.as_deref().unwrap_or("-")
                ));
            }
            if let Some(hash) = s.payment_hash {
                line(format!("    payment hash {hash}"));
            }
            if let Outcome::Refunded { .. } = s.outcome {
                line("    refund       paid from the operator's float (OperatorRefundCollector), through POST /v1/payments/{id}/refund".into());
            }
            if let Some(status) = &s.ledger_status {
                line(format!("    buyer ledger {status}"));
            }
            for (kind, hash) in &s.transactions {
                line(format!(
                    "    tx {kind:<9} {}",
                    hash.map(|h| h.to_string()).unwrap_or_else(|| "-".into())
                ));
            }
            if s.transactions.is_empty() && matches!(s.outcome, Outcome::Refused { .. }) {
                line("    tx           none (nothing signed, nothing sent)".into());
            }
            line(format!("    before       {}", s.before.line()));
            line(format!("    after        {}", s.after.line()));
        }
        line(String::new());
        line(format!(
            "webhooks     {} events delivered to the merchant",
            self.webhooks
        ));
        line(format!(
            "All four outcomes as expected ({:.1} s).",
            self.elapsed.as_secs_f64()
        ));
        out
    }
}

/// `x402-escrow demo`: runs and prints.
pub async fn main(args: DemoArgs) -> Result<()> {
    println!("starting anvil, deploying, starting the operator and the demo merchant…");
    let report = run(args)
        .await
        .wrap_err("the demo did not go as expected")?;
    print!("{}", report.render());
    Ok(())
}
